//! Windowed aggregations: tiles of intermediate values, and the one rule
//! for which events a window counts.
//!
//! **The rule** ([`window_start`]): the value of an aggregation with window
//! `W` and hop `h` at time `t` counts the events whose event time lies in
//! `[(⌊t/h⌋ + 1)·h − W, t]`: the tile holding `t`, up to `t`, and the
//! `W/h − 1` whole tiles before it. The window's head is exact; its tail
//! moves in steps of the hop, so it covers between `W − h` and `W` (as in
//! Chronon and Tecton). With `h = W` (Feast's default slide) the window is
//! the current tumbling window so far.
//!
//! **Tiles.** The events of an entity are kept in tiles of the hop (tile
//! `k` holds event times in `[k·h, (k+1)·h)`), one state per aggregation
//! ([`state::AggState`]). The stream and the backfill [`fold`] events into
//! tiles; an online read merges the tiles in the window ([`evaluate_tiles`]);
//! historical retrieval folds the events in the window directly
//! ([`evaluate_events`]). Every state merges exactly and in any order, so
//! the three give the same value, bit for bit.
//!
//! One difference remains by construction: online, the tile holding `t`
//! counts every event already in it, so an event stamped later than the
//! read (a clock ahead of the reader's) counts online from its arrival,
//! offline only from its event time.

pub mod codec;
pub mod exact;
mod fold;
pub mod state;
pub mod stored;
#[cfg(test)]
mod tests;

pub use codec::TileError;
pub use fold::{EntityTiles, Events, Folded, Tile, evaluate_events, evaluate_tiles, fold};
pub use state::{AggState, Scalar};

use std::sync::{Arc, Mutex};

use crate::definition::{AggregationDef, FeatureViewDef};

/// The first microsecond of `agg`'s window at `t_us`: the window counts
/// events with `window_start(agg, t) <= event time <= t`.
pub fn window_start(agg: &AggregationDef, t_us: i64) -> i64 {
    edge(t_us, agg.window_us(), agg.hop_us())
}

/// The rule itself: `(⌊t/h⌋ + 1)·h − W`.
fn edge(t_us: i64, window_us: i64, hop_us: i64) -> i64 {
    (t_us.div_euclid(hop_us) + 1)
        .saturating_mul(hop_us)
        .saturating_sub(window_us)
}

/// Whether `agg`'s window at `t_us` counts an event of time `event_us`.
pub fn counts(agg: &AggregationDef, event_us: i64, t_us: i64) -> bool {
    window_start(agg, t_us) <= event_us && event_us <= t_us
}

/// The aggregations of a view that share a hop, and so share tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The hop, seconds.
    pub hop_seconds: u64,
    /// The hop, microseconds.
    pub hop_us: i64,
    /// The view's aggregations with this hop (indices into
    /// `view.aggregations`), in declaration order.
    pub aggs: Vec<usize>,
    /// The longest of their windows, microseconds.
    pub longest_us: i64,
    /// Names these aggregations in stored tiles ([`codec::fingerprint`]).
    pub fingerprint: u64,
}

/// How a view's aggregations are tiled: one group per distinct hop.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// By hop, shortest first.
    pub groups: Vec<Group>,
}

impl Plan {
    /// The plan of `view` (empty for a plain view), computed once per view
    /// and shared: reads and batches ask for it on every call.
    pub fn of(view: &FeatureViewDef) -> Arc<Plan> {
        type Known = Vec<((usize, usize, &'static str), Arc<Plan>)>;
        static PLANS: Mutex<Known> = Mutex::new(Vec::new());
        // Definitions are statics: their address and their aggregations'
        // name them.
        let key = (
            std::ptr::from_ref(view) as usize,
            view.aggregations.as_ptr() as usize,
            view.name,
        );
        let mut plans = PLANS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, plan)) = plans.iter().find(|(k, _)| *k == key) {
            return plan.clone();
        }
        let plan = Arc::new(Plan::compute(view));
        plans.push((key, plan.clone()));
        plan
    }

    fn compute(view: &FeatureViewDef) -> Plan {
        let mut hops: Vec<u64> = view.aggregations.iter().map(|a| a.slide_seconds).collect();
        hops.sort_unstable();
        hops.dedup();
        let groups = hops
            .into_iter()
            .map(|hop_seconds| {
                let aggs: Vec<usize> = (0..view.aggregations.len())
                    .filter(|&i| view.aggregations[i].slide_seconds == hop_seconds)
                    .collect();
                let defs = aggs.iter().map(|&i| &view.aggregations[i]);
                Group {
                    hop_seconds,
                    hop_us: view.aggregations[aggs[0]].hop_us(),
                    longest_us: defs
                        .clone()
                        .map(AggregationDef::window_us)
                        .max()
                        .unwrap_or(0),
                    fingerprint: codec::fingerprint(defs),
                    aggs,
                }
            })
            .collect();
        Plan { groups }
    }

    /// The aggregations of group `g`.
    pub fn defs<'v>(&self, view: &'v FeatureViewDef, g: usize) -> Vec<&'v AggregationDef> {
        self.groups[g]
            .aggs
            .iter()
            .map(|&i| &view.aggregations[i])
            .collect()
    }

    /// The first tile of group `g` that an entity whose newest event is at
    /// `newest_us` can still need: tiles before it are out of every window
    /// at any time from `newest_us` on, and may be deleted.
    pub fn first_live_tile(&self, g: usize, newest_us: i64) -> i64 {
        let group = &self.groups[g];
        edge(newest_us, group.longest_us, group.hop_us).div_euclid(group.hop_us)
    }
}
