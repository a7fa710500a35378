# The example's definitions (examples/src) written for Feast 0.67, as a
# team would have them before moving to feast-rs: `feast apply` on this file
# writes the registry that `driver-stats plan` compares with its own.
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, KinesisSource, PushSource
from feast.aggregation import Aggregation
from feast.data_format import JsonFormat
from feast.stream_feature_view import StreamFeatureView
from feast.types import Array, Float32, Float64, Int64, String
from feast.value_type import ValueType

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    value_type=ValueType.INT64,
    description="A driver of the ride-hailing service.",
)

driver_stats_source = FileSource(
    name="driver_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Hourly driver statistics in Parquet: the offline store of both views.",
)

driver_stats_stream = KinesisSource(
    name="driver_stats_stream",
    stream_name="driver_stats",
    region="us-east-1",
    timestamp_field="event_timestamp",
    batch_source=driver_stats_source,
    record_format=JsonFormat(
        schema_json="driver_id integer, event_timestamp timestamp, conv_rate double, acc_rate double, created timestamp"
    ),
    description="Driver statistics as JSON records on the `driver_stats` Kinesis stream.",
)

driver_stats_push = PushSource(
    name="driver_stats_push",
    batch_source=driver_stats_source,
    description="Driver statistics pushed through the API, logged to the same Parquet files.",
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64),
    ],
    online=True,
    source=driver_stats_source,
    tags={"team": "driver_performance"},
    description="Hourly driver statistics, materialized from the Parquet source.",
)

driver_hourly_stats_stream = FeatureView(
    name="driver_hourly_stats_stream",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_percentage", dtype=Float32),
        Field(name="acc_percentage", dtype=Float32),
    ],
    online=True,
    offline=True,
    source=driver_stats_stream,
    tags={"team": "driver_performance"},
    owner="driver-team@example.com",
    description="Conversion and acceptance rates as percentages, fresh from the stream.",
)


def bands(df):
    return df


# Feast's stream feature views take Kafka or push sources, not Kinesis.
driver_trip_windows = StreamFeatureView(
    name="driver_trip_windows",
    entities=[driver],
    ttl=timedelta(days=7),
    schema=[
        Field(name="trips_1h", dtype=Int64),
        Field(name="trips_7d", dtype=Int64),
        Field(name="conv_rate_mean_1h", dtype=Float64),
        Field(name="conv_rate_mean_7d", dtype=Float64),
        Field(name="recent_conv_bands", dtype=Array(String)),
    ],
    source=driver_stats_push,
    aggregations=[
        Aggregation(column="conv_rate", function="count", time_window=timedelta(hours=1), slide_interval=timedelta(minutes=10), name="trips_1h"),
        Aggregation(column="conv_rate", function="count", time_window=timedelta(days=7), slide_interval=timedelta(days=1), name="trips_7d"),
        Aggregation(column="conv_rate", function="mean", time_window=timedelta(hours=1), slide_interval=timedelta(minutes=10), name="conv_rate_mean_1h"),
        Aggregation(column="conv_rate", function="mean", time_window=timedelta(days=7), slide_interval=timedelta(days=1), name="conv_rate_mean_7d"),
        Aggregation(column="conv_band", function="last_distinct(3)", time_window=timedelta(days=7), slide_interval=timedelta(days=1), name="recent_conv_bands"),
    ],
    timestamp_field="event_timestamp",
    mode="python",
    udf=bands,
    tags={"team": "driver_performance"},
    description=(
        "A driver's activity computed on the stream: reports (trips) and the mean\n"
        "conversion rate over the last hour and week, and the last three distinct\n"
        "conversion bands. The function adds the band; the windows are kept as\n"
        "tiles in the online store by `ingest` and `materialize`."
    ),
)

driver_activity = FeatureService(
    name="driver_activity",
    features=[driver_hourly_stats, driver_hourly_stats_stream[["conv_percentage", "acc_percentage"]]],
    description="What the driver-ranking model reads at inference time.",
)
