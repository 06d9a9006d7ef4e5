//! What a StatefulSet needs next, decided from its pods without I/O, in
//! the order kube-controller-manager's StatefulSet controller takes: fix
//! or create the replicas by ascending ordinal, then remove the condemned
//! (ordinals beyond `replicas`) by descending ordinal, then roll pods of
//! an old revision over, highest ordinal first, one at a time.
//!
//! With `OrderedReady` management (monotonic) a step waits until every
//! pod before it is Running and Ready; with `Parallel` the replica and
//! condemned steps are all taken at once. A rolling update always replaces
//! one pod at a time, and only while the others are healthy.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::controllers::replicaset::plan::{is_available, is_terminating};

/// The label naming the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label naming the pod itself, so a Service can select one identity.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The parts of a StatefulSet the plan depends on.
#[derive(Debug, Clone)]
pub struct SetSpec {
    pub name: String,
    pub replicas: i32,
    /// `spec.ordinals.start`.
    pub start: i32,
    /// `podManagementPolicy: Parallel`.
    pub parallel: bool,
    /// The RollingUpdate partition; `None` for `OnDelete`.
    pub partition: Option<i32>,
    pub min_ready_seconds: i32,
    pub current_revision: String,
    pub update_revision: String,
}

impl SetSpec {
    /// The revision a new pod of `ordinal` is made from: the current one
    /// below the partition, the update revision from it on.
    pub fn revision_for(&self, ordinal: i32) -> &str {
        match self.partition {
            Some(p) if ordinal < self.start.saturating_add(p) => &self.current_revision,
            _ => &self.update_revision,
        }
    }

    fn ordinals(&self) -> std::ops::Range<i32> {
        self.start..self.start.saturating_add(self.replicas.max(0))
    }
}

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// It finished (Failed or Succeeded): its identity is made again.
    Finished,
    /// Its ordinal is beyond `replicas`.
    ScaleDown,
    /// It is of an old revision.
    Update,
}

/// One change to make.
#[derive(Debug, Clone)]
pub enum Step {
    /// Create the pod of `ordinal` (and its missing claims) from `revision`.
    Create { ordinal: i32, revision: String },
    /// Delete `pod`.
    Delete { pod: Arc<Pod>, reason: DeleteReason },
}

/// The figures of `.status` that come from the pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
}

/// The steps to take now and the pod counts.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub counts: Counts,
    /// A pod that becomes available later (minReadySeconds): look again
    /// after this many seconds.
    pub recheck_in: Option<i64>,
}

/// The ordinal in a pod name `<set>-<ordinal>`, if it is one of `set`'s.
pub fn ordinal_of(set: &str, pod_name: &str) -> Option<i32> {
    let rest = pod_name.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok().filter(|o: &i32| *o >= 0)
}

/// The name of the pod of `ordinal`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// The name of claim `template` for the pod of `ordinal`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The revision label of `pod`.
pub fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn is_finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Failed" | "Succeeded")
}

/// Running, Ready, and Ready for minReadySeconds.
fn is_healthy(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    !is_terminating(pod) && phase(pod) == "Running" && is_available(pod, min_ready_seconds, now)
}

/// Decides the next steps for `set` given its pods (the pods it controls,
/// each named `<set>-<ordinal>`).
pub fn plan(set: &SetSpec, pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let mut by_ordinal: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    for pod in pods {
        if let Some(o) = pod
            .metadata
            .name
            .as_deref()
            .and_then(|n| ordinal_of(&set.name, n))
        {
            by_ordinal.insert(o, Arc::clone(pod));
        }
    }
    let mut plan = Plan {
        counts: counts(set, by_ordinal.values(), now),
        recheck_in: recheck_in(set, by_ordinal.values(), now),
        ..Plan::default()
    };
    let monotonic = !set.parallel;
    let healthy = |p: &Pod| is_healthy(p, set.min_ready_seconds, now);

    for ordinal in set.ordinals() {
        match by_ordinal.get(&ordinal) {
            None => {
                plan.steps.push(Step::Create {
                    ordinal,
                    revision: set.revision_for(ordinal).to_string(),
                });
                if monotonic {
                    return plan;
                }
            }
            Some(pod) if is_terminating(pod) => {
                if monotonic {
                    return plan;
                }
            }
            Some(pod) if is_finished(pod) => {
                plan.steps.push(Step::Delete {
                    pod: Arc::clone(pod),
                    reason: DeleteReason::Finished,
                });
                if monotonic {
                    return plan;
                }
            }
            Some(pod) if !healthy(pod) && monotonic => return plan,
            Some(_) => {}
        }
    }

    let range = set.ordinals();
    let unhealthy_replica = by_ordinal
        .iter()
        .any(|(o, p)| range.contains(o) && !healthy(p));
    for (ordinal, pod) in by_ordinal.iter().rev() {
        if range.contains(ordinal) {
            continue;
        }
        if is_terminating(pod) {
            if monotonic {
                return plan;
            }
            continue;
        }
        if monotonic && unhealthy_replica {
            return plan;
        }
        plan.steps.push(Step::Delete {
            pod: Arc::clone(pod),
            reason: DeleteReason::ScaleDown,
        });
        if monotonic {
            return plan;
        }
    }
    if !plan.steps.is_empty() {
        return plan;
    }

    let Some(partition) = set.partition else {
        return plan;
    };
    let lowest = set.start.saturating_add(partition.max(0));
    for ordinal in set.ordinals().rev() {
        if ordinal < lowest {
            break;
        }
        let Some(pod) = by_ordinal.get(&ordinal) else {
            return plan;
        };
        if revision_of(pod) != Some(set.update_revision.as_str()) && !is_terminating(pod) {
            plan.steps.push(Step::Delete {
                pod: Arc::clone(pod),
                reason: DeleteReason::Update,
            });
            return plan;
        }
        if !healthy(pod) {
            return plan;
        }
    }
    plan
}

fn counts<'a>(set: &SetSpec, pods: impl Iterator<Item = &'a Arc<Pod>>, now: Timestamp) -> Counts {
    let mut c = Counts::default();
    for pod in pods {
        c.replicas += 1;
        if phase(pod) == "Running" && is_available(pod, 0, now) {
            c.ready += 1;
            if is_available(pod, set.min_ready_seconds, now) {
                c.available += 1;
            }
        }
        if !is_terminating(pod) {
            let revision = revision_of(pod);
            if revision == Some(set.current_revision.as_str()) {
                c.current += 1;
            }
            if revision == Some(set.update_revision.as_str()) {
                c.updated += 1;
            }
        }
    }
    c
}

/// Seconds until the next Ready pod has been Ready for minReadySeconds.
fn recheck_in<'a>(
    set: &SetSpec,
    pods: impl Iterator<Item = &'a Arc<Pod>>,
    now: Timestamp,
) -> Option<i64> {
    if set.min_ready_seconds <= 0 {
        return None;
    }
    pods.filter(|p| !is_available(p, set.min_ready_seconds, now))
        .filter_map(|p| crate::controllers::replicaset::plan::ready_since(p).flatten())
        .map(|since| since.as_second() + i64::from(set.min_ready_seconds) - now.as_second())
        .filter(|s| *s > 0)
        .min()
}
