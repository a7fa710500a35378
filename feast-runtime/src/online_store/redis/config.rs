//! The Redis store's settings, in Feast's format: `connection_string`
//! (`host:port[,db=N][,password=...][,username=...][,ssl=true][,ssl_ca_certs=PATH]`)
//! and `key_ttl_seconds`.

/// A `connection_string` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No host before the first comma.
    #[error("redis connection string {0:?} names no host (expected \"host:port,db=0\")")]
    NoHost(String),
    /// A port or db that is not a number.
    #[error("redis connection string: {0} {1:?} is not a number")]
    BadNumber(&'static str, String),
    /// An option without `=`.
    #[error("redis connection string: {0:?} is not `key=value`")]
    NotKeyValue(String),
    /// `ssl` other than true or false.
    #[error("redis connection string: ssl {0:?} is not true or false")]
    BadSsl(String),
    /// An option redis-py's string does not have.
    #[error(
        "redis connection string: unknown option `{0}`; expected db, password, username, ssl or ssl_ca_certs"
    )]
    UnknownOption(String),
    /// A CA file without TLS.
    #[error("redis connection string: ssl_ca_certs needs ssl=true")]
    CaWithoutSsl,
    /// The CA file cannot be read.
    #[error("redis connection string: ssl_ca_certs {path:?} cannot be read: {source}")]
    CaFile {
        /// The file.
        path: String,
        #[source]
        /// Why.
        source: std::io::Error,
    },
    /// The client refuses the URL.
    #[error("redis connection string: {0}")]
    Client(#[source] redis::RedisError),
    /// No `connection_string`.
    #[error("online_store.type redis needs connection_string, as in \"localhost:6379\"")]
    NoConnectionString,
    /// A `redis_type` other than `redis`.
    #[error("online_store.redis_type {0:?} is not supported; only \"redis\" is")]
    RedisType(String),
}

/// The Redis store's typed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The server.
    pub connection: ConnectionSpec,
    /// An EXPIRE set on every written key; 0 for none.
    pub key_ttl_seconds: u64,
}

impl RedisConfig {
    /// The `online_store` keys this store takes.
    pub const KEYS: &'static [&'static str] =
        &["connection_string", "redis_type", "key_ttl_seconds"];

    /// From `feature_store.yaml`'s `online_store` keys.
    pub fn from_keys(
        connection_string: Option<&str>,
        redis_type: Option<&str>,
        key_ttl_seconds: Option<u64>,
    ) -> Result<RedisConfig, ConfigError> {
        let connection_string = connection_string
            .filter(|s| !s.trim().is_empty())
            .ok_or(ConfigError::NoConnectionString)?;
        if let Some(t) = redis_type.filter(|t| *t != "redis") {
            return Err(ConfigError::RedisType(t.to_owned()));
        }
        Ok(RedisConfig {
            connection: ConnectionSpec::parse(connection_string)?,
            key_ttl_seconds: key_ttl_seconds.unwrap_or(0),
        })
    }

    /// What can be checked without connecting: the CA file is readable.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.connection.ssl_ca_certs {
            std::fs::metadata(path).map_err(|source| ConfigError::CaFile {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// A client for the server (nothing is connected yet), reading the CA
    /// file if one is named.
    pub(super) fn client(&self) -> Result<redis::Client, ConfigError> {
        let spec = &self.connection;
        if !spec.ssl {
            return redis::Client::open(spec.url()).map_err(ConfigError::Client);
        }
        let root_cert = match &spec.ssl_ca_certs {
            Some(path) => Some(std::fs::read(path).map_err(|source| ConfigError::CaFile {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        // The client's TLS asks for the process' default provider; another
        // part of the process may have set one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert,
        };
        redis::Client::build_with_tls(spec.url(), certificates).map_err(ConfigError::Client)
    }
}

/// A Redis server, as Feast's `connection_string` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    /// The host.
    pub host: String,
    /// The port (6379 by default).
    pub port: u16,
    /// The database number.
    pub db: i64,
    /// An ACL user.
    pub username: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// TLS (`ssl=true`).
    pub ssl: bool,
    /// A PEM file of the certificates to trust instead of the system's
    /// (`ssl_ca_certs=PATH`, redis-py's name, which Feast passes through).
    pub ssl_ca_certs: Option<String>,
}

impl ConnectionSpec {
    /// Parses `host:port[,db=N][,password=...][,username=...][,ssl=true]
    /// [,ssl_ca_certs=PATH]`.
    pub fn parse(s: &str) -> Result<ConnectionSpec, ConfigError> {
        let mut parts = s.split(',').map(str::trim);
        let address = parts
            .next()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ConfigError::NoHost(s.to_owned()))?;
        let (host, port) = match address.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse()
                    .map_err(|_| ConfigError::BadNumber("port", p.to_owned()))?,
            ),
            None => (address, 6379),
        };
        let mut spec = ConnectionSpec {
            host: host.to_owned(),
            port,
            db: 0,
            username: None,
            password: None,
            ssl: false,
            ssl_ca_certs: None,
        };
        for part in parts.filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| ConfigError::NotKeyValue(part.to_owned()))?;
            match key {
                "db" => {
                    spec.db = value
                        .parse()
                        .map_err(|_| ConfigError::BadNumber("db", value.to_owned()))?;
                }
                "password" => spec.password = Some(value.to_owned()),
                "username" => spec.username = Some(value.to_owned()),
                "ssl" => {
                    spec.ssl = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(ConfigError::BadSsl(value.to_owned())),
                    };
                }
                "ssl_ca_certs" => spec.ssl_ca_certs = Some(value.to_owned()),
                other => return Err(ConfigError::UnknownOption(other.to_owned())),
            }
        }
        if spec.ssl_ca_certs.is_some() && !spec.ssl {
            return Err(ConfigError::CaWithoutSsl);
        }
        Ok(spec)
    }

    /// A `redis://` (or, with TLS, `rediss://`) URL for the client.
    pub(super) fn url(&self) -> String {
        let auth = match (&self.username, &self.password) {
            (None, None) => String::new(),
            (user, password) => format!(
                "{}:{}@",
                percent_encode(user.as_deref().unwrap_or("")),
                percent_encode(password.as_deref().unwrap_or(""))
            ),
        };
        let scheme = if self.ssl { "rediss" } else { "redis" };
        format!("{scheme}://{auth}{}:{}/{}", self.host, self.port, self.db)
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_in_feasts_format() {
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,db=2,password=p@ss:w,ssl=false").unwrap(),
            ConnectionSpec {
                host: "localhost".into(),
                port: 6379,
                db: 2,
                username: None,
                password: Some("p@ss:w".into()),
                ssl: false,
                ssl_ca_certs: None,
            }
        );
        let spec = ConnectionSpec::parse("redis.internal").unwrap();
        assert_eq!((spec.port, spec.db), (6379, 0));
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,password=p@ss:w")
                .unwrap()
                .url(),
            "redis://:p%40ss%3Aw@localhost:6379/0"
        );
        assert_eq!(
            ConnectionSpec::parse("localhost:63a9")
                .unwrap_err()
                .to_string(),
            "redis connection string: port \"63a9\" is not a number"
        );
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,dbx=1")
                .unwrap_err()
                .to_string(),
            "redis connection string: unknown option `dbx`; expected db, password, username, ssl or ssl_ca_certs"
        );
        let tls = ConnectionSpec::parse("cache.internal:6380,ssl=True,password=p").unwrap();
        assert_eq!(tls.url(), "rediss://:p@cache.internal:6380/0");
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,ssl=yes")
                .unwrap_err()
                .to_string(),
            "redis connection string: ssl \"yes\" is not true or false"
        );
        assert_eq!(
            ConnectionSpec::parse("localhost:6379,ssl_ca_certs=/ca.pem")
                .unwrap_err()
                .to_string(),
            "redis connection string: ssl_ca_certs needs ssl=true"
        );
        assert!(ConnectionSpec::parse("").is_err());
    }
}
