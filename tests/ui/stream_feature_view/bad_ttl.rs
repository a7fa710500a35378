use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::prelude::*;

#[stream_feature_view(entities = [Driver], source = DriverStatsStream, ttl = "1x", schema = [conv_rate: Float64])]
pub fn conv(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
