//! Stream checkpoints, kept in the embedded store's SQLite database and
//! committed in the same transaction as the feature rows they cover: after a
//! crash a batch is either fully applied with its checkpoint or not at all.

use rusqlite::{Connection, OptionalExtension, params};

use crate::online_store::{Checkpoint, CheckpointUpdate, parse_watermarks, watermarks_text};

const TABLE: &str = "feast_rs_kinesis_checkpoints";

pub(super) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            consumer TEXT NOT NULL,
            stream TEXT NOT NULL,
            shard_id TEXT NOT NULL,
            sequence_number TEXT,
            finished INTEGER NOT NULL DEFAULT 0,
            records INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            watermarks TEXT,
            PRIMARY KEY (consumer, stream, shard_id)
        )"
    ))?;
    // Databases from before watermarks: add the column.
    let has: bool = conn.query_row(
        &format!("SELECT count(*) FROM pragma_table_info('{TABLE}') WHERE name = 'watermarks'"),
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has {
        conn.execute_batch(&format!("ALTER TABLE {TABLE} ADD COLUMN watermarks TEXT"))?;
    }
    Ok(())
}

pub(super) fn load(
    conn: &Connection,
    consumer: &str,
    stream: &str,
    shard: &str,
) -> rusqlite::Result<Option<Checkpoint>> {
    conn.query_row(
        &format!("SELECT sequence_number, finished, records, watermarks FROM {TABLE} WHERE consumer = ?1 AND stream = ?2 AND shard_id = ?3"),
        params![consumer, stream, shard],
        |r| {
            Ok(Checkpoint {
                sequence_number: r.get(0)?,
                finished: r.get::<_, i64>(1)? != 0,
                records: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                watermarks: parse_watermarks(r.get::<_, Option<String>>(3)?.as_deref()),
            })
        },
    )
    .optional()
}

/// Records progress over `records` more records; a sequence number never
/// moves backwards (sequence numbers of one shard compare by length, then
/// digits).
pub(super) fn save(conn: &Connection, c: &CheckpointUpdate<'_>) -> rusqlite::Result<()> {
    let now = chrono::Utc::now().to_rfc3339();
    conn.execute(
        &format!(
            "INSERT INTO {TABLE} (consumer, stream, shard_id, sequence_number, finished, records, updated_at, watermarks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (consumer, stream, shard_id) DO UPDATE SET
                sequence_number = CASE
                    WHEN excluded.sequence_number IS NULL THEN {TABLE}.sequence_number
                    WHEN {TABLE}.sequence_number IS NULL THEN excluded.sequence_number
                    WHEN length(excluded.sequence_number) > length({TABLE}.sequence_number)
                      OR (length(excluded.sequence_number) = length({TABLE}.sequence_number)
                          AND excluded.sequence_number > {TABLE}.sequence_number)
                    THEN excluded.sequence_number
                    ELSE {TABLE}.sequence_number END,
                finished = max({TABLE}.finished, excluded.finished),
                records = {TABLE}.records + excluded.records,
                updated_at = excluded.updated_at,
                watermarks = coalesce(excluded.watermarks, {TABLE}.watermarks)"
        ),
        params![
            c.consumer,
            c.stream,
            c.shard,
            c.sequence_number,
            i64::from(c.finished),
            i64::try_from(c.records).unwrap_or(i64::MAX),
            now,
            watermarks_text(c.watermarks)
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update<'a>(
        sequence_number: Option<&'a str>,
        finished: bool,
        records: u64,
        watermarks: &'a [(&'a str, i64)],
    ) -> CheckpointUpdate<'a> {
        CheckpointUpdate {
            consumer: "c",
            stream: "s",
            shard: "shard-0",
            sequence_number,
            finished,
            records,
            watermarks,
            fence: None,
        }
    }

    #[test]
    fn checkpoints_never_move_backwards() {
        let conn = Connection::open_in_memory().unwrap();
        create(&conn).unwrap();
        assert_eq!(load(&conn, "c", "s", "shard-0").unwrap(), None);
        save(
            &conn,
            &update(
                Some("49590338271490256608559692538361571095921575989136588898"),
                false,
                10,
                &[],
            ),
        )
        .unwrap();
        // Shorter is older, whatever its digits.
        save(&conn, &update(Some("99"), false, 1, &[])).unwrap();
        save(
            &conn,
            &update(
                Some("49590338271490256608559692538361571095921575989136588897"),
                false,
                2,
                &[],
            ),
        )
        .unwrap();
        save(&conn, &update(None, true, 0, &[("v", 42)])).unwrap();
        assert_eq!(
            load(&conn, "c", "s", "shard-0").unwrap(),
            Some(Checkpoint {
                sequence_number: Some(
                    "49590338271490256608559692538361571095921575989136588898".into()
                ),
                finished: true,
                records: 13,
                watermarks: vec![("v".into(), 42)],
            })
        );
        save(
            &conn,
            &update(
                Some("49590338271490256608559692538361571095921575989136588899"),
                false,
                5,
                &[],
            ),
        )
        .unwrap();
        let c = load(&conn, "c", "s", "shard-0").unwrap().unwrap();
        assert_eq!(
            c.watermarks,
            [("v".to_owned(), 42)],
            "kept when a batch sets none"
        );
        assert_eq!(
            c.sequence_number.as_deref(),
            Some("49590338271490256608559692538361571095921575989136588899")
        );
        assert!(c.finished, "finished stays set");
        assert_eq!(c.records, 18);
    }
}
