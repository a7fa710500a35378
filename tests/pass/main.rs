//! Definitions that must compile, and what they generate.
//!
//! These are ordinary code compiled by this test target (not trybuild `pass`
//! cases, which would build Polars a second time), so they run too.

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

use feast_runtime::chrono::{DateTime, TimeZone, Utc};
use feast_runtime::definition::{Entity, FeastType, FieldDef, SourceKind, ViewKind};
use feast_runtime::prelude::*;
use feast_runtime::registry::Registry;
use feast_runtime::transform;

// The generated code can reach the runtime through a path of the user's choosing.
pub use feast_runtime as renamed;

/// A customer, keyed by a string id.
#[entity(name = "customer", tags = {"pii": "false"}, owner = "crm@example.com")]
#[derive(Debug)]
pub struct CustomerKey {
    pub customer_id: String,
}

#[entity(crate = "crate::renamed")]
pub struct Merchant {
    pub merchant_id: i32,
}

#[file_source(
    name = "orders_log",
    path = "data/orders.parquet",
    timestamp_field = "ts",
    field_mapping = {"amount_cents": "amount"},
    schema = [
        customer_id: String,
        merchant_id: Int32,
        ts: UnixTimestamp,
        amount_cents: Int64,
        flags: Array(Bool),
    ],
)]
pub struct OrdersLog;

#[push_source(batch_source = OrdersLog)]
pub struct OrdersPush;

/// Errors of the order view, converted by the macro's wrapper.
#[derive(Debug)]
pub struct OrderError(String);

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OrderError {}

/// Orders per customer and merchant.
#[stream_feature_view(
    name = "order_features",
    entities = [CustomerKey, Merchant],
    source = OrdersPush,
    ttl = "2h 30m",
    timestamp_field = "ts",
    offline = false,
    schema = [
        amount: Int64,
        big_order: Bool,
        note: String,
        raw: Bytes,
        seen_at: UnixTimestamp,
        flags: Array(Bool),
        ratio: Float64,
    ],
)]
fn orders(df: DataFrame) -> Result<DataFrame, OrderError> {
    let n = df.height();
    df.lazy()
        .with_columns([
            col("amount").gt(lit(10_000i64)).alias("big_order"),
            lit("").alias("note"),
            lit(NULL).cast(DataType::Binary).alias("raw"),
            col("ts").alias("seen_at"),
            (col("amount").cast(DataType::Float64) / lit(100.0)).alias("ratio"),
        ])
        .collect()
        .map_err(|e| OrderError(format!("{n} rows: {e}")))
}

#[batch_feature_view(
    entities = [Merchant],
    source = OrdersLog,
    timestamp_field = "ts",
    schema = [amount: Int64],
    online = false,
    crate = "crate::renamed"
)]
pub fn merchant_amounts(df: DataFrame) -> PolarsResult<DataFrame> {
    Ok(df)
}

/// The Polars expressions feature authors reach for, as feast-runtime's
/// Polars enables them: rounding and logarithms, string and date functions,
/// membership and ranges, cumulative and rolling windows per key.
#[stream_feature_view(
    entities = [Merchant],
    source = OrdersPush,
    timestamp_field = "ts",
    online = false,
    schema = [
        amount_eur: Float64,
        magnitude: Float64,
        shouting_id: String,
        id_length: Int32,
        hour: Int32,
        regular: Bool,
        mid_sized: Bool,
        running_total: Int64,
        rolling_mean: Float64,
        rank_label: String,
    ],
)]
pub fn merchant_habits(df: DataFrame) -> PolarsResult<DataFrame> {
    let regulars = Series::new("regulars".into(), ["c1", "c3"]);
    df.lazy()
        .sort(["merchant_id", "ts"], Default::default())
        .with_columns([
            (col("amount").cast(DataType::Float64) / lit(3.0))
                .round(2, RoundMode::HalfToEven)
                .alias("amount_eur"),
            col("amount")
                .abs()
                .cast(DataType::Float64)
                .log(lit(10.0))
                .alias("magnitude"),
            col("customer_id").str().to_uppercase().alias("shouting_id"),
            col("customer_id")
                .str()
                .len_chars()
                .cast(DataType::Int32)
                .alias("id_length"),
            col("ts").dt().hour().cast(DataType::Int32).alias("hour"),
            col("customer_id")
                .is_in(lit(regulars).implode(true), false)
                .alias("regular"),
            col("amount")
                .is_between(lit(100i64), lit(1000i64), ClosedInterval::Both)
                .alias("mid_sized"),
            col("amount")
                .cum_sum(false)
                .over([col("merchant_id")])?
                .alias("running_total"),
            col("amount")
                .cast(DataType::Float64)
                .rolling_mean(RollingOptionsFixedWindow {
                    window_size: 2,
                    min_periods: 1,
                    ..Default::default()
                })
                .over([col("merchant_id")])?
                .alias("rolling_mean"),
            col("customer_id")
                .replace_strict(
                    lit(Series::new("from".into(), ["c1", "c2"])),
                    lit(Series::new("to".into(), ["gold", "silver"])),
                    Some(lit("bronze")),
                    Some(DataType::String),
                )
                .alias("rank_label"),
        ])
        .collect()
}

#[test]
fn view_functions_have_polars_expressions_at_hand() {
    let view = <merchant_habits as FeatureView>::DEF;
    let ts = |h: i64| Utc.timestamp_opt(1_735_689_600 + h * 3600, 0).unwrap();
    let df = df!(
        "customer_id" => ["c1", "c2", "c3", "c10"],
        "merchant_id" => [7i32, 7, 8, 7],
        "ts" => [ts(1).naive_utc(), ts(2).naive_utc(), ts(3).naive_utc(), ts(4).naive_utc()],
        "amount" => [300i64, -1000, 50, 10],
        "flags" => [None::<Series>, None, None, None],
    )
    .unwrap();
    let input = feast_runtime::transform::frame::conform(&df, &view.input_schema()).unwrap();
    let out = transform::run_transform(view, input).unwrap();
    let check = transform::check_output(view, &out);
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    let f64s =
        |c: &str| -> Vec<Option<f64>> { out.column(c).unwrap().f64().unwrap().iter().collect() };
    let strs = |c: &str| -> Vec<Option<String>> {
        out.column(c)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect()
    };
    // Sorted by merchant, then time: c1, c2, c10 (merchant 7), c3 (merchant 8).
    assert_eq!(
        strs("customer_id"),
        [
            Some("c1".into()),
            Some("c2".into()),
            Some("c10".into()),
            Some("c3".into())
        ]
    );
    assert_eq!(
        f64s("amount_eur"),
        [Some(100.0), Some(-333.33), Some(3.33), Some(16.67)]
    );
    let log10 = |x: f64| Some(x.log(10.0));
    assert_eq!(
        f64s("magnitude"),
        [log10(300.0), log10(1000.0), log10(10.0), log10(50.0)]
    );
    assert_eq!(strs("shouting_id")[2].as_deref(), Some("C10"));
    let ints =
        |c: &str| -> Vec<Option<i32>> { out.column(c).unwrap().i32().unwrap().iter().collect() };
    assert_eq!(ints("id_length"), [Some(2), Some(2), Some(3), Some(2)]);
    assert_eq!(ints("hour"), [Some(1), Some(2), Some(4), Some(3)]);
    let bools =
        |c: &str| -> Vec<Option<bool>> { out.column(c).unwrap().bool().unwrap().iter().collect() };
    assert_eq!(
        bools("regular"),
        [Some(true), Some(false), Some(false), Some(true)]
    );
    assert_eq!(
        bools("mid_sized"),
        [Some(true), Some(false), Some(false), Some(false)]
    );
    let totals: Vec<Option<i64>> = out
        .column("running_total")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(totals, [Some(300), Some(-700), Some(-690), Some(50)]);
    assert_eq!(
        f64s("rolling_mean"),
        [Some(300.0), Some(-350.0), Some(-495.0), Some(50.0)]
    );
    assert_eq!(
        strs("rank_label"),
        [
            Some("gold".into()),
            Some("silver".into()),
            Some("bronze".into()),
            Some("bronze".into())
        ]
    );
}

#[feature_service(features = [orders[amount, ratio], merchant_amounts], description = "Fraud model inputs.")]
pub struct FraudModel;

#[test]
fn generated_row_structs_have_typed_fields() {
    let at: DateTime<Utc> = Utc.timestamp_opt(1_735_732_800, 0).unwrap();
    let row = OrdersRow {
        customer_key: CustomerKey {
            customer_id: "c1".into(),
        },
        merchant: Merchant::from_key(7),
        event_timestamp: at,
        amount: Some(1_500i64),
        big_order: Some(false),
        note: None::<String>,
        raw: Some(vec![1u8, 2]),
        seen_at: Some(at),
        flags: Some(vec![true]),
        ratio: Some(15.0f64),
    };
    assert_eq!(row.clone(), row);
    assert_eq!(row.merchant.key(), &7);
    assert_eq!(
        MerchantAmountsRow {
            merchant: Merchant { merchant_id: 1 },
            event_timestamp: at,
            amount: None
        }
        .amount,
        None
    );
}

#[test]
fn the_view_is_named_by_its_function_and_by_its_view_type() {
    fn def<V: FeatureView>() -> &'static feast_runtime::definition::FeatureViewDef {
        V::DEF
    }
    assert!(std::ptr::eq(def::<orders>(), def::<OrdersView>()));
    assert_eq!(def::<orders>().name, "order_features");
    assert_eq!(def::<merchant_amounts>().name, "merchant_amounts");
}

#[test]
fn definitions_carry_every_argument() {
    let customer = CustomerKey::DEF;
    assert_eq!(
        (customer.name, customer.join_key, customer.value_type),
        ("customer", "customer_id", FeastType::String)
    );
    assert_eq!(
        (customer.tags, customer.owner),
        (&[("pii", "false")][..], "crm@example.com")
    );
    assert_eq!(customer.description, "A customer, keyed by a string id.");
    assert_eq!(
        (Merchant::DEF.name, Merchant::DEF.value_type),
        ("merchant", FeastType::Int32)
    );

    let log = <OrdersLog as DataSource>::DEF;
    assert!(matches!(
        log.kind,
        SourceKind::File {
            path: "data/orders.parquet",
            ..
        }
    ));
    assert_eq!(
        log.schema()[3],
        FieldDef {
            name: "amount",
            dtype: FeastType::Int64
        }
    );
    assert_eq!(log.schema()[4].dtype, FeastType::Array(&FeastType::Bool));

    let view = <orders as FeatureView>::DEF;
    assert_eq!(
        (view.kind, view.ttl_seconds, view.online, view.offline),
        (ViewKind::Stream, 9_000, true, false)
    );
    assert_eq!(view.event_timestamp_field(), "ts");
    assert_eq!(view.source.name, "orders_push");
    assert_eq!(view.description, "Orders per customer and merchant.");
    let batch = <merchant_amounts as FeatureView>::DEF;
    assert_eq!(
        (batch.kind, batch.ttl_seconds, batch.online),
        (ViewKind::Batch, 0, false)
    );

    let service = <FraudModel as FeatureService>::DEF;
    assert_eq!(service.name, "fraud_model");
    assert_eq!(service.features[0].features, ["amount", "ratio"]);
    assert_eq!(service.description, "Fraud model inputs.");
}

#[test]
fn these_definitions_form_a_valid_registry() {
    let reg = Registry::load().expect("valid");
    assert_eq!(
        reg.entities().map(|e| e.name).collect::<Vec<_>>(),
        ["customer", "merchant"]
    );
    assert_eq!(
        reg.data_sources().map(|s| s.name).collect::<Vec<_>>(),
        ["orders_log", "orders_push"]
    );
    assert_eq!(
        reg.feature_views().map(|v| v.name).collect::<Vec<_>>(),
        ["merchant_amounts", "merchant_habits", "order_features"]
    );
    for v in reg.feature_views() {
        let report = transform::check_view(v);
        assert!(report.errors.is_empty(), "{}: {:?}", v.name, report.errors);
    }
}

#[test]
fn a_user_error_type_comes_back_boxed() {
    // Without the `amount` column the function fails; the wrapper boxes the error.
    let view = <orders as FeatureView>::DEF;
    let err = transform::run_transform(view, DataFrame::empty()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("the function of view `order_features` returned an error: 0 rows: "),
        "{msg}"
    );
    assert!(msg.contains("amount"), "{msg}");
}
