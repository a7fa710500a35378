//! Tiles as the online stores keep them: the part that wrote them, their
//! addresses, and the update of an entity's stored tiles by a folded batch,
//! written once here for every store.
//!
//! Each stored tile belongs to one **part**: the stream's (`ingest`, merged
//! batch by batch, exactly once with the shard checkpoint) or the
//! backfill's (`materialize`, recomputed from the batch source and
//! overwritten). A read merges both; since each event reaches exactly one
//! part (the backfill leaves out the stream's own log), a materialization
//! running beside ingestion neither counts an event twice nor loses one.
//!
//! Each part of an entity has a **marker**: the newest event time it holds.
//! Tiles of a part before [`Plan::first_live_tile`] of its marker are out of
//! every window from then on: an update never writes them, and names the
//! stored ones to delete ([`EntityUpdate::deletes`], which Redis applies
//! per entity; SQLite sweeps whole epochs of every entity instead).

use super::codec::{self, TileError};
use super::fold::{EntityTiles, Tile};
use super::state::AggState;
use super::{Plan, fold};
use crate::definition::{FeatureViewDef, Value};

/// Who wrote a stored tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// `ingest`: the stream's events, merged in batch by batch.
    Stream,
    /// `materialize`: the batch source's events, recomputed and replaced.
    Backfill,
}

impl Part {
    /// Both parts, in storage order.
    pub const ALL: [Part; 2] = [Part::Stream, Part::Backfill];

    /// The part's number in a store (a column or a field name).
    pub fn code(self) -> u8 {
        match self {
            Part::Stream => 1,
            Part::Backfill => 2,
        }
    }

    /// The part with [`code`](Self::code) `c`.
    pub fn from_code(c: i64) -> Option<Part> {
        match c {
            1 => Some(Part::Stream),
            2 => Some(Part::Backfill),
            _ => None,
        }
    }
}

/// A tile's address in a store: its hop, seconds, and its index. The marker
/// of a part is stored at hop 0, index 0, which no tile has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileAddr {
    /// The group's hop, seconds.
    pub hop_seconds: u64,
    /// The tile's index.
    pub index: i64,
}

/// Tiles folded for a store write: the part, and the entities (sorted by
/// key) with their new tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct TileBatch {
    /// Which part the tiles belong to.
    pub part: Part,
    /// The folded events.
    pub folded: fold::Folded,
}

/// What one entity's part becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityUpdate {
    /// The part's new marker (newest event time), microseconds.
    pub marker: i64,
    /// Tiles to write, encoded.
    pub puts: Vec<(TileAddr, Vec<u8>)>,
    /// Per hop: the tile indices `[from, to)` of the part to delete.
    pub deletes: Vec<(u64, i64, i64)>,
}

/// The stored tiles of an entity's part a merge of `new` reads, given the
/// part's `marker`: the addresses of `new`'s tiles that can exist. None
/// lies after the marker's tile (the marker is the part's newest event)
/// or before the live edge (such tiles are deleted and never rewritten).
pub fn touched(plan: &Plan, new: &EntityTiles, marker: Option<i64>) -> Vec<TileAddr> {
    let Some(marker) = marker else {
        return Vec::new();
    };
    let newest = marker.max(new.newest_us);
    new.tiles
        .iter()
        .filter(|t| {
            let group = &plan.groups[t.group];
            t.index <= marker.div_euclid(group.hop_us)
                && t.index >= plan.first_live_tile(t.group, newest)
        })
        .map(|t| TileAddr {
            hop_seconds: plan.groups[t.group].hop_seconds,
            index: t.index,
        })
        .collect()
}

/// The update of one entity's `part` by `new`: for the stream, the stored
/// tile merged with the new one; for the backfill, the new tile as it is.
/// `stored(addr)` gives the part's stored bytes at the addresses
/// [`touched`] names (and `None` elsewhere); `marker` is the part's stored
/// marker.
pub fn update<'s>(
    view: &FeatureViewDef,
    plan: &Plan,
    part: Part,
    new: &EntityTiles,
    marker: Option<i64>,
    mut stored: impl FnMut(TileAddr) -> Option<&'s [u8]>,
) -> Result<EntityUpdate, TileError> {
    let newest = marker.map_or(new.newest_us, |m| m.max(new.newest_us));
    let mut puts = Vec::with_capacity(new.tiles.len());
    let mut buf = Vec::with_capacity(64);
    for tile in &new.tiles {
        let group = &plan.groups[tile.group];
        if tile.index < plan.first_live_tile(tile.group, newest) {
            // Out of every window from `newest` on: never read again.
            continue;
        }
        let addr = TileAddr {
            hop_seconds: group.hop_seconds,
            index: tile.index,
        };
        let defs = plan.defs(view, tile.group);
        let mut states = tile.states.clone();
        if let Some(bytes) = stored(addr).filter(|_| part == Part::Stream) {
            let old = codec::decode(group.fingerprint, &defs, bytes)?;
            merge_states(&defs, &mut states, &old);
        }
        buf.clear();
        codec::encode(group.fingerprint, &states, &mut buf);
        puts.push((addr, buf.clone()));
    }
    let mut deletes = Vec::new();
    if let Some(old) = marker {
        for (g, group) in plan.groups.iter().enumerate() {
            // The part holds no tile before the old live edge, nor after
            // the old marker's tile.
            let from = plan.first_live_tile(g, old);
            let to = plan
                .first_live_tile(g, newest)
                .min(old.div_euclid(group.hop_us) + 1);
            if from < to {
                deletes.push((group.hop_seconds, from, to));
            }
        }
    }
    Ok(EntityUpdate {
        marker: newest,
        puts,
        deletes,
    })
}

fn merge_states(
    defs: &[&crate::definition::AggregationDef],
    into: &mut [AggState],
    old: &[AggState],
) {
    for ((state, old), def) in into.iter_mut().zip(old).zip(defs) {
        state.merge(def.function, old);
    }
}

/// The tile addresses a read at `t_us` needs for each group: the windows'
/// tiles up to the one holding `t_us`.
pub fn read_range(view: &FeatureViewDef, plan: &Plan, t_us: i64) -> Vec<(u64, i64, i64)> {
    plan.groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let from = plan
                .defs(view, g)
                .iter()
                .map(|a| super::window_start(a, t_us))
                .min()
                .unwrap_or(t_us)
                .div_euclid(group.hop_us);
            (group.hop_seconds, from, t_us.div_euclid(group.hop_us) + 1)
        })
        .collect()
}

/// An entity's stored tiles and markers as a store read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredTiles {
    /// The newest event time of each part that has one.
    pub markers: Vec<(Part, i64)>,
    /// Tiles of either part.
    pub tiles: Vec<(TileAddr, Vec<u8>)>,
}

/// The values of the view's aggregations at `t_us` from an entity's stored
/// tiles, and its newest event time; `None` for an entity with no events.
pub fn evaluate_stored(
    view: &FeatureViewDef,
    plan: &Plan,
    t_us: i64,
    stored: &StoredTiles,
) -> Result<Option<(i64, Vec<Value>)>, TileError> {
    let Some(newest) = stored.markers.iter().map(|(_, m)| *m).max() else {
        return Ok(None);
    };
    let mut tiles = Vec::with_capacity(stored.tiles.len());
    for (addr, bytes) in &stored.tiles {
        let Some(g) = plan
            .groups
            .iter()
            .position(|g| g.hop_seconds == addr.hop_seconds)
        else {
            continue;
        };
        let defs = plan.defs(view, g);
        tiles.push(Tile {
            group: g,
            index: addr.index,
            states: codec::decode(plan.groups[g].fingerprint, &defs, bytes)?,
        });
    }
    Ok(Some((
        newest,
        fold::evaluate_tiles(view, plan, t_us, &tiles),
    )))
}

/// A marker's stored bytes.
pub fn marker_bytes(us: i64) -> [u8; 8] {
    us.to_le_bytes()
}

/// A marker from its stored bytes.
pub fn read_marker(bytes: &[u8]) -> Result<i64, TileError> {
    bytes
        .try_into()
        .map(i64::from_le_bytes)
        .map_err(|_| TileError::Malformed("a marker"))
}
