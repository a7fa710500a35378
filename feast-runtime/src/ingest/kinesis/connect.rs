//! Reaching Kinesis: the client from aws-config's standard chain, and the
//! start-up checks that turn a missing credential, a stream that does not
//! exist or an endpoint nobody answers on into one line that says what to
//! set, instead of a retry loop. After a successful start, the same faults
//! are retried (a stream briefly unreachable is not a reason to stop).

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::ProvideCredentials;
use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;

use super::{Class, classify, code_and_message};
use crate::config::KinesisConfig;

/// How to reach Kinesis for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The source's region.
    pub region: String,
    /// An endpoint set in code (`--endpoint-url`, or `feature_store.yaml`
    /// when the environment has none); `None` leaves it to aws-config.
    pub url: Option<String>,
    /// Connect timeout of each call.
    pub connect_timeout: Duration,
    /// Timeout of each call, retries excluded (there are none in the SDK).
    pub operation_timeout: Duration,
}

impl Endpoint {
    /// The endpoint for `region` given `--endpoint-url` and the `kinesis:`
    /// key of `feature_store.yaml`.
    pub fn new(region: &str, url: Option<String>, config: Option<&KinesisConfig>) -> Endpoint {
        let config = config.cloned().unwrap_or_default();
        Endpoint {
            region: region.to_owned(),
            url,
            connect_timeout: Duration::from_secs(config.connect_timeout_seconds()),
            operation_timeout: Duration::from_secs(config.operation_timeout_seconds()),
        }
    }

    /// Where calls go, for messages: the URL set in code, else the one
    /// aws-config takes from the environment, else AWS's own.
    pub fn describe(&self) -> String {
        self.url
            .clone()
            .or_else(|| {
                ["AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            })
            .unwrap_or_else(|| format!("https://kinesis.{}.amazonaws.com", self.region))
    }
}

/// Why Kinesis cannot be read at start-up; each says what to set or fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The default credential chain found nothing.
    #[error(
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); a local emulator accepts any pair, such as AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test{}",
        if *slow { " (looking for them took over 10 s)" } else { "" }
    )]
    NoCredentials {
        /// The chain took over 10 s to give up.
        slow: bool,
    },
    /// The stream does not exist.
    #[error(
        "stream `{stream}` does not exist at {endpoint} (region {region}): create it, or check the source's stream_name and region"
    )]
    NoStream {
        /// The stream.
        stream: String,
        /// Where it was looked for.
        endpoint: String,
        /// In which region.
        region: String,
    },
    /// The credentials were refused.
    #[error(
        "Kinesis at {endpoint} refused the credentials for stream `{stream}`: {message}; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    )]
    Refused {
        /// The stream.
        stream: String,
        /// Where.
        endpoint: String,
        /// What Kinesis said.
        message: String,
    },
    /// Another error Kinesis returned.
    #[error("stream `{stream}` at {endpoint}: {code}: {message}")]
    Other {
        /// The stream.
        stream: String,
        /// Where.
        endpoint: String,
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Nobody answered at the endpoint.
    #[error(
        "cannot reach Kinesis at {endpoint} (region {region}): {cause}; for a local emulator set AWS_ENDPOINT_URL_KINESIS (or kinesis.endpoint_url in feature_store.yaml), on AWS check the source's region"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The region.
        region: String,
        /// The innermost cause.
        cause: String,
    },
}

/// A client with the SDK's retries off (the consumer paces and retries every
/// call itself), after checking that credentials can be found.
pub async fn connect(endpoint: &Endpoint) -> Result<Client, StartError> {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(endpoint.region.clone()))
        .load()
        .await;
    let Some(credentials) = shared.credentials_provider() else {
        return Err(StartError::NoCredentials { slow: false });
    };
    // The chain ends with the instance metadata service, which answers
    // within a second or two on EC2 and fails fast elsewhere; bound it anyway.
    match tokio::time::timeout(Duration::from_secs(10), credentials.provide_credentials()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no credentials from aws-config's chain");
            return Err(StartError::NoCredentials { slow: false });
        }
        Err(_) => return Err(StartError::NoCredentials { slow: true }),
    }
    let mut conf = aws_sdk_kinesis::config::Builder::from(&shared)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(endpoint.connect_timeout)
                .operation_timeout(endpoint.operation_timeout)
                .build(),
        );
    if let Some(url) = &endpoint.url {
        conf = conf.endpoint_url(url);
    }
    Ok(Client::from_conf(conf.build()))
}

/// Checks at start-up that `stream` can be read: it exists, the credentials
/// are accepted, the endpoint answers. Throttling, server and connection
/// errors are tried again three times within about two seconds (plus the
/// calls' own timeouts); anything else, or still failing then, is an error
/// that names what to fix.
pub async fn check_stream(
    client: &Client,
    stream: &str,
    endpoint: &Endpoint,
) -> Result<(), StartError> {
    let mut wait = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        let e = match client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let (code, message) = code_and_message(&e);
        if classify(code.as_deref()) == Class::Retry && attempt < 4 {
            tracing::debug!(stream, error = %message, "DescribeStreamSummary failed at start-up; trying again");
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
            continue;
        }
        return Err(start_error(stream, endpoint, code.as_deref(), &message));
    }
}

/// The error for a stream that cannot be read at start-up.
fn start_error(stream: &str, endpoint: &Endpoint, code: Option<&str>, message: &str) -> StartError {
    let at = endpoint.describe();
    match code {
        Some("ResourceNotFoundException") => StartError::NoStream {
            stream: stream.to_owned(),
            endpoint: at,
            region: endpoint.region.clone(),
        },
        Some(
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignatureException"
            | "AccessDeniedException",
        ) => StartError::Refused {
            stream: stream.to_owned(),
            endpoint: at,
            message: message.to_owned(),
        },
        Some(code) => StartError::Other {
            stream: stream.to_owned(),
            endpoint: at,
            code: code.to_owned(),
            message: message.to_owned(),
        },
        None => StartError::Unreachable {
            endpoint: at,
            region: endpoint.region.clone(),
            cause: short_cause(message).to_owned(),
        },
    }
}

/// The innermost cause of a transport error chain ("connection refused",
/// "dns error: ..."), which is what a user can act on.
fn short_cause(chain: &str) -> &str {
    chain
        .rsplit(": ")
        .find(|part| !part.trim().is_empty())
        .unwrap_or(chain)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: Option<&str>) -> Endpoint {
        Endpoint::new("eu-west-3", url.map(str::to_owned), None)
    }

    #[test]
    fn start_errors_say_what_to_set() {
        let e = start_error(
            "orders",
            &endpoint(Some("http://127.0.0.1:1")),
            None,
            "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)",
        );
        assert_eq!(
            e.to_string(),
            "cannot reach Kinesis at http://127.0.0.1:1 (region eu-west-3): Connection refused (os error 111); for a local emulator set AWS_ENDPOINT_URL_KINESIS (or kinesis.endpoint_url in feature_store.yaml), on AWS check the source's region"
        );
        let e = start_error(
            "orders",
            &endpoint(Some("http://127.0.0.1:1")),
            Some("ResourceNotFoundException"),
            "Stream orders under account 000000000000 not found.",
        );
        assert_eq!(
            e.to_string(),
            "stream `orders` does not exist at http://127.0.0.1:1 (region eu-west-3): create it, or check the source's stream_name and region"
        );
    }

    #[test]
    fn timeouts_default_to_two_and_fifteen_seconds() {
        let e = endpoint(None);
        assert_eq!(
            (e.connect_timeout, e.operation_timeout),
            (Duration::from_secs(2), Duration::from_secs(15))
        );
        let config = KinesisConfig {
            operation_timeout_seconds: Some(40),
            ..KinesisConfig::default()
        };
        let e = Endpoint::new("us-east-1", None, Some(&config));
        assert_eq!(e.operation_timeout, Duration::from_secs(40));
    }
}
