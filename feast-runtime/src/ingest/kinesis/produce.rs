//! Putting records on a stream, for `produce`, the quickstart and tests.

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tokio::time::sleep;

use super::{Class, classify, code_and_message};
use crate::ingest::run::Backoff;

/// Why records could not be put.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// Kinesis refused to create the stream.
    #[error("CreateStream {stream}: {message}")]
    Create {
        /// The stream.
        stream: String,
        /// What Kinesis said.
        message: String,
    },
    /// A created stream did not become active.
    #[error("stream {0} did not become active within 30 s")]
    NotActive(String),
    /// Kinesis refused the records (after retrying throttled ones).
    #[error("PutRecords {stream}: {message}")]
    Put {
        /// The stream.
        stream: String,
        /// What Kinesis said.
        message: String,
    },
    /// A record cannot be made into a request entry.
    #[error("a record cannot be sent: {0}")]
    Entry(#[source] aws_sdk_kinesis::error::BuildError),
}

/// Creates a stream with `shards` shards (if missing) and waits until it is active.
pub async fn ensure_stream(client: &Client, stream: &str, shards: i32) -> Result<(), ProduceError> {
    let exists = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .is_ok();
    if !exists {
        client
            .create_stream()
            .stream_name(stream)
            .shard_count(shards)
            .send()
            .await
            .map_err(|e| ProduceError::Create {
                stream: stream.to_owned(),
                message: code_and_message(&e).1,
            })?;
    }
    for _ in 0..300 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await;
        if let Ok(r) = summary
            && r.stream_description_summary()
                .is_some_and(|d| d.stream_status().as_str() == "ACTIVE")
        {
            return Ok(());
        }
        sleep(Duration::from_millis(100)).await;
    }
    Err(ProduceError::NotActive(stream.to_owned()))
}

/// Puts records (partition key, data), 500 per PutRecords call, retrying the
/// entries that fail. Returns how many were put.
pub async fn put_records(
    client: &Client,
    stream: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Result<usize, ProduceError> {
    let mut put = 0;
    let mut backoff = Backoff::new(stream);
    for chunk in records.chunks(500) {
        let mut todo: Vec<&(String, Vec<u8>)> = chunk.iter().collect();
        let mut attempts = 0;
        while !todo.is_empty() {
            attempts += 1;
            let entries = todo
                .iter()
                .map(|(k, d)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(k)
                        .data(Blob::new(d.clone()))
                        .build()
                        .map_err(ProduceError::Entry)
                })
                .collect::<Result<Vec<_>, _>>()?;
            match client
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
            {
                Ok(resp) => {
                    // Entries fail one by one (throttled, internal failure):
                    // put those again, in their order.
                    let failed: Vec<&(String, Vec<u8>)> = resp
                        .records()
                        .iter()
                        .zip(&todo)
                        .filter(|(r, _)| r.error_code().is_some())
                        .map(|(_, t)| *t)
                        .collect();
                    put += todo.len() - failed.len();
                    if failed.is_empty() {
                        backoff.reset();
                    } else {
                        sleep(backoff.next()).await;
                    }
                    todo = failed;
                }
                Err(e) => {
                    let (code, message) = code_and_message(&e);
                    if classify(code.as_deref()) == Class::Fatal || attempts >= 20 {
                        return Err(ProduceError::Put {
                            stream: stream.to_owned(),
                            message,
                        });
                    }
                    sleep(backoff.next()).await;
                }
            }
        }
    }
    Ok(put)
}
