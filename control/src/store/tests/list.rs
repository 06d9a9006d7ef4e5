//! List pages: order, paging, filters and the page revision.

use super::{TestDb, on_both_backends, pod, pod_key};
use crate::store::{Key, Store};

on_both_backends!(
    list_pages_follow_namespace_then_name_order,
    list_filters_by_namespace_and_resource
);

fn names(list: &crate::store::List) -> Vec<String> {
    list.items
        .iter()
        .map(|s| {
            let m = &s.object["metadata"];
            format!(
                "{}/{}",
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

async fn fill(store: &Store) -> anyhow::Result<()> {
    // Created out of order so only the store's ordering can sort them.
    for (ns, name) in [
        ("b", "y"),
        ("a", "z"),
        ("b", "x"),
        ("a", "a"),
        ("c", "m"),
        ("a", "b"),
    ] {
        store.create(pod_key(ns, name), pod(ns, name)).await?;
    }
    store
        .create(
            Key::new("nodes", "", "n1"),
            serde_json::json!({"metadata": {"name": "n1"}}),
        )
        .await?;
    Ok(())
}

async fn list_pages_follow_namespace_then_name_order(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    fill(&store).await?;

    let all = store.list("pods", None, None, None).await?;
    assert_eq!(names(&all), ["a/a", "a/b", "a/z", "b/x", "b/y", "c/m"]);
    assert!(!all.more);
    assert_eq!(all.revision, 7);

    let mut pages = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = store
            .list(
                "pods",
                None,
                after.as_ref().map(|(n, m)| (n.as_str(), m.as_str())),
                Some(4),
            )
            .await?;
        assert!(page.items.len() <= 4);
        let more = page.more;
        let last = page.items.last().map(|s| {
            let m = &s.object["metadata"];
            (
                m["namespace"].as_str().unwrap_or("").to_owned(),
                m["name"].as_str().unwrap_or("").to_owned(),
            )
        });
        pages.push(names(&page));
        if !more {
            break;
        }
        after = last;
    }
    assert_eq!(
        pages,
        vec![vec!["a/a", "a/b", "a/z", "b/x"], vec!["b/y", "c/m"]]
    );

    // A page that ends exactly at the last object says no more follow.
    let exact = store.list("pods", None, Some(("a", "z")), Some(3)).await?;
    assert_eq!(names(&exact), ["b/x", "b/y", "c/m"]);
    assert!(!exact.more);

    // A write after the list moves the store revision, not the page's.
    store.create(pod_key("a", "c"), pod("a", "c")).await?;
    let after_write = store.list("pods", None, None, Some(1)).await?;
    assert_eq!(after_write.revision, 8);
    assert!(after_write.more);
    store.close().await;
    Ok(())
}

async fn list_filters_by_namespace_and_resource(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    fill(&store).await?;
    let in_a = store.list("pods", Some("a"), None, None).await?;
    assert_eq!(names(&in_a), ["a/a", "a/b", "a/z"]);
    let in_a_after_a = store
        .list("pods", Some("a"), Some(("a", "a")), Some(1))
        .await?;
    assert_eq!(names(&in_a_after_a), ["a/b"]);
    assert!(in_a_after_a.more);
    let nodes = store.list("nodes", None, None, None).await?;
    assert_eq!(nodes.items.len(), 1);
    assert_eq!(nodes.items[0].revision, 7);
    assert!(
        store
            .list("services", None, None, None)
            .await?
            .items
            .is_empty()
    );
    assert!(
        store
            .list("pods", Some("none"), None, None)
            .await?
            .items
            .is_empty()
    );
    store.close().await;
    Ok(())
}
