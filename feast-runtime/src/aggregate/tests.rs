//! The property the module exists for: over random event streams with late
//! and duplicated events, the value read from tiles merged in any grouping
//! equals the value computed from the events, and both equal a brute-force
//! reference written independently of the states.

use polars::prelude::*;

use super::state::Scalar;
use super::*;
use crate::definition::fixtures::{self, field};
use crate::definition::{AggFunction, DataSourceDef, FeastType, Value};

const H: u64 = 3600;

const fn agg(
    name: &'static str,
    column: &'static str,
    input: FeastType,
    function: AggFunction,
    window_seconds: u64,
    slide_seconds: u64,
) -> AggregationDef {
    AggregationDef {
        name,
        column,
        input,
        function,
        window_seconds,
        slide_seconds,
    }
}

use AggFunction::*;
use FeastType::{Float64 as F64, Int64 as I64, String as Str};

static AGGS: &[AggregationDef] = &[
    agg("count_n_1h", "n", I64, Count, H, 600),
    agg("sum_n_1h", "n", I64, Sum, H, 600),
    agg("sum_x_1h", "x", F64, Sum, H, 600),
    agg("mean_n_2h", "n", I64, Mean, 2 * H, H),
    agg("mean_x_2h", "x", F64, Mean, 2 * H, H),
    agg("min_x_1h", "x", F64, Min, H, 600),
    agg("max_n_2h", "n", I64, Max, 2 * H, H),
    agg("std_x_2h", "x", F64, Std, 2 * H, H),
    agg("std_pop_x_1h", "x", F64, StdPop, H, 600),
    agg("var_n_1h", "n", I64, Var, H, 600),
    agg("var_pop_x_2h", "x", F64, VarPop, 2 * H, H),
    agg("last_s_30m", "s", Str, Last(3), 1800, 1800),
    agg("last_distinct_s_2h", "s", Str, LastDistinct(3), 2 * H, 600),
    agg("last_x_1h", "x", F64, Last(2), H, 600),
];

static SOURCE: DataSourceDef = fixtures::file_source(
    "events",
    "events",
    &[
        field("driver_id", FeastType::Int64),
        field("event_timestamp", FeastType::UnixTimestamp),
        field("n", FeastType::Int64),
        field("x", FeastType::Float64),
        field("s", FeastType::String),
    ],
);

static VIEW: crate::definition::FeatureViewDef = crate::definition::FeatureViewDef {
    aggregations: AGGS,
    output: &[
        field("n", FeastType::Int64),
        field("x", FeastType::Float64),
        field("s", FeastType::String),
    ],
    ..fixtures::batch_view("windows", &SOURCE, &[], 0)
};

/// 2025-01-01T00:00:00Z.
const T0: i64 = 1_735_689_600_000_000;
/// Values of `x` are multiples of this, so the reference can sum exactly.
const UNIT: f64 = 1.0 / (1u64 << 20) as f64;

#[derive(Debug, Clone)]
struct Event {
    driver: i64,
    ts: i64,
    n: Option<i64>,
    /// `x` in units of [`UNIT`].
    k: Option<i64>,
    s: Option<String>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

/// Events over three hours for four drivers, arriving out of order: some
/// late by up to an hour, some sent twice, some values null, some times
/// equal, a few large values among small ones.
fn stream(rng: &mut Rng, len: usize) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for i in 0..len {
        if i > 0 && rng.below(10) == 0 {
            let dup = out[rng.below(out.len() as u64) as usize].clone();
            out.push(dup);
            continue;
        }
        let ts = T0
            + rng.below(3 * 3_600_000_000) / 60_000_000 * 60_000_000
            + if rng.below(3) == 0 {
                0
            } else {
                rng.below(60_000_000)
            };
        let big = rng.below(20) == 0;
        out.push(Event {
            driver: 1 + rng.below(4),
            ts,
            n: (rng.below(8) != 0).then(|| rng.below(2000) - 1000),
            k: (rng.below(8) != 0).then(|| {
                let k = rng.below(1 << 30) - (1 << 29);
                if big { k << 20 } else { k }
            }),
            s: (rng.below(6) != 0).then(|| format!("v{}", rng.below(5))),
        });
    }
    out
}

fn frame(events: &[Event]) -> DataFrame {
    let ts = FeastType::UnixTimestamp.dtype();
    DataFrame::new(
        events.len(),
        vec![
            Column::new(
                "driver_id".into(),
                events.iter().map(|e| e.driver).collect::<Vec<_>>(),
            ),
            Column::new(
                "event_timestamp".into(),
                events.iter().map(|e| e.ts).collect::<Vec<_>>(),
            )
            .cast(&ts)
            .unwrap(),
            Column::new("n".into(), events.iter().map(|e| e.n).collect::<Vec<_>>()),
            Column::new(
                "x".into(),
                events
                    .iter()
                    .map(|e| e.k.map(|k| k as f64 * UNIT))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "s".into(),
                events.iter().map(|e| e.s.clone()).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

fn key(driver: i64) -> Vec<u8> {
    let mut out = Vec::new();
    crate::definition::serialize_entity_key(
        &mut out,
        &[("driver_id", crate::definition::JoinKeyValue::Int64(driver))],
    );
    out
}

/// The reference: each aggregation computed from the events it counts,
/// with integer arithmetic where the implementation uses exact sums.
fn brute_force(events: &[Event], driver: i64, t: i64) -> Vec<Value> {
    AGGS.iter()
        .map(|a| {
            let (w, h) = (
                a.window_seconds as i64 * 1_000_000,
                a.slide_seconds as i64 * 1_000_000,
            );
            let start = (t.div_euclid(h) + 1) * h - w;
            let mine: Vec<&Event> = events
                .iter()
                .filter(|e| e.driver == driver && e.ts >= start && e.ts <= t)
                .collect();
            let ints: Vec<i64> = match a.column {
                "n" => mine.iter().filter_map(|e| e.n).collect(),
                _ => mine.iter().filter_map(|e| e.k).collect(),
            };
            let scale = |v: i128| {
                if a.column == "n" {
                    v as f64
                } else {
                    v as f64 * UNIT
                }
            };
            let n = ints.len() as i128;
            let s1: i128 = ints.iter().map(|&v| i128::from(v)).sum();
            let s2: i128 = ints.iter().map(|&v| i128::from(v) * i128::from(v)).sum();
            // n * S2 - S1^2, in units of UNIT^2 for x.
            let spread = || {
                let num = n * s2 - s1 * s1;
                if a.column == "n" {
                    num as f64
                } else {
                    num as f64 * UNIT * UNIT
                }
            };
            match a.function {
                Count => Value::Int64(ints.len() as i64),
                Sum if a.column == "n" => Value::Int64(s1 as i64),
                Sum => Value::Float64(scale(s1)),
                Mean if n == 0 => Value::Null,
                Mean => Value::Float64(scale(s1) / n as f64),
                Min | Max if n == 0 => Value::Null,
                Min | Max => {
                    let v = if a.function == Min {
                        ints.iter().min()
                    } else {
                        ints.iter().max()
                    };
                    let v = *v.unwrap();
                    if a.column == "n" {
                        Value::Int64(v)
                    } else {
                        Value::Float64(scale(v.into()))
                    }
                }
                Std | Var if n < 2 => Value::Null,
                StdPop | VarPop if n < 1 => Value::Null,
                Std => Value::Float64((spread() / (n * (n - 1)) as f64).sqrt()),
                Var => Value::Float64(spread() / (n * (n - 1)) as f64),
                StdPop => Value::Float64((spread() / (n * n) as f64).sqrt()),
                VarPop => Value::Float64(spread() / (n * n) as f64),
                Last(m) | LastDistinct(m) => {
                    let distinct = matches!(a.function, LastDistinct(_));
                    let mut items: Vec<(i64, Scalar)> = mine
                        .iter()
                        .filter_map(|e| match a.column {
                            "s" => e.s.clone().map(|s| (e.ts, Scalar::Str(s))),
                            _ => e.k.map(|k| (e.ts, Scalar::Float(k as f64 * UNIT))),
                        })
                        .collect();
                    items.sort_by(|p, q| q.0.cmp(&p.0).then(p.1.total_cmp(&q.1)));
                    if distinct {
                        let mut seen: Vec<Scalar> = Vec::new();
                        items.retain(|(_, v)| {
                            let new = !seen.iter().any(|s| s.total_cmp(v).is_eq());
                            if new {
                                seen.push(v.clone());
                            }
                            new
                        });
                    }
                    items.truncate(usize::from(m));
                    match a.column {
                        "s" => Value::StringList(
                            items
                                .into_iter()
                                .map(|(_, v)| match v {
                                    Scalar::Str(s) => s,
                                    _ => unreachable!(),
                                })
                                .collect(),
                        ),
                        _ => Value::Float64List(
                            items
                                .into_iter()
                                .map(|(_, v)| match v {
                                    Scalar::Float(x) => x,
                                    _ => unreachable!(),
                                })
                                .collect(),
                        ),
                    }
                }
            }
        })
        .collect()
}

fn same(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Value::Float64(x), Value::Float64(y)) => x.to_bits() == y.to_bits(),
            _ => x == y,
        })
}

#[test]
fn tiles_merged_in_any_grouping_give_the_events_values_and_the_reference() {
    let plan = Plan::of(&VIEW);
    assert_eq!(plan.groups.len(), 3, "hops 600 s, 1800 s and 3600 s");
    for seed in 0..40 {
        let mut rng = Rng(seed);
        let n = 60 + rng.below(400) as usize;
        let events = stream(&mut rng, n);

        // The stream: batches of random sizes in arrival order; each batch
        // is folded and merged into what a store holds, either as the
        // stream's tiles or as the backfill's.
        let mut stored: Vec<(Vec<u8>, Tile)> = Vec::new();
        let mut i = 0;
        while i < events.len() {
            let len = 1 + rng.below(40) as usize;
            let batch = &events[i..(i + len).min(events.len())];
            i += len;
            let folded = fold(&VIEW, &plan, &frame(batch)).unwrap();
            for e in folded.entities {
                for tile in e.tiles {
                    let same_tile = stored.iter_mut().find(|(k, t)| {
                        *k == e.key && t.group == tile.group && t.index == tile.index
                    });
                    match same_tile {
                        // Half the time a tile is kept apart, as the two
                        // parts of a stored tile are.
                        Some((_, t)) if rng.below(2) == 0 => {
                            for (p, &a) in plan.groups[t.group].aggs.iter().enumerate() {
                                t.states[p].merge(VIEW.aggregations[a].function, &tile.states[p]);
                            }
                        }
                        _ => stored.push((e.key.clone(), tile)),
                    }
                }
            }
        }

        let all = Events::new(&VIEW, &frame(&events)).unwrap();
        let last = events.iter().map(|e| e.ts).max().unwrap();
        for driver in 1..=4 {
            let key = key(driver);
            // Online: read at or after the last event.
            for t in [last, last + 1_000_000, last + 1_800_000_000] {
                let tiles = stored.iter().filter(|(k, _)| *k == key).map(|(_, t)| t);
                let online = evaluate_tiles(&VIEW, &plan, t, tiles);
                let offline = evaluate_events(&VIEW, &all, &key, t).map(|(_, v)| v);
                let reference = brute_force(&events, driver, t);
                assert!(
                    same(&online, &reference),
                    "seed {seed}, driver {driver}, t {t}: online\n{online:?}\nreference\n{reference:?}"
                );
                if let Some(offline) = offline {
                    assert!(same(&offline, &reference), "seed {seed}: offline differs");
                }
            }
            // Offline at random past times.
            for _ in 0..20 {
                let t = T0 + rng.below(3 * 3_600_000_000);
                let reference = brute_force(&events, driver, t);
                match evaluate_events(&VIEW, &all, &key, t) {
                    Some((newest, offline)) => {
                        assert!(
                            same(&offline, &reference),
                            "seed {seed}, t {t}: offline\n{offline:?}\nreference\n{reference:?}"
                        );
                        assert_eq!(
                            newest,
                            events
                                .iter()
                                .filter(|e| e.driver == driver && e.ts <= t)
                                .map(|e| e.ts)
                                .max()
                                .unwrap()
                        );
                    }
                    None => assert!(!events.iter().any(|e| e.driver == driver && e.ts <= t)),
                }
            }
        }
    }
}

#[test]
fn the_window_counts_the_head_tile_and_whole_tiles_back_to_the_hop() {
    let a = agg("w", "n", I64, Count, H, 600);
    // At 10:17:00 a 1 h window with 10 min hops starts at 09:20:00.
    let t = T0 + (10 * 60 + 17) * 60_000_000;
    assert_eq!(window_start(&a, t), T0 + (9 * 60 + 20) * 60_000_000);
    assert!(counts(&a, T0 + (9 * 60 + 20) * 60_000_000, t));
    assert!(!counts(&a, T0 + (9 * 60 + 20) * 60_000_000 - 1, t));
    assert!(counts(&a, t, t));
    assert!(!counts(&a, t + 1, t));
    // On a hop boundary the window is exactly W long.
    let b = T0 + 10 * 3_600_000_000;
    assert_eq!(window_start(&a, b), b - 3_600_000_000 + 600_000_000);
    // Tumbling: the current window so far.
    let tumbling = agg("w", "n", I64, Count, H, H);
    assert_eq!(window_start(&tumbling, t), T0 + 10 * 3_600_000_000);
}

#[test]
fn empty_windows_give_zero_counts_and_sums_null_means_and_empty_lists() {
    let state_of = |a: &AggregationDef| AggState::empty(a).finish(a);
    let values: Vec<Value> = AGGS.iter().map(state_of).collect();
    assert_eq!(values[0], Value::Int64(0));
    assert_eq!(values[1], Value::Int64(0));
    assert_eq!(values[2], Value::Float64(0.0));
    assert!(
        values[3..11].iter().all(|v| *v == Value::Null),
        "{values:?}"
    );
    assert_eq!(values[11], Value::StringList(vec![]));
    assert_eq!(values[13], Value::Float64List(vec![]));
}

#[test]
fn tiles_round_trip_through_their_bytes_and_refuse_another_definition() {
    let plan = Plan::of(&VIEW);
    let mut rng = Rng(7);
    let folded = fold(&VIEW, &plan, &frame(&stream(&mut rng, 200))).unwrap();
    for e in &folded.entities {
        for tile in &e.tiles {
            let group = &plan.groups[tile.group];
            let mut bytes = Vec::new();
            codec::encode(group.fingerprint, &tile.states, &mut bytes);
            let defs = plan.defs(&VIEW, tile.group);
            assert_eq!(
                codec::decode(group.fingerprint, &defs, &bytes).unwrap(),
                tile.states
            );
            assert_eq!(
                codec::decode(group.fingerprint ^ 1, &defs, &bytes),
                Err(TileError::OtherDefinition)
            );
            assert!(codec::decode(group.fingerprint, &defs, &bytes[..bytes.len() - 1]).is_err());
        }
    }
}

#[test]
fn retention_keeps_every_tile_a_window_can_still_need() {
    let plan = Plan::of(&VIEW);
    let newest = T0 + 5 * 3_600_000_000 + 123;
    for (g, group) in plan.groups.iter().enumerate() {
        let first = plan.first_live_tile(g, newest);
        for &a in &group.aggs {
            let agg = &VIEW.aggregations[a];
            // At any time from the newest event on, the window starts at
            // or after the first live tile.
            for later in [newest, newest + 1, newest + agg.window_us()] {
                assert!(window_start(agg, later) >= first * group.hop_us);
            }
        }
        // ...and the tile before it is out of the longest window at `newest`.
        let longest = group
            .aggs
            .iter()
            .map(|&a| &VIEW.aggregations[a])
            .max_by_key(|a| a.window_seconds)
            .unwrap();
        assert_eq!(window_start(longest, newest), first * group.hop_us);
    }
}
