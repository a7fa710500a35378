use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::views::driver_hourly_stats;
use feast_runtime::feature_service;

#[feature_service(features = [driver_hourly_stats, Driver])]
pub struct DriverActivity;

fn main() {}
