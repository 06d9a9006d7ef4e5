//! The garbage collector: deletes objects whose owners are gone and carries
//! out the Foreground and Orphan deletion policies, as
//! kube-controller-manager's garbagecollector does.
//!
//! - Background: an object whose every ownerReference dangles (no object
//!   of that kind and name has the referenced uid) is deleted. An owner
//!   missing from the watches is read from the API before it is presumed
//!   gone, since each kind's watch runs at its own pace.
//! - Foreground: while an owner is being deleted with the
//!   `foregroundDeletion` finalizer, its dependents are deleted (in the
//!   foreground themselves if they own something); once no dependent with
//!   `blockOwnerDeletion: true` is left, the finalizer is removed.
//! - Orphan: an owner being deleted with the `orphan` finalizer is removed
//!   from every dependent's ownerReferences, then the finalizer is removed.
//!
//! The kinds followed are [`kinds::KINDS`], watched down to their metadata
//! into one [`graph::Graph`] (uid -> object, owner uid -> dependents). Work
//! queue keys are object uids. The decision per object is [`plan::plan`].

mod graph;
mod kinds;
mod plan;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ObjectMeta, OwnerReference, Preconditions,
};
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, Patch};

use self::graph::{Graph, Node};
use self::plan::{OwnerState, Propagation, plan};
use crate::controllers::ControllerContext;
use crate::controllers::runtime::{Action, Backoff, Controller, Informers, ObjectRef, WorkQueue};

const WORKERS: usize = 4;
const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(60),
};

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("reading owner {kind} {name:?} of {object}")]
    ReadOwner {
        object: String,
        kind: &'static str,
        name: String,
        #[source]
        source: ClientError,
    },
    #[error("deleting {kind} {object}")]
    Delete {
        kind: &'static str,
        object: String,
        #[source]
        source: ClientError,
    },
    #[error("updating {what} of {kind} {object}")]
    Patch {
        what: &'static str,
        kind: &'static str,
        object: String,
        #[source]
        source: ClientError,
    },
}

struct GarbageCollector {
    client: ApiClient,
    graph: Arc<Mutex<Graph>>,
}

/// Runs the garbage collector until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let graph = Arc::new(Mutex::new(Graph::default()));
    let mut informers = Informers::new(&ctx.stop);
    for kind in kinds::KINDS {
        kind.start(&ctx.client, &graph, &queue, &mut informers);
    }
    let gc = Arc::new(GarbageCollector {
        client: ctx.client.clone(),
        graph,
    });
    let controller = Controller::new("garbagecollector", queue, gc).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

async fn reconcile(key: ObjectRef, gc: Arc<GarbageCollector>) -> Result<Action, GcError> {
    let uid = key.name.as_str();
    let (node, dependents) = {
        let graph = graph::lock(&gc.graph);
        let Some(node) = graph.node(uid).cloned() else {
            return Ok(Action::done());
        };
        (node, graph.dependents(uid))
    };
    let mut owners = Vec::new();
    if node.meta.deletion_timestamp.is_none() {
        for owner in node.meta.owner_references.iter().flatten() {
            owners.push(gc.owner_state(&node, owner).await?);
        }
    }
    let dependent_metas: Vec<&ObjectMeta> = dependents.iter().map(|d| d.meta.as_ref()).collect();
    let decision = plan(&node.meta, &owners, &dependent_metas);
    if decision.is_empty() {
        return Ok(Action::done());
    }

    for dependent in dependents.iter().filter(|d| {
        d.meta
            .uid
            .as_ref()
            .is_some_and(|u| decision.orphan.contains(u))
    }) {
        let refs = plan::without_owner(&dependent.meta, uid);
        gc.patch_metadata(dependent, "ownerReferences", list_or_null(&refs))
            .await?;
    }
    if let Some(finalizer) = decision.remove_finalizer {
        tracing::debug!(object = %describe(&node), finalizer, "removing finalizer");
        let rest = plan::without_finalizer(&node.meta, finalizer);
        gc.patch_metadata(&node, "finalizers", list_or_null(&rest))
            .await?;
    }
    if let Some(keep) = &decision.keep_owner_references {
        gc.patch_metadata(&node, "ownerReferences", list_or_null(keep))
            .await?;
    }
    if let Some(propagation) = decision.delete {
        tracing::info!(
            object = %describe(&node),
            policy = propagation.policy(),
            "deleting an object whose owners are gone or being deleted"
        );
        gc.delete(&node, propagation).await?;
    }
    Ok(Action::done())
}

impl GarbageCollector {
    /// What became of the object `owner` names, as seen from `dependent`.
    async fn owner_state(
        &self,
        dependent: &Node,
        owner: &OwnerReference,
    ) -> Result<OwnerState, GcError> {
        let Some(kind) = kinds::find(&owner.api_version, &owner.kind) else {
            return Ok(OwnerState::Solid);
        };
        let namespace = if kind.namespaced() {
            match dependent.meta.namespace.as_deref() {
                Some(ns) => Some(ns),
                // A cluster-scoped object cannot be owned by a namespaced one.
                None => return Ok(OwnerState::Absent),
            }
        } else {
            None
        };
        let cached = graph::lock(&self.graph).node(&owner.uid).and_then(|n| {
            let same = n.kind.kind() == kind.kind()
                && n.kind.group() == kind.group()
                && n.meta.name.as_deref() == Some(owner.name.as_str())
                && n.meta.namespace.as_deref() == namespace;
            same.then(|| OwnerState::of(&n.meta))
        });
        if let Some(state) = cached {
            return Ok(state);
        }
        // Not (yet) watched: ask the API before presuming it gone.
        match kind.get(&self.client, namespace, &owner.name).await {
            Ok(meta) if meta.uid.as_deref() == Some(owner.uid.as_str()) => {
                Ok(OwnerState::of(&meta))
            }
            Ok(_) => Ok(OwnerState::Absent),
            Err(e) if e.is_not_found() => Ok(OwnerState::Absent),
            Err(source) => Err(GcError::ReadOwner {
                object: describe(dependent),
                kind: kind.kind(),
                name: owner.name.clone(),
                source,
            }),
        }
    }

    /// Sets one metadata field of `node`, only if it is still at the
    /// resourceVersion the decision was made on.
    async fn patch_metadata(
        &self,
        node: &Node,
        field: &'static str,
        value: serde_json::Value,
    ) -> Result<(), GcError> {
        let Some(name) = node.meta.name.as_deref() else {
            return Ok(());
        };
        let patch = Patch::Merge(json!({
            "metadata": {
                "resourceVersion": node.meta.resource_version,
                (field): value,
            }
        }));
        match node
            .kind
            .patch(&self.client, node.meta.namespace.as_deref(), name, &patch)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map_err(|source| GcError::Patch {
                what: field,
                kind: node.kind.kind(),
                object: describe(node),
                source,
            }),
        }
    }

    async fn delete(&self, node: &Node, propagation: Propagation) -> Result<(), GcError> {
        let Some(name) = node.meta.name.as_deref() else {
            return Ok(());
        };
        let options = DeleteOptions {
            propagation_policy: Some(propagation.policy().into()),
            preconditions: Some(Preconditions {
                uid: node.meta.uid.clone(),
                resource_version: None,
            }),
            ..DeleteOptions::default()
        };
        match node
            .kind
            .delete(&self.client, node.meta.namespace.as_deref(), name, &options)
            .await
        {
            // Gone already, or replaced by a namesake: nothing to do.
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
            other => other.map_err(|source| GcError::Delete {
                kind: node.kind.kind(),
                object: describe(node),
                source,
            }),
        }
    }
}

/// `namespace/name` of a node, for logs and errors.
fn describe(node: &Node) -> String {
    let name = node.meta.name.as_deref().unwrap_or_default();
    match node.meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// A merge patch value setting a list, or removing the field when empty.
fn list_or_null<T: serde::Serialize>(items: &[T]) -> serde_json::Value {
    if items.is_empty() {
        serde_json::Value::Null
    } else {
        json!(items)
    }
}
