use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::prelude::*;

#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_rate: Float64],
    aggregations = [Aggregation(column = "conv_rate", function = "sum", time_window = "1h")],
)]
pub fn conv(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
