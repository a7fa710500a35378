//! The dead-letter sink: records that could not be ingested, with why.
//!
//! By default an NDJSON file per source under `data/dead_letters/`; each line
//! holds the shard, the sequence number, the reason and the raw bytes
//! (base64). A crash between writing here and committing the batch may
//! repeat a line on replay; `(shard, sequence_number)` identifies a record.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    pub shard: &'a str,
    pub sequence_number: &'a str,
    pub reason: &'a str,
    pub data: &'a [u8],
}

/// An append-only NDJSON file.
#[derive(Debug)]
pub struct DeadLetterSink {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl DeadLetterSink {
    pub fn new(path: PathBuf) -> DeadLetterSink {
        DeadLetterSink {
            path,
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `letters` and syncs the file.
    pub fn write(&self, source: &str, letters: &[DeadLetter<'_>]) -> std::io::Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let Some(file) = guard.as_mut() else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for l in letters {
            serde_json::to_writer(
                &mut buf,
                &serde_json::json!({
                    "source": source,
                    "shard_id": l.shard,
                    "sequence_number": l.sequence_number,
                    "reason": l.reason,
                    "data_base64": crate::transform::base64::encode(l.data),
                }),
            )
            .map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        file.write_all(&buf)?;
        file.sync_data()
    }
}
