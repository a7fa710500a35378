// Feast's own Kinesis example: a Kafka-only argument and no region.
use feast_example_driver_stats::sources::DriverStatsSource;
use feast_runtime::kinesis_source;

#[kinesis_source(
    name = "driver_stats_stream",
    stream_name = "drivers",
    timestamp_field = "event_timestamp",
    batch_source = DriverStatsSource,
    record_format = JsonFormat(schema_json = "driver_id integer, event_timestamp timestamp, conv_rate double, acc_rate double, created timestamp"),
    watermark_delay_threshold = "5m",
)]
pub struct DriverStatsStream;

fn main() {}
