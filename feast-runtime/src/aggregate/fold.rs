//! Folding events into tiles, and reading windows from tiles or events.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use polars::prelude::*;

use super::state::{AggState, Scalar};
use super::{Plan, counts, window_start};
use crate::definition::{FeastType, FeatureViewDef, FieldDef, Value};
use crate::transform::frame::{self, FrameError};

/// The states of one tile: tile `index` of group `group` (events with times
/// in `[index·hop, (index+1)·hop)`), one state per aggregation of the group.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The group (hop) of the view's plan.
    pub group: usize,
    /// The tile's index: its first microsecond over the hop.
    pub index: i64,
    /// One state per aggregation of the group.
    pub states: Vec<AggState>,
}

/// One entity's tiles from a batch of events.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityTiles {
    /// The serialized entity key.
    pub key: Vec<u8>,
    /// The newest event time among the entity's events, microseconds.
    pub newest_us: i64,
    /// Sorted by group, then index.
    pub tiles: Vec<Tile>,
}

/// A batch of events folded into tiles, by entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    /// Sorted by key.
    pub entities: Vec<EntityTiles>,
}

/// The columns the view's aggregations read, as scalars (null values are
/// skipped by every function), one vector per aggregation.
fn aggregated_columns(
    view: &FeatureViewDef,
    df: &DataFrame,
) -> Result<Vec<Rc<Vec<Option<Scalar>>>>, FrameError> {
    let mut read: HashMap<&str, Rc<Vec<Option<Scalar>>>> = HashMap::new();
    view.aggregations
        .iter()
        .map(|a| {
            if let Some(col) = read.get(a.column) {
                return Ok(col.clone());
            }
            let field = FieldDef {
                name: a.column,
                dtype: a.input,
            };
            let col = Rc::new(scalars(&frame::typed_column(df, &field)?, a.input)?);
            read.insert(a.column, col.clone());
            Ok(col)
        })
        .collect()
}

fn scalars(col: &Column, ty: FeastType) -> Result<Vec<Option<Scalar>>, FrameError> {
    fn map<T>(it: impl Iterator<Item = Option<T>>, f: impl Fn(T) -> Scalar) -> Vec<Option<Scalar>> {
        it.map(|v| v.map(&f)).collect()
    }
    Ok(match ty {
        FeastType::Int32 => map(col.i32()?.iter(), |v| Scalar::Int(i64::from(v))),
        FeastType::Int64 => map(col.i64()?.iter(), Scalar::Int),
        FeastType::Float32 => map(col.f32()?.iter(), |v| Scalar::Float(f64::from(v))),
        FeastType::Float64 => map(col.f64()?.iter(), Scalar::Float),
        FeastType::String => map(col.str()?.iter(), |s| Scalar::Str(s.to_owned())),
        FeastType::Bytes => map(col.binary()?.iter(), |b| Scalar::Bytes(b.to_vec())),
        FeastType::Bool => map(col.bool()?.iter(), Scalar::Bool),
        FeastType::UnixTimestamp => map(col.datetime()?.physical().iter(), Scalar::Int),
        FeastType::Array(_) => vec![None; col.len()],
    })
}

/// Folds the rows of a view's output frame into tiles: for each entity and
/// each hop, one tile per hop-sized span of event time that has events.
pub fn fold(view: &FeatureViewDef, plan: &Plan, df: &DataFrame) -> Result<Folded, FrameError> {
    let keys = frame::entity_keys(df, view)?;
    let ts = frame::required_timestamps_us(df, view.event_timestamp_field(), "an event timestamp")?;
    let columns = aggregated_columns(view, df)?;

    // Entities in key order.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
    let mut slot_of_row = vec![0u32; keys.len()];
    let mut entities: Vec<EntityTiles> = Vec::new();
    for &row in &order {
        match entities.last_mut() {
            Some(e) if e.key == keys[row] => e.newest_us = e.newest_us.max(ts[row]),
            _ => entities.push(EntityTiles {
                key: keys[row].clone(),
                newest_us: ts[row],
                tiles: Vec::new(),
            }),
        }
        slot_of_row[row] = (entities.len() - 1) as u32;
    }

    for (g, group) in plan.groups.iter().enumerate() {
        let empty: Vec<AggState> = group
            .aggs
            .iter()
            .map(|&a| AggState::empty(&view.aggregations[a]))
            .collect();
        let mut at: HashMap<(u32, i64), usize, foldhash::fast::RandomState> = HashMap::default();
        let mut tiles: Vec<(u32, Tile)> = Vec::new();
        let mut tile_of_row = Vec::with_capacity(keys.len());
        for row in 0..keys.len() {
            let slot = slot_of_row[row];
            let index = ts[row].div_euclid(group.hop_us);
            let pos = *at.entry((slot, index)).or_insert_with(|| {
                tiles.push((
                    slot,
                    Tile {
                        group: g,
                        index,
                        states: empty.clone(),
                    },
                ));
                tiles.len() - 1
            });
            tile_of_row.push(pos);
        }
        for (p, &a) in group.aggs.iter().enumerate() {
            let function = view.aggregations[a].function;
            for (row, value) in columns[a].iter().enumerate() {
                if let Some(v) = value {
                    tiles[tile_of_row[row]].1.states[p].add(function, ts[row], v.clone());
                }
            }
        }
        for (slot, tile) in tiles {
            entities[slot as usize].tiles.push(tile);
        }
    }
    for e in &mut entities {
        e.tiles.sort_unstable_by_key(|t| (t.group, t.index));
    }
    Ok(Folded { entities })
}

/// The values of the view's aggregations at `t_us` from an entity's tiles
/// (several tiles of one index, such as the stream's and the backfill's,
/// all count): each aggregation merges the tiles of its window.
pub fn evaluate_tiles<'a>(
    view: &FeatureViewDef,
    plan: &Plan,
    t_us: i64,
    tiles: impl IntoIterator<Item = &'a Tile>,
) -> Vec<Value> {
    let mut acc: Vec<AggState> = view.aggregations.iter().map(AggState::empty).collect();
    for tile in tiles {
        let Some(group) = plan.groups.get(tile.group) else {
            continue;
        };
        let start = tile.index.saturating_mul(group.hop_us);
        for (p, &a) in group.aggs.iter().enumerate() {
            let agg = &view.aggregations[a];
            // A tile counts when its first microsecond is in the window:
            // tiles are aligned to the hop, and so is the window's tail.
            if let Some(s) = tile.states.get(p).filter(|_| counts(agg, start, t_us)) {
                acc[a].merge(agg.function, s);
            }
        }
    }
    acc.iter()
        .zip(view.aggregations)
        .map(|(s, a)| s.finish(a))
        .collect()
}

/// The events of a view's output frame indexed by entity and time, for
/// evaluating windows at arbitrary times (historical retrieval).
#[derive(Debug)]
pub struct Events {
    by_key: HashMap<Vec<u8>, Range<usize>, foldhash::fast::RandomState>,
    /// Event times, grouped by entity, ascending within each.
    ts: Vec<i64>,
    /// Per aggregation, the values in the same order (aggregations of one
    /// column share one vector).
    values: Vec<Arc<Vec<Option<Scalar>>>>,
}

impl Events {
    /// The entity keys with events, in no set order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.by_key.keys().map(Vec::as_slice)
    }

    /// Indexes the rows of `df`, the view function's output.
    pub fn new(view: &FeatureViewDef, df: &DataFrame) -> Result<Events, FrameError> {
        let keys = frame::entity_keys(df, view)?;
        let ts =
            frame::required_timestamps_us(df, view.event_timestamp_field(), "an event timestamp")?;
        let columns = aggregated_columns(view, df)?;
        // Rows by entity (hashing, not sorting, the keys), then by time.
        let mut rows_of: HashMap<&[u8], Vec<usize>, foldhash::fast::RandomState> =
            HashMap::default();
        for (row, key) in keys.iter().enumerate() {
            rows_of.entry(key.as_slice()).or_default().push(row);
        }
        let mut order: Vec<usize> = Vec::with_capacity(keys.len());
        let mut by_key: HashMap<Vec<u8>, Range<usize>, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(rows_of.len(), Default::default());
        for (key, mut rows) in rows_of {
            rows.sort_by_key(|&r| ts[r]);
            let start = order.len();
            order.extend(rows);
            by_key.insert(key.to_vec(), start..order.len());
        }
        // Each distinct column reordered once.
        type Column = Vec<Option<Scalar>>;
        let mut reordered: Vec<(*const Column, Arc<Column>)> = Vec::new();
        let values = columns
            .iter()
            .map(|c| {
                let ptr = Rc::as_ptr(c);
                if let Some((_, done)) = reordered.iter().find(|(p, _)| *p == ptr) {
                    return done.clone();
                }
                let col = Arc::new(order.iter().map(|&r| c[r].clone()).collect::<Vec<_>>());
                reordered.push((ptr, col.clone()));
                col
            })
            .collect();
        Ok(Events {
            by_key,
            ts: order.iter().map(|&r| ts[r]).collect(),
            values,
        })
    }
}

/// The values of the view's aggregations for entity `key` at `t_us`, and
/// the time of its newest event up to `t_us`; `None` if it has none then.
pub fn evaluate_events(
    view: &FeatureViewDef,
    events: &Events,
    key: &[u8],
    t_us: i64,
) -> Option<(i64, Vec<Value>)> {
    let range = events.by_key.get(key)?;
    let ts = &events.ts[range.clone()];
    let end = ts.partition_point(|&x| x <= t_us);
    if end == 0 {
        return None;
    }
    let newest = ts[end - 1];
    let values = view
        .aggregations
        .iter()
        .enumerate()
        .map(|(a, agg)| {
            let begin = ts[..end].partition_point(|&x| x < window_start(agg, t_us));
            let mut state = AggState::empty(agg);
            let values = &events.values[a][range.start + begin..range.start + end];
            for (&t, v) in ts[begin..end].iter().zip(values) {
                if let Some(v) = v {
                    state.add(agg.function, t, v.clone());
                }
            }
            state.finish(agg)
        })
        .collect();
    Some((newest, values))
}
