//! Where the driver statistics come from.

use feast_runtime::{file_source, kinesis_source, push_source};

/// Hourly driver statistics in Parquet: the offline store of both views.
#[file_source(
    path = "data/driver_stats.parquet",
    timestamp_field = "event_timestamp",
    created_timestamp_column = "created",
    schema = [
        driver_id: Int64,
        event_timestamp: UnixTimestamp,
        created: UnixTimestamp,
        conv_rate: Float32,
        acc_rate: Float32,
        avg_daily_trips: Int64,
    ],
)]
pub struct DriverStatsSource;

/// Driver statistics as JSON records on the `driver_stats` Kinesis stream.
#[kinesis_source(
    name = "driver_stats_stream",
    stream_name = "driver_stats",
    region = "us-east-1",
    timestamp_field = "event_timestamp",
    batch_source = DriverStatsSource,
    record_format = JsonFormat(
        schema_json = "driver_id integer, event_timestamp timestamp, conv_rate double, acc_rate double, created timestamp"
    ),
)]
pub struct DriverStatsStream;

/// Driver statistics pushed through the API, logged to the same Parquet files.
#[push_source(batch_source = DriverStatsSource)]
pub struct DriverStatsPush;
