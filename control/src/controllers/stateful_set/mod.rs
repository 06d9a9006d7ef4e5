//! The StatefulSet (apps/v1) controller: pods with stable identities
//! `<set>-<ordinal>`, each with its own PersistentVolumeClaims
//! `<claim>-<set>-<ordinal>` made from `volumeClaimTemplates` and kept when
//! the pod is deleted, rescheduled or scaled away (unless the set's
//! `persistentVolumeClaimRetentionPolicy` says Delete).
//!
//! A reconcile reads the set, the pods it controls and its
//! ControllerRevisions from informer caches, makes sure the revision of
//! the current template exists ([`revisions`]), asks [`plan`] for the next
//! steps (OrderedReady or Parallel management, scale-down from the highest
//! ordinal, RollingUpdate with a partition, or OnDelete), takes them, and
//! writes `.status`. Because a pod's name is its identity, a pod is made
//! again only once the previous one with that name is gone: never two pods
//! of one identity at once. Repeating a step is harmless (create answers
//! AlreadyExists, delete is conditional on the pod's uid), so no creation
//! expectations are needed.

pub mod plan;
pub mod revisions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ObjectMeta, OwnerReference, Preconditions,
};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};
use wasmpod_api::selector::LabelSelector;

use self::plan::{DeleteReason, POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL, SetSpec, Step};
use self::revisions::UpdateRevision;
use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::replicaset::plan::{controller_uid, selects};
use crate::controllers::replicaset::{adopt, controller_ref, release};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

/// Sets reconciled at once.
const WORKERS: usize = 4;
/// `revisionHistoryLimit` when unset.
const DEFAULT_HISTORY: i32 = 10;

/// A failed reconcile: an API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct StatefulSetError {
    what: String,
    #[source]
    source: ClientError,
}

fn api_error(what: impl Into<String>) -> impl FnOnce(ClientError) -> StatefulSetError {
    let what = what.into();
    move |source| StatefulSetError { what, source }
}

struct Ctx {
    client: ApiClient,
    sets: Cache<StatefulSet>,
    pods: Cache<Pod>,
    revisions: Cache<ControllerRevision>,
    claims: Cache<PersistentVolumeClaim>,
    events: EventRecorder,
}

/// Runs the StatefulSet controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(Backoff::default());
    let mut sets = Informer::<StatefulSet>::new(ctx.client.clone(), None, ListParams::default());
    sets.enqueue_self(&queue);
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    pods.enqueue_controller(&queue, "StatefulSet");
    let set_cache = sets.cache();
    pods.enqueue_mapped(&queue, move |event| orphan_owner(&set_cache, event));
    let mut revisions =
        Informer::<ControllerRevision>::new(ctx.client.clone(), None, ListParams::default());
    revisions.enqueue_controller(&queue, "StatefulSet");
    let claims =
        Informer::<PersistentVolumeClaim>::new(ctx.client.clone(), None, ListParams::default());
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        sets: sets.cache(),
        pods: pods.cache(),
        revisions: revisions.cache(),
        claims: claims.cache(),
        events: ctx.event_recorder("statefulset-controller"),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(sets);
    informers.start(pods);
    informers.start(revisions);
    informers.start(claims);
    let controller = Controller::new("statefulset", queue, state).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

/// The set an orphan pod named `<set>-<ordinal>` belongs to, if it
/// selects it.
fn orphan_owner(sets: &Cache<StatefulSet>, event: &InformerEvent<Pod>) -> Vec<ObjectRef> {
    let pod = event.object();
    if controller_uid(pod.as_ref()).is_some() {
        return Vec::new();
    }
    let (Some(ns), Some(name)) = (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    sets.list_namespace(ns)
        .iter()
        .filter(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| plan::ordinal_of(n, name).is_some())
        })
        .filter(|s| selector(s).is_some_and(|sel| selects(&sel, pod.metadata.labels.as_ref())))
        .filter_map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

fn selector(set: &StatefulSet) -> Option<LabelSelector> {
    set.spec
        .as_ref()
        .and_then(|s| LabelSelector::from_api(&s.selector).ok())
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, StatefulSetError> {
    let Some(set) = ctx.sets.get(&key) else {
        return Ok(Action::done());
    };
    let (Some(namespace), Some(uid), Some(name), Some(spec)) = (
        set.metadata.namespace.as_deref(),
        set.metadata.uid.as_deref(),
        set.metadata.name.as_deref(),
        set.spec.as_ref(),
    ) else {
        return Ok(Action::done());
    };
    if set.metadata.deletion_timestamp.is_some() {
        // Its pods and revisions go with it (garbage collection).
        return Ok(Action::done());
    }
    let Some(selector) = selector(&set) else {
        tracing::warn!(%key, "invalid selector; not managing pods");
        return Ok(Action::done());
    };

    let pods = claim_pods(&ctx, &set, &selector, namespace, uid, name).await?;
    let owned: Vec<Arc<ControllerRevision>> = ctx
        .revisions
        .list_namespace(namespace)
        .into_iter()
        .filter(|r| controller_uid(r.as_ref()) == Some(uid))
        .collect();
    let Some(update) = ensure_update_revision(&ctx, &key, &set, &owned).await? else {
        return Ok(Action::done());
    };
    let update_name = update.metadata.name.clone().unwrap_or_default();
    let current_name = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|c| *c == update_name || owned.iter().any(|r| r.metadata.name.as_ref() == Some(c)))
        .unwrap_or_else(|| update_name.clone());

    let partition = match spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
    {
        Some("OnDelete") => None,
        _ => Some(
            spec.update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
        ),
    };
    let set_spec = SetSpec {
        name: name.to_string(),
        replicas: spec.replicas.unwrap_or(1),
        start: spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0),
        parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
        partition,
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        current_revision: current_name.clone(),
        update_revision: update_name.clone(),
    };
    let now = Timestamp::now();
    let planned = plan::plan(&set_spec, &pods, now);

    let mut failure = None;
    for step in &planned.steps {
        let result = match step {
            Step::Create { ordinal, revision } => {
                let template = if *revision == update_name {
                    Some(spec.template.clone())
                } else {
                    owned
                        .iter()
                        .find(|r| r.metadata.name.as_ref() == Some(revision))
                        .and_then(|r| revisions::template_of(r))
                };
                let template = template.unwrap_or_else(|| spec.template.clone());
                create_pod(&ctx, &set, &template, *ordinal, revision).await
            }
            Step::Delete { pod, reason } => delete_pod(&ctx, &set, pod, *reason).await,
        };
        if let Err(e) = result {
            failure = Some(e);
            break;
        }
    }

    write_status(
        &ctx,
        &key,
        &set,
        &planned.counts,
        &current_name,
        &update_name,
    )
    .await?;
    prune_history(&ctx, &set, &owned, &pods, &[&current_name, &update_name]).await;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(match planned.recheck_in {
        Some(secs) => Action::requeue_after(Duration::from_secs(secs.unsigned_abs())),
        None => Action::done(),
    })
}

/// The pods `set` controls after adopting its orphans (named as its
/// ordinals, selected by it) and releasing pods it no longer selects.
async fn claim_pods(
    ctx: &Ctx,
    set: &StatefulSet,
    selector: &LabelSelector,
    namespace: &str,
    uid: &str,
    name: &str,
) -> Result<Vec<Arc<Pod>>, StatefulSetError> {
    let mut owned = Vec::new();
    for pod in ctx.pods.list_namespace(namespace) {
        let Some(pod_name) = pod.metadata.name.as_deref() else {
            continue;
        };
        let matches = selects(selector, pod.metadata.labels.as_ref());
        match controller_uid(pod.as_ref()) {
            Some(owner) if owner == uid => {
                if matches {
                    owned.push(pod);
                } else {
                    release(&ctx.client, pod.as_ref(), uid)
                        .await
                        .map_err(api_error(format!("releasing pod {pod_name}")))?;
                }
            }
            None if matches
                && plan::ordinal_of(name, pod_name).is_some()
                && pod.metadata.deletion_timestamp.is_none() =>
            {
                adopt(&ctx.client, pod.as_ref(), set)
                    .await
                    .map_err(api_error(format!("adopting pod {pod_name}")))?;
                owned.push(pod);
            }
            _ => {}
        }
    }
    Ok(owned)
}

/// The revision of the set's template, made or renumbered as needed;
/// `None` when a different revision already took its name (the collision
/// count is raised so the next reconcile picks another name).
async fn ensure_update_revision(
    ctx: &Ctx,
    key: &ObjectRef,
    set: &StatefulSet,
    owned: &[Arc<ControllerRevision>],
) -> Result<Option<ControllerRevision>, StatefulSetError> {
    let namespace = key.namespace.as_deref();
    match revisions::update_revision(set, owned) {
        None => Ok(None),
        Some(UpdateRevision::Existing(r)) => Ok(Some(r.as_ref().clone())),
        Some(UpdateRevision::Renumber(r, number)) => {
            let name = r.metadata.name.clone().unwrap_or_default();
            ctx.client
                .patch::<ControllerRevision>(
                    namespace,
                    &name,
                    &Patch::Merge(json!({"revision": number})),
                )
                .await
                .map(Some)
                .map_err(api_error(format!("renumbering revision {name}")))
        }
        Some(UpdateRevision::Create(r)) => {
            match ctx.client.create(namespace, r.as_ref()).await {
                Ok(created) => Ok(Some(created)),
                Err(e) if e.is_already_exists() => {
                    // Taken by a revision that is not ours or has another
                    // template (it would have matched otherwise).
                    let collisions = set
                        .status
                        .as_ref()
                        .and_then(|s| s.collision_count)
                        .unwrap_or(0);
                    ctx.client
                        .patch_status::<StatefulSet>(
                            namespace,
                            &key.name,
                            &Patch::Merge(json!({"status": {"collisionCount": collisions + 1}})),
                        )
                        .await
                        .map_err(api_error(format!("raising the collision count of {key}")))?;
                    Ok(None)
                }
                Err(e) => Err(api_error(format!("creating a revision of {key}"))(e)),
            }
        }
    }
}

/// The pod of `ordinal` from `template`: its identity labels, hostname
/// and subdomain, and its claims in place of the template's volumes of
/// the same names.
fn pod_for(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = plan::pod_name(&set_name, ordinal);
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels = template_meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.to_string());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    if let Some(service) = set
        .spec
        .as_ref()
        .map(|s| s.service_name.clone().unwrap_or_default())
        .filter(|s| !s.is_empty())
    {
        spec.subdomain = Some(service);
    }
    let mut volumes = spec.volumes.take().unwrap_or_default();
    for claim in claim_templates(set) {
        let Some(claim_template) = claim.metadata.name.as_deref() else {
            continue;
        };
        volumes.retain(|v| v.name != claim_template);
        volumes.push(Volume {
            name: claim_template.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: plan::claim_name(claim_template, &set_name, ordinal),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: controller_ref(set).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or_default()
}

/// `persistentVolumeClaimRetentionPolicy` (`whenDeleted`, `whenScaled`):
/// true where it says Delete.
fn retention(set: &StatefulSet) -> (bool, bool) {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
    (
        delete(policy.and_then(|p| p.when_deleted.as_ref())),
        delete(policy.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// The claim of `template` for `ordinal`: the template's spec, the set's
/// selector labels, and the set as owner when claims go with the set.
fn claim_for(
    set: &StatefulSet,
    template: &PersistentVolumeClaim,
    ordinal: i32,
) -> Option<PersistentVolumeClaim> {
    let set_name = set.metadata.name.as_deref()?;
    let mut labels: BTreeMap<String, String> = template.metadata.labels.clone().unwrap_or_default();
    if let Some(match_labels) = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
    {
        labels.extend(match_labels.clone());
    }
    let owner_references = if retention(set).0 {
        controller_ref(set).map(|mut r| {
            r.controller = None;
            vec![r]
        })
    } else {
        None
    };
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(plan::claim_name(
                template.metadata.name.as_deref()?,
                set_name,
                ordinal,
            )),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template.metadata.annotations.clone(),
            owner_references,
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

async fn create_pod(
    ctx: &Ctx,
    set: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Result<(), StatefulSetError> {
    let namespace = set.metadata.namespace.as_deref();
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let pod = pod_for(set, template, ordinal, revision);
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    for template in claim_templates(set) {
        let Some(claim) = claim_for(set, template, ordinal) else {
            continue;
        };
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        let key = ObjectRef::new(namespace, &claim_name);
        if ctx.claims.get(&key).is_some() {
            continue;
        }
        match ctx.client.create(namespace, &claim).await {
            Ok(_) => ctx.events.record(
                set,
                EventType::Normal,
                "SuccessfulCreate",
                format!(
                    "create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
                ),
            ),
            Err(e) if e.is_already_exists() => {}
            Err(e) => {
                ctx.events.record(
                    set,
                    EventType::Warning,
                    "FailedCreate",
                    format!("create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
                );
                return Err(api_error(format!("creating claim {claim_name}"))(e));
            }
        }
    }
    match ctx.client.create(namespace, &pod).await {
        Ok(_) => {
            ctx.events.record(
                set,
                EventType::Normal,
                "SuccessfulCreate",
                format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
            );
            Ok(())
        }
        // The previous pod of this identity is still being removed.
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => {
            ctx.events.record(
                set,
                EventType::Warning,
                "FailedCreate",
                format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
            );
            Err(api_error(format!("creating pod {pod_name}"))(e))
        }
    }
}

async fn delete_pod(
    ctx: &Ctx,
    set: &StatefulSet,
    pod: &Pod,
    reason: DeleteReason,
) -> Result<(), StatefulSetError> {
    let namespace = pod.metadata.namespace.as_deref();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    if reason == DeleteReason::ScaleDown && retention(set).1 {
        // Claims of a scaled-away ordinal go with its pod.
        let ordinal = plan::ordinal_of(set_name, &pod_name).unwrap_or_default();
        for template in claim_templates(set) {
            let Some(t) = template.metadata.name.as_deref() else {
                continue;
            };
            let claim = plan::claim_name(t, set_name, ordinal);
            let owner = OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod_name.clone(),
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                controller: None,
                block_owner_deletion: None,
            };
            let patch = Patch::Merge(json!({"metadata": {"ownerReferences": [owner]}}));
            match ctx
                .client
                .patch::<PersistentVolumeClaim>(namespace, &claim, &patch)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(api_error(format!("handing claim {claim} to its pod"))(e)),
            }
        }
    }
    let options = DeleteOptions {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteOptions::default()
    };
    match ctx
        .client
        .delete::<Pod>(namespace, &pod_name, &options)
        .await
    {
        Ok(()) => {
            ctx.events.record(
                set,
                EventType::Normal,
                "SuccessfulDelete",
                format!("delete Pod {pod_name} in StatefulSet {set_name} successful"),
            );
            Ok(())
        }
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
        Err(e) => Err(api_error(format!("deleting pod {pod_name}"))(e)),
    }
}

async fn write_status(
    ctx: &Ctx,
    key: &ObjectRef,
    set: &StatefulSet,
    counts: &plan::Counts,
    current: &str,
    update: &str,
) -> Result<(), StatefulSetError> {
    let rolling = set
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    // A finished rollout makes the update revision the current one.
    let (current, current_replicas) = if current != update
        && counts.updated == counts.replicas
        && counts.ready == counts.replicas
        && (rolling || counts.replicas > 0)
    {
        (update, counts.updated)
    } else {
        (current, counts.current)
    };
    let status = json!({
        "observedGeneration": set.metadata.generation.unwrap_or(0),
        "replicas": counts.replicas,
        "readyReplicas": counts.ready,
        "currentReplicas": current_replicas,
        "updatedReplicas": counts.updated,
        "availableReplicas": counts.available,
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0),
    });
    let reported = set
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    let unchanged = status
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| reported.get(k).unwrap_or(&json!(0)) == v);
    if unchanged {
        return Ok(());
    }
    match ctx
        .client
        .patch_status::<StatefulSet>(
            key.namespace.as_deref(),
            &key.name,
            &Patch::Merge(json!({ "status": status })),
        )
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other
            .map(|_| ())
            .map_err(api_error(format!("updating the status of {key}"))),
    }
}

/// Deletes revisions beyond `revisionHistoryLimit` that nothing uses.
async fn prune_history(
    ctx: &Ctx,
    set: &StatefulSet,
    owned: &[Arc<ControllerRevision>],
    pods: &[Arc<Pod>],
    live: &[&str],
) {
    let limit = set
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(DEFAULT_HISTORY);
    let mut in_use: Vec<&str> = live.to_vec();
    in_use.extend(pods.iter().filter_map(|p| plan::revision_of(p)));
    for revision in revisions::to_prune(owned, &in_use, limit) {
        let Some(name) = revision.metadata.name.as_deref() else {
            continue;
        };
        if let Err(e) = ctx
            .client
            .delete::<ControllerRevision>(
                revision.metadata.namespace.as_deref(),
                name,
                &DeleteOptions::default(),
            )
            .await
            && !e.is_not_found()
        {
            tracing::warn!(revision = name, error = %e, "cannot delete an old revision");
        }
    }
}

#[cfg(test)]
mod tests;
