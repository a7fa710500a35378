//! Writes the deterministic driver-stats data set as Parquet:
//! `generate-driver-stats [--drivers N] [--hours H] [--start RFC3339] [--out PATH]`;
//! by default 100 drivers over the last 48 hours.

use std::process::ExitCode;

use feast_example_driver_stats::data;
use feast_runtime::chrono::{DateTime, Utc};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut drivers = 100usize;
    let mut hours = 48usize;
    let mut start: Option<DateTime<Utc>> = None;
    let mut out = String::from("data/driver_stats.parquet/part-00000.parquet");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--drivers" => drivers = value()?.parse().map_err(|e| format!("--drivers: {e}"))?,
            "--hours" => hours = value()?.parse().map_err(|e| format!("--hours: {e}"))?,
            "--start" => start = Some(value()?.parse().map_err(|e| format!("--start: {e}"))?),
            "--out" => out = value()?,
            "-h" | "--help" => {
                println!(
                    "usage: generate-driver-stats [--drivers N] [--hours H] [--start RFC3339] [--out PATH]"
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    // By default the data ends at the current hour, so it is fresh for the
    // views' ttl.
    let start = start.unwrap_or_else(|| {
        let now = Utc::now().timestamp();
        let hour = now - now.rem_euclid(3600);
        DateTime::from_timestamp(hour - (hours as i64 - 1) * 3600, 0).unwrap_or_default()
    });
    let t = std::time::Instant::now();
    let df = data::driver_stats(drivers, hours, start);
    feast_runtime::offline_store::write_file(std::path::Path::new(&out), &df)
        .map_err(|e| format!("{out}: {e}"))?;
    println!(
        "wrote {} rows ({drivers} drivers x {hours} hours from {start}) to {out} in {:.2?}",
        df.height(),
        t.elapsed()
    );
    Ok(())
}
