//! The offline store: Parquet files under each batch source's path, read for
//! materialization and point-in-time retrieval, appended to by pushes and
//! ingestion.
//!
//! A batch source's `path` is a single Parquet file or a directory of them (a
//! dataset). Appends need a directory: each write adds one file, written to a
//! temporary name, synced and renamed, so readers never see a torn file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::ParquetReader;
use polars_io::parquet::write::ParquetWriter;

use crate::definition::{DataSourceDef, FieldDef, SourceKind};
use crate::transform::frame::{self, FrameError};

/// An offline store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("batch source `{source_name}`: {path} does not exist (generate or write data first)")]
    Missing {
        source_name: &'static str,
        path: PathBuf,
    },
    #[error("batch source `{source_name}`: cannot read {path}: {message}")]
    Read {
        source_name: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("batch source `{source_name}`: cannot write {path}: {message}")]
    Write {
        source_name: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error(
        "batch source `{source_name}`: {path} is a single Parquet file; appending needs a directory of files (move it to {path}/part-0.parquet)"
    )]
    NotADirectory {
        source_name: &'static str,
        path: PathBuf,
    },
    #[error(
        "the frame's columns do not match batch source `{source_name}`:{}{}",
        list(" missing", missing),
        list(" extra", extra)
    )]
    Columns {
        source_name: &'static str,
        missing: Vec<String>,
        extra: Vec<String>,
    },
    #[error("batch source `{source_name}`: {error}")]
    Frame {
        source_name: &'static str,
        error: FrameError,
    },
}

fn list(label: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(
            "{label} {}",
            items
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The batch source holding a source's history: itself for a file source,
/// its `batch_source` for a stream source.
pub fn batch_of(source: &'static DataSourceDef) -> &'static DataSourceDef {
    source.batch_source().unwrap_or(source)
}

fn source_path(repo_dir: &Path, source: &DataSourceDef) -> PathBuf {
    match source.kind {
        SourceKind::File { path, .. } => repo_dir.join(path),
        _ => repo_dir.to_owned(),
    }
}

/// The Parquet files of a batch source, sorted by name.
pub fn files(repo_dir: &Path, source: &'static DataSourceDef) -> Result<Vec<PathBuf>, Error> {
    let path = source_path(repo_dir, source);
    if path.is_file() {
        return Ok(vec![path]);
    }
    if !path.is_dir() {
        return Err(Error::Missing {
            source_name: source.name,
            path,
        });
    }
    let read_err = |e: std::io::Error| Error::Read {
        source_name: source.name,
        path: path.clone(),
        message: e.to_string(),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&path).map_err(read_err)? {
        let p = entry.map_err(read_err)?.path();
        if p.extension().is_some_and(|e| e == "parquet") && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every row of a batch source, in its declared schema (after
/// `field_mapping`). A source with no files yet reads as an empty frame.
pub fn read(repo_dir: &Path, source: &'static DataSourceDef) -> Result<DataFrame, Error> {
    let paths = files(repo_dir, source)?;
    let raw = source.raw_schema();
    let mut out: Option<DataFrame> = None;
    for path in &paths {
        let read_err = |message: String| Error::Read {
            source_name: source.name,
            path: path.clone(),
            message,
        };
        let df = read_source_file(source, path, None)?;
        let df = conform(&df, raw).map_err(|e| read_err(e.to_string()))?;
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut(&df).map_err(|e| read_err(e.to_string()))?;
            }
        }
    }
    let mut df = out.unwrap_or_else(|| frame::empty_frame(raw));
    df.rechunk_mut();
    for (from, to) in source.field_mapping {
        df.rename(from, PlSmallStr::from_static(to))
            .map_err(|e| Error::Frame {
                source_name: source.name,
                error: e.into(),
            })?;
    }
    Ok(df)
}

/// What the Parquet files of a batch source hold, against its declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaCheck {
    /// Files read (their footers only).
    pub files: usize,
    /// Each problem once, with how many files have it and the first of them.
    pub problems: Vec<(String, usize, PathBuf)>,
}

/// Checks every Parquet file of `source` against its declared columns: each
/// column present, of a type that reads as the declared one (the rules
/// reading applies). Reads only the files' schemas. `Ok(None)` when the
/// source has no files yet.
pub fn check_schema(
    repo_dir: &Path,
    source: &'static DataSourceDef,
) -> Result<Option<SchemaCheck>, Error> {
    let paths = match files(repo_dir, source) {
        Ok(p) => p,
        Err(Error::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut check = SchemaCheck {
        files: paths.len(),
        problems: Vec::new(),
    };
    for path in &paths {
        let empty = read_source_file(source, path, Some((0, 0)))?;
        for f in source.raw_schema() {
            let problem = match empty.column(f.name) {
                Err(_) => Some(format!("column `{}` ({}) is missing", f.name, f.dtype)),
                Ok(c) => frame::cast_to(c, f.dtype).err().map(|e| e.to_string()),
            };
            if let Some(p) = problem {
                match check.problems.iter_mut().find(|(q, _, _)| *q == p) {
                    Some((_, n, _)) => *n += 1,
                    None => check.problems.push((p, 1, path.clone())),
                }
            }
        }
    }
    Ok(Some(check))
}

/// One Parquet file of `source`, or the rows `slice` picks of it.
fn read_source_file(
    source: &'static DataSourceDef,
    path: &Path,
    slice: Option<(usize, usize)>,
) -> Result<DataFrame, Error> {
    let read_err = |message: String| Error::Read {
        source_name: source.name,
        path: path.to_owned(),
        message,
    };
    let file = File::open(path).map_err(|e| read_err(e.to_string()))?;
    ParquetReader::new(file)
        .with_slice(slice)
        .finish()
        .map_err(|e| read_err(e.to_string()))
}

/// Selects `schema`'s columns in order, cast to their declared types; a column
/// the frame lacks becomes all nulls.
pub fn conform(df: &DataFrame, schema: &[FieldDef]) -> Result<DataFrame, FrameError> {
    let height = df.height();
    let mut cols = Vec::with_capacity(schema.len());
    for f in schema {
        match df.column(f.name) {
            Ok(c) => cols.push(frame::cast_to(c, f.dtype)?),
            Err(_) => cols.push(Column::full_null(
                PlSmallStr::from_static(f.name),
                height,
                &f.dtype.dtype(),
            )),
        }
    }
    Ok(DataFrame::new(height, cols)?)
}

/// Checks that `df` has exactly the batch source's columns (as a set), as
/// Feast's `write_to_offline_store` does, and returns it in schema order.
pub fn check_columns(source: &'static DataSourceDef, df: &DataFrame) -> Result<DataFrame, Error> {
    let schema = source.schema();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let missing: Vec<String> = schema
        .iter()
        .filter(|f| !names.iter().any(|n| n == f.name))
        .map(|f| f.name.to_owned())
        .collect();
    let extra: Vec<String> = names
        .iter()
        .filter(|n| !schema.iter().any(|f| f.name == n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(Error::Columns {
            source_name: source.name,
            missing,
            extra,
        });
    }
    conform(df, &schema).map_err(|error| Error::Frame {
        source_name: source.name,
        error,
    })
}

/// Appends `df` (already in the source's schema, after `field_mapping`) as one
/// file named `{name}.parquet` in the source's directory. Writing the same name
/// again replaces the file, which makes replays idempotent.
pub fn append(
    repo_dir: &Path,
    source: &'static DataSourceDef,
    df: &DataFrame,
    name: &str,
) -> Result<PathBuf, Error> {
    let dir = source_path(repo_dir, source);
    if dir.is_file() {
        return Err(Error::NotADirectory {
            source_name: source.name,
            path: dir,
        });
    }
    let target = dir.join(format!("{name}.parquet"));
    let write_err = |message: String| Error::Write {
        source_name: source.name,
        path: target.clone(),
        message,
    };
    std::fs::create_dir_all(&dir).map_err(|e| write_err(e.to_string()))?;
    // Back to the source's own column names.
    let mut out = df.clone();
    for (from, to) in source.field_mapping {
        if out.column(to).is_ok() {
            out.rename(to, PlSmallStr::from_static(from))
                .map_err(|e| write_err(e.to_string()))?;
        }
    }
    let tmp = dir.join(format!(".{name}.parquet.tmp"));
    let result = (|| -> Result<(), String> {
        let mut file = File::create(&tmp).map_err(|e| e.to_string())?;
        ParquetWriter::new(&mut file)
            .finish(&mut out)
            .map_err(|e| e.to_string())?;
        file.flush().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(message) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(message));
    }
    Ok(target)
}

/// Removes the files of a batch source directory whose names `doomed`
/// picks, and returns how many went. A source with no directory yet has
/// nothing to remove.
pub fn remove_files(
    repo_dir: &Path,
    source: &'static DataSourceDef,
    doomed: impl Fn(&str) -> bool,
) -> Result<usize, Error> {
    let dir = source_path(repo_dir, source);
    if !dir.is_dir() {
        return Ok(0);
    }
    let write_err = |path: &Path, e: std::io::Error| Error::Write {
        source_name: source.name,
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir).map_err(|e| write_err(&dir, e))? {
        let path = entry.map_err(|e| write_err(&dir, e))?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(&doomed)
        {
            std::fs::remove_file(&path).map_err(|e| write_err(&path, e))?;
            removed += 1;
        }
    }
    if removed > 0
        && let Ok(d) = File::open(&dir)
    {
        let _ = d.sync_all();
    }
    Ok(removed)
}

/// Writes a frame to a Parquet file at `path` (temporary name, sync, rename).
pub fn write_file(path: &Path, df: &DataFrame) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("parquet.tmp");
    let mut out = df.clone();
    let mut file = File::create(&tmp)?;
    ParquetWriter::new(&mut file)
        .finish(&mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads a Parquet file.
pub fn read_file(path: &Path) -> std::io::Result<DataFrame> {
    let file = File::open(path)?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
}
