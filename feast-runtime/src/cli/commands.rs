//! The subcommands.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::{Cli, Command, store_commands};
use crate::config::Repo;
use crate::definition::{FieldDef, RecordFormat, SourceKind};
use crate::registry::Registry;
use crate::registry::feast;
use crate::registry::snapshot::{Action, Snapshot};

pub(super) fn run(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::List { json } => list(out, *json),
        Command::Validate => validate_cmd(cli, out),
        Command::Plan => plan(cli, out, false),
        Command::Apply => plan(cli, out, true),
        Command::Materialize { start, end, views } => {
            store_commands::materialize(cli, out, start, end, views, false)
        }
        Command::MaterializeIncremental { end, views } => {
            store_commands::materialize(cli, out, "", end, views, true)
        }
        Command::Verify { views, show, at } => store_commands::verify(cli, out, views, *show, at),
        Command::GetOnline {
            features,
            service,
            entities,
            full_feature_names,
            json,
        } => store_commands::get_online(
            cli,
            out,
            features,
            service.as_deref(),
            entities,
            *full_feature_names,
            *json,
        ),
        Command::GetHistorical {
            entities,
            features,
            service,
            output,
            full_feature_names,
            filter_by_created_timestamp,
        } => store_commands::get_historical(
            cli,
            out,
            entities,
            features,
            service.as_deref(),
            output,
            *full_feature_names,
            *filter_by_created_timestamp,
        ),
        Command::Push {
            push_source,
            file,
            to,
        } => store_commands::push(cli, out, push_source, file, to),
        Command::WriteOnline { view, file } => store_commands::write_online(cli, out, view, file),
        Command::Teardown => store_commands::teardown(cli, out),
        #[cfg(feature = "kinesis")]
        Command::Ingest(args) => super::ingest_commands::ingest(cli, out, args),
        #[cfg(feature = "kinesis")]
        Command::Produce(args) => super::ingest_commands::produce(cli, out, args),
        #[cfg(feature = "leases")]
        Command::Leases(args) => super::ingest_commands::leases(cli, out, args),
        #[cfg(feature = "server")]
        Command::Serve(args) => super::serve_command::serve(cli, out, args),
    }
}

/// Loads the registry, printing every problem on failure.
fn load_registry() -> anyhow::Result<Registry> {
    Ok(Registry::load()?)
}

fn list(out: &mut impl Write, json: bool) -> anyhow::Result<ExitCode> {
    let reg = load_registry()?;
    if json {
        let snap = Snapshot::of(&reg, "");
        let value = serde_json::json!({
            "entities": snap.entities.values().collect::<Vec<_>>(),
            "data_sources": snap.data_sources.values().collect::<Vec<_>>(),
            "feature_views": snap.feature_views.values().collect::<Vec<_>>(),
            "feature_services": snap.feature_services.values().collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut *out, &value)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }

    writeln!(out, "Entities ({})", reg.entities().len())?;
    for e in reg.entities() {
        writeln!(
            out,
            "  {:<28} join key {} ({})",
            e.name, e.join_key, e.value_type
        )?;
        describe(out, e.description)?;
    }

    writeln!(out, "\nData sources ({})", reg.data_sources().len())?;
    for s in reg.data_sources() {
        let what = match s.kind {
            SourceKind::File { path, .. } => format!("path {path}"),
            SourceKind::Kinesis {
                stream_name,
                region,
                batch_source,
                ..
            } => {
                format!(
                    "stream {stream_name} ({region}), batch source {}",
                    batch_source.name
                )
            }
            SourceKind::Push { batch_source } => format!("batch source {}", batch_source.name),
        };
        writeln!(out, "  {:<28} {:<8} {what}", s.name, s.kind_name())?;
        describe(out, s.description)?;
        if let SourceKind::Kinesis {
            record_format: RecordFormat::Json { schema_json, .. },
            ..
        } = s.kind
        {
            writeln!(out, "      record format: JsonFormat(\"{schema_json}\")")?;
        }
        if !matches!(s.kind, SourceKind::Push { .. }) {
            let schema = s.schema();
            let role = |f: &FieldDef| {
                if f.name == s.event_timestamp_field() {
                    "event time"
                } else if Some(f.name) == s.created_timestamp_field() {
                    "created time"
                } else {
                    ""
                }
            };
            print_fields(out, &schema, role)?;
        }
    }

    writeln!(out, "\nFeature views ({})", reg.feature_views().len())?;
    for v in reg.feature_views() {
        let entities: Vec<&str> = v.entities.iter().map(|e| e.name).collect();
        let mut flags = Vec::new();
        if v.online {
            flags.push("online");
        }
        if v.offline {
            flags.push("offline");
        }
        writeln!(
            out,
            "  {:<28} {:<8} source {}, entities {}, ttl {}, {}",
            v.name,
            v.kind.as_str(),
            v.source.name,
            entities.join(", "),
            format_ttl(v.ttl_seconds),
            if flags.is_empty() {
                "not served".to_owned()
            } else {
                flags.join(" + ")
            }
        )?;
        describe(out, v.description)?;
        let ts = v.event_timestamp_field();
        let joins: Vec<&str> = v.entities.iter().map(|e| e.join_key).collect();
        print_fields(out, &v.output_schema(), |f| {
            if joins.contains(&f.name) {
                "join key"
            } else if f.name == ts {
                "event time"
            } else {
                ""
            }
        })?;
        for a in v.aggregations {
            writeln!(
                out,
                "      {:<24} {:<14} {}({}) over {}, every {}",
                a.name,
                a.output().to_string(),
                a.function,
                a.column,
                format_ttl(a.window_seconds),
                format_ttl(a.slide_seconds)
            )?;
        }
    }

    writeln!(out, "\nFeature services ({})", reg.feature_services().len())?;
    for s in reg.feature_services() {
        writeln!(out, "  {}", s.name)?;
        describe(out, s.description)?;
        for p in s.features {
            let names: Vec<&str> = if p.features.is_empty() {
                p.view.schema.iter().map(|f| f.name).collect()
            } else {
                p.features.to_vec()
            };
            writeln!(out, "      {}: {}", p.view.name, names.join(", "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(out: &mut impl Write, description: &str) -> std::io::Result<()> {
    if let Some(first) = description.lines().next().filter(|l| !l.is_empty()) {
        writeln!(out, "      {first}")?;
    }
    Ok(())
}

fn print_fields(
    out: &mut impl Write,
    fields: &[FieldDef],
    role: impl Fn(&FieldDef) -> &'static str,
) -> std::io::Result<()> {
    for f in fields {
        let r = role(f);
        let ty = f.dtype.to_string();
        if r.is_empty() {
            writeln!(out, "      {:<24} {ty}", f.name)?;
        } else {
            writeln!(out, "      {:<24} {ty:<14} ({r})", f.name)?;
        }
    }
    Ok(())
}

/// `86400` -> `1d`, `9000` -> `2h 30m`, `0` -> `none`.
pub(crate) fn format_ttl(secs: u64) -> String {
    if secs == 0 {
        return "none".to_owned();
    }
    let mut rest = secs;
    let mut parts = Vec::new();
    for (unit, n) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if rest >= n {
            parts.push(format!("{}{unit}", rest / n));
            rest %= n;
        }
    }
    parts.join(" ")
}

/// Registry checks plus every view function run on an empty frame. Returns the
/// registry and whether everything passed; problems go to stderr.
fn check_all(out: &mut impl Write) -> anyhow::Result<Option<Registry>> {
    let reg = match Registry::load() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(None);
        }
    };
    let mut failed = 0;
    for v in reg.feature_views() {
        let report = crate::transform::check_view(v);
        if report.errors.is_empty() {
            writeln!(
                out,
                "ok      feature view {} ({} columns)",
                v.name,
                v.output_schema().len()
            )?;
        } else {
            failed += 1;
            for e in &report.errors {
                eprintln!("error: feature view `{}` ({}): {e}", v.name, v.location);
            }
        }
        if !report.extra.is_empty() {
            eprintln!(
                "note: feature view `{}` also outputs undeclared column{} {}; {} dropped before writing",
                v.name,
                if report.extra.len() == 1 { "" } else { "s" },
                report
                    .extra
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if report.extra.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            );
        }
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} feature view{} failed validation",
            if failed == 1 { "" } else { "s" }
        );
        return Ok(None);
    }
    Ok(Some(reg))
}

/// `1 entity, 3 data sources, 2 feature views, 1 feature service`.
fn counts(reg: &Registry) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    [
        n(reg.entities().len(), "entity", "entities"),
        n(reg.data_sources().len(), "data source", "data sources"),
        n(reg.feature_views().len(), "feature view", "feature views"),
        n(
            reg.feature_services().len(),
            "feature service",
            "feature services",
        ),
    ]
    .join(", ")
}

/// `feature_store.yaml`, every definition and view function, and the batch
/// sources' Parquet files where they exist.
fn validate_cmd(cli: &Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let repo = match Repo::load(&cli.chdir) {
        Ok(repo) => {
            let checked = crate::online_store::StoreConfig::from_repo(&repo.config)
                .and_then(|c| c.check().map(|()| c));
            match checked {
                Ok(store) => {
                    writeln!(
                        out,
                        "ok      {} (project {}, online store {})",
                        crate::config::FILE_NAME,
                        repo.config.project,
                        store.describe()
                    )?;
                    Some(repo)
                }
                Err(e) => {
                    eprintln!(
                        "error: {}: {e}",
                        repo.dir.join(crate::config::FILE_NAME).display()
                    );
                    None
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    };
    let reg = check_all(out)?;
    let mut files_ok = true;
    if let (Some(repo), Some(reg)) = (&repo, &reg) {
        let offline = crate::offline_store::open(repo);
        for source in reg
            .data_sources()
            .filter(|s| matches!(s.kind, SourceKind::File { .. }))
        {
            let path = match source.kind {
                SourceKind::File { path, .. } => path,
                _ => "",
            };
            match offline.check_schema(source)? {
                None => writeln!(
                    out,
                    "-       batch source {}: no files at {path} yet, not checked",
                    source.name
                )?,
                Some(c) if c.problems.is_empty() => writeln!(
                    out,
                    "ok      batch source {} ({} file{} at {path})",
                    source.name,
                    c.files,
                    if c.files == 1 { "" } else { "s" }
                )?,
                Some(c) => {
                    files_ok = false;
                    for (problem, n, first) in &c.problems {
                        let which = if c.files == 1 {
                            first.display().to_string()
                        } else {
                            format!("{n} of {} files, first {}", c.files, first.display())
                        };
                        eprintln!(
                            "error: batch source `{}` ({}): {problem} ({which})",
                            source.name, source.location
                        );
                    }
                }
            }
        }
    }
    match (repo, reg, files_ok) {
        (Some(_), Some(reg), true) => {
            writeln!(out, "valid: {}", counts(&reg))?;
            Ok(ExitCode::SUCCESS)
        }
        _ => Ok(ExitCode::FAILURE),
    }
}

fn plan(cli: &Cli, out: &mut impl Write, apply: bool) -> anyhow::Result<ExitCode> {
    let repo = Repo::load(&cli.chdir)?;
    let reg = if apply {
        match check_all(&mut std::io::sink())? {
            Some(r) => r,
            None => return Ok(ExitCode::FAILURE),
        }
    } else {
        load_registry()?
    };
    // Both sides in Feast's terms: the registry file is Feast's format,
    // and a registry Feast wrote compares like one feast-rs wrote.
    let path = repo.registry_path();
    let old = feast::read_file(&path)?.map(|r| feast::describe(&r));
    let proto = feast::to_proto(&reg, &repo.config.project, feast::now());
    let changes = feast::describe(&proto).diff(old.as_ref());
    let (mut added, mut changed, mut removed, mut same) = (0, 0, 0, 0);
    for c in &changes {
        match &c.action {
            Action::Added => {
                added += 1;
                writeln!(out, "+ {} {}", c.kind, c.name)?;
            }
            Action::Changed(keys) => {
                changed += 1;
                writeln!(out, "~ {} {}", c.kind, c.name)?;
                let aggregated = c.kind == "feature view"
                    && reg.feature_view(&c.name).is_some_and(|v| v.is_aggregated());
                for k in keys {
                    writeln!(out, "      {k}")?;
                    if aggregated && k.starts_with("source:") {
                        writeln!(
                            out,
                            "        (why: Feast's stream feature views take only Kafka and push sources; feast-rs writes this view's Kinesis source there as a push source of the same name)"
                        )?;
                    }
                }
            }
            Action::Removed => {
                removed += 1;
                writeln!(out, "- {} {}", c.kind, c.name)?;
            }
            Action::Unchanged => same += 1,
        }
    }
    let summary =
        format!("{added} to add, {changed} to change, {removed} to remove, {same} unchanged");
    if !apply {
        writeln!(out, "Plan: {summary}.")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Views whose windows changed: their stored tiles hold other
    // aggregations, which no read or merge can use.
    let rewindowed: Vec<String> = changes
        .iter()
        .filter(|c| c.kind == "feature view")
        .filter(|c| match &c.action {
            Action::Changed(keys) => keys
                .iter()
                .any(|k| k.starts_with("aggregations:") || k.starts_with("output:")),
            _ => false,
        })
        .map(|c| c.name.clone())
        .collect();
    // The online store first: if it cannot be reached, nothing changes.
    let views = reg.feature_views().len();
    let store = crate::feature_store::FeatureStore::with_registry(repo, reg)?;
    for name in &rewindowed {
        let Some(view) = store.registry().feature_view(name) else {
            continue;
        };
        store.online_store().teardown(&[view])?;
        writeln!(
            out,
            "dropped the stored windows of {name}: its aggregations changed; `materialize` rebuilds them from the batch source, `ingest` from the next records"
        )?;
    }
    store.update_infra()?;
    feast::write_file(&path, &proto).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(
        out,
        "Applied: {summary}; registry written to {}, online store ready for {views} feature view{}.",
        path.display(),
        if views == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::format_ttl;

    #[test]
    fn ttl_is_shown_in_units() {
        assert_eq!(format_ttl(0), "none");
        assert_eq!(format_ttl(86_400), "1d");
        assert_eq!(format_ttl(9_000), "2h 30m");
        assert_eq!(format_ttl(694_861), "1w 1d 1h 1m 1s");
    }
}
