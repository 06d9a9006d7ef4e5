//! Reads a page of a list as it was at an earlier revision, so that the
//! pages of a paged list (`limit`/`continue`) are all one snapshot, as
//! kube-apiserver serves them from etcd's history.
//!
//! The store keeps only current rows, so a page at revision R is current
//! rows with the changes after R undone: every key changed since R takes
//! the state before its first change after R (absent if it was created
//! since). Those changes come from the watch window; once R has left it,
//! the snapshot is gone and the caller answers 410 Expired.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde_json::Value;
use wasmpod_api::meta;

use crate::store::{Event, List, Store, StoreError, Stored};

/// How long to wait for the watch window to catch up with the database.
const CATCH_UP: Duration = Duration::from_secs(2);

/// Objects of `resource` after `after`, at most `limit`, as of revision `at`.
pub async fn page_at(
    store: &Store,
    resource: &str,
    namespace: Option<&str>,
    after: Option<(&str, &str)>,
    limit: Option<usize>,
    at: i64,
) -> Result<List, StoreError> {
    let mut stream = store.watch(resource, namespace, at)?;
    let mut changes: Vec<Arc<Event>> = Vec::new();
    let mut extra = 0;
    loop {
        drain(&mut stream, &mut changes)?;
        let fetch = limit.map(|l| l + changes.len() + extra + 1);
        let page = store.list(resource, namespace, after, fetch).await?;
        wait_for(store, page.revision).await;
        drain(&mut stream, &mut changes)?;
        changes.retain(|e| e.revision <= page.revision);
        // Every change since `at` may remove one fetched row; fetch again
        // if too few rows are left to fill the page.
        let enough = fetch.is_none_or(|f| f > limit.unwrap_or(0) + changes.len()) || !page.more;
        if !enough {
            extra = changes.len();
            continue;
        }
        return Ok(undo(page, &changes, after, limit, at));
    }
}

/// Takes every change already delivered to `stream`, without waiting.
fn drain(
    stream: &mut crate::store::WatchStream,
    into: &mut Vec<Arc<Event>>,
) -> Result<(), StoreError> {
    while let Some(next) = stream.next().now_or_never() {
        match next {
            Some(Ok(event)) => into.push(event),
            Some(Err(e)) => return Err(e),
            None => return Err(StoreError::Closed),
        }
    }
    Ok(())
}

/// Waits (briefly) until the watch window has every change up to `revision`.
async fn wait_for(store: &Store, revision: i64) {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while store.revision() < revision && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn undo(
    page: List,
    changes: &[Arc<Event>],
    after: Option<(&str, &str)>,
    limit: Option<usize>,
    at: i64,
) -> List {
    let key_of = |obj: &Value| {
        (
            meta::namespace(obj).unwrap_or_default().to_string(),
            meta::name(obj).unwrap_or_default().to_string(),
        )
    };
    let mut state: BTreeMap<(String, String), Option<Stored>> = page
        .items
        .into_iter()
        .map(|s| (key_of(&s.object), Some(s)))
        .collect();
    // Newest first, so each key ends with the state before its first change.
    for event in changes.iter().rev() {
        let key = (event.key.namespace.clone(), event.key.name.clone());
        if after.is_some_and(|(ns, name)| (key.0.as_str(), key.1.as_str()) <= (ns, name)) {
            continue;
        }
        let before = event.prev.as_ref().map(|prev| Stored {
            revision: meta::resource_version(prev)
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(0),
            object: prev.clone(),
        });
        state.insert(key, before);
    }
    let mut items: Vec<Stored> = state.into_values().flatten().collect();
    let more = limit.is_some_and(|l| items.len() > l);
    if let Some(l) = limit {
        items.truncate(l);
    }
    List {
        revision: at,
        items,
        more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventType, Key};
    use serde_json::json;

    fn obj(name: &str, rv: i64) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv.to_string()}}),
        )
    }

    fn stored(name: &str, rv: i64) -> Stored {
        Stored {
            revision: rv,
            object: obj(name, rv),
        }
    }

    fn event(kind: EventType, rev: i64, name: &str, prev: Option<Arc<Value>>) -> Arc<Event> {
        Arc::new(Event::new(
            kind,
            rev,
            Key::new("configmaps", "ns", name),
            obj(name, rev),
            prev,
        ))
    }

    fn names(list: &List) -> Vec<String> {
        list.items
            .iter()
            .map(|s| meta::name(&s.object).unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn changes_after_the_snapshot_are_undone() {
        // At revision 10: a, b, c. Since: d created, b deleted, c modified.
        let now = List {
            revision: 13,
            items: vec![stored("a", 5), stored("c", 12), stored("d", 11)],
            more: false,
        };
        let changes = vec![
            event(EventType::Added, 11, "d", None),
            event(EventType::Deleted, 12, "b", Some(obj("b", 6))),
            event(EventType::Modified, 13, "c", Some(obj("c", 7))),
        ];
        let page = undo(now, &changes, None, None, 10);
        assert_eq!(names(&page), ["a", "b", "c"]);
        assert_eq!(page.items[2].revision, 7, "c is back at its old revision");
        assert_eq!(page.revision, 10);
    }

    #[test]
    fn undone_pages_respect_the_cursor_and_limit() {
        let now = List {
            revision: 12,
            items: vec![stored("b", 3), stored("c", 4), stored("e", 11)],
            more: false,
        };
        let changes = vec![
            event(EventType::Added, 11, "e", None),
            event(EventType::Deleted, 12, "a", Some(obj("a", 2))),
        ];
        let page = undo(now, &changes, Some(("ns", "a")), Some(1), 10);
        assert_eq!(names(&page), ["b"]);
        assert!(page.more);
    }
}
