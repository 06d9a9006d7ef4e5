//! The node lifecycle controller, as kube-controller-manager's (node
//! lifecycle, taint eviction and the orphan part of pod GC), tuned for the
//! edge: a dead node's pods are replaced in seconds, not minutes.
//!
//! - A node whose heartbeat (its Lease in `kube-node-lease` renewed, or its
//!   Ready condition's lastHeartbeatTime moved) has not been seen for the
//!   grace period (`--node-monitor-grace-period`, 8 s; Kubernetes 40 s)
//!   gets every condition set to Unknown (`NodeStatusUnknown`, "Kubelet
//!   stopped posting node status.") through its status subresource. A node
//!   that never sent a heartbeat counts from when the controller first saw
//!   it. Times are the controller's own (when a heartbeat arrived), so a
//!   node's clock does not matter.
//! - Taints follow Ready: Unknown -> `node.kubernetes.io/unreachable`,
//!   False -> `node.kubernetes.io/not-ready`, each NoSchedule and NoExecute
//!   with `timeAdded`; removed when Ready is True again. The scheduler's
//!   taint filter keeps new pods off the node.
//! - NoExecute eviction: a pod not tolerating such a taint is deleted at
//!   once; one tolerating it for tolerationSeconds (every pod gets 5 s from
//!   the API server's default tolerations) is deleted that long after the
//!   taint's `timeAdded`. Eviction is an ordinary delete with the pod's own
//!   grace period; ReplicaSets then create replacements that are scheduled
//!   elsewhere. Finished pods are left alone.
//! - Pods on an unreachable node never finish terminating, since no node
//!   confirms it. Kubernetes frees them only when the Node object is
//!   deleted (pod GC) or tainted `out-of-service` by an operator; at the
//!   edge nobody is there to do that, so this controller force-deletes
//!   (gracePeriodSeconds 0) a terminating pod once its deletionTimestamp
//!   has passed and the node has been Unknown for longer than the pod's
//!   grace period. A node that comes back finds its pods gone and stops
//!   their modules, as a kubelet does.
//! - Pods bound to a node name without a Node object are force-deleted
//!   once the node has been missing for the grace period and a GET
//!   confirms it (pod GC's orphaned pods).
//!
//! The decisions are [`plan::plan`] and [`plan::orphans`] (pure,
//! unit-tested); this module wires them to the API: informers on Nodes,
//! node Leases and pods, an index of pods by node, and a reconcile per
//! node name that requeues itself at the next deadline.

mod plan;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Preconditions};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};

use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

pub use self::plan::{
    Heartbeat, MESSAGE_STATUS_UNKNOWN, Observation, Plan, REASON_STATUS_UNKNOWN, TAINT_NOT_READY,
    TAINT_UNREACHABLE, observe, orphans, plan,
};

/// The namespace of the nodes' Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// `--node-monitor-grace-period`'s default (Kubernetes: 40 s).
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(8);

const COMPONENT: &str = "node-controller";
const WORKERS: usize = 4;
/// Deadlines are rounded up by this much so a requeue lands after them.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);
const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(10),
};

/// How the controller judges nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLifecycleSettings {
    /// How long a node may be silent before it is Unknown.
    pub grace_period: Duration,
}

impl Default for NodeLifecycleSettings {
    fn default() -> Self {
        Self {
            grace_period: DEFAULT_GRACE_PERIOD,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeLifecycleError {
    #[error("writing the status of node {node}")]
    Status {
        node: String,
        #[source]
        source: ClientError,
    },
    #[error("writing the taints of node {node}")]
    Taints {
        node: String,
        #[source]
        source: ClientError,
    },
    #[error("deleting pod {pod} on node {node}")]
    DeletePod {
        node: String,
        pod: String,
        #[source]
        source: ClientError,
    },
    #[error("checking whether node {node} exists")]
    GetNode {
        node: String,
        #[source]
        source: ClientError,
    },
}

/// The pods bound to each node name, kept by the pod informer's handler.
type PodsByNode = Arc<Mutex<HashMap<String, HashSet<ObjectRef>>>>;

struct NodeLifecycle {
    client: ApiClient,
    settings: NodeLifecycleSettings,
    nodes: Cache<Node>,
    leases: Cache<Lease>,
    pods: Cache<Pod>,
    pods_by_node: PodsByNode,
    observations: Mutex<HashMap<String, Observation>>,
    /// When each node name with pods was first seen without a Node.
    missing: Mutex<HashMap<String, Timestamp>>,
    events: EventRecorder,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl NodeLifecycle {
    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        let keys: Vec<ObjectRef> = lock(&self.pods_by_node)
            .get(node)
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default();
        let mut pods: Vec<Arc<Pod>> = keys
            .iter()
            .filter_map(|k| self.pods.get(k))
            .filter(|p| node_name(p) == Some(node))
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods
    }
}

/// Keeps `index` current and returns the node names a pod change concerns.
fn index_pod(index: &PodsByNode, event: &InformerEvent<Pod>) -> Vec<ObjectRef> {
    let mut index = lock(index);
    let mut nodes: Vec<ObjectRef> = Vec::new();
    let (old, new) = match event {
        InformerEvent::Applied { old, new } => (old.as_deref(), Some(new.as_ref())),
        InformerEvent::Deleted(old) => (Some(old.as_ref()), None),
    };
    if let Some(old) = old
        && let (Some(node), Some(key)) = (node_name(old), ObjectRef::from_obj(old))
    {
        if let Some(set) = index.get_mut(node) {
            set.remove(&key);
            if set.is_empty() {
                index.remove(node);
            }
        }
        nodes.push(ObjectRef::new(None, node));
    }
    if let Some(new) = new
        && let (Some(node), Some(key)) = (node_name(new), ObjectRef::from_obj(new))
    {
        index.entry(node.to_string()).or_default().insert(key);
        let node = ObjectRef::new(None, node);
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    nodes
}

/// Runs the node lifecycle controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let mut nodes = Informer::<Node>::new(ctx.client.clone(), None, ListParams::default());
    nodes.enqueue_self(&queue);
    let mut leases = Informer::<Lease>::new(
        ctx.client.clone(),
        Some(NODE_LEASE_NAMESPACE),
        ListParams::default(),
    );
    leases.enqueue_mapped(&queue, |event| {
        let name = event.object().metadata.name.as_deref();
        name.map(|n| ObjectRef::new(None, n)).into_iter().collect()
    });
    let pods_by_node = PodsByNode::default();
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    let index = pods_by_node.clone();
    pods.enqueue_mapped(&queue, move |event| index_pod(&index, event));
    let controller = Arc::new(NodeLifecycle {
        client: ctx.client.clone(),
        settings: ctx.node_lifecycle,
        nodes: nodes.cache(),
        leases: leases.cache(),
        pods: pods.cache(),
        pods_by_node,
        observations: Mutex::default(),
        missing: Mutex::default(),
        events: ctx.event_recorder(COMPONENT),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(nodes);
    informers.start(leases);
    informers.start(pods);
    let controller = Controller::new("nodelifecycle", queue, controller).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

async fn reconcile(key: ObjectRef, ctx: Arc<NodeLifecycle>) -> Result<Action, NodeLifecycleError> {
    let now = Timestamp::now();
    let name = key.name.as_str();
    let Some(node) = ctx.nodes.get(&key) else {
        lock(&ctx.observations).remove(name);
        return reconcile_missing(&ctx, name, now).await;
    };
    lock(&ctx.missing).remove(name);
    let lease = ctx
        .leases
        .get(&ObjectRef::new(Some(NODE_LEASE_NAMESPACE), name));
    let heartbeat = Heartbeat::of(&node, lease.as_deref());
    let last_heard = {
        let mut observations = lock(&ctx.observations);
        let seen = observe(observations.get(name), heartbeat, now);
        let at = seen.at;
        observations.insert(name.to_string(), seen);
        at
    };
    let pods = ctx.pods_on(name);
    let decision = plan(&node, last_heard, &pods, now, ctx.settings.grace_period);

    let mut resource_version = node.metadata.resource_version.clone();
    if let Some(conditions) = &decision.conditions {
        tracing::info!(
            node = name,
            "node stopped posting status; marking it Unknown"
        );
        let patch = Patch::Merge(json!({
            "metadata": {"resourceVersion": resource_version},
            "status": {"conditions": conditions},
        }));
        let written: Node =
            ctx.client
                .patch_status(None, name, &patch)
                .await
                .map_err(|source| NodeLifecycleError::Status {
                    node: name.to_string(),
                    source,
                })?;
        resource_version = written.metadata.resource_version;
        ctx.events.record(
            node.as_ref(),
            EventType::Normal,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
    }
    if let Some(taints) = &decision.taints {
        tracing::info!(node = name, ?taints, "updating the node's taints");
        let taints = if taints.is_empty() {
            serde_json::Value::Null
        } else {
            json!(taints)
        };
        let patch = Patch::Merge(json!({
            "metadata": {"resourceVersion": resource_version},
            "spec": {"taints": taints},
        }));
        ctx.client
            .patch::<Node>(None, name, &patch)
            .await
            .map_err(|source| NodeLifecycleError::Taints {
                node: name.to_string(),
                source,
            })?;
    }
    for pod in &decision.evict {
        ctx.events.record(
            pod.as_ref(),
            EventType::Normal,
            "TaintManagerEviction",
            format!(
                "Marking for deletion Pod {}/{}",
                pod.metadata.namespace.as_deref().unwrap_or_default(),
                pod.metadata.name.as_deref().unwrap_or_default()
            ),
        );
        delete_pod(&ctx, name, pod, None).await?;
    }
    for pod in &decision.force_delete {
        delete_pod(&ctx, name, pod, Some(0)).await?;
    }
    Ok(decision.requeue_after.map_or(Action::done(), |d| {
        Action::requeue_after(d + DEADLINE_SLACK)
    }))
}

/// Pods bound to `name`, which has no Node: force-deleted once it has been
/// missing for the grace period and the API confirms it.
async fn reconcile_missing(
    ctx: &NodeLifecycle,
    name: &str,
    now: Timestamp,
) -> Result<Action, NodeLifecycleError> {
    let pods = ctx.pods_on(name);
    if pods.is_empty() {
        lock(&ctx.missing).remove(name);
        return Ok(Action::done());
    }
    let since = *lock(&ctx.missing).entry(name.to_string()).or_insert(now);
    let (delete, wait) = orphans(&pods, since, now, ctx.settings.grace_period);
    if let Some(wait) = wait {
        return Ok(Action::requeue_after(wait + DEADLINE_SLACK));
    }
    match ctx.client.get::<Node>(None, name).await {
        Ok(_) => return Ok(Action::done()),
        Err(e) if e.is_not_found() => {}
        Err(source) => {
            return Err(NodeLifecycleError::GetNode {
                node: name.to_string(),
                source,
            });
        }
    }
    tracing::info!(
        node = name,
        pods = delete.len(),
        "deleting the pods of a node that does not exist"
    );
    for pod in &delete {
        delete_pod(ctx, name, pod, Some(0)).await?;
    }
    Ok(Action::done())
}

/// Deletes `pod` if it is still the same object; `grace` 0 forces it.
async fn delete_pod(
    ctx: &NodeLifecycle,
    node: &str,
    pod: &Pod,
    grace: Option<i64>,
) -> Result<(), NodeLifecycleError> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let options = DeleteOptions {
        grace_period_seconds: grace,
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteOptions::default()
    };
    match ctx
        .client
        .delete::<Pod>(pod.metadata.namespace.as_deref(), name, &options)
        .await
    {
        Ok(()) => {
            tracing::info!(node, pod = name, force = grace == Some(0), "deleted a pod");
            Ok(())
        }
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
        Err(source) => Err(NodeLifecycleError::DeletePod {
            node: node.to_string(),
            pod: name.to_string(),
            source,
        }),
    }
}
