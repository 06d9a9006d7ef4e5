//! The ReplicaSet (apps/v1) and ReplicationController (v1) controllers:
//! keep `spec.replicas` active pods that match the selector and are
//! controlled by the owner, as kube-controller-manager's replicaset
//! controller does.
//!
//! One generic controller serves both kinds through [`ReplicaOwner`]. A
//! reconcile reads the owner and the pods of its namespace from informer
//! caches, asks [`plan`] what to do (adopt matching orphans, release owned
//! pods whose labels no longer match, create or delete pods), does it, and
//! writes `status` (replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas, observedGeneration) through the status subresource.
//! Pods are created in slow-start batches (1, 2, 4, ...) of up to
//! [`plan::BURST_REPLICAS`] per reconcile, and the owner is not counted
//! again until its caches show what it did ([`expectations`]). Terminating
//! and finished pods do not count. Extra pods are deleted in kube's order:
//! unscheduled, pending, not ready, newest first.

pub mod expectations;
pub mod owner;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};

use self::expectations::Expectations;
pub use self::owner::{ReplicaOwner, adopt, controller_ref, release};
use self::plan::{ReplicaCounts, is_terminating};
use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

/// Owners reconciled at once.
const WORKERS: usize = 8;

/// Pod creations in flight at once within one slow-start batch.
const CREATE_CONCURRENCY: usize = 64;

/// A failed reconcile: an API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct ReplicaSetError {
    what: String,
    #[source]
    source: ClientError,
}

fn api_error(what: impl Into<String>) -> impl FnOnce(ClientError) -> ReplicaSetError {
    let what = what.into();
    move |source| ReplicaSetError { what, source }
}

struct Ctx<O> {
    client: ApiClient,
    owners: Cache<O>,
    pods: Cache<Pod>,
    expectations: Expectations,
    events: EventRecorder,
}

/// Runs the ReplicaSet controller until `ctx.stop`.
pub async fn run_replica_sets(ctx: ControllerContext) {
    run::<ReplicaSet>(ctx, "replicaset-controller").await;
}

/// Runs the ReplicationController controller until `ctx.stop`.
pub async fn run_replication_controllers(ctx: ControllerContext) {
    run::<ReplicationController>(ctx, "replication-controller").await;
}

async fn run<O: ReplicaOwner>(ctx: ControllerContext, name: &'static str) {
    let queue = WorkQueue::new(Backoff::default());
    let mut owners = Informer::<O>::new(ctx.client.clone(), None, ListParams::default());
    owners.enqueue_self(&queue);
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    pods.enqueue_controller(&queue, O::KIND);
    let owner_cache = owners.cache();
    // An orphan that appears or changes wakes every owner that selects it.
    pods.enqueue_mapped(&queue, move |event| orphan_owners(&owner_cache, event));
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        owners: owners.cache(),
        pods: pods.cache(),
        expectations: Expectations::default(),
        events: ctx.event_recorder(name),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(owners);
    informers.start(pods);
    let controller = Controller::new(name, queue, state).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile::<O>, |_key, _error, _ctx| {
            Action::Backoff
        })
        .await;
}

/// The owners that select a pod without a controller.
fn orphan_owners<O: ReplicaOwner>(owners: &Cache<O>, event: &InformerEvent<Pod>) -> Vec<ObjectRef> {
    let pod = event.object();
    if plan::controller_uid(pod.as_ref()).is_some() || is_terminating(pod) {
        return Vec::new();
    }
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    owners
        .list_namespace(ns)
        .iter()
        .filter(|o| {
            o.label_selector()
                .is_ok_and(|s| plan::selects(&s, pod.metadata.labels.as_ref()))
        })
        .filter_map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

async fn reconcile<O: ReplicaOwner>(
    key: ObjectRef,
    ctx: Arc<Ctx<O>>,
) -> Result<Action, ReplicaSetError> {
    let Some(owner) = ctx.owners.get(&key) else {
        ctx.expectations.forget(&key);
        return Ok(Action::done());
    };
    let meta = owner.metadata();
    let (Some(namespace), Some(uid)) = (meta.namespace.as_deref(), meta.uid.as_deref()) else {
        return Ok(Action::done());
    };
    let selector = match owner.label_selector() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%key, error = %e, "invalid selector; not managing pods");
            return Ok(Action::done());
        }
    };
    let deleting = meta.deletion_timestamp.is_some();
    let pods = ctx.pods.list_namespace(namespace);
    let plan = plan::plan(uid, &selector, owner.desired(), &pods, !deleting);

    for pod in &plan.release {
        release(&ctx.client, pod.as_ref(), uid)
            .await
            .map_err(api_error(format!("releasing pod {:?}", pod.metadata.name)))?;
    }
    for pod in &plan.adopt {
        adopt(&ctx.client, pod.as_ref(), owner.as_ref())
            .await
            .map_err(api_error(format!("adopting pod {:?}", pod.metadata.name)))?;
    }

    let mut failure = None;
    let seen = ctx.expectations.satisfied(&key, |k| {
        ctx.pods.get(k).is_some_and(|p| !is_terminating(&p))
    });
    if seen && !deleting {
        if plan.create > 0 {
            failure = create_pods(&ctx, &key, owner.as_ref(), plan.create)
                .await
                .err();
        } else if !plan.delete.is_empty() {
            failure = delete_pods(&ctx, &key, owner.as_ref(), &plan.delete)
                .await
                .err();
        }
    }

    let now = Timestamp::now();
    let template_labels = owner
        .pod_template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let counts = plan::counts(
        &plan.active,
        template_labels,
        owner.min_ready_seconds(),
        meta.generation.unwrap_or(0),
        now,
    );
    if counts != owner.reported() {
        write_status::<O>(&ctx.client, &key, counts).await?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(
        match plan::next_available_in(&plan.active, owner.min_ready_seconds(), now) {
            Some(secs) => Action::requeue_after(Duration::from_secs(secs)),
            None => Action::done(),
        },
    )
}

async fn write_status<O: ReplicaOwner>(
    client: &ApiClient,
    key: &ObjectRef,
    counts: ReplicaCounts,
) -> Result<(), ReplicaSetError> {
    let patch = Patch::Merge(json!({
        "status": {
            "replicas": counts.replicas,
            "fullyLabeledReplicas": counts.fully_labeled,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.available,
            "observedGeneration": counts.observed_generation,
        }
    }));
    match client
        .patch_status::<O>(key.namespace.as_deref(), &key.name, &patch)
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other
            .map(|_| ())
            .map_err(api_error(format!("updating the status of {key}"))),
    }
}

/// A pod from `owner`'s template: its labels and annotations, generateName
/// `<owner>-`, the owner's namespace, and the owner as controller.
pub fn pod_from_template<O: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>>(
    owner: &O,
    template: &PodTemplateSpec,
) -> Pod {
    let meta = owner.metadata();
    let template_meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", meta.name.as_deref().unwrap_or_default())),
            namespace: meta.namespace.clone(),
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: controller_ref(owner).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

async fn create_pods<O: ReplicaOwner>(
    ctx: &Ctx<O>,
    key: &ObjectRef,
    owner: &O,
    count: usize,
) -> Result<(), ReplicaSetError> {
    let Some(template) = owner.pod_template() else {
        return Ok(());
    };
    let pod = pod_from_template(owner, template);
    let namespace = key.namespace.as_deref();
    for batch in plan::slow_start_batches(count) {
        let mut results = Vec::with_capacity(batch);
        let mut left = batch;
        while left > 0 {
            let n = left.min(CREATE_CONCURRENCY);
            left -= n;
            results.extend(join_all((0..n).map(|_| ctx.client.create(namespace, &pod))).await);
        }
        let mut created = Vec::new();
        let mut error = None;
        for result in results {
            match result {
                Ok(p) => {
                    if let Some(k) = ObjectRef::from_obj(&p) {
                        created.push(k);
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        for k in &created {
            ctx.events.record(
                owner,
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created pod: {}", k.name),
            );
        }
        ctx.expectations.expect(key, created, []);
        if let Some(e) = error {
            ctx.events.record(
                owner,
                EventType::Warning,
                "FailedCreate",
                format!("Error creating: {e}"),
            );
            return Err(api_error(format!("creating pods for {key}"))(e));
        }
    }
    Ok(())
}

async fn delete_pods<O: ReplicaOwner>(
    ctx: &Ctx<O>,
    key: &ObjectRef,
    owner: &O,
    victims: &[Arc<Pod>],
) -> Result<(), ReplicaSetError> {
    let deletes = victims.iter().map(|pod| async move {
        let options = DeleteOptions {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteOptions::default()
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match ctx
            .client
            .delete::<Pod>(pod.metadata.namespace.as_deref(), name, &options)
            .await
        {
            Err(e) if e.is_not_found() => Ok(ObjectRef::from_obj(pod.as_ref())),
            Err(e) => Err(e),
            Ok(()) => Ok(ObjectRef::from_obj(pod.as_ref())),
        }
    });
    let mut deleted = Vec::new();
    let mut error = None;
    for result in join_all(deletes).await {
        match result {
            Ok(k) => deleted.extend(k),
            Err(e) => error = Some(e),
        }
    }
    for k in &deleted {
        ctx.events.record(
            owner,
            EventType::Normal,
            "SuccessfulDelete",
            format!("Deleted pod: {}", k.name),
        );
    }
    ctx.expectations.expect(key, [], deleted);
    match error {
        Some(e) => Err(api_error(format!("deleting pods of {key}"))(e)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
