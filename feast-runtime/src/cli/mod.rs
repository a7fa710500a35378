//! The command line every feature repo binary gets from one line in `main`:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     feast_runtime::cli::main()
//! }
//! ```

mod commands;
#[cfg(feature = "kinesis")]
mod ingest_commands;
#[cfg(feature = "server")]
mod serve_command;
mod store_commands;

pub use crate::feature_store::json::{feast_json, value_json};

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A feast-rs feature repository: its definitions are compiled into this binary.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The feature repository (the directory holding feature_store.yaml).
    #[arg(
        short = 'c',
        long,
        global = true,
        env = "FEAST_REPO_PATH",
        default_value = "."
    )]
    pub chdir: PathBuf,

    #[command(subcommand)]
    /// The subcommand to run.
    pub command: Command,
}

#[derive(Debug, Subcommand)]
/// The subcommands of a feature repo binary.
pub enum Command {
    /// List entities, data sources, feature views and services with their schemas.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check every definition, and run each view's function on an empty frame
    /// to compare its output with the declared schema.
    Validate,
    /// Show what `apply` would change in the registry file.
    Plan,
    /// Validate, write the definitions to the registry file and create the
    /// online store's tables.
    Apply,
    /// Copy the newest row per entity with event time in [START, END] from the
    /// offline store to the online store.
    Materialize {
        /// RFC 3339 time (`2025-01-01T00:00:00Z`), a date, or `now`.
        start: String,
        /// RFC 3339 time, a date, or `now`.
        end: String,
        /// Only these views (comma-separated); default: every online view.
        #[arg(long, value_delimiter = ',')]
        views: Vec<String>,
    },
    /// Materialize from each view's previous end (or END - ttl) to END.
    MaterializeIncremental {
        /// RFC 3339 time (`2025-01-01T00:00:00Z`), a date, or `now`.
        end: String,
        /// Only these views (comma-separated); default: every online view.
        #[arg(long, value_delimiter = ',')]
        views: Vec<String>,
    },
    /// Check the online store against the offline store: each view's newest
    /// values recomputed from the offline store through its function, compared
    /// with what is served. Exits 1 if any differ.
    Verify {
        /// Only these views (comma-separated); default: every online view.
        #[arg(long, value_delimiter = ',')]
        views: Vec<String>,
        /// Differences to print per view.
        #[arg(long, default_value_t = 10)]
        show: usize,
        /// Compare as of this time (RFC 3339, or `now`): the ttl, and an
        /// aggregated view's windows, are taken at it.
        #[arg(long, default_value = "now")]
        at: String,
    },
    /// Read online features for entities.
    GetOnline {
        /// `view:feature` references (comma-separated).
        #[arg(long, value_delimiter = ',', required_unless_present = "service")]
        features: Vec<String>,
        /// A feature service instead of references.
        #[arg(long, conflicts_with = "features")]
        service: Option<String>,
        /// Entity keys, as `driver_id=1001,1002`; repeat for several join keys.
        #[arg(long = "entity", required = true)]
        entities: Vec<String>,
        /// Name features `view__feature`.
        #[arg(long)]
        full_feature_names: bool,
        /// Print Feast's JSON response instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Point-in-time correct training data for an entity file.
    GetHistorical {
        /// Parquet or CSV file (by extension) with join keys and
        /// `event_timestamp` (at most microsecond precision).
        #[arg(long)]
        entities: std::path::PathBuf,
        /// `view:feature` references (comma-separated).
        #[arg(long, value_delimiter = ',', required_unless_present = "service")]
        features: Vec<String>,
        /// A feature service instead of references.
        #[arg(long, conflicts_with = "features")]
        service: Option<String>,
        /// The file to write: `.parquet`, or `.csv` (times as RFC 3339 with `Z`).
        #[arg(long)]
        output: std::path::PathBuf,
        /// Name features `view__feature`.
        #[arg(long)]
        full_feature_names: bool,
        /// Ignore feature rows created after the entity row's time.
        #[arg(long)]
        filter_by_created_timestamp: bool,
    },
    /// Push rows from a Parquet or CSV file through a push source.
    Push {
        /// The push source's name.
        push_source: String,
        /// Parquet or CSV file (by extension) in the push source's schema.
        file: std::path::PathBuf,
        /// online, offline or online_and_offline.
        #[arg(long, default_value = "online")]
        to: String,
    },
    /// Write feature rows from a Parquet or CSV file to the online store.
    WriteOnline {
        /// The feature view's name.
        view: String,
        /// Parquet or CSV file (by extension) with the view's join keys, event
        /// timestamp and features.
        file: std::path::PathBuf,
    },
    /// Drop the online store's tables of every view.
    Teardown,
    /// Consume the Kinesis streams of the stream views into the stores.
    #[cfg(feature = "kinesis")]
    Ingest(ingest_commands::IngestArgs),
    /// Put records on a Kinesis source's stream (synthetic, or lines of a file).
    #[cfg(feature = "kinesis")]
    Produce(ingest_commands::ProduceArgs),
    /// Print the shard leases of `ingest --lease-table`: owner, checkpoint,
    /// lag and last renewal of each shard.
    #[cfg(feature = "leases")]
    Leases(ingest_commands::LeasesArgs),
    /// Serve online features over HTTP, with Feast's endpoints and JSON.
    #[cfg(feature = "server")]
    Serve(serve_command::ServeArgs),
}

/// Parses the process arguments, runs the command and maps the outcome to an
/// exit code: 0 on success, 1 on failure, 2 on a usage error.
pub fn main() -> ExitCode {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let mut out = io::stdout().lock();
    match commands::run(&cli, &mut out) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let _ = out.flush();
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Logs go to stderr, coloured only on a terminal. `RUST_LOG` sets the
/// level; by default warnings, without aws-config's own (a credential
/// provider that found nothing is reported once, by `ingest`, with what to
/// set).
fn init_tracing() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(format!("{path} (the command)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
    }
}
