//! Subcommands that use the stores.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use polars::prelude::{AnyValue, Column, DataFrame, DataType};

use super::Cli;
use crate::definition::JoinKeyValue;
use crate::definition::Value;
use crate::feature_store::json::{feast_json, value_json};
use crate::feature_store::{FeatureStore, Features, OnlineResponse, PushMode};

pub(super) fn open(cli: &Cli) -> anyhow::Result<FeatureStore> {
    Ok(FeatureStore::open(&cli.chdir)?)
}

/// `now`, or a time of the one grammar ([`crate::definition::time`]):
/// `2025-01-01T00:00:00Z`, `2025-01-01 00:00:00`, `2025-01-01`.
pub(super) fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if s == "now" {
        return Ok(Utc::now());
    }
    crate::definition::time::parse_us(s)
        .and_then(DateTime::from_timestamp_micros)
        .with_context(|| {
            format!(
                "invalid time `{s}`: expected RFC 3339 (2025-01-01T00:00:00Z), a date (2025-01-01) or `now`"
            )
        })
}

/// The file formats frames are read from and written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameFormat {
    Parquet,
    Csv,
}

impl FrameFormat {
    /// By extension: `.parquet` or `.csv`; anything else is refused.
    pub(super) fn of(path: &Path) -> anyhow::Result<FrameFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Ok(FrameFormat::Parquet),
            Some("csv") => Ok(FrameFormat::Csv),
            _ => bail!(
                "{}: expected a .parquet or .csv file (the format is taken from the extension)",
                path.display()
            ),
        }
    }
}

/// Reads a Parquet or CSV file, by extension.
pub(super) fn read_frame(path: &Path) -> anyhow::Result<DataFrame> {
    let read = || format!("cannot read {}", path.display());
    match FrameFormat::of(path)? {
        FrameFormat::Parquet => Ok(crate::offline_store::read_file(path).with_context(read)?),
        FrameFormat::Csv => {
            // Opened first, so that a missing file is named.
            std::fs::File::open(path).with_context(read)?;
            let df = polars_io::prelude::CsvReadOptions::default()
                .with_has_header(true)
                .try_into_reader_with_file_path(Some(path.to_owned()))
                .and_then(polars_io::SerReader::finish)
                .with_context(read)?;
            Ok(df)
        }
    }
}

/// Writes a frame as Parquet or CSV, by extension. CSV times are RFC 3339
/// in UTC with a `Z` (and the fractional digits they need).
fn write_frame(path: &Path, df: &mut DataFrame) -> anyhow::Result<()> {
    match FrameFormat::of(path)? {
        FrameFormat::Csv => {
            let mut f = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            use polars_io::SerWriter as _;
            let mut flat = lists_as_json(df)?;
            polars_io::prelude::CsvWriter::new(&mut f)
                .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.fZ".into()))
                .finish(&mut flat)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        FrameFormat::Parquet => crate::offline_store::write_file(path, df)
            .with_context(|| format!("cannot write {}", path.display()))?,
    }
    Ok(())
}

/// `df` with each list column (such as a `last(n)` feature) as a string
/// column of JSON arrays, which CSV can hold.
fn lists_as_json(df: &DataFrame) -> anyhow::Result<DataFrame> {
    let mut out = df.clone();
    for col in df.columns() {
        if !matches!(col.dtype(), DataType::List(_)) {
            continue;
        }
        let text: Vec<Option<String>> = col
            .as_materialized_series()
            .iter()
            .map(|v| match v {
                AnyValue::List(items) => {
                    let json: Vec<serde_json::Value> = items
                        .iter()
                        .map(|x| match x {
                            AnyValue::Null => serde_json::Value::Null,
                            AnyValue::String(s) => s.into(),
                            AnyValue::StringOwned(s) => s.as_str().into(),
                            AnyValue::Boolean(b) => b.into(),
                            AnyValue::Int32(i) => i.into(),
                            AnyValue::Int64(i) => i.into(),
                            AnyValue::Float32(f) => f64::from(f).into(),
                            AnyValue::Float64(f) => f.into(),
                            other => other.to_string().into(),
                        })
                        .collect();
                    Some(serde_json::Value::from(json).to_string())
                }
                _ => None,
            })
            .collect();
        out.with_column(Column::new(col.name().clone(), text))?;
    }
    Ok(out)
}

fn views_arg(views: &[String]) -> Option<Vec<&str>> {
    (!views.is_empty()).then(|| views.iter().map(String::as_str).collect())
}

pub(super) fn materialize(
    cli: &Cli,
    out: &mut impl Write,
    start: &str,
    end: &str,
    views: &[String],
    incremental: bool,
) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let store = open(cli)?;
    let end_t = parse_time(end)?;
    let names = views_arg(views);
    let stats = if incremental {
        store.materialize_incremental(end_t, names.as_deref())?
    } else {
        store.materialize(parse_time(start)?, end_t, names.as_deref())?
    };
    for (view, s) in &stats.views {
        writeln!(
            out,
            "  {view}: {} entities, {} values written",
            s.rows, s.values_written
        )?;
    }
    writeln!(
        out,
        "materialized {} view{} up to {}: {} rows read in {:.2?}",
        stats.views.len(),
        if stats.views.len() == 1 { "" } else { "s" },
        end_t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        stats.rows_read,
        t.elapsed()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn verify(
    cli: &Cli,
    out: &mut impl Write,
    views: &[String],
    show: usize,
    at: &str,
) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let at = parse_time(at)?;
    let store = open(cli)?;
    let names = views_arg(views);
    let reports = store.verify(names.as_deref(), at)?;
    let mut differing = 0;
    for r in &reports {
        let expired = if r.expired > 0 {
            format!(" ({} past the ttl, not compared)", r.expired)
        } else {
            String::new()
        };
        if r.differences.is_empty() {
            writeln!(out, "{}: {} entities agree{expired}", r.view, r.entities)?;
            continue;
        }
        differing += 1;
        writeln!(
            out,
            "{}: {} of {} entities differ{expired}",
            r.view,
            r.entities_differing(),
            r.entities
        )?;
        for d in r.differences.iter().take(show) {
            writeln!(out, "  {d}")?;
        }
        if r.differences.len() > show {
            writeln!(out, "  ... and {} more", r.differences.len() - show)?;
        }
    }
    writeln!(
        out,
        "verified {} view{} in {:.2?}: {}",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        t.elapsed(),
        if differing == 0 {
            "online and offline agree".to_owned()
        } else {
            format!("{differing} differ")
        }
    )?;
    Ok(if differing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Parses `--entity driver_id=1001,1002` with the entity's declared type.
fn entity_rows<'a>(
    store: &FeatureStore,
    specs: &'a [String],
) -> anyhow::Result<Vec<(&'a str, Vec<JoinKeyValue<'a>>)>> {
    let mut rows = Vec::new();
    for spec in specs {
        let (key, values) = spec
            .split_once('=')
            .with_context(|| format!("--entity `{spec}`: expected `join_key=value,value`"))?;
        let entity = store
            .registry()
            .entities()
            .find(|e| e.join_key == key)
            .with_context(|| format!("--entity `{spec}`: no entity has the join key `{key}`"))?;
        let parsed = values
            .split(',')
            .map(|v| -> anyhow::Result<JoinKeyValue<'a>> {
                use crate::definition::FeastType as T;
                Ok(match entity.value_type {
                    T::Int64 => JoinKeyValue::Int64(
                        v.trim()
                            .parse()
                            .with_context(|| format!("`{v}` is not an Int64 {key}"))?,
                    ),
                    T::Int32 => JoinKeyValue::Int32(
                        v.trim()
                            .parse()
                            .with_context(|| format!("`{v}` is not an Int32 {key}"))?,
                    ),
                    T::Bytes => JoinKeyValue::Bytes(v.as_bytes()),
                    _ => JoinKeyValue::String(v),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        rows.push((key, parsed));
    }
    Ok(rows)
}

fn features_arg<'a>(refs: &'a [&'a str], service: Option<&'a str>) -> Features<'a> {
    match service {
        Some(s) => Features::Service(s),
        None => Features::Refs(refs),
    }
}

pub(super) fn get_online(
    cli: &Cli,
    out: &mut impl Write,
    features: &[String],
    service: Option<&str>,
    entities: &[String],
    full: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let store = open(cli)?;
    let rows = entity_rows(&store, entities)?;
    let refs: Vec<&str> = features.iter().map(String::as_str).collect();
    let response = store.get_online_features(&features_arg(&refs, service), &rows, full)?;
    if json {
        serde_json::to_writer(&mut *out, &feast_json(&response))?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_response(out, &response)?;
    let n = response.columns.first().map_or(0, |c| c.values.len());
    eprintln!(
        "read {n} entities x {} features in {:.2?}",
        response.columns.len() - rows.len(),
        t.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_response(out: &mut impl Write, r: &OnlineResponse) -> std::io::Result<()> {
    let n = r.columns.first().map_or(0, |c| c.values.len());
    let cells: Vec<Vec<String>> = r
        .columns
        .iter()
        .map(|c| {
            (0..n)
                .map(|i| match (c.statuses[i], &c.values[i]) {
                    // A table cell: strings as they are, not as JSON.
                    (crate::feature_store::FieldStatus::Present, Value::String(s)) => s.clone(),
                    (crate::feature_store::FieldStatus::Present, v) => value_json(v).to_string(),
                    (other, _) => other.as_str().to_owned(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = r
        .columns
        .iter()
        .zip(&cells)
        .map(|(c, col)| {
            col.iter()
                .map(String::len)
                .chain([c.name.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |items: Vec<&str>| -> String {
        items
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(
        out,
        "{}",
        line(r.columns.iter().map(|c| c.name.as_str()).collect())
    )?;
    for i in 0..n {
        writeln!(
            out,
            "{}",
            line(cells.iter().map(|c| c[i].as_str()).collect())
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn get_historical(
    cli: &Cli,
    out: &mut impl Write,
    entities: &Path,
    features: &[String],
    service: Option<&str>,
    output: &Path,
    full: bool,
    filter_created: bool,
) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    // Refuse an output format before doing the work.
    FrameFormat::of(output)?;
    let store = open(cli)?;
    let entity_df = read_frame(entities)?;
    let refs: Vec<&str> = features.iter().map(String::as_str).collect();
    let mut df = store.get_historical_features(
        &entity_df,
        &features_arg(&refs, service),
        full,
        filter_created,
    )?;
    write_frame(output, &mut df)?;
    writeln!(
        out,
        "wrote {} rows x {} columns to {} in {:.2?}",
        df.height(),
        df.width(),
        output.display(),
        t.elapsed()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn push(
    cli: &Cli,
    out: &mut impl Write,
    source: &str,
    file: &Path,
    to: &str,
) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let mode: PushMode = to.parse()?;
    let store = open(cli)?;
    let df = read_frame(file)?;
    let stats = store.push(source, &df, mode)?;
    for (view, s) in &stats {
        writeln!(
            out,
            "  {view}: {} entities, {} values written",
            s.rows, s.values_written
        )?;
    }
    writeln!(
        out,
        "pushed {} rows to {source} ({to}) in {:.2?}",
        df.height(),
        t.elapsed()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn write_online(
    cli: &Cli,
    out: &mut impl Write,
    view: &str,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let store = open(cli)?;
    let df = read_frame(file)?;
    let s = store.write_to_online_store(view, &df)?;
    writeln!(
        out,
        "wrote {} rows ({} entities, {} values written) to {view} in {:.2?}",
        df.height(),
        s.rows,
        s.values_written,
        t.elapsed()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn teardown(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let store = open(cli)?;
    store.teardown()?;
    writeln!(
        out,
        "dropped the online tables of {} feature views",
        store.registry().feature_views().len()
    )?;
    Ok(ExitCode::SUCCESS)
}
