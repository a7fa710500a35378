//! Aggregation tiles in the embedded store: table
//! `feast_rs_tiles_{project}_{view}`, one row per entity, part, hop and
//! tile (the part's marker at hop 0, tile 0), written in the transaction of
//! the batch and its checkpoint.

use rusqlite::{Connection, OptionalExtension, params};

use crate::aggregate::Plan;
use crate::aggregate::stored::{
    self, Part, StoredTiles, TileAddr, TileBatch, marker_bytes, read_marker,
};
use crate::definition::FeatureViewDef;
use crate::online_store::{Error, Result, WriteStats};

pub(super) fn create(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS \"{table}\" (
            entity_key BLOB NOT NULL,
            part INTEGER NOT NULL,
            hop INTEGER NOT NULL,
            tile INTEGER NOT NULL,
            state BLOB NOT NULL,
            PRIMARY KEY (entity_key, part, hop, tile)
        ) WITHOUT ROWID"
    ))
}

/// Applies `batch` inside the caller's transaction.
pub(super) fn write_in(
    tx: &Connection,
    table: &str,
    view: &FeatureViewDef,
    batch: &TileBatch,
) -> Result<WriteStats> {
    create(tx, table)?;
    let plan = Plan::of(view);
    let part = batch.part.code();
    let mut get = tx.prepare_cached(&format!(
        "SELECT state FROM \"{table}\" WHERE entity_key = ?1 AND part = ?2 AND hop = ?3 AND tile = ?4"
    ))?;
    let mut put = tx.prepare_cached(&format!(
        "INSERT INTO \"{table}\" (entity_key, part, hop, tile, state) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (entity_key, part, hop, tile) DO UPDATE SET state = excluded.state"
    ))?;
    let mut delete = tx.prepare_cached(&format!(
        "DELETE FROM \"{table}\" WHERE entity_key = ?1 AND part = ?2 AND hop = ?3 AND tile >= ?4 AND tile < ?5"
    ))?;
    let mut written = 0;
    let mut old: Vec<(TileAddr, Vec<u8>)> = Vec::new();
    for entity in &batch.folded.entities {
        let key = entity.key.as_slice();
        let marker = get
            .query_row(params![key, part, 0, 0], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
            .map(|b| read_marker(&b))
            .transpose()
            .map_err(|error| Error::Tile {
                view: view.name,
                error,
            })?;
        old.clear();
        if batch.part == Part::Stream {
            for addr in stored::touched(&plan, entity, marker) {
                if let Some(b) = get
                    .query_row(params![key, part, addr.hop_seconds, addr.index], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional()?
                {
                    old.push((addr, b));
                }
            }
        }
        let update = stored::update(view, &plan, batch.part, entity, marker, |addr| {
            old.iter()
                .find(|(a, _)| *a == addr)
                .map(|(_, b)| b.as_slice())
        })
        .map_err(|error| Error::Tile {
            view: view.name,
            error,
        })?;
        for (hop, from, to) in &update.deletes {
            delete.execute(params![key, part, hop, from, to])?;
        }
        for (addr, bytes) in &update.puts {
            written += put.execute(params![key, part, addr.hop_seconds, addr.index, bytes])?;
        }
        put.execute(params![key, part, 0, 0, marker_bytes(update.marker)])?;
    }
    Ok(WriteStats {
        rows: batch.folded.entities.len(),
        values_written: written,
    })
}

/// The tiles and markers of each key.
pub(super) fn read(
    conn: &Connection,
    table: &str,
    view: &FeatureViewDef,
    keys: &[Vec<u8>],
    at_us: i64,
) -> Result<Vec<StoredTiles>> {
    let mut stmt = match conn.prepare_cached(&format!(
        "SELECT part, hop, tile, state FROM \"{table}\" WHERE entity_key = ?1"
    )) {
        Ok(s) => s,
        Err(rusqlite::Error::SqliteFailure(_, Some(msg))) if msg.starts_with("no such table") => {
            return Ok(vec![StoredTiles::default(); keys.len()]);
        }
        Err(e) => return Err(e.into()),
    };
    let ranges = stored::read_range(view, &Plan::of(view), at_us);
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let mut found = StoredTiles::default();
        let mut rows = stmt.query(params![key])?;
        while let Some(r) = rows.next()? {
            let Some(part) = Part::from_code(r.get(0)?) else {
                continue;
            };
            let hop: u64 = r.get(1)?;
            let index: i64 = r.get(2)?;
            if hop == 0 {
                let bytes: Vec<u8> = r.get(3)?;
                let m = read_marker(&bytes).map_err(|error| Error::Tile {
                    view: view.name,
                    error,
                })?;
                found.markers.push((part, m));
            } else if ranges
                .iter()
                .any(|&(h, from, to)| h == hop && (from..to).contains(&index))
            {
                found.tiles.push((
                    TileAddr {
                        hop_seconds: hop,
                        index,
                    },
                    r.get(3)?,
                ));
            }
        }
        out.push(found);
    }
    Ok(out)
}

/// The entity keys with a marker.
pub(super) fn keys(conn: &Connection, table: &str) -> Result<Vec<Vec<u8>>> {
    let mut stmt = match conn.prepare(&format!(
        "SELECT DISTINCT entity_key FROM \"{table}\" WHERE hop = 0"
    )) {
        Ok(s) => s,
        Err(rusqlite::Error::SqliteFailure(_, Some(msg))) if msg.starts_with("no such table") => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}
