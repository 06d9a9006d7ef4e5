//! The Deployment decisions as pure functions: the pod-template hash that
//! names ReplicaSets, revisions, maxSurge/maxUnavailable, one step of a
//! RollingUpdate or Recreate rollout, which old ReplicaSets history
//! cleanup removes, and the status with its conditions. These follow
//! kube-controller-manager's deployment controller.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};

/// The label (and ReplicaSet name suffix) that tells templates apart.
pub const HASH_LABEL: &str = "pod-template-hash";
/// The revision a ReplicaSet's template was rolled out as.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
];

/// Characters a hash is spelled with (no vowels, so no words), as
/// `rand.SafeEncodeString`.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable short hash of `template` (and the collision count, which
/// changes the name when a different ReplicaSet already took it).
pub fn template_hash(template: &PodTemplateSpec, collision_count: i32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(semantic(template).to_string());
    if collision_count > 0 {
        hasher.update(collision_count.to_le_bytes());
    }
    let digest = hasher.finalize();
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    value
        .to_string()
        .bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// `template` without the pod-template-hash label.
pub fn without_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    t
}

/// Whether two templates are the same but for the pod-template-hash label,
/// comparing as Kubernetes' semantic equality does: an empty object, list
/// or map equals a missing one (`kubectl rollout undo` sends
/// `resources: {}` where the stored ReplicaSet has none).
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    semantic(&without_hash(a)) == semantic(&without_hash(b))
}

/// A template as JSON with empty values removed.
fn semantic(template: &PodTemplateSpec) -> serde_json::Value {
    let mut value = serde_json::to_value(template).unwrap_or_default();
    prune_empty(&mut value);
    value
}

/// Removes nulls and empty objects and arrays, innermost first.
fn prune_empty(value: &mut serde_json::Value) {
    use serde_json::Value;
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    match value {
        Value::Object(map) => {
            for v in map.values_mut() {
                prune_empty(v);
            }
            map.retain(|_, v| !empty(v));
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

/// The revision annotation of `rs` (0 when missing).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The annotations a new ReplicaSet gets: the deployment's own (but for
/// the controller's), the revision and the replica counts.
pub fn new_rs_annotations(
    deployment: &Deployment,
    revision: i64,
    replicas: i32,
    max_surge: i32,
) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> = deployment
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(REVISION.into(), revision.to_string());
    annotations.insert(DESIRED_REPLICAS.into(), replicas.to_string());
    annotations.insert(MAX_REPLICAS.into(), (replicas + max_surge).to_string());
    annotations
}

fn scaled(value: Option<&IntOrString>, default_percent: i32, total: i32, round_up: bool) -> i32 {
    let percent = match value {
        None => default_percent,
        Some(IntOrString::Int(n)) => return (*n).max(0),
        Some(IntOrString::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse().ok()) {
            Some(p) => p,
            None => return s.parse::<i32>().unwrap_or(0).max(0),
        },
    };
    let product = i64::from(percent.max(0)) * i64::from(total.max(0));
    let value = if round_up {
        (product + 99) / 100
    } else {
        product / 100
    };
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) as pod counts
/// for `replicas`; both default to 25%, and both zero means one may be
/// unavailable.
pub fn fenceposts(deployment: &Deployment, replicas: i32) -> (i32, i32) {
    let rolling = deployment
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(
        rolling.and_then(|r| r.max_surge.as_ref()),
        25,
        replicas,
        true,
    );
    let unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        25,
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// What a rollout step needs to know of one ReplicaSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsState {
    pub name: String,
    /// spec.replicas.
    pub replicas: i32,
    /// status.replicas: pods that still exist.
    pub current: i32,
    pub available: i32,
}

impl RsState {
    pub fn of(rs: &ReplicaSet) -> Self {
        Self {
            name: rs.metadata.name.clone().unwrap_or_default(),
            replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            current: rs.status.as_ref().map_or(0, |s| s.replicas),
            available: rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0),
        }
    }
}

/// New spec.replicas for some ReplicaSets, by name.
pub type Scales = Vec<(String, i32)>;

/// One step of a RollingUpdate: scale the new ReplicaSet up within
/// maxSurge, or else scale old ones (`old` oldest first) down within
/// maxUnavailable, unhealthy replicas first.
pub fn rolling_step(
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    new: &RsState,
    old: &[RsState],
) -> Scales {
    let all_replicas: i32 = new.replicas + old.iter().map(|r| r.replicas).sum::<i32>();
    if new.replicas > replicas {
        return vec![(new.name.clone(), replicas)];
    }
    if new.replicas < replicas {
        let max_total = replicas + max_surge;
        if all_replicas < max_total {
            let up = (max_total - all_replicas).min(replicas - new.replicas);
            return vec![(new.name.clone(), new.replicas + up)];
        }
    }
    let old_replicas: i32 = old.iter().map(|r| r.replicas).sum();
    if old_replicas == 0 {
        return Vec::new();
    }
    let min_available = replicas - max_unavailable;
    let new_unavailable = new.replicas - new.available;
    let max_scaled_down = all_replicas - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut olds: Vec<RsState> = old.to_vec();
    let mut changed = vec![false; olds.len()];
    // Replicas that are not available go first: removing them costs
    // nothing.
    let mut cleaned = 0;
    for (rs, changed) in olds.iter_mut().zip(changed.iter_mut()) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = rs.replicas - rs.available;
        if rs.replicas == 0 || unhealthy <= 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        rs.replicas -= down;
        cleaned += down;
        *changed = true;
    }
    // Then available ones, as far as minAvailable allows.
    let available: i32 = new.available + old.iter().map(|r| r.available).sum::<i32>();
    if available > min_available {
        let budget = (available - min_available).min(max_scaled_down - cleaned);
        let mut done = 0;
        for (rs, changed) in olds.iter_mut().zip(changed.iter_mut()) {
            if done >= budget {
                break;
            }
            if rs.replicas == 0 {
                continue;
            }
            let down = rs.replicas.min(budget - done);
            rs.replicas -= down;
            done += down;
            *changed = true;
        }
    }
    olds.into_iter()
        .zip(changed)
        .filter(|(_, c)| *c)
        .map(|(rs, _)| (rs.name, rs.replicas))
        .collect()
}

/// One step of a Recreate rollout: scale every old ReplicaSet to 0, wait
/// until their pods are gone, then scale the new one up.
pub fn recreate_step(replicas: i32, new: &RsState, old: &[RsState]) -> Scales {
    let scale_down: Scales = old
        .iter()
        .filter(|r| r.replicas > 0)
        .map(|r| (r.name.clone(), 0))
        .collect();
    if !scale_down.is_empty() || old.iter().any(|r| r.current > 0) {
        return scale_down;
    }
    if new.replicas == replicas {
        Vec::new()
    } else {
        vec![(new.name.clone(), replicas)]
    }
}

/// The old ReplicaSets to delete so at most `limit` scaled-down ones stay:
/// those at 0 replicas with no pods left, lowest revision first.
pub fn history_to_delete(old: &[&ReplicaSet], limit: i32) -> Vec<String> {
    let mut idle: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| {
            let s = RsState::of(rs);
            s.replicas == 0 && s.current == 0 && rs.metadata.deletion_timestamp.is_none()
        })
        .collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if idle.len() <= limit {
        return Vec::new();
    }
    idle.sort_by_key(|rs| {
        (
            revision(rs),
            rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        )
    });
    let extra = idle.len() - limit;
    idle.into_iter()
        .take(extra)
        .filter_map(|rs| rs.metadata.name.clone())
        .collect()
}

/// The status a deployment reports, given its ReplicaSets. Conditions
/// keep their times while their status (transition) or reason and message
/// (update) stay the same.
pub fn status(
    deployment: &Deployment,
    new: Option<&ReplicaSet>,
    all: &[&ReplicaSet],
    now: Timestamp,
) -> DeploymentStatus {
    let spec = deployment.spec.as_ref();
    let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
    let paused = spec.and_then(|s| s.paused).unwrap_or(false);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
    let replicas = sum(&|rs| rs.status.as_ref().map_or(0, |s| s.replicas));
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    });
    let updated = new
        .and_then(|rs| rs.status.as_ref())
        .map_or(0, |s| s.replicas);
    let (_, max_unavailable) = fenceposts(deployment, desired);
    let previous = deployment.status.as_ref();
    let generation = deployment.metadata.generation.unwrap_or(0);

    let mut conditions: Vec<DeploymentCondition> = previous
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let (status, reason, message) = if available >= desired - max_unavailable {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition(
        &mut conditions,
        "Available",
        status,
        reason,
        message.into(),
        now,
    );
    let new_name = new
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();
    let complete =
        new.is_some() && updated == desired && replicas == desired && available == desired;
    let progressing = if paused {
        (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".to_string(),
        )
    } else if complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else if new.is_some() {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
        )
    } else {
        (
            "True",
            "NewReplicaSetCreated",
            "Creating a new ReplicaSet.".to_string(),
        )
    };
    set_condition(
        &mut conditions,
        "Progressing",
        progressing.0,
        progressing.1,
        progressing.2,
        now,
    );

    DeploymentStatus {
        observed_generation: Some(generation),
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired - available).max(0)),
        collision_count: previous.and_then(|s| s.collision_count),
        conditions: Some(conditions),
    }
}

fn set_condition(
    conditions: &mut Vec<DeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) {
    let mut next = DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
        last_update_time: Some(Time(now)),
    };
    if let Some(old) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if old.status == next.status {
            next.last_transition_time = old.last_transition_time.clone();
            if old.reason == next.reason && old.message == next.message {
                next.last_update_time = old.last_update_time.clone();
            }
        }
        *old = next;
    } else {
        conditions.push(next);
    }
}
