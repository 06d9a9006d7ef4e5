//! The writer task: the one place a process writes to the database.
//!
//! Commit requests queue on a channel; the writer takes whatever has queued
//! (up to a limit) and applies it as one database transaction, so one
//! fsync (SQLite) or one commit round trip (Postgres) serves many requests
//! (group commit). A request that fails a precondition rolls back alone and
//! the others still commit: a multi-op request runs inside its own
//! SAVEPOINT; a single op checks its preconditions before writing anything,
//! so it needs none.
//!
//! Revisions: the transaction first reads the counter row in `meta` (on
//! Postgres with `FOR UPDATE`, which every process's writer takes, so their
//! transactions serialize and commit in revision order), gives each op the
//! next revision, and stores the new counter before committing. A request
//! that rolls back gives its revisions back, so revisions stay gap-free.
//!
//! Replies are sent only after `COMMIT` returned, i.e. once the writes are
//! durable. Events go to the feeder at the same time.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::db::{Backend, Db};
use super::feed::Feed;
use super::feeder::FeedMsg;
use super::read::{corrupt, parse};
use super::shutdown::Stopped;
use super::types::{Event, EventType, Key, Op, StoreError, Stored};

/// Most requests, and most ops, one transaction takes. Bounds how long a
/// batch holds the revision lock and how long its first request waits.
const MAX_BATCH_REQUESTS: usize = 256;
const MAX_BATCH_OPS: usize = 2048;

/// How long the writer waits before using the database again after a
/// connection failed, so a database that is down is not hammered.
const RETRY_DELAY: Duration = Duration::from_millis(100);

pub(crate) enum Msg {
    Commit(CommitRequest),
    /// Delete change-log rows up to and including `upto`.
    Compact {
        upto: i64,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

pub(crate) struct CommitRequest {
    pub(crate) ops: Vec<Op>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Stored>, StoreError>>,
}

/// One applied op, kept until the transaction commits.
struct Applied {
    kind: EventType,
    revision: i64,
    key: Key,
    object: Arc<Value>,
    prev: Option<Arc<Value>>,
}

/// A failure of the batch as a whole (not of one request).
struct BatchFailure {
    error: sqlx::Error,
    stage: Stage,
}

/// How far a failed batch got, which decides what its requests are told.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No connection or no transaction: nothing was tried.
    Start,
    /// Failed while applying requests: the transaction rolled back.
    Apply,
    /// `COMMIT` itself failed: the transaction may or may not have
    /// committed.
    Commit,
}

impl From<sqlx::Error> for BatchFailure {
    fn from(error: sqlx::Error) -> Self {
        Self {
            error,
            stage: Stage::Apply,
        }
    }
}

impl Stage {
    fn failed(self) -> impl FnOnce(sqlx::Error) -> BatchFailure {
        move |error| BatchFailure { error, stage: self }
    }
}

pub(crate) struct Writer {
    pub(crate) db: Db,
    pub(crate) rx: mpsc::Receiver<Msg>,
    pub(crate) feed: Arc<Feed>,
    pub(crate) feed_tx: mpsc::UnboundedSender<FeedMsg>,
    /// Postgres notification channel; None on SQLite.
    pub(crate) channel: Option<String>,
    pub(crate) conn: Option<PoolConnection<Any>>,
}

impl Writer {
    pub(crate) async fn run(mut self, mut stop: Stopped) {
        loop {
            let msg = tokio::select! {
                biased;
                _ = stop.wait() => break,
                msg = self.rx.recv() => match msg {
                    Some(msg) => msg,
                    None => break,
                },
            };
            match msg {
                Msg::Compact { upto, reply } => self.compact(upto, reply).await,
                Msg::Commit(first) => {
                    let (batch, deferred) = self.collect_batch(first);
                    self.commit_batch(batch).await;
                    if let Some(Msg::Compact { upto, reply }) = deferred {
                        self.compact(upto, reply).await;
                    }
                }
            }
        }
    }

    /// Takes the requests already queued behind `first`.
    fn collect_batch(&mut self, first: CommitRequest) -> (Vec<CommitRequest>, Option<Msg>) {
        let mut ops = first.ops.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_REQUESTS && ops < MAX_BATCH_OPS {
            match self.rx.try_recv() {
                Ok(Msg::Commit(request)) => {
                    ops += request.ops.len();
                    batch.push(request);
                }
                Ok(other) => return (batch, Some(other)),
                Err(_) => break,
            }
        }
        (batch, None)
    }

    async fn commit_batch(&mut self, mut batch: Vec<CommitRequest>) {
        let failure = match self.try_batch(&mut batch).await {
            Ok((results, revision)) => return self.finish(batch, results, revision),
            Err(failure) => failure,
        };
        self.drop_connection().await;
        if failure.stage != Stage::Apply || batch.len() == 1 {
            return fail(batch, failure.error);
        }
        // The transaction rolled back, so trying each request on its own is
        // safe, and keeps one request's database error from failing others.
        warn!(error = %failure.error, requests = batch.len(), "commit batch failed; retrying requests one by one");
        for request in batch {
            let mut one = vec![request];
            match self.try_batch(&mut one).await {
                Ok((results, revision)) => self.finish(one, results, revision),
                Err(failure) => {
                    self.drop_connection().await;
                    fail(one, failure.error);
                }
            }
        }
    }

    async fn connection(&mut self) -> Result<&mut AnyConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.db.write.acquire().await?);
        }
        match self.conn.as_mut() {
            Some(conn) => Ok(&mut **conn),
            None => Err(sqlx::Error::PoolClosed),
        }
    }

    /// Discards the connection after a failure: its transaction state is
    /// unknown. The next batch opens a fresh one.
    async fn drop_connection(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close_on_drop();
        }
        tokio::time::sleep(RETRY_DELAY).await;
    }

    /// Runs one batch transaction. Returns each request's outcome and the
    /// revision counter after the batch.
    async fn try_batch(
        &mut self,
        batch: &mut [CommitRequest],
    ) -> Result<(Vec<Result<Vec<Applied>, StoreError>>, i64), BatchFailure> {
        let backend = self.db.backend;
        let channel = self.channel.clone();
        let conn = self.connection().await.map_err(Stage::Start.failed())?;
        let mut tx = conn
            .begin_with(backend.begin_write())
            .await
            .map_err(Stage::Start.failed())?;
        let start: i64 = sqlx::query_scalar(backend.lock_revision())
            .fetch_one(&mut *tx)
            .await
            .map_err(Stage::Start.failed())?;
        let mut revision = start;
        let mut results = Vec::with_capacity(batch.len());
        for request in batch.iter_mut() {
            let result = if request.ops.len() == 1 {
                // A single op checks every precondition before it writes, so
                // a rejected one has written nothing and needs no savepoint
                // (two round trips fewer on Postgres). A database error
                // fails the batch, which is then retried request by request.
                match apply(&mut tx, &mut request.ops[0], revision + 1).await {
                    Err(StoreError::Database(error)) => return Err(error.into()),
                    result => result.map(|applied| vec![applied]),
                }
            } else {
                let mut savepoint = tx.begin().await?;
                let result = apply_all(&mut savepoint, &mut request.ops, revision).await;
                match result {
                    Ok(_) => savepoint.commit().await?,
                    Err(_) => savepoint.rollback().await?,
                }
                result
            };
            if let Ok(applied) = &result {
                revision += applied.len() as i64;
            }
            results.push(result);
        }
        if revision > start {
            sqlx::query("UPDATE meta SET revision = $1 WHERE id = 1")
                .bind(revision)
                .execute(&mut *tx)
                .await?;
            if let (Backend::Postgres, Some(channel)) = (backend, channel) {
                // Delivered at commit, to every process listening.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel)
                    .bind(revision.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await.map_err(Stage::Commit.failed())?;
        Ok((results, revision))
    }

    /// Publishes the committed events, then answers every request.
    fn finish(
        &self,
        batch: Vec<CommitRequest>,
        results: Vec<Result<Vec<Applied>, StoreError>>,
        revision: i64,
    ) {
        self.feed.observe(revision);
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for (request, result) in batch.into_iter().zip(results) {
            let reply =
                result.map(|applied| {
                    let stored = applied
                        .iter()
                        .map(|a| Stored {
                            revision: a.revision,
                            object: a.object.clone(),
                        })
                        .collect();
                    events.extend(applied.into_iter().map(|a| {
                        Arc::new(Event::new(a.kind, a.revision, a.key, a.object, a.prev))
                    }));
                    stored
                });
            replies.push((request.reply, reply));
        }
        if !events.is_empty() && self.feed_tx.send(FeedMsg::Committed(events)).is_err() {
            debug!("watch feeder stopped; events not published");
        }
        for (tx, reply) in replies {
            // The caller may have given up waiting; the commit stands.
            let _ = tx.send(reply);
        }
    }

    async fn compact(&mut self, upto: i64, reply: oneshot::Sender<Result<u64, StoreError>>) {
        let result = match self.connection().await {
            Ok(conn) => sqlx::query("DELETE FROM change_log WHERE revision <= $1")
                .bind(upto)
                .execute(conn)
                .await
                .map(|r| r.rows_affected()),
            Err(error) => Err(error),
        };
        if result.is_err() {
            self.drop_connection().await;
        }
        let _ = reply.send(result.map_err(StoreError::from));
    }
}

/// Answers every request of a failed batch with the batch's error.
fn fail(batch: Vec<CommitRequest>, error: sqlx::Error) {
    let message = error.to_string();
    let mut error = Some(error);
    for request in batch {
        let error = error.take().unwrap_or_else(|| {
            sqlx::Error::Io(std::io::Error::other(format!(
                "commit batch failed: {message}"
            )))
        });
        let _ = request.reply.send(Err(StoreError::Database(error)));
    }
}

async fn apply_all(
    conn: &mut AnyConnection,
    ops: &mut [Op],
    after: i64,
) -> Result<Vec<Applied>, StoreError> {
    let mut applied = Vec::with_capacity(ops.len());
    let mut revision = after;
    for op in ops {
        revision += 1;
        applied.push(apply(conn, op, revision).await?);
    }
    Ok(applied)
}

async fn apply(
    conn: &mut AnyConnection,
    op: &mut Op,
    revision: i64,
) -> Result<Applied, StoreError> {
    match op {
        Op::Create { key, object } => {
            stamp(key, object, revision)?;
            let data = object.to_string();
            let inserted = sqlx::query(
                "INSERT INTO objects (resource, namespace, name, uid, revision, data) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (resource, namespace, name) DO NOTHING",
            )
            .bind(key.resource.as_str())
            .bind(key.namespace.as_str())
            .bind(key.name.as_str())
            .bind(uid(object))
            .bind(revision)
            .bind(data.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::AlreadyExists(key.clone()));
            }
            append_log(conn, revision, key, EventType::Added, &data, None).await?;
            Ok(Applied {
                kind: EventType::Added,
                revision,
                key: key.clone(),
                object: Arc::new(object.clone()),
                prev: None,
            })
        }
        Op::Update {
            key,
            object,
            expected_revision,
        } => {
            let prev_data = current(conn, key, *expected_revision).await?;
            let prev = parse(key, &prev_data)?;
            stamp(key, object, revision)?;
            let data = object.to_string();
            sqlx::query(
                "UPDATE objects SET uid = $4, revision = $5, data = $6 \
                 WHERE resource = $1 AND namespace = $2 AND name = $3",
            )
            .bind(key.resource.as_str())
            .bind(key.namespace.as_str())
            .bind(key.name.as_str())
            .bind(uid(object))
            .bind(revision)
            .bind(data.as_str())
            .execute(&mut *conn)
            .await?;
            append_log(
                conn,
                revision,
                key,
                EventType::Modified,
                &data,
                Some(&prev_data),
            )
            .await?;
            Ok(Applied {
                kind: EventType::Modified,
                revision,
                key: key.clone(),
                object: Arc::new(object.clone()),
                prev: Some(Arc::new(prev)),
            })
        }
        Op::Delete {
            key,
            expected_revision,
        } => {
            let prev_data = current(conn, key, *expected_revision).await?;
            let prev = parse(key, &prev_data)?;
            let mut object = prev.clone();
            stamp(key, &mut object, revision)?;
            sqlx::query("DELETE FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3")
                .bind(key.resource.as_str())
                .bind(key.namespace.as_str())
                .bind(key.name.as_str())
                .execute(&mut *conn)
                .await?;
            append_log(
                conn,
                revision,
                key,
                EventType::Deleted,
                &object.to_string(),
                Some(&prev_data),
            )
            .await?;
            Ok(Applied {
                kind: EventType::Deleted,
                revision,
                key: key.clone(),
                object: Arc::new(object),
                prev: Some(Arc::new(prev)),
            })
        }
    }
}

/// The stored JSON of `key`, after checking the preconditions of an update
/// or delete.
async fn current(
    conn: &mut AnyConnection,
    key: &Key,
    expected: Option<i64>,
) -> Result<String, StoreError> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT revision, data FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3",
    )
    .bind(key.resource.as_str())
    .bind(key.namespace.as_str())
    .bind(key.name.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((actual, data)) = row else {
        return Err(StoreError::NotFound(key.clone()));
    };
    match expected {
        Some(expected) if expected != actual => Err(StoreError::Conflict {
            key: key.clone(),
            expected,
            actual,
        }),
        _ => Ok(data),
    }
}

async fn append_log(
    conn: &mut AnyConnection,
    revision: i64,
    key: &Key,
    kind: EventType,
    object: &str,
    prev: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO change_log (revision, resource, namespace, name, event, object, prev) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(revision)
    .bind(key.resource.as_str())
    .bind(key.namespace.as_str())
    .bind(key.name.as_str())
    .bind(kind.as_str())
    .bind(object)
    .bind(prev)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `metadata.resourceVersion`, creating `metadata` if absent.
fn stamp(key: &Key, object: &mut Value, revision: i64) -> Result<(), StoreError> {
    let Some(map) = object.as_object_mut() else {
        return Err(corrupt(key, "object is not a JSON object"));
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(metadata) = metadata.as_object_mut() else {
        return Err(corrupt(key, "metadata is not a JSON object"));
    };
    metadata.insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
    Ok(())
}

fn uid(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stamp_sets_resource_version_and_creates_metadata() -> anyhow::Result<()> {
        let key = Key::new("pods", "ns", "a");
        let mut with = json!({"metadata": {"name": "a", "resourceVersion": "1"}});
        stamp(&key, &mut with, 42)?;
        assert_eq!(with["metadata"]["resourceVersion"], "42");
        assert_eq!(with["metadata"]["name"], "a");
        let mut without = json!({"spec": {}});
        stamp(&key, &mut without, 7)?;
        assert_eq!(without["metadata"]["resourceVersion"], "7");
        Ok(())
    }

    #[test]
    fn stamp_rejects_non_objects() {
        let key = Key::new("pods", "ns", "a");
        assert!(matches!(
            stamp(&key, &mut json!([1]), 1),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            stamp(&key, &mut json!({"metadata": 3}), 1),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
