// One compile reports every bad argument, each at its own token.
use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::prelude::*;

#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    ttl = "one day",
    online = "yes",
    schema = [conv_rate: Double],
    owner = "team",
    owner = "other team",
)]
pub fn conv(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

// The row type still exists, so using it adds no error.
pub fn use_row(row: ConvRow) -> i64 {
    row.driver.driver_id
}

fn main() {}
