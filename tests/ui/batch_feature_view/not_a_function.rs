use feast_runtime::prelude::*;

#[batch_feature_view(
    entities = [feast_example_driver_stats::entities::Driver],
    source = feast_example_driver_stats::sources::DriverStatsSource,
    schema = [conv_rate: Float32],
)]
pub struct DriverHourlyStats;

fn main() {}
