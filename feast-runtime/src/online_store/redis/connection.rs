//! Connections to Redis: a small pool. A connection that fails is dropped;
//! while Redis is unreachable new connections are tried at most once per
//! back-off period (100 ms doubling to 5 s), so callers fail fast instead of
//! queueing on a dead server.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisError, RedisResult};

use crate::online_store::{Error, Result};

/// Idle connections kept.
const POOL: usize = 8;

/// The pool of one store.
pub(super) struct Pool {
    client: Client,
    /// Loaded on each new connection, so that pipelines can `EVALSHA` them.
    scripts: &'static [&'static str],
    idle: Mutex<Vec<Connection>>,
    /// While Redis is unreachable: when a new connection may next be tried,
    /// and the current wait.
    down: Mutex<Option<(Instant, Duration)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state stays valid whatever panicked while holding it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a failed call says the connection or the server is gone (or
/// hung): the pool backs off, and a later call may succeed.
fn connection_lost(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

impl Pool {
    pub(super) fn new(client: Client, scripts: &'static [&'static str]) -> Pool {
        Pool {
            client,
            scripts,
            idle: Mutex::new(Vec::new()),
            down: Mutex::new(None),
        }
    }

    /// Runs `f` on a pooled connection. A connection that failed is dropped.
    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T> {
        let pooled = lock(&self.idle).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match f(&mut conn) {
            Ok(v) => {
                let mut idle = lock(&self.idle);
                if idle.len() < POOL {
                    idle.push(conn);
                }
                Ok(v)
            }
            Err(e) if connection_lost(&e) => {
                self.mark_down();
                Err(Error::Unavailable(e))
            }
            Err(e) => {
                if e.is_unrecoverable_error() {
                    self.mark_down();
                }
                Err(Error::Redis(e))
            }
        }
    }

    /// Loads the scripts on `conn`'s server (again, after a `SCRIPT FLUSH`).
    pub(super) fn load_scripts(&self, conn: &mut Connection) -> RedisResult<()> {
        for script in self.scripts {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(*script)
                .query::<String>(conn)?;
        }
        Ok(())
    }

    fn connect(&self) -> Result<Connection> {
        if let Some((until, wait)) = *lock(&self.down)
            && Instant::now() < until
        {
            return Err(Error::BackingOff(wait));
        }
        let conn = self
            .client
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|c| {
                c.set_read_timeout(Some(Duration::from_secs(5)))?;
                c.set_write_timeout(Some(Duration::from_secs(5)))?;
                Ok(c)
            })
            .and_then(|mut c| self.load_scripts(&mut c).map(|()| c));
        match conn {
            Ok(c) => {
                *lock(&self.down) = None;
                Ok(c)
            }
            Err(e) if connection_lost(&e) => {
                self.mark_down();
                Err(Error::Unavailable(e))
            }
            Err(e) => {
                // Refused by the server (a password, a TLS certificate):
                // trying again soon will not help, but do not hammer it.
                self.mark_down();
                Err(Error::Redis(e))
            }
        }
    }

    /// Backs off new connections: 100 ms, doubling to 5 s.
    fn mark_down(&self) {
        let mut down = lock(&self.down);
        let wait = match *down {
            Some((_, w)) => (w * 2).min(Duration::from_secs(5)),
            None => Duration::from_millis(100),
        };
        *down = Some((Instant::now() + wait, wait));
        lock(&self.idle).clear();
    }
}
