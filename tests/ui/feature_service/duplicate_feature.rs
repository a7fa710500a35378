use feast_example_driver_stats::views::driver_hourly_stats;
use feast_runtime::feature_service;

#[feature_service(features = [driver_hourly_stats[conv_rate, acc_rate, conv_rate]])]
pub struct DriverActivity;

fn main() {}
