use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::prelude::*;

#[stream_feature_view(entities = [Driver], source = DriverStatsStream, schema = [driver: Int64, event_timestamp: UnixTimestamp])]
pub fn conv(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
