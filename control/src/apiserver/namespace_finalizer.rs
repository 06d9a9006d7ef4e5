//! Empties a terminating namespace and then removes it: every namespaced
//! object in it is deleted (with the usual grace periods and finalizers),
//! and once none is left the `kubernetes` finalizer is dropped from the
//! namespace's `spec.finalizers` and the namespace itself is removed.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use wasmpod_api::meta;
use wasmpod_api::registry::{self, ResourceType};

use super::ApiState;
use super::delete::{DeleteOptions, delete_one};
use super::request::{Query, ResourceRequest, Verb};
use crate::store::{Key, StoreError};

const RETRY: Duration = Duration::from_secs(1);

/// Runs until the channel closes: finalizes namespaces named on it and
/// those found terminating at start.
pub async fn run(state: ApiState, mut wake: mpsc::UnboundedReceiver<String>) {
    let mut pending: HashSet<String> = HashSet::new();
    match state.store.list("namespaces", None, None, None).await {
        Ok(list) => pending.extend(
            list.items
                .iter()
                .filter(|s| meta::is_deleting(&s.object))
                .filter_map(|s| meta::name(&s.object).map(str::to_string)),
        ),
        Err(e) => tracing::warn!(error = %e, "listing namespaces to finalize"),
    }
    loop {
        let mut done = Vec::new();
        for ns in &pending {
            match finalize(&state, ns).await {
                Ok(true) => done.push(ns.clone()),
                Ok(false) => {}
                Err(e) => tracing::warn!(namespace = %ns, error = %e, "finalizing namespace"),
            }
        }
        for ns in done {
            pending.remove(&ns);
        }
        let next = if pending.is_empty() {
            wake.recv().await
        } else {
            match tokio::time::timeout(RETRY, wake.recv()).await {
                Ok(v) => v,
                Err(_) => continue,
            }
        };
        match next {
            Some(ns) => {
                pending.insert(ns);
            }
            None => return,
        }
    }
}

/// One pass over a terminating namespace. True when it is gone.
async fn finalize(state: &ApiState, ns: &str) -> Result<bool, StoreError> {
    let key = Key::new("namespaces", "", ns);
    let Some(stored) = state.store.get(&key).await? else {
        return Ok(true);
    };
    if !meta::is_deleting(&stored.object) {
        return Ok(true);
    }
    let mut remaining = 0;
    for resource in registry::RESOURCES.iter().filter(|r| r.namespaced) {
        let list = state
            .store
            .list(&resource.key(), Some(ns), None, None)
            .await?;
        remaining += list.items.len();
        let req = request(resource, Some(ns.to_string()));
        for item in list.items.iter().filter(|s| !meta::is_deleting(&s.object)) {
            if let Err(e) = delete_one(state, &req, item, &DeleteOptions::default(), false).await {
                tracing::debug!(namespace = %ns, error = %e, "deleting namespace content");
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let mut ns_obj = stored.object.as_ref().clone();
    if let Some(spec) = ns_obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("finalizers".into(), Value::Array(Vec::new()));
    }
    if meta::finalizers(&ns_obj).is_empty() {
        match state.store.delete(key, Some(stored.revision)).await {
            Ok(_) | Err(StoreError::NotFound(_)) => {
                tracing::info!(namespace = %ns, "namespace removed");
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    } else {
        match state.store.update(key, ns_obj, Some(stored.revision)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn request(resource: &'static ResourceType, namespace: Option<String>) -> ResourceRequest {
    ResourceRequest {
        resource,
        namespace,
        name: None,
        subresource: None,
        verb: Verb::Delete,
        query: Query::default(),
    }
}
