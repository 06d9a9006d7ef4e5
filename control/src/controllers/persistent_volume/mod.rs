//! The PersistentVolume binder ("persistentvolume-binder" in
//! kube-controller-manager) and wasmpod's local-path provisioner.
//!
//! Binding: a Pending claim gets an Available volume that satisfies it
//! (same class, its access modes, at least its size, its selector; the
//! smallest such volume), or the volume it names in `spec.volumeName`, or
//! the volume pre-bound to it through `spec.claimRef`. A binding is written
//! in Kubernetes' order: the volume's `claimRef` first (with the cached
//! resourceVersion, so two claims racing for one volume cannot both win),
//! then the volume's phase Bound, the claim's `volumeName`, and the claim's
//! status (Bound, with the volume's capacity and access modes).
//!
//! Provisioning: a claim of a class whose provisioner is
//! `wasmpod.io/local-path` and whose binding mode is WaitForFirstConsumer
//! waits until the scheduler has placed its first pod and annotated the
//! claim with `volume.kubernetes.io/selected-node`; then a volume
//! `pvc-<claim uid>` is created for it: `spec.local.path` is the relative
//! path `local-path/<namespace>/<claim>-<claim uid>`, which the node
//! resolves inside its own volume directory (`<data dir>/volumes/`), with
//! node affinity to that node, the claim's size and access modes, the
//! class's reclaim policy, and `claimRef` already set. Local-path claims of
//! an Immediate class stay Pending, with an event saying why.
//!
//! Reclaiming: a volume whose claim is gone becomes Released (Retain); a
//! volume this provisioner created with policy Delete is deleted, while
//! its directory stays on the node (removing it is the node's business);
//! other Delete and Recycle volumes become Failed, as Kubernetes reports
//! volumes without a plugin able to delete or recycle them.
//!
//! Not done: the `kubernetes.io/pvc-protection` and `pv-protection`
//! finalizers (a claim in use by a pod can be deleted), volume expansion,
//! and dynamic provisioning by other provisioners.

pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};

use self::plan::{ClaimStep, VolumeStep};
pub use self::plan::{LOCAL_PATH_CLASS, LOCAL_PATH_PROVISIONER, SELECTED_NODE};
use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

const WORKERS: usize = 2;
const COMPONENT: &str = "persistentvolume-controller";

/// A failed reconcile: an API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{what} {key}")]
pub struct BinderError {
    what: &'static str,
    key: String,
    #[source]
    source: ClientError,
}

struct Ctx {
    client: ApiClient,
    claims: Cache<PersistentVolumeClaim>,
    volumes: Cache<PersistentVolume>,
    classes: Cache<StorageClass>,
    events: EventRecorder,
    /// Why each waiting claim waits, as last reported in an event.
    waiting: Mutex<HashMap<ObjectRef, String>>,
}

/// Runs the binder until `ctx.stop`. Claims are queued by
/// `namespace/name`, volumes by `name`: one queue, told apart by scope.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(Backoff::default());
    let mut claims =
        Informer::<PersistentVolumeClaim>::new(ctx.client.clone(), None, ListParams::default());
    let mut volumes =
        Informer::<PersistentVolume>::new(ctx.client.clone(), None, ListParams::default());
    let mut classes =
        Informer::<StorageClass>::new(ctx.client.clone(), None, ListParams::default());

    let volume_cache = volumes.cache();
    claims.enqueue_mapped(&queue, move |event| {
        claim_and_volumes(event.object(), &volume_cache)
    });
    let claim_cache = claims.cache();
    volumes.enqueue_mapped(&queue, move |event| volume_and_claims(event, &claim_cache));
    let claim_cache = claims.cache();
    classes.enqueue_mapped(&queue, move |_event| unbound_claims(&claim_cache));

    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        claims: claims.cache(),
        volumes: volumes.cache(),
        classes: classes.cache(),
        events: ctx.event_recorder(COMPONENT),
        waiting: Mutex::default(),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(claims);
    informers.start(volumes);
    informers.start(classes);
    let controller = Controller::new("persistentvolume-binder", queue, state).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

fn volume_key(name: &str) -> ObjectRef {
    ObjectRef::new(None, name)
}

/// A claim changed: the claim, the volume it names, and the volumes that
/// point at it (they are released when it goes).
fn claim_and_volumes(
    claim: &PersistentVolumeClaim,
    volumes: &Cache<PersistentVolume>,
) -> Vec<ObjectRef> {
    let mut keys: Vec<ObjectRef> = ObjectRef::from_obj(claim).into_iter().collect();
    keys.extend(plan::volume_name(claim).map(volume_key));
    keys.extend(
        volumes
            .filter(|pv| {
                plan::claim_ref(pv).is_some_and(|r| {
                    r.namespace == claim.metadata.namespace && r.name == claim.metadata.name
                })
            })
            .iter()
            .filter_map(|pv| pv.metadata.name.as_deref().map(volume_key)),
    );
    keys
}

/// A volume changed: the volume, the claim it points at, and, when it may
/// have become available, every claim still looking for one.
fn volume_and_claims(
    event: &InformerEvent<PersistentVolume>,
    claims: &Cache<PersistentVolumeClaim>,
) -> Vec<ObjectRef> {
    let pv = event.object();
    let mut keys: Vec<ObjectRef> = pv
        .metadata
        .name
        .as_deref()
        .map(volume_key)
        .into_iter()
        .collect();
    if let Some(r) = plan::claim_ref(pv) {
        keys.push(ObjectRef::new(
            r.namespace.as_deref(),
            r.name.as_deref().unwrap_or_default(),
        ));
    } else if matches!(event, InformerEvent::Applied { .. }) {
        keys.extend(unbound_claims(claims));
    }
    keys
}

fn unbound_claims(claims: &Cache<PersistentVolumeClaim>) -> Vec<ObjectRef> {
    claims
        .filter(|c| plan::volume_name(c).is_none())
        .iter()
        .filter_map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect()
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, BinderError> {
    if key.namespace.is_some() {
        reconcile_claim(key, &ctx).await
    } else {
        reconcile_volume(key, &ctx).await
    }
}

impl Ctx {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, String>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn reconcile_claim(key: ObjectRef, ctx: &Ctx) -> Result<Action, BinderError> {
    let Some(claim) = ctx
        .claims
        .get(&key)
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    else {
        ctx.waiting().remove(&key);
        return Ok(Action::done());
    };
    let step = plan::claim_step(&claim, &ctx.volumes.list(), &ctx.classes.list());
    let failed = |what: &'static str, source: ClientError| BinderError {
        what,
        key: key.to_string(),
        source,
    };
    let ns = key.namespace.as_deref();
    match step {
        ClaimStep::InSync => {
            ctx.waiting().remove(&key);
        }
        ClaimStep::Pending { reason, message } => {
            let previous = ctx.waiting().insert(key.clone(), message.clone());
            if previous.as_deref() != Some(message.as_str()) {
                let kind = if reason == "ProvisioningFailed" {
                    EventType::Warning
                } else {
                    EventType::Normal
                };
                ctx.events.record(claim.as_ref(), kind, reason, message);
            }
        }
        ClaimStep::Reserve(pv) => {
            let name = pv.metadata.name.clone().unwrap_or_default();
            ctx.client
                .replace(None, &name, &pv)
                .await
                .map_err(|e| failed("reserving a volume for", e))?;
        }
        ClaimStep::Provision(pv) => {
            let name = pv.metadata.name.clone().unwrap_or_default();
            match ctx.client.create(None, &pv).await {
                Ok(_) => ctx.events.record(
                    claim.as_ref(),
                    EventType::Normal,
                    "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {name}"),
                ),
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(failed("provisioning a volume for", e)),
            }
        }
        ClaimStep::Complete(pv) => {
            ctx.waiting().remove(&key);
            complete(ctx, &claim, &pv)
                .await
                .map_err(|e| failed("binding", e))?;
        }
        ClaimStep::Lost => {
            let patch = Patch::Merge(json!({"status": {"phase": "Lost"}}));
            ctx.client
                .patch_status::<PersistentVolumeClaim>(ns, &key.name, &patch)
                .await
                .map_err(|e| failed("marking lost", e))?;
            ctx.events.record(
                claim.as_ref(),
                EventType::Warning,
                "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!".into(),
            );
        }
    }
    Ok(Action::done())
}

/// Writes what is still missing of a binding whose volume already points
/// at the claim: the volume's phase, the claim's volumeName, its status.
async fn complete(
    ctx: &Ctx,
    claim: &PersistentVolumeClaim,
    pv: &PersistentVolume,
) -> Result<(), ClientError> {
    let pv_name = pv.metadata.name.as_deref().unwrap_or_default();
    let ns = claim.metadata.namespace.as_deref();
    let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
    if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        let patch = Patch::Merge(json!({"status": {"phase": "Bound"}}));
        ctx.client
            .patch_status::<PersistentVolume>(None, pv_name, &patch)
            .await?;
    }
    if plan::volume_name(claim) != Some(pv_name) {
        let patch = Patch::Merge(json!({
            "metadata": {"annotations": {
                plan::BIND_COMPLETED: "yes",
                plan::BOUND_BY_CONTROLLER: "yes",
            }},
            "spec": {"volumeName": pv_name},
        }));
        ctx.client
            .patch::<PersistentVolumeClaim>(ns, claim_name, &patch)
            .await?;
    }
    let spec = pv.spec.clone().unwrap_or_default();
    let patch = Patch::Merge(json!({"status": {
        "phase": "Bound",
        "accessModes": spec.access_modes,
        "capacity": spec.capacity,
    }}));
    ctx.client
        .patch_status::<PersistentVolumeClaim>(ns, claim_name, &patch)
        .await?;
    Ok(())
}

async fn reconcile_volume(key: ObjectRef, ctx: &Ctx) -> Result<Action, BinderError> {
    let Some(pv) = ctx.volumes.get(&key) else {
        return Ok(Action::done());
    };
    let claims = match plan::claim_ref(&pv).and_then(|r| r.namespace.as_deref()) {
        Some(ns) => ctx.claims.list_namespace(ns),
        None => Vec::new(),
    };
    let failed = |what: &'static str, source: ClientError| BinderError {
        what,
        key: key.to_string(),
        source,
    };
    match plan::volume_step(&pv, &claims) {
        VolumeStep::InSync => {}
        VolumeStep::Phase(phase, message) => {
            let patch = Patch::Merge(json!({"status": {"phase": phase, "message": message}}));
            ctx.client
                .patch_status::<PersistentVolume>(None, &key.name, &patch)
                .await
                .map_err(|e| failed("setting the phase of volume", e))?;
            if phase == "Failed" {
                ctx.events.record(
                    pv.as_ref(),
                    EventType::Warning,
                    "VolumeFailedRecycle",
                    message.unwrap_or_default(),
                );
            }
        }
        VolumeStep::Delete => {
            tracing::info!(volume = %key.name, "claim gone; deleting the volume (its directory stays on the node)");
            match ctx
                .client
                .delete::<PersistentVolume>(None, &key.name, &DeleteOptions::default())
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(failed("deleting volume", e)),
            }
        }
    }
    Ok(Action::done())
}
