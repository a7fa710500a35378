//! Helpers shared by the integration tests.

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
