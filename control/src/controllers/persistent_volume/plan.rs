//! The binder's decisions as pure functions over a claim or a volume and
//! the cached objects around it: which volume a claim gets, what a
//! provisioned volume looks like, and what becomes of a volume whose
//! claim is gone.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    LocalVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wasmpod_api::selector::LabelSelector;
use wasmpod_api::validation::quantity;

/// The default StorageClass the server creates.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// The provisioner of node-local directories, served by this controller.
pub const LOCAL_PATH_PROVISIONER: &str = "wasmpod.io/local-path";
/// Where a provisioned volume's directory lives on its node: a relative
/// `spec.local.path` is resolved inside the node's volume directory
/// (`<data dir>/volumes/`), so this prefix makes it
/// `<data dir>/volumes/local-path/<namespace>/<claim>-<claim uid>`.
pub const LOCAL_PATH_DIR: &str = "local-path";
/// Set by the scheduler on a WaitForFirstConsumer claim: the node of the
/// first pod using it, where the volume is provisioned.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Names the provisioner of a volume it created.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Marks a claim whose binding is complete.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Marks a binding this controller made (rather than one set by a user).
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The provisioner a claim waits for.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// What to do about one claim.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimStep {
    /// Bound, and both sides say so.
    InSync,
    /// Nothing can be done yet; the reason and message explain why (an
    /// event when they change).
    Pending {
        reason: &'static str,
        message: String,
    },
    /// Point this volume at the claim (the first write of a binding; made
    /// with the volume's resourceVersion, so two claims never get one
    /// volume).
    Reserve(PersistentVolume),
    /// Create this volume for the claim (already pointing at it).
    Provision(PersistentVolume),
    /// The volume points at the claim: record the binding on both.
    Complete(Arc<PersistentVolume>),
    /// The claim's volume is gone.
    Lost,
}

/// What to do about one volume.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeStep {
    InSync,
    /// Set `status.phase` (and a message for Failed).
    Phase(&'static str, Option<String>),
    /// The claim is gone and the policy is Delete: remove the volume. The
    /// directory stays on its node.
    Delete,
}

/// The claim's StorageClass name; unset and `""` both mean none.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default()
}

fn volume_class(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or_default()
}

fn request(claim: &PersistentVolumeClaim) -> Option<&Quantity> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
}

fn capacity(pv: &PersistentVolume) -> Option<&Quantity> {
    pv.spec.as_ref()?.capacity.as_ref()?.get("storage")
}

fn claim_modes(claim: &PersistentVolumeClaim) -> &[String] {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

fn volume_modes(pv: &PersistentVolume) -> &[String] {
    pv.spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
}

fn phase(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// The volume a claim names in `spec.volumeName`, if any.
pub fn volume_name(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The claim a volume points at (`spec.claimRef`), if any.
pub fn claim_ref(pv: &PersistentVolume) -> Option<&ObjectReference> {
    pv.spec
        .as_ref()?
        .claim_ref
        .as_ref()
        .filter(|r| r.name.as_deref().is_some_and(|n| !n.is_empty()))
}

/// True if `reference` names `claim`: same namespace and name, and the same
/// uid unless the reference has none yet (a volume pre-bound by a user).
pub fn refers_to(reference: &ObjectReference, claim: &PersistentVolumeClaim) -> bool {
    reference.namespace == claim.metadata.namespace
        && reference.name == claim.metadata.name
        && reference
            .uid
            .as_deref()
            .is_none_or(|uid| uid.is_empty() || Some(uid) == claim.metadata.uid.as_deref())
}

fn has_uid(reference: &ObjectReference) -> bool {
    reference.uid.as_deref().is_some_and(|u| !u.is_empty())
}

/// Whether `pv` can serve `claim`: same class, every access mode the claim
/// asks for, at least its size, the claim's selector, the same volume mode.
pub fn satisfies(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    if volume_class(pv) != claim_class(claim) {
        return false;
    }
    let offered = volume_modes(pv);
    if !claim_modes(claim).iter().all(|m| offered.contains(m)) {
        return false;
    }
    let big_enough = match (capacity(pv), request(claim)) {
        (Some(have), Some(want)) => quantity::compare(&have.0, &want.0).is_some_and(|o| o.is_ge()),
        _ => false,
    };
    if !big_enough {
        return false;
    }
    let mode = |m: Option<&String>| m.map_or("Filesystem", String::as_str).to_string();
    let pv_mode = mode(pv.spec.as_ref().and_then(|s| s.volume_mode.as_ref()));
    let claim_mode = mode(claim.spec.as_ref().and_then(|s| s.volume_mode.as_ref()));
    if pv_mode != claim_mode {
        return false;
    }
    match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => true,
        Some(selector) => LabelSelector::from_api(selector).is_ok_and(|s| {
            let labels: serde_json::Map<String, serde_json::Value> = pv
                .metadata
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            s.matches(Some(&labels))
        }),
    }
}

fn size(pv: &PersistentVolume) -> i128 {
    capacity(pv)
        .and_then(|q| quantity::parse(&q.0).ok())
        .map_or(i128::MAX, |q| q.nanos())
}

/// The volume for an unbound claim: one pre-bound to it if any, else the
/// smallest available volume that satisfies it (ties by name, so the
/// choice is stable).
pub fn best_volume(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
) -> Option<Arc<PersistentVolume>> {
    let usable = |pv: &&Arc<PersistentVolume>| {
        pv.metadata.deletion_timestamp.is_none()
            && !matches!(phase(pv), "Released" | "Failed")
            && satisfies(pv, claim)
    };
    let pre_bound = volumes
        .iter()
        .filter(usable)
        .filter(|pv| claim_ref(pv).is_some_and(|r| refers_to(r, claim)))
        .min_by_key(|pv| pv.metadata.name.clone());
    if let Some(pv) = pre_bound {
        return Some(Arc::clone(pv));
    }
    volumes
        .iter()
        .filter(usable)
        .filter(|pv| claim_ref(pv).is_none())
        .min_by_key(|pv| (size(pv), pv.metadata.name.clone()))
        .cloned()
}

/// The next step for `claim`, given every volume and class.
pub fn claim_step(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    classes: &[Arc<StorageClass>],
) -> ClaimStep {
    let by_name = |name: &str| {
        volumes
            .iter()
            .find(|pv| pv.metadata.name.as_deref() == Some(name))
            .cloned()
    };
    let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if let Some(name) = volume_name(claim) {
        let Some(pv) = by_name(name) else {
            return if bound {
                ClaimStep::Lost
            } else {
                ClaimStep::Pending {
                    reason: "FailedBinding",
                    message: format!("volume \"{name}\" not found"),
                }
            };
        };
        return match claim_ref(&pv) {
            Some(r) if refers_to(r, claim) && has_uid(r) => {
                if bound && in_sync(claim, &pv) {
                    ClaimStep::InSync
                } else {
                    ClaimStep::Complete(pv)
                }
            }
            Some(r) if !refers_to(r, claim) => ClaimStep::Pending {
                reason: "FailedBinding",
                message: format!("volume \"{name}\" already bound to a different claim."),
            },
            _ => ClaimStep::Reserve(reserved(&pv, claim)),
        };
    }
    if let Some(pv) = best_volume(claim, volumes) {
        return if claim_ref(&pv).is_some_and(has_uid) {
            ClaimStep::Complete(pv)
        } else {
            ClaimStep::Reserve(reserved(&pv, claim))
        };
    }
    let class_name = claim_class(claim);
    if class_name.is_empty() {
        return ClaimStep::Pending {
            reason: "FailedBinding",
            message: "no persistent volumes available for this claim and no storage class is set"
                .into(),
        };
    }
    let Some(class) = classes
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(class_name))
    else {
        return ClaimStep::Pending {
            reason: "ProvisioningFailed",
            message: format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
        };
    };
    if class.provisioner != LOCAL_PATH_PROVISIONER {
        return ClaimStep::Pending {
            reason: "ExternalProvisioning",
            message: format!(
                "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator.",
                class.provisioner
            ),
        };
    }
    if class.volume_binding_mode.as_deref() != Some("WaitForFirstConsumer") {
        return ClaimStep::Pending {
            reason: "ProvisioningFailed",
            message: format!(
                "storageclass \"{class_name}\": {LOCAL_PATH_PROVISIONER} creates a directory on the node of the first pod using the claim and needs volumeBindingMode WaitForFirstConsumer"
            ),
        };
    }
    let node = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SELECTED_NODE))
        .filter(|n| !n.is_empty());
    match node {
        None => ClaimStep::Pending {
            reason: "WaitForFirstConsumer",
            message: "waiting for first consumer to be created before binding".into(),
        },
        Some(node) => match provisioned(claim, class, node) {
            Some(pv) => ClaimStep::Provision(pv),
            None => ClaimStep::Pending {
                reason: "ProvisioningFailed",
                message: "the claim has no uid or storage request".into(),
            },
        },
    }
}

/// True if the claim's spec and status already show its binding to `pv`.
fn in_sync(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let status = claim.status.as_ref();
    phase(pv) == "Bound"
        && volume_name(claim) == pv.metadata.name.as_deref()
        && status.and_then(|s| s.capacity.as_ref())
            == pv.spec.as_ref().and_then(|s| s.capacity.as_ref())
        && status.and_then(|s| s.access_modes.as_deref()) == Some(volume_modes(pv))
}

/// `pv` pointing at `claim`.
fn reserved(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> PersistentVolume {
    let mut pv = pv.clone();
    let spec = pv.spec.get_or_insert_with(Default::default);
    spec.claim_ref = Some(reference(claim));
    pv.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(BOUND_BY_CONTROLLER.into(), "yes".into());
    pv
}

fn reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The node-relative path of a provisioned claim's directory.
pub fn local_path(namespace: &str, claim: &str, uid: &str) -> String {
    format!("{LOCAL_PATH_DIR}/{namespace}/{claim}-{uid}")
}

/// The volume the local-path provisioner creates for `claim` on `node`:
/// `pvc-<claim uid>`, the claim's size and access modes, the class's
/// reclaim policy, pinned to the node, already pointing at the claim.
pub fn provisioned(
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
    node: &str,
) -> Option<PersistentVolume> {
    let uid = claim.metadata.uid.as_deref().filter(|u| !u.is_empty())?;
    let namespace = claim.metadata.namespace.as_deref().unwrap_or_default();
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let storage = request(claim)?.clone();
    let spec = claim.spec.clone().unwrap_or_default();
    Some(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(format!("pvc-{uid}")),
            annotations: Some(BTreeMap::from([(
                PROVISIONED_BY.to_string(),
                LOCAL_PATH_PROVISIONER.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: spec.access_modes,
            capacity: Some(BTreeMap::from([("storage".to_string(), storage)])),
            claim_ref: Some(reference(claim)),
            local: Some(LocalVolumeSource {
                path: local_path(namespace, name, uid),
                fs_type: None,
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.into(),
                            operator: "In".into(),
                            values: Some(vec![node.to_string()]),
                        }]),
                        match_fields: None,
                    }],
                }),
            }),
            persistent_volume_reclaim_policy: Some(
                class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
            ),
            storage_class_name: class.metadata.name.clone(),
            volume_mode: spec.volume_mode,
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}

/// The next step for a volume, given every claim: Available while free,
/// Bound while its claim is bound to it, and Released, deleted or Failed
/// by its reclaim policy once the claim is gone.
pub fn volume_step(pv: &PersistentVolume, claims: &[Arc<PersistentVolumeClaim>]) -> VolumeStep {
    if pv.metadata.deletion_timestamp.is_some() {
        return VolumeStep::InSync;
    }
    let want = |p: &'static str| {
        if phase(pv) == p {
            VolumeStep::InSync
        } else {
            VolumeStep::Phase(p, None)
        }
    };
    let Some(reference) = claim_ref(pv) else {
        return want("Available");
    };
    let claim = claims
        .iter()
        .find(|c| c.metadata.namespace == reference.namespace && c.metadata.name == reference.name);
    match claim {
        Some(c) if refers_to(reference, c) => {
            if volume_name(c) == pv.metadata.name.as_deref() {
                want("Bound")
            } else {
                // Reserved or pre-bound: the claim's side is still to come.
                want("Available")
            }
        }
        // Pre-bound by a user to a claim that does not exist yet.
        _ if !has_uid(reference) => want("Available"),
        // The claim it was bound to is gone.
        _ => released(pv),
    }
}

fn released(pv: &PersistentVolume) -> VolumeStep {
    if matches!(phase(pv), "Released" | "Failed") {
        return VolumeStep::InSync;
    }
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    let provisioned_here = pv
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PROVISIONED_BY))
        .is_some_and(|p| p == LOCAL_PATH_PROVISIONER);
    match policy {
        "Delete" if provisioned_here => VolumeStep::Delete,
        "Delete" => VolumeStep::Phase(
            "Failed",
            Some("error getting deleter volume plugin for volume: no deletable volume plugin matched".into()),
        ),
        "Recycle" => VolumeStep::Phase(
            "Failed",
            Some("no volume plugin matched: recycling is not supported".into()),
        ),
        _ => VolumeStep::Phase("Released", None),
    }
}
