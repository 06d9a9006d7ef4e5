//! What the ReplicaSet logic needs of its owner kind, so ReplicaSets
//! (apps/v1, set-based selector) and ReplicationControllers (v1, map
//! selector) share one controller; and the ownerReference helpers every
//! workload controller uses to adopt and release what it controls.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{ListableResource, Metadata, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, Patch};
use wasmpod_api::selector::{LabelSelector, SelectorError};

use super::plan::ReplicaCounts;

/// A kind that keeps a number of pods from a template.
pub trait ReplicaOwner:
    Resource
    + ListableResource
    + Metadata<Ty = ObjectMeta>
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// spec.replicas (default 1).
    fn desired(&self) -> i32;
    fn label_selector(&self) -> Result<LabelSelector, SelectorError>;
    fn pod_template(&self) -> Option<&PodTemplateSpec>;
    fn min_ready_seconds(&self) -> i32;
    /// The counts currently in status.
    fn reported(&self) -> ReplicaCounts;
}

impl ReplicaOwner for ReplicaSet {
    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn label_selector(&self) -> Result<LabelSelector, SelectorError> {
        match &self.spec {
            Some(spec) => LabelSelector::from_api(&spec.selector),
            None => Ok(LabelSelector::everything()),
        }
    }

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn reported(&self) -> ReplicaCounts {
        self.status
            .as_ref()
            .map(|s| ReplicaCounts {
                replicas: s.replicas,
                fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
                ready: s.ready_replicas.unwrap_or(0),
                available: s.available_replicas.unwrap_or(0),
                observed_generation: s.observed_generation.unwrap_or(0),
            })
            .unwrap_or_default()
    }
}

impl ReplicaOwner for ReplicationController {
    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn label_selector(&self) -> Result<LabelSelector, SelectorError> {
        // As Kubernetes' defaulting: no selector means the template's labels.
        let spec = self.spec.as_ref();
        let labels = spec
            .and_then(|s| s.selector.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| {
                spec.and_then(|s| s.template.as_ref())
                    .and_then(|t| t.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
            })
            .unwrap_or_default();
        LabelSelector::from_map(&labels)
    }

    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn reported(&self) -> ReplicaCounts {
        self.status
            .as_ref()
            .map(|s| ReplicaCounts {
                replicas: s.replicas,
                fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
                ready: s.ready_replicas.unwrap_or(0),
                available: s.available_replicas.unwrap_or(0),
                observed_generation: s.observed_generation.unwrap_or(0),
            })
            .unwrap_or_default()
    }
}

/// The ownerReference an owner puts on what it controls:
/// `controller: true, blockOwnerDeletion: true`. `None` before the owner
/// has a name and uid.
pub fn controller_ref<K: Resource + Metadata<Ty = ObjectMeta>>(
    owner: &K,
) -> Option<OwnerReference> {
    let meta = owner.metadata();
    Some(OwnerReference {
        api_version: K::API_VERSION.into(),
        kind: K::KIND.into(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Makes `owner` the controller of `obj` (which has none): a merge patch
/// of the ownerReferences, conditional on `obj`'s resourceVersion.
pub async fn adopt<K, O>(client: &ApiClient, obj: &K, owner: &O) -> Result<(), ClientError>
where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned,
    O: Resource + Metadata<Ty = ObjectMeta>,
{
    let Some(reference) = controller_ref(owner) else {
        return Ok(());
    };
    let mut refs = obj.metadata().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != reference.uid);
    refs.push(reference);
    patch_refs(client, obj, refs).await
}

/// Removes `owner_uid` from `obj`'s ownerReferences.
pub async fn release<K>(client: &ApiClient, obj: &K, owner_uid: &str) -> Result<(), ClientError>
where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned,
{
    let mut refs = obj.metadata().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner_uid);
    patch_refs(client, obj, refs).await
}

async fn patch_refs<K>(
    client: &ApiClient,
    obj: &K,
    refs: Vec<OwnerReference>,
) -> Result<(), ClientError>
where
    K: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned,
{
    let meta = obj.metadata();
    let Some(name) = meta.name.as_deref() else {
        return Ok(());
    };
    let patch = Patch::Merge(json!({
        "metadata": {
            "ownerReferences": refs,
            "resourceVersion": meta.resource_version,
        }
    }));
    match client
        .patch::<K>(meta.namespace.as_deref(), name, &patch)
        .await
    {
        // Gone meanwhile: nothing left to own.
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()),
    }
}
