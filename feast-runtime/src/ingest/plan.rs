//! What a run of `ingest` reads: the stream views selected (or all of them),
//! each validated (its function run on an empty frame), grouped by source.

use std::collections::BTreeMap;

use super::Error;
use crate::definition::{DataSourceDef, FeatureViewDef, SourceKind};
use crate::feature_store::FeatureStore;

/// Each source to consume, with the views that read it.
pub(crate) type SourcePlan = Vec<(&'static DataSourceDef, Vec<&'static FeatureViewDef>)>;

/// Whether a consumer of this build reads the source.
fn consumed(source: &DataSourceDef) -> bool {
    matches!(source.kind, SourceKind::Kinesis { .. })
}

/// The sources of the selected views (`views`, or every view on a consumed
/// source), each with its views; every selected view must pass `validate`.
pub(crate) fn plan(store: &FeatureStore, views: &[String]) -> Result<SourcePlan, Error> {
    let on_stream = |v: &FeatureViewDef| consumed(v.source);
    let available = || {
        store
            .registry()
            .feature_views()
            .filter(|v| on_stream(v))
            .map(|v| v.name)
            .collect()
    };
    let selected: Vec<&'static FeatureViewDef> = if views.is_empty() {
        store
            .registry()
            .feature_views()
            .filter(|v| on_stream(v))
            .collect()
    } else {
        views
            .iter()
            .map(|n| {
                let v = store
                    .registry()
                    .feature_view(n)
                    .ok_or_else(|| Error::UnknownView {
                        name: n.clone(),
                        available: available(),
                    })?;
                if on_stream(v) {
                    Ok(v)
                } else {
                    Err(Error::NotAStream(v.name))
                }
            })
            .collect::<Result<_, _>>()?
    };
    if selected.is_empty() {
        return Err(Error::NoViews);
    }
    for &view in &selected {
        let report = crate::transform::check_view(view);
        if !report.errors.is_empty() {
            return Err(Error::Invalid {
                view: view.name,
                location: view.location,
                problems: report.errors,
            });
        }
    }
    let mut by_source: BTreeMap<
        &'static str,
        (&'static DataSourceDef, Vec<&'static FeatureViewDef>),
    > = BTreeMap::new();
    for v in selected {
        by_source
            .entry(v.source.name)
            .or_insert((v.source, Vec::new()))
            .1
            .push(v);
    }
    Ok(by_source.into_values().collect())
}
