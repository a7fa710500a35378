//! The registry: every submitted definition, collected once at start-up,
//! sorted by name and checked as a whole.

use std::collections::BTreeMap;
use std::fmt;

use crate::definition::{
    DataSourceDef, Definition, EntityDef, FeastType, FeatureServiceDef, FeatureViewDef, FieldDef,
    Location, SourceKind, ViewKind,
};

/// A checked set of definitions, each kind sorted by name.
#[derive(Debug, Default)]
pub struct Registry {
    entities: BTreeMap<&'static str, &'static EntityDef>,
    sources: BTreeMap<&'static str, &'static DataSourceDef>,
    views: BTreeMap<&'static str, &'static FeatureViewDef>,
    services: BTreeMap<&'static str, &'static FeatureServiceDef>,
}

/// One thing wrong with the definitions, at the definition it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The definition it concerns.
    pub location: Location,
    /// `entity driver`, `feature view driver_hourly_stats`, ...
    pub subject: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.subject, self.message)
    }
}

/// Every problem found in the definitions.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{n} problem{} in the feature definitions",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl Registry {
    /// Collects every definition linked into this binary and checks them.
    pub fn load() -> Result<Registry, Error> {
        Registry::from_definitions(inventory::iter::<Definition>.into_iter().copied())
    }

    /// Builds a registry from explicit definitions (tests, tools).
    pub fn from_definitions(defs: impl IntoIterator<Item = Definition>) -> Result<Registry, Error> {
        let mut reg = Registry::default();
        let mut problems = Vec::new();
        for def in defs {
            match def {
                Definition::Entity(d) => {
                    insert(&mut reg.entities, d.name, d, "entity", &mut problems)
                }
                Definition::DataSource(d) => {
                    insert(&mut reg.sources, d.name, d, "data source", &mut problems)
                }
                Definition::FeatureView(d) => {
                    insert(&mut reg.views, d.name, d, "feature view", &mut problems)
                }
                Definition::FeatureService(d) => insert(
                    &mut reg.services,
                    d.name,
                    d,
                    "feature service",
                    &mut problems,
                ),
            }
        }
        reg.check(&mut problems);
        problems.sort_by(|a, b| {
            (a.location.file, a.location.line, &a.message).cmp(&(
                b.location.file,
                b.location.line,
                &b.message,
            ))
        });
        problems.dedup();
        if problems.is_empty() {
            Ok(reg)
        } else {
            Err(Error { problems })
        }
    }

    /// The entities, by name.
    pub fn entities(&self) -> impl ExactSizeIterator<Item = &'static EntityDef> + '_ {
        self.entities.values().copied()
    }

    /// The data sources, by name.
    pub fn data_sources(&self) -> impl ExactSizeIterator<Item = &'static DataSourceDef> + '_ {
        self.sources.values().copied()
    }

    /// The feature views, by name.
    pub fn feature_views(&self) -> impl ExactSizeIterator<Item = &'static FeatureViewDef> + '_ {
        self.views.values().copied()
    }

    /// The feature services, by name.
    pub fn feature_services(
        &self,
    ) -> impl ExactSizeIterator<Item = &'static FeatureServiceDef> + '_ {
        self.services.values().copied()
    }

    /// The entity named `name`.
    pub fn entity(&self, name: &str) -> Option<&'static EntityDef> {
        self.entities.get(name).copied()
    }

    /// The data source named `name`.
    pub fn data_source(&self, name: &str) -> Option<&'static DataSourceDef> {
        self.sources.get(name).copied()
    }

    /// The feature view named `name`.
    pub fn feature_view(&self, name: &str) -> Option<&'static FeatureViewDef> {
        self.views.get(name).copied()
    }

    /// The feature service named `name`.
    pub fn feature_service(&self, name: &str) -> Option<&'static FeatureServiceDef> {
        self.services.get(name).copied()
    }

    fn check(&self, problems: &mut Vec<Problem>) {
        for s in self.sources.values() {
            self.check_source(s, problems);
        }
        for v in self.views.values() {
            self.check_view(v, problems);
        }
        for s in self.services.values() {
            self.check_service(s, problems);
        }
    }

    fn check_source(&self, s: &'static DataSourceDef, problems: &mut Vec<Problem>) {
        let mut report = |message: String| {
            problems.push(Problem {
                location: s.location,
                subject: format!("data source `{}`", s.name),
                message,
            })
        };
        if let Some(batch) = s
            .batch_source()
            .filter(|b| !registered(&self.sources, b.name, b))
        {
            report(format!(
                "its batch source `{}` is not registered (is the crate that defines it linked?)",
                batch.name
            ));
        }
        if matches!(s.kind, SourceKind::Push { .. }) {
            return;
        }
        if let Some(batch) = s.batch_source() {
            // Stream records are converted to the batch source's columns
            // before a view sees them, and logged there: every column must
            // have a place there, of a type it converts to.
            let columns = batch.schema();
            for f in s.schema() {
                match columns.iter().find(|c| c.name == f.name) {
                    None => report(format!(
                        "column `{}` ({}) is not in its batch source `{}`, where its records are logged and from which views recompute their features (columns: {})",
                        f.name,
                        f.dtype,
                        batch.name,
                        names(&columns)
                    )),
                    Some(c) if !f.dtype.casts_to(c.dtype) => report(format!(
                        "column `{}` is {} here but {} in its batch source `{}`, which {} does not convert to",
                        f.name, f.dtype, c.dtype, batch.name, f.dtype
                    )),
                    Some(_) => {}
                }
            }
        }
        let raw = s.raw_schema();
        check_timestamp(raw, "timestamp_field", Some(s.timestamp_field), &mut report);
        check_timestamp(
            raw,
            "created_timestamp_column",
            s.created_timestamp_column,
            &mut report,
        );
        for (from, to) in s.field_mapping {
            if !raw.iter().any(|f| f.name == *from) {
                report(format!(
                    "field_mapping renames `{from}`, which is not a column"
                ));
            }
            if raw
                .iter()
                .any(|f| f.name == *to && !s.field_mapping.iter().any(|(fr, _)| fr == to))
            {
                report(format!(
                    "field_mapping renames `{from}` to `{to}`, which is already a column"
                ));
            }
        }
    }

    fn check_view(&self, v: &'static FeatureViewDef, problems: &mut Vec<Problem>) {
        let mut report = |message: String| {
            problems.push(Problem {
                location: v.location,
                subject: format!("feature view `{}`", v.name),
                message,
            })
        };
        let source = v.source;
        if !registered(&self.sources, source.name, source) {
            report(format!(
                "its source `{}` is not registered (is the crate that defines it linked?)",
                source.name
            ));
        }
        let input = v.input_schema();
        for e in v.entities {
            if !registered(&self.entities, e.name, *e) {
                report(format!(
                    "its entity `{}` is not registered (is the crate that defines it linked?)",
                    e.name
                ));
            }
            match input.iter().find(|f| f.name == e.join_key) {
                None => report(format!(
                    "join key `{}` of entity `{}` is not a column of source `{}` (columns: {})",
                    e.join_key,
                    e.name,
                    source.name,
                    names(&input)
                )),
                Some(f) if !f.dtype.widens_to(e.value_type) => report(format!(
                    "join key `{}` is {} in source `{}`, but entity `{}` declares {}",
                    e.join_key, f.dtype, source.name, e.name, e.value_type
                )),
                Some(_) => {}
            }
            if let Some(f) = v.feature(e.join_key) {
                report(format!(
                    "feature `{}` has the name of entity `{}`'s join key",
                    f.name, e.name
                ));
            }
        }
        let ts = v.event_timestamp_field();
        if v.feature(ts).is_some() {
            report(format!(
                "feature `{ts}` has the name of the view's event timestamp column"
            ));
        }
        if v.timestamp_field.is_none() {
            check_timestamp(
                &input,
                "the source's timestamp_field",
                Some(ts),
                &mut report,
            );
        }
        if v.kind == ViewKind::Batch {
            for f in v.output {
                match input.iter().find(|c| c.name == f.name) {
                    None => report(format!(
                        "feature `{}` is not a column of batch source `{}` (columns: {})",
                        f.name,
                        source.name,
                        names(&input)
                    )),
                    Some(c) if c.dtype != f.dtype => report(format!(
                        "feature `{}` is declared {} but is {} in batch source `{}`",
                        f.name, f.dtype, c.dtype, source.name
                    )),
                    Some(_) => {}
                }
            }
        }
    }

    fn check_service(&self, s: &'static FeatureServiceDef, problems: &mut Vec<Problem>) {
        let mut report = |message: String| {
            problems.push(Problem {
                location: s.location,
                subject: format!("feature service `{}`", s.name),
                message,
            })
        };
        for p in s.features {
            if !registered(&self.views, p.view.name, p.view) {
                report(format!(
                    "its view `{}` is not registered (is the crate that defines it linked?)",
                    p.view.name
                ));
            }
            for f in p.features {
                if p.view.feature(f).is_none() {
                    report(format!(
                        "feature `{f}` is not in view `{}` (features: {})",
                        p.view.name,
                        names(p.view.schema)
                    ));
                }
            }
        }
    }
}

/// Whether `def` itself (not just a definition of that name) is registered.
fn registered<T>(map: &BTreeMap<&'static str, &'static T>, name: &str, def: &T) -> bool {
    map.get(name).is_some_and(|d| std::ptr::eq(*d, def))
}

fn insert<T: HasLocation + 'static>(
    map: &mut BTreeMap<&'static str, &'static T>,
    name: &'static str,
    def: &'static T,
    kind: &str,
    problems: &mut Vec<Problem>,
) {
    let location = def.location();
    if let Some(first) = map.get(name) {
        if std::ptr::eq(*first, def) {
            return;
        }
        problems.push(Problem {
            location,
            subject: format!("{kind} `{name}`"),
            message: format!(
                "the name is also used by the {kind} defined at {}",
                first.location()
            ),
        });
        return;
    }
    map.insert(name, def);
}

trait HasLocation {
    fn location(&self) -> Location;
}

macro_rules! has_location {
    ($($t:ty),*) => {$(
        impl HasLocation for $t {
            fn location(&self) -> Location {
                self.location
            }
        }
    )*};
}

has_location!(EntityDef, DataSourceDef, FeatureViewDef, FeatureServiceDef);

fn check_timestamp(
    columns: &[FieldDef],
    what: &str,
    name: Option<&str>,
    report: &mut impl FnMut(String),
) {
    let Some(name) = name else { return };
    match columns.iter().find(|f| f.name == name) {
        None => report(format!(
            "{what} `{name}` is not a column (columns: {})",
            names(columns)
        )),
        Some(f) if f.dtype != FeastType::UnixTimestamp => {
            report(format!("{what} `{name}` is {}, not a timestamp", f.dtype))
        }
        Some(_) => {}
    }
}

fn names(columns: &[FieldDef]) -> String {
    columns
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub mod refs;
#[doc(hidden)]
pub mod snapshot;

pub mod feast;

pub use refs::{Features, ResolveError, Resolved};
