//! Helpers shared by the integration tests.

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

pub mod fault_proxy;
pub mod http;
pub mod kinesis;
pub mod redis;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary feature repository: a directory with a `feature_store.yaml`.
#[derive(Debug)]
pub struct TempRepo {
    dir: tempfile::TempDir,
}

impl TempRepo {
    /// A repository whose `feature_store.yaml` is `yaml`.
    pub fn with_config(yaml: &str) -> TempRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("feature_store.yaml"), yaml)
            .expect("write feature_store.yaml");
        TempRepo { dir }
    }

    /// A copy of the example's `feature_store.yaml`.
    pub fn example() -> TempRepo {
        let yaml = std::fs::read_to_string(workspace_root().join("examples/feature_store.yaml"))
            .expect("examples/feature_store.yaml");
        TempRepo::with_config(&yaml)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// The result of running a feature repo binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bin` with `args` in the repository `dir`.
pub fn run(bin: &str, dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("FEAST_REPO_PATH")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

use feast_runtime::polars::prelude::*;

/// One row of the example's batch source: driver, event time and created time
/// (seconds since the epoch), conv_rate, acc_rate, avg_daily_trips.
pub type StatsRow = (i64, i64, Option<i64>, f32, f32, i64);

/// A frame in the schema of the example's `driver_stats_source`, with
/// microsecond timestamps (`event_us` adds microseconds to each event time).
pub fn stats_frame(rows: &[StatsRow]) -> DataFrame {
    stats_frame_us(rows, &vec![0; rows.len()])
}

/// [`stats_frame`] with a sub-second part per row.
pub fn stats_frame_us(rows: &[StatsRow], event_us: &[i64]) -> DataFrame {
    let ts_type = feast_runtime::definition::FeastType::UnixTimestamp.dtype();
    let ts = |name: &str, v: Vec<Option<i64>>| Column::new(name.into(), v).cast(&ts_type).unwrap();
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "driver_id".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            ts(
                "event_timestamp",
                rows.iter()
                    .zip(event_us)
                    .map(|(r, us)| Some(r.1 * 1_000_000 + us))
                    .collect(),
            ),
            ts(
                "created",
                rows.iter().map(|r| r.2.map(|c| c * 1_000_000)).collect(),
            ),
            Column::new(
                "conv_rate".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new(
                "acc_rate".into(),
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            ),
            Column::new(
                "avg_daily_trips".into(),
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

/// An entity frame: driver ids and `event_timestamp` (seconds).
pub fn entity_frame(rows: &[(i64, i64)]) -> DataFrame {
    let ts_type = feast_runtime::definition::FeastType::UnixTimestamp.dtype();
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "driver_id".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "event_timestamp".into(),
                rows.iter().map(|r| r.1 * 1_000_000).collect::<Vec<_>>(),
            )
            .cast(&ts_type)
            .unwrap(),
        ],
    )
    .unwrap()
}

/// Which online store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Redis,
}

/// A repository with the example's config for `project` on `backend`, and
/// the private Redis it uses (kept alive by the caller).
pub fn repo_on(backend: Backend, project: &str) -> (TempRepo, Option<redis::RedisServer>) {
    match backend {
        Backend::Sqlite => (TempRepo::with_config(&example_config(project)), None),
        Backend::Redis => {
            let server = redis::RedisServer::start();
            let config = example_redis_config(project, &server.connection_string());
            (TempRepo::with_config(&config), Some(server))
        }
    }
}

/// Runs each case (a `fn(Backend)` in the calling module) as two tests,
/// `on_sqlite::case` and `on_redis::case`.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $case() { super::$case($crate::Backend::Sqlite) })*
        }
        mod on_redis {
            $(#[test] fn $case() { super::$case($crate::Backend::Redis) })*
        }
    };
}

/// The example's `feature_store.yaml` with another project name and a Redis
/// online store.
pub fn example_redis_config(project: &str, connection_string: &str) -> String {
    format!(
        "project: {project}\nregistry: data/registry.db\nonline_store:\n  type: redis\n  connection_string: \"{connection_string}\"\noffline_store:\n  type: file\n"
    )
}

/// The example's `feature_store.yaml` with another project name.
pub fn example_config(project: &str) -> String {
    format!(
        "project: {project}\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\noffline_store:\n  type: file\n"
    )
}

/// A read-only view of a SQLite file, for layout assertions.
pub type Sqlite = rusqlite::Connection;
