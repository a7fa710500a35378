//! The card-transactions repository a new user wrote from the README alone:
//! a String-keyed entity, a Kinesis source whose `amount` is `NOT NULL`, and
//! a stream view that rounds with Polars' expressions.

use feast_runtime::prelude::*;

/// A payment card.
#[entity]
pub struct Card {
    pub card_id: String,
}

/// Every transaction, logged by `ingest`.
#[file_source(
    path = "data/transactions",
    timestamp_field = "event_ts",
    created_timestamp_column = "created",
    schema = [
        card_id: String,
        amount: Float64,
        merchant: String,
        event_ts: UnixTimestamp,
        created: UnixTimestamp,
    ],
)]
pub struct TransactionLog;

/// Card transactions as JSON records. Its records carry `created`; the
/// source declares no `created_timestamp_column`, so its batch source's
/// settles ties.
#[kinesis_source(
    stream_name = "card_transactions",
    region = "us-east-1",
    timestamp_field = "event_ts",
    batch_source = TransactionLog,
    record_format = JsonFormat(
        schema_json = "card_id string not null, amount double not null, merchant string, event_ts timestamp, created timestamp"
    ),
)]
pub struct Transactions;

/// The last transaction of each card, in cents.
#[stream_feature_view(
    entities = [Card],
    source = Transactions,
    ttl = "30d",
    offline = true,
    schema = [amount_cents: Int64, is_large: Bool, merchant: String],
)]
pub fn card_activity(df: DataFrame) -> PolarsResult<DataFrame> {
    df.lazy()
        .with_columns([
            (col("amount") * lit(100.0))
                .round(0, RoundMode::HalfToEven)
                .cast(DataType::Int64)
                .alias("amount_cents"),
            col("amount").gt_eq(lit(500.0)).alias("is_large"),
        ])
        .collect()
}

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
