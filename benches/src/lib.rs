//! What the benchmark binaries share.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// User and system CPU time of this process so far (Linux `/proc`), so a
/// figure can be given per CPU-second beside wall time.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A fresh repository directory `feast-rs-bench-{name}-{pid}` in the temp
/// directory, with a `feature_store.yaml` on the embedded SQLite store.
pub fn sqlite_repo(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feast-rs-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::write(
        dir.join("feature_store.yaml"),
        "project: bench\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\n",
    )
    .expect("feature_store.yaml written");
    dir
}

/// A private redis-server on a free loopback port; killed when dropped.
#[derive(Debug)]
pub struct Redis(Child, pub u16);

impl Redis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/bench installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Redis(child, port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
