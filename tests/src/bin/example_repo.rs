//! The example feature repo, as the CLI tests run it.

use feast_example_driver_stats as _;

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
