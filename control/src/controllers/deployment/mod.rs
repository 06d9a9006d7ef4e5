//! The Deployment controller (apps/v1), as kube-controller-manager's:
//! each distinct pod template gets a ReplicaSet `<deployment>-<hash>`
//! (labelled `pod-template-hash`, annotated with its revision), and a
//! rollout moves replicas from the old ReplicaSets to the new one with the
//! RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy.
//!
//! A reconcile reads the deployment and the ReplicaSets of its namespace
//! from informer caches, adopts matching orphan ReplicaSets (and releases
//! owned ones that no longer match), finds or creates the ReplicaSet of
//! the current template, takes one rollout step ([`plan`]), removes
//! scaled-down ReplicaSets beyond `revisionHistoryLimit`, and writes
//! `status` (replica counts, observedGeneration, the Available and
//! Progressing conditions) through the status subresource. The ReplicaSet
//! controller turns the ReplicaSets' replicas into pods; their status
//! changes bring the deployment back here for the next step.
//!
//! `kubectl rollout undo` sets the template back to an old ReplicaSet's,
//! which is then found as the new one and given the next revision.
//! While `spec.paused`, no new ReplicaSet is created and no rollout step
//! taken; a deployment with only its current ReplicaSet is still scaled.
//! Not served: `progressDeadlineSeconds` (Progressing never turns False
//! with ProgressDeadlineExceeded) and proportional scaling of a rollout
//! in progress (a scale during a rollout is absorbed by the rollout steps).

pub mod plan;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};
use wasmpod_api::selector::LabelSelector;

use self::plan::{HASH_LABEL, REVISION, RsState};
use super::replicaset::plan::{controller_uid, selects};
use super::replicaset::{adopt, controller_ref, release};
use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

const WORKERS: usize = 4;
/// spec.revisionHistoryLimit when unset.
const DEFAULT_HISTORY: i32 = 10;

/// A failed reconcile: an API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct DeploymentError {
    what: String,
    #[source]
    source: ClientError,
}

fn api_error(what: impl Into<String>) -> impl FnOnce(ClientError) -> DeploymentError {
    let what = what.into();
    move |source| DeploymentError { what, source }
}

struct Ctx {
    client: ApiClient,
    deployments: Cache<Deployment>,
    replica_sets: Cache<ReplicaSet>,
    events: EventRecorder,
}

/// Runs the Deployment controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(Backoff::default());
    let mut deployments =
        Informer::<Deployment>::new(ctx.client.clone(), None, ListParams::default());
    deployments.enqueue_self(&queue);
    let mut replica_sets =
        Informer::<ReplicaSet>::new(ctx.client.clone(), None, ListParams::default());
    replica_sets.enqueue_controller(&queue, "Deployment");
    let deployment_cache = deployments.cache();
    replica_sets.enqueue_mapped(&queue, move |event| orphan_owners(&deployment_cache, event));
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        deployments: deployments.cache(),
        replica_sets: replica_sets.cache(),
        events: ctx.event_recorder("deployment-controller"),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(deployments);
    informers.start(replica_sets);
    let controller = Controller::new("deployment", queue, state).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

fn deployment_selector(d: &Deployment) -> Option<LabelSelector> {
    d.spec
        .as_ref()
        .and_then(|s| LabelSelector::from_api(&s.selector).ok())
}

/// The deployments that select a ReplicaSet without a controller.
fn orphan_owners(
    deployments: &Cache<Deployment>,
    event: &InformerEvent<ReplicaSet>,
) -> Vec<ObjectRef> {
    let rs = event.object();
    if controller_uid(rs.as_ref()).is_some() || rs.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let Some(ns) = rs.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    deployments
        .list_namespace(ns)
        .iter()
        .filter(|d| {
            deployment_selector(d).is_some_and(|s| selects(&s, rs.metadata.labels.as_ref()))
        })
        .filter_map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, DeploymentError> {
    let Some(d) = ctx.deployments.get(&key) else {
        return Ok(Action::done());
    };
    let (Some(namespace), Some(uid), Some(spec)) = (
        d.metadata.namespace.as_deref(),
        d.metadata.uid.as_deref(),
        d.spec.as_ref(),
    ) else {
        return Ok(Action::done());
    };
    let Some(selector) = deployment_selector(&d) else {
        tracing::warn!(%key, "invalid selector; not managing ReplicaSets");
        return Ok(Action::done());
    };
    let deleting = d.metadata.deletion_timestamp.is_some();

    let mut owned: Vec<Arc<ReplicaSet>> = Vec::new();
    for rs in ctx.replica_sets.list_namespace(namespace) {
        let matches = selects(&selector, rs.metadata.labels.as_ref());
        match controller_uid(rs.as_ref()) {
            Some(u) if u == uid && matches => owned.push(rs),
            Some(u) if u == uid => release(&ctx.client, rs.as_ref(), uid)
                .await
                .map_err(api_error(format!("releasing {:?}", rs.metadata.name)))?,
            None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                adopt(&ctx.client, rs.as_ref(), d.as_ref())
                    .await
                    .map_err(api_error(format!("adopting {:?}", rs.metadata.name)))?;
                owned.push(rs);
            }
            _ => {}
        }
    }
    owned.sort_by(|a, b| {
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });

    let replicas = spec.replicas.unwrap_or(1);
    let paused = spec.paused.unwrap_or(false);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (max_surge, max_unavailable) = plan::fenceposts(&d, replicas);
    let is_new = |rs: &ReplicaSet| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| plan::equal_ignoring_hash(t, &spec.template))
    };
    let mut new_rs = owned.iter().find(|rs| is_new(rs)).cloned();
    let old: Vec<Arc<ReplicaSet>> = owned.iter().filter(|rs| !is_new(rs)).cloned().collect();
    let old_states: Vec<RsState> = old.iter().map(|rs| RsState::of(rs)).collect();
    let max_old_revision = old.iter().map(|rs| plan::revision(rs)).max().unwrap_or(0);

    if !deleting {
        if new_rs.is_none() && !paused {
            let old_replicas: i32 = old_states.iter().map(|r| r.replicas).sum();
            let initial = if recreate {
                let gone = old_states.iter().all(|r| r.replicas == 0 && r.current == 0);
                if gone { replicas } else { 0 }
            } else {
                (replicas + max_surge - old_replicas).clamp(0, replicas)
            };
            match create_new_rs(&ctx, &d, max_old_revision + 1, initial, max_surge).await? {
                Some(rs) => new_rs = Some(Arc::new(rs)),
                None => return Ok(Action::done()),
            }
        }
        if let Some(new) = &new_rs {
            let mut revision = plan::revision(new);
            if revision <= max_old_revision {
                revision = max_old_revision + 1;
                set_revision(&ctx.client, new, revision).await?;
            }
            sync_deployment_revision(&ctx.client, &d, revision).await?;
        }

        let scales = match &new_rs {
            None => Vec::new(),
            Some(new) => {
                let new_state = RsState::of(new);
                if paused {
                    if old_states.iter().all(|r| r.replicas == 0) && new_state.replicas != replicas
                    {
                        vec![(new_state.name.clone(), replicas)]
                    } else {
                        Vec::new()
                    }
                } else if recreate {
                    plan::recreate_step(replicas, &new_state, &old_states)
                } else {
                    plan::rolling_step(
                        replicas,
                        max_surge,
                        max_unavailable,
                        &new_state,
                        &old_states,
                    )
                }
            }
        };
        for (name, to) in &scales {
            scale(&ctx, &d, &owned, name, *to).await?;
        }
        if scales.is_empty() {
            let limit = spec.revision_history_limit.unwrap_or(DEFAULT_HISTORY);
            let olds: Vec<&ReplicaSet> = old.iter().map(AsRef::as_ref).collect();
            for name in plan::history_to_delete(&olds, limit) {
                delete_rs(&ctx.client, &owned, namespace, &name).await?;
            }
        }
    }

    let all: Vec<&ReplicaSet> = owned.iter().map(AsRef::as_ref).collect();
    let status = plan::status(&d, new_rs.as_deref(), &all, Timestamp::now());
    if d.status.as_ref() != Some(&status) {
        let patch = Patch::Merge(json!({ "status": status }));
        match ctx
            .client
            .patch_status::<Deployment>(Some(namespace), &key.name, &patch)
            .await
        {
            Err(e) if e.is_not_found() => {}
            other => {
                other.map_err(api_error(format!("updating the status of {key}")))?;
            }
        }
    }
    Ok(Action::done())
}

/// Creates the ReplicaSet of the deployment's current template. `None`
/// when its name is taken by a different ReplicaSet: the collision count
/// is raised so the next reconcile picks another name.
async fn create_new_rs(
    ctx: &Ctx,
    d: &Deployment,
    revision: i64,
    replicas: i32,
    max_surge: i32,
) -> Result<Option<ReplicaSet>, DeploymentError> {
    let Some(spec) = d.spec.as_ref() else {
        return Ok(None);
    };
    let namespace = d.metadata.namespace.as_deref();
    let collisions = d
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let hash = plan::template_hash(&spec.template, collisions);
    let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
    let mut template = spec.template.clone();
    template
        .metadata
        .get_or_insert_with(ObjectMeta::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.clone());
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: d.metadata.namespace.clone(),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            annotations: Some(plan::new_rs_annotations(
                d,
                revision,
                spec.replicas.unwrap_or(1),
                max_surge,
            )),
            owner_references: controller_ref(d).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    match ctx.client.create(namespace, &rs).await {
        Ok(created) => {
            ctx.events.record(
                d,
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            );
            Ok(Some(created))
        }
        Err(e) if e.is_already_exists() => {
            let existing: ReplicaSet = ctx
                .client
                .get(namespace, &name)
                .await
                .map_err(api_error(format!("reading ReplicaSet {name}")))?;
            let ours = controller_uid(&existing) == d.metadata.uid.as_deref();
            let same = existing
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| plan::equal_ignoring_hash(t, &spec.template));
            if ours && same {
                return Ok(Some(existing));
            }
            let patch = Patch::Merge(json!({"status": {"collisionCount": collisions + 1}}));
            ctx.client
                .patch_status::<Deployment>(
                    namespace,
                    d.metadata.name.as_deref().unwrap_or_default(),
                    &patch,
                )
                .await
                .map_err(api_error(format!("raising the collision count of {name}")))?;
            Ok(None)
        }
        Err(e) => Err(api_error(format!("creating ReplicaSet {name}"))(e)),
    }
}

async fn set_revision(
    client: &ApiClient,
    rs: &ReplicaSet,
    revision: i64,
) -> Result<(), DeploymentError> {
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let patch =
        Patch::Merge(json!({"metadata": {"annotations": {REVISION: revision.to_string()}}}));
    client
        .patch::<ReplicaSet>(rs.metadata.namespace.as_deref(), name, &patch)
        .await
        .map(|_| ())
        .map_err(api_error(format!("setting the revision of {name}")))
}

/// Keeps the deployment's own revision annotation equal to its current
/// ReplicaSet's, as `kubectl describe` and `rollout history` show it.
async fn sync_deployment_revision(
    client: &ApiClient,
    d: &Deployment,
    revision: i64,
) -> Result<(), DeploymentError> {
    let revision = revision.to_string();
    if d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        == Some(&revision)
    {
        return Ok(());
    }
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let patch = Patch::Merge(json!({"metadata": {"annotations": {REVISION: revision}}}));
    client
        .patch::<Deployment>(d.metadata.namespace.as_deref(), name, &patch)
        .await
        .map(|_| ())
        .map_err(api_error(format!("annotating the revision of {name}")))
}

async fn scale(
    ctx: &Ctx,
    d: &Deployment,
    owned: &[Arc<ReplicaSet>],
    name: &str,
    to: i32,
) -> Result<(), DeploymentError> {
    let Some(rs) = owned
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(name))
    else {
        return Ok(());
    };
    let from = RsState::of(rs).replicas;
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let patch = Patch::Merge(json!({
        "metadata": {"annotations": {plan::DESIRED_REPLICAS: replicas.to_string()}},
        "spec": {"replicas": to},
    }));
    ctx.client
        .patch::<ReplicaSet>(rs.metadata.namespace.as_deref(), name, &patch)
        .await
        .map_err(api_error(format!("scaling ReplicaSet {name}")))?;
    let direction = if to > from { "up" } else { "down" };
    ctx.events.record(
        d,
        EventType::Normal,
        "ScalingReplicaSet",
        format!("Scaled {direction} replica set {name} from {from} to {to}"),
    );
    Ok(())
}

async fn delete_rs(
    client: &ApiClient,
    owned: &[Arc<ReplicaSet>],
    namespace: &str,
    name: &str,
) -> Result<(), DeploymentError> {
    let uid = owned
        .iter()
        .find(|rs| rs.metadata.name.as_deref() == Some(name))
        .and_then(|rs| rs.metadata.uid.clone());
    let options = DeleteOptions {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..DeleteOptions::default()
    };
    match client
        .delete::<ReplicaSet>(Some(namespace), name, &options)
        .await
    {
        Err(e) if !e.is_not_found() => Err(api_error(format!("deleting old ReplicaSet {name}"))(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
