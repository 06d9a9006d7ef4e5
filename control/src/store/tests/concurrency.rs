//! Many concurrent writers: revisions stay unique and gap-free, and every
//! acknowledged write is readable.

use std::collections::HashSet;

use super::{TestDb, assert_consecutive, on_both_backends, pod, pod_key};
use crate::store::{Key, Op, Store, StoreError};

on_both_backends!(
    concurrent_writers_get_unique_gap_free_revisions,
    failing_requests_do_not_fail_their_batch
);

const TASKS: usize = 16;
const CREATES_PER_TASK: usize = 50;

/// Creates `count` pods named `{prefix}-{i}` and returns their revisions.
async fn create_many(
    store: Store,
    prefix: String,
    count: usize,
) -> Result<Vec<(Key, i64)>, StoreError> {
    let mut created = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        let key = pod_key("default", &name);
        let stored = store.create(key.clone(), pod("default", &name)).await?;
        created.push((key, stored.revision));
    }
    Ok(created)
}

/// Runs `TASKS` writers on each store and checks the result as a whole.
pub(super) async fn write_concurrently(stores: &[Store]) -> anyhow::Result<()> {
    let start = stores.iter().map(Store::revision).max().unwrap_or(0);
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS {
            tasks.push(tokio::spawn(create_many(
                store.clone(),
                format!("s{s}-t{t}"),
                CREATES_PER_TASK,
            )));
        }
    }
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await??);
    }
    let mut revisions: Vec<i64> = written.iter().map(|(_, r)| *r).collect();
    revisions.sort_unstable();
    assert_consecutive(&revisions, start + 1);

    for (key, revision) in &written {
        let stored = stores[0]
            .get(key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{key} was acknowledged but is missing"))?;
        assert_eq!(stored.revision, *revision, "{key}");
    }
    let listed = stores[0].list("pods", None, None, None).await?;
    assert_eq!(listed.items.len(), written.len());
    assert_eq!(listed.revision, start + written.len() as i64);
    Ok(())
}

async fn concurrent_writers_get_unique_gap_free_revisions(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    write_concurrently(std::slice::from_ref(&store)).await?;
    store.close().await;
    Ok(())
}

async fn failing_requests_do_not_fail_their_batch(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    for i in 0..20 {
        store
            .create(
                pod_key("default", &format!("old-{i}")),
                pod("default", "old"),
            )
            .await?;
    }
    // Interleaved failing and succeeding requests, queued together so the
    // writer batches them.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = if i % 2 == 0 {
                format!("old-{}", i / 2)
            } else {
                format!("new-{i}")
            };
            let ops = vec![
                Op::Create {
                    key: pod_key("other", &name),
                    object: pod("other", &name),
                },
                Op::Create {
                    key: pod_key("default", &name),
                    object: pod("default", &name),
                },
            ];
            (i, store.commit(ops).await)
        }));
    }
    let mut revisions = Vec::new();
    for task in tasks {
        let (i, result) = task.await?;
        match result {
            Ok(stored) if i % 2 == 1 => revisions.extend(stored.iter().map(|s| s.revision)),
            Err(StoreError::AlreadyExists(_)) if i % 2 == 0 => {}
            other => anyhow::bail!("request {i}: unexpected {other:?}"),
        }
    }
    revisions.sort_unstable();
    assert_consecutive(&revisions, 21);
    let others = store.list("pods", Some("other"), None, None).await?;
    let names: HashSet<String> = others
        .items
        .iter()
        .filter_map(|s| s.object["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names.len(), 20);
    assert!(
        names.iter().all(|n| n.starts_with("new-")),
        "a failed request left a write behind: {names:?}"
    );
    store.close().await;
    Ok(())
}
