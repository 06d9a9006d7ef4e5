//! Compaction trims the change log to the retained revisions.

use std::time::Duration;

use super::{TestDb, on_both_backends, pod, pod_key};
use crate::store::{Op, Store, StoreOptions};

on_both_backends!(compaction_removes_old_change_log_rows);

async fn log_bounds(store: &Store) -> anyhow::Result<(i64, Option<i64>)> {
    let row: (i64, Option<i64>) = sqlx::query_as("SELECT COUNT(*), MIN(revision) FROM change_log")
        .fetch_one(&store.inner.db.read)
        .await?;
    Ok(row)
}

async fn compaction_removes_old_change_log_rows(db: TestDb) -> anyhow::Result<()> {
    let options = StoreOptions {
        log_retention: 10,
        compact_interval: Duration::from_millis(50),
        ..StoreOptions::default()
    };
    let store = db.open_with(options).await?;
    let ops = (0..100)
        .map(|i| Op::Create {
            key: pod_key("default", &format!("p{i}")),
            object: pod("default", &format!("p{i}")),
        })
        .collect();
    store.commit(ops).await?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (count, oldest) = log_bounds(&store).await?;
        if count == 10 {
            assert_eq!(oldest, Some(91));
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "change log still has {count} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Objects are untouched; only history is gone.
    assert_eq!(store.list("pods", None, None, None).await?.items.len(), 100);
    store.close().await;
    Ok(())
}
