//! Feature services: the features a model reads, by name.

use feast_runtime::feature_service;

use crate::views::{driver_hourly_stats, driver_hourly_stats_stream};

/// What the driver-ranking model reads at inference time.
#[feature_service(features = [driver_hourly_stats, driver_hourly_stats_stream[conv_percentage, acc_percentage]])]
pub struct DriverActivity;
