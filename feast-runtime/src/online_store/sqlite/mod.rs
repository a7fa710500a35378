//! The embedded online store: one SQLite file in Feast's layout.
//!
//! Table `{project}_{view}` has Feast's columns and primary key
//! (`entity_key, feature_name`), so Feast's own reader can serve it. Two
//! deliberate differences, both invisible to Feast's SQL: the table is
//! `WITHOUT ROWID` (the primary key is the storage order, which makes the
//! separate `entity_key` index redundant, so it is not created), and the
//! upsert only replaces a row with a newer one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

mod checkpoint;
mod tiles;
mod value_text;

#[doc(hidden)]
pub use value_text::{python_float_repr, value_text};

use super::{
    Checkpoint, CheckpointUpdate, Error, OnlineBatch, OnlineStore, Result, StoredRow, WriteStats,
};
use crate::aggregate::stored::StoredTiles;
use crate::definition::{FeatureViewDef, Value};
use value_text::write_value_text;

/// The SQLite store's settings: `online_store: {type: sqlite, path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// The database file, relative to the repository (Feast's default
    /// `data/online.db`).
    pub path: String,
}

impl SqliteConfig {
    /// The `online_store` keys this store takes.
    pub const KEYS: &'static [&'static str] = &["path"];

    /// `path`, or Feast's default `data/online.db`.
    pub fn new(path: Option<&str>) -> SqliteConfig {
        SqliteConfig {
            path: path.unwrap_or("data/online.db").to_owned(),
        }
    }
}

/// The SQLite online store.
#[derive(Debug)]
pub struct SqliteStore {
    project: String,
    path: PathBuf,
    conn: Mutex<Connection>,
}

const STATE_TABLE: &str = "feast_rs_materialization";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` for `project`.
    pub fn open(path: &Path, project: &str) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        // WAL: readers in other processes see committed data while one writes.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "cache_size", -200_000)
            .map_err(open_err)?;
        // Copy the WAL back into the database every 10,000 pages (40 MB)
        // rather than 1,000: a stream batch dirties most of a view's pages,
        // so the default checkpoints after nearly every batch.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)
            .map_err(open_err)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (project TEXT, feature_view TEXT, end_us INTEGER, PRIMARY KEY (project, feature_view))"
        ))
        .map_err(open_err)?;
        checkpoint::create(&conn).map_err(open_err)?;
        Ok(SqliteStore {
            project: project.to_owned(),
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Feast's table name: `{project}_{view}`.
    pub fn table_name(&self, view: &str) -> String {
        format!("{}_{}", self.project, view)
    }

    /// The table of an aggregated view's tiles: `feast_rs_tiles_{project}_{view}`.
    pub fn tiles_table_name(&self, view: &str) -> String {
        format!("feast_rs_tiles_{}_{}", self.project, view)
    }

    /// Writes one view's batch (rows or tiles) inside an open transaction.
    fn write_view_in(
        &self,
        tx: &Connection,
        view: &FeatureViewDef,
        batch: &OnlineBatch,
    ) -> Result<WriteStats> {
        match &batch.tiles {
            Some(t) => tiles::write_in(tx, &self.tiles_table_name(view.name), view, t),
            None => Ok(Self::write_in(tx, &self.table_name(view.name), batch)?),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (an open
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create_table(conn: &Connection, table: &str) -> rusqlite::Result<()> {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (
                entity_key BLOB,
                feature_name TEXT,
                value BLOB,
                value_text TEXT,
                vector_value BLOB,
                event_ts timestamp,
                created_ts timestamp,
                PRIMARY KEY(entity_key, feature_name)
            ) WITHOUT ROWID"
        ))
    }

    /// The newer-wins upsert: the existing row is replaced only when the new
    /// event time is later, or equal with a created time at least as late.
    fn upsert_sql(table: &str) -> String {
        format!(
            "INSERT INTO \"{table}\" (entity_key, feature_name, value, value_text, event_ts, created_ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(entity_key, feature_name) DO UPDATE SET
                value = excluded.value, value_text = excluded.value_text,
                event_ts = excluded.event_ts, created_ts = excluded.created_ts
             WHERE excluded.event_ts > \"{table}\".event_ts
                OR (excluded.event_ts = \"{table}\".event_ts
                    AND coalesce(excluded.created_ts, -1) >= coalesce(\"{table}\".created_ts, -1))"
        )
    }

    /// Writes inside an open transaction: the caller commits (ingestion adds
    /// its checkpoint to the same transaction).
    pub fn write_in(
        tx: &Connection,
        table: &str,
        batch: &OnlineBatch,
    ) -> rusqlite::Result<WriteStats> {
        Self::create_table(tx, table)?;
        let mut stmt = tx.prepare_cached(&Self::upsert_sql(table))?;
        let mut written = 0;
        let mut buf = Vec::with_capacity(64);
        let mut text = String::with_capacity(32);
        for row in 0..batch.len() {
            // Feast stores whole seconds.
            let event = batch.event_ts[row].div_euclid(1_000_000);
            let created = batch.created_ts[row].map(|c| c.div_euclid(1_000_000));
            for (name, values) in &batch.features {
                let value = &values[row];
                buf.clear();
                value.encode(&mut buf);
                text.clear();
                let value_text = write_value_text(&mut text, value).then_some(text.as_str());
                written += stmt.execute(params![
                    batch.entity_keys[row].as_slice(),
                    name,
                    buf.as_slice(),
                    value_text,
                    event,
                    created
                ])?;
            }
        }
        Ok(WriteStats {
            rows: batch.len(),
            values_written: written,
        })
    }

    /// Runs `f` in one write transaction.
    pub fn transaction<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

impl OnlineStore for SqliteStore {
    fn write(&self, view: &FeatureViewDef, batch: &OnlineBatch) -> Result<WriteStats> {
        self.transaction(|tx| self.write_view_in(tx, view, batch))
    }

    fn write_batches(
        &self,
        writes: &[(&FeatureViewDef, &OnlineBatch)],
        cp: Option<&CheckpointUpdate<'_>>,
    ) -> Result<Vec<WriteStats>> {
        self.transaction(|tx| {
            // A batch the shard's checkpoint already covers is applied:
            // writing it again would count its events twice in the tiles.
            if let Some(c) = cp {
                let stored = checkpoint::load(tx, c.consumer, c.stream, c.shard)?;
                let done = stored.as_ref().and_then(|s| s.sequence_number.as_deref());
                if let (Some(seq), Some(done)) = (c.sequence_number, done)
                    && !super::sequence_after(seq, done)
                {
                    return Ok(vec![WriteStats::default(); writes.len()]);
                }
            }
            let mut stats = Vec::with_capacity(writes.len());
            for (view, batch) in writes {
                stats.push(self.write_view_in(tx, view, batch)?);
            }
            if let Some(c) = cp {
                checkpoint::save(tx, c)?;
            }
            Ok(stats)
        })
    }

    fn checkpoint(&self, consumer: &str, stream: &str, shard: &str) -> Result<Option<Checkpoint>> {
        Ok(checkpoint::load(&self.conn(), consumer, stream, shard)?)
    }

    fn read(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        features: &[&str],
    ) -> Result<Vec<Option<StoredRow>>> {
        let table = self.table_name(view.name);
        let conn = self.conn();
        let mut stmt = match conn.prepare_cached(&format!(
            "SELECT feature_name, value, event_ts FROM \"{table}\" WHERE entity_key = ?1"
        )) {
            Ok(s) => s,
            // No table yet: nothing was ever written for this view.
            Err(rusqlite::Error::SqliteFailure(_, Some(msg)))
                if msg.starts_with("no such table") =>
            {
                return Ok(vec![None; keys.len()]);
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let mut rows = stmt.query(params![key])?;
            let mut found: Option<StoredRow> = None;
            while let Some(r) = rows.next()? {
                let name: String = r.get(0)?;
                let Some(i) = features.iter().position(|f| *f == name) else {
                    continue;
                };
                let bytes: Vec<u8> = r.get(1)?;
                let event: i64 = r.get(2)?;
                let row = found.get_or_insert_with(|| StoredRow {
                    event_ts: event * 1_000_000,
                    values: vec![None; features.len()],
                });
                row.event_ts = row.event_ts.max(event * 1_000_000);
                row.values[i] = Some(Value::decode(&bytes)?);
            }
            out.push(found);
        }
        Ok(out)
    }

    fn read_tiles(
        &self,
        view: &FeatureViewDef,
        keys: &[Vec<u8>],
        at_us: i64,
    ) -> Result<Vec<StoredTiles>> {
        tiles::read(
            &self.conn(),
            &self.tiles_table_name(view.name),
            view,
            keys,
            at_us,
        )
    }

    fn entity_keys(&self, view: &FeatureViewDef) -> Result<Vec<Vec<u8>>> {
        if view.is_aggregated() {
            return tiles::keys(&self.conn(), &self.tiles_table_name(view.name));
        }
        let table = self.table_name(view.name);
        let conn = self.conn();
        let mut stmt = match conn.prepare(&format!("SELECT DISTINCT entity_key FROM \"{table}\"")) {
            Ok(s) => s,
            Err(rusqlite::Error::SqliteFailure(_, Some(msg)))
                if msg.starts_with("no such table") =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        let keys = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(keys)
    }

    fn update(&self, views: &[&FeatureViewDef]) -> Result<()> {
        let conn = self.conn();
        for v in views {
            if v.is_aggregated() {
                tiles::create(&conn, &self.tiles_table_name(v.name))?;
            } else {
                Self::create_table(&conn, &self.table_name(v.name))?;
            }
        }
        Ok(())
    }

    fn teardown(&self, views: &[&FeatureViewDef]) -> Result<()> {
        let conn = self.conn();
        // Statements prepared on the tables dropped here would fail later.
        conn.flush_prepared_statement_cache();
        for v in views {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS \"{}\"; DROP TABLE IF EXISTS \"{}\"",
                self.table_name(v.name),
                self.tiles_table_name(v.name)
            ))?;
            conn.execute(
                &format!("DELETE FROM {STATE_TABLE} WHERE project = ?1 AND feature_view = ?2"),
                params![self.project, v.name],
            )?;
        }
        Ok(())
    }

    fn is_embedded(&self) -> bool {
        true
    }

    fn materialized_until(&self, view: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT end_us FROM {STATE_TABLE} WHERE project = ?1 AND feature_view = ?2"
                ),
                params![self.project, view],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_materialized_until(&self, view: &str, end_us: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            &format!(
                "INSERT INTO {STATE_TABLE} (project, feature_view, end_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT(project, feature_view) DO UPDATE SET end_us = excluded.end_us"
            ),
            params![self.project, view, end_us],
        )?;
        Ok(())
    }
}
