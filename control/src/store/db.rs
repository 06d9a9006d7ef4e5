//! Connecting to the datastore: which backend a URL names, the two pools
//! (one writer connection, several readers), per-connection settings, the
//! few SQL statements that differ between SQLite and Postgres, and
//! migrations.
//!
//! Every query goes through sqlx's `Any` driver with `$N` placeholders, so
//! the SQL text is shared; only transaction openers, the row lock on the
//! revision counter and notifications differ and live in [`Backend`].
//!
//! SQLite runs in WAL mode with `synchronous = FULL`: the WAL is fsynced
//! at every commit, so an acknowledged write survives a process kill and
//! also a power loss. `NORMAL` would survive a process kill too (the WAL
//! pages are in the OS cache once `COMMIT` returns) but may lose the last
//! commits on power loss; group commit (one transaction, hence one fsync,
//! per batch of requests) makes `FULL` cheap enough to keep.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use super::types::StoreError;

/// Readers per process. SQLite readers share the page cache and scale with
/// cores; Postgres readers mostly wait on the network.
const SQLITE_READERS: u32 = 4;
const POSTGRES_READERS: u32 = 10;

/// How long a connection waits for a lock held by another connection
/// (SQLite: another process touching the file, e.g. a backup tool).
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// How long a caller waits for a pooled connection (or a new one) before
/// the operation fails, e.g. while the database is down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Postgres limits identifiers, including notification channels, to 63
/// bytes.
const MAX_CHANNEL_LEN: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Opens a write transaction. SQLite takes the database write lock at
    /// `BEGIN IMMEDIATE`, so a transaction never has to upgrade a read
    /// snapshot (which can fail with `SQLITE_BUSY_SNAPSHOT`).
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Reads and locks the revision counter. On Postgres the row lock is
    /// held until commit, so writers in every process serialize on it and
    /// commit in revision order; SQLite already has one writer at a time.
    pub(crate) fn lock_revision(self) -> &'static str {
        match self {
            Backend::Sqlite => "SELECT revision FROM meta WHERE id = 1",
            Backend::Postgres => "SELECT revision FROM meta WHERE id = 1 FOR UPDATE",
        }
    }

    /// Opens a read transaction whose statements all see one snapshot.
    /// SQLite in WAL mode pins the snapshot at the first read of a
    /// transaction; Postgres needs REPEATABLE READ for that.
    pub(crate) fn begin_snapshot(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

/// The connection pools of one store.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) backend: Backend,
    /// One connection: all writes of a process go through the writer task.
    pub(crate) write: AnyPool,
    pub(crate) read: AnyPool,
    /// The URL as given, for the Postgres notification listener.
    pub(crate) url: String,
}

impl Db {
    /// Parses `url`, connects both pools and runs the migrations.
    pub(crate) async fn connect(url: &str) -> Result<Db, StoreError> {
        install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        if backend == Backend::Sqlite {
            create_parent_dir(&url)?;
        }
        let readers = match backend {
            Backend::Sqlite => SQLITE_READERS,
            Backend::Postgres => POSTGRES_READERS,
        };
        // The writer pool connects first so the file is created and switched
        // to WAL before any reader opens it.
        let write = pool_options(backend, 1).connect(&url).await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&write).await?,
            Backend::Postgres => sqlx::migrate!("../migrations/postgres").run(&write).await?,
        }
        let read = pool_options(backend, readers).connect(&url).await?;
        Ok(Db {
            backend,
            write,
            read,
            url,
        })
    }

    /// The notification channel of this store: one per schema, because
    /// Postgres channels are per database and tests (or tenants) may share
    /// a database with one schema each.
    pub(crate) async fn channel(&self) -> Result<String, StoreError> {
        let schema: Option<String> = sqlx::query_scalar("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(&self.read)
            .await?;
        Ok(channel_name(schema.as_deref().unwrap_or("")))
    }

    pub(crate) async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn pool_options(backend: Backend, connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Connections are kept for the life of the store: reconnecting would
        // only add latency, and the writer replaces a broken one itself.
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => conn.execute(sqlite_pragmas().as_str()).await?,
                    // A process that hangs inside a write transaction holds
                    // the revision lock; the server ends such a session so
                    // the other processes can go on writing.
                    Backend::Postgres => {
                        conn.execute("SET idle_in_transaction_session_timeout = '10s'")
                            .await?
                    }
                };
                Ok(())
            })
        })
}

fn sqlite_pragmas() -> String {
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};"
    )
}

/// Recognizes the backend and makes a SQLite URL create its file when
/// missing.
fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreError::BadUrl(url.to_owned()));
    };
    let (path, params) = match rest.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (rest, None),
    };
    // In-memory databases are private to one connection in sqlx, and the
    // store uses several connections, so it would see several databases.
    if path.is_empty() || path == ":memory:" || params.is_some_and(|p| p.contains("mode=memory")) {
        return Err(StoreError::BadUrl(url.to_owned()));
    }
    let url = match params {
        Some(p) if p.contains("mode=") => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    };
    Ok((Backend::Sqlite, url))
}

/// Creates the directory of a SQLite file (e.g. a fresh data dir).
fn create_parent_dir(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    match std::path::Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))
        }
        _ => Ok(()),
    }
}

fn channel_name(schema: &str) -> String {
    let mut name = format!("wasmpod_store_{schema}");
    if name.len() > MAX_CHANNEL_LEN {
        let mut end = MAX_CHANNEL_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_gets_create_mode() -> anyhow::Result<()> {
        let (backend, url) = normalize_url("sqlite:///tmp/x/db.sqlite")?;
        assert_eq!(backend, Backend::Sqlite);
        assert_eq!(url, "sqlite:///tmp/x/db.sqlite?mode=rwc");
        let (_, url) = normalize_url("sqlite:///tmp/db.sqlite?mode=ro")?;
        assert_eq!(url, "sqlite:///tmp/db.sqlite?mode=ro");
        Ok(())
    }

    #[test]
    fn postgres_urls_are_recognized() -> anyhow::Result<()> {
        assert_eq!(normalize_url("postgres://u@h/db")?.0, Backend::Postgres);
        assert_eq!(normalize_url("postgresql://u@h/db")?.0, Backend::Postgres);
        Ok(())
    }

    #[test]
    fn unknown_and_in_memory_urls_are_rejected() {
        for url in [
            "mysql://h/db",
            "sqlite::memory:",
            "sqlite://",
            "/tmp/db.sqlite",
        ] {
            assert!(
                matches!(normalize_url(url), Err(StoreError::BadUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn channel_names_fit_postgres_identifiers() {
        assert_eq!(channel_name("public"), "wasmpod_store_public");
        let long = channel_name(&"é".repeat(60));
        assert!(long.len() <= MAX_CHANNEL_LEN);
    }
}
