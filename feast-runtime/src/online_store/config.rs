//! The online store `feature_store.yaml` configures, as typed settings: the
//! flat `online_store:` keys (parsed with their positions) converted by the
//! backend the `type` names, which takes its own keys and refuses the rest.
//! Adding a backend adds one arm here and its folder.

use crate::config::{OnlineStoreType, Repo, RepoConfig};

use super::sqlite::{SqliteConfig, SqliteStore};
use super::{OnlineStore, Result};

/// The online store's settings, checked by its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Embedded SQLite.
    Sqlite(SqliteConfig),
    #[cfg(feature = "redis")]
    /// Redis.
    Redis(super::redis::RedisConfig),
}

/// Settings a backend cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key of another store type.
    #[error("online_store.{key} is not a {store} option ({store} takes: {takes})")]
    Foreign {
        /// The key.
        key: &'static str,
        /// The store `type` names.
        store: &'static str,
        /// The keys it takes.
        takes: String,
    },
    /// The store is not compiled in.
    #[error(
        "the {store} online store is not in this build (enable feast-runtime's `{feature}` feature)"
    )]
    NotBuilt {
        /// The store.
        store: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    #[cfg(feature = "redis")]
    /// A Redis setting is wrong.
    #[error(transparent)]
    Redis(#[from] super::redis::ConfigError),
}

/// Refuses a key set in `feature_store.yaml` that `store` does not take.
fn only(config: &RepoConfig, store: &'static str, keys: &[&str]) -> Result<(), ConfigError> {
    match config
        .online_store
        .keys_set()
        .into_iter()
        .find(|(key, set)| *set && !keys.contains(key))
    {
        Some((key, _)) => Err(ConfigError::Foreign {
            key,
            store,
            takes: keys.join(", "),
        }),
        None => Ok(()),
    }
}

impl StoreConfig {
    /// The online store of a repository's configuration.
    pub fn from_repo(config: &RepoConfig) -> Result<StoreConfig, ConfigError> {
        let o = &config.online_store;
        match o.store_type {
            OnlineStoreType::Sqlite => {
                only(config, "sqlite", SqliteConfig::KEYS)?;
                Ok(StoreConfig::Sqlite(SqliteConfig::new(o.path.as_deref())))
            }
            #[cfg(feature = "redis")]
            OnlineStoreType::Redis => {
                only(config, "redis", super::redis::RedisConfig::KEYS)?;
                Ok(StoreConfig::Redis(super::redis::RedisConfig::from_keys(
                    o.connection_string.as_deref(),
                    o.redis_type.as_deref(),
                    o.key_ttl_seconds,
                )?))
            }
            #[cfg(not(feature = "redis"))]
            OnlineStoreType::Redis => Err(ConfigError::NotBuilt {
                store: "redis",
                feature: "redis",
            }),
        }
    }

    /// Checks what can be checked without connecting or creating anything
    /// (`validate`): a CA file that must be readable.
    pub fn check(&self) -> Result<(), ConfigError> {
        match self {
            StoreConfig::Sqlite(_) => Ok(()),
            #[cfg(feature = "redis")]
            StoreConfig::Redis(c) => Ok(c.check()?),
        }
    }

    /// Opens the store for `repo` (SQLite creates its file; Redis connects
    /// on the first call).
    pub fn open(&self, repo: &Repo) -> Result<Box<dyn OnlineStore>> {
        let project = &repo.config.project;
        Ok(match self {
            StoreConfig::Sqlite(c) => Box::new(SqliteStore::open(&repo.resolve(&c.path), project)?),
            #[cfg(feature = "redis")]
            StoreConfig::Redis(c) => Box::new(super::redis::RedisStore::open(c, project)?),
        })
    }

    /// `sqlite data/online.db`, `redis host:port`: for messages.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite(c) => format!("sqlite {}", c.path),
            #[cfg(feature = "redis")]
            StoreConfig::Redis(c) => format!("redis {}:{}", c.connection.host, c.connection.port),
        }
    }
}

/// Opens the online store a repository configures.
pub fn open(repo: &Repo) -> Result<Box<dyn OnlineStore>> {
    StoreConfig::from_repo(&repo.config)?.open(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Result<StoreConfig, ConfigError> {
        StoreConfig::from_repo(&RepoConfig::from_yaml(yaml).unwrap())
    }

    #[test]
    fn each_backend_takes_its_own_keys() {
        assert_eq!(
            config("project: p\n").unwrap(),
            StoreConfig::Sqlite(SqliteConfig::new(None))
        );
        assert_eq!(
            config("project: p\nonline_store:\n  connection_string: x\n")
                .unwrap_err()
                .to_string(),
            "online_store.connection_string is not a sqlite option (sqlite takes: path)"
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_rules_live_with_redis() {
        assert_eq!(
            config("project: p\nonline_store:\n  type: redis\n")
                .unwrap_err()
                .to_string(),
            "online_store.type redis needs connection_string, as in \"localhost:6379\""
        );
        assert_eq!(
            config(
                "project: p\nonline_store:\n  type: redis\n  connection_string: h:1\n  path: x\n"
            )
            .unwrap_err()
            .to_string(),
            "online_store.path is not a redis option (redis takes: connection_string, redis_type, key_ttl_seconds)"
        );
        assert_eq!(
            config("project: p\nonline_store:\n  type: redis\n  connection_string: h:1\n  redis_type: redis_cluster\n")
                .unwrap_err()
                .to_string(),
            "online_store.redis_type \"redis_cluster\" is not supported; only \"redis\" is"
        );
        let StoreConfig::Redis(c) = config(
            "project: p\nonline_store:\n  type: redis\n  connection_string: \"h:1,db=2\"\n  key_ttl_seconds: 60\n",
        )
        .unwrap() else {
            panic!("a redis store")
        };
        assert_eq!((c.connection.db, c.key_ttl_seconds), (2, 60));
    }
}
