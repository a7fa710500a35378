//! The Parquet offline store (Feast's `file` store): under each batch
//! source's `path`, a single Parquet file or a directory of them (a
//! dataset). Appends need a directory: each write adds one file, written to
//! a temporary name, synced and renamed, so readers never see a torn file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::ParquetReader;
use polars_io::parquet::write::ParquetWriter;

use super::{Error, OfflineStore, SchemaCheck};
use crate::definition::{DataSourceDef, SourceKind};
use crate::transform::frame::{self, conform};

/// Parquet files under a repository.
#[derive(Debug, Clone)]
pub struct ParquetStore {
    repo_dir: PathBuf,
}

impl ParquetStore {
    /// The store of the repository in `repo_dir` (batch source paths are
    /// relative to it).
    pub fn new(repo_dir: &Path) -> ParquetStore {
        ParquetStore {
            repo_dir: repo_dir.to_owned(),
        }
    }

    fn source_path(&self, source: &DataSourceDef) -> PathBuf {
        match source.kind {
            SourceKind::File { path, .. } => self.repo_dir.join(path),
            _ => self.repo_dir.clone(),
        }
    }

    /// The Parquet files of a batch source, sorted by name.
    pub fn files(&self, source: &'static DataSourceDef) -> Result<Vec<PathBuf>, Error> {
        let path = self.source_path(source);
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
            source: e.into(),
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
}

impl OfflineStore for ParquetStore {
    /// Reads the rows of a batch source's chosen files, in its declared
    /// schema (after `field_mapping`). No files read as an empty frame.
    fn read_parts(
        &self,
        source: &'static DataSourceDef,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<DataFrame, Error> {
        let mut paths = self.files(source)?;
        paths.retain(|p| p.file_stem().and_then(|s| s.to_str()).is_none_or(keep));
        let raw = source.raw_schema();
        let mut out: Option<DataFrame> = None;
        for path in &paths {
            let read_err = |e: crate::definition::BoxError| Error::Read {
                source_name: source.name,
                path: path.clone(),
                source: e,
            };
            let df = read_source_file(source, path, None)?;
            let df = conform(&df, raw).map_err(|e| read_err(e.into()))?;
            match &mut out {
                None => out = Some(df),
                Some(acc) => {
                    acc.vstack_mut(&df).map_err(|e| read_err(e.into()))?;
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

    /// Appends `df` (already in the source's schema, after `field_mapping`) as one
    /// file named `{name}.parquet` in the source's directory. Writing the same name
    /// again replaces the file, which makes replays idempotent.
    fn append(
        &self,
        source: &'static DataSourceDef,
        df: &DataFrame,
        name: &str,
    ) -> Result<PathBuf, Error> {
        let dir = self.source_path(source);
        if dir.is_file() {
            return Err(Error::NotADirectory {
                source_name: source.name,
                path: dir,
            });
        }
        let target = dir.join(format!("{name}.parquet"));
        let write_err = |e: crate::definition::BoxError| Error::Write {
            source_name: source.name,
            path: target.clone(),
            source: e,
        };
        std::fs::create_dir_all(&dir).map_err(|e| write_err(e.into()))?;
        // Back to the source's own column names.
        let mut out = df.clone();
        for (from, to) in source.field_mapping {
            if out.column(to).is_ok() {
                out.rename(to, PlSmallStr::from_static(from))
                    .map_err(|e| write_err(e.into()))?;
            }
        }
        let tmp = dir.join(format!(".{name}.parquet.tmp"));
        let result = (|| -> Result<(), crate::definition::BoxError> {
            let mut file = File::create(&tmp)?;
            ParquetWriter::new(&mut file).finish(&mut out)?;
            file.flush()?;
            file.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            if let Ok(d) = File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(write_err(e));
        }
        Ok(target)
    }

    /// Removes the files of a batch source directory whose names `doomed`
    /// picks, and returns how many went. A source with no directory yet has
    /// nothing to remove.
    fn remove(
        &self,
        source: &'static DataSourceDef,
        doomed: &dyn Fn(&str) -> bool,
    ) -> Result<usize, Error> {
        let dir = self.source_path(source);
        if !dir.is_dir() {
            return Ok(0);
        }
        let write_err = |path: &Path, e: std::io::Error| Error::Write {
            source_name: source.name,
            path: path.to_owned(),
            source: e.into(),
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

    /// Checks every Parquet file of `source` against its declared columns: each
    /// column present, of a type that reads as the declared one (the rules
    /// reading applies). Reads only the files' schemas. `Ok(None)` when the
    /// source has no files yet.
    fn check_schema(&self, source: &'static DataSourceDef) -> Result<Option<SchemaCheck>, Error> {
        let paths = match self.files(source) {
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
}

/// One Parquet file of `source`, or the rows `slice` picks of it.
fn read_source_file(
    source: &'static DataSourceDef,
    path: &Path,
    slice: Option<(usize, usize)>,
) -> Result<DataFrame, Error> {
    let read_err = |e: crate::definition::BoxError| Error::Read {
        source_name: source.name,
        path: path.to_owned(),
        source: e,
    };
    let file = File::open(path).map_err(|e| read_err(e.into()))?;
    ParquetReader::new(file)
        .with_slice(slice)
        .finish()
        .map_err(|e| read_err(e.into()))
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
        .map_err(std::io::Error::other)?;
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
