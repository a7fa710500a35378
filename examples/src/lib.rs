//! The driver-stats feature repository from Feast's Kinesis documentation,
//! written as a feast-rs crate.
//!
//! Drivers of a ride-hailing service report their conversion and acceptance
//! rates. The rates arrive as JSON records on the Kinesis stream
//! `driver_stats`; a stream feature view turns them into percentages for
//! online serving, and a batch feature view serves the hourly statistics kept
//! in Parquet.

pub mod data;
pub mod entities;
pub mod services;
pub mod sources;
pub mod views;
