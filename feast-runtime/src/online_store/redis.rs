//! The Redis online store, in Feast's layout: one hash per (entity key,
//! project), keyed by the version-3 entity key followed by the project name;
//! a field per feature named by the little-endian murmur3-32 of
//! `view:feature`, holding `Value` bytes; and `_ts:view`, the event time as
//! a protobuf `Timestamp`. Feast's own reader serves what this writes.
//!
//! Writes go through a server-side script, atomic by Redis' semantics, that
//! replaces a view's fields only with a newer event (event time, then the
//! created time kept beside it in `_created:view`, a field Feast ignores);
//! Feast reads the timestamp and writes in two round trips, with a race.
//! A script call carries up to 500 entities, and the calls of a write are
//! pipelined. Checkpoints and materialization state live in the same Redis
//! under `feast_rs:{project}:...` keys; a checkpoint is written only after
//! the rows it covers are acknowledged.
//!
//! Connections come from a small pool; a connection that fails is dropped,
//! and while Redis is unreachable new connections are tried at most once per
//! back-off period (100 ms doubling to 5 s), so callers fail fast instead of
//! queueing on a dead server.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Client, Connection, Value as RedisValue};

use super::encoding::Value;
use super::{
    Checkpoint, CheckpointUpdate, Error, OnlineBatch, OnlineStore, Result, StoredRow, WriteStats,
};
use crate::definition::FeatureViewDef;

/// Entities per script call.
const CHUNK: usize = 500;
/// Idle connections kept.
const POOL: usize = 8;

/// Replaces a view's fields of each entity when the new event is newer.
///
/// KEYS: the entity hashes. ARGV: `_ts:view`, `_created:view`, the number of
/// features F, the F field names, the key ttl (0 for none), then per entity:
/// event seconds, event nanos, `created@event` (microseconds each, created
/// -1 for none), the Timestamp bytes, the F values. Returns how many
/// entities were written.
///
/// `_created:view` holds `created@event`: the created time counts only while
/// `_ts:view` still holds that event. A writer that leaves `_created` alone
/// (Feast's own) makes it stale, and a stale one is no created time at all,
/// so it cannot refuse a later write at the same event time.
const WRITE_SCRIPT: &str = r"
local function varint(s, pos)
  local result, scale = 0, 1
  while pos <= #s do
    local b = string.byte(s, pos)
    pos = pos + 1
    result = result + (b % 128) * scale
    if b < 128 then break end
    scale = scale * 128
  end
  if result >= 9223372036854775808 then result = result - 18446744073709551616 end
  return result, pos
end
local function timestamp(s)
  local secs, nanos, pos = 0, 0, 1
  while pos <= #s do
    local tag = string.byte(s, pos)
    local v
    v, pos = varint(s, pos + 1)
    if tag == 8 then secs = v elseif tag == 16 then nanos = v end
  end
  return secs, nanos
end
local ts_field, created_field = ARGV[1], ARGV[2]
local nf = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4 + nf])
local per = 4 + nf
local written = 0
-- One argument table for every HSET, refilled: no allocation per entity.
local args = {ts_field, false, created_field, false}
for f = 1, nf do
  args[3 + 2 * f] = ARGV[3 + f]
  args[4 + 2 * f] = false
end
for i, key in ipairs(KEYS) do
  local o = 5 + nf + (i - 1) * per
  local secs, nanos = tonumber(ARGV[o]), tonumber(ARGV[o + 1])
  local created = tonumber(string.match(ARGV[o + 2], '^(-?%d+)@'))
  local newer = true
  local cur = redis.call('HGET', key, ts_field)
  if cur then
    local cs, cn = timestamp(cur)
    if secs ~= cs then
      newer = secs > cs
    elseif nanos ~= cn then
      newer = nanos > cn
    else
      local cc = -1
      local cv = redis.call('HGET', key, created_field)
      if cv then
        local c, e = string.match(cv, '^(-?%d+)@(-?%d+)$')
        if c and tonumber(e) == cs * 1000000 + math.floor(cn / 1000) then cc = tonumber(c) end
      end
      newer = created >= cc
    end
  end
  if newer then
    args[2] = ARGV[o + 3]
    args[4] = ARGV[o + 2]
    for f = 1, nf do
      args[4 + 2 * f] = ARGV[o + 3 + f]
    end
    redis.call('HSET', key, unpack(args))
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
";

/// Advances a checkpoint, only ever forwards; a repeated call (a lost
/// reply, retried) changes nothing, so the record count stays exact.
///
/// KEYS[1]: the checkpoint hash. ARGV: sequence number ('' for none),
/// finished (0/1), records, the time.
const CHECKPOINT_SCRIPT: &str = r"
local seq, finished, records = ARGV[1], ARGV[2], ARGV[3]
if seq ~= '' then
  local cur = redis.call('HGET', KEYS[1], 'sequence_number')
  if cur and (#seq < #cur or (#seq == #cur and seq <= cur)) then return 0 end
  redis.call('HSET', KEYS[1], 'sequence_number', seq)
end
if finished == '1' then redis.call('HSET', KEYS[1], 'finished', '1') end
redis.call('HINCRBY', KEYS[1], 'records', records)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
return 1
";

/// A Redis server, as Feast's `connection_string` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS (`ssl=true`).
    pub ssl: bool,
    /// A PEM file of the certificates to trust instead of the system's
    /// (`ssl_ca_certs=PATH`, redis-py's name, which Feast passes through).
    pub ssl_ca_certs: Option<String>,
}

impl ConnectionSpec {
    /// Parses `host:port[,db=N][,password=...][,username=...][,ssl=true]
    /// [,ssl_ca_certs=PATH]`.
    pub fn parse(s: &str) -> std::result::Result<ConnectionSpec, String> {
        let mut parts = s.split(',').map(str::trim);
        let address = parts.next().filter(|a| !a.is_empty()).ok_or_else(|| {
            format!("redis connection string {s:?} names no host (expected \"host:port,db=0\")")
        })?;
        let (host, port) = match address.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| format!("redis connection string: port {p:?} is not a number"))?,
            ),
            None => (address, 6379),
        };
        let mut spec = ConnectionSpec {
            host: host.to_owned(),
            port,
            db: 0,
            username: None,
            password: None,
            ssl: false,
            ssl_ca_certs: None,
        };
        for part in parts.filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("redis connection string: {part:?} is not `key=value`"))?;
            match key {
                "db" => {
                    spec.db = value.parse().map_err(|_| {
                        format!("redis connection string: db {value:?} is not a number")
                    })?;
                }
                "password" => spec.password = Some(value.to_owned()),
                "username" => spec.username = Some(value.to_owned()),
                "ssl" => {
                    spec.ssl = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(format!(
                                "redis connection string: ssl {value:?} is not true or false"
                            ));
                        }
                    };
                }
                "ssl_ca_certs" => spec.ssl_ca_certs = Some(value.to_owned()),
                other => {
                    return Err(format!(
                        "redis connection string: unknown option `{other}`; expected db, password, username, ssl or ssl_ca_certs"
                    ));
                }
            }
        }
        if spec.ssl_ca_certs.is_some() && !spec.ssl {
            return Err("redis connection string: ssl_ca_certs needs ssl=true".into());
        }
        Ok(spec)
    }

    /// A `redis://` (or, with TLS, `rediss://`) URL for the client.
    fn url(&self) -> String {
        let auth = match (&self.username, &self.password) {
            (None, None) => String::new(),
            (user, password) => format!(
                "{}:{}@",
                percent_encode(user.as_deref().unwrap_or("")),
                percent_encode(password.as_deref().unwrap_or(""))
            ),
        };
        let scheme = if self.ssl { "rediss" } else { "redis" };
        format!("{scheme}://{auth}{}:{}/{}", self.host, self.port, self.db)
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// MurmurHash3, x86 32-bit, the hash Feast names feature fields with.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The hash field of a feature: `murmur3_32("view:feature")`, little-endian.
pub fn feature_field(view: &str, feature: &str) -> [u8; 4] {
    murmur3_32(format!("{view}:{feature}").as_bytes(), 0).to_le_bytes()
}

/// The event-time field of a view.
pub fn timestamp_field(view: &str) -> String {
    format!("_ts:{view}")
}

fn created_field(view: &str) -> String {
    format!("_created:{view}")
}

/// A `google.protobuf.Timestamp`: field 1 seconds, field 2 nanos, varints,
/// zero fields left out (as protobuf writes them).
pub fn encode_timestamp(micros: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    write_timestamp(&mut out, micros);
    out
}

fn write_timestamp(out: &mut Vec<u8>, micros: i64) {
    let seconds = micros.div_euclid(1_000_000);
    let nanos = micros.rem_euclid(1_000_000) * 1000;
    let mut varint = |tag: u8, v: i64| {
        out.push(tag);
        let mut v = v as u64;
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    if seconds != 0 {
        varint(0x08, seconds);
    }
    if nanos != 0 {
        varint(0x10, nanos);
    }
}

/// Reads a `google.protobuf.Timestamp`, in microseconds.
pub fn decode_timestamp(bytes: &[u8]) -> std::result::Result<i64, String> {
    let (mut seconds, mut nanos, mut pos) = (0i64, 0i64, 0);
    while pos < bytes.len() {
        let tag = bytes[pos];
        pos += 1;
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = *bytes
                .get(pos)
                .ok_or_else(|| "a truncated Timestamp".to_owned())?;
            pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err("a Timestamp varint longer than 10 bytes".into());
            }
        }
        match tag {
            0x08 => seconds = v as i64,
            0x10 => nanos = v as i64,
            _ => return Err(format!("unexpected Timestamp field tag {tag:#x}")),
        }
    }
    Ok(seconds * 1_000_000 + nanos / 1000)
}

/// The Redis online store.
pub struct RedisStore {
    project: String,
    client: Client,
    key_ttl_seconds: u64,
    idle: Mutex<Vec<Pooled>>,
    /// While Redis is unreachable: when a new connection may next be tried,
    /// and the current wait.
    down: Mutex<Option<(Instant, Duration)>>,
    write_script: redis::Script,
    checkpoint_script: redis::Script,
}

/// A connection with the scripts loaded on its server.
struct Pooled {
    conn: Connection,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

fn redis_err(e: redis::RedisError) -> Error {
    Error::Redis(e.to_string())
}

impl RedisStore {
    /// A store for `project` on the server `connection_string` names (in
    /// Feast's format). Nothing is connected until the first call.
    pub fn open(
        connection_string: &str,
        project: &str,
        key_ttl_seconds: u64,
    ) -> Result<RedisStore> {
        let spec = ConnectionSpec::parse(connection_string).map_err(Error::Config)?;
        let client = if spec.ssl {
            let root_cert = match &spec.ssl_ca_certs {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    Error::Config(format!(
                        "redis connection string: ssl_ca_certs {path:?} cannot be read: {e}"
                    ))
                })?),
                None => None,
            };
            // The client's TLS asks for the process' default provider;
            // another part of the process may have set one already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert,
            };
            Client::build_with_tls(spec.url(), certificates)
        } else {
            Client::open(spec.url())
        }
        .map_err(|e| Error::Config(format!("redis connection string: {e}")))?;
        Ok(RedisStore {
            project: project.to_owned(),
            client,
            key_ttl_seconds,
            idle: Mutex::new(Vec::new()),
            down: Mutex::new(None),
            write_script: redis::Script::new(WRITE_SCRIPT),
            checkpoint_script: redis::Script::new(CHECKPOINT_SCRIPT),
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

    /// Runs `f` on a pooled connection; a failed connection is dropped.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut pooled = match pooled {
            Some(p) => p,
            None => self.connect()?,
        };
        match f(&mut pooled.conn) {
            Ok(v) => {
                let mut idle = self
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if idle.len() < POOL {
                    idle.push(pooled);
                }
                Ok(v)
            }
            Err(e) => {
                // A connection lost or timed out: Redis is down or hung.
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                {
                    self.mark_down();
                    return Err(Error::Unavailable(e.to_string()));
                }
                if e.is_unrecoverable_error() {
                    self.mark_down();
                }
                Err(redis_err(e))
            }
        }
    }

    fn connect(&self) -> Result<Pooled> {
        {
            let down = self
                .down
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((until, _)) = *down
                && Instant::now() < until
            {
                return Err(Error::Unavailable(
                    "redis is unreachable; waiting before the next attempt".into(),
                ));
            }
        }
        let conn = self
            .client
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|c| {
                c.set_read_timeout(Some(Duration::from_secs(5)))?;
                c.set_write_timeout(Some(Duration::from_secs(5)))?;
                Ok(c)
            });
        match conn {
            Ok(mut conn) => {
                // Loaded once per connection, so that pipelines can EVALSHA.
                load_scripts(&mut conn).map_err(redis_err)?;
                *self
                    .down
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                Ok(Pooled { conn })
            }
            Err(e) => {
                self.mark_down();
                Err(Error::Unavailable(e.to_string()))
            }
        }
    }

    /// Backs off new connections: 100 ms, doubling to 5 s.
    fn mark_down(&self) {
        let mut down = self
            .down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let wait = match *down {
            Some((_, w)) => (w * 2).min(Duration::from_secs(5)),
            None => Duration::from_millis(100),
        };
        *down = Some((Instant::now() + wait, wait));
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Every entity hash of the project: their keys end with its name
    /// (Feast's own teardown scans the same way).
    fn project_keys(&self, c: &mut Connection) -> redis::RedisResult<Vec<Vec<u8>>> {
        let pattern = format!("*{}", glob_escape(&self.project));
        let mut scan = redis::cmd("SCAN");
        scan.cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000);
        scan.iter::<Vec<u8>>(c)?.collect()
    }

    /// Pipelined script calls writing `batch` for `view`.
    fn add_writes(&self, pipe: &mut redis::Pipeline, view: &FeatureViewDef, batch: &OnlineBatch) {
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
            cmd.arg(self.write_script.get_hash()).arg(end - start);
            for row in start..end {
                key.clear();
                key.extend_from_slice(&batch.entity_keys[row]);
                key.extend_from_slice(self.project.as_bytes());
                cmd.arg(&key[..]);
            }
            cmd.arg(&ts_field).arg(&created).arg(fields.len());
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

impl OnlineStore for RedisStore {
    fn write(&self, view: &FeatureViewDef, batch: &OnlineBatch) -> Result<WriteStats> {
        Ok(self.write_batches(&[(view, batch)], None)?.remove(0))
    }

    fn write_batches(
        &self,
        writes: &[(&FeatureViewDef, &OnlineBatch)],
        checkpoint: Option<&CheckpointUpdate<'_>>,
    ) -> Result<Vec<WriteStats>> {
        let mut pipe = redis::pipe();
        for (view, batch) in writes {
            self.add_writes(&mut pipe, view, batch);
        }
        let written: Vec<i64> = if writes.iter().all(|(_, b)| b.is_empty()) {
            Vec::new()
        } else {
            self.with_conn(|c| match pipe.query(c) {
                // The server lost its scripts (`SCRIPT FLUSH`, a replica
                // promoted): none of the calls ran. Load them and send the
                // batch again.
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    load_scripts(c)?;
                    pipe.query(c)
                }
                written => written,
            })?
        };
        // The checkpoint only after every row above is acknowledged.
        if let Some(cp) = checkpoint {
            let key = self.internal_key(&format!(
                "checkpoint:{}:{}:{}",
                cp.consumer, cp.stream, cp.shard
            ));
            let now = chrono::Utc::now().to_rfc3339();
            self.with_conn(|c| {
                self.checkpoint_script
                    .key(&key)
                    .arg(cp.sequence_number.unwrap_or(""))
                    .arg(if cp.finished { "1" } else { "0" })
                    .arg(cp.records)
                    .arg(&now)
                    .invoke::<i64>(c)
            })?;
        }
        // Script calls come back in order, CHUNK entities each.
        let mut calls = written.into_iter();
        Ok(writes
            .iter()
            .map(|(_, batch)| {
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
        let key = self.internal_key(&format!("checkpoint:{consumer}:{stream}:{shard}"));
        let (seq, finished, records): (Option<String>, Option<String>, Option<u64>) = self
            .with_conn(|c| {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("sequence_number")
                    .arg("finished")
                    .arg("records")
                    .query(c)
            })?;
        if seq.is_none() && finished.is_none() && records.is_none() {
            return Ok(None);
        }
        Ok(Some(Checkpoint {
            sequence_number: seq,
            finished: finished.as_deref() == Some("1"),
            records: records.unwrap_or(0),
        }))
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
        let replies: Vec<Vec<RedisValue>> = self.with_conn(|c| pipe.query(c))?;
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
                let event_ts = decode_timestamp(&ts)
                    .map_err(|e| Error::Decode(super::encoding::DecodeError(e)))?;
                let values = reply[..features.len()]
                    .iter()
                    .map(|v| bytes(v).map(|b| Value::decode(&b)).transpose())
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(Some(StoredRow { event_ts, values }))
            })
            .collect()
    }

    fn entity_keys(&self, view: &FeatureViewDef) -> Result<Vec<Vec<u8>>> {
        // The project's hashes with the view's timestamp field hold its values.
        let ts_field = timestamp_field(view.name);
        let suffix = self.project.len();
        self.with_conn(|c| {
            let keys = self.project_keys(c)?;
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HEXISTS").arg(k).arg(&ts_field);
            }
            let has: Vec<bool> = if keys.is_empty() {
                Vec::new()
            } else {
                pipe.query(c)?
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
        self.with_conn(|c| redis::cmd("PING").query::<String>(c))?;
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
        self.with_conn(|c| {
            let keys = self.project_keys(c)?;
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("HDEL").arg(k).arg(&fields).ignore();
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
        self.with_conn(|c| redis::cmd("HGET").arg(&key).arg(view).query(c))
    }

    fn set_materialized_until(&self, view: &str, end_us: i64) -> Result<()> {
        let key = self.internal_key("materialized");
        self.with_conn(|c| {
            redis::cmd("HSET")
                .arg(&key)
                .arg(view)
                .arg(end_us)
                .query::<()>(c)
        })
    }
}

/// Loads the scripts on the server, for pipelined `EVALSHA`s.
fn load_scripts(conn: &mut Connection) -> redis::RedisResult<()> {
    for script in [WRITE_SCRIPT, CHECKPOINT_SCRIPT] {
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script)
            .query::<String>(conn)?;
    }
    Ok(())
}

/// Escapes Redis glob characters.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn feature_fields_match_feasts_mmh3() {
        assert_eq!(
            hex(&feature_field("driver_hourly_stats", "conv_rate")),
            "6160e3da"
        );
        assert_eq!(
            hex(&feature_field("driver_hourly_stats", "acc_rate")),
            "fa5e58ad"
        );
        assert_eq!(
            hex(&feature_field("driver_hourly_stats", "avg_daily_trips")),
            "18a5e5a3"
        );
        // The reference vectors of MurmurHash3_x86_32.
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn timestamps_are_protobuf_bytes() {
        // 2025-01-01T12:00:00.123456Z, Feast's reference row.
        let t = 1_735_732_800_123_456;
        assert_eq!(hex(&encode_timestamp(t)), "08c0dcd4bb06108094ef3a");
        assert_eq!(decode_timestamp(&encode_timestamp(t)), Ok(t));
        assert_eq!(
            hex(&encode_timestamp(1_735_732_800_000_000)),
            "08c0dcd4bb06"
        );
        assert_eq!(encode_timestamp(0), Vec::<u8>::new());
        assert_eq!(decode_timestamp(&[]), Ok(0));
        assert!(decode_timestamp(&[0x08, 0x80]).is_err());
        assert_eq!(
            timestamp_field("driver_hourly_stats"),
            "_ts:driver_hourly_stats"
        );
    }

    #[test]
    fn connection_strings_in_feasts_format() {
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,db=2,password=p@ss:w,ssl=false"),
            Ok(ConnectionSpec {
                host: "localhost".into(),
                port: 6379,
                db: 2,
                username: None,
                password: Some("p@ss:w".into()),
                ssl: false,
                ssl_ca_certs: None,
            })
        );
        let spec = ConnectionSpec::parse("redis.internal").unwrap();
        assert_eq!((spec.port, spec.db), (6379, 0));
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,password=p@ss:w")
                .unwrap()
                .url(),
            "redis://:p%40ss%3Aw@localhost:6379/0"
        );
        assert_eq!(
            ConnectionSpec::parse("localhost:63a9").unwrap_err(),
            "redis connection string: port \"63a9\" is not a number"
        );
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,dbx=1").unwrap_err(),
            "redis connection string: unknown option `dbx`; expected db, password, username, ssl or ssl_ca_certs"
        );
        let tls = ConnectionSpec::parse("cache.internal:6380,ssl=True,password=p").unwrap();
        assert_eq!(tls.url(), "rediss://:p@cache.internal:6380/0");
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,ssl=yes").unwrap_err(),
            "redis connection string: ssl \"yes\" is not true or false"
        );
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,ssl_ca_certs=/ca.pem").unwrap_err(),
            "redis connection string: ssl_ca_certs needs ssl=true"
        );
        assert!(ConnectionSpec::parse("").is_err());
    }
}
