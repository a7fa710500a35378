//! Kinesis: the [`StreamConsumer`] of Kinesis sources, on aws-sdk-kinesis.
//! Shards are partitions (ListShards gives each one's parents), a shard
//! iterator is a cursor (GetShardIterator after the checkpoint, or at
//! `--from`), GetRecords reads up to 10,000 records, at most five calls a
//! second per shard. Errors are classed by their code: an expired iterator,
//! one to retry (throttling, 5xx, transport), or one that stops the run.
//!
//! Endpoint, region and credentials come from aws-config's standard chain
//! ([`connect`]), so `AWS_ENDPOINT_URL_KINESIS` reaches a local emulator and
//! nothing extra is needed on AWS. The SDK's own retries are off: every call
//! goes through the run's pacing and back-off, so a retry can never break
//! the rate limit.

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::ShardIteratorType;

mod connect;
mod produce;

pub use connect::{Endpoint, StartError, check_stream, connect};
pub use produce::{ProduceError, ensure_stream, put_records};

use super::consumer::{CallError, Class, Fetched, Partition, StreamConsumer};
use super::pipeline::RawRecord;
use super::{IngestOptions, StartFrom};
use crate::config::KinesisConfig;

/// A Kinesis stream to consume.
#[derive(Debug)]
pub struct KinesisConsumer {
    client: Client,
    stream: &'static str,
    from: StartFrom,
}

impl KinesisConsumer {
    /// A consumer of `stream` in `region`, after checking that the
    /// credentials are there and the stream can be read.
    pub async fn connect(
        stream: &'static str,
        region: &str,
        opts: &IngestOptions,
    ) -> Result<KinesisConsumer, StartError> {
        let endpoint = Endpoint::new(region, opts.endpoint_url.clone(), opts.kinesis.as_ref());
        let client = connect(&endpoint).await?;
        check_stream(&client, stream, &endpoint).await?;
        Ok(KinesisConsumer {
            client,
            stream,
            from: opts.from,
        })
    }
}

fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> CallError {
    let (code, message) = code_and_message(e);
    CallError {
        class: classify(code.as_deref()),
        code,
        message,
    }
}

impl StreamConsumer for KinesisConsumer {
    type Cursor = String;

    fn stream(&self) -> &'static str {
        self.stream
    }

    fn min_read_interval(&self) -> Duration {
        Duration::from_millis(200)
    }

    fn max_read_records(&self) -> usize {
        10_000
    }

    async fn list(&self) -> Result<Vec<Partition>, CallError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(self.stream),
            };
            let resp = req.send().await.map_err(|e| call_error(&e))?;
            for s in resp.shards() {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect();
                out.push(Partition {
                    id: s.shard_id().to_owned(),
                    parents,
                });
            }
            match resp.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }

    async fn open(&self, partition: &str, after: Option<&str>) -> Result<String, CallError> {
        let req = self
            .client
            .get_shard_iterator()
            .stream_name(self.stream)
            .shard_id(partition);
        let req = match (after, self.from) {
            (Some(seq), _) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            (None, StartFrom::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            (None, StartFrom::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
            (None, StartFrom::AtTimestamp(t)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
                    t.timestamp_millis(),
                )),
        };
        let resp = req.send().await.map_err(|e| call_error(&e))?;
        resp.shard_iterator().map(str::to_owned).ok_or(CallError {
            class: Class::Fatal,
            code: None,
            message: format!("shard {partition}: GetShardIterator returned no iterator"),
        })
    }

    async fn read(
        &self,
        _partition: &str,
        cursor: String,
        max: usize,
    ) -> Result<Fetched<String>, (CallError, String)> {
        let resp = match self
            .client
            .get_records()
            .shard_iterator(&cursor)
            .limit(i32::try_from(max).unwrap_or(10_000))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Err((call_error(&e), cursor)),
        };
        Ok(Fetched {
            records: resp
                .records()
                .iter()
                .map(|r| RawRecord {
                    sequence_number: r.sequence_number().to_owned(),
                    data: r.data().as_ref().to_vec(),
                })
                .collect(),
            next: resp.next_shard_iterator().map(str::to_owned),
            behind_ms: resp.millis_behind_latest().unwrap_or(0),
        })
    }
}

/// How an error code is handled.
fn classify(code: Option<&str>) -> Class {
    match code {
        Some("ExpiredIteratorException") => Class::Expired,
        Some(
            "ResourceNotFoundException"
            | "AccessDeniedException"
            | "KMSAccessDeniedException"
            | "KMSDisabledException"
            | "KMSNotFoundException"
            | "KMSInvalidStateException"
            | "KMSOptInRequired"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "InvalidArgumentException"
            | "ValidationException",
        ) => Class::Fatal,
        _ => Class::Retry,
    }
}

/// The endpoint a client should be given in code: `--endpoint-url` first;
/// then nothing when aws-config's chain has one of its own (it reads
/// `AWS_ENDPOINT_URL_KINESIS` and `AWS_ENDPOINT_URL`); then
/// `feature_store.yaml`'s `kinesis.endpoint_url`.
pub fn endpoint_url(flag: Option<&str>, config: Option<&KinesisConfig>) -> Option<String> {
    endpoint_url_with(flag, config, |name| std::env::var_os(name))
}

fn endpoint_url_with(
    flag: Option<&str>,
    config: Option<&KinesisConfig>,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<String> {
    if let Some(url) = flag {
        return Some(url.to_owned());
    }
    let from_env = ["AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| env(v).is_some_and(|s| !s.is_empty()));
    if from_env {
        return None;
    }
    config.and_then(|c| c.endpoint_url.clone())
}

pub(crate) fn code_and_message<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E>,
) -> (Option<String>, String) {
    let code = e.code().map(str::to_owned);
    let message = match e.message() {
        Some(m) => m.to_owned(),
        None => {
            // Transport errors carry their cause in the source chain.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_flag_then_the_environment_then_the_config() {
        let config = KinesisConfig {
            endpoint_url: Some("http://config".into()),
            ..KinesisConfig::default()
        };
        let none = |_: &str| None;
        let kinesis_var =
            |name: &str| (name == "AWS_ENDPOINT_URL_KINESIS").then(|| "http://env".into());
        let empty_var = |_: &str| Some(std::ffi::OsString::new());
        assert_eq!(
            endpoint_url_with(Some("http://flag"), Some(&config), kinesis_var).as_deref(),
            Some("http://flag")
        );
        // aws-config reads the variable itself: nothing is set in code.
        assert_eq!(endpoint_url_with(None, Some(&config), kinesis_var), None);
        assert_eq!(
            endpoint_url_with(None, Some(&config), empty_var).as_deref(),
            Some("http://config")
        );
        assert_eq!(
            endpoint_url_with(None, Some(&config), none).as_deref(),
            Some("http://config")
        );
        assert_eq!(endpoint_url_with(None, None, none), None);
    }

    #[test]
    fn errors_are_classified_by_code() {
        assert_eq!(classify(Some("ExpiredIteratorException")), Class::Expired);
        for code in [
            "ProvisionedThroughputExceededException",
            "InternalFailure",
            "ServiceUnavailable",
            "KMSThrottlingException",
            "LimitExceededException",
        ] {
            assert_eq!(classify(Some(code)), Class::Retry, "{code}");
        }
        assert_eq!(classify(None), Class::Retry, "a transport error");
        for code in [
            "ResourceNotFoundException",
            "AccessDeniedException",
            "KMSDisabledException",
            "InvalidArgumentException",
        ] {
            assert_eq!(classify(Some(code)), Class::Fatal, "{code}");
        }
    }
}
