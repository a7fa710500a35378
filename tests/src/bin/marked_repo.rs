//! A feature repo whose stream view fails on marked records: it panics on
//! driver 666 and returns an error on driver 667. Ingestion must dead-letter
//! exactly those records and keep going.

use feast_runtime::prelude::*;
use feast_runtime::{entity, file_source, kinesis_source};

/// A driver.
#[entity]
pub struct Driver {
    pub driver_id: i64,
}

/// The history of the marked stream.
#[file_source(
    path = "data/marked.parquet",
    created_timestamp_column = "created",
    schema = [driver_id: Int64, event_timestamp: UnixTimestamp, created: UnixTimestamp, conv_rate: Float32],
)]
pub struct MarkedHistory;

/// Driver events, some of them marked.
#[kinesis_source(
    stream_name = "marked_events",
    region = "us-east-1",
    batch_source = MarkedHistory,
    record_format = JsonFormat(schema_json = "driver_id bigint, event_timestamp timestamp, conv_rate double, created timestamp"),
)]
pub struct MarkedEvents;

/// Conversion percentage; refuses the marked drivers.
#[stream_feature_view(
    entities = [Driver],
    source = MarkedEvents,
    offline = true,
    schema = [conv_percentage: Float32],
)]
pub fn marked_stats(df: DataFrame) -> PolarsResult<DataFrame> {
    let ids = df.column("driver_id")?.i64()?;
    if ids.iter().any(|id| id == Some(666)) {
        panic!("driver 666 is a poison record");
    }
    if ids.iter().any(|id| id == Some(667)) {
        polars_bail!(ComputeError: "driver 667 is refused");
    }
    df.lazy()
        .select([
            col("driver_id"),
            col("event_timestamp"),
            col("created"),
            (col("conv_rate") * lit(100.0))
                .cast(DataType::Float32)
                .alias("conv_percentage"),
        ])
        .collect()
}

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
