use feast_runtime::file_source;

#[file_source(path = "data/driver_stats.parquet")]
pub struct DriverStatsSource;

fn main() {}
