//! What the ingestion tests share: driver records with known ground truth,
//! the feature repo binary run against an emulator, and readers of what it
//! wrote (online rows, checkpoints, offline files, dead letters).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use feast_runtime::definition::JoinKeyValue;
use feast_runtime::definition::{Value, serialize_entity_key};
use feast_tests::kinesis::aws_env;
use feast_tests::{Run, TempRepo};

pub(crate) const EXAMPLE: &str = env!("CARGO_BIN_EXE_example-repo");
pub(crate) const MARKED: &str = env!("CARGO_BIN_EXE_marked-repo");

/// 2025-01-01T00:00:00Z, in seconds.
pub(crate) const T0: i64 = 1_735_689_600;

/// One driver-stats record as the producer sends it. `id` travels in
/// `acc_rate` (as `id / 1e6`, exact in Float32 below 2^24) so that every
/// record can be recognised in the offline store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rec {
    pub(crate) driver: i64,
    pub(crate) event_s: i64,
    pub(crate) created_s: i64,
    pub(crate) conv_rate: f64,
    pub(crate) id: u32,
}

impl Rec {
    pub(crate) fn acc_rate(&self) -> f64 {
        f64::from(self.id) / 1e6
    }

    pub(crate) fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "driver_id": self.driver,
            "event_timestamp": iso(self.event_s),
            "conv_rate": self.conv_rate,
            "acc_rate": self.acc_rate(),
            "created": iso(self.created_s),
        }))
        .unwrap()
    }

    /// (partition key, data), as PutRecords takes it.
    pub(crate) fn entry(&self) -> (String, Vec<u8>) {
        (self.driver.to_string(), self.json())
    }

    /// What the stream view computes from it: the record's `double` is
    /// first converted to the batch source's `Float32`, as the offline log
    /// keeps it, and the function computes in Float32.
    pub(crate) fn conv_percentage(&self) -> f32 {
        (self.conv_rate as f32) * 100.0
    }
}

pub(crate) fn iso(s: i64) -> String {
    feast_runtime::chrono::DateTime::from_timestamp(s, 0)
        .unwrap()
        .to_rfc3339_opts(feast_runtime::chrono::SecondsFormat::Secs, true)
}

/// A small deterministic generator (xorshift64*).
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The newest record per driver: by event time, then created time, then the
/// later record in the stream (the one applied last).
pub(crate) fn newest_per_driver(records: &[Rec]) -> BTreeMap<i64, &Rec> {
    let mut best: BTreeMap<i64, &Rec> = BTreeMap::new();
    for r in records {
        match best.get(&r.driver) {
            Some(b) if (b.event_s, b.created_s) > (r.event_s, r.created_s) => {}
            _ => {
                best.insert(r.driver, r);
            }
        }
    }
    best
}

/// A feature repo directory wired to an emulator.
#[derive(Debug)]
pub(crate) struct Repo {
    pub(crate) dir: TempRepo,
    pub(crate) bin: &'static str,
    pub(crate) endpoint: String,
    /// More environment for every command (a DynamoDB endpoint).
    pub(crate) env: Vec<(&'static str, String)>,
}

impl Repo {
    /// The example's repository, applied.
    pub(crate) fn example(endpoint: &str) -> Repo {
        Repo::applied(TempRepo::example(), EXAMPLE, endpoint)
    }

    /// The marked repository (a view that fails on marked drivers), applied.
    pub(crate) fn marked(endpoint: &str) -> Repo {
        let dir = TempRepo::with_config(&feast_tests::example_config("marked"));
        Repo::applied(dir, MARKED, endpoint)
    }

    /// A repository with `config` as its `feature_store.yaml`, applied.
    pub(crate) fn with_config(config: &str, bin: &'static str, endpoint: &str) -> Repo {
        Repo::applied(TempRepo::with_config(config), bin, endpoint)
    }

    fn applied(dir: TempRepo, bin: &'static str, endpoint: &str) -> Repo {
        let repo = Repo {
            dir,
            bin,
            endpoint: endpoint.to_owned(),
            env: Vec::new(),
        };
        let r = repo.run(&["apply"]);
        assert_eq!(r.code, Some(0), "apply: {}", r.stderr);
        repo
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin);
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("FEAST_REPO_PATH")
            .env_remove("FEAST_KINESIS_ENDPOINT_URL")
            .env("RUST_LOG", "warn");
        for (k, v) in aws_env(&self.endpoint).into_iter().chain(self.env.clone()) {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a command to its end.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .output()
            .expect("run the feature repo binary");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts a command in the background.
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the feature repo binary")
    }

    /// `ingest --until-caught-up` with `extra` arguments; asserts success.
    pub(crate) fn ingest_until_caught_up(&self, extra: &[&str]) -> Run {
        let mut args = vec!["ingest", "--until-caught-up"];
        args.extend_from_slice(extra);
        let r = self.run(&args);
        assert_eq!(
            r.code,
            Some(0),
            "ingest failed:\n{}\n{}",
            r.stdout,
            r.stderr
        );
        r
    }

    pub(crate) fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.path().join("data/online.db")).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    /// The online rows of `view`: driver -> (event time in seconds, feature -> value).
    pub(crate) fn online(
        &self,
        project: &str,
        view: &str,
    ) -> BTreeMap<i64, (i64, BTreeMap<String, Value>)> {
        let db = self.db();
        let mut stmt = match db.prepare(&format!(
            "SELECT entity_key, feature_name, value, event_ts FROM \"{project}_{view}\""
        )) {
            Ok(s) => s,
            Err(_) => return BTreeMap::new(),
        };
        let mut out: BTreeMap<i64, (i64, BTreeMap<String, Value>)> = BTreeMap::new();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (key, feature, value, event) = row.unwrap();
            let driver = driver_of(&key);
            let e = out.entry(driver).or_insert((event, BTreeMap::new()));
            e.0 = e.0.max(event);
            e.1.insert(feature, Value::decode(&value).unwrap());
        }
        out
    }

    /// The example stream view's `conv_percentage` per driver.
    pub(crate) fn conv_percentages(&self, project: &str, view: &str) -> BTreeMap<i64, f32> {
        self.online(project, view)
            .into_iter()
            .map(|(d, (_, features))| match features.get("conv_percentage") {
                Some(Value::Float32(v)) => (d, *v),
                other => panic!("driver {d}: conv_percentage is {other:?}"),
            })
            .collect()
    }

    /// The example stream view's `conv_percentage` of each driver as
    /// `get-online --json` serves it, from whichever online store the repo
    /// has (`None` for a null or missing value).
    pub(crate) fn served_conv_percentages(&self, drivers: &[i64]) -> Vec<Option<f32>> {
        let ids: Vec<String> = drivers.iter().map(i64::to_string).collect();
        let r = self.run(&[
            "get-online",
            "--features",
            "driver_hourly_stats_stream:conv_percentage",
            "--entity",
            &format!("driver_id={}", ids.join(",")),
            "--json",
        ]);
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v["results"][1]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect()
    }

    /// Checkpoints: shard -> (records committed, finished).
    pub(crate) fn checkpoints(&self, stream: &str) -> BTreeMap<String, (u64, bool)> {
        let db = self.db();
        let Ok(mut stmt) = db.prepare(
            "SELECT shard_id, records, finished FROM feast_rs_kinesis_checkpoints WHERE stream = ?1",
        ) else {
            return BTreeMap::new();
        };
        stmt.query_map([stream], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? != 0),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Records committed over every shard of `stream`.
    pub(crate) fn committed(&self, stream: &str) -> u64 {
        self.checkpoints(stream).values().map(|c| c.0).sum()
    }

    /// Waits until `stream` has `n` records committed.
    pub(crate) fn wait_committed(&self, stream: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.committed(stream);
            if got >= n {
                assert_eq!(got, n, "more records committed than were put");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {got} of {n} records committed after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `stream` has at least `n` records committed.
    pub(crate) fn wait_committed_at_least(&self, stream: &str, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.committed(stream) < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} records committed after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The offline files of a batch source directory.
    pub(crate) fn offline_files(&self, dir: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.path().join(dir)) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        files.sort();
        files
    }

    /// Every offline row of the example's batch source, as
    /// (driver, event s, created s, conv_rate, record id).
    pub(crate) fn offline_rows(&self, dir: &str) -> Vec<(i64, i64, i64, f32, u32)> {
        use feast_runtime::polars::prelude::*;
        let mut out = Vec::new();
        for path in self.offline_files(dir) {
            let df = feast_runtime::offline_store::read_file(&path).unwrap();
            let secs = |name: &str| -> Vec<i64> {
                let c = df.column(name).unwrap().cast(&DataType::Int64).unwrap();
                c.i64()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap().div_euclid(1_000_000))
                    .collect()
            };
            let driver: Vec<i64> = df
                .column("driver_id")
                .unwrap()
                .i64()
                .unwrap()
                .iter()
                .map(Option::unwrap)
                .collect();
            let event = secs("event_timestamp");
            let created = secs("created");
            let conv: Vec<f32> = df
                .column("conv_rate")
                .unwrap()
                .f32()
                .unwrap()
                .iter()
                .map(Option::unwrap)
                .collect();
            let ids: Vec<u32> = match df.column("acc_rate") {
                Ok(c) => c
                    .f32()
                    .unwrap()
                    .iter()
                    .map(|v| (f64::from(v.unwrap()) * 1e6).round() as u32)
                    .collect(),
                Err(_) => vec![0; df.height()],
            };
            for i in 0..df.height() {
                out.push((driver[i], event[i], created[i], conv[i], ids[i]));
            }
        }
        out
    }

    /// Asserts that the offline store holds each of `records` exactly once.
    pub(crate) fn assert_offline_exactly(&self, dir: &str, records: &[&Rec]) {
        let rows = self.offline_rows(dir);
        let ids: Vec<u32> = rows.iter().map(|r| r.4).collect();
        let unique: BTreeSet<u32> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "records written offline twice");
        let want: BTreeSet<u32> = records.iter().map(|r| r.id).collect();
        assert_eq!(
            unique.len(),
            want.len(),
            "offline rows: {} of {}",
            unique.len(),
            want.len()
        );
        assert_eq!(unique, want, "the offline rows are not the records");
        let by_id: BTreeMap<u32, &Rec> = records.iter().map(|r| (r.id, *r)).collect();
        for (driver, event, created, conv, id) in rows {
            let r = by_id[&id];
            assert_eq!(
                (driver, event, created, conv),
                (r.driver, r.event_s, r.created_s, r.conv_rate as f32),
                "offline row of record {id}"
            );
        }
    }

    /// Asserts that the marked repo's offline store holds each of `records`
    /// exactly once (its batch source has no column to carry an id).
    pub(crate) fn assert_offline_exactly_marked(&self, records: &[&Rec]) {
        let key = |d: i64, e: i64, c: i64, v: f32| (d, e, c, v.to_bits());
        let mut got: Vec<_> = self
            .offline_rows("data/marked.parquet")
            .into_iter()
            .map(|(d, e, c, v, _)| key(d, e, c, v))
            .collect();
        let mut want: Vec<_> = records
            .iter()
            .map(|r| key(r.driver, r.event_s, r.created_s, r.conv_rate as f32))
            .collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got.len(), want.len(), "offline rows");
        assert_eq!(got, want);
    }

    /// The dead letters of a source: (shard, sequence number) -> (reason, raw bytes).
    pub(crate) fn dead_letters(
        &self,
        source: &str,
    ) -> BTreeMap<(String, String), (String, Vec<u8>)> {
        let path = self
            .path()
            .join(format!("data/dead_letters/{source}.ndjson"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = (
                v["shard_id"].as_str().unwrap().to_owned(),
                v["sequence_number"].as_str().unwrap().to_owned(),
            );
            let value = (
                v["reason"].as_str().unwrap().to_owned(),
                feast_runtime::transform::base64::decode(v["data_base64"].as_str().unwrap())
                    .unwrap(),
            );
            assert!(
                out.insert(key.clone(), value).is_none(),
                "dead letter {key:?} written twice"
            );
        }
        out
    }
}

/// The driver id in a version-3 entity key of `driver_id`.
pub(crate) fn driver_of(key: &[u8]) -> i64 {
    let id = i64::from_le_bytes(key[key.len() - 8..].try_into().unwrap());
    let mut want = Vec::new();
    serialize_entity_key(&mut want, &[("driver_id", JoinKeyValue::Int64(id))]);
    assert_eq!(key, want.as_slice(), "not a driver_id entity key");
    id
}

/// Sends SIGTERM to a child.
pub(crate) fn terminate(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits for a child to exit, at most `timeout`; returns (exit code, stdout, stderr).
pub(crate) fn wait_exit(mut child: Child, timeout: Duration) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the process did not exit within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number in `ingested N records` of an ingest summary line.
pub(crate) fn ingested(stdout: &str) -> u64 {
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "ingested")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {stdout:?}"))
}
