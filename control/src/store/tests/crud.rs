//! Single-object writes and reads, preconditions and atomic commits.

use serde_json::json;

use super::{TestDb, on_both_backends, pod, pod_key, resource_version};
use crate::store::{Op, StoreError};

on_both_backends!(
    create_get_update_delete_round_trip,
    create_of_existing_key_fails_with_already_exists,
    update_or_delete_of_missing_key_fails_with_not_found,
    stale_expected_revision_fails_with_conflict,
    failing_op_rolls_back_the_whole_commit,
    multi_op_commit_gets_consecutive_revisions,
    committed_writes_survive_reopening,
);

async fn create_get_update_delete_round_trip(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let key = pod_key("default", "a");

    let created = store.create(key.clone(), pod("default", "a")).await?;
    assert_eq!(created.revision, 1);
    assert_eq!(resource_version(&created.object), Some(1));
    assert_eq!(store.revision(), 1);

    let got = store
        .get(&key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("created object missing"))?;
    assert_eq!(got.revision, 1);
    assert_eq!(*got.object, *created.object);

    let mut changed = pod("default", "a");
    changed["spec"]["nodeName"] = json!("node-1");
    let updated = store.update(key.clone(), changed, Some(1)).await?;
    assert_eq!(updated.revision, 2);
    let got = store
        .get(&key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("updated object missing"))?;
    assert_eq!(got.revision, 2);
    assert_eq!(got.object["spec"]["nodeName"], "node-1");
    assert_eq!(resource_version(&got.object), Some(2));

    let deleted = store.delete(key.clone(), Some(2)).await?;
    assert_eq!(deleted.revision, 3);
    assert_eq!(resource_version(&deleted.object), Some(3));
    assert_eq!(deleted.object["spec"]["nodeName"], "node-1");
    assert!(store.get(&key).await?.is_none());
    assert_eq!(store.revision(), 3);
    store.close().await;
    Ok(())
}

async fn create_of_existing_key_fails_with_already_exists(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let key = pod_key("default", "a");
    store.create(key.clone(), pod("default", "a")).await?;
    let mut other = pod("default", "a");
    other["spec"] = json!({"other": true});
    match store.create(key.clone(), other).await {
        Err(StoreError::AlreadyExists(k)) => assert_eq!(k, key),
        other => anyhow::bail!("expected AlreadyExists, got {other:?}"),
    }
    let got = store
        .get(&key)
        .await?
        .ok_or_else(|| anyhow::anyhow!("object missing"))?;
    assert_eq!(
        got.revision, 1,
        "the failed create must not change the object"
    );
    assert_eq!(
        store.revision(),
        1,
        "the failed create must not use a revision"
    );
    store.close().await;
    Ok(())
}

async fn update_or_delete_of_missing_key_fails_with_not_found(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let key = pod_key("default", "ghost");
    assert!(matches!(
        store
            .update(key.clone(), pod("default", "ghost"), None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete(key.clone(), None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.get(&key).await?.is_none());
    assert_eq!(store.revision(), 0);
    store.close().await;
    Ok(())
}

async fn stale_expected_revision_fails_with_conflict(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let key = pod_key("default", "a");
    store.create(key.clone(), pod("default", "a")).await?;
    store
        .update(key.clone(), pod("default", "a"), Some(1))
        .await?;
    match store
        .update(key.clone(), pod("default", "a"), Some(1))
        .await
    {
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        }) => {}
        other => anyhow::bail!("expected Conflict(1, 2), got {other:?}"),
    }
    assert!(matches!(
        store.delete(key.clone(), Some(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    // Without an expected revision the write is unconditional.
    assert_eq!(
        store
            .update(key.clone(), pod("default", "a"), None)
            .await?
            .revision,
        3
    );
    assert_eq!(store.get(&key).await?.map(|s| s.revision), Some(3));
    store.close().await;
    Ok(())
}

async fn failing_op_rolls_back_the_whole_commit(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    store
        .create(pod_key("default", "a"), pod("default", "a"))
        .await?;
    let result = store
        .commit(vec![
            Op::Create {
                key: pod_key("default", "b"),
                object: pod("default", "b"),
            },
            Op::Update {
                key: pod_key("default", "a"),
                object: pod("default", "a"),
                expected_revision: None,
            },
            Op::Create {
                key: pod_key("default", "a"),
                object: pod("default", "a"),
            },
        ])
        .await;
    assert!(
        matches!(result, Err(StoreError::AlreadyExists(_))),
        "got {result:?}"
    );
    assert!(
        store.get(&pod_key("default", "b")).await?.is_none(),
        "the first op must be rolled back"
    );
    assert_eq!(
        store
            .get(&pod_key("default", "a"))
            .await?
            .map(|s| s.revision),
        Some(1)
    );
    assert_eq!(store.revision(), 1);
    // The rolled-back revisions are reused: no gap.
    assert_eq!(
        store
            .create(pod_key("default", "c"), pod("default", "c"))
            .await?
            .revision,
        2
    );
    store.close().await;
    Ok(())
}

async fn multi_op_commit_gets_consecutive_revisions(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let stored = store
        .commit(vec![
            Op::Create {
                key: pod_key("default", "x"),
                object: pod("default", "x"),
            },
            Op::Update {
                key: pod_key("default", "x"),
                object: pod("default", "x"),
                expected_revision: Some(1),
            },
            Op::Create {
                key: pod_key("default", "y"),
                object: pod("default", "y"),
            },
            Op::Delete {
                key: pod_key("default", "y"),
                expected_revision: Some(3),
            },
        ])
        .await?;
    let revisions: Vec<i64> = stored.iter().map(|s| s.revision).collect();
    assert_eq!(revisions, vec![1, 2, 3, 4]);
    for s in &stored {
        assert_eq!(resource_version(&s.object), Some(s.revision));
    }
    assert_eq!(
        store
            .get(&pod_key("default", "x"))
            .await?
            .map(|s| s.revision),
        Some(2)
    );
    assert!(store.get(&pod_key("default", "y")).await?.is_none());
    store.close().await;
    Ok(())
}

async fn committed_writes_survive_reopening(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    for name in ["a", "b", "c"] {
        store
            .create(pod_key("default", name), pod("default", name))
            .await?;
    }
    store.close().await;
    assert!(matches!(
        store.get(&pod_key("default", "a")).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store
            .create(pod_key("default", "d"), pod("default", "d"))
            .await,
        Err(StoreError::Closed)
    ));

    let store = db.open().await?;
    assert_eq!(store.revision(), 3);
    assert_eq!(store.list("pods", None, None, None).await?.items.len(), 3);
    assert_eq!(
        store
            .create(pod_key("default", "d"), pod("default", "d"))
            .await?
            .revision,
        4
    );
    store.close().await;
    Ok(())
}
