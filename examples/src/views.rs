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

/// A driver's activity computed on the stream: reports (trips) and the mean
/// conversion rate over the last hour and week, and the last three distinct
/// conversion bands. The function adds the band; the windows are kept as
/// tiles in the online store by `ingest` and `materialize`.
#[stream_feature_view(
    entities = [Driver],
    ttl = "7d",
    source = DriverStatsStream,
    schema = [conv_band: String], // conv_rate is the source's, passed through
    aggregations = [
        Aggregation(column = "conv_rate", function = "count", time_window = "1h", slide_interval = "10m", name = "trips_1h"),
        Aggregation(column = "conv_rate", function = "count", time_window = "7d", slide_interval = "1d", name = "trips_7d"),
        Aggregation(column = "conv_rate", function = "mean", time_window = "1h", slide_interval = "10m", name = "conv_rate_mean_1h"),
        Aggregation(column = "conv_rate", function = "mean", time_window = "7d", slide_interval = "1d", name = "conv_rate_mean_7d"),
        Aggregation(column = "conv_band", function = "last_distinct(3)", time_window = "7d", slide_interval = "1d", name = "recent_conv_bands"),
    ],
    tags = {"team": "driver_performance"},
)]
pub fn driver_trip_windows(df: DataFrame) -> PolarsResult<DataFrame> {
    df.lazy()
        .with_column(
            when(col("conv_rate").lt(lit(0.4)))
                .then(lit("low"))
                .when(col("conv_rate").lt(lit(0.7)))
                .then(lit("mid"))
                .otherwise(lit("high"))
                .alias("conv_band"),
        )
        .select([
            col("driver_id"),
            col("event_timestamp"),
            col("created"),
            col("conv_rate"),
            col("conv_band"),
        ])
        .collect()
}
