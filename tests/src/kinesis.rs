//! The Kinesis emulator (kinesalite) for tests, and the DynamoDB one
//! (dynalite) for shard leases: one private instance per test on a free
//! loopback port, stopped when dropped (and by itself if the test process
//! dies), plus a blocking Kinesis client to create streams, put records and
//! reshard.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use crate::workspace_root;

/// Which emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kinesalite,
    Dynalite,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kinesalite => "kinesalite",
            Kind::Dynalite => "dynalite",
        }
    }
}

/// Where `scripts/{kinesalite,dynalite} install` put the emulator
/// (installing it on first use).
fn install_dir(kind: Kind) -> &'static Path {
    static DIRS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    DIRS[kind as usize].get_or_init(|| {
        let name = kind.name();
        let out = Command::new("bash")
            .arg(workspace_root().join(format!("scripts/{name}")))
            .arg("install")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("run scripts/{name} install: {e}"));
        assert!(
            out.status.success(),
            "scripts/{name} install failed; the Kinesis tests need Node.js and npm"
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// A running kinesalite (or dynalite).
#[derive(Debug)]
pub struct Emulator {
    kind: Kind,
    child: Option<Child>,
    /// Held open: the emulator exits when it closes.
    _stdin: Option<ChildStdin>,
    port: u16,
    data_dir: Option<PathBuf>,
}

impl Emulator {
    /// An emulator keeping streams in memory.
    pub fn start() -> Emulator {
        Emulator::spawn(Kind::Kinesalite, 0, None)
    }

    /// A DynamoDB emulator (dynalite), tables in memory.
    pub fn dynalite() -> Emulator {
        Emulator::spawn(Kind::Dynalite, 0, None)
    }

    /// An emulator keeping streams in LevelDB under `dir`, so that they
    /// survive [`Emulator::restart`].
    pub fn start_persistent(dir: &Path) -> Emulator {
        Emulator::spawn(Kind::Kinesalite, 0, Some(dir.to_owned()))
    }

    fn spawn(kind: Kind, port: u16, data_dir: Option<PathBuf>) -> Emulator {
        let mut cmd = Command::new("node");
        cmd.arg(workspace_root().join(format!("scripts/{}.js", kind.name())))
            .arg(install_dir(kind))
            .arg(port.to_string())
            .env("FEAST_EXIT_WITH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(dir) = &data_dir {
            cmd.arg(dir);
        }
        let mut child = cmd
            .spawn()
            .expect("start node (the emulator needs Node.js)");
        let stdin = child.stdin.take();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{} did not start: {line:?}", kind.name()));
        Emulator {
            kind,
            child: Some(child),
            _stdin: stdin,
            port,
            data_dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the emulator (clients then see connections refused).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self._stdin = None;
    }

    /// Starts the emulator again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may linger briefly after the kill.
            let e = std::panic::catch_unwind(|| {
                Emulator::spawn(self.kind, self.port, self.data_dir.clone())
            });
            match e {
                Ok(mut e) => {
                    self.child = e.child.take();
                    self._stdin = e._stdin.take();
                    return;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The environment a feature repo binary needs to reach `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_KINESIS", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A shard as ListShards reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    pub parents: Vec<String>,
    pub open: bool,
    pub hash_start: String,
    pub hash_end: String,
}

/// A blocking Kinesis client for test set-up.
#[derive(Debug)]
pub struct Kinesis {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Kinesis {
    pub fn new(endpoint: &str) -> Kinesis {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                    "test", "test", None, None, "tests",
                ))
                .endpoint_url(endpoint)
                .load()
                .await;
            Client::new(&shared)
        });
        Kinesis { rt, client }
    }

    /// Creates a stream and waits until it is active.
    pub fn create_stream(&self, name: &str, shards: i32) {
        self.rt.block_on(async {
            self.client
                .create_stream()
                .stream_name(name)
                .shard_count(shards)
                .send()
                .await
                .unwrap();
        });
        self.wait_active(name);
    }

    pub fn wait_active(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.rt.block_on(async {
                self.client
                    .describe_stream_summary()
                    .stream_name(name)
                    .send()
                    .await
                    .ok()
                    .and_then(|r| {
                        r.stream_description_summary()
                            .map(|d| d.stream_status().as_str().to_owned())
                    })
            });
            if status.as_deref() == Some("ACTIVE") {
                return;
            }
            assert!(Instant::now() < deadline, "stream {name} is not active");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Puts records, 500 per call, in order; returns each record's (shard,
    /// sequence number). Panics if any entry fails.
    pub fn put(&self, stream: &str, records: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(records.len());
        for chunk in records.chunks(500) {
            let entries: Vec<PutRecordsRequestEntry> = chunk
                .iter()
                .map(|(k, d)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(k)
                        .data(Blob::new(d.clone()))
                        .build()
                        .unwrap()
                })
                .collect();
            let resp = self
                .rt
                .block_on(
                    self.client
                        .put_records()
                        .stream_name(stream)
                        .set_records(Some(entries))
                        .send(),
                )
                .unwrap();
            assert_eq!(
                resp.failed_record_count(),
                Some(0),
                "PutRecords failed entries"
            );
            for r in resp.records() {
                out.push((
                    r.shard_id().unwrap().to_owned(),
                    r.sequence_number().unwrap().to_owned(),
                ));
            }
        }
        out
    }

    pub fn shards(&self, stream: &str) -> Vec<ShardInfo> {
        let resp = self
            .rt
            .block_on(self.client.list_shards().stream_name(stream).send())
            .unwrap();
        resp.shards()
            .iter()
            .map(|s| {
                let range = s.hash_key_range();
                ShardInfo {
                    id: s.shard_id().to_owned(),
                    parents: [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                        .into_iter()
                        .flatten()
                        .map(str::to_owned)
                        .collect(),
                    open: s
                        .sequence_number_range()
                        .is_some_and(|r| r.ending_sequence_number().is_none()),
                    hash_start: range
                        .map(|r| r.starting_hash_key().to_owned())
                        .unwrap_or_default(),
                    hash_end: range
                        .map(|r| r.ending_hash_key().to_owned())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Splits `shard` in the middle of its hash range; waits until active.
    pub fn split(&self, stream: &str, shard: &str) {
        let info = self
            .shards(stream)
            .into_iter()
            .find(|s| s.id == shard)
            .expect("shard exists");
        let start: u128 = info.hash_start.parse().unwrap();
        let end: u128 = info.hash_end.parse().unwrap();
        let middle = start + (end - start) / 2 + 1;
        self.rt
            .block_on(
                self.client
                    .split_shard()
                    .stream_name(stream)
                    .shard_to_split(shard)
                    .new_starting_hash_key(middle.to_string())
                    .send(),
            )
            .unwrap();
        self.wait_active(stream);
    }

    /// Merges two adjacent shards; waits until active.
    pub fn merge(&self, stream: &str, shard: &str, adjacent: &str) {
        self.rt
            .block_on(
                self.client
                    .merge_shards()
                    .stream_name(stream)
                    .shard_to_merge(shard)
                    .adjacent_shard_to_merge(adjacent)
                    .send(),
            )
            .unwrap();
        self.wait_active(stream);
    }
}
