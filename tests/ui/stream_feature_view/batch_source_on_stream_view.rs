use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsSource;
use feast_runtime::prelude::*;

#[stream_feature_view(entities = [Driver], source = DriverStatsSource, schema = [conv_rate: Float32])]
pub fn conv(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
