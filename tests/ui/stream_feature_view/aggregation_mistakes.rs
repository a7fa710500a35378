use feast_example_driver_stats::entities::Driver;
use feast_example_driver_stats::sources::{DriverStatsSource, DriverStatsStream};
use feast_runtime::prelude::*;

// Each mistake is reported at its own span, all in one compilation (a
// column the source lacks is the compiler's error: aggregation_source_columns).
#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_rate: Float32, band: String, tags: Array(String)],
    aggregations = [
        Aggregation(column = "band", function = "sum", time_window = "1h"),
        Aggregation(column = "conv_rate", function = "mean", time_window = "1h", slide_interval = "7m"),
        Aggregation(column = "conv_rate", function = "max", time_window = "1h", slide_interval = "0s"),
        Aggregation(column = "band", function = "last(0)", time_window = "1d"),
        Aggregation(column = "band", function = "last_distinct(5000)", time_window = "1d"),
        Aggregation(column = "tags", function = "last(3)", time_window = "1d"),
        Aggregation(column = "conv_rate", function = "median", time_window = "1h"),
        Aggregation(column = "conv_rate", function = "count", time_window = "1h"),
        Aggregation(column = "band", function = "count", time_window = "1d"),
        Aggregation(column = "conv_rate", function = "count", time_window = "1d", name = "count_band"),
        Aggregation(column = "conv_rate", function = "min"),
        Aggregation(column = "conv_rate", function = "min", time_window = "an hour"),
        Aggregation(column = "conv_rate", function = "min", time_window = "1h", window = "1h"),
    ],
)]
pub fn mistakes(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

// A batch view aggregates its batch source the same way, checked the same way.
#[batch_feature_view(
    entities = [Driver],
    source = DriverStatsSource,
    schema = [avg_daily_trips: Int64],
    aggregations = [
        Aggregation(column = "avg_daily_trips", function = "std", time_window = "1d", name = "event_timestamp"),
    ],
)]
pub fn batch_mistakes(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

#[stream_feature_view(
    entities = [Driver],
    source = DriverStatsStream,
    schema = [conv_rate: Float32],
    aggregations = [],
)]
pub fn no_aggregations(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

fn main() {}
