//! Which leases a worker takes in a round: decided from one consistent
//! scan of the table and the worker's own observations, with no clock
//! compared across machines.
//!
//! A lease is *expired* when it has no owner, or when its counter has not
//! changed for a lease duration by the observing worker's clock (an owner
//! bumps it with every renewal, a third of a lease duration apart). The
//! workers are the owners of unexpired leases, and this one. Each aims at
//! its share, `ceil(active leases / workers)`: below it, a worker takes
//! expired leases; when there are none, it steals one lease a round from
//! the most loaded worker, and only from one holding at least two more
//! than itself, so two workers never pass a lease back and forth (the
//! counts end within one of each other).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::table::Lease;

/// What a worker has seen of each lease: its counter and owner, and since
/// when (by this worker's clock) they have not changed.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    seen: HashMap<String, (u64, Option<String>, Instant)>,
}

impl Observed {
    /// Records a scan taken at `now`.
    pub(crate) fn observe(&mut self, leases: &[Lease], now: Instant) {
        let mut next = HashMap::with_capacity(leases.len());
        for l in leases {
            let since = match self.seen.get(&l.shard) {
                Some((counter, owner, since)) if *counter == l.counter && *owner == l.owner => {
                    *since
                }
                _ => now,
            };
            next.insert(l.shard.clone(), (l.counter, l.owner.clone(), since));
        }
        self.seen = next;
    }

    /// Records a round without a scan (the table unreachable or
    /// throttled): what was not seen cannot be judged, so every lease's
    /// clock starts again. After an outage that hit every worker, owners
    /// renew before anyone counts their leases as expired: no lease changes
    /// hands for an outage alone.
    pub(crate) fn blind(&mut self, now: Instant) {
        for (_, _, since) in self.seen.values_mut() {
            *since = now;
        }
    }

    /// Whether `lease` is free to take at `now`: no owner, or unchanged for
    /// `duration`.
    pub(crate) fn expired(&self, lease: &Lease, now: Instant, duration: Duration) -> bool {
        lease.owner.is_none()
            || self
                .seen
                .get(&lease.shard)
                .is_some_and(|(_, _, since)| now.duration_since(*since) >= duration)
    }
}

/// A round's decision: shards to take (free, expired, or this worker's own
/// in the table but not held, after a lost reply), and at most one to
/// steal.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) take: Vec<String>,
    pub(crate) steal: Option<String>,
}

/// Decides a round for worker `me`, which holds `held`. `expired` says
/// whether a lease is free to take.
pub(crate) fn choose(
    leases: &[Lease],
    me: &str,
    held: &BTreeSet<String>,
    expired: impl Fn(&Lease) -> bool,
) -> Choice {
    let active: Vec<&Lease> = leases.iter().filter(|l| !l.is_finished()).collect();
    if active.is_empty() {
        return Choice::default();
    }
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    load.insert(me, 0);
    let mut free: Vec<&Lease> = Vec::new();
    for l in &active {
        let mine = held.contains(&l.shard);
        match l.owner.as_deref() {
            _ if mine => *load.entry(me).or_default() += 1,
            Some(o) if o == me => free.push(l),
            Some(o) if !expired(l) => *load.entry(o).or_default() += 1,
            _ => free.push(l),
        }
    }
    let target = active.len().div_ceil(load.len());
    let mine = load[me];
    if mine >= target {
        return Choice::default();
    }
    let needed = target - mine;
    if !free.is_empty() {
        // Start at a place of this worker's own, so that workers starting
        // together try different leases first.
        let offset = spread(me) % free.len();
        free.rotate_left(offset);
        return Choice {
            take: free.iter().take(needed).map(|l| l.shard.clone()).collect(),
            steal: None,
        };
    }
    let Some((victim, &most)) = load
        .iter()
        .filter(|(o, _)| **o != me)
        .max_by_key(|(o, n)| (**n, std::cmp::Reverse(**o)))
    else {
        return Choice::default();
    };
    if most < mine + 2 {
        return Choice::default();
    }
    let theirs: Vec<&Lease> = active
        .iter()
        .copied()
        .filter(|l| l.owner.as_deref() == Some(*victim))
        .collect();
    let pick = theirs[spread(me) % theirs.len()];
    Choice {
        take: Vec::new(),
        steal: Some(pick.shard.clone()),
    }
}

/// A number of the worker's own (FNV-1a of its id).
fn spread(worker: &str) -> usize {
    worker.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(shard: &str, owner: Option<&str>) -> Lease {
        Lease {
            owner: owner.map(str::to_owned),
            ..Lease::new("s", shard, Vec::new(), "TRIM_HORIZON")
        }
    }

    fn leases(owners: &[Option<&str>]) -> Vec<Lease> {
        owners
            .iter()
            .enumerate()
            .map(|(i, o)| lease(&format!("shardId-{i}"), *o))
            .collect()
    }

    fn held(leases: &[Lease], me: &str) -> BTreeSet<String> {
        leases
            .iter()
            .filter(|l| l.owner.as_deref() == Some(me))
            .map(|l| l.shard.clone())
            .collect()
    }

    /// Rounds of `workers` (in turn, each seeing the others' results)
    /// until nobody moves; returns the rounds taken and the final loads.
    fn settle(mut table: Vec<Lease>, workers: &[&str]) -> (usize, BTreeMap<String, usize>) {
        for round in 1..50 {
            let mut moved = false;
            for w in workers {
                let mine = held(&table, w);
                let c = choose(&table, w, &mine, |l| l.owner.is_none());
                for shard in c.take.iter().chain(&c.steal) {
                    let l = table.iter_mut().find(|l| &l.shard == shard).unwrap();
                    l.owner = Some((*w).to_owned());
                    moved = true;
                }
            }
            if !moved {
                let mut loads = BTreeMap::new();
                for l in &table {
                    *loads.entry(l.owner.clone().unwrap()).or_default() += 1;
                }
                return (round, loads);
            }
        }
        panic!("the leases never settle");
    }

    #[test]
    fn three_workers_share_eight_shards_within_one() {
        let (_, loads) = settle(leases(&[None; 8]), &["a", "b", "c"]);
        let counts: Vec<usize> = loads.values().copied().collect();
        assert_eq!(counts.iter().sum::<usize>(), 8);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{loads:?}"
        );
        assert_eq!(loads.len(), 3, "{loads:?}");
    }

    #[test]
    fn a_new_worker_steals_one_lease_a_round_until_balanced() {
        let table = leases(&[Some("a"); 8]);
        let c = choose(&table, "b", &BTreeSet::new(), |l| l.owner.is_none());
        assert!(c.take.is_empty());
        assert!(c.steal.is_some(), "{c:?}");
        let (rounds, loads) = settle(table, &["b", "a"]);
        assert_eq!(loads.values().copied().collect::<Vec<_>>(), [4, 4]);
        assert!(rounds <= 6, "{rounds} rounds");
    }

    #[test]
    fn balanced_within_one_means_no_stealing() {
        // 3, 3, 2: the worker with 2 is below the share of 3 but steals
        // nothing, or the leases would move forever.
        let table = leases(&[
            Some("a"),
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
            Some("b"),
            Some("c"),
            Some("c"),
        ]);
        for w in ["a", "b", "c"] {
            assert_eq!(
                choose(&table, w, &held(&table, w), |_| false),
                Choice::default(),
                "{w}"
            );
        }
    }

    #[test]
    fn expired_leases_are_taken_before_any_steal_and_finished_ones_never() {
        let mut table = leases(&[Some("a"), Some("a"), Some("dead"), Some("dead"), None]);
        table[4].checkpoint = super::super::table::SHARD_END.into();
        let c = choose(&table, "b", &BTreeSet::new(), |l| {
            l.owner.as_deref() == Some("dead")
        });
        // Workers a and b share 4 active leases: b takes the two expired.
        let mut got = c.take.clone();
        got.sort();
        assert_eq!(got, ["shardId-2", "shardId-3"]);
        assert_eq!(c.steal, None);
    }

    #[test]
    fn a_lease_left_in_this_workers_name_is_taken_back() {
        // A renewal whose reply was lost: the table names this worker, which
        // no longer holds the lease; it takes it again rather than wait for
        // it to expire.
        let table = leases(&[Some("a"), Some("b")]);
        let c = choose(&table, "a", &BTreeSet::new(), |_| false);
        assert_eq!(c.take, ["shardId-0"]);
    }

    #[test]
    fn a_lease_expires_after_its_counter_stands_still_for_a_duration() {
        let d = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut seen = Observed::default();
        let mut l = lease("shardId-0", Some("a"));
        seen.observe(std::slice::from_ref(&l), t0);
        assert!(!seen.expired(&l, t0 + d / 2, d));
        // Renewed: the clock starts again.
        l.counter += 1;
        seen.observe(std::slice::from_ref(&l), t0 + d / 2);
        assert!(!seen.expired(&l, t0 + d, d));
        assert!(seen.expired(&l, t0 + d / 2 + d, d));
        assert!(seen.expired(&lease("shardId-1", None), t0, d));
        // A round without a scan starts every clock again.
        seen.blind(t0 + d);
        assert!(!seen.expired(&l, t0 + d + d / 2, d));
        assert!(seen.expired(&l, t0 + d + d, d));
    }
}
