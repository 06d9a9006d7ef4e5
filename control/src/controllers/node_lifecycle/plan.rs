//! The node lifecycle decisions as pure functions of a Node, when the
//! controller last heard from it and the pods bound to it: the conditions
//! to write when it went silent, its taints, and which pods to evict or
//! force-delete. No I/O, so every rule is unit tested.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::scheduler::filters::tolerates;

/// Taint of a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint of a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";
/// Reason and message of a condition the controller set to Unknown.
pub const REASON_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_STATUS_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// Reason and message of a condition the node never reported.
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";
/// The conditions a silent node gets even if it never reported them.
const NODE_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
/// A pod's grace period when it names none.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// The values by which a node shows it is alive: its Lease's renewTime
/// and its Ready condition's lastHeartbeatTime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub lease_renewed: Option<Timestamp>,
    pub ready_heartbeat: Option<Timestamp>,
}

impl Heartbeat {
    pub fn of(node: &Node, lease: Option<&Lease>) -> Self {
        Self {
            lease_renewed: lease
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0),
            ready_heartbeat: condition(node, "Ready")
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0),
        }
    }
}

/// A heartbeat and when the controller first saw it. Times are the
/// controller's own, never the node's, so a node whose clock is off is
/// judged by when its heartbeats arrive (as kube-controller-manager does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub heartbeat: Heartbeat,
    pub at: Timestamp,
}

/// The observation after seeing `current` at `now`: its time moves only
/// when a heartbeat value changed. The first one counts from `now`.
pub fn observe(previous: Option<&Observation>, current: Heartbeat, now: Timestamp) -> Observation {
    match previous {
        Some(p) if p.heartbeat == current => p.clone(),
        _ => Observation {
            heartbeat: current,
            at: now,
        },
    }
}

/// What one reconcile of a node does.
#[derive(Debug, Default)]
pub struct Plan {
    /// The node went silent: its new `status.conditions`.
    pub conditions: Option<Vec<NodeCondition>>,
    /// Its new `spec.taints`, when they change.
    pub taints: Option<Vec<Taint>>,
    /// Pods to delete (gracefully): they do not tolerate a NoExecute taint,
    /// or no longer.
    pub evict: Vec<Arc<Pod>>,
    /// Terminating pods on an unreachable node, past their grace period:
    /// deleted with gracePeriodSeconds 0, as no node will confirm them.
    pub force_delete: Vec<Arc<Pod>>,
    /// When to look again: the earliest deadline still ahead.
    pub requeue_after: Option<Duration>,
}

impl Plan {
    fn wake_at(&mut self, at: Timestamp, now: Timestamp) {
        let wait = until(now, at);
        self.requeue_after = Some(self.requeue_after.map_or(wait, |w| w.min(wait)));
    }
}

/// The decisions for `node`, last heard from at `last_heard`, with the
/// pods bound to it, at `now`, for a grace period of `grace`.
pub fn plan(
    node: &Node,
    last_heard: Timestamp,
    pods: &[Arc<Pod>],
    now: Timestamp,
    grace: Duration,
) -> Plan {
    let mut plan = Plan::default();
    let current: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let silent_from = after(last_heard, grace);
    let ready_unknown = current
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "Unknown");
    let conditions = if now < silent_from {
        plan.wake_at(silent_from, now);
        current
    } else if ready_unknown {
        current
    } else {
        let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let marked = mark_unknown(&current, created, now);
        plan.conditions = Some(marked.clone());
        marked
    };
    let ready = conditions.iter().find(|c| c.type_ == "Ready");

    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let desired = desired_taints(&taints, ready.map(|c| c.status.as_str()), now);
    if desired != taints {
        plan.taints = Some(desired.clone());
    }

    let no_execute: Vec<&Taint> = desired.iter().filter(|t| t.effect == NO_EXECUTE).collect();
    let unknown_since = ready
        .filter(|c| c.status == "Unknown")
        .map(|c| c.last_transition_time.as_ref().map_or(now, |t| t.0));
    for pod in pods {
        if let Some(deleted) = pod.metadata.deletion_timestamp.as_ref() {
            if let Some(since) = unknown_since {
                let due = deleted.0.max(after(since, pod_grace(pod)));
                if due <= now {
                    plan.force_delete.push(pod.clone());
                } else {
                    plan.wake_at(due, now);
                }
            }
            continue;
        }
        if is_finished(pod) {
            continue;
        }
        if let Some(due) = eviction_time(pod, &no_execute, now) {
            if due <= now {
                plan.evict.push(pod.clone());
            } else {
                plan.wake_at(due, now);
            }
        }
    }
    plan
}

/// Pods bound to a node that has no Node object: all of them, once the
/// node has been missing since `missing_since` for `quarantine` (a node
/// registering again in the meantime keeps them), as pod GC does.
pub fn orphans(
    pods: &[Arc<Pod>],
    missing_since: Timestamp,
    now: Timestamp,
    quarantine: Duration,
) -> (Vec<Arc<Pod>>, Option<Duration>) {
    let due = after(missing_since, quarantine);
    if pods.is_empty() {
        (Vec::new(), None)
    } else if due <= now {
        (pods.to_vec(), None)
    } else {
        (Vec::new(), Some(until(now, due)))
    }
}

/// Every condition Unknown, as kube-controller-manager marks a node that
/// stopped posting status; the node conditions it never posted are added.
fn mark_unknown(
    conditions: &[NodeCondition],
    created: Option<Timestamp>,
    now: Timestamp,
) -> Vec<NodeCondition> {
    let mut marked: Vec<NodeCondition> = conditions
        .iter()
        .map(|c| {
            if c.status == "Unknown" {
                return c.clone();
            }
            NodeCondition {
                status: "Unknown".into(),
                reason: Some(REASON_STATUS_UNKNOWN.into()),
                message: Some(MESSAGE_STATUS_UNKNOWN.into()),
                last_transition_time: Some(Time(now)),
                ..c.clone()
            }
        })
        .collect();
    for kind in NODE_CONDITIONS {
        if !marked.iter().any(|c| c.type_ == kind) {
            marked.push(NodeCondition {
                type_: kind.into(),
                status: "Unknown".into(),
                reason: Some(REASON_NEVER_UPDATED.into()),
                message: Some(MESSAGE_NEVER_UPDATED.into()),
                last_heartbeat_time: created.map(Time),
                last_transition_time: Some(Time(now)),
            });
        }
    }
    marked
}

fn is_lifecycle_taint(taint: &Taint) -> bool {
    (taint.key == TAINT_UNREACHABLE || taint.key == TAINT_NOT_READY)
        && (taint.effect == NO_SCHEDULE || taint.effect == NO_EXECUTE)
}

/// The taints a node should carry for its Ready status: unreachable when
/// Unknown, not-ready when False, neither when True; other taints are
/// kept, and so are ours that stay (with their timeAdded). A node without
/// a Ready condition keeps what it has.
fn desired_taints(current: &[Taint], ready: Option<&str>, now: Timestamp) -> Vec<Taint> {
    let key = match ready {
        None => return current.to_vec(),
        Some("Unknown") => Some(TAINT_UNREACHABLE),
        Some("False") => Some(TAINT_NOT_READY),
        Some(_) => None,
    };
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !is_lifecycle_taint(t) || Some(t.key.as_str()) == key)
        .cloned()
        .collect();
    if let Some(key) = key {
        for effect in [NO_SCHEDULE, NO_EXECUTE] {
            if !taints.iter().any(|t| t.key == key && t.effect == effect) {
                taints.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: Some(Time(now)),
                    value: None,
                });
            }
        }
    }
    taints
}

/// When `pod` must leave a node with the NoExecute taints `taints`: at
/// once for a taint it does not tolerate; `timeAdded` plus the shortest
/// tolerationSeconds of the tolerations it uses; never if those name no
/// seconds.
fn eviction_time(pod: &Pod, taints: &[&Taint], now: Timestamp) -> Option<Timestamp> {
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let mut due: Option<Timestamp> = None;
    for taint in taints {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Some(now);
        }
        let Some(seconds) = used.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map_or(now, |t| t.0);
        let at = after(added, Duration::from_secs(seconds.max(0).unsigned_abs()));
        due = Some(due.map_or(at, |d| d.min(at)));
    }
    due
}

/// The grace period of a terminating pod.
fn pod_grace(pod: &Pod) -> Duration {
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    Duration::from_secs(seconds.max(0).unsigned_abs())
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

fn after(at: Timestamp, wait: Duration) -> Timestamp {
    SignedDuration::try_from(wait)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// How long from `now` until `at` (zero if it has passed).
fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}
