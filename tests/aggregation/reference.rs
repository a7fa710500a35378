//! Random event streams, and the brute-force values of the test view's
//! aggregations, written from the README's rule alone: the value at `t`
//! counts the events with `(⌊t/h⌋ + 1)·h − W <= event time <= t`.

use feast_runtime::definition::{JoinKeyValue, Value, serialize_entity_key};
use feast_runtime::polars::prelude::*;
use feast_tests::{Backend, TempRepo};

use super::{HOUR, T0};

/// Riders 1..=RIDERS have events; RIDERS + 1 has none.
pub(crate) const RIDERS: i64 = 5;

const MINUTE: i64 = 60_000_000;

/// One ride.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) rider: i64,
    pub(crate) ts_us: i64,
    /// A multiple of 2^-10, so that every sum is exact in any order.
    pub(crate) amount: f64,
    pub(crate) qty: i64,
    pub(crate) item: String,
}

/// xorshift64*.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A stream in arrival order (most events on time, some late within the
/// day, some too late for every window, some sent twice), and history
/// events over the same span.
pub(crate) fn events(rng: &mut Rng, stream: usize, history: usize) -> (Vec<Event>, Vec<Event>) {
    let mut arrived = T0 + 24 * HOUR;
    let mut out: Vec<Event> = Vec::with_capacity(stream);
    while out.len() < stream {
        arrived += rng.below(6 * MINUTE as u64) as i64;
        let roll = rng.below(100);
        if roll < 3 && !out.is_empty() {
            // A producer's retry: the same event again.
            let i = out.len() - 1 - rng.below(out.len().min(20) as u64) as usize;
            out.push(out[i].clone());
            continue;
        }
        let lag = match roll {
            0..80 => rng.below(5 * MINUTE as u64) as i64,
            80..95 => rng.below(20 * HOUR as u64) as i64,
            _ => 26 * HOUR + rng.below(10 * HOUR as u64) as i64,
        };
        out.push(event(rng, arrived - lag));
    }
    let end = out.iter().map(|e| e.ts_us).max().unwrap_or(T0);
    let past = (0..history)
        .map(|_| {
            let ts = T0 + rng.below((end - T0) as u64) as i64;
            event(rng, ts)
        })
        .collect();
    (out, past)
}

fn event(rng: &mut Rng, ts_us: i64) -> Event {
    Event {
        rider: 1 + rng.below(RIDERS as u64) as i64,
        ts_us,
        amount: rng.below(4096) as f64 / 1024.0,
        qty: rng.below(50) as i64 - 10,
        item: format!("i{}", rng.below(5)),
    }
}

/// The windows of the test view: (window, hop), microseconds.
const SHORT: (i64, i64) = (HOUR, 10 * MINUTE);
const LONG: (i64, i64) = (24 * HOUR, HOUR);

fn window_start((window, hop): (i64, i64), t: i64) -> i64 {
    (t.div_euclid(hop) + 1) * hop - window
}

/// The positions of the stream's events older than every window at the
/// watermark (the newest event time before them).
pub(crate) fn too_late(stream: &[Event]) -> Vec<usize> {
    let mut watermark: Option<i64> = None;
    let mut out = Vec::new();
    for (i, e) in stream.iter().enumerate() {
        match watermark {
            Some(w) if e.ts_us < window_start(SHORT, w).min(window_start(LONG, w)) => out.push(i),
            Some(w) if e.ts_us <= w => {}
            _ => watermark = Some(e.ts_us),
        }
    }
    out
}

/// The view's features for `rider` at `t`, in the test's feature order;
/// `None` if the rider has no event up to `t`.
pub(crate) fn values(events: &[Event], rider: i64, t: i64) -> Option<Vec<Value>> {
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.rider == rider && e.ts_us <= t)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let within = |w: (i64, i64)| -> Vec<&Event> {
        let start = window_start(w, t);
        mine.iter().copied().filter(|e| e.ts_us >= start).collect()
    };
    let (short, long) = (within(SHORT), within(LONG));
    let amounts =
        |es: &[&Event]| -> Vec<i128> { es.iter().map(|e| (e.amount * 1024.0) as i128).collect() };
    let qtys = |es: &[&Event]| -> Vec<i128> { es.iter().map(|e| i128::from(e.qty)).collect() };
    Some(vec![
        Value::Float64(amounts(&short).iter().sum::<i128>() as f64 / 1024.0),
        Value::Int64(qtys(&long).iter().sum::<i128>() as i64),
        Value::Int64(short.len() as i64),
        mean(&amounts(&long), 1024.0),
        short
            .iter()
            .map(|e| e.qty)
            .min()
            .map_or(Value::Null, Value::Int64),
        long.iter()
            .map(|e| e.amount)
            .reduce(f64::max)
            .map_or(Value::Null, Value::Float64),
        spread(&amounts(&short), 1024.0, true, true),
        spread(&qtys(&long), 1.0, false, true),
        spread(&amounts(&long), 1024.0, true, false),
        spread(&amounts(&short), 1024.0, false, false),
        Value::StringList(newest(&short, 3, false)),
        Value::StringList(newest(&long, 3, true)),
    ])
}

fn mean(units: &[i128], scale: f64) -> Value {
    if units.is_empty() {
        return Value::Null;
    }
    let sum = units.iter().sum::<i128>() as f64 / scale;
    Value::Float64(sum / units.len() as f64)
}

/// Variance or standard deviation of `units / scale`, from the exact
/// `n·Σx² − (Σx)²`.
fn spread(units: &[i128], scale: f64, sample: bool, root: bool) -> Value {
    let n = units.len() as i128;
    if n < if sample { 2 } else { 1 } {
        return Value::Null;
    }
    let s1: i128 = units.iter().sum();
    let s2: i128 = units.iter().map(|x| x * x).sum();
    let numerator = (n * s2 - s1 * s1) as f64 / (scale * scale);
    let nf = n as f64;
    let var = numerator / if sample { nf * (nf - 1.0) } else { nf * nf };
    Value::Float64(if root { var.sqrt() } else { var })
}

/// The newest `n` items (newest first; equal times by value), distinct or not.
fn newest(events: &[&Event], n: usize, distinct: bool) -> Vec<String> {
    let mut sorted: Vec<&&Event> = events.iter().collect();
    sorted.sort_by(|a, b| b.ts_us.cmp(&a.ts_us).then(a.item.cmp(&b.item)));
    let mut out: Vec<String> = Vec::new();
    for e in sorted {
        if out.len() == n {
            break;
        }
        if !distinct || !out.contains(&e.item) {
            out.push(e.item.clone());
        }
    }
    out
}

/// A historical frame's cell as an online value.
pub(crate) fn cell(df: &DataFrame, column: &str, row: usize) -> Value {
    match df.column(column).unwrap().get(row).unwrap() {
        AnyValue::Null => Value::Null,
        AnyValue::Int64(x) => Value::Int64(x),
        AnyValue::Float64(x) => Value::Float64(x),
        AnyValue::List(items) => Value::StringList(
            items
                .str()
                .unwrap()
                .iter()
                .map(|s| s.unwrap().to_owned())
                .collect(),
        ),
        other => panic!("unexpected cell {other:?} in {column}"),
    }
}

/// The stream part's tiles of rider 1 in the store: (hop seconds, index).
pub(crate) fn stored_tiles(
    repo: &TempRepo,
    backend: Backend,
    redis: Option<&feast_tests::redis::RedisServer>,
    project: &str,
) -> Vec<(i64, i64)> {
    let mut key = Vec::new();
    serialize_entity_key(&mut key, &[("rider_id", JoinKeyValue::Int64(1))]);
    match backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(repo.path().join("data/online.db")).unwrap();
            conn.prepare(&format!(
                "SELECT hop, tile FROM feast_rs_tiles_{project}_rides WHERE entity_key = ?1 AND part = 1 AND hop > 0"
            ))
            .unwrap()
            .query_map([&key], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
        }
        Backend::Redis => {
            let mut c = redis.expect("a Redis server").client();
            key.extend_from_slice(project.as_bytes());
            let fields: Vec<Vec<u8>> = redis::cmd("HKEYS").arg(&key).query(&mut c).unwrap();
            fields
                .iter()
                .filter_map(|f| {
                    let f = std::str::from_utf8(f).ok()?;
                    let rest = f.strip_prefix("_agg:rides:1:")?;
                    let (hop, index) = rest.split_once(':')?;
                    Some((hop.parse().ok()?, index.parse().ok()?))
                })
                .collect()
        }
    }
}
