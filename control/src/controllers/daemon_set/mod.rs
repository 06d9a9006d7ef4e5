//! The DaemonSet controller (apps/v1): one pod per eligible node, as
//! kube-controller-manager's daemon controller does.
//!
//! A node is eligible when it matches the template's nodeSelector and
//! required node affinity and the pod, with the tolerations Kubernetes
//! adds to every daemon pod, tolerates its NoSchedule and NoExecute
//! taints (the scheduler's own filters decide this). As in Kubernetes
//! since 1.12, pods are created unbound with a required node affinity on
//! `metadata.name` and the scheduler binds them; they carry the template's
//! labels plus `controller-revision-hash` (the Deployment controller's
//! template hash). Failed pods and pods on nodes no longer eligible are
//! deleted; a template change replaces pods node by node under
//! `RollingUpdate` (at most maxUnavailable nodes without an available
//! up-to-date pod), or only as they are deleted under `OnDelete`.
//!
//! The decisions are [`plan::plan`]; this module wires informers on
//! DaemonSets, pods and nodes to a reconcile that makes the API calls and
//! writes the status `kubectl rollout status` reads. ControllerRevisions
//! are not written, so `kubectl rollout history|undo` have nothing to
//! show for a DaemonSet; maxSurge is not honoured (treated as 0).

pub mod plan;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, Preconditions};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};
use wasmpod_api::selector::LabelSelector;

use crate::controllers::ControllerContext;
use crate::controllers::deployment::plan::template_hash;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::replicaset::expectations::Expectations;
use crate::controllers::replicaset::plan::{
    controller_uid, is_terminating, next_available_in, selects,
};
use crate::controllers::replicaset::{adopt, pod_from_template, release};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

const COMPONENT: &str = "daemonset-controller";
const WORKERS: usize = 4;

/// A failed reconcile: an API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct DaemonSetError {
    what: String,
    #[source]
    source: ClientError,
}

fn api_error(what: impl Into<String>) -> impl FnOnce(ClientError) -> DaemonSetError {
    let what = what.into();
    move |source| DaemonSetError { what, source }
}

struct Ctx {
    client: ApiClient,
    daemon_sets: Cache<DaemonSet>,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
    expectations: Expectations,
    events: EventRecorder,
}

/// Runs the DaemonSet controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(Backoff::default());
    let mut daemon_sets =
        Informer::<DaemonSet>::new(ctx.client.clone(), None, ListParams::default());
    daemon_sets.enqueue_self(&queue);
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    pods.enqueue_controller(&queue, "DaemonSet");
    let ds_cache = daemon_sets.cache();
    pods.enqueue_mapped(&queue, move |event| orphan_owners(&ds_cache, event));
    let mut nodes = Informer::<Node>::new(ctx.client.clone(), None, ListParams::default());
    let ds_cache = daemon_sets.cache();
    // A node that appears, goes, or changes labels or taints may change
    // where every DaemonSet runs.
    nodes.enqueue_mapped(&queue, move |event| {
        if node_placement_changed(event) {
            ds_cache
                .list()
                .iter()
                .filter_map(|ds| ObjectRef::from_obj(ds.as_ref()))
                .collect()
        } else {
            Vec::new()
        }
    });
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        daemon_sets: daemon_sets.cache(),
        pods: pods.cache(),
        nodes: nodes.cache(),
        expectations: Expectations::default(),
        events: ctx.event_recorder(COMPONENT),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(daemon_sets);
    informers.start(pods);
    informers.start(nodes);
    let controller = Controller::new("daemonset", queue, state).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

/// Whether a node change can change which daemon pods belong on it.
fn node_placement_changed(event: &InformerEvent<Node>) -> bool {
    match event {
        InformerEvent::Applied {
            old: Some(old),
            new,
        } => {
            let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
            old.metadata.labels != new.metadata.labels || taints(old) != taints(new)
        }
        InformerEvent::Applied { old: None, .. } | InformerEvent::Deleted(_) => true,
    }
}

/// The DaemonSets that select a pod without a controller.
fn orphan_owners(daemon_sets: &Cache<DaemonSet>, event: &InformerEvent<Pod>) -> Vec<ObjectRef> {
    let pod = event.object();
    if controller_uid(pod.as_ref()).is_some() || is_terminating(pod) {
        return Vec::new();
    }
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    daemon_sets
        .list_namespace(ns)
        .iter()
        .filter(|ds| selector_of(ds).is_ok_and(|s| selects(&s, pod.metadata.labels.as_ref())))
        .filter_map(|ds| ObjectRef::from_obj(ds.as_ref()))
        .collect()
}

fn selector_of(ds: &DaemonSet) -> Result<LabelSelector, wasmpod_api::selector::SelectorError> {
    match &ds.spec {
        Some(spec) => LabelSelector::from_api(&spec.selector),
        None => Ok(LabelSelector::everything()),
    }
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, DaemonSetError> {
    let Some(ds) = ctx.daemon_sets.get(&key) else {
        ctx.expectations.forget(&key);
        return Ok(Action::done());
    };
    let (Some(namespace), Some(spec)) = (ds.metadata.namespace.as_deref(), ds.spec.as_ref()) else {
        return Ok(Action::done());
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::done());
    }
    let selector = match selector_of(&ds) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%key, error = %e, "invalid selector; not managing pods");
            return Ok(Action::done());
        }
    };
    let collisions = ds
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let hash = template_hash(&spec.template, collisions);
    let pods = ctx.pods.list_namespace(namespace);
    let now = Timestamp::now();
    let plan = plan::plan(&ds, &selector, &hash, &ctx.nodes.list(), &pods, now);

    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    for pod in &plan.release {
        release(&ctx.client, pod.as_ref(), uid)
            .await
            .map_err(api_error(format!("releasing pod {:?}", pod.metadata.name)))?;
    }
    for pod in &plan.adopt {
        adopt(&ctx.client, pod.as_ref(), ds.as_ref())
            .await
            .map_err(api_error(format!("adopting pod {:?}", pod.metadata.name)))?;
    }

    let seen = ctx.expectations.satisfied(&key, |k| {
        ctx.pods.get(k).is_some_and(|p| !is_terminating(&p))
    });
    let mut failure = None;
    if seen {
        failure = sync_nodes(&ctx, &key, &ds, &hash, &plan).await.err();
    }

    if !same_status(ds.status.as_ref(), &plan.status) {
        write_status(&ctx.client, &key, &plan.status).await?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let owned: Vec<Arc<Pod>> = pods
        .into_iter()
        .filter(|p| controller_uid(p.as_ref()) == Some(uid))
        .collect();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    Ok(match next_available_in(&owned, min_ready, now) {
        Some(secs) => Action::requeue_after(Duration::from_secs(secs)),
        None => Action::done(),
    })
}

/// Creates the missing pods and deletes the unwanted ones, remembering
/// both until the pod cache shows them.
async fn sync_nodes(
    ctx: &Ctx,
    key: &ObjectRef,
    ds: &DaemonSet,
    hash: &str,
    plan: &plan::Plan,
) -> Result<(), DaemonSetError> {
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(());
    };
    let creates = plan.create.iter().map(|node| {
        let template = plan::template_for_node(&spec.template, hash, node);
        let pod = pod_from_template(ds, &template);
        async move {
            (
                node,
                ctx.client.create(key.namespace.as_deref(), &pod).await,
            )
        }
    });
    let deletes = plan.delete.iter().map(|pod| async move {
        let options = DeleteOptions {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteOptions::default()
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let result = ctx
            .client
            .delete::<Pod>(pod.metadata.namespace.as_deref(), name, &options)
            .await;
        (pod, result)
    });
    let (created, deleted) = futures::join!(join_all(creates), join_all(deletes));

    let mut error = None;
    let mut expect_created = Vec::new();
    for (node, result) in created {
        match result {
            Ok(pod) => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                ctx.events.record(
                    ds,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                );
                expect_created.extend(ObjectRef::from_obj(&pod));
            }
            Err(e) => {
                ctx.events.record(
                    ds,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                error = Some(api_error(format!(
                    "creating a pod for node {node} of {key}"
                ))(e));
            }
        }
    }
    let mut expect_deleted = Vec::new();
    for (pod, result) in deleted {
        let name = pod.metadata.name.clone().unwrap_or_default();
        match result {
            Ok(()) => {
                ctx.events.record(
                    ds,
                    EventType::Normal,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                );
                expect_deleted.extend(ObjectRef::from_obj(pod.as_ref()));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => error = Some(api_error(format!("deleting pod {name} of {key}"))(e)),
        }
    }
    ctx.expectations.expect(key, expect_created, expect_deleted);
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether the status already says what `want` says (conditions and
/// collisionCount are not this controller's to change).
fn same_status(have: Option<&DaemonSetStatus>, want: &DaemonSetStatus) -> bool {
    let Some(have) = have else {
        return false;
    };
    have.current_number_scheduled == want.current_number_scheduled
        && have.desired_number_scheduled == want.desired_number_scheduled
        && have.number_misscheduled == want.number_misscheduled
        && have.number_ready == want.number_ready
        && have.number_available.unwrap_or(0) == want.number_available.unwrap_or(0)
        && have.number_unavailable.unwrap_or(0) == want.number_unavailable.unwrap_or(0)
        && have.updated_number_scheduled.unwrap_or(0) == want.updated_number_scheduled.unwrap_or(0)
        && have.observed_generation == want.observed_generation
}

async fn write_status(
    client: &ApiClient,
    key: &ObjectRef,
    status: &DaemonSetStatus,
) -> Result<(), DaemonSetError> {
    let patch = Patch::Merge(json!({
        "status": {
            "currentNumberScheduled": status.current_number_scheduled,
            "desiredNumberScheduled": status.desired_number_scheduled,
            "numberMisscheduled": status.number_misscheduled,
            "numberReady": status.number_ready,
            "numberAvailable": status.number_available,
            "numberUnavailable": status.number_unavailable,
            "updatedNumberScheduled": status.updated_number_scheduled,
            "observedGeneration": status.observed_generation,
        }
    }));
    match client
        .patch_status::<DaemonSet>(key.namespace.as_deref(), &key.name, &patch)
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other
            .map(|_| ())
            .map_err(api_error(format!("updating the status of {key}"))),
    }
}
