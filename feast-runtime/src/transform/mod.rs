//! Polars frames in and out of the views: typed columns from JSON
//! ([`column`]), typed values from frames ([`frame`]), and running view
//! functions, checking what they return against what the view declares.
//! `validate` runs each function on an empty frame built from its source's
//! schema, so a mismatch shows before any record is ingested.

pub mod base64;
pub mod column;
pub mod frame;

use std::panic::{AssertUnwindSafe, catch_unwind};

use polars::prelude::{DataFrame, DataType};

pub use frame::empty_frame;

use crate::definition::{BoxError, FeastType, FeatureViewDef, FieldDef};

/// A view function that failed on a frame.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("the function of view `{view}` returned an error: {error}")]
    Failed { view: &'static str, error: BoxError },
    #[error("the function of view `{view}` panicked: {message}")]
    Panicked { view: &'static str, message: String },
}

/// Calls a view's function, turning a panic into an error.
pub fn run_transform(
    view: &'static FeatureViewDef,
    df: DataFrame,
) -> Result<DataFrame, TransformError> {
    match catch_unwind(AssertUnwindSafe(|| (view.transform)(df))) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(error)) => Err(TransformError::Failed {
            view: view.name,
            error,
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            Err(TransformError::Panicked {
                view: view.name,
                message,
            })
        }
    }
}

/// The columns a view's function receives: the source's (after
/// `field_mapping`), with join keys in their entity's type.
pub fn input_schema(view: &FeatureViewDef) -> Vec<FieldDef> {
    let mut schema = view.input_schema();
    for f in &mut schema {
        if let Some(e) = view.entities.iter().find(|e| e.join_key == f.name) {
            f.dtype = e.value_type;
        }
    }
    schema
}

/// One way a function's output differs from the view's declaration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutputProblem {
    #[error("output column `{column}` ({expected}) is missing")]
    Missing {
        column: &'static str,
        expected: FeastType,
    },
    #[error("output column `{column}` is {got}, but the view declares {expected} ({})", expected.dtype())]
    WrongType {
        column: &'static str,
        got: DataType,
        expected: FeastType,
    },
    #[error(
        "output column `{column}` (UnixTimestamp) is missing: it is the source's created timestamp, which settles events with the same event time on every path (online, materialization, training data); keep it in the output"
    )]
    CreatedMissing { column: &'static str },
    #[error(
        "output column `{column}` (the source's created timestamp) is {got}, not UnixTimestamp"
    )]
    CreatedWrongType { column: &'static str, got: DataType },
}

/// How a function's output differs from the view's declaration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputCheck {
    /// Missing or mistyped columns: the output cannot be stored.
    pub errors: Vec<OutputProblem>,
    /// Columns the view does not declare (other than the source's created
    /// timestamp, which is kept); they are dropped before writing.
    pub extra: Vec<String>,
}

/// Compares an output frame with the view's join keys, timestamp and features.
pub fn check_output(view: &FeatureViewDef, df: &DataFrame) -> OutputCheck {
    let mut check = OutputCheck::default();
    let expected = view.output_schema();
    let schema = df.schema();
    for f in &expected {
        match schema.get(f.name) {
            None => check.errors.push(OutputProblem::Missing {
                column: f.name,
                expected: f.dtype,
            }),
            Some(got) if !same_dtype(got, &f.dtype.dtype()) => {
                check.errors.push(OutputProblem::WrongType {
                    column: f.name,
                    got: got.clone(),
                    expected: f.dtype,
                });
            }
            Some(_) => {}
        }
    }
    let created = view.source.created_timestamp_field();
    if let Some(c) = created {
        match schema.get(c) {
            None => check
                .errors
                .push(OutputProblem::CreatedMissing { column: c }),
            Some(got) if !same_dtype(got, &FeastType::UnixTimestamp.dtype()) => {
                check.errors.push(OutputProblem::CreatedWrongType {
                    column: c,
                    got: got.clone(),
                });
            }
            Some(_) => {}
        }
    }
    for name in schema.iter_names() {
        if !expected.iter().any(|f| f.name == name.as_str()) && created != Some(name.as_str()) {
            check.extra.push(name.to_string());
        }
    }
    check
}

/// Timestamps compare on their unit; a naive datetime is taken as UTC.
fn same_dtype(got: &DataType, want: &DataType) -> bool {
    match (got, want) {
        (DataType::Datetime(gu, _), DataType::Datetime(wu, _)) => gu == wu,
        _ => got == want,
    }
}

/// What is wrong with a view found by running it on an empty frame.
#[derive(Debug, thiserror::Error)]
pub enum ViewProblem {
    #[error(transparent)]
    Output(OutputProblem),
    #[error(transparent)]
    Failed(TransformError),
}

/// The outcome of `validate` for one view.
#[derive(Debug)]
pub struct ViewReport {
    pub view: &'static FeatureViewDef,
    pub errors: Vec<ViewProblem>,
    pub extra: Vec<String>,
}

/// Runs a view's function on an empty input frame and checks its output.
pub fn check_view(view: &'static FeatureViewDef) -> ViewReport {
    let input = empty_frame(&input_schema(view));
    match run_transform(view, input) {
        Ok(out) => {
            let c = check_output(view, &out);
            ViewReport {
                view,
                errors: c.errors.into_iter().map(ViewProblem::Output).collect(),
                extra: c.extra,
            }
        }
        Err(e) => ViewReport {
            view,
            errors: vec![ViewProblem::Failed(e)],
            extra: Vec::new(),
        },
    }
}
