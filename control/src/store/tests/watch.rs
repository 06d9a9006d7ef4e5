//! Watches: order, gaps, filters, expiry and catching up.

use std::time::Duration;

use futures::StreamExt;

use super::{
    TestDb, assert_consecutive, next_events, on_both_backends, pod, pod_key, resource_version,
};
use crate::store::{EventType, Key, Op, Store, StoreError, StoreOptions};

on_both_backends!(
    watch_replays_changes_in_order_with_previous_objects,
    watch_under_concurrent_writes_has_no_gaps,
    watch_filters_by_resource_and_namespace,
    watch_from_revision_older_than_window_is_expired,
    lagging_watcher_catches_up_from_window,
    watcher_behind_the_window_gets_expired_and_ends,
    many_watchers_all_see_every_event,
    close_ends_watches,
);

async fn create_pods(
    store: &Store,
    namespace: &str,
    prefix: &str,
    count: usize,
) -> anyhow::Result<()> {
    let ops = (0..count)
        .map(|i| {
            let name = format!("{prefix}{i}");
            Op::Create {
                key: pod_key(namespace, &name),
                object: pod(namespace, &name),
            }
        })
        .collect();
    store.commit(ops).await?;
    Ok(())
}

async fn watch_replays_changes_in_order_with_previous_objects(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let key = pod_key("default", "a");
    store.create(key.clone(), pod("default", "a")).await?;
    store
        .update(key.clone(), pod("default", "a"), Some(1))
        .await?;
    store.delete(key.clone(), Some(2)).await?;

    let mut watch = store.watch("pods", None, 0)?;
    let events = next_events(&mut watch, 3).await?;
    let kinds: Vec<EventType> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventType::Added, EventType::Modified, EventType::Deleted]
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.revision, i as i64 + 1);
        assert_eq!(event.key, key);
        assert_eq!(resource_version(&event.object), Some(event.revision));
    }
    assert!(events[0].prev.is_none());
    assert_eq!(
        events[1].prev.as_deref().and_then(resource_version),
        Some(1)
    );
    assert_eq!(
        events[2].prev.as_deref().and_then(resource_version),
        Some(2)
    );

    // A live event follows the replayed ones.
    store
        .create(pod_key("default", "b"), pod("default", "b"))
        .await?;
    let live = next_events(&mut watch, 1).await?;
    assert_eq!((live[0].revision, live[0].kind), (4, EventType::Added));
    store.close().await;
    Ok(())
}

async fn watch_under_concurrent_writes_has_no_gaps(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    create_pods(&store, "default", "before", 5).await?;
    let mut watch = store.watch("pods", None, 3)?;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let name = format!("t{t}-{i}");
                store
                    .create(pod_key("default", &name), pod("default", &name))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    let events = next_events(&mut watch, 2 + 8 * 25).await?;
    for task in tasks {
        task.await??;
    }
    let revisions: Vec<i64> = events.iter().map(|e| e.revision).collect();
    assert_consecutive(&revisions, 4);
    store.close().await;
    Ok(())
}

async fn watch_filters_by_resource_and_namespace(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let mut in_a = store.watch("pods", Some("a"), 0)?;
    let mut nodes = store.watch("nodes", None, 0)?;
    create_pods(&store, "b", "p", 2).await?;
    create_pods(&store, "a", "p", 2).await?;
    store
        .create(
            Key::new("nodes", "", "n1"),
            serde_json::json!({"metadata": {"name": "n1"}}),
        )
        .await?;
    create_pods(&store, "a", "q", 1).await?;

    let pods: Vec<(i64, String)> = next_events(&mut in_a, 3)
        .await?
        .iter()
        .map(|e| (e.revision, e.key.name.clone()))
        .collect();
    assert_eq!(
        pods,
        [
            (3, "p0".to_owned()),
            (4, "p1".to_owned()),
            (6, "q0".to_owned())
        ]
    );
    let node_events = next_events(&mut nodes, 1).await?;
    assert_eq!(
        (node_events[0].revision, node_events[0].key.name.as_str()),
        (5, "n1")
    );

    // A watch started later replays the same filtered history.
    let mut replay = store.watch("pods", Some("a"), 3)?;
    let revisions: Vec<i64> = next_events(&mut replay, 2)
        .await?
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(revisions, [4, 6]);
    store.close().await;
    Ok(())
}

async fn watch_from_revision_older_than_window_is_expired(db: TestDb) -> anyhow::Result<()> {
    let store = db
        .open_with(StoreOptions {
            watch_window: 10,
            ..StoreOptions::default()
        })
        .await?;
    create_pods(&store, "default", "p", 30).await?;
    // The feeder publishes right after the commit; wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.inner.feed.last() < 30 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "events not published"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match store.watch("pods", None, 5) {
        Err(StoreError::Expired {
            requested: 5,
            oldest: 20,
        }) => {}
        Err(other) => anyhow::bail!("expected Expired(5, 20), got {other:?}"),
        Ok(_) => anyhow::bail!("expected Expired(5, 20), got a watch"),
    }
    // The oldest revision still available works and replays the window.
    let mut watch = store.watch("pods", None, 20)?;
    let revisions: Vec<i64> = next_events(&mut watch, 10)
        .await?
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_consecutive(&revisions, 21);
    store.close().await;
    Ok(())
}

async fn lagging_watcher_catches_up_from_window(db: TestDb) -> anyhow::Result<()> {
    let store = db
        .open_with(StoreOptions {
            watch_window: 5_000,
            ..StoreOptions::default()
        })
        .await?;
    let mut watch = store.watch("pods", None, 0)?;
    // More events than a channel holds, written while nobody reads.
    let chunks = crate::store::feed::CHANNEL_CAPACITY / 100 + 3;
    let total = chunks * 100;
    for chunk in 0..chunks {
        create_pods(&store, "default", &format!("c{chunk}-"), 100).await?;
    }
    let revisions: Vec<i64> = next_events(&mut watch, total)
        .await?
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_consecutive(&revisions, 1);
    store.close().await;
    Ok(())
}

async fn watcher_behind_the_window_gets_expired_and_ends(db: TestDb) -> anyhow::Result<()> {
    let store = db
        .open_with(StoreOptions {
            watch_window: 10,
            ..StoreOptions::default()
        })
        .await?;
    let mut watch = store.watch("pods", None, 0)?;
    let chunks = crate::store::feed::CHANNEL_CAPACITY / 100 + 3;
    let total = chunks * 100;
    for chunk in 0..chunks {
        create_pods(&store, "default", &format!("c{chunk}-"), 100).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.inner.feed.last() < total as i64 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "events not published"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = tokio::time::timeout(Duration::from_secs(10), watch.next()).await?;
    assert!(
        matches!(first, Some(Err(StoreError::Expired { requested: 0, .. }))),
        "got {first:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await?
            .is_none(),
        "the watch must end"
    );
    store.close().await;
    Ok(())
}

async fn many_watchers_all_see_every_event(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let mut watches = Vec::new();
    for i in 0..200 {
        let namespace = if i % 2 == 0 { None } else { Some("default") };
        watches.push(store.watch("pods", namespace, 0)?);
    }
    for i in 0..20 {
        store
            .create(
                pod_key("default", &format!("p{i}")),
                pod("default", &format!("p{i}")),
            )
            .await?;
    }
    for watch in &mut watches {
        let revisions: Vec<i64> = next_events(watch, 20)
            .await?
            .iter()
            .map(|e| e.revision)
            .collect();
        assert_consecutive(&revisions, 1);
    }
    store.close().await;
    Ok(())
}

async fn close_ends_watches(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    let mut watch = store.watch("pods", None, 0)?;
    store.close().await;
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next()).await?;
    assert!(next.is_none(), "got {next:?}");
    assert!(matches!(
        store.watch("pods", None, 0),
        Err(StoreError::Closed)
    ));
    Ok(())
}
