//! Stream ingestion: Kinesis records through the views into the stores.
//!
//! The pieces that need no AWS client (decoding, the batch path, checkpoints,
//! the dead-letter sink, metrics) are always built; the Kinesis consumer is
//! behind the `kinesis` feature.

pub mod dead_letter;
pub mod decode;
pub mod metrics;
pub mod pipeline;

#[cfg(feature = "kinesis")]
pub mod kinesis;
