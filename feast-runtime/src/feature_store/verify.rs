//! `verify`: the online store checked against the offline store.
//!
//! For each online view, the newest feature row per entity is recomputed from
//! the offline store through the view's function (what materialization would
//! write: newest event time, then created time, then the later row) and
//! compared with what the online store holds: the event time, and every
//! feature value byte for byte as `feast.types.Value`. Entities whose newest
//! row is older than the view's ttl are left out (the online store serves
//! them as `OUTSIDE_MAX_AGE`, whatever it holds). Online entities that no
//! offline row gives are reported too: a value served that training data
//! would never see.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::definition::FeatureViewDef;
use crate::definition::{Value, entity_key_text};
use crate::feature_store::{Error, FeatureStore, Result};
use crate::online_store::OnlineBatch;
use crate::online_store::read::stored_rows;

/// What `verify` found for one view.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewReport {
    /// The view.
    pub view: &'static str,
    /// Entities compared: fresh offline rows and fresh online-only rows.
    pub entities: usize,
    /// Entities whose newest offline row is older than the view's ttl.
    pub expired: usize,
    /// Every difference, by entity.
    pub differences: Vec<Difference>,
}

impl ViewReport {
    /// How many entities have at least one difference.
    pub fn entities_differing(&self) -> usize {
        let mut n = 0;
        let mut last: Option<&str> = None;
        for d in &self.differences {
            if last != Some(d.entity.as_str()) {
                n += 1;
                last = Some(&d.entity);
            }
        }
        n
    }
}

/// One entity whose online value is not what the offline store gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// `join_key=value[,...]`.
    pub entity: String,
    /// How it differs.
    pub kind: DifferenceKind,
}

#[derive(Debug, Clone, PartialEq)]
/// How an entity differs.
pub enum DifferenceKind {
    /// The offline store has a row, the online store none.
    NotOnline {
        /// The newest offline event, microseconds.
        offline_event_us: i64,
    },
    /// The online store has a row that no offline row gives.
    NotOffline {
        /// The online event, microseconds.
        online_event_us: i64,
    },
    /// Both have the entity at different event times.
    EventTime {
        /// Offline, microseconds.
        offline_us: i64,
        /// Online, microseconds.
        online_us: i64,
    },
    /// Same event time, another value.
    Value {
        /// The feature.
        feature: &'static str,
        /// Its offline value.
        offline: Value,
        /// `None`: the online store has no value for the feature.
        online: Option<Value>,
    },
}

fn time(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| us.to_string())
}

fn value(v: &Value) -> String {
    super::json::value_json(v).to_string()
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.entity;
        match &self.kind {
            DifferenceKind::NotOnline { offline_event_us } => write!(
                f,
                "{e}: offline has an event at {}, online has nothing (not materialized or ingested yet?)",
                time(*offline_event_us)
            ),
            DifferenceKind::NotOffline { online_event_us } => write!(
                f,
                "{e}: online has an event at {}, offline has none (written online only?)",
                time(*online_event_us)
            ),
            DifferenceKind::EventTime {
                offline_us,
                online_us,
            } => write!(
                f,
                "{e}: newest event offline at {}, online at {}",
                time(*offline_us),
                time(*online_us)
            ),
            DifferenceKind::Value {
                feature,
                offline,
                online,
            } => write!(
                f,
                "{e}: `{feature}` is {} offline, {} online",
                value(offline),
                online.as_ref().map_or_else(|| "missing".to_owned(), value)
            ),
        }
    }
}

/// Whether an online event time is the offline one, at the precision the
/// online store keeps (whole seconds on SQLite, as Feast's layout has it).
fn same_time(offline_us: i64, online_us: i64) -> bool {
    if online_us.rem_euclid(1_000_000) == 0 {
        offline_us.div_euclid(1_000_000) == online_us.div_euclid(1_000_000)
    } else {
        offline_us == online_us
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

fn entity(key: &[u8]) -> String {
    entity_key_text(key).unwrap_or_else(|| format!("{key:02x?}"))
}

/// An aggregated view's windows at `now_us` from its offline rows, one row
/// per entity (sorted by key) with its newest event time, as a read of the
/// online store gives them.
fn windows_now(
    view: &FeatureViewDef,
    rows: &polars::prelude::DataFrame,
    now_us: i64,
) -> Result<OnlineBatch, crate::transform::frame::FrameError> {
    let events = crate::aggregate::Events::new(view, rows)?;
    let mut keys: Vec<&[u8]> = events.keys().collect();
    keys.sort_unstable();
    let mut out = OnlineBatch {
        features: view
            .aggregations
            .iter()
            .map(|a| (a.name, Vec::new()))
            .collect(),
        ..OnlineBatch::default()
    };
    for key in keys {
        if let Some((newest, values)) =
            crate::aggregate::evaluate_events(view, &events, key, now_us)
        {
            out.entity_keys.push(key.to_vec());
            out.event_ts.push(newest);
            out.created_ts.push(None);
            for ((_, col), v) in out.features.iter_mut().zip(values) {
                col.push(v);
            }
        }
    }
    Ok(out)
}

impl FeatureStore {
    /// Checks each online view (or `views`) of the online store against its
    /// recomputation from the offline store, as of `now` for the ttl.
    pub fn verify(&self, views: Option<&[&str]>, now: DateTime<Utc>) -> Result<Vec<ViewReport>> {
        let now_us = now.timestamp_micros();
        let mut reports = Vec::new();
        for view in self.online_views(views)? {
            reports.push(self.verify_view(view, now_us)?);
        }
        Ok(reports)
    }

    fn verify_view(&self, view: &'static FeatureViewDef, now_us: i64) -> Result<ViewReport> {
        let fresh = |event_us: i64| view.is_fresh(event_us, now_us);
        let rows = self.offline_rows(view)?;
        let frame_err = |error| Error::Frame {
            view: view.name,
            error,
        };
        let newest = if view.is_aggregated() {
            windows_now(view, &rows, now_us).map_err(frame_err)?
        } else {
            OnlineBatch::from_frame(view, &rows).map_err(frame_err)?
        };
        let names: Vec<&str> = view.schema.iter().map(|f| f.name).collect();
        let offline_keys: HashSet<&[u8]> = newest.entity_keys.iter().map(Vec::as_slice).collect();
        let compared: Vec<usize> = (0..newest.len())
            .filter(|&i| fresh(newest.event_ts[i]))
            .collect();
        let keys: Vec<Vec<u8>> = compared
            .iter()
            .map(|&i| newest.entity_keys[i].clone())
            .collect();
        let stored = stored_rows(self.online_store(), view, &keys, &names, now_us)?;
        let mut report = ViewReport {
            view: view.name,
            entities: compared.len(),
            expired: newest.len() - compared.len(),
            differences: Vec::new(),
        };
        for (&i, online) in compared.iter().zip(stored) {
            let entity = || entity(&newest.entity_keys[i]);
            let offline_us = newest.event_ts[i];
            let Some(online) = online else {
                report.differences.push(Difference {
                    entity: entity(),
                    kind: DifferenceKind::NotOnline {
                        offline_event_us: offline_us,
                    },
                });
                continue;
            };
            if !same_time(offline_us, online.event_ts) {
                report.differences.push(Difference {
                    entity: entity(),
                    kind: DifferenceKind::EventTime {
                        offline_us,
                        online_us: online.event_ts,
                    },
                });
                continue;
            }
            for (f, (name, values)) in newest.features.iter().enumerate() {
                let offline = &values[i];
                let online = &online.values[f];
                if online.as_ref().map(bytes) != Some(bytes(offline)) {
                    report.differences.push(Difference {
                        entity: entity(),
                        kind: DifferenceKind::Value {
                            feature: name,
                            offline: offline.clone(),
                            online: online.clone(),
                        },
                    });
                }
            }
        }
        // What the online store serves that no offline row gives.
        let only_online: Vec<Vec<u8>> = self
            .online_store()
            .entity_keys(view)?
            .into_iter()
            .filter(|k| !offline_keys.contains(k.as_slice()))
            .collect();
        let stored = stored_rows(self.online_store(), view, &only_online, &names, now_us)?;
        for (key, online) in only_online.iter().zip(stored) {
            if let Some(row) = online.filter(|r| fresh(r.event_ts)) {
                report.entities += 1;
                report.differences.push(Difference {
                    entity: entity(key),
                    kind: DifferenceKind::NotOffline {
                        online_event_us: row.event_ts,
                    },
                });
            }
        }
        // By entity (a stable sort: one entity's features stay in schema order).
        report.differences.sort_by(|a, b| a.entity.cmp(&b.entity));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_compare_at_the_online_stores_precision() {
        assert!(same_time(1_500_000, 1_000_000));
        assert!(!same_time(2_000_000, 1_000_000));
        assert!(same_time(1_500_000, 1_500_000));
        assert!(!same_time(1_500_001, 1_500_000));
        assert!(same_time(-500_000, -1_000_000));
    }

    #[test]
    fn differences_read_as_sentences() {
        let d = Difference {
            entity: "driver_id=1002".into(),
            kind: DifferenceKind::Value {
                feature: "conv_percentage",
                offline: Value::Float32(52.169_003),
                online: Some(Value::Float32(52.169)),
            },
        };
        assert_eq!(
            d.to_string(),
            "driver_id=1002: `conv_percentage` is 52.169002532958984 offline, 52.16899871826172 online"
        );
        let d = Difference {
            entity: "card_id=c-1".into(),
            kind: DifferenceKind::NotOnline {
                offline_event_us: 1_735_689_600_000_000,
            },
        };
        assert_eq!(
            d.to_string(),
            "card_id=c-1: offline has an event at 2025-01-01T00:00:00Z, online has nothing (not materialized or ingested yet?)"
        );
    }
}
