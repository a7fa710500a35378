use feast_example_driver_stats::sources::DriverStatsStream;
use feast_runtime::push_source;

#[push_source(batch_source = DriverStatsStream)]
pub struct DriverStatsPush;

fn main() {}
