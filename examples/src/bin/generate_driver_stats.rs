//! Writes the deterministic driver-stats data set as Parquet:
//! `generate-driver-stats [--drivers N] [--hours H] [--start RFC3339] [--out PATH]`.

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
    let mut start: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().map_err(|e| format!("{e}"))?;
    let mut out = String::from("data/driver_stats.parquet/part-00000.parquet");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--drivers" => drivers = value()?.parse().map_err(|e| format!("--drivers: {e}"))?,
            "--hours" => hours = value()?.parse().map_err(|e| format!("--hours: {e}"))?,
            "--start" => start = value()?.parse().map_err(|e| format!("--start: {e}"))?,
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
