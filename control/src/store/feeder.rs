//! The feeder task: the only writer of the watch window. It receives this
//! process's commits from the writer, and learns of other processes'
//! commits (Postgres) from notifications and from a periodic poll of the
//! change log. Whatever the source, it publishes strictly in revision order:
//! when events arrive after a gap, it first reads the missing revisions
//! from the change log, which has them because every writer commits in
//! revision order. If they were compacted away, the window starts over and
//! live watchers are told they expired.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::db::Db;
use super::feed::Feed;
use super::read;
use super::shutdown::Stopped;
use super::types::{Event, StoreError};

/// How often the change log is polled for commits of other processes whose
/// notification was lost, and old events are pruned.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Change-log rows read per query while catching up.
const READ_CHUNK: i64 = 1000;

pub(crate) enum FeedMsg {
    /// Events this process committed, in revision order.
    Committed(Vec<Arc<Event>>),
    /// Some process committed up to this revision (None: unknown, check).
    Hint(Option<i64>),
}

pub(crate) async fn run(
    feed: Arc<Feed>,
    db: Db,
    mut rx: mpsc::UnboundedReceiver<FeedMsg>,
    mut stop: Stopped,
) {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => msg,
                None => break,
            },
            _ = poll.tick() => {
                feed.prune();
                FeedMsg::Hint(None)
            }
            _ = stop.wait() => break,
        };
        let result = match msg {
            FeedMsg::Committed(events) => committed(&feed, &db, events).await,
            FeedMsg::Hint(Some(revision)) if revision <= feed.last() => Ok(()),
            FeedMsg::Hint(_) => catch_up(&feed, &db, None).await,
        };
        if let Err(error) = result {
            // The poll retries: every committed event is in the change log.
            warn!(%error, "watch feed could not read the change log");
        }
    }
}

async fn committed(feed: &Feed, db: &Db, events: Vec<Arc<Event>>) -> Result<(), StoreError> {
    let last = feed.last();
    let events: Vec<_> = events.into_iter().filter(|e| e.revision > last).collect();
    let Some(first) = events.first().map(|e| e.revision) else {
        return Ok(());
    };
    if first > last + 1 {
        catch_up(feed, db, Some(first - 1)).await?;
        if feed.last() != first - 1 {
            // The gap is not in the log (compacted): start over right before
            // these events.
            feed.reset(first - 1);
        }
    }
    if let Err(event) = feed.publish(events) {
        debug!(
            revision = event.revision,
            last = feed.last(),
            "commit out of order, re-reading the change log"
        );
        catch_up(feed, db, None).await?;
    }
    Ok(())
}

/// Publishes change-log rows after the window's last revision, up to
/// `upto` (or all). A log that no longer starts right after the window was
/// compacted past it: the window starts over at the first row.
async fn catch_up(feed: &Feed, db: &Db, upto: Option<i64>) -> Result<(), StoreError> {
    loop {
        let last = feed.last();
        if upto.is_some_and(|u| last >= u) {
            return Ok(());
        }
        let events = read::log_after(db, last, upto, READ_CHUNK).await?;
        let Some(first) = events.first().map(|e| e.revision) else {
            return Ok(());
        };
        if first != last + 1 {
            warn!(
                after = last,
                first, "change log compacted past the watch window; watches restart"
            );
            feed.reset(first - 1);
        }
        let full = events.len() as i64 == READ_CHUNK;
        if let Err(event) = feed.publish(events) {
            // Rows are read in revision order and the log has no gaps below
            // the newest commit, so this means the log changed under us.
            warn!(revision = event.revision, "change log rows out of order");
            return Ok(());
        }
        if !full {
            return Ok(());
        }
    }
}

/// Connects the Postgres notification listener. Done before the feed's
/// starting revision is read, so no commit after that point goes unnoticed.
pub(crate) async fn listen(db: &Db) -> Result<PgListener, StoreError> {
    let channel = db.channel().await?;
    let mut listener = PgListener::connect(&db.url).await?;
    listener.listen(&channel).await?;
    Ok(listener)
}

/// Forwards notifications (payload: the committed revision) as hints.
pub(crate) async fn forward_notifications(
    mut listener: PgListener,
    tx: mpsc::UnboundedSender<FeedMsg>,
    mut stop: Stopped,
) {
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            _ = stop.wait() => break,
        };
        let hint = match received {
            Ok(Some(n)) => n.payload().parse().ok(),
            // The connection dropped and was re-established: notifications
            // may have been missed.
            Ok(None) => None,
            Err(error) => {
                warn!(%error, "change notification listener failed; relying on polling");
                tokio::select! {
                    _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = stop.wait() => break,
                }
                None
            }
        };
        if tx.send(FeedMsg::Hint(hint)).is_err() {
            break;
        }
    }
}
