//! An informer: one watch of a kind feeding a [`Cache`] and the handlers
//! that turn each change into work (keys on a queue, or bookkeeping of
//! their own).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Metadata};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use wasmpod_api::client::{ApiClient, Change, ListParams};

use super::{Cache, ObjectRef, WorkQueue};

/// One change of the watched set, after the cache was updated.
#[derive(Debug)]
pub enum InformerEvent<K> {
    /// Added (`old` is `None`) or modified. After a re-list every object
    /// is reported again, with `old` the copy held before.
    Applied {
        old: Option<Arc<K>>,
        new: Arc<K>,
    },
    Deleted(Arc<K>),
}

impl<K> InformerEvent<K> {
    /// The object as it is now, or as it was last seen when deleted.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Self::Applied { new, .. } => new,
            Self::Deleted(old) => old,
        }
    }
}

type Handler<K> = Box<dyn Fn(&InformerEvent<K>) + Send + Sync>;

/// Watches one kind (with optional namespace and selectors) into a cache.
/// Register handlers, hand out [`Informer::cache`] and [`Informer::synced`],
/// then [`Informer::run`] it.
pub struct Informer<K> {
    client: Option<ApiClient>,
    namespace: Option<String>,
    params: ListParams,
    cache: Cache<K>,
    handlers: Vec<Handler<K>>,
    synced: watch::Sender<bool>,
}

/// Resolves once an informer has applied its first list.
#[derive(Clone)]
pub struct Synced(watch::Receiver<bool>);

impl Synced {
    /// Waits until the informer's cache holds a complete list; returns at
    /// once if the informer was dropped without syncing.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|synced| *synced).await;
    }

    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }
}

impl<K> Informer<K>
where
    K: ListableResource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Send + Sync + 'static,
{
    pub fn new(client: ApiClient, namespace: Option<&str>, params: ListParams) -> Self {
        let mut informer = Self::detached();
        informer.client = Some(client);
        informer.namespace = namespace.map(str::to_string);
        informer.params = params;
        informer
    }

    /// An informer without a server, fed only through [`Informer::apply`]:
    /// for tests of controllers.
    pub fn detached() -> Self {
        Self {
            client: None,
            namespace: None,
            params: ListParams::default(),
            cache: Cache::default(),
            handlers: Vec::new(),
            synced: watch::Sender::new(false),
        }
    }

    pub fn cache(&self) -> Cache<K> {
        self.cache.clone()
    }

    pub fn synced(&self) -> Synced {
        Synced(self.synced.subscribe())
    }

    /// Calls `handler` for every change, after the cache has it.
    pub fn on_event(&mut self, handler: impl Fn(&InformerEvent<K>) + Send + Sync + 'static) {
        self.handlers.push(Box::new(handler));
    }

    /// Adds the keys `map` returns for each change to `queue`.
    pub fn enqueue_mapped(
        &mut self,
        queue: &WorkQueue<ObjectRef>,
        map: impl Fn(&InformerEvent<K>) -> Vec<ObjectRef> + Send + Sync + 'static,
    ) {
        let queue = queue.clone();
        self.on_event(move |event| {
            for key in map(event) {
                queue.add(key);
            }
        });
    }

    /// Adds each changed object's own key to `queue`.
    pub fn enqueue_self(&mut self, queue: &WorkQueue<ObjectRef>) {
        self.enqueue_mapped(queue, |event| {
            ObjectRef::from_obj(event.object().as_ref())
                .into_iter()
                .collect()
        });
    }

    /// Adds the key of each changed object's controlling owner of `kind`
    /// (e.g. a pod's ReplicaSet) to `queue`.
    pub fn enqueue_controller(&mut self, queue: &WorkQueue<ObjectRef>, kind: &'static str) {
        self.enqueue_mapped(queue, move |event| {
            let mut keys: Vec<ObjectRef> = Vec::new();
            if let InformerEvent::Applied { old: Some(old), .. } = event {
                keys.extend(ObjectRef::controller_of(old.as_ref(), kind));
            }
            if let Some(key) = ObjectRef::controller_of(event.object().as_ref(), kind)
                && !keys.contains(&key)
            {
                keys.push(key);
            }
            keys
        });
    }

    /// Watches until `stop` is cancelled. Watch errors are logged; the
    /// watcher retries with its own backoff and re-lists when it must.
    pub async fn run(self, stop: CancellationToken) {
        let Some(client) = self.client.clone() else {
            stop.cancelled().await;
            return;
        };
        let mut watcher = client.watcher::<K>(self.namespace.as_deref(), self.params.clone());
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = watcher.next() => next,
            };
            match next {
                Ok(change) => self.apply(change),
                Err(e) => tracing::warn!(
                    kind = K::KIND,
                    error = %e,
                    "watch failed; retrying"
                ),
            }
        }
    }

    /// Applies one change of the watched set to the cache, then calls the
    /// handlers.
    pub fn apply(&self, change: Change<K>) {
        let events = self.update_cache(change);
        for event in &events {
            for handler in &self.handlers {
                handler(event);
            }
        }
        self.synced
            .send_if_modified(|synced| !std::mem::replace(synced, true));
    }

    fn update_cache(&self, change: Change<K>) -> Vec<InformerEvent<K>> {
        let mut objects = self.cache.write();
        match change {
            Change::Applied(obj) => {
                let Some(key) = ObjectRef::from_obj(&obj) else {
                    return Vec::new();
                };
                let new = Arc::new(obj);
                let old = objects.insert(key, Arc::clone(&new));
                vec![InformerEvent::Applied { old, new }]
            }
            Change::Deleted(obj) => {
                let Some(key) = ObjectRef::from_obj(&obj) else {
                    return Vec::new();
                };
                let last = objects.remove(&key).unwrap_or_else(|| Arc::new(obj));
                vec![InformerEvent::Deleted(last)]
            }
            Change::Restarted(list) => {
                let mut previous = std::mem::take(&mut *objects);
                let mut fresh = HashMap::with_capacity(list.len());
                let mut events = Vec::with_capacity(list.len());
                for obj in list {
                    let Some(key) = ObjectRef::from_obj(&obj) else {
                        continue;
                    };
                    let new = Arc::new(obj);
                    let old = previous.remove(&key);
                    fresh.insert(key, Arc::clone(&new));
                    events.push(InformerEvent::Applied { old, new });
                }
                events.extend(previous.into_values().map(InformerEvent::Deleted));
                *objects = fresh;
                events
            }
        }
    }
}

#[cfg(test)]
mod tests;
