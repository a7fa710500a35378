//! `ingest` that cannot start exits within seconds with one line that says
//! what to set: no credentials, a region nobody answers for, a stream that
//! does not exist, an endpoint that refuses connections.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use feast_tests::TempRepo;
use feast_tests::kinesis::Emulator;

use super::support::EXAMPLE;

const ELSEWHERE: &str = env!("CARGO_BIN_EXE_elsewhere-repo");

/// Runs `ingest --until-caught-up` with exactly `env` (plus PATH and a HOME
/// with no AWS files), and returns (exit code, stderr, seconds taken).
fn ingest_with(bin: &str, repo: &Path, env: &[(&str, String)]) -> (Option<i32>, String, f64) {
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["ingest", "--until-caught-up"])
        .current_dir(repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

fn applied(bin: &str) -> TempRepo {
    let repo = TempRepo::example();
    let r = feast_tests::run(bin, repo.path(), &["apply"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    repo
}

fn keys() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ]
}

#[test]
fn no_credentials_exit_at_once_saying_what_to_set() {
    let emu = Emulator::start();
    let repo = applied(EXAMPLE);
    let (code, stderr, secs) = ingest_with(
        EXAMPLE,
        repo.path(),
        &[("AWS_ENDPOINT_URL_KINESIS", emu.endpoint())],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(secs < 15.0, "took {secs} s");
    assert_eq!(
        stderr,
        "error: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); a local emulator accepts any pair, such as AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test\n"
    );
}

#[test]
fn an_endpoint_refusing_connections_is_named() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let repo = applied(EXAMPLE);
    let mut env = keys();
    env.push((
        "AWS_ENDPOINT_URL_KINESIS",
        format!("http://127.0.0.1:{port}"),
    ));
    let (code, stderr, secs) = ingest_with(EXAMPLE, repo.path(), &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(secs < 15.0, "took {secs} s");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach Kinesis at http://127.0.0.1:{port} (region us-east-1): "
        )) && stderr.contains("onnection refused")
            && stderr.ends_with(
                "; for a local emulator set AWS_ENDPOINT_URL_KINESIS (or kinesis.endpoint_url in feature_store.yaml), on AWS check the source's region\n"
            ),
        "{stderr}"
    );
}

#[test]
fn a_region_without_an_endpoint_is_named() {
    let repo = applied(ELSEWHERE);
    let (code, stderr, secs) = ingest_with(ELSEWHERE, repo.path(), &keys());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(secs < 15.0, "took {secs} s");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: cannot reach Kinesis at https://kinesis.xx-nowhere-9.amazonaws.com (region xx-nowhere-9): "
        ) && stderr.contains("on AWS check the source's region"),
        "{stderr}"
    );
}

#[test]
fn a_missing_stream_is_named_with_where_it_was_looked_for() {
    let emu = Emulator::start();
    let repo = applied(EXAMPLE);
    let mut env = keys();
    env.push(("AWS_ENDPOINT_URL_KINESIS", emu.endpoint()));
    let (code, stderr, secs) = ingest_with(EXAMPLE, repo.path(), &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(secs < 10.0, "took {secs} s");
    assert_eq!(
        stderr,
        format!(
            "error: stream `driver_stats` does not exist at {} (region us-east-1): create it, or check the source's stream_name and region\n",
            emu.endpoint()
        )
    );
}

#[test]
fn only_offline_without_a_logged_view_is_refused() {
    let repo = applied(ELSEWHERE);
    let r = feast_tests::run(ELSEWHERE, repo.path(), &["ingest", "--only", "offline"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(
        r.stderr,
        "error: --only offline logs the records of stream views with `offline = true`, and none of the views to ingest (far_away_stats) has it\n"
    );
    let r = feast_tests::run(ELSEWHERE, repo.path(), &["ingest", "--only", "both"]);
    assert_eq!(r.code, Some(2));
    assert!(
        r.stderr
            .contains("invalid value 'both' for '--only <ONLY>': unknown store `both`; expected online or offline"),
        "{}",
        r.stderr
    );
}
