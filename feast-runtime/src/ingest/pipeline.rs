//! The batch path shared by every record source: decode, convert to the
//! batch source's types, run each view's function, check its output, log the
//! records offline, then write online and the checkpoint together.
//!
//! What lands where follows the views' definitions: a view with `online =
//! true` has its features written to the online store; if any view with
//! `offline = true` reads the source, the source's records (converted to the
//! batch source's columns, never a view's output) are appended to the batch
//! source, which materialization and training data read through the same
//! view functions. `ingest --only online|offline` narrows one run.
//!
//! A record that cannot be ingested (it does not decode, or a view's
//! function fails on it) goes to the dead-letter sink with the reason and is
//! written nowhere else; the rest of its batch carries on. When a function
//! fails on a batch, the batch is halved until the failure is pinned to
//! single records, so one poison record costs one dead letter, not a batch.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use polars::prelude::*;

use super::dead_letter::{DeadLetter, DeadLetterSink};
use super::decode::{Decoder, MAX_RECORD_BYTES};
use super::metrics::Metrics;
use crate::aggregate::stored::Part;
use crate::definition::{DataSourceDef, FeatureViewDef};
use crate::feature_store::FeatureStore;
use crate::offline_store;
use crate::online_store::{CheckpointUpdate, OnlineBatch};

/// Which stores a run writes: what the views declare, or one of them only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Writes {
    /// Features of `online = true` views online; the source's records to
    /// its batch source if a view has `offline = true`.
    #[default]
    Declared,
    /// Only the online store (a replay into a new online store).
    OnlineOnly,
    /// Only the offline log (a backfill of the log from the stream).
    OfflineOnly,
}

/// A store name `--only` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store `{0}`; expected online or offline")]
pub struct UnknownStore(pub String);

impl std::str::FromStr for Writes {
    type Err = UnknownStore;
    fn from_str(s: &str) -> Result<Self, UnknownStore> {
        match s {
            "online" => Ok(Writes::OnlineOnly),
            "offline" => Ok(Writes::OfflineOnly),
            _ => Err(UnknownStore(s.to_owned())),
        }
    }
}

/// One record as read from a shard.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The record's sequence number (its position in the shard).
    pub sequence_number: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records in the batch.
    pub records: usize,
    /// Of them, dead-lettered.
    pub dead_lettered: usize,
    /// Feature rows written online.
    pub rows_written: usize,
}

/// A batch that could not be written (nothing of it is checkpointed, so it
/// is read again): a store or the dead-letter sink failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The online store failed.
    #[error(transparent)]
    Online(#[from] crate::online_store::Error),
    /// The offline store failed.
    #[error(transparent)]
    Offline(#[from] offline_store::Error),
    /// A malformed record could not be set aside in the dead-letter file.
    #[error("dead-letter sink {path}: {error}")]
    DeadLetter {
        /// The dead-letter file.
        path: String,
        /// Why it cannot be written.
        error: std::io::Error,
    },
}

impl Error {
    /// Whether writing the same batch again may succeed (a locked or full
    /// disk, an I/O error), rather than fail the same way (a batch source
    /// that is a single file, a column that cannot be converted).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Online(e) => e.is_transient(),
            Error::Offline(e) => matches!(
                e,
                offline_store::Error::Write { .. } | offline_store::Error::Read { .. }
            ),
            Error::DeadLetter { .. } => true,
        }
    }
}

/// The batch path of one stream source and the views that read it.
pub struct Pipeline {
    store: Arc<FeatureStore>,
    source: &'static DataSourceDef,
    views: Vec<&'static FeatureViewDef>,
    decoder: Decoder,
    dead_letters: DeadLetterSink,
    metrics: Arc<Metrics>,
    writes: Writes,
    /// The batch source's columns, which records are converted to.
    batch_schema: Vec<crate::definition::FieldDef>,
    consumer: String,
    /// Per shard, the last sequence number of a batch whose dead letters are
    /// written: a batch written again after a store failure does not repeat
    /// them.
    dead_lettered_through: Mutex<HashMap<String, String>>,
    /// Per shard, the watermarks its last committed batch left.
    watermarks: Mutex<HashMap<String, BTreeMap<&'static str, i64>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("source", &self.source.name)
            .finish_non_exhaustive()
    }
}

/// One batch between the stages of [`Pipeline::process`].
#[derive(Debug)]
pub struct Batch<'r> {
    /// The records as read.
    pub records: &'r [RawRecord],
    /// The records that decoded, in the batch source's columns.
    pub rows: DataFrame,
    /// The record behind each row.
    pub record_of: Vec<usize>,
    /// Rows a view's function failed on: written nowhere.
    pub failed_row: Vec<bool>,
    /// (record, reason) for the dead-letter sink.
    pub letters: Vec<(usize, String)>,
    /// Per aggregated view, the events it left out as too late.
    pub too_late: Vec<(&'static str, u64)>,
    /// Per aggregated view, the shard's watermark: the newest event time of
    /// the shard's records so far (this batch's once it is transformed).
    pub watermarks: BTreeMap<&'static str, i64>,
}

/// Where a batch sits in its stream.
#[derive(Debug, Clone, Copy)]
struct Position<'a> {
    stream: &'a str,
    shard: &'a str,
    finished: bool,
    behind_ms: i64,
    /// The lease's fencing token, with shard leases.
    fence: Option<u64>,
}

/// A view's output for the records it accepted, and the records it failed on.
struct ViewRun {
    output: Option<DataFrame>,
    /// (decoded row, reason).
    failed: Vec<(usize, String)>,
}

impl Pipeline {
    /// A pipeline for `source` and the `views` that read it.
    pub fn new(
        store: Arc<FeatureStore>,
        source: &'static DataSourceDef,
        views: Vec<&'static FeatureViewDef>,
        writes: Writes,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        Pipeline::with_max_record_bytes(store, source, views, writes, metrics, MAX_RECORD_BYTES)
    }

    /// A pipeline that rejects records larger than `max_record_bytes`.
    pub fn with_max_record_bytes(
        store: Arc<FeatureStore>,
        source: &'static DataSourceDef,
        views: Vec<&'static FeatureViewDef>,
        writes: Writes,
        metrics: Arc<Metrics>,
        max_record_bytes: usize,
    ) -> Pipeline {
        // Join keys and the event time may not be null in a record.
        let mut required: Vec<&'static str> = views
            .iter()
            .flat_map(|v| v.entities.iter().map(|e| e.join_key))
            .collect();
        required.push(source.event_timestamp_field());
        required.sort_unstable();
        required.dedup();
        let decoder = Decoder::new(source, required).with_max_record_bytes(max_record_bytes);
        let dead_letters = DeadLetterSink::new(
            store
                .repo_dir()
                .join("data/dead_letters")
                .join(format!("{}.ndjson", source.name)),
        );
        let consumer = store.project().to_owned();
        let batch_schema = source.offline_source().schema();
        Pipeline {
            store,
            source,
            views,
            decoder,
            dead_letters,
            metrics,
            writes,
            batch_schema,
            consumer,
            dead_lettered_through: Default::default(),
            watermarks: Default::default(),
        }
    }

    /// The feature store written to.
    pub fn store(&self) -> &FeatureStore {
        &self.store
    }

    /// The metrics updated.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The source read.
    pub fn source(&self) -> &'static DataSourceDef {
        self.source
    }

    /// The checkpoints' consumer name (the project).
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Where dead letters go.
    pub fn dead_letter_path(&self) -> &std::path::Path {
        self.dead_letters.path()
    }

    /// Whether the source's records are logged to its batch source.
    pub fn writes_offline(&self) -> bool {
        self.writes != Writes::OnlineOnly && self.views.iter().any(|v| v.offline)
    }

    fn writes_online(&self) -> bool {
        self.writes != Writes::OfflineOnly
    }

    /// Forgets what this process remembers of `shard` (its watermarks, the
    /// dead letters written): another worker may have moved it on since.
    /// Call when a shard's lease is taken.
    pub fn forget(&self, shard: &str) {
        self.watermarks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(shard);
        self.dead_lettered_through
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(shard);
    }

    /// Removes the offline files of `shard` that no checkpoint covers: a
    /// batch written offline whose commit did not happen (the process died in
    /// between). Its records are read again from the checkpoint and written
    /// anew, perhaps with other batch boundaries, so the old file must go.
    /// Call before reading the shard.
    pub fn discard_uncommitted(
        &self,
        stream: &str,
        shard: &str,
        checkpoint: Option<&str>,
    ) -> Result<usize, Error> {
        if !self.writes_offline() {
            return Ok(0);
        }
        let batch_source = self.source.offline_source();
        let prefix = offline_file_prefix(stream, shard);
        let removed = self.store.offline_store().remove(batch_source, &|name| {
            let Some((first, _last)) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".parquet"))
                .and_then(log_range)
            else {
                return false;
            };
            checkpoint.is_none_or(|c| sequence_after(first, c))
        })?;
        if removed > 0 {
            tracing::info!(
                stream,
                shard,
                removed,
                "removed offline files of uncommitted batches"
            );
        }
        Ok(removed)
    }

    /// Processes one batch of a shard and commits it with its checkpoint,
    /// in four stages: [`decode`](Self::decode) the records into the batch
    /// source's columns, [`transform`](Self::transform) them through every
    /// view, [`prepare_writes`](Self::prepare_writes) for the online store,
    /// and `commit`: dead letters, the offline log, then the
    /// online rows with the checkpoint. `finished` marks the shard as read
    /// to its end.
    pub fn process(
        &self,
        stream: &str,
        shard: &str,
        records: &[RawRecord],
        finished: bool,
        behind_ms: i64,
    ) -> Result<BatchOutcome, Error> {
        self.process_fenced(stream, shard, records, finished, behind_ms, None)
    }

    /// [`process`](Self::process) for the holder of the shard's lease, whose
    /// counter `fence` is: the store refuses the batch
    /// ([`online_store::Error::Fenced`]) once a newer owner has written the
    /// shard, and no offline file is written after the store says so.
    pub fn process_fenced(
        &self,
        stream: &str,
        shard: &str,
        records: &[RawRecord],
        finished: bool,
        behind_ms: i64,
        fence: Option<u64>,
    ) -> Result<BatchOutcome, Error> {
        let started = Instant::now();
        let mut batch = self.decode(records)?;
        batch.watermarks = self.watermarks(stream, shard)?;
        let outputs = self.transform(&mut batch);
        let writes = self.prepare_writes(&mut batch, outputs);
        self.commit(
            Position {
                stream,
                shard,
                finished,
                behind_ms,
                fence,
            },
            batch,
            writes,
            started,
        )
    }

    /// Stage 1: records into rows of the batch source's columns and types
    /// (what the offline store keeps and what a view function sees on every
    /// path); the records that do not decode become dead letters.
    pub fn decode<'r>(&self, records: &'r [RawRecord]) -> Result<Batch<'r>, Error> {
        let (decoded, rejected) = self
            .decoder
            .decode(records.iter().map(|r| r.data.as_slice()));
        let rows =
            crate::transform::frame::conform(&decoded, &self.batch_schema).map_err(|error| {
                offline_store::Error::Frame {
                    source_name: self.source.offline_source().name,
                    error,
                }
            })?;
        // The record behind each decoded row.
        let mut record_of: Vec<usize> = Vec::with_capacity(rows.height());
        let mut bad = rejected.iter().map(|r| r.index).peekable();
        for i in 0..records.len() {
            if bad.peek() == Some(&i) {
                bad.next();
            } else {
                record_of.push(i);
            }
        }
        let letters = rejected
            .into_iter()
            .map(|r| (r.index, r.reason.to_string()))
            .collect();
        Ok(Batch {
            records,
            failed_row: vec![false; rows.height()],
            rows,
            record_of,
            letters,
            too_late: Vec::new(),
            watermarks: BTreeMap::new(),
        })
    }

    /// Stage 2: every view's function over the rows. Every view runs, so
    /// that a record its function fails on is caught whatever is written (it
    /// would fail again at materialization); such records become dead
    /// letters and are written nowhere.
    pub fn transform(&self, batch: &mut Batch<'_>) -> Vec<(&'static FeatureViewDef, DataFrame)> {
        let mut outputs = Vec::new();
        if batch.rows.height() == 0 {
            return outputs;
        }
        for &view in &self.views {
            let (rows, kept) = match self.too_late(view, batch) {
                Some((rows, kept)) => (std::borrow::Cow::Owned(rows), Some(kept)),
                None => (std::borrow::Cow::Borrowed(&batch.rows), None),
            };
            let run = self.run_view(view, &rows);
            for (row, reason) in run.failed {
                let row = kept.as_ref().map_or(row, |k| k[row]);
                batch.failed_row[row] = true;
                batch.letters.push((batch.record_of[row], reason));
            }
            if let Some(out) = run.output {
                outputs.push((view, out));
            }
        }
        outputs
    }

    /// The shard's watermarks as last committed (read from the store once
    /// per shard, then kept as batches commit).
    fn watermarks(&self, stream: &str, shard: &str) -> Result<BTreeMap<&'static str, i64>, Error> {
        let mut known = self
            .watermarks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = known.get(shard) {
            return Ok(w.clone());
        }
        let stored = self
            .store
            .online_store()
            .checkpoint(&self.consumer, stream, shard)?
            .map(|c| c.watermarks)
            .unwrap_or_default();
        let w: BTreeMap<&'static str, i64> = self
            .views
            .iter()
            .filter_map(|v| {
                let (_, us) = stored.iter().find(|(name, _)| name == v.name)?;
                Some((v.name, *us))
            })
            .collect();
        known.insert(shard.to_owned(), w.clone());
        Ok(w)
    }

    /// For an aggregated view, the rows whose event time is before every
    /// window of the view at the shard's watermark (the newest event time
    /// of the shard's earlier records): each is dead-lettered for this view
    /// (other views and the offline log keep it) and counted. The decision
    /// depends on the shard's order alone, so a replay makes it again. The
    /// rows the view then runs on, and their positions in `batch.rows`;
    /// `None` when the view takes every row.
    fn too_late(
        &self,
        view: &'static FeatureViewDef,
        batch: &mut Batch<'_>,
    ) -> Option<(DataFrame, Vec<usize>)> {
        if !view.is_aggregated() {
            return None;
        }
        let ts = crate::transform::frame::timestamps_us(&batch.rows, view.event_timestamp_field())
            .ok()?;
        let edge = |watermark: i64| {
            view.aggregations
                .iter()
                .map(|a| crate::aggregate::window_start(a, watermark))
                .min()
                .unwrap_or(i64::MIN)
        };
        // The watermark and its edge, recomputed only when the watermark moves.
        let mut watermark = batch.watermarks.get(view.name).map(|&w| (w, edge(w)));
        let mut flagged: Vec<(usize, i64, i64)> = Vec::new();
        for (row, t) in ts.iter().enumerate() {
            let Some(t) = *t else { continue };
            match watermark {
                Some((w, oldest)) if t < oldest => flagged.push((row, t, w)),
                Some((w, _)) if t <= w => {}
                _ => watermark = Some((t, edge(t))),
            }
        }
        let watermark = watermark.map(|(w, _)| w);
        if let Some(w) = watermark {
            batch.watermarks.insert(view.name, w);
        }
        if flagged.is_empty() {
            return None;
        }
        let at = |us: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
                .map_or_else(|| us.to_string(), |t| t.to_rfc3339())
        };
        for &(row, t, w) in &flagged {
            batch.letters.push((
                batch.record_of[row],
                format!(
                    "view `{}`: event time {} is before every window of the view (the oldest starts at {} once the shard has reached {}); not counted",
                    view.name,
                    at(t),
                    at(edge(w)),
                    at(w)
                ),
            ));
        }
        batch.too_late.push((view.name, flagged.len() as u64));
        let mut dropped = flagged.iter().map(|(r, _, _)| *r).peekable();
        let kept: Vec<usize> = (0..batch.rows.height())
            .filter(|&r| {
                if dropped.peek() == Some(&r) {
                    dropped.next();
                    false
                } else {
                    true
                }
            })
            .collect();
        let idx = IdxCa::from_vec("row".into(), kept.iter().map(|&r| r as IdxSize).collect());
        let rows = batch.rows.take(&idx).ok()?;
        Some((rows, kept))
    }

    /// Stage 3: the online writes of the views with `online = true` (the
    /// newest row per entity). Output that passed the schema check but
    /// cannot be keyed (a null join key it produced) dead-letters the view's
    /// whole batch.
    pub fn prepare_writes(
        &self,
        batch: &mut Batch<'_>,
        outputs: Vec<(&'static FeatureViewDef, DataFrame)>,
    ) -> Vec<(&'static FeatureViewDef, OnlineBatch)> {
        let mut writes = Vec::new();
        if !self.writes_online() {
            return writes;
        }
        for (view, out) in outputs.into_iter().filter(|(v, _)| v.online) {
            let prepared = if view.is_aggregated() {
                OnlineBatch::from_events(view, &out, Part::Stream)
            } else {
                OnlineBatch::from_frame(view, &out)
            };
            match prepared {
                Ok(online) => writes.push((view, online)),
                Err(e) => {
                    for (row, &record) in batch.record_of.iter().enumerate() {
                        if !batch.failed_row[row] {
                            batch
                                .letters
                                .push((record, format!("view `{}`: {e}", view.name)));
                        }
                    }
                }
            }
        }
        writes
    }

    /// Stage 4: dead letters, then the offline log, then the online rows and
    /// the checkpoint together (one SQLite transaction; on Redis the
    /// checkpoint after the rows are acknowledged).
    fn commit(
        &self,
        at: Position<'_>,
        mut batch: Batch<'_>,
        writes: Vec<(&'static FeatureViewDef, OnlineBatch)>,
        started: Instant,
    ) -> Result<BatchOutcome, Error> {
        let Position {
            stream,
            shard,
            finished,
            behind_ms,
            fence,
        } = at;
        let records = batch.records;
        if let Some(token) = fence {
            // A worker whose lease was taken writes no dead letters and no
            // offline file from here on (the commit below checks again,
            // atomically, for a lease taken meanwhile).
            self.store
                .online_store()
                .check_fence(&self.consumer, stream, shard, token)?;
        }
        self.write_dead_letters(shard, records, &mut batch.letters)?;
        let logged = if self.writes_offline() {
            self.append_offline(stream, shard, &batch, fence)?
        } else {
            None
        };
        let refs: Vec<(&FeatureViewDef, &OnlineBatch)> =
            writes.iter().map(|(v, b)| (*v, b)).collect();
        let watermarks: Vec<(&str, i64)> = batch.watermarks.iter().map(|(v, w)| (*v, *w)).collect();
        let checkpoint = CheckpointUpdate {
            consumer: &self.consumer,
            stream,
            shard,
            sequence_number: records.last().map(|r| r.sequence_number.as_str()),
            finished,
            records: records.len() as u64,
            watermarks: &watermarks,
            fence,
        };
        let stats = match self
            .store
            .online_store()
            .write_batches(&refs, Some(&checkpoint))
        {
            Err(e @ crate::online_store::Error::Fenced { .. }) => {
                // The lease was taken between the check above and the
                // commit: the new owner reads these records again, and logs
                // them itself.
                if let Some(name) = logged {
                    let file = format!("{name}.parquet");
                    self.store
                        .offline_store()
                        .remove(self.source.offline_source(), &|n| n == file)?;
                }
                return Err(e.into());
            }
            written => written?,
        };
        let seconds = started.elapsed().as_secs_f64();
        let mut rows_written = 0;
        for ((view, _), s) in writes.iter().zip(&stats) {
            self.metrics
                .record_write(view.name, shard, s.rows as u64, seconds);
            rows_written += s.rows;
        }
        for (view, events) in &batch.too_late {
            self.metrics.record_too_late(view, shard, *events);
        }
        self.watermarks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(shard.to_owned(), batch.watermarks.clone());
        let dead_lettered = batch.letters.len();
        self.metrics.record_batch(
            stream,
            shard,
            records.len() as u64,
            dead_lettered as u64,
            behind_ms,
        );
        self.metrics.record_checkpoint(stream, shard);
        Ok(BatchOutcome {
            records: records.len(),
            dead_lettered,
            rows_written,
        })
    }

    /// Runs `view` over `rows`. A failing batch is halved, and each half run
    /// again, until every failure is pinned to a single row; the outputs of
    /// the parts that succeed are kept in row order.
    fn run_view(&self, view: &'static FeatureViewDef, rows: &DataFrame) -> ViewRun {
        let mut parts: Vec<DataFrame> = Vec::new();
        let mut failed = Vec::new();
        let mut todo = vec![(0usize, rows.height())];
        while let Some((offset, len)) = todo.pop() {
            if len == 0 {
                continue;
            }
            let part = if len == rows.height() {
                rows.clone()
            } else {
                rows.slice(offset as i64, len)
            };
            match self.store.transform(view, &part) {
                Ok(out) => parts.push(out),
                Err(e) if len == 1 => failed.push((offset, e.to_string())),
                Err(e) => {
                    tracing::debug!(view = view.name, rows = len, error = %e, "view failed on a batch; isolating the failing records");
                    let half = len / 2;
                    // Last in, first out: the first half runs first, which
                    // keeps the outputs in row order.
                    todo.push((offset + half, len - half));
                    todo.push((offset, half));
                }
            }
        }
        let mut parts = parts.into_iter();
        let output = parts.next().map(|mut acc| {
            for p in parts {
                if let Err(e) = acc.vstack_mut(&p) {
                    tracing::error!(view = view.name, error = %e, "view outputs of one batch differ in schema");
                }
            }
            acc
        });
        ViewRun { output, failed }
    }

    fn write_dead_letters(
        &self,
        shard: &str,
        records: &[RawRecord],
        letters: &mut Vec<(usize, String)>,
    ) -> Result<(), Error> {
        // One line per record, its reasons joined.
        letters.sort_by_key(|(i, _)| *i);
        letters.dedup_by(|later, first| {
            if later.0 == first.0 {
                first.1.push_str("; ");
                first.1.push_str(&later.1);
                true
            } else {
                false
            }
        });
        let mut through = self
            .dead_lettered_through
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let done = through.get(shard);
        let dead: Vec<DeadLetter<'_>> = letters
            .iter()
            .filter(|(i, _)| done.is_none_or(|d| sequence_after(&records[*i].sequence_number, d)))
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
        if let Some(last) = records.last() {
            through.insert(shard.to_owned(), last.sequence_number.clone());
        }
        Ok(())
    }

    /// Appends the batch's accepted records to the batch source, as one file
    /// named by shard and sequence range (and, with a lease, its fencing
    /// token, so that a worker whose lease was taken removes only its own
    /// file): a replay of the same records rewrites the same file.
    /// The file's name (without `.parquet`), if one was written.
    fn append_offline(
        &self,
        stream: &str,
        shard: &str,
        batch: &Batch<'_>,
        fence: Option<u64>,
    ) -> Result<Option<String>, Error> {
        let rows = &batch.rows;
        let kept: Vec<usize> = (0..rows.height())
            .filter(|&r| !batch.failed_row[r])
            .collect();
        let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else {
            return Ok(None);
        };
        let batch_source = self.source.offline_source();
        let log = if kept.len() == rows.height() {
            rows.clone()
        } else {
            let idx = IdxCa::from_vec("row".into(), kept.iter().map(|&r| r as IdxSize).collect());
            rows.take(&idx).map_err(|e| offline_store::Error::Frame {
                source_name: batch_source.name,
                error: e.into(),
            })?
        };
        let mut name = format!(
            "{}{}-{}",
            offline_file_prefix(stream, shard),
            batch.records[batch.record_of[first]].sequence_number,
            batch.records[batch.record_of[last]].sequence_number,
        );
        if let Some(token) = fence {
            name.push_str(&format!("-L{token}"));
        }
        self.store
            .offline_store()
            .append(batch_source, &log, &name)?;
        Ok(Some(name))
    }
}

/// Offline files of a shard are `{stream}-{shard}-{first}-{last}.parquet`,
/// or `…-{first}-{last}-L{token}.parquet` when written under a lease.
fn offline_file_prefix(stream: &str, shard: &str) -> String {
    format!("{stream}-{shard}-")
}

/// The first and last sequence numbers of a log file's name after its
/// shard prefix: `{first}-{last}` or `{first}-{last}-L{token}`.
fn log_range(range: &str) -> Option<(&str, &str)> {
    let range = match range.rsplit_once("-L") {
        Some((r, token)) if is_digits(token) => r,
        _ => range,
    };
    range
        .split_once('-')
        .filter(|(a, b)| is_digits(a) && is_digits(b))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

pub use crate::online_store::sequence_after;

#[cfg(test)]
mod tests {
    use super::sequence_after;

    #[test]
    fn log_file_names_give_their_range_with_or_without_a_lease() {
        use super::log_range;
        assert_eq!(log_range("100-200"), Some(("100", "200")));
        assert_eq!(log_range("100-200-L7"), Some(("100", "200")));
        assert_eq!(log_range("100-200-Lx"), None);
        assert_eq!(log_range("100"), None);
    }

    #[test]
    fn sequence_numbers_compare_as_big_integers() {
        let a = "49590338271490256608559692538361571095921575989136588898";
        let b = "49590338271490256608559692538361571095921575989136588899";
        assert!(sequence_after(b, a));
        assert!(!sequence_after(a, b));
        assert!(!sequence_after(a, a));
        assert!(sequence_after("100", "99"));
        assert!(!sequence_after("99", "100"));
    }
}
