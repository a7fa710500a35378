//! Aggregation tiles in the entity's hash, beside Feast's fields (which
//! Feast's reader names one by one, so these stay out of its way):
//! `_agg:{view}:{part}` holds the part's marker, and
//! `_agg:{view}:{part}:{hop}:{tile}` a tile.
//!
//! A write reads the fields it merges into, computes the new tiles, and
//! sends one script (`tiles.lua`) that applies them only if those fields are
//! unchanged, together with the shard's checkpoint; a batch already
//! checkpointed is refused, so a replay never counts twice.

use redis::Value as RedisValue;

use super::RedisStore;
use crate::aggregate::Plan;
use crate::aggregate::stored::{
    self, Part, StoredTiles, TileAddr, TileBatch, marker_bytes, read_marker,
};
use crate::definition::FeatureViewDef;
use crate::online_store::{CheckpointUpdate, Error, Result, WriteStats};

/// Attempts of a write whose fields another writer changed meanwhile.
const ATTEMPTS: usize = 16;

pub(super) fn marker_field(view: &str, part: Part) -> String {
    format!("_agg:{view}:{}", part.code())
}

pub(super) fn tile_field(view: &str, part: Part, addr: TileAddr) -> String {
    format!(
        "_agg:{view}:{}:{}:{}",
        part.code(),
        addr.hop_seconds,
        addr.index
    )
}

fn bulk(v: &RedisValue) -> Option<&[u8]> {
    match v {
        RedisValue::BulkString(b) => Some(b),
        _ => None,
    }
}

fn tile_error(view: &FeatureViewDef) -> impl Fn(crate::aggregate::TileError) -> Error + '_ {
    move |error| Error::Tile {
        view: view.name,
        error,
    }
}

impl RedisStore {
    /// Writes the tiles of several views and the checkpoint in one script
    /// call, retrying when another writer changed the merged fields.
    /// `None` when the checkpoint shows the batch applied already.
    pub(super) fn write_tiles(
        &self,
        writes: &[(&FeatureViewDef, &TileBatch)],
        checkpoint: Option<&CheckpointUpdate<'_>>,
    ) -> Result<Vec<WriteStats>> {
        let (fence_key, token) = self.fence_of(checkpoint);
        for _ in 0..ATTEMPTS {
            // Read what each entity's update depends on.
            let mut pipe = redis::pipe();
            let mut asked: Vec<Vec<String>> = Vec::new();
            for (view, batch) in writes {
                let plan = Plan::of(view);
                for e in &batch.folded.entities {
                    // The marker first; the tiles the merge reads once it is
                    // known (those `touched` names), all in one round trip:
                    // every tile of the batch that is in the window.
                    let mut fields = vec![marker_field(view.name, batch.part)];
                    if batch.part == Part::Stream {
                        fields.extend(
                            e.tiles
                                .iter()
                                .map(|t| TileAddr {
                                    hop_seconds: plan.groups[t.group].hop_seconds,
                                    index: t.index,
                                })
                                .map(|a| tile_field(view.name, batch.part, a)),
                        );
                    }
                    pipe.cmd("HMGET").arg(self.redis_key(&e.key)).arg(&fields);
                    asked.push(fields);
                }
            }
            let replies: Vec<Vec<RedisValue>> = if asked.is_empty() {
                Vec::new()
            } else {
                self.pool.with_conn(|c| pipe.query(c))?
            };

            // The script call: checkpoint, then per entity its checks,
            // puts and deletes.
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(self.tiles_script.get_hash()).arg(1 + asked.len());
            cmd.arg(&fence_key);
            for (_, batch) in writes {
                for e in &batch.folded.entities {
                    cmd.arg(self.redis_key(&e.key));
                }
            }
            cmd.arg(token);
            match checkpoint {
                Some(cp) => cmd
                    .arg("1")
                    .arg(cp.sequence_number.unwrap_or(""))
                    .arg(if cp.finished { "1" } else { "0" })
                    .arg(cp.records),
                None => cmd.arg("0").arg("").arg("0").arg(0),
            };
            cmd.arg(chrono::Utc::now().to_rfc3339())
                .arg(self.key_ttl_seconds)
                .arg(
                    checkpoint
                        .and_then(|cp| crate::online_store::watermarks_text(cp.watermarks))
                        .unwrap_or_default(),
                );
            let mut stats = Vec::with_capacity(writes.len());
            let mut answers = asked.iter().zip(&replies);
            for (view, batch) in writes {
                let plan = Plan::of(view);
                let mut puts = 0;
                for e in &batch.folded.entities {
                    // A pipeline answers each command: one reply per entity.
                    let Some((fields, reply)) = answers.next() else {
                        return Err(Error::Contended(view.name));
                    };
                    let marker = reply
                        .first()
                        .and_then(bulk)
                        .map(read_marker)
                        .transpose()
                        .map_err(tile_error(view))?;
                    let update = stored::update(view, &plan, batch.part, e, marker, |addr| {
                        let name = tile_field(view.name, batch.part, addr);
                        fields
                            .iter()
                            .position(|f| *f == name)
                            .and_then(|i| reply.get(i))
                            .and_then(bulk)
                    })
                    .map_err(tile_error(view))?;
                    cmd.arg(fields.len());
                    for (f, v) in fields.iter().zip(reply) {
                        cmd.arg(f).arg(bulk(v).unwrap_or(b""));
                    }
                    cmd.arg(update.puts.len() + 1);
                    for (addr, bytes) in &update.puts {
                        cmd.arg(tile_field(view.name, batch.part, *addr))
                            .arg(bytes.as_slice());
                    }
                    cmd.arg(&fields[0]).arg(&marker_bytes(update.marker)[..]);
                    puts += update.puts.len();
                    let dead: Vec<String> = update
                        .deletes
                        .iter()
                        .flat_map(|&(hop_seconds, from, to)| {
                            (from..to).map(move |index| TileAddr { hop_seconds, index })
                        })
                        .map(|a| tile_field(view.name, batch.part, a))
                        .collect();
                    cmd.arg(dead.len()).arg(&dead);
                }
                stats.push(WriteStats {
                    rows: batch.folded.entities.len(),
                    values_written: puts,
                });
            }
            let answer: i64 = self.pool.with_conn(|c| match cmd.query(c) {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    self.pool.load_scripts(c)?;
                    cmd.query(c)
                }
                answer => answer,
            })?;
            match answer {
                super::FENCED => return Err(super::fenced(checkpoint, token)),
                -2 => continue,
                -1 => {
                    return Ok(writes.iter().map(|_| WriteStats::default()).collect());
                }
                _ => return Ok(stats),
            }
        }
        Err(Error::Contended(writes.first().map_or("", |(v, _)| v.name)))
    }

    /// The markers and the tiles a read at `at_us` needs, per key.
    pub(super) fn read_tiles_at(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        at_us: i64,
    ) -> Result<Vec<StoredTiles>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let plan = Plan::of(view);
        let mut fields: Vec<String> = Part::ALL
            .iter()
            .map(|&p| marker_field(view.name, p))
            .collect();
        let mut addrs: Vec<(Part, TileAddr)> = Vec::new();
        for (hop_seconds, from, to) in stored::read_range(view, &plan, at_us) {
            for index in from..to {
                for part in Part::ALL {
                    let addr = TileAddr { hop_seconds, index };
                    fields.push(tile_field(view.name, part, addr));
                    addrs.push((part, addr));
                }
            }
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET").arg(self.redis_key(key)).arg(&fields);
        }
        let replies: Vec<Vec<RedisValue>> = self.pool.with_conn(|c| pipe.query(c))?;
        replies
            .into_iter()
            .map(|reply| {
                let mut out = StoredTiles::default();
                for (part, v) in Part::ALL.iter().zip(&reply) {
                    if let Some(b) = bulk(v) {
                        out.markers
                            .push((*part, read_marker(b).map_err(tile_error(view))?));
                    }
                }
                for ((_, addr), v) in addrs.iter().zip(&reply[Part::ALL.len()..]) {
                    if let Some(b) = bulk(v) {
                        out.tiles.push((*addr, b.to_vec()));
                    }
                }
                Ok(out)
            })
            .collect()
    }
}
