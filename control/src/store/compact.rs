//! Compaction: every interval, the change log is cut to its newest
//! `log_retention` revisions, as etcd compacts its history. The deletes go
//! through the writer task in chunks, so on SQLite they never contend with
//! commits for the write lock and no chunk delays commits for long.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::db::Db;
use super::feed::Feed;
use super::shutdown::Stopped;
use super::types::StoreError;
use super::writer::Msg;

/// Revisions deleted per writer message.
const CHUNK: i64 = 5_000;

pub(crate) async fn run(
    db: Db,
    writer: mpsc::WeakSender<Msg>,
    feed: Arc<Feed>,
    retention: i64,
    interval: Duration,
    mut stop: Stopped,
) {
    let start = tokio::time::Instant::now() + interval;
    let mut tick = tokio::time::interval_at(start, interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait() => break,
        }
        // A store whose handles are all gone has nothing left to compact.
        let Some(writer) = writer.upgrade() else {
            break;
        };
        let target = feed.revision() - retention.max(0);
        match compact(&db, &writer, target).await {
            Ok(0) => {}
            Ok(deleted) => debug!(deleted, upto = target, "compacted change log"),
            Err(error) => warn!(%error, "change log compaction failed"),
        }
    }
}

/// Deletes change-log rows with revision <= `target`.
pub(crate) async fn compact(
    db: &Db,
    writer: &mpsc::Sender<Msg>,
    target: i64,
) -> Result<u64, StoreError> {
    let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(revision) FROM change_log")
        .fetch_one(&db.read)
        .await?;
    let Some(oldest) = oldest else {
        return Ok(0);
    };
    let mut floor = oldest - 1;
    let mut deleted = 0;
    while floor < target {
        let upto = (floor + CHUNK).min(target);
        let (reply, answer) = oneshot::channel();
        writer
            .send(Msg::Compact { upto, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        deleted += answer.await.map_err(|_| StoreError::Closed)??;
        floor = upto;
    }
    Ok(deleted)
}
