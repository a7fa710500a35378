//! The lease table in DynamoDB: one item per shard, every change a
//! single-item conditional write (no transactions), as the Kinesis Client
//! Library does. The attribute names follow KCL's so that an operator who
//! knows one reads the other.
//!
//! | attribute | meaning |
//! |---|---|
//! | `leaseKey` (hash key) | `{stream}:{shardId}` |
//! | `streamName`, `shardId` | the same, apart |
//! | `leaseOwner` | the worker holding it; absent when free |
//! | `leaseCounter` | bumped by every take, renewal, release and shard end |
//! | `checkpoint` | `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, the last committed sequence number, or `SHARD_END` |
//! | `parentShardId` | the parents (string set), read to their end first |
//! | `ownerSwitchesSinceCheckpoint` | takes since the checkpoint last moved |
//! | `lastRenewal` | the owner's clock at its last renewal (for people; expiry never reads it) |
//! | `millisBehindLatest` | the owner's last MillisBehindLatest |

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableStatus,
};

use crate::ingest::kinesis::code_and_message;

/// The checkpoint of a shard read to its end.
pub const SHARD_END: &str = "SHARD_END";

/// One shard's lease, as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The stream.
    pub stream: String,
    /// The shard.
    pub shard: String,
    /// Who holds it; `None` when free.
    pub owner: Option<String>,
    /// Bumped by every change: a worker that sees it unchanged for a lease
    /// duration takes the lease (its own clock only: no clocks compared).
    pub counter: u64,
    /// The last committed sequence number, a start position, or
    /// [`SHARD_END`].
    pub checkpoint: String,
    /// The shards it was split or merged from.
    pub parents: Vec<String>,
    /// Takes since the checkpoint last moved (a shard that keeps changing
    /// hands without progress shows here).
    pub owner_switches: u64,
    /// When the owner last renewed, by its clock (RFC 3339).
    pub last_renewal: Option<String>,
    /// The owner's last MillisBehindLatest for the shard.
    pub behind_ms: Option<i64>,
}

impl Lease {
    /// A new, free lease of a shard.
    pub fn new(stream: &str, shard: &str, parents: Vec<String>, start: &str) -> Lease {
        Lease {
            stream: stream.to_owned(),
            shard: shard.to_owned(),
            owner: None,
            counter: 0,
            checkpoint: start.to_owned(),
            parents,
            owner_switches: 0,
            last_renewal: None,
            behind_ms: None,
        }
    }

    /// The item's key: `{stream}:{shard}`.
    pub fn key(&self) -> String {
        lease_key(&self.stream, &self.shard)
    }

    /// Whether the shard was read to its end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == SHARD_END
    }
}

fn lease_key(stream: &str, shard: &str) -> String {
    format!("{stream}:{shard}")
}

/// A failed lease-table call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The condition did not hold: another worker changed the lease first.
    #[error("the lease changed meanwhile")]
    Changed,
    /// The table does not exist (`ingest` creates it).
    #[error("no lease table {table} at {endpoint}")]
    Missing {
        /// The table.
        table: String,
        /// Where it was looked for.
        endpoint: String,
    },
    /// The table could not be reached or refused for now (throttled,
    /// unreachable, timed out): try again later.
    #[error("lease table {table}: {message}")]
    Unavailable {
        /// The table.
        table: String,
        /// What went wrong.
        message: String,
    },
    /// The table answered with an error that trying again cannot fix
    /// (credentials refused, a malformed item).
    #[error("lease table {table}: {message}")]
    Fatal {
        /// The table.
        table: String,
        /// What went wrong.
        message: String,
    },
}

/// How to reach the table.
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// The table's name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The most one call may take (a renewal must not outlive the lease).
    pub call_timeout: Duration,
}

/// The lease table of one application (a project's ingest workers).
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: Client,
    name: String,
    endpoint: String,
}

/// Errors codes after which a call may succeed if tried again.
fn retryable(code: Option<&str>) -> bool {
    match code {
        None => true,
        Some(c) => matches!(
            c,
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "LimitExceededException"
                | "ResourceInUseException"
                | "TransactionConflictException"
        ),
    }
}

impl LeaseTable {
    /// A client for the table through aws-config's standard chain (it reads
    /// `AWS_ENDPOINT_URL_DYNAMODB` for a local emulator), with the SDK's
    /// retries off: the lease loop calls again on its own schedule.
    pub async fn connect(config: &TableConfig) -> LeaseTable {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            .load()
            .await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&shared)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.call_timeout.min(Duration::from_secs(2)))
                    .operation_timeout(config.call_timeout)
                    .build(),
            )
            .build();
        let endpoint = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("https://dynamodb.{}.amazonaws.com", config.region));
        LeaseTable {
            client: Client::from_conf(conf),
            name: config.name.clone(),
            endpoint,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where calls go, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        e: &SdkError<E>,
    ) -> TableError {
        let (code, message) = code_and_message(e);
        match code.as_deref() {
            Some("ConditionalCheckFailedException") => return TableError::Changed,
            Some("ResourceNotFoundException") => {
                return TableError::Missing {
                    table: self.name.clone(),
                    endpoint: self.endpoint.clone(),
                };
            }
            _ => {}
        }
        let message = match &code {
            Some(c) => format!("{c}: {message}"),
            None => format!(
                "cannot reach DynamoDB at {}: {message}; for a local emulator set AWS_ENDPOINT_URL_DYNAMODB",
                self.endpoint
            ),
        };
        if retryable(code.as_deref()) {
            TableError::Unavailable {
                table: self.name.clone(),
                message,
            }
        } else {
            TableError::Fatal {
                table: self.name.clone(),
                message,
            }
        }
    }

    /// Creates the table (on-demand billing) unless it exists, and waits
    /// until it is active. A table throttled or unreachable is tried four
    /// more times within about four seconds, then reported.
    pub async fn ensure(&self) -> Result<(), TableError> {
        let mut wait = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self.ensure_once().await {
                Err(TableError::Unavailable { .. }) if attempt < 5 => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn ensure_once(&self) -> Result<(), TableError> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await;
        match exists {
            Ok(out) if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) => {
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                let key = |name: &str| {
                    (
                        AttributeDefinition::builder()
                            .attribute_name(name)
                            .attribute_type(ScalarAttributeType::S)
                            .build(),
                        KeySchemaElement::builder()
                            .attribute_name(name)
                            .key_type(KeyType::Hash)
                            .build(),
                    )
                };
                let (Ok(attr), Ok(schema)) = key("leaseKey") else {
                    return Err(TableError::Fatal {
                        table: self.name.clone(),
                        message: "cannot describe the table's key".into(),
                    });
                };
                let created = self
                    .client
                    .create_table()
                    .table_name(&self.name)
                    .attribute_definitions(attr)
                    .key_schema(schema)
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await;
                match created {
                    Ok(_) => tracing::info!(table = %self.name, "created the lease table"),
                    // Another worker created it first.
                    Err(e) if e.code() == Some("ResourceInUseException") => {}
                    Err(e) => return Err(self.error(&e)),
                }
            }
            Err(e) => return Err(self.error(&e)),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(|e| self.error(&e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TableError::Unavailable {
                    table: self.name.clone(),
                    message: "the table did not become active within 60 s".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every lease of `stream` (all of them with `None`), read consistently.
    pub async fn scan(&self, stream: Option<&str>) -> Result<Vec<Lease>, TableError> {
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut call = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some(s) = stream {
                call = call
                    .filter_expression("streamName = :s")
                    .expression_attribute_values(":s", AttributeValue::S(s.to_owned()));
            }
            let out = call.send().await.map_err(|e| self.error(&e))?;
            for item in out.items() {
                leases.push(self.parse(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        leases.sort_by(|a, b| (&a.stream, &a.shard).cmp(&(&b.stream, &b.shard)));
        Ok(leases)
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<Lease, TableError> {
        let bad = |what: &str| TableError::Fatal {
            table: self.name.clone(),
            message: format!("an item has no valid `{what}`: {item:?}"),
        };
        let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let n = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        Ok(Lease {
            stream: s("streamName").ok_or_else(|| bad("streamName"))?,
            shard: s("shardId").ok_or_else(|| bad("shardId"))?,
            owner: s("leaseOwner"),
            counter: n("leaseCounter")
                .and_then(|c| u64::try_from(c).ok())
                .ok_or_else(|| bad("leaseCounter"))?,
            checkpoint: s("checkpoint").ok_or_else(|| bad("checkpoint"))?,
            parents: item
                .get("parentShardId")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
            owner_switches: n("ownerSwitchesSinceCheckpoint")
                .and_then(|c| u64::try_from(c).ok())
                .unwrap_or(0),
            last_renewal: s("lastRenewal"),
            behind_ms: n("millisBehindLatest"),
        })
    }

    /// Adds a free lease unless the shard has one.
    pub async fn create(&self, lease: &Lease) -> Result<(), TableError> {
        let mut call = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("leaseKey", AttributeValue::S(lease.key()))
            .item("streamName", AttributeValue::S(lease.stream.clone()))
            .item("shardId", AttributeValue::S(lease.shard.clone()))
            .item("leaseCounter", AttributeValue::N("0".into()))
            .item("checkpoint", AttributeValue::S(lease.checkpoint.clone()))
            .item(
                "ownerSwitchesSinceCheckpoint",
                AttributeValue::N("0".into()),
            )
            .condition_expression("attribute_not_exists(leaseKey)");
        if !lease.parents.is_empty() {
            call = call.item("parentShardId", AttributeValue::Ss(lease.parents.clone()));
        }
        match call.send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.error(&e) {
                // Another worker created it first.
                TableError::Changed => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Runs a conditional update of one lease: the counter from `counters.0`
    /// to `counters.1`, `set` and `remove` clauses, on condition that the
    /// counter is still `counters.0` (and `extra`). Returns the new counter.
    async fn update(
        &self,
        stream: &str,
        shard: &str,
        (counter, next): (u64, u64),
        set: &[(&str, AttributeValue)],
        remove: &[&str],
        extra: Option<(&str, &str, AttributeValue)>,
    ) -> Result<u64, TableError> {
        let mut expr = String::from("SET leaseCounter = :next");
        let mut call = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", AttributeValue::S(lease_key(stream, shard)))
            .expression_attribute_values(":counter", AttributeValue::N(counter.to_string()))
            .expression_attribute_values(":next", AttributeValue::N(next.to_string()));
        for (i, (name, value)) in set.iter().enumerate() {
            expr.push_str(&format!(", {name} = :v{i}"));
            call = call.expression_attribute_values(format!(":v{i}"), value.clone());
        }
        if !remove.is_empty() {
            expr.push_str(" REMOVE ");
            expr.push_str(&remove.join(", "));
        }
        let mut condition = String::from("leaseCounter = :counter");
        if let Some((clause, placeholder, value)) = extra {
            // In parentheses: AND binds tighter than OR.
            condition.push_str(&format!(" AND ({clause})"));
            call = call.expression_attribute_values(placeholder, value);
        }
        call.update_expression(expr)
            .condition_expression(condition)
            .send()
            .await
            .map_err(|e| self.error(&e))?;
        Ok(next)
    }

    /// Takes `lease` as the scan showed it: the counter after the take,
    /// the new owner's fencing token. The condition depends on why: a free
    /// lease must still have no owner; an expired one (or one left in this
    /// worker's name) must be unchanged, or its owner is alive after all; a
    /// stolen one must still be its victim's, whatever its renewals did to
    /// the counter meanwhile (conditioning a steal on the counter would
    /// race every renewal of a live owner, and lose each time their rounds
    /// keep step). The counter is bumped in the same write, so each take's
    /// token is above every earlier one.
    pub async fn take(&self, lease: &Lease, worker: &str, steal: bool) -> Result<u64, TableError> {
        let owner_switches = lease.owner_switches + u64::from(lease.owner.is_some());
        let mut call = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", AttributeValue::S(lease.key()))
            .update_expression(
                "SET leaseOwner = :me, leaseCounter = leaseCounter + :one, \
                 ownerSwitchesSinceCheckpoint = :switches, lastRenewal = :now",
            )
            .expression_attribute_values(":me", AttributeValue::S(worker.to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":switches", AttributeValue::N(owner_switches.to_string()))
            .expression_attribute_values(":now", AttributeValue::S(now()))
            .expression_attribute_values(":end", AttributeValue::S(SHARD_END.into()))
            .return_values(ReturnValue::AllNew);
        let condition = match &lease.owner {
            None => "attribute_not_exists(leaseOwner) AND checkpoint <> :end",
            Some(owner) => {
                call = call.expression_attribute_values(":owner", AttributeValue::S(owner.clone()));
                if steal {
                    "leaseOwner = :owner AND checkpoint <> :end"
                } else {
                    call = call.expression_attribute_values(
                        ":counter",
                        AttributeValue::N(lease.counter.to_string()),
                    );
                    "leaseOwner = :owner AND leaseCounter = :counter AND checkpoint <> :end"
                }
            }
        };
        let out = call
            .condition_expression(condition)
            .send()
            .await
            .map_err(|e| self.error(&e))?;
        out.attributes()
            .and_then(|a| a.get("leaseCounter"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| TableError::Fatal {
                table: self.name.clone(),
                message: format!("a take of {} did not return the new counter", lease.key()),
            })
    }

    /// Renews a lease this worker holds with counter `counter`, recording its
    /// committed position; [`TableError::Changed`] when it was taken.
    pub async fn renew(
        &self,
        stream: &str,
        shard: &str,
        worker: &str,
        counter: u64,
        checkpoint: Option<&str>,
        behind_ms: i64,
    ) -> Result<u64, TableError> {
        let mut set = vec![
            ("lastRenewal", AttributeValue::S(now())),
            (
                "millisBehindLatest",
                AttributeValue::N(behind_ms.to_string()),
            ),
        ];
        set.extend(progress(checkpoint));
        self.update(
            stream,
            shard,
            (counter, counter + 1),
            &set,
            &[],
            Some(owned_by(worker)),
        )
        .await
    }

    /// Raises the counter of a lease this worker holds above `floor`: for
    /// when the online store has seen a higher fencing token than the table
    /// holds (the table was dropped and made anew). Returns the new counter.
    pub async fn raise(
        &self,
        stream: &str,
        shard: &str,
        worker: &str,
        counter: u64,
        floor: u64,
    ) -> Result<u64, TableError> {
        let next = floor.max(counter) + 1;
        self.update(
            stream,
            shard,
            (counter, next),
            &[],
            &[],
            Some(owned_by(worker)),
        )
        .await
    }

    /// Hands a lease back (graceful stop): records the position and frees
    /// it, so another worker takes it at once rather than after it expires.
    pub async fn release(
        &self,
        stream: &str,
        shard: &str,
        worker: &str,
        counter: u64,
        checkpoint: Option<&str>,
    ) -> Result<u64, TableError> {
        let set = progress(checkpoint);
        self.update(
            stream,
            shard,
            (counter, counter + 1),
            &set,
            &["leaseOwner"],
            Some(owned_by(worker)),
        )
        .await
    }

    /// Records that a shard this worker holds was read to its end, and
    /// frees it: its children may be leased now.
    pub async fn finish(
        &self,
        stream: &str,
        shard: &str,
        worker: &str,
        counter: u64,
    ) -> Result<u64, TableError> {
        self.update(
            stream,
            shard,
            (counter, counter + 1),
            &[("checkpoint", AttributeValue::S(SHARD_END.into()))],
            &["leaseOwner"],
            Some(owned_by(worker)),
        )
        .await
    }

    /// Deletes the lease of a finished shard (one the stream no longer
    /// lists).
    pub async fn delete_finished(&self, stream: &str, shard: &str) -> Result<(), TableError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key("leaseKey", AttributeValue::S(lease_key(stream, shard)))
            .condition_expression("checkpoint = :end")
            .expression_attribute_values(":end", AttributeValue::S(SHARD_END.into()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) => match self.error(&e) {
                TableError::Changed => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// The attributes a committed position sets: the checkpoint, and no owner
/// switch since.
fn progress(checkpoint: Option<&str>) -> Vec<(&'static str, AttributeValue)> {
    checkpoint.map_or_else(Vec::new, |seq| {
        vec![
            ("checkpoint", AttributeValue::S(seq.to_owned())),
            (
                "ownerSwitchesSinceCheckpoint",
                AttributeValue::N("0".into()),
            ),
        ]
    })
}

fn owned_by(worker: &str) -> (&'static str, &'static str, AttributeValue) {
    (
        "leaseOwner = :owner",
        ":owner",
        AttributeValue::S(worker.to_owned()),
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
