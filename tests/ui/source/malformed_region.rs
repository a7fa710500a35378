use feast_runtime::kinesis_source;

#[kinesis_source(
    stream_name = "driver_stats",
    region = "US East (N. Virginia)",
    batch_source = feast_example_driver_stats::sources::DriverStatsSource,
    record_format = JsonFormat(schema_json = "driver_id bigint, event_timestamp timestamp"),
)]
pub struct DriverStatsStream;

fn main() {}
