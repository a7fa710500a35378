//! `feature_store.yaml`: Feast's repository configuration.
//!
//! Keys follow Feast (`project`, `provider`, `registry`, `online_store`,
//! `offline_store`, `entity_key_serialization_version`). Unknown keys are
//! rejected with their line and column, instead of being ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The file name Feast uses for a repository's configuration.
pub const FILE_NAME: &str = "feature_store.yaml";

/// A repository's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Letters, digits and underscores; prefixes online tables and keys.
    pub project: String,
    #[serde(default)]
    /// The cloud provider Feast's templates name; all behave alike here.
    pub provider: Provider,
    #[serde(default)]
    /// Where the registry file is.
    pub registry: RegistryConfig,
    #[serde(default)]
    /// The online store and its settings.
    pub online_store: OnlineStoreConfig,
    #[serde(default)]
    /// The offline store.
    pub offline_store: OfflineStoreConfig,
    /// Only version 3 (Feast's default) is written and read.
    #[serde(default = "default_key_version")]
    pub entity_key_serialization_version: u32,
    /// How `ingest` reaches Kinesis (a feast-rs key; Feast runs no ingestion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis: Option<KinesisConfig>,
}

/// `kinesis:`, for `ingest` and `produce`.
///
/// The endpoint is taken from, in order: `--endpoint-url` (or
/// `FEAST_KINESIS_ENDPOINT_URL`); aws-config's own chain
/// (`AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`); this key; AWS itself.
/// The region is the source's `region`; credentials come from aws-config's
/// chain (environment, profile, web identity, container, instance role).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// A Kinesis-compatible endpoint, such as a local emulator's
    /// `http://127.0.0.1:4567`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// How long one call may take to connect (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_seconds: Option<u64>,
    /// How long one call may take in all before it is abandoned and retried
    /// (default 15; GetRecords returns up to 10 MB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_timeout_seconds: Option<u64>,
    /// Share the streams with other `ingest` workers through shard leases
    /// in this DynamoDB table (as `ingest --lease-table`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_table: Option<String>,
    /// How long a lease lasts without a renewal (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<u64>,
}

impl KinesisConfig {
    /// Seconds a Kinesis call may take to connect.
    pub fn connect_timeout_seconds(&self) -> u64 {
        self.connect_timeout_seconds.unwrap_or(2).max(1)
    }

    /// Seconds a Kinesis call may take in all.
    pub fn operation_timeout_seconds(&self) -> u64 {
        self.operation_timeout_seconds.unwrap_or(15).max(1)
    }
}

fn default_key_version() -> u32 {
    3
}

/// Feast's providers; all of them behave alike here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    /// Feast's `local`.
    Local,
    /// Feast's `aws`.
    Aws,
    /// Feast's `gcp`.
    Gcp,
    /// Feast's `azure`.
    Azure,
}

/// Where the registry file lives: `registry: path` or `registry: {path: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryConfig {
    /// Only `file` is read and written.
    pub registry_type: RegistryType,
    /// The registry file, relative to the repository.
    pub path: String,
    /// How long Feast may cache the registry (kept for Feast's readers).
    pub cache_ttl_seconds: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
/// The registry's kind.
pub enum RegistryType {
    #[default]
    /// A file.
    File,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            registry_type: RegistryType::File,
            path: "data/registry.db".to_owned(),
            cache_ttl_seconds: 600,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryMap {
    #[serde(default)]
    registry_type: RegistryType,
    path: String,
    #[serde(default = "default_cache_ttl")]
    cache_ttl_seconds: u64,
}

fn default_cache_ttl() -> u64 {
    600
}

impl<'de> Deserialize<'de> for RegistryConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RegistryConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a registry path or a map with `path`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RegistryConfig, E> {
                Ok(RegistryConfig {
                    path: v.to_owned(),
                    ..RegistryConfig::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RegistryConfig, A::Error> {
                let m = RegistryMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RegistryConfig {
                    registry_type: m.registry_type,
                    path: m.path,
                    cache_ttl_seconds: m.cache_ttl_seconds,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The online store's type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnlineStoreType {
    /// Embedded SQLite, the default.
    #[default]
    Sqlite,
    /// Redis, in Feast's layout.
    Redis,
}

/// `online_store:` with Feast's keys. The keys of every store type sit in one
/// struct so that an unknown key is reported with its position; the online
/// store's own module then converts it into its typed settings, each
/// backend taking its keys and refusing the others'
/// (`crate::online_store::StoreConfig`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineStoreConfig {
    #[serde(rename = "type", default)]
    /// `sqlite` (the default) or `redis`.
    pub store_type: OnlineStoreType,
    /// SQLite: the database file (Feast's default `data/online.db`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Redis: `host:port[,db=0][,password=...][,ssl=true]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// Redis: `redis` only (cluster and sentinel are not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_type: Option<String>,
    /// Redis: an EXPIRE set on every written key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ttl_seconds: Option<u64>,
}

impl OnlineStoreConfig {
    /// Every key and whether `feature_store.yaml` sets it.
    pub fn keys_set(&self) -> [(&'static str, bool); 4] {
        [
            ("path", self.path.is_some()),
            ("connection_string", self.connection_string.is_some()),
            ("redis_type", self.redis_type.is_some()),
            ("key_ttl_seconds", self.key_ttl_seconds.is_some()),
        ]
    }
}

/// `offline_store:`; only Feast's `file` store (Parquet) exists here.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineStoreConfig {
    #[serde(rename = "type", default)]
    /// Only `file` (Parquet).
    pub store_type: OfflineStoreType,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
/// The offline store's type.
pub enum OfflineStoreType {
    #[default]
    /// Parquet files under each batch source's `path`.
    File,
}

/// A configuration that could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `feature_store.yaml` in the directory.
    #[error("no {FILE_NAME} in {dir} (run from the feature repository, or pass --chdir)")]
    NotFound {
        /// The directory looked in.
        dir: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: std::io::Error,
    },
    /// The file is not YAML of Feast's keys.
    #[error("{path}: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why, with the line and column.
        error: serde_yaml::Error,
    },
    /// The keys are well-formed but break a rule.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The rule broken.
        problem: Invalid,
    },
}

/// A rule across keys that a configuration breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The project name has characters other than letters, digits and `_`.
    #[error("project \"{0}\" must be letters, digits and underscores")]
    Project(String),
    /// An entity key serialization version other than 3.
    #[error(
        "entity_key_serialization_version {0} is not supported; feast-rs reads and writes version 3 (Feast's default)"
    )]
    KeyVersion(u32),
}

/// A loaded configuration and the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The directory holding `feature_store.yaml`.
    pub dir: PathBuf,
    /// Its contents.
    pub config: RepoConfig,
}

impl Repo {
    /// Reads `feature_store.yaml` in `dir`.
    pub fn load(dir: &Path) -> Result<Repo, Error> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    dir: dir.to_owned(),
                });
            }
            Err(source) => return Err(Error::Read { path, source }),
        };
        let config = RepoConfig::from_yaml(&text).map_err(|e| match e {
            ParseError::Yaml(source) => Error::Parse {
                path: path.clone(),
                error: source,
            },
            ParseError::Invalid(problem) => Error::Invalid {
                path: path.clone(),
                problem,
            },
        })?;
        Ok(Repo {
            dir: dir.to_owned(),
            config,
        })
    }

    /// A path from the configuration, relative to the repository.
    pub fn resolve(&self, path: &str) -> PathBuf {
        self.dir.join(path)
    }

    /// The registry file.
    pub fn registry_path(&self) -> PathBuf {
        self.resolve(&self.config.registry.path)
    }
}

/// Why a YAML text is not a valid configuration.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not YAML, or an unknown or mistyped key (with its position).
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
    /// A rule across keys is broken.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl RepoConfig {
    /// Parses and validates a `feature_store.yaml` text.
    pub fn from_yaml(text: &str) -> Result<RepoConfig, ParseError> {
        let config: RepoConfig = serde_yaml::from_str(text)?;
        config.validate().map_err(ParseError::Invalid)?;
        Ok(config)
    }

    /// Rules that span keys (the online store's own are its backend's).
    pub fn validate(&self) -> Result<(), Invalid> {
        let p = &self.project;
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Invalid::Project(p.clone()));
        }
        if self.entity_key_serialization_version != 3 {
            return Err(Invalid::KeyVersion(self.entity_key_serialization_version));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_feast_keys() {
        let c = RepoConfig::from_yaml(
            "project: driver_stats\nprovider: local\nregistry: data/registry.db\nonline_store:\n  type: sqlite\n  path: data/online.db\noffline_store:\n  type: file\nentity_key_serialization_version: 3\n",
        )
        .unwrap();
        assert_eq!(c.project, "driver_stats");
        assert_eq!(c.registry.path, "data/registry.db");
        assert_eq!(c.online_store.path.as_deref(), Some("data/online.db"));
        assert_eq!(c.offline_store.store_type, OfflineStoreType::File);
    }

    #[test]
    fn kinesis_endpoint_and_its_unknown_keys() {
        let c =
            RepoConfig::from_yaml("project: p\nkinesis:\n  endpoint_url: http://127.0.0.1:4567\n")
                .unwrap();
        assert_eq!(
            c.kinesis.and_then(|k| k.endpoint_url).as_deref(),
            Some("http://127.0.0.1:4567")
        );
        let e = RepoConfig::from_yaml("project: p\nkinesis:\n  endpoint: x\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("kinesis: unknown field `endpoint`, expected one of `endpoint_url`"),
            "{e}"
        );
        let c = RepoConfig::from_yaml(
            "project: p\nkinesis:\n  operation_timeout_seconds: 40\n  connect_timeout_seconds: 3\n",
        )
        .unwrap()
        .kinesis
        .unwrap();
        assert_eq!(
            (c.operation_timeout_seconds(), c.connect_timeout_seconds()),
            (40, 3)
        );
    }

    #[test]
    fn registry_may_be_a_map() {
        let c = RepoConfig::from_yaml("project: p\nregistry:\n  registry_type: file\n  path: r.json\n  cache_ttl_seconds: 5\n").unwrap();
        assert_eq!(c.registry.path, "r.json");
        assert_eq!(c.registry.cache_ttl_seconds, 5);
    }

    #[test]
    fn redis_connection_string() {
        let c = RepoConfig::from_yaml("project: p\nonline_store:\n  type: redis\n  connection_string: \"localhost:6379,db=0\"\n").unwrap();
        assert_eq!(c.online_store.store_type, OnlineStoreType::Redis);
        assert_eq!(
            c.online_store.connection_string.as_deref(),
            Some("localhost:6379,db=0")
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_line_and_column() {
        let e = RepoConfig::from_yaml("project: p\nonline_store:\n  type: sqlite\n  paht: x.db\n")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown field `paht`"), "{msg}");
        assert!(msg.contains("line 4 column 3"), "{msg}");

        let e = RepoConfig::from_yaml("project: p\nflags: {}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `flags`") && e.contains("line 2 column 1"),
            "{e}"
        );

        let e = RepoConfig::from_yaml("project: p\nregistry:\n  path: r\n  pth: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `pth`") && e.contains("line 4"),
            "{e}"
        );
    }

    #[test]
    fn cross_key_rules() {
        let e = RepoConfig::from_yaml("project: my-project\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "project \"my-project\" must be letters, digits and underscores"
        );
        let e = RepoConfig::from_yaml("project: p\nentity_key_serialization_version: 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 3"), "{e}");
        let e = RepoConfig::from_yaml("project: p\nonline_store:\n  type: dynamodb\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown variant `dynamodb`") && e.contains("line 3"),
            "{e}"
        );
    }
}
