//! A feature repo whose Kinesis source names a region no endpoint exists for:
//! `ingest` must say so at start-up, not retry forever.

use feast_runtime::prelude::*;

/// A driver.
#[entity]
pub struct Driver {
    pub driver_id: i64,
}

/// The history of the far-away stream.
#[file_source(
    path = "data/far_away",
    schema = [driver_id: Int64, event_timestamp: UnixTimestamp, conv_rate: Float32],
)]
pub struct FarAwayHistory;

/// The driver stream, in a region that does not exist.
#[kinesis_source(
    stream_name = "driver_stats",
    region = "xx-nowhere-9",
    batch_source = FarAwayHistory,
    record_format = JsonFormat(schema_json = "driver_id bigint, event_timestamp timestamp, conv_rate double"),
)]
pub struct FarAwayStream;

/// Conversion rates from the far-away stream.
#[stream_feature_view(entities = [Driver], source = FarAwayStream, schema = [conv_rate: Float32])]
pub fn far_away_stats(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
