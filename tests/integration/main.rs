//! Integration tests: the registry the example registers, registry checks on
//! hand-built definitions, and the CLI run as a user runs it.

#![allow(clippy::unwrap_used)] // test and benchmark code: a failure should stop loudly

// Links the example's definitions into this test binary.
use feast_example_driver_stats as _;

mod cli;
mod online_store;
mod registry;
mod retrieval;
