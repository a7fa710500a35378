use feast_runtime::file_source;

#[file_source(
    path = "data/driver_stats.parquet",
    timestamp_field = "event_ts",
    created_timestamp_column = "conv_rate",
    schema = [driver_id: Int64, event_timestamp: UnixTimestamp, conv_rate: Float32],
)]
pub struct DriverStatsSource;

fn main() {}
