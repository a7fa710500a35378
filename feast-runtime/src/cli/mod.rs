//! The command line every feature repo binary gets from one line in `main`:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     feast_runtime::cli::main()
//! }
//! ```

mod commands;

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
    pub command: Command,
}

#[derive(Debug, Subcommand)]
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
    /// Validate, then write the definitions to the registry file.
    Apply,
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

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}
