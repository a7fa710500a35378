use feast_runtime::kinesis_source;

#[kinesis_source(
    stream_name = "driver_stats",
    region = "us-east-1",
    batch_source = feast_example_driver_stats::sources::DriverStatsSource,
    record_format = JsonFormat(schema_json = "driver_id integer event_timestamp timestamp, conv_rate double"),
)]
pub struct DriverStatsStream;

fn main() {}
