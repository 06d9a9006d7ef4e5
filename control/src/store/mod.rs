//! The object store: every API object as JSON in one generic table, with
//! one global revision, a change log and watches, on SQLite (default) or
//! Postgres (several control-plane processes sharing one database).
//!
//! # Revisions
//! Every change gets the next value of one store-wide revision, and an
//! object's `metadata.resourceVersion` is the revision of its last change,
//! as with etcd. The counter is a row of the `meta` table that every write
//! transaction reads and advances: on Postgres it is locked with
//! `SELECT ... FOR UPDATE` until commit, so writers in all processes
//! serialize on it and commit in revision order; on SQLite there is one
//! writer connection using `BEGIN IMMEDIATE`. Revisions are therefore
//! gap-free and a reader that sees revision N also sees everything before
//! it (a bare sequence would hand out numbers that commit out of order).
//!
//! # Writes
//! All writes of a process go through one writer task ([`writer`]) that
//! groups queued commit requests into one transaction (group commit); a
//! request that fails a precondition rolls back only its own ops (a
//! savepoint per multi-op request).
//! Preconditions (exists, absent, expected revision) are checked in code
//! inside the transaction. `commit` returns after `COMMIT` has returned,
//! i.e. once the change is durable: SQLite runs in WAL mode with
//! `synchronous = FULL` (see [`db`] for why), Postgres with its own
//! durability settings.
//!
//! # Reads
//! Reads use a separate pool. A list page reads the revision counter and
//! the rows in one snapshot (SQLite read transaction, Postgres REPEATABLE
//! READ), so the page is exactly the state at the revision it reports.
//!
//! # Watches
//! Each commit appends one change-log row per revision. The feeder task
//! ([`feeder`]) publishes committed events into an in-memory window
//! ([`window`]) and per-resource broadcast channels ([`feed`]), strictly
//! in revision order: this process's commits come straight from the
//! writer; other processes' commits (Postgres) are read from the change
//! log when a notification or the periodic poll shows them, and any gap is
//! filled from the log before later events are published. Watches
//! ([`watch`]) replay the window and then follow the channel; a revision
//! older than the window is `Expired`. Compaction ([`compact`]) trims the
//! change log to the newest `log_retention` revisions.

pub mod blobs;
mod compact;
mod db;
mod feed;
mod feeder;
mod read;
mod shutdown;
mod types;
mod watch;
mod window;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use types::{Event, EventType, Key, List, Op, StoreError, Stored};
pub use watch::WatchStream;

use db::{Backend, Db};
use feed::Feed;
use shutdown::Shutdown;
use writer::{CommitRequest, Msg, Writer};

/// Commit requests that may wait for the writer before callers wait for
/// queue space.
const WRITE_QUEUE: usize = 4096;

/// Tuning of a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Events kept in memory for watches to start from.
    pub watch_window: usize,
    /// How often the change log is compacted.
    pub compact_interval: Duration,
    /// Revisions of change log kept in the database.
    pub log_retention: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            watch_window: 10_000,
            compact_interval: Duration::from_secs(60),
            log_retention: 100_000,
        }
    }
}

/// A handle to the store; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    writer: mpsc::Sender<Msg>,
    feed: Arc<Feed>,
    shutdown: Shutdown,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Store {
    /// Opens `url` (`sqlite://PATH`, created if missing, or
    /// `postgres://...`/`postgresql://...`), runs the migrations and starts
    /// the writer, feeder and compaction tasks.
    pub async fn open(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let db = Db::connect(url).await?;
        let shutdown = Shutdown::new();
        let (feed_tx, feed_rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();

        // The listener is up before the starting revision is read, so every
        // later commit of another process is either notified or in the log
        // after that revision.
        let channel = match db.backend {
            Backend::Postgres => {
                let listener = feeder::listen(&db).await?;
                let forward =
                    feeder::forward_notifications(listener, feed_tx.clone(), shutdown.subscribe());
                tasks.push(tokio::spawn(forward));
                Some(db.channel().await?)
            }
            Backend::Sqlite => None,
        };
        let revision = read::current_revision(&db).await?;
        let feed = Arc::new(Feed::new(revision, options.watch_window));
        tasks.push(tokio::spawn(feeder::run(
            feed.clone(),
            db.clone(),
            feed_rx,
            shutdown.subscribe(),
        )));

        let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE);
        let writer = Writer {
            db: db.clone(),
            rx: writer_rx,
            feed: feed.clone(),
            feed_tx,
            channel,
            conn: None,
        };
        tasks.push(tokio::spawn(writer.run(shutdown.subscribe())));
        tasks.push(tokio::spawn(compact::run(
            db.clone(),
            writer_tx.downgrade(),
            feed.clone(),
            options.log_retention,
            options.compact_interval,
            shutdown.subscribe(),
        )));

        Ok(Store {
            inner: Arc::new(Inner {
                db,
                writer: writer_tx,
                feed,
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Stored>, StoreError> {
        read::get(&self.inner.db, key).await.map_err(closed)
    }

    /// Objects of `resource`, in one namespace or all (None), ordered by
    /// (namespace, name), strictly after `after` (a continue position), at
    /// most `limit` of them (None: all). `revision` is the store revision
    /// the page is consistent with.
    pub async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        limit: Option<usize>,
    ) -> Result<List, StoreError> {
        read::list(&self.inner.db, resource, namespace, after, limit)
            .await
            .map_err(closed)
    }

    /// Applies all ops atomically, each with its own consecutive revision,
    /// and returns per op the stored object (for a delete: the deleted
    /// object stamped with the deletion's revision). Returns once the
    /// commit is durable.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<Vec<Stored>, StoreError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Msg::Commit(CommitRequest { ops, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn create(&self, key: Key, object: Value) -> Result<Stored, StoreError> {
        single(self.commit(vec![Op::Create { key, object }]).await?)
    }

    pub async fn update(
        &self,
        key: Key,
        object: Value,
        expected_revision: Option<i64>,
    ) -> Result<Stored, StoreError> {
        single(
            self.commit(vec![Op::Update {
                key,
                object,
                expected_revision,
            }])
            .await?,
        )
    }

    pub async fn delete(
        &self,
        key: Key,
        expected_revision: Option<i64>,
    ) -> Result<Stored, StoreError> {
        single(
            self.commit(vec![Op::Delete {
                key,
                expected_revision,
            }])
            .await?,
        )
    }

    /// Events of `resource` (optionally one namespace) with revision above
    /// `from_revision`, in revision order without gaps, then live ones.
    /// Fails with `Expired` if the window no longer holds every event after
    /// `from_revision`; the stream yields `Expired` and ends if the watcher
    /// falls that far behind later.
    pub fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        from_revision: i64,
    ) -> Result<WatchStream, StoreError> {
        WatchStream::start(self.inner.feed.clone(), resource, namespace, from_revision)
    }

    /// The latest committed revision this process knows of.
    pub fn revision(&self) -> i64 {
        self.inner.feed.revision()
    }

    /// Stops the background tasks, ends every watch and closes the pools.
    /// Later calls fail with `Closed`.
    pub async fn close(&self) {
        self.inner.shutdown.signal();
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            // A task that panicked has nothing left to stop.
            let _ = task.await;
        }
        self.inner.feed.close();
        self.inner.db.close().await;
    }
}

/// Reads after `close` find the pools closed; say so plainly.
fn closed(error: StoreError) -> StoreError {
    match error {
        StoreError::Database(sqlx::Error::PoolClosed) => StoreError::Closed,
        other => other,
    }
}

/// The one result of a single-op commit.
fn single(mut stored: Vec<Stored>) -> Result<Stored, StoreError> {
    stored.pop().ok_or(StoreError::Closed)
}
