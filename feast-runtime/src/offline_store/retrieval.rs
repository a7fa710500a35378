//! Point-in-time retrieval: for each entity row at time T and each view, the
//! feature row with the same join keys whose event time is in [T - ttl, T],
//! newest event first, ties broken by the newest created time (then the later
//! row). Every entity row is kept, in input order, duplicates included; where
//! nothing matches the features are null. This is the semantics of Feast's SQL
//! offline stores, not the file store's (which drops rows and breaks ties
//! unstably).

use std::collections::HashMap;

use polars::prelude::*;

use crate::aggregate;
use crate::definition::serialize_entity_key;
use crate::definition::{FeatureViewDef, JoinKeyValue, Value};
use crate::transform::frame::{self, FrameError, KeyColumn};

/// The entity frame's timestamp column, as in Feast.
pub const ENTITY_TIMESTAMP: &str = "event_timestamp";

/// One view's part of a retrieval: its feature rows (the output of its
/// function over its offline data) and the features wanted from it.
#[derive(Debug)]
pub struct ViewRequest<'a> {
    /// The view.
    pub view: &'static FeatureViewDef,
    /// Its feature rows: its function over its offline rows.
    pub rows: &'a DataFrame,
    /// The features wanted.
    pub features: Vec<&'static str>,
}

/// Options of a retrieval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Name features `view__feature` instead of `feature`.
    pub full_feature_names: bool,
    /// Ignore feature rows created after the entity row's time.
    pub filter_by_created_timestamp: bool,
}

/// The entity key of every row: the integer itself for a view keyed by one
/// integer join key (the common case, and much cheaper), else the serialized
/// entity key.
enum Keys {
    Int(Vec<i64>),
    Bytes(Vec<Vec<u8>>),
}

fn keys_of(df: &DataFrame, view: &FeatureViewDef) -> Result<Keys, FrameError> {
    let cols: Vec<(&str, KeyColumn)> = view
        .entities
        .iter()
        .map(|e| Ok((e.join_key, frame::key_column(df, e.join_key, e.value_type)?)))
        .collect::<Result<_, FrameError>>()?;
    match cols.as_slice() {
        [(_, KeyColumn::Int64(v))] => return Ok(Keys::Int(v.clone())),
        [(_, KeyColumn::Int32(v))] => {
            return Ok(Keys::Int(v.iter().map(|&x| i64::from(x)).collect()));
        }
        _ => {}
    }
    let mut pairs: Vec<(&str, JoinKeyValue<'_>)> = Vec::with_capacity(cols.len());
    let mut out = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        pairs.clear();
        pairs.extend(cols.iter().map(|(n, c)| (*n, c.value(row))));
        let mut buf = Vec::with_capacity(16 + 24 * cols.len());
        serialize_entity_key(&mut buf, &pairs);
        out.push(buf);
    }
    Ok(Keys::Bytes(out))
}

/// Candidate rows per key, each list sorted.
fn index<K: std::hash::Hash + Eq>(
    keys: impl Iterator<Item = K>,
    event: &[i64],
    created: &[i64],
) -> HashMap<K, Candidates, foldhash::fast::RandomState> {
    let mut index: HashMap<K, Candidates, foldhash::fast::RandomState> = HashMap::default();
    for (i, key) in keys.enumerate() {
        index
            .entry(key)
            .or_default()
            .push((event[i], created[i], i as IdxSize));
    }
    for c in index.values_mut() {
        c.sort_unstable();
    }
    index
}

/// The best candidate for an entity row at `t`.
fn pick(cands: Option<&Candidates>, t: i64, ttl_us: i64, filter_created: bool) -> Option<IdxSize> {
    let cands = cands?;
    let lower = if ttl_us == 0 {
        i64::MIN
    } else {
        t.saturating_sub(ttl_us)
    };
    let end = cands.partition_point(|c| c.0 <= t);
    cands[..end]
        .iter()
        .rev()
        .take_while(|c| c.0 >= lower)
        .find(|c| !filter_created || c.1 <= t)
        .map(|c| c.2)
}

/// Candidate rows of one entity: (event, created, row), sorted ascending.
type Candidates = Vec<(i64, i64, IdxSize)>;

/// Joins an aggregated view's windows at each entity row's time, computed
/// from the events by the rule of [`crate::aggregate`]; null where the
/// entity has no event up to that time or its newest is older than the ttl.
fn join_windows(
    out: &mut DataFrame,
    entity_ts: &[i64],
    req: &ViewRequest<'_>,
    opts: Options,
) -> Result<(), FrameError> {
    let view = req.view;
    let keys = frame::entity_keys(out, view)?;
    let events = aggregate::Events::new(view, req.rows)?;
    let wanted: Vec<usize> = req
        .features
        .iter()
        .map(|name| {
            view.aggregations
                .iter()
                .position(|a| a.name == *name)
                .ok_or_else(|| FrameError::MissingColumn {
                    column: (*name).to_owned(),
                    expected: crate::definition::FeastType::String,
                    present: view
                        .aggregations
                        .iter()
                        .map(|a| a.name.to_owned())
                        .collect(),
                })
        })
        .collect::<Result<_, _>>()?;
    // Entity rows are independent: evaluated on as many threads as Polars
    // may use, each over a contiguous share, joined back in order.
    let evaluate = |range: std::ops::Range<usize>| -> Vec<Vec<Value>> {
        let mut columns: Vec<Vec<Value>> = vec![Vec::with_capacity(range.len()); wanted.len()];
        for i in range {
            match aggregate::evaluate_events(view, &events, &keys[i], entity_ts[i]) {
                Some((newest, values)) if view.is_fresh(newest, entity_ts[i]) => {
                    for (col, &a) in columns.iter_mut().zip(&wanted) {
                        col.push(values[a].clone());
                    }
                }
                _ => columns.iter_mut().for_each(|c| c.push(Value::Null)),
            }
        }
        columns
    };
    let threads = worker_threads().min(keys.len().div_ceil(10_000)).max(1);
    let share = keys.len().div_ceil(threads);
    let parts: Vec<Vec<Vec<Value>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|p| {
                let range = (p * share).min(keys.len())..((p + 1) * share).min(keys.len());
                scope.spawn(move || evaluate(range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut columns: Vec<Vec<Value>> = vec![Vec::with_capacity(keys.len()); wanted.len()];
    for part in parts {
        for (col, values) in columns.iter_mut().zip(part) {
            col.extend(values);
        }
    }
    for (values, &a) in columns.iter().zip(&wanted) {
        let agg = &view.aggregations[a];
        let name = if opts.full_feature_names {
            format!("{}__{}", view.name, agg.name)
        } else {
            agg.name.to_owned()
        };
        out.with_column(frame::values_column(&name, agg.output(), values)?)?;
    }
    Ok(())
}

/// The threads Polars may use: `POLARS_MAX_THREADS`, or the machine's cores.
fn worker_threads() -> usize {
    std::env::var("POLARS_MAX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

/// Joins the requested features onto `entity_df`.
pub fn point_in_time_join(
    entity_df: &DataFrame,
    requests: &[ViewRequest<'_>],
    opts: Options,
) -> Result<DataFrame, FrameError> {
    let entity_ts =
        frame::required_timestamps_us(entity_df, ENTITY_TIMESTAMP, "an entity row's timestamp")?;
    let mut out = entity_df.clone();
    for req in requests {
        let view = req.view;
        if view.is_aggregated() {
            join_windows(&mut out, &entity_ts, req, opts)?;
            continue;
        }
        let entity_keys = keys_of(entity_df, view)?;
        let rows = req.rows;
        let row_keys = keys_of(rows, view)?;
        let event = frame::required_timestamps_us(
            rows,
            view.event_timestamp_field(),
            "an event timestamp",
        )?;
        let created: Vec<i64> = match view.source.created_timestamp_field() {
            Some(name) if rows.column(name).is_ok() => frame::timestamps_us(rows, name)?
                .into_iter()
                .map(|c| c.unwrap_or(i64::MIN))
                .collect(),
            _ => vec![i64::MIN; rows.height()],
        };

        let ttl_us = i64::try_from(view.ttl_seconds)
            .unwrap_or(i64::MAX / 1_000_000)
            .saturating_mul(1_000_000);
        let filter = opts.filter_by_created_timestamp;
        let picks: IdxCa = match (&entity_keys, &row_keys) {
            (Keys::Int(ek), Keys::Int(rk)) => {
                let idx = index(rk.iter().copied(), &event, &created);
                ek.iter()
                    .zip(&entity_ts)
                    .map(|(k, &t)| pick(idx.get(k), t, ttl_us, filter))
                    .collect()
            }
            (Keys::Bytes(ek), Keys::Bytes(rk)) => {
                let idx = index(rk.iter().map(Vec::as_slice), &event, &created);
                ek.iter()
                    .zip(&entity_ts)
                    .map(|(k, &t)| pick(idx.get(k.as_slice()), t, ttl_us, filter))
                    .collect()
            }
            // Both sides are keyed by the same view's entities.
            _ => unreachable!("entity and feature keys of one view have the same shape"),
        };

        for name in &req.features {
            let col = rows.column(name).map_err(|_| FrameError::MissingColumn {
                column: (*name).to_owned(),
                expected: view
                    .feature(name)
                    .map_or(crate::definition::FeastType::String, |f| f.dtype),
                present: frame::names_of(rows),
            })?;
            let mut taken = col.take(&picks)?;
            let out_name = if opts.full_feature_names {
                format!("{}__{}", view.name, name)
            } else {
                (*name).to_owned()
            };
            taken.rename(PlSmallStr::from(out_name.as_str()));
            out.with_column(taken)?;
        }
    }
    Ok(out)
}
