//! The Redis online store, in Feast's layout ([`layout`]); Feast's own reader
//! serves what this writes.
//!
//! Writes go through a server-side script (`write.lua`), atomic by Redis'
//! semantics, that replaces a view's fields only with a newer event (event
//! time, then the created time kept beside it); Feast reads the timestamp
//! and writes in two round trips, with a race. A script call carries up to
//! 500 entities, and the calls of a write are pipelined. Checkpoints and
//! materialization state live in the same Redis under `feast_rs:{project}:...`
//! keys; a checkpoint (`checkpoint.lua`) is written only after the rows it
//! covers are acknowledged. Connections come from a pool (`connection.rs`).

mod config;
mod connection;
#[doc(hidden)]
pub mod layout;
mod tiles;

use std::fmt::Write as _;

use redis::Value as RedisValue;

pub use config::{ConfigError, ConnectionSpec, RedisConfig};
use connection::Pool;
use layout::{
    created_field, feature_field, glob_escape, read_timestamp, timestamp_field, write_timestamp,
};

use super::{
    Checkpoint, CheckpointUpdate, Error, OnlineBatch, OnlineStore, Result, StoredRow, WriteStats,
};
use crate::aggregate::stored::{Part, StoredTiles, TileBatch};
use crate::definition::{FeatureViewDef, Value};

/// Entities per script call.
const CHUNK: usize = 500;

/// Replaces a view's fields of each entity when the new event is newer.
const WRITE_SCRIPT: &str = concat!(include_str!("fence.lua"), include_str!("write.lua"));

/// Advances a checkpoint, only ever forwards.
const CHECKPOINT_SCRIPT: &str = concat!(include_str!("fence.lua"), include_str!("checkpoint.lua"));

/// Updates aggregation tiles with the checkpoint, atomically.
const TILES_SCRIPT: &str = concat!(include_str!("fence.lua"), include_str!("tiles.lua"));

/// Fences a shard for a new lease owner.
const TAKE_SCRIPT: &str = include_str!("take.lua");

/// What the scripts answer when the writer's fencing token is below the
/// shard's: a newer lease owner writes the shard now.
const FENCED: i64 = -3;

/// The Redis online store.
pub struct RedisStore {
    project: String,
    key_ttl_seconds: u64,
    pool: Pool,
    write_script: redis::Script,
    checkpoint_script: redis::Script,
    tiles_script: redis::Script,
    take_script: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `project` on the server `config` names. Nothing is
    /// connected until the first call.
    pub fn open(config: &RedisConfig, project: &str) -> Result<RedisStore> {
        let client = config.client()?;
        Ok(RedisStore {
            project: project.to_owned(),
            key_ttl_seconds: config.key_ttl_seconds,
            pool: Pool::new(
                client,
                &[WRITE_SCRIPT, CHECKPOINT_SCRIPT, TILES_SCRIPT, TAKE_SCRIPT],
            ),
            write_script: redis::Script::new(WRITE_SCRIPT),
            checkpoint_script: redis::Script::new(CHECKPOINT_SCRIPT),
            tiles_script: redis::Script::new(TILES_SCRIPT),
            take_script: redis::Script::new(TAKE_SCRIPT),
        })
    }

    /// Feast's key for a serialized entity key: it, then the project name.
    pub fn redis_key(&self, entity_key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(entity_key.len() + self.project.len());
        k.extend_from_slice(entity_key);
        k.extend_from_slice(self.project.as_bytes());
        k
    }

    fn internal_key(&self, what: &str) -> String {
        format!("feast_rs:{}:{what}", self.project)
    }

    fn checkpoint_key(&self, consumer: &str, stream: &str, shard: &str) -> String {
        self.internal_key(&format!("checkpoint:{consumer}:{stream}:{shard}"))
    }

    /// The hash whose `lease` field fences writes of `checkpoint`'s shard,
    /// and the writer's token (0 without a lease: nothing is checked).
    fn fence_of(&self, checkpoint: Option<&CheckpointUpdate<'_>>) -> (String, u64) {
        match checkpoint {
            Some(cp) => (
                self.checkpoint_key(cp.consumer, cp.stream, cp.shard),
                cp.fence.unwrap_or(0),
            ),
            None => (self.internal_key("unfenced"), 0),
        }
    }

    /// Every entity hash of the project: their keys end with its name
    /// (Feast's own teardown scans the same way).
    fn project_keys(&self, c: &mut redis::Connection) -> redis::RedisResult<Vec<Vec<u8>>> {
        let pattern = format!("*{}", glob_escape(&self.project));
        let mut scan = redis::cmd("SCAN");
        scan.cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000);
        scan.iter::<Vec<u8>>(c)?.collect()
    }

    /// Pipelined script calls writing `batch` for `view`, fenced by
    /// `fence` (the checkpoint hash and the writer's token).
    fn add_writes(
        &self,
        pipe: &mut redis::Pipeline,
        view: &FeatureViewDef,
        batch: &OnlineBatch,
        fence: &(String, u64),
    ) {
        let ts_field = timestamp_field(view.name);
        let created = created_field(view.name);
        let fields: Vec<[u8; 4]> = batch
            .features
            .iter()
            .map(|(name, _)| feature_field(view.name, name))
            .collect();
        let (mut key, mut ts, mut value) = (Vec::with_capacity(64), Vec::new(), Vec::new());
        let mut created_at = String::with_capacity(40);
        for start in (0..batch.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(batch.len());
            let cmd = pipe.cmd("EVALSHA");
            cmd.arg(self.write_script.get_hash())
                .arg(1 + end - start)
                .arg(&fence.0);
            for row in start..end {
                key.clear();
                key.extend_from_slice(&batch.entity_keys[row]);
                key.extend_from_slice(self.project.as_bytes());
                cmd.arg(&key[..]);
            }
            cmd.arg(fence.1)
                .arg(&ts_field)
                .arg(&created)
                .arg(fields.len());
            for f in &fields {
                cmd.arg(&f[..]);
            }
            cmd.arg(self.key_ttl_seconds);
            for row in start..end {
                let event = batch.event_ts[row];
                ts.clear();
                write_timestamp(&mut ts, event);
                created_at.clear();
                let _ = write!(
                    created_at,
                    "{}@{event}",
                    batch.created_ts[row].unwrap_or(-1)
                );
                cmd.arg(event.div_euclid(1_000_000))
                    .arg(event.rem_euclid(1_000_000) * 1000)
                    .arg(&created_at)
                    .arg(&ts[..]);
                for (_, values) in &batch.features {
                    value.clear();
                    values[row].encode(&mut value);
                    cmd.arg(&value[..]);
                }
            }
        }
    }
}

/// The error of a write refused for its fencing token.
fn fenced(checkpoint: Option<&CheckpointUpdate<'_>>, token: u64) -> Error {
    Error::Fenced {
        shard: checkpoint.map(|cp| cp.shard.to_owned()).unwrap_or_default(),
        token,
        current: None,
    }
}

impl OnlineStore for RedisStore {
    fn write(&self, view: &FeatureViewDef, batch: &OnlineBatch) -> Result<WriteStats> {
        Ok(self.write_batches(&[(view, batch)], None)?.remove(0))
    }

    fn write_batches(
        &self,
        writes: &[(&FeatureViewDef, &OnlineBatch)],
        checkpoint: Option<&CheckpointUpdate<'_>>,
    ) -> Result<Vec<WriteStats>> {
        let fence = self.fence_of(checkpoint);
        let mut pipe = redis::pipe();
        for (view, batch) in writes.iter().filter(|(_, b)| b.tiles.is_none()) {
            self.add_writes(&mut pipe, view, batch, &fence);
        }
        let tiled: Vec<(&FeatureViewDef, &TileBatch)> = writes
            .iter()
            .filter_map(|(v, b)| b.tiles.as_ref().map(|t| (*v, t)))
            .collect();
        let written: Vec<i64> = if writes
            .iter()
            .all(|(_, b)| b.tiles.is_some() || b.is_empty())
        {
            Vec::new()
        } else {
            self.pool.with_conn(|c| match pipe.query(c) {
                // The server lost its scripts (`SCRIPT FLUSH`, a replica
                // promoted): none of the calls ran. Load them and send the
                // batch again.
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    self.pool.load_scripts(c)?;
                    pipe.query(c)
                }
                written => written,
            })?
        };
        if written.contains(&FENCED) {
            return Err(fenced(checkpoint, fence.1));
        }
        // Tiles with the checkpoint, in one script; otherwise the checkpoint
        // alone, only after every row above is acknowledged.
        let mut tile_stats = if tiled.is_empty() {
            Vec::new()
        } else {
            self.write_tiles(&tiled, checkpoint)?
        }
        .into_iter();
        if let Some(cp) = checkpoint.filter(|_| tiled.is_empty()) {
            let now = chrono::Utc::now().to_rfc3339();
            let answer = self.pool.with_conn(|c| {
                self.checkpoint_script
                    .key(&fence.0)
                    .arg(fence.1)
                    .arg(cp.sequence_number.unwrap_or(""))
                    .arg(if cp.finished { "1" } else { "0" })
                    .arg(cp.records)
                    .arg(&now)
                    .arg(super::watermarks_text(cp.watermarks).unwrap_or_default())
                    .invoke::<i64>(c)
            })?;
            if answer == FENCED {
                return Err(fenced(checkpoint, fence.1));
            }
        }
        // Script calls come back in order, CHUNK entities each.
        let mut calls = written.into_iter();
        Ok(writes
            .iter()
            .map(|(_, batch)| {
                if batch.tiles.is_some() {
                    return tile_stats.next().unwrap_or_default();
                }
                let chunks = batch.len().div_ceil(CHUNK);
                let entities: i64 = calls.by_ref().take(chunks).sum();
                WriteStats {
                    rows: batch.len(),
                    values_written: entities as usize * batch.features.len(),
                }
            })
            .collect())
    }

    fn checkpoint(&self, consumer: &str, stream: &str, shard: &str) -> Result<Option<Checkpoint>> {
        let key = self.checkpoint_key(consumer, stream, shard);
        type Fields = (Option<String>, Option<String>, Option<u64>, Option<String>);
        let (seq, finished, records, watermarks): Fields = self.pool.with_conn(|c| {
            redis::cmd("HMGET")
                .arg(&key)
                .arg("sequence_number")
                .arg("finished")
                .arg("records")
                .arg("watermarks")
                .query(c)
        })?;
        if seq.is_none() && finished.is_none() && records.is_none() {
            return Ok(None);
        }
        Ok(Some(Checkpoint {
            sequence_number: seq,
            finished: finished.as_deref() == Some("1"),
            records: records.unwrap_or(0),
            watermarks: super::parse_watermarks(watermarks.as_deref()),
        }))
    }

    fn fence(&self, consumer: &str, stream: &str, shard: &str, token: u64) -> Result<()> {
        let key = self.checkpoint_key(consumer, stream, shard);
        let (fenced, current): (u8, u64) = self
            .pool
            .with_conn(|c| self.take_script.key(&key).arg(token).invoke(c))?;
        if fenced != 1 {
            return Err(Error::Fenced {
                shard: shard.to_owned(),
                token,
                current: Some(current),
            });
        }
        Ok(())
    }

    fn check_fence(&self, consumer: &str, stream: &str, shard: &str, token: u64) -> Result<()> {
        let key = self.checkpoint_key(consumer, stream, shard);
        let current: Option<u64> = self
            .pool
            .with_conn(|c| redis::cmd("HGET").arg(&key).arg("lease").query(c))?;
        match current {
            Some(current) if current > token => Err(Error::Fenced {
                shard: shard.to_owned(),
                token,
                current: Some(current),
            }),
            _ => Ok(()),
        }
    }

    fn read(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        features: &[&str],
    ) -> Result<Vec<Option<StoredRow>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ts_field = timestamp_field(view.name);
        let fields: Vec<[u8; 4]> = features
            .iter()
            .map(|f| feature_field(view.name, f))
            .collect();
        let mut pipe = redis::pipe();
        for key in keys {
            let cmd = pipe.cmd("HMGET");
            cmd.arg(self.redis_key(key));
            for f in &fields {
                cmd.arg(&f[..]);
            }
            cmd.arg(&ts_field);
        }
        let replies: Vec<Vec<RedisValue>> = self.pool.with_conn(|c| pipe.query(c))?;
        replies
            .into_iter()
            .map(|reply| {
                let bytes = |v: &RedisValue| match v {
                    RedisValue::BulkString(b) => Some(b.clone()),
                    _ => None,
                };
                let Some(ts) = reply.last().and_then(bytes) else {
                    return Ok(None);
                };
                let event_ts = read_timestamp(&ts)?;
                let values = reply[..features.len()]
                    .iter()
                    .map(|v| bytes(v).map(|b| Value::decode(&b)).transpose())
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(Some(StoredRow { event_ts, values }))
            })
            .collect()
    }

    fn read_tiles(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        at_us: i64,
    ) -> Result<Vec<StoredTiles>> {
        self.read_tiles_at(view, keys, at_us)
    }

    fn entity_keys(&self, view: &FeatureViewDef) -> Result<Vec<Vec<u8>>> {
        // The project's hashes with the view's timestamp field (an
        // aggregated view: its stream marker, or else its backfill marker)
        // hold its values.
        let ts_field = timestamp_field(view.name);
        let markers = Part::ALL.map(|p| tiles::marker_field(view.name, p));
        let suffix = self.project.len();
        self.pool.with_conn(|c| {
            let keys = self.project_keys(c)?;
            let mut pipe = redis::pipe();
            for k in &keys {
                if view.is_aggregated() {
                    pipe.cmd("HMGET").arg(k).arg(&markers);
                } else {
                    pipe.cmd("HMGET").arg(k).arg(&ts_field);
                }
            }
            let has: Vec<bool> = if keys.is_empty() {
                Vec::new()
            } else {
                pipe.query::<Vec<Vec<Option<Vec<u8>>>>>(c)?
                    .into_iter()
                    .map(|fields| fields.iter().any(Option::is_some))
                    .collect()
            };
            Ok(keys
                .into_iter()
                .zip(has)
                .filter(|(k, has)| *has && k.len() > suffix)
                .map(|(mut k, _)| {
                    k.truncate(k.len() - suffix);
                    k
                })
                .collect())
        })
    }

    fn update(&self, _views: &[&FeatureViewDef]) -> Result<()> {
        // Hashes come into being with their first write; check the server now.
        self.ping()
    }

    fn ping(&self) -> Result<()> {
        self.pool
            .with_conn(|c| redis::cmd("PING").query::<String>(c))?;
        Ok(())
    }

    fn teardown(&self, views: &[&FeatureViewDef]) -> Result<()> {
        // The views' fields go from every hash of the project, and a hash
        // left empty goes with them.
        let mut fields: Vec<Vec<u8>> = Vec::new();
        for v in views {
            fields.push(timestamp_field(v.name).into_bytes());
            fields.push(created_field(v.name).into_bytes());
            for f in v.schema {
                fields.push(feature_field(v.name, f.name).to_vec());
            }
        }
        let names: Vec<&str> = views.iter().map(|v| v.name).collect();
        let tile_prefixes: Vec<String> = views
            .iter()
            .filter(|v| v.is_aggregated())
            .map(|v| format!("_agg:{}:", v.name))
            .collect();
        self.pool.with_conn(|c| {
            let keys = self.project_keys(c)?;
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HDEL").arg(k).arg(&fields).ignore();
            }
            if !tile_prefixes.is_empty() {
                // Tile fields are named by time: find them in each hash.
                let mut names = redis::pipe();
                for k in &keys {
                    names.cmd("HKEYS").arg(k);
                }
                let all: Vec<Vec<Vec<u8>>> = names.query(c)?;
                for (k, hash_fields) in keys.iter().zip(all) {
                    let dead: Vec<&Vec<u8>> = hash_fields
                        .iter()
                        .filter(|f| tile_prefixes.iter().any(|p| f.starts_with(p.as_bytes())))
                        .collect();
                    if !dead.is_empty() {
                        pipe.cmd("HDEL").arg(k).arg(dead).ignore();
                    }
                }
            }
            pipe.cmd("HDEL")
                .arg(self.internal_key("materialized"))
                .arg(&names)
                .ignore();
            pipe.query::<()>(c)
        })
    }

    fn materialized_until(&self, view: &str) -> Result<Option<i64>> {
        let key = self.internal_key("materialized");
        self.pool
            .with_conn(|c| redis::cmd("HGET").arg(&key).arg(view).query(c))
    }

    fn set_materialized_until(&self, view: &str, end_us: i64) -> Result<()> {
        let key = self.internal_key("materialized");
        self.pool.with_conn(|c| {
            redis::cmd("HSET")
                .arg(&key)
                .arg(view)
                .arg(end_us)
                .query::<()>(c)
        })
    }
}
