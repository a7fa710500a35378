//! The seam between a stream (Kinesis today) and the generic ingestion run:
//! what a stream consumer provides. Partitions (shards) with their parents,
//! cursors opened after a checkpoint or at the run's start, reads that return
//! records, the next cursor and how far behind the stream's head they are.
//! Listing, lineage, pacing, batching, retries and checkpoints are the run's
//! (`ingest::run`); a new kind of stream implements this trait in its own
//! folder.

use std::future::Future;
use std::time::Duration;

use super::pipeline::RawRecord;

/// A partition of a stream (a Kinesis shard) and the partitions it came
/// from: its records are read only after theirs (a split or merge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The partition's id.
    pub id: String,
    /// The partitions it was split or merged from.
    pub parents: Vec<String>,
}

/// What one read returned.
#[derive(Debug)]
pub struct Fetched<C> {
    /// The records read, in order.
    pub records: Vec<RawRecord>,
    /// Where to read next; `None` when the partition is closed and read to
    /// its end.
    pub next: Option<C>,
    /// How far behind the stream's head the read is, in milliseconds.
    pub behind_ms: i64,
}

/// How a failed call is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The cursor expired: open a fresh one after the checkpoint.
    Expired,
    /// Back off and call again: throttling, server errors, a connection
    /// refused or timed out.
    Retry,
    /// Stop the run: calling again cannot help.
    Fatal,
}

/// A failed call, as the stream reported it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct CallError {
    /// How to handle it.
    pub class: Class,
    /// The service's error code, if it gave one.
    pub code: Option<String>,
    /// What the service said.
    pub message: String,
}

/// A stream to consume: one per source.
pub trait StreamConsumer: Send + Sync + 'static {
    /// A position to read from (a shard iterator).
    type Cursor: Send + 'static;

    /// The stream's name, for logs, checkpoints and offline file names.
    fn stream(&self) -> &'static str;

    /// The least time between two reads of one partition (Kinesis allows
    /// five GetRecords calls a second per shard).
    fn min_read_interval(&self) -> Duration;

    /// The most records one read may ask for.
    fn max_read_records(&self) -> usize;

    /// The stream's partitions, with their parents.
    fn list(&self) -> impl Future<Output = Result<Vec<Partition>, CallError>> + Send;

    /// A cursor just after `after` (a committed position), or at the run's
    /// start position when the partition has no checkpoint.
    fn open(
        &self,
        partition: &str,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Self::Cursor, CallError>> + Send;

    /// Up to `max` records from `cursor`.
    fn read(
        &self,
        partition: &str,
        cursor: Self::Cursor,
        max: usize,
    ) -> impl Future<Output = Result<Fetched<Self::Cursor>, (CallError, Self::Cursor)>> + Send;
}
