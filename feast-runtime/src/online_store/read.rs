//! Online reads in Feast's shape: for entity rows and resolved features,
//! the column-major response with a status per value. One ttl rule
//! ([`FeatureViewDef::is_fresh`]) decides `OUTSIDE_MAX_AGE`, here as in typed
//! reads and `verify`.

use super::{OnlineStore, StoredRow};
use crate::aggregate::Plan;
use crate::aggregate::stored::evaluate_stored;
use crate::definition::{FeatureViewDef, JoinKeyValue, Value, serialize_entity_key};
use crate::registry::refs::Resolved;

/// The status of one value in an online response (Feast's `FieldStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldStatus {
    /// A value.
    Present,
    /// A stored null.
    NullValue,
    /// No value for the entity.
    NotFound,
    /// A value older than the view's ttl.
    OutsideMaxAge,
}

impl FieldStatus {
    /// Feast's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldStatus::Present => "PRESENT",
            FieldStatus::NullValue => "NULL_VALUE",
            FieldStatus::NotFound => "NOT_FOUND",
            FieldStatus::OutsideMaxAge => "OUTSIDE_MAX_AGE",
        }
    }
}

/// One column of an online response.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector {
    /// The entity column's or feature's name.
    pub name: String,
    /// One value per entity row.
    pub values: Vec<Value>,
    /// One status per entity row.
    pub statuses: Vec<FieldStatus>,
    /// Event time in microseconds since the epoch, at the precision the
    /// online store keeps (whole seconds on SQLite); 0 when not found.
    pub event_timestamps_us: Vec<i64>,
}

/// Feast's column-major online response: the entity columns first, then the
/// features in request order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OnlineResponse {
    /// Entity columns first, then features.
    pub columns: Vec<FeatureVector>,
}

impl OnlineResponse {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&FeatureVector> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Entity rows for an online read: join key -> values, all the same length.
pub type EntityRows<'a> = &'a [(&'a str, Vec<JoinKeyValue<'a>>)];

/// Entity rows that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Join keys with different numbers of values.
    #[error("entity rows: `{name}` has {found} values but the first join key has {expected}")]
    Lengths {
        /// The join key.
        name: String,
        /// Its values.
        found: usize,
        /// The first join key's.
        expected: usize,
    },
    /// A view's join key is not among the rows.
    #[error("entity rows: view `{view}` needs join key `{join_key}`")]
    MissingJoinKey {
        /// The view.
        view: &'static str,
        /// The join key.
        join_key: &'static str,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] super::Error),
}

fn join_key_value(k: &JoinKeyValue<'_>) -> Value {
    match k {
        JoinKeyValue::Int64(v) => Value::Int64(*v),
        JoinKeyValue::Int32(v) => Value::Int32(*v),
        JoinKeyValue::String(s) => Value::String((*s).to_owned()),
        JoinKeyValue::Bytes(b) => Value::Bytes(b.to_vec()),
    }
}

/// The entity key of each row for `view`.
fn keys(
    view: &FeatureViewDef,
    entity_rows: EntityRows<'_>,
    n: usize,
) -> Result<Vec<Vec<u8>>, ReadError> {
    let columns = view
        .entities
        .iter()
        .map(|e| {
            entity_rows
                .iter()
                .find(|(k, _)| *k == e.join_key)
                .map(|(_, col)| (e.join_key, col))
                .ok_or(ReadError::MissingJoinKey {
                    view: view.name,
                    join_key: e.join_key,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut pairs = Vec::with_capacity(columns.len());
    Ok((0..n)
        .map(|i| {
            pairs.clear();
            pairs.extend(columns.iter().map(|(k, col)| (*k, col[i])));
            let mut buf = Vec::with_capacity(16 + 24 * pairs.len());
            serialize_entity_key(&mut buf, &pairs);
            buf
        })
        .collect())
}

/// One value of a stored row: what it is, its status, its event time.
fn cell(
    row: Option<&StoredRow>,
    feature: usize,
    view: &FeatureViewDef,
    now_us: i64,
) -> (Value, FieldStatus, i64) {
    let Some(r) = row else {
        return (Value::Null, FieldStatus::NotFound, 0);
    };
    match &r.values[feature] {
        None => (Value::Null, FieldStatus::NotFound, 0),
        Some(_) if !view.is_fresh(r.event_ts, now_us) => {
            (Value::Null, FieldStatus::OutsideMaxAge, r.event_ts)
        }
        Some(Value::Null) => (Value::Null, FieldStatus::NullValue, r.event_ts),
        Some(v) => (v.clone(), FieldStatus::Present, r.event_ts),
    }
}

/// The stored rows of `view` for `keys`: for an aggregated view, its
/// windows at `now_us` merged from the stored tiles, with the entity's
/// newest event time.
pub fn stored_rows(
    store: &dyn OnlineStore,
    view: &FeatureViewDef,
    keys: &[Vec<u8>],
    names: &[&str],
    now_us: i64,
) -> Result<Vec<Option<StoredRow>>, ReadError> {
    if !view.is_aggregated() {
        return Ok(store.read(view, keys, names)?);
    }
    let plan = Plan::of(view);
    let positions: Vec<Option<usize>> = names
        .iter()
        .map(|n| view.aggregations.iter().position(|a| a.name == *n))
        .collect();
    store
        .read_tiles(view, keys, now_us)?
        .iter()
        .map(|tiles| {
            let evaluated = evaluate_stored(view, &plan, now_us, tiles).map_err(|error| {
                crate::online_store::Error::Tile {
                    view: view.name,
                    error,
                }
            })?;
            Ok(evaluated.map(|(newest, values)| StoredRow {
                event_ts: newest,
                values: positions
                    .iter()
                    .map(|p| p.map(|i| values[i].clone()))
                    .collect(),
            }))
        })
        .collect()
}

/// Reads the `resolved` features of `entity_rows` from `store`, as of
/// `now_us` for the views' ttl.
pub fn read_features(
    store: &dyn OnlineStore,
    resolved: &Resolved,
    entity_rows: EntityRows<'_>,
    full_feature_names: bool,
    now_us: i64,
) -> Result<OnlineResponse, ReadError> {
    let n = entity_rows.first().map_or(0, |(_, v)| v.len());
    if let Some((name, v)) = entity_rows.iter().find(|(_, v)| v.len() != n) {
        return Err(ReadError::Lengths {
            name: (*name).to_owned(),
            found: v.len(),
            expected: n,
        });
    }
    let mut response = OnlineResponse::default();
    for (name, values) in entity_rows {
        response.columns.push(FeatureVector {
            name: (*name).to_owned(),
            values: values.iter().map(join_key_value).collect(),
            statuses: vec![FieldStatus::Present; n],
            event_timestamps_us: vec![0; n],
        });
    }
    for (view, names) in resolved {
        let keys = keys(view, entity_rows, n)?;
        let stored = stored_rows(store, view, &keys, names, now_us)?;
        for (fi, fname) in names.iter().enumerate() {
            let mut col = FeatureVector {
                name: if full_feature_names {
                    format!("{}__{}", view.name, fname)
                } else {
                    (*fname).to_owned()
                },
                values: Vec::with_capacity(n),
                statuses: Vec::with_capacity(n),
                event_timestamps_us: Vec::with_capacity(n),
            };
            for row in &stored {
                let (value, status, ts) = cell(row.as_ref(), fi, view, now_us);
                col.values.push(value);
                col.statuses.push(status);
                col.event_timestamps_us.push(ts);
            }
            response.columns.push(col);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::fixtures::{self, field};
    use crate::definition::{DataSourceDef, FeastType};
    use crate::online_store::OnlineBatch;
    use crate::online_store::sqlite::SqliteStore;

    static SOURCE: DataSourceDef = fixtures::file_source("s", "s", &[]);

    /// A view whose values last an hour.
    static VIEW: FeatureViewDef = fixtures::batch_view(
        "v",
        &SOURCE,
        &[field("a", FeastType::Int64), field("b", FeastType::Int64)],
        3600,
    );

    const T: i64 = 1_735_732_800_000_000;

    fn key(id: i64) -> Vec<u8> {
        let mut k = Vec::new();
        serialize_entity_key(&mut k, &[("driver_id", JoinKeyValue::Int64(id))]);
        k
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("online.db"), "p").unwrap();
        // Driver 1: fresh, `b` null; driver 2: written more than an hour
        // before T.
        let batch = OnlineBatch {
            tiles: None,
            entity_keys: vec![key(1), key(2)],
            event_ts: vec![T - 60_000_000, T - 3_601_000_000],
            created_ts: vec![None, None],
            features: vec![
                ("a", vec![Value::Int64(10), Value::Int64(20)]),
                ("b", vec![Value::Null, Value::Int64(21)]),
            ],
        };
        store.write(&VIEW, &batch).unwrap();
        (dir, store)
    }

    #[test]
    fn statuses_follow_one_ttl_rule_and_names_follow_the_request() {
        let (_dir, store) = store();
        let resolved: Resolved = vec![(&VIEW, vec!["b", "a"])];
        let rows = [(
            "driver_id",
            vec![
                JoinKeyValue::Int64(1),
                JoinKeyValue::Int64(2),
                JoinKeyValue::Int64(3),
            ],
        )];
        let r = read_features(&store, &resolved, &rows, true, T).unwrap();
        let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["driver_id", "v__b", "v__a"]);
        assert_eq!(
            r.columns[0].values,
            [Value::Int64(1), Value::Int64(2), Value::Int64(3)]
        );
        use FieldStatus::*;
        assert_eq!(r.columns[1].statuses, [NullValue, OutsideMaxAge, NotFound]);
        assert_eq!(r.columns[2].statuses, [Present, OutsideMaxAge, NotFound]);
        assert_eq!(
            r.columns[2].values,
            [Value::Int64(10), Value::Null, Value::Null]
        );
        assert_eq!(
            r.columns[2].event_timestamps_us,
            [T - 60_000_000, T - 3_601_000_000, 0]
        );
        // An hour and a second later, driver 1 is stale too; a view without
        // ttl never is.
        let later = T + 3_541_000_000;
        let r = read_features(&store, &resolved, &rows, false, later).unwrap();
        assert_eq!(r.columns[2].statuses[0], OutsideMaxAge);
        assert!(VIEW.is_fresh(T - 3_600_000_000, T));
        assert!(!VIEW.is_fresh(T - 3_600_000_001, T));
        let forever = FeatureViewDef {
            ttl_seconds: 0,
            ..VIEW
        };
        assert!(forever.is_fresh(i64::MIN / 2, T));
    }

    #[test]
    fn entity_rows_must_line_up_and_carry_the_join_keys() {
        let (_dir, store) = store();
        let resolved: Resolved = vec![(&VIEW, vec!["a"])];
        let err = read_features(
            &store,
            &resolved,
            &[
                ("driver_id", vec![JoinKeyValue::Int64(1)]),
                ("other", vec![]),
            ],
            false,
            T,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "entity rows: `other` has 0 values but the first join key has 1"
        );
        let err = read_features(
            &store,
            &resolved,
            &[("rider_id", vec![JoinKeyValue::Int64(1)])],
            false,
            T,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "entity rows: view `v` needs join key `driver_id`"
        );
    }
}
