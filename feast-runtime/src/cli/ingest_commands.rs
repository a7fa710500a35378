//! `ingest` and `produce`: the Kinesis side of the CLI.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;

use super::Cli;
use super::store_commands::{open, parse_time};
use crate::definition::{FeastType, SourceKind};
use crate::ingest::kinesis;
use crate::ingest::metrics::Metrics;
use crate::ingest::pipeline::Writes;
use crate::ingest::{IngestOptions, StartFrom};

/// Arguments of `ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Only these stream views (repeatable); default: every view on a Kinesis source.
    #[arg(long = "view")]
    pub views: Vec<String>,
    /// Write only this store in this run: `online` (features of the views
    /// with `online = true`) or `offline` (the source's records, logged to
    /// its batch source for views with `offline = true`). Default: both, as
    /// the views declare. Checkpoints advance as in any run.
    #[arg(long)]
    pub only: Option<Writes>,
    /// Where a shard without a checkpoint starts: trim-horizon, latest or at-timestamp.
    #[arg(long, default_value = "trim-horizon")]
    pub from: String,
    /// The time for `--from at-timestamp` (RFC 3339).
    #[arg(long)]
    pub at: Option<String>,
    /// Stop once every shard reports no lag.
    #[arg(long)]
    pub until_caught_up: bool,
    /// The most records in a micro-batch (GetRecords returns at most 10,000
    /// a call; --max-batch-latency-ms decides how fresh a batch is).
    #[arg(long, default_value_t = 20_000)]
    pub batch_size: usize,
    /// Write a partial batch after this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub max_batch_latency_ms: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9108;
    /// port 0 picks a free port); the address is printed at start.
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// The Kinesis endpoint (default: AWS_ENDPOINT_URL_KINESIS, then
    /// `kinesis.endpoint_url` in feature_store.yaml, then AWS).
    #[arg(long, env = "FEAST_KINESIS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// After SIGTERM or SIGINT, exit with an error if flushing takes longer.
    #[arg(long, default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Dead-letter records larger than this many bytes.
    #[arg(long, default_value_t = crate::ingest::decode::MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,
    /// Seconds between reads of the shard list (to find new shards).
    #[arg(long, default_value_t = 10)]
    pub shard_discovery_interval_secs: u64,
    /// Share the streams with other workers: each reads the shards it
    /// leases in this DynamoDB table (created if missing; default:
    /// `kinesis.lease_table` in feature_store.yaml). Needs the Redis online
    /// store. The endpoint comes from aws-config's chain
    /// (AWS_ENDPOINT_URL_DYNAMODB for a local emulator).
    #[cfg(feature = "leases")]
    #[arg(long)]
    pub lease_table: Option<String>,
    /// Seconds a lease lasts without a renewal (default:
    /// `kinesis.lease_duration_seconds`, else 10); renewals are a third of
    /// it apart.
    #[cfg(feature = "leases")]
    #[arg(long)]
    pub lease_duration_secs: Option<u64>,
    /// This worker's name in the lease table (default: host:pid).
    #[cfg(feature = "leases")]
    #[arg(long)]
    pub worker_id: Option<String>,
}

/// Arguments of `leases`.
#[cfg(feature = "leases")]
#[derive(Debug, clap::Args)]
pub struct LeasesArgs {
    /// The lease table (default: `kinesis.lease_table` in feature_store.yaml).
    #[arg(long)]
    pub lease_table: Option<String>,
    /// One JSON object per lease instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// The Kinesis source whose stream receives the records.
    #[arg(long)]
    pub source: String,
    /// Synthetic records to put (ignored with --file).
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    /// Distinct join-key values (1001, 1002, ...).
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Create the stream with this many shards if it does not exist.
    #[arg(long, default_value_t = 1)]
    pub shards: i32,
    /// Put the lines of this file (one record each) instead of synthetic records.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// The Kinesis endpoint (default: AWS_ENDPOINT_URL_KINESIS, then
    /// `kinesis.endpoint_url` in feature_store.yaml, then AWS).
    #[arg(long, env = "FEAST_KINESIS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub(super) fn ingest(
    cli: &Cli,
    out: &mut impl Write,
    args: &IngestArgs,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let from = match (args.from.as_str(), &args.at) {
        ("trim-horizon", _) => StartFrom::TrimHorizon,
        ("latest", _) => StartFrom::Latest,
        ("at-timestamp", Some(t)) => StartFrom::AtTimestamp(parse_time(t)?),
        ("at-timestamp", None) => bail!("--from at-timestamp needs --at TIME"),
        (other, _) => {
            bail!("unknown --from `{other}`; expected trim-horizon, latest or at-timestamp")
        }
    };
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let store = Arc::new(open(cli)?);
    let endpoint_url = kinesis::endpoint_url(
        args.endpoint_url.as_deref(),
        store.config().kinesis.as_ref(),
    );
    let opts = IngestOptions {
        views: args.views.clone(),
        writes: args.only.unwrap_or_default(),
        from,
        until_caught_up: args.until_caught_up,
        batch_size: args.batch_size,
        max_batch_latency: Duration::from_millis(args.max_batch_latency_ms),
        endpoint_url,
        kinesis: store.config().kinesis.clone(),
        shard_discovery_interval: Duration::from_secs(args.shard_discovery_interval_secs.max(1)),
        max_record_bytes: args.max_record_bytes,
        #[cfg(feature = "leases")]
        leases: lease_options(args, store.config().kinesis.as_ref())?,
    };
    let deadline = Duration::from_secs(args.shutdown_timeout_secs);
    let metrics = Arc::new(Metrics::default());
    let rt = runtime()?;
    let result = rt.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Some(addr) = &args.metrics_addr {
            serve_metrics(addr, metrics.clone()).await?;
        }
        watch_signals(stop_tx);
        let progress = tokio::spawn(log_progress(metrics.clone()));
        let ingest = crate::ingest::ingest(store, opts, metrics.clone(), stop_rx.clone());
        let result = tokio::select! {
            r = ingest => r.map_err(anyhow::Error::from),
            () = deadline_after_stop(stop_rx, deadline) => Err(anyhow::anyhow!(
                "ingestion did not stop within {deadline:?} of the signal; exiting without the batches still being written (their records are read again on the next run)"
            )),
        };
        progress.abort();
        result
    });
    // Shard tasks have flushed (or the deadline passed): don't wait for
    // idle background work.
    rt.shutdown_timeout(Duration::from_secs(1));
    let summary = result?;
    writeln!(
        out,
        "ingested {} records ({} dead-lettered) from {} shards, wrote {} feature rows in {:.2?}",
        summary.records,
        summary.dead_lettered,
        summary.shards,
        summary.rows_written,
        started.elapsed()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Shard leases, if `--lease-table` or `kinesis.lease_table` asks for them.
#[cfg(feature = "leases")]
fn lease_options(
    args: &IngestArgs,
    config: Option<&crate::config::KinesisConfig>,
) -> anyhow::Result<Option<crate::ingest::lease::LeaseOptions>> {
    let Some(table) = args
        .lease_table
        .clone()
        .or_else(|| config.and_then(|c| c.lease_table.clone()))
    else {
        return Ok(None);
    };
    let seconds = args
        .lease_duration_secs
        .or_else(|| config.and_then(|c| c.lease_duration_seconds))
        .unwrap_or(10);
    if seconds < 3 {
        bail!(
            "a lease must last at least 3 seconds (renewals are a third of it apart); got {seconds}"
        );
    }
    Ok(Some(crate::ingest::lease::LeaseOptions {
        table,
        worker: args
            .worker_id
            .clone()
            .unwrap_or_else(crate::ingest::lease::LeaseOptions::default_worker),
        duration: Duration::from_secs(seconds),
    }))
}

/// `leases`: the lease table, one line per shard.
#[cfg(feature = "leases")]
pub(super) fn leases(
    cli: &Cli,
    out: &mut impl Write,
    args: &LeasesArgs,
) -> anyhow::Result<ExitCode> {
    use crate::ingest::lease::table::{LeaseTable, TableConfig, TableError};
    let store = open(cli)?;
    let config = store.config().kinesis.as_ref();
    let Some(name) = args
        .lease_table
        .clone()
        .or_else(|| config.and_then(|c| c.lease_table.clone()))
    else {
        bail!(
            "which lease table? pass --lease-table NAME or set kinesis.lease_table in feature_store.yaml"
        );
    };
    // The table lives in the region of the streams it leases.
    let region = store
        .registry()
        .data_sources()
        .find_map(|s| match s.kind {
            SourceKind::Kinesis { region, .. } => Some(region.to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "us-east-1".into());
    let rt = runtime()?;
    let leases = rt.block_on(async {
        let table = LeaseTable::connect(&TableConfig {
            name: name.clone(),
            region,
            call_timeout: Duration::from_secs(10),
        })
        .await;
        table.scan(None).await
    });
    let leases = match leases {
        Err(e @ TableError::Missing { .. }) => {
            bail!("{e}: `ingest --lease-table {name}` creates it")
        }
        other => other?,
    };
    let now = chrono::Utc::now();
    let age = |t: &Option<String>| -> Option<f64> {
        let t = chrono::DateTime::parse_from_rfc3339(t.as_deref()?).ok()?;
        Some((now - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0)
    };
    if args.json {
        for l in &leases {
            let line = serde_json::json!({
                "stream": l.stream,
                "shard": l.shard,
                "owner": l.owner,
                "lease_counter": l.counter,
                "checkpoint": l.checkpoint,
                "parents": l.parents,
                "millis_behind_latest": l.behind_ms,
                "last_renewal": l.last_renewal,
                "owner_switches_since_checkpoint": l.owner_switches,
            });
            writeln!(out, "{line}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if leases.is_empty() {
        writeln!(out, "no leases in table {name}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 7]> = leases
        .iter()
        .map(|l| {
            [
                format!("{}/{}", l.stream, l.shard),
                l.owner.clone().unwrap_or_else(|| "-".into()),
                l.counter.to_string(),
                l.checkpoint.clone(),
                match (l.owner.as_ref(), l.behind_ms) {
                    (Some(_), Some(ms)) if !l.is_finished() => {
                        format!("{:.1} s", ms as f64 / 1000.0)
                    }
                    _ => "-".into(),
                },
                match age(&l.last_renewal) {
                    Some(s) if l.owner.is_some() => format!("{s:.1} s ago"),
                    _ => "-".into(),
                },
                l.parents.join(","),
            ]
        })
        .collect();
    let header = [
        "SHARD",
        "OWNER",
        "COUNTER",
        "CHECKPOINT",
        "LAG",
        "RENEWED",
        "PARENTS",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves `deadline` after the run is asked to stop.
async fn deadline_after_stop(mut stop: watch::Receiver<bool>, deadline: Duration) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(deadline).await;
}

/// SIGTERM or SIGINT: stop fetching, flush, checkpoint, exit. A second
/// signal exits at once; nothing committed is lost (uncommitted batches are
/// read again on the next run).
fn watch_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let signals: Vec<_> = [SignalKind::terminate(), SignalKind::interrupt()]
        .into_iter()
        .filter_map(|kind| signal(kind).ok())
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for mut sig in signals {
        let tx = tx.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
    }
    tokio::spawn(async move {
        if rx.recv().await.is_some() {
            eprintln!(
                "stopping: flushing pending batches and checkpoints (signal again to exit now)"
            );
            let _ = stop.send(true);
        }
        if rx.recv().await.is_some() {
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        }
    });
}

/// One line every ten seconds: totals, rate and lag.
async fn log_progress(metrics: Arc<Metrics>) {
    let period = Duration::from_secs(10);
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let (records, dead) = metrics.totals();
        eprintln!(
            "progress: {records} records in ({:.0}/s), {dead} dead-lettered, {} feature rows written, max {} ms behind latest",
            (records - last) as f64 / period.as_secs_f64(),
            metrics.rows_written(),
            metrics.max_behind_ms(),
        );
        last = records;
    }
}

/// A minimal HTTP/1.1 responder: `GET /metrics` gets the metrics in
/// Prometheus' text format, anything else a 404.
async fn serve_metrics(addr: &str, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    // The bound address: port 0 picks a free one.
    eprintln!(
        "serving Prometheus metrics at http://{}/metrics",
        listener.local_addr()?
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let m = metrics.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut len = 0;
                // The request line is enough; give up on a slow client.
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while len < buf.len() {
                        match sock.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => len += n,
                        }
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let target = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if target == "/metrics" || target.starts_with("/metrics?") {
                    ("200 OK", m.render())
                } else {
                    ("404 Not Found", "metrics are at /metrics\n".to_owned())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok(())
}

pub(super) fn produce(
    cli: &Cli,
    out: &mut impl Write,
    args: &ProduceArgs,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let store = open(cli)?;
    let source = store
        .registry()
        .data_source(&args.source)
        .with_context(|| format!("unknown data source `{}`", args.source))?;
    let SourceKind::Kinesis {
        stream_name,
        region,
        ..
    } = source.kind
    else {
        bail!("data source `{}` is not a Kinesis source", args.source);
    };
    let key_columns: Vec<&str> = store
        .registry()
        .feature_views()
        .filter(|v| std::ptr::eq(v.source, source))
        .flat_map(|v| v.entities.iter().map(|e| e.join_key))
        .collect();
    let records: Vec<(String, Vec<u8>)> = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| (format!("line-{i}"), l.as_bytes().to_vec()))
            .collect(),
        None => synthetic(source.raw_schema(), &key_columns, args.records, args.keys),
    };
    let n = records.len();
    let endpoint_url = kinesis::endpoint_url(
        args.endpoint_url.as_deref(),
        store.config().kinesis.as_ref(),
    );
    let rt = runtime()?;
    let put = rt.block_on(async {
        let endpoint =
            kinesis::Endpoint::new(region, endpoint_url, store.config().kinesis.as_ref());
        let client = kinesis::connect(&endpoint).await?;
        kinesis::ensure_stream(&client, stream_name, args.shards).await?;
        Ok::<_, anyhow::Error>(kinesis::put_records(&client, stream_name, records).await?)
    })?;
    writeln!(
        out,
        "put {put} of {n} records on stream {stream_name} in {:.2?}",
        started.elapsed()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Synthetic JSON records for a schema: join keys cycle through `keys`
/// values from 1001, timestamps are now (one microsecond apart), numbers are
/// pseudo-random.
pub(super) fn synthetic(
    schema: &[crate::definition::FieldDef],
    key_columns: &[&str],
    records: usize,
    keys: usize,
) -> Vec<(String, Vec<u8>)> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(records);
    for i in 0..records {
        let key = 1001 + (i % keys.max(1)) as i64;
        let mut obj = serde_json::Map::new();
        for f in schema {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = if key_columns.contains(&f.name) {
                match f.dtype {
                    FeastType::String => serde_json::json!(key.to_string()),
                    _ => serde_json::json!(key),
                }
            } else {
                match f.dtype {
                    FeastType::Int32 | FeastType::Int64 => serde_json::json!(x % 1000),
                    FeastType::Float32 | FeastType::Float64 => {
                        serde_json::json!((x >> 11) as f64 / (1u64 << 53) as f64)
                    }
                    FeastType::Bool => serde_json::json!(x.is_multiple_of(2)),
                    FeastType::UnixTimestamp => {
                        let t =
                            chrono::DateTime::<chrono::Utc>::from_timestamp_micros(now + i as i64)
                                .unwrap_or_default();
                        serde_json::json!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                    }
                    FeastType::String | FeastType::Bytes => {
                        serde_json::json!(format!("s{}", x % 1000))
                    }
                    FeastType::Array(_) => serde_json::json!([]),
                }
            };
            obj.insert(f.name.to_owned(), v);
        }
        out.push((
            key.to_string(),
            serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default(),
        ));
    }
    out
}
