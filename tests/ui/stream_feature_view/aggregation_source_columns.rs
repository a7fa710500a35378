use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::prelude::*;

// Columns the function passes through from the source need no declaration;
// the compiler checks them against the source's columns.
#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_band: String],
    aggregations = [
        Aggregation(column = "acc_rate", function = "mean", time_window = "1h"),
        Aggregation(column = "tip", function = "sum", time_window = "1h"),
        Aggregation(column = "created", function = "sum", time_window = "1h"),
    ],
)]
pub fn source_columns(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {
    // `acc_rate` is Float32 in the batch source: its mean is a Float64.
    let _: Option<SourceColumnsRow> = None;
}
