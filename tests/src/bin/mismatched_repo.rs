//! A feature repo that compiles but whose stream view does not output what it
//! declares: `validate` must name each bad column.

use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::prelude::*;

/// Declares two Float32 features; outputs one as Float64 and omits the other.
#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_percentage: Float32, acc_percentage: Float32],
)]
pub fn mismatched_stats(df: DataFrame) -> PolarsResult<DataFrame> {
    df.lazy()
        .select([
            col("driver_id"),
            col("event_timestamp"),
            col("created"),
            (col("conv_rate") * lit(100.0))
                .cast(DataType::Float64)
                .alias("conv_percentage"),
        ])
        .collect()
}

/// Drops the source's created timestamp: events with the same event time
/// could then be settled differently online and offline.
#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_percentage: Float32],
)]
pub fn tie_blind_stats(df: DataFrame) -> PolarsResult<DataFrame> {
    df.lazy()
        .select([
            col("driver_id"),
            col("event_timestamp"),
            (col("conv_rate") * lit(100.0)).alias("conv_percentage"),
        ])
        .collect()
}

/// Panics on every frame: `validate` reports the panic instead of crashing.
#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_percentage: Float32],
)]
pub fn panicking_stats(_df: DataFrame) -> PolarsResult<DataFrame> {
    panic!("boom in the view function")
}

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
