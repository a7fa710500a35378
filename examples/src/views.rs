//! Feature views: what is computed from the sources and served.

use feast_runtime::prelude::*;

use crate::entities::Driver;
use crate::sources::{DriverStatsSource, DriverStatsStream};

/// Conversion and acceptance rates as percentages, fresh from the stream.
#[stream_feature_view(
    entities = [Driver],
    ttl = "1d",
    source = DriverStatsStream,
    schema = [conv_percentage: Float32, acc_percentage: Float32],
    timestamp_field = "event_timestamp",
    online = true,
    offline = true,
    tags = {"team": "driver_performance"},
    owner = "driver-team@example.com",
)]
pub fn driver_hourly_stats_stream(df: DataFrame) -> PolarsResult<DataFrame> {
    df.lazy()
        .with_columns([
            (col("conv_rate") * lit(100.0))
                .cast(DataType::Float32)
                .alias("conv_percentage"),
            (col("acc_rate") * lit(100.0))
                .cast(DataType::Float32)
                .alias("acc_percentage"),
        ])
        .select([
            col("driver_id"),
            col("event_timestamp"),
            col("created"),
            col("conv_percentage"),
            col("acc_percentage"),
        ])
        .collect()
}

/// Hourly driver statistics, materialized from the Parquet source.
#[batch_feature_view(
    entities = [Driver],
    ttl = "1d",
    source = DriverStatsSource,
    schema = [conv_rate: Float32, acc_rate: Float32, avg_daily_trips: Int64],
    online = true,
    tags = {"team": "driver_performance"},
)]
pub fn driver_hourly_stats(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}
