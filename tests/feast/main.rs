//! Feast's own tools on a feast-rs repository: Feast 0.67 (installed by
//! `scripts/feast`) reading the registry `apply` writes in Feast's format,
//! with only `feature_store.yaml` and the registry, no Python definitions.

#![allow(clippy::unwrap_used)] // test code: a failure should stop loudly

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use feast_tests::{TempRepo, run, workspace_root};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_example-repo");

/// The virtual environment `scripts/feast install` made.
fn feast_env() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/feast"))
            .arg("install")
            .output()
            .expect("run scripts/feast install");
        assert!(
            out.status.success(),
            "scripts/feast install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs Feast's CLI in `repo`; its stdout.
fn feast(repo: &Path, args: &[&str]) -> String {
    let out = Command::new(feast_env().join("bin/feast"))
        .args(args)
        .current_dir(repo)
        .env("FEAST_USAGE", "False")
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("run feast");
    assert!(
        out.status.success(),
        "feast {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The example's repository, applied by its feast-rs binary: Feast's
/// `feature_store.yaml` and the registry `apply` wrote, nothing else.
fn feast_repo() -> TempRepo {
    let repo = TempRepo::with_config(
        "project: driver_stats\nprovider: local\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\noffline_store:\n  type: file\nentity_key_serialization_version: 3\n",
    );
    let r = run(EXAMPLE, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    repo
}

/// The first column of a `feast ... list` table, header excluded.
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn feasts_cli_lists_every_definition_of_the_registry() {
    let repo = feast_repo();
    assert_eq!(
        names(&feast(repo.path(), &["entities", "list"])),
        ["driver"]
    );
    let mut sources = names(&feast(repo.path(), &["data-sources", "list"]));
    sources.sort();
    assert_eq!(
        sources,
        [
            "driver_stats_push",
            "driver_stats_source",
            "driver_stats_stream"
        ]
    );
    let mut views = names(&feast(repo.path(), &["feature-views", "list"]));
    views.sort();
    assert_eq!(views, ["driver_hourly_stats", "driver_hourly_stats_stream"]);
    // The windowed view, with Feast's Aggregation messages.
    assert_eq!(
        names(&feast(repo.path(), &["stream-feature-views", "list"])),
        ["driver_trip_windows"]
    );
    let described = feast(
        repo.path(),
        &["stream-feature-views", "describe", "driver_trip_windows"],
    );
    for line in [
        "name: trips_1h",
        "function: count",
        "timeWindow: 3600s",
        "slideInterval: 600s",
    ] {
        assert!(described.contains(line), "no `{line}` in\n{described}");
    }
    assert_eq!(
        names(&feast(repo.path(), &["feature-services", "list"])),
        ["driver_activity"]
    );
}
