//! The feature repository binary: `driver-stats list`, `validate`, `plan`, `apply`.

// Links the definitions, which register themselves when the crate is linked.
use feast_example_driver_stats as _;

fn main() -> std::process::ExitCode {
    feast_runtime::cli::main()
}
