use feast_runtime::kinesis_source;

#[kinesis_source(
    stream_name = "driver_stats",
    region = "us-east-1",
    record_format = JsonFormat(schema_json = "driver_id bigint, event_timestamp timestamp"),
)]
pub struct DriverStatsStream;

fn main() {}
