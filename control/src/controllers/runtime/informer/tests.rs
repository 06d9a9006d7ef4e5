use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;

use super::*;
use crate::controllers::runtime::Backoff;

fn cm(name: &str, value: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.namespace = Some("ns".into());
    cm.metadata.name = Some(name.into());
    cm.data = Some([("v".to_string(), value.to_string())].into());
    cm
}

fn value(cm: &ConfigMap) -> &str {
    cm.data
        .as_ref()
        .and_then(|d| d.get("v"))
        .map_or("", String::as_str)
}

#[tokio::test]
async fn changes_reach_the_cache_before_the_handlers() {
    let mut informer = Informer::<ConfigMap>::detached();
    let cache = informer.cache();
    let seen = Arc::new(Mutex::new(Vec::new()));
    informer.on_event({
        let seen = Arc::clone(&seen);
        let cache = cache.clone();
        move |event| {
            let key = ObjectRef::from_obj(event.object().as_ref()).expect("named");
            let cached = cache.get(&key).map(|c| value(&c).to_string());
            let line = match event {
                InformerEvent::Applied { old, new } => format!(
                    "applied {} {}->{} cached {cached:?}",
                    key.name,
                    old.as_deref().map_or("-", value),
                    value(new)
                ),
                InformerEvent::Deleted(old) => {
                    format!("deleted {} {} cached {cached:?}", key.name, value(old))
                }
            };
            seen.lock().expect("lock").push(line);
        }
    });
    let synced = informer.synced();
    assert!(!synced.is_synced());
    informer.apply(Change::Restarted(vec![cm("a", "1"), cm("b", "1")]));
    assert!(synced.is_synced());
    informer.apply(Change::Applied(cm("a", "2")));
    informer.apply(Change::Deleted(cm("b", "1")));
    assert_eq!(cache.len(), 1);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen[2..],
        [
            "applied a 1->2 cached Some(\"2\")",
            "deleted b 1 cached None"
        ]
    );
}

#[tokio::test]
async fn a_relist_reports_objects_that_disappeared_as_deleted() {
    let mut informer = Informer::<ConfigMap>::detached();
    let queue = WorkQueue::new(Backoff::default());
    informer.enqueue_self(&queue);
    informer.apply(Change::Restarted(vec![cm("a", "1"), cm("b", "1")]));
    for _ in 0..2 {
        let key = queue.get().await.expect("a key");
        queue.done(&key);
    }
    let deleted = Arc::new(Mutex::new(Vec::new()));
    informer.on_event({
        let deleted = Arc::clone(&deleted);
        move |event| {
            if let InformerEvent::Deleted(old) = event {
                deleted
                    .lock()
                    .expect("lock")
                    .push(old.metadata.name.clone().unwrap_or_default());
            }
        }
    });
    informer.apply(Change::Restarted(vec![cm("a", "1")]));
    assert_eq!(*deleted.lock().expect("lock"), ["b"]);
    let cache = informer.cache();
    assert!(cache.get(&ObjectRef::new(Some("ns"), "b")).is_none());
    assert_eq!(cache.list_namespace("ns").len(), 1);
    // Both keys were queued again: a re-list is a reason to look again.
    assert_eq!(queue.len(), 2);
}
