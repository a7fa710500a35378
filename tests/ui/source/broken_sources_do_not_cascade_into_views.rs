//! A source with a mistake reports that mistake only: the views that name it
//! compile far enough not to add "is not a stream source" errors of their own.

use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::DriverStatsSource;
use feast_runtime::prelude::*;

#[kinesis_source(
    stream_name = "transactions",
    region = "us-east-1",
    batch_source = DriverStatsSource,
    record_format = JsonFormat(schema_json = "driver_id bigint, event_timestamp timestamp, amount decimal"),
)]
pub struct WrongType;

#[kinesis_source(
    stream_name = "transactions",
    region = "us-east-1",
    batch_source = DriverStatsSource,
    record_format = JsonFormat(schema_json = "driver_id bigint, event_ts timestamp, amount double"),
)]
pub struct NoTimestampField;

#[kinesis_source(
    stream_name = "transactions",
    region = "us-east-1",
    batch_source = DriverStatsSource,
    record_format = JsonFormat(schema_json = "driver_id bigint, event_timestamp timestamp, amount double comment 'in euros'"),
)]
pub struct UnsupportedClause;

#[file_source(path = "data/history", schema = [driver_id: Int64, event_ts: UnixTimestamp])]
pub struct HistoryWithoutTimestampField;

#[stream_feature_view(entities = [Driver], source = WrongType, schema = [amount: Float64])]
pub fn from_wrong_type(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

#[stream_feature_view(entities = [Driver], source = NoTimestampField, schema = [amount: Float64])]
pub fn from_no_timestamp_field(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

#[stream_feature_view(entities = [Driver], source = UnsupportedClause, schema = [amount: Float64])]
pub fn from_unsupported_clause(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

#[batch_feature_view(entities = [Driver], source = HistoryWithoutTimestampField, schema = [driver_id: Int64])]
pub fn from_history(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
