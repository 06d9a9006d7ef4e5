//! The scheduler: assigns each pending pod (no `spec.nodeName`,
//! `schedulerName` default-scheduler) to a node through the
//! `pods/{name}/binding` subresource, as kube-scheduler does.
//!
//! The algorithm is pure and separate from I/O: [`cluster`] is the
//! scheduler's own view of nodes and placed pods, [`filters`] decide
//! whether a node can take a pod (Ready, not cordoned, taints and
//! tolerations, nodeSelector and required node affinity, CPU, memory and
//! pod count, required pod anti-affinity, the node affinity of bound
//! volumes; [`volumes`] also checks a pod's PersistentVolumeClaims and
//! tells WaitForFirstConsumer claims their node), [`scores`] rank the
//! nodes that can (least allocated, spreading one owner's pods,
//! PreferNoSchedule taints), and [`algorithm`] makes one decision.
//!
//! This module wires it to the API on the controller [runtime]: informers
//! on nodes and pods keep the view current, a work queue holds the pods to
//! schedule, and reconciling a pod decides, records the decision in the
//! view at once (an *assumed* binding, so a burst of pods spreads before
//! the watch catches up), and binds. A pod that fits nowhere gets
//! `PodScheduled=False` (reason Unschedulable), a FailedScheduling event
//! with Kubernetes' message, and is retried after a backoff of 1 s doubling
//! to 30 s, or at once when a node is added or changes in a way that
//! matters, or a placed pod goes away.
//!
//! Differences from kube-scheduler: no preemption, no preferred node or
//! pod affinity, no required pod affinity, no topology spread constraints;
//! a pod affinity term's non-empty `namespaceSelector` is ignored (its
//! `namespaces`, or the pod's own namespace, apply).
//!
//! [runtime]: crate::controllers::runtime

pub mod algorithm;
mod binder;
pub mod cluster;
pub mod filters;
pub mod resources;
pub mod scores;
#[cfg(test)]
mod testing;
pub mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use wasmpod_api::client::{ApiClient, ListParams};

use self::cluster::{ClusterState, PodInfo, readiness_taint};
use crate::controllers::ControllerContext;
use crate::controllers::events::EventRecorder;
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

/// The `schedulerName` this scheduler answers to.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Unschedulable pods are retried after 1 s, doubling to 30 s.
const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(30),
};

/// Pods decided and bound at once: decisions are made one at a time under
/// the view's lock; bindings overlap.
const WORKERS: usize = 64;

/// Why a pod was not bound this time.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Unschedulable(String),
    #[error("binding {pod} to {node}")]
    Bind {
        pod: ObjectRef,
        node: String,
        #[source]
        source: wasmpod_api::client::ClientError,
    },
    #[error("selecting node {node} for the claims of {pod}")]
    SelectNode {
        pod: ObjectRef,
        node: String,
        #[source]
        source: wasmpod_api::client::ClientError,
    },
}

/// Everything a scheduling reconcile reads and writes.
pub(crate) struct Scheduler {
    client: ApiClient,
    pods: Cache<Pod>,
    state: Mutex<ClusterState>,
    /// Pods that fit nowhere, with the message last reported for each.
    unschedulable: Mutex<HashMap<ObjectRef, String>>,
    queue: WorkQueue<ObjectRef>,
    events: EventRecorder,
    volumes: volumes::VolumeCaches,
}

/// Runs the scheduler until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let mut nodes = Informer::<Node>::new(ctx.client.clone(), None, ListParams::default());
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    let mut claims =
        Informer::<PersistentVolumeClaim>::new(ctx.client.clone(), None, ListParams::default());
    let mut pvs =
        Informer::<PersistentVolume>::new(ctx.client.clone(), None, ListParams::default());
    let mut classes =
        Informer::<StorageClass>::new(ctx.client.clone(), None, ListParams::default());
    let scheduler = Arc::new(Scheduler {
        client: ctx.client.clone(),
        pods: pods.cache(),
        state: Mutex::default(),
        unschedulable: Mutex::default(),
        queue: queue.clone(),
        events: ctx.event_recorder(SCHEDULER_NAME),
        volumes: volumes::VolumeCaches {
            claims: claims.cache(),
            volumes: pvs.cache(),
            classes: classes.cache(),
        },
    });
    nodes.on_event({
        let s = Arc::clone(&scheduler);
        move |event| s.on_node(event)
    });
    pods.on_event({
        let s = Arc::clone(&scheduler);
        move |event| s.on_pod(event)
    });
    // A claim created or bound, or a volume or class appearing, may let
    // a pod waiting for it fit.
    claims.on_event({
        let s = Arc::clone(&scheduler);
        move |_| s.retry_unschedulable()
    });
    pvs.on_event({
        let s = Arc::clone(&scheduler);
        move |_| s.retry_unschedulable()
    });
    classes.on_event({
        let s = Arc::clone(&scheduler);
        move |_| s.retry_unschedulable()
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(nodes);
    informers.start(pods);
    informers.start(claims);
    informers.start(pvs);
    informers.start(classes);
    let controller = Controller::new("scheduler", queue, scheduler).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

/// True for a pod this scheduler should place now.
fn needs_scheduling(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else {
        return false;
    };
    spec.node_name.as_deref().is_none_or(str::is_empty)
        && spec.scheduler_name.as_deref().unwrap_or(SCHEDULER_NAME) == SCHEDULER_NAME
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn bound_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Whether a node change can let a pending pod fit (heartbeats cannot).
fn node_changed(old: &Node, new: &Node) -> bool {
    old.metadata.labels != new.metadata.labels
        || old.spec != new.spec
        || old.status.as_ref().and_then(|s| s.allocatable.as_ref())
            != new.status.as_ref().and_then(|s| s.allocatable.as_ref())
        || readiness_taint(old) != readiness_taint(new)
}

impl Scheduler {
    fn state(&self) -> MutexGuard<'_, ClusterState> {
        // Every update leaves the view consistent before anything can panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<ObjectRef, String>> {
        self.unschedulable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Something freed room or changed a node: try the unschedulable pods
    /// again now.
    fn retry_unschedulable(&self) {
        for key in self.pending().keys() {
            self.queue.add(key.clone());
        }
    }

    fn on_node(&self, event: &InformerEvent<Node>) {
        match event {
            InformerEvent::Applied { old, new } => {
                self.state().set_node(new);
                if old.as_ref().is_none_or(|old| node_changed(old, new)) {
                    self.retry_unschedulable();
                }
            }
            InformerEvent::Deleted(node) => {
                if let Some(name) = &node.metadata.name {
                    self.state().remove_node(name);
                }
            }
        }
    }

    fn on_pod(&self, event: &InformerEvent<Pod>) {
        let pod = event.object();
        let Some(key) = ObjectRef::from_obj(pod.as_ref()) else {
            return;
        };
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        match event {
            InformerEvent::Deleted(_) => {
                self.pending().remove(&key);
                let freed = {
                    let mut state = self.state();
                    state.placement(&key, uid).is_some() && state.unplace(&key)
                };
                if freed {
                    self.retry_unschedulable();
                }
            }
            InformerEvent::Applied { old, new } => {
                if is_terminal(new) {
                    self.pending().remove(&key);
                    let freed = {
                        let mut state = self.state();
                        state.placement(&key, uid).is_some() && state.unplace(&key)
                    };
                    if freed {
                        self.retry_unschedulable();
                    }
                } else if let Some(node) = bound_node(new) {
                    self.pending().remove(&key);
                    let mut state = self.state();
                    if state.placement(&key, uid) != Some(node)
                        && let Some(info) = PodInfo::new(new)
                    {
                        state.place(Arc::new(info), node);
                    }
                } else if needs_scheduling(new)
                    && old.as_ref().is_none_or(|old| {
                        old.metadata.uid != new.metadata.uid
                            || old.metadata.labels != new.metadata.labels
                            || old.spec != new.spec
                    })
                {
                    self.queue.add(key);
                }
            }
        }
    }
}

/// Schedules one pod: decide, assume, bind.
async fn reconcile(key: ObjectRef, s: Arc<Scheduler>) -> Result<Action, ScheduleError> {
    let pod = match s.pods.get(&key) {
        Some(pod) if needs_scheduling(&pod) => pod,
        _ => {
            s.pending().remove(&key);
            return Ok(Action::Done);
        }
    };
    let (Some(spec), Some(mut info)) = (pod.spec.as_ref(), PodInfo::new(&pod)) else {
        return Ok(Action::Done);
    };
    let claims = match volumes::pod_claims(&pod, &s.volumes) {
        Ok(claims) => claims,
        Err(reason) => {
            let nodes = s.state().nodes.values().filter(|n| n.exists).count();
            let message = volumes::unschedulable_message(nodes, &reason);
            return Err(s.report_unschedulable(&pod, &key, message).await);
        }
    };
    info.volume_affinity = claims.affinities;
    let info = Arc::new(info);
    let decision = {
        let mut state = s.state();
        if state.placement(&key, &info.uid).is_some() {
            // Assumed already; its binding is in flight or done.
            return Ok(Action::Done);
        }
        let decision = algorithm::schedule(spec, &info, &state);
        if let Ok(node) = &decision {
            state.place(Arc::clone(&info), node);
        }
        decision
    };
    match decision {
        Ok(node) => {
            s.select_node(&pod, &key, &claims.delayed, &node).await?;
            s.bind(&pod, &key, &node).await
        }
        Err(fit) => Err(s.report_unschedulable(&pod, &key, fit.to_string()).await),
    }
}
