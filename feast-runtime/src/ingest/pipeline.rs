//! The batch path shared by every record source: decode, run each view's
//! function, check its output, write offline, then write online and the
//! checkpoint together.

use std::sync::Arc;
use std::time::Instant;

use polars::prelude::*;

use super::dead_letter::{DeadLetter, DeadLetterSink};
use super::decode::Decoder;
use super::metrics::Metrics;
use crate::definition::{DataSourceDef, FeatureViewDef};
use crate::feature_store::{FeatureStore, PushMode};
use crate::offline_store;
use crate::online_store::{CheckpointUpdate, OnlineBatch};

/// One record as read from a shard.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub sequence_number: String,
    pub data: Vec<u8>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub records: usize,
    pub dead_lettered: usize,
    pub rows_written: usize,
}

/// A failure that stops ingestion of a shard (the batch is not checkpointed
/// and will be read again): the stores are unreachable or full.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Online(#[from] crate::online_store::Error),
    #[error(transparent)]
    Offline(#[from] offline_store::Error),
    #[error("dead-letter sink {path}: {error}")]
    DeadLetter { path: String, error: std::io::Error },
}

/// The batch path of one stream source and the views that read it.
pub struct Pipeline {
    store: Arc<FeatureStore>,
    source: &'static DataSourceDef,
    views: Vec<&'static FeatureViewDef>,
    decoder: Decoder,
    dead_letters: DeadLetterSink,
    metrics: Arc<Metrics>,
    to: PushMode,
    consumer: String,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("source", &self.source.name)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(
        store: Arc<FeatureStore>,
        source: &'static DataSourceDef,
        views: Vec<&'static FeatureViewDef>,
        to: PushMode,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        // Join keys and the event time may not be null in a record.
        let mut required: Vec<&'static str> = views
            .iter()
            .flat_map(|v| v.entities.iter().map(|e| e.join_key))
            .collect();
        required.push(source.event_timestamp_field());
        required.sort_unstable();
        required.dedup();
        let decoder = Decoder::new(source, required);
        let dead_letters = DeadLetterSink::new(
            store
                .repo_dir()
                .join("data/dead_letters")
                .join(format!("{}.ndjson", source.name)),
        );
        let consumer = store.project().to_owned();
        Pipeline {
            store,
            source,
            views,
            decoder,
            dead_letters,
            metrics,
            to,
            consumer,
        }
    }

    pub fn store(&self) -> &FeatureStore {
        &self.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn source(&self) -> &'static DataSourceDef {
        self.source
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    pub fn dead_letter_path(&self) -> &std::path::Path {
        self.dead_letters.path()
    }

    /// Processes one batch of a shard and commits it with its checkpoint.
    /// `finished` marks the shard as read to its end.
    pub fn process(
        &self,
        stream: &str,
        shard: &str,
        records: &[RawRecord],
        finished: bool,
        behind_ms: i64,
    ) -> Result<BatchOutcome, Error> {
        let started = Instant::now();
        let (rows, rejected) = self
            .decoder
            .decode(records.iter().map(|r| r.data.as_slice()));
        // Index of each decoded row in `records`.
        let mut good: Vec<usize> = Vec::with_capacity(rows.height());
        {
            let mut bad = rejected.iter().map(|r| r.index).peekable();
            for i in 0..records.len() {
                if bad.peek() == Some(&i) {
                    bad.next();
                } else {
                    good.push(i);
                }
            }
        }
        let mut letters: Vec<(usize, String)> =
            rejected.into_iter().map(|r| (r.index, r.reason)).collect();

        let online = matches!(self.to, PushMode::Online | PushMode::OnlineAndOffline);
        let offline = matches!(self.to, PushMode::Offline | PushMode::OnlineAndOffline);
        let mut batches: Vec<(&'static FeatureViewDef, OnlineBatch)> = Vec::new();
        if online && rows.height() > 0 {
            for view in self.views.iter().filter(|v| v.online) {
                match self.features(view, &rows) {
                    Ok(batch) => batches.push((view, batch)),
                    Err(reason) => {
                        // The whole batch failed in this view: every decoded record goes to the sink.
                        letters.extend(
                            good.iter()
                                .map(|&i| (i, format!("view `{}`: {reason}", view.name))),
                        );
                    }
                }
            }
        }

        letters.sort_by_key(|(i, _)| *i);
        let dead: Vec<DeadLetter<'_>> = letters
            .iter()
            .map(|(i, reason)| DeadLetter {
                shard,
                sequence_number: &records[*i].sequence_number,
                reason,
                data: &records[*i].data,
            })
            .collect();
        self.dead_letters
            .write(self.source.name, &dead)
            .map_err(|error| Error::DeadLetter {
                path: self.dead_letters.path().display().to_string(),
                error,
            })?;

        if offline && rows.height() > 0 {
            let batch_source = offline_store::batch_of(self.source);
            let log = offline_store::conform(&rows, &batch_source.schema()).map_err(|error| {
                offline_store::Error::Frame {
                    source_name: batch_source.name,
                    error,
                }
            })?;
            let (first, last) = (
                &records[good[0]].sequence_number,
                &records[good[good.len() - 1]].sequence_number,
            );
            // Named by shard and sequence range: a replay rewrites the same file.
            offline_store::append(
                self.store.repo_dir(),
                batch_source,
                &log,
                &format!("{stream}-{shard}-{first}-{last}"),
            )?;
        }

        let last_seq = records.last().map(|r| r.sequence_number.as_str());
        let writes: Vec<(&FeatureViewDef, &OnlineBatch)> =
            batches.iter().map(|(v, b)| (*v, b)).collect();
        let checkpoint = CheckpointUpdate {
            consumer: &self.consumer,
            stream,
            shard,
            sequence_number: last_seq,
            finished,
        };
        let stats = self
            .store
            .online_store()
            .write_batches(&writes, Some(&checkpoint))?;
        let seconds = started.elapsed().as_secs_f64();
        let mut rows_written = 0;
        for ((view, _), s) in batches.iter().zip(&stats) {
            self.metrics
                .record_write(view.name, shard, s.rows as u64, seconds);
            rows_written += s.rows;
        }
        self.metrics.record_batch(
            stream,
            shard,
            records.len() as u64,
            letters.len() as u64,
            behind_ms,
        );
        self.metrics.record_checkpoint(stream, shard);
        Ok(BatchOutcome {
            records: records.len(),
            dead_lettered: letters.len(),
            rows_written,
        })
    }

    /// A view's feature rows for decoded records, or why they cannot be had.
    fn features(
        &self,
        view: &'static FeatureViewDef,
        rows: &DataFrame,
    ) -> Result<OnlineBatch, String> {
        let out = self
            .store
            .transform(view, rows)
            .map_err(|e| e.to_string())?;
        OnlineBatch::from_frame(view, &out).map_err(|e| e.to_string())
    }
}
