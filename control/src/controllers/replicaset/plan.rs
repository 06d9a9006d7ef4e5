//! The ReplicaSet decisions as pure functions of the owner and the pods of
//! its namespace: which pods to adopt, release, create and delete, and the
//! status counts. No I/O, so every rule is unit tested.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use wasmpod_api::selector::LabelSelector;

/// At most this many pods are created or deleted by one reconcile, as
/// kube-controller-manager's `burstReplicas`.
pub const BURST_REPLICAS: usize = 500;

/// What one reconcile does to the pods.
#[derive(Debug, Default)]
pub struct Plan {
    /// Orphans whose labels match: set this owner as their controller.
    pub adopt: Vec<Arc<Pod>>,
    /// Owned pods whose labels no longer match: drop the ownerReference.
    pub release: Vec<Arc<Pod>>,
    /// How many new pods to create.
    pub create: usize,
    /// Pods to delete, the ones that matter least first.
    pub delete: Vec<Arc<Pod>>,
    /// The active pods (owned or being adopted) that count as replicas.
    pub active: Vec<Arc<Pod>>,
}

/// Whether `selector` selects an object with `labels`.
pub fn selects(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let map: serde_json::Map<String, serde_json::Value> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    !selector.is_empty() && selector.matches(Some(&map))
}

/// The uid of the object controlling `pod`, if any.
pub fn controller_uid<
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
>(
    obj: &K,
) -> Option<&str> {
    obj.metadata()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Not terminating and not finished: a pod that counts as a replica.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminating(pod) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// When the pod's Ready condition last became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            since
                .as_second()
                .saturating_add(i64::from(min_ready_seconds))
                <= now.as_second()
        }
    }
}

/// Decides the changes that make the pods match `replicas`.
///
/// `pods` are the pods of the owner's namespace; `may_adopt` is false
/// while the owner itself is being deleted.
pub fn plan(
    owner_uid: &str,
    selector: &LabelSelector,
    replicas: i32,
    pods: &[Arc<Pod>],
    may_adopt: bool,
) -> Plan {
    let mut plan = Plan::default();
    for pod in pods {
        let controller = controller_uid(pod.as_ref());
        // Another controller's pods are not ours to adopt or count; most
        // pods of a busy namespace are, so the selector is evaluated only
        // for this owner's pods and for orphans.
        if controller.is_some_and(|uid| uid != owner_uid) {
            continue;
        }
        let matches = selects(selector, pod.metadata.labels.as_ref());
        match controller {
            Some(_) => {
                if !matches {
                    plan.release.push(Arc::clone(pod));
                } else if is_active(pod) {
                    plan.active.push(Arc::clone(pod));
                }
            }
            None if matches && may_adopt && !is_terminating(pod) => {
                plan.adopt.push(Arc::clone(pod));
                if is_active(pod) {
                    plan.active.push(Arc::clone(pod));
                }
            }
            _ => {}
        }
    }
    let want = usize::try_from(replicas.max(0)).unwrap_or(0);
    let have = plan.active.len();
    if have < want {
        plan.create = (want - have).min(BURST_REPLICAS);
    } else if have > want {
        let mut victims = plan.active.clone();
        victims.sort_by(|a, b| deletion_order(a, b));
        victims.truncate((have - want).min(BURST_REPLICAS));
        plan.delete = victims;
    }
    plan
}

/// Orders pods so that the ones to delete first come first, as
/// kube-controller-manager's `ActivePodsWithRanks`: unscheduled before
/// scheduled, Pending before Unknown before Running, not ready before
/// ready, ready for less time first, more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let phase_rank = |p: &Pod| match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    let restarts = |p: &Pod| -> i32 {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        // Ready more recently (a later time) goes first.
        .then_with(|| ready_since(b).flatten().cmp(&ready_since(a).flatten()))
        .then_with(|| restarts(b).cmp(&restarts(a)))
        // Newer (a later creation time) goes first.
        .then_with(|| created(b).cmp(&created(a)))
}

/// The counts a ReplicaSet or ReplicationController reports in status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    pub observed_generation: i64,
}

/// The status counts of the active pods: fully labeled means carrying every
/// label of the template.
pub fn counts(
    active: &[Arc<Pod>],
    template_labels: Option<&BTreeMap<String, String>>,
    min_ready_seconds: i32,
    generation: i64,
    now: Timestamp,
) -> ReplicaCounts {
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(active.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let fully_labeled = |p: &Pod| {
        template_labels.into_iter().flatten().all(|(k, v)| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(k))
                .is_some_and(|have| have == v)
        })
    };
    ReplicaCounts {
        replicas: count(&|_| true),
        fully_labeled: count(&fully_labeled),
        ready: count(&is_ready),
        available: count(&|p| is_available(p, min_ready_seconds, now)),
        observed_generation: generation,
    }
}

/// When the next pod becomes available by minReadySeconds, in seconds from
/// `now`, if one is ready but not yet available.
pub fn next_available_in(
    active: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<u64> {
    if min_ready_seconds <= 0 {
        return None;
    }
    active
        .iter()
        .filter_map(|p| ready_since(p).flatten())
        .map(|since| since.as_second() + i64::from(min_ready_seconds) - now.as_second())
        .filter(|left| *left > 0)
        .min()
        .and_then(|left| u64::try_from(left).ok())
}

/// The batch sizes a burst of `n` creations goes in: 1, 2, 4, ... as
/// kube's slow start, so a failing template fails once, not `n` times.
pub fn slow_start_batches(n: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut left = n;
    let mut size = 1;
    while left > 0 {
        let take = size.min(left);
        batches.push(take);
        left -= take;
        size *= 2;
    }
    batches
}
