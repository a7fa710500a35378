//! Feature references resolved against the registry: `view:feature`
//! strings, or a feature service, into the views and features they name.

use super::Registry;
use crate::definition::{DataSourceDef, FeatureViewDef, SourceKind};

/// The features a read asks for: `view:feature` references or a service.
#[derive(Debug, Clone)]
pub enum Features<'a> {
    /// `view:feature` references.
    Refs(&'a [&'a str]),
    /// A feature service's name.
    Service(&'a str),
}

/// Each view asked for, with its features in request order (each once).
pub type Resolved = Vec<(&'static FeatureViewDef, Vec<&'static str>)>;

/// A reference that names nothing in the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No view of that name.
    #[error("unknown feature view `{name}`; feature views: {}", available.join(", "))]
    UnknownView {
        /// The name asked for.
        name: String,
        /// The views there are.
        available: Vec<&'static str>,
    },
    /// No feature of that name in the view.
    #[error("unknown feature `{feature}` in view `{view}`; its features: {}", available.join(", "))]
    UnknownFeature {
        /// The view.
        view: &'static str,
        /// The feature asked for.
        feature: String,
        /// The view's features.
        available: Vec<&'static str>,
    },
    /// No service of that name.
    #[error("unknown feature service `{name}`; feature services: {}", available.join(", "))]
    UnknownService {
        /// The name asked for.
        name: String,
        /// The services there are.
        available: Vec<&'static str>,
    },
    /// No push source of that name.
    #[error("unknown push source `{name}`; push sources: {}", available.join(", "))]
    UnknownPushSource {
        /// The name asked for.
        name: String,
        /// The push sources there are.
        available: Vec<&'static str>,
    },
    /// A reference without `view:`.
    #[error("invalid feature reference `{0}`: expected `view:feature`")]
    BadReference(String),
}

impl Registry {
    /// The view named `name`.
    pub fn view_named(&self, name: &str) -> Result<&'static FeatureViewDef, ResolveError> {
        self.feature_view(name)
            .ok_or_else(|| ResolveError::UnknownView {
                name: name.to_owned(),
                available: self.feature_views().map(|v| v.name).collect(),
            })
    }

    /// The push source named `name`.
    pub fn push_source_named(&self, name: &str) -> Result<&'static DataSourceDef, ResolveError> {
        let is_push = |s: &&'static DataSourceDef| matches!(s.kind, SourceKind::Push { .. });
        self.data_source(name)
            .filter(is_push)
            .ok_or_else(|| ResolveError::UnknownPushSource {
                name: name.to_owned(),
                available: self
                    .data_sources()
                    .filter(is_push)
                    .map(|s| s.name)
                    .collect(),
            })
    }

    /// The views and features `features` names, views in order of first
    /// mention, each feature once.
    pub fn resolve(&self, features: &Features<'_>) -> Result<Resolved, ResolveError> {
        let mut out: Resolved = Vec::new();
        let mut add = |view: &'static FeatureViewDef, feature: &'static str| match out
            .iter_mut()
            .find(|(v, _)| std::ptr::eq(*v, view))
        {
            Some((_, fs)) => {
                if !fs.contains(&feature) {
                    fs.push(feature);
                }
            }
            None => out.push((view, vec![feature])),
        };
        match features {
            Features::Refs(refs) => {
                for r in *refs {
                    let (v, f) = r
                        .split_once(':')
                        .ok_or_else(|| ResolveError::BadReference((*r).to_owned()))?;
                    let view = self.view_named(v)?;
                    let field = view
                        .feature(f)
                        .ok_or_else(|| ResolveError::UnknownFeature {
                            view: view.name,
                            feature: f.to_owned(),
                            available: view.schema.iter().map(|f| f.name).collect(),
                        })?;
                    add(view, field.name);
                }
            }
            Features::Service(name) => {
                let service =
                    self.feature_service(name)
                        .ok_or_else(|| ResolveError::UnknownService {
                            name: (*name).to_owned(),
                            available: self.feature_services().map(|s| s.name).collect(),
                        })?;
                for p in service.features {
                    if p.features.is_empty() {
                        for f in p.view.schema {
                            add(p.view, f.name);
                        }
                    } else {
                        for f in p.features {
                            add(p.view, f);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::fixtures::{self, AT, DRIVER, field};
    use crate::definition::{Definition, FeastType, FeatureProjection, FeatureServiceDef};

    static STATS: DataSourceDef = fixtures::file_source(
        "stats",
        "s",
        &[
            field("driver_id", FeastType::Int64),
            field("event_timestamp", FeastType::UnixTimestamp),
            field("a", FeastType::Int64),
            field("b", FeastType::Int64),
        ],
    );

    static V1: FeatureViewDef = fixtures::batch_view(
        "v1",
        &STATS,
        &[field("a", FeastType::Int64), field("b", FeastType::Int64)],
        0,
    );

    static V2: FeatureViewDef = FeatureViewDef {
        name: "v2",
        schema: &[field("b", FeastType::Int64)],
        output: &[field("b", FeastType::Int64)],
        ..V1
    };

    static SERVICE: FeatureServiceDef = FeatureServiceDef {
        name: "svc",
        features: &[
            FeatureProjection {
                view: &V2,
                features: &[],
            },
            FeatureProjection {
                view: &V1,
                features: &["b"],
            },
        ],
        description: "",
        tags: &[],
        owner: "",
        location: AT,
    };

    fn registry() -> Registry {
        Registry::from_definitions([
            Definition::Entity(&DRIVER),
            Definition::DataSource(&STATS),
            Definition::FeatureView(&V1),
            Definition::FeatureView(&V2),
            Definition::FeatureService(&SERVICE),
        ])
        .unwrap()
    }

    fn names(r: &Resolved) -> Vec<(&str, Vec<&str>)> {
        r.iter().map(|(v, f)| (v.name, f.clone())).collect()
    }

    #[test]
    fn references_resolve_in_order_of_first_mention_each_once() {
        let reg = registry();
        let r = reg
            .resolve(&Features::Refs(&["v2:b", "v1:b", "v2:b", "v1:a"]))
            .unwrap();
        assert_eq!(names(&r), [("v2", vec!["b"]), ("v1", vec!["b", "a"])]);
        let r = reg.resolve(&Features::Service("svc")).unwrap();
        assert_eq!(names(&r), [("v2", vec!["b"]), ("v1", vec!["b"])]);
    }

    #[test]
    fn a_reference_to_nothing_names_what_there_is() {
        let reg = registry();
        let err = |f: Features<'_>| reg.resolve(&f).unwrap_err().to_string();
        assert_eq!(
            err(Features::Refs(&["v3:a"])),
            "unknown feature view `v3`; feature views: v1, v2"
        );
        assert_eq!(
            err(Features::Refs(&["v2:a"])),
            "unknown feature `a` in view `v2`; its features: b"
        );
        assert_eq!(
            err(Features::Refs(&["v1.a"])),
            "invalid feature reference `v1.a`: expected `view:feature`"
        );
        assert_eq!(
            err(Features::Service("nope")),
            "unknown feature service `nope`; feature services: svc"
        );
        assert_eq!(
            reg.push_source_named("stats").unwrap_err().to_string(),
            "unknown push source `stats`; push sources: "
        );
    }
}
