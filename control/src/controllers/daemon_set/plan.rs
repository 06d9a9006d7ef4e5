//! The DaemonSet decisions as pure functions of the DaemonSet, the nodes
//! and the pods of its namespace, after kube-controller-manager's daemon
//! controller: which nodes should run a daemon pod, which pods to adopt,
//! release, create and delete (including one RollingUpdate step), and the
//! status counts. No I/O, so every rule is unit tested.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use wasmpod_api::selector::LabelSelector;

use crate::controllers::replicaset::plan::{
    controller_uid, is_available, is_ready, is_terminating, selects,
};
use crate::scheduler::cluster::NodeInfo;
use crate::scheduler::filters::{matches_node_selector, untolerated_taint};

/// The label telling a daemon pod's template apart, as Kubernetes'
/// `controller-revision-hash`.
pub const HASH_LABEL: &str = "controller-revision-hash";

/// The tolerations Kubernetes gives every daemon pod, so a node's
/// conditions never evict or block it: `(key, effect)`, operator Exists.
pub const DEFAULT_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// The only field a node selector term may match.
const NODE_NAME_FIELD: &str = "metadata.name";

/// What one reconcile does.
#[derive(Debug, Default)]
pub struct Plan {
    /// Orphans whose labels match: set this DaemonSet as their controller.
    pub adopt: Vec<Arc<Pod>>,
    /// Owned pods whose labels no longer match: drop the ownerReference.
    pub release: Vec<Arc<Pod>>,
    /// Nodes that need a daemon pod.
    pub create: Vec<String>,
    /// Pods to delete: failed, surplus, misplaced, or replaced by a
    /// rolling update.
    pub delete: Vec<Arc<Pod>>,
    /// The status the pods amount to.
    pub status: DaemonSetStatus,
}

/// Whether a daemon pod should be started on a node, and whether one
/// already there may keep running (an untolerated NoSchedule taint only
/// stops new pods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    pub should_run: bool,
    pub should_continue: bool,
}

/// `spec` with the daemon tolerations added where the template has no
/// toleration of the same key and effect.
pub fn with_daemon_tolerations(spec: &PodSpec) -> PodSpec {
    let mut spec = spec.clone();
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in DEFAULT_TOLERATIONS {
        let present = tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some(key) && t.effect.as_deref() == Some(effect));
        if !present {
            tolerations.push(Toleration {
                key: Some((*key).into()),
                operator: Some("Exists".into()),
                effect: Some((*effect).into()),
                ..Toleration::default()
            });
        }
    }
    spec
}

/// Kubernetes' `NodeShouldRunDaemonPod`: the node matches the template's
/// nodeSelector and required node affinity, and the pod (with the daemon
/// tolerations) tolerates the node's NoSchedule and NoExecute taints.
pub fn eligibility(spec: &PodSpec, node: &Node) -> Eligibility {
    let never = Eligibility {
        should_run: false,
        should_continue: false,
    };
    let info = NodeInfo {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: node.metadata.labels.clone().unwrap_or_default(),
        ..NodeInfo::default()
    };
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != info.name)
        || !matches_node_selector(spec, &info)
    {
        return never;
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let no_execute: Vec<_> = taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect();
    if untolerated_taint(tolerations, &no_execute).is_some() {
        return never;
    }
    Eligibility {
        should_run: untolerated_taint(tolerations, taints).is_none(),
        should_continue: true,
    }
}

/// The node a daemon pod is for: its `spec.nodeName`, or before binding
/// the node its required affinity names by `metadata.name`.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == NODE_NAME_FIELD && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.as_str()),
            _ => None,
        })
}

/// The pod template for `node`: the DaemonSet's template with the hash
/// label, the daemon tolerations, and a required node affinity naming
/// only `node` (replacing the template's required terms, which the node
/// was already checked against), so the scheduler binds it there.
pub fn template_for_node(template: &PodTemplateSpec, hash: &str, node: &str) -> PodTemplateSpec {
    let mut t = template.clone();
    t.metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.into());
    let mut spec = with_daemon_tolerations(&t.spec.take().unwrap_or_default());
    let only_node = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: NODE_NAME_FIELD.into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            match_expressions: None,
        }],
    };
    spec.affinity
        .get_or_insert_with(Affinity::default)
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution = Some(only_node);
    t.spec = Some(spec);
    t
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn is_updated(pod: &Pod, hash: &str) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .is_some_and(|h| h == hash)
}

/// Kubernetes' `podByCreationTimestampAndPhase`: scheduled first, then
/// oldest first, then by name.
fn oldest_first(a: &Pod, b: &Pod) -> Ordering {
    let unscheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    unscheduled(a)
        .cmp(&unscheduled(b))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// maxUnavailable scaled to `desired` nodes (a percentage rounds up); at
/// least one, so a rollout always progresses.
pub fn max_unavailable(ds: &DaemonSet, desired: usize) -> usize {
    let value = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.as_ref());
    let scaled = match value {
        None => 1,
        Some(IntOrString::Int(n)) => usize::try_from(*n).unwrap_or(0),
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<usize>().ok())
            .map_or(1, |p| (p * desired).div_ceil(100)),
    };
    scaled.max(1)
}

fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// Decides what makes the pods match the nodes. `pods` are the pods of
/// the DaemonSet's namespace, `hash` the current template's hash.
pub fn plan(
    ds: &DaemonSet,
    selector: &LabelSelector,
    hash: &str,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> Plan {
    let mut plan = Plan::default();
    let Some(spec) = ds.spec.as_ref() else {
        return plan;
    };
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let deleting = ds.metadata.deletion_timestamp.is_some();

    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in pods {
        let matches = selects(selector, pod.metadata.labels.as_ref());
        match controller_uid(pod.as_ref()) {
            Some(owner) if owner == uid => {
                if matches {
                    owned.push(Arc::clone(pod));
                } else {
                    plan.release.push(Arc::clone(pod));
                }
            }
            None if matches && !deleting && !is_terminating(pod) => {
                plan.adopt.push(Arc::clone(pod));
                owned.push(Arc::clone(pod));
            }
            _ => {}
        }
    }

    let mut by_node: BTreeMap<&str, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in &owned {
        match target_node(pod) {
            Some(node) => by_node.entry(node).or_default().push(Arc::clone(pod)),
            // A daemon pod for no node at all can never run.
            None if !is_terminating(pod) => plan.delete.push(Arc::clone(pod)),
            None => {}
        }
    }
    for pods in by_node.values_mut() {
        pods.sort_by(|a, b| oldest_first(a, b));
    }

    let template_spec = with_daemon_tolerations(&spec.template.spec.clone().unwrap_or_default());
    let mut eligible: BTreeMap<&str, Eligibility> = BTreeMap::new();
    for node in nodes {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let e = eligibility(&template_spec, node);
        eligible.insert(name, e);
        let on_node = by_node.get(name).map(Vec::as_slice).unwrap_or_default();
        manage_node(name, e, on_node, &mut plan);
    }
    // Pods for nodes that are gone.
    for (node, on_node) in &by_node {
        if !eligible.contains_key(node) {
            plan.delete
                .extend(on_node.iter().filter(|p| !is_terminating(p)).cloned());
        }
    }

    plan.status = status(ds, hash, &eligible, &by_node, now);
    if plan.create.is_empty() && plan.delete.is_empty() && is_rolling_update(ds) && !deleting {
        let desired = usize::try_from(plan.status.desired_number_scheduled).unwrap_or(0);
        plan.delete = rolling_update(
            &by_node,
            hash,
            max_unavailable(ds, desired),
            spec.min_ready_seconds.unwrap_or(0),
            now,
        );
    }
    if deleting {
        plan.create.clear();
        plan.delete.clear();
    }
    plan
}

/// Kubernetes' `podsShouldBeOnNode` for one node.
fn manage_node(name: &str, e: Eligibility, on_node: &[Arc<Pod>], plan: &mut Plan) {
    if e.should_run && on_node.is_empty() {
        plan.create.push(name.to_string());
    } else if e.should_continue {
        let mut running = Vec::new();
        for pod in on_node.iter().filter(|p| !is_terminating(p)) {
            if matches!(phase(pod), "Failed" | "Succeeded") {
                // Deleted now, replaced once it is gone.
                plan.delete.push(Arc::clone(pod));
            } else {
                running.push(pod);
            }
        }
        // One daemon pod per node: the oldest stays.
        plan.delete.extend(running.into_iter().skip(1).cloned());
    } else {
        plan.delete
            .extend(on_node.iter().filter(|p| !is_terminating(p)).cloned());
    }
}

/// One step of a RollingUpdate without surge: old pods that are not
/// available are replaced at once; available ones only while fewer than
/// `max_unavailable` nodes are without an available up-to-date pod.
fn rolling_update(
    by_node: &BTreeMap<&str, Vec<Arc<Pod>>>,
    hash: &str,
    max_unavailable: usize,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    let mut unavailable = 0;
    let mut replace_now = Vec::new();
    let mut candidates = Vec::new();
    for pods in by_node.values() {
        let live: Vec<_> = pods.iter().filter(|p| !is_terminating(p)).collect();
        let (new, old): (Vec<_>, Vec<_>) = live.into_iter().partition(|p| is_updated(p, hash));
        match (new.as_slice(), old.as_slice()) {
            ([new], []) => {
                if !is_available(new, min_ready_seconds, now) {
                    unavailable += 1;
                }
            }
            ([], [old]) => {
                if !is_available(old, min_ready_seconds, now) {
                    replace_now.push(Arc::clone(old));
                } else if unavailable < max_unavailable {
                    candidates.push(Arc::clone(old));
                }
            }
            // Nothing there yet, or more than one pod: the next reconcile
            // settles it; the node counts as unavailable meanwhile.
            _ => unavailable += 1,
        }
    }
    let room = max_unavailable.saturating_sub(unavailable);
    candidates.truncate(room);
    replace_now.extend(candidates);
    replace_now
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Kubernetes' `updateDaemonSetStatus`: per node that should run a daemon
/// pod, whether it has one, and whether the oldest is ready, available and
/// from the current template; pods on other nodes are misscheduled.
fn status(
    ds: &DaemonSet,
    hash: &str,
    eligible: &BTreeMap<&str, Eligibility>,
    by_node: &BTreeMap<&str, Vec<Arc<Pod>>>,
    now: Timestamp,
) -> DaemonSetStatus {
    let min_ready_seconds = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for (node, e) in eligible {
        let oldest = by_node.get(node).and_then(|pods| pods.first());
        if !e.should_run {
            if oldest.is_some() {
                misscheduled += 1;
            }
            continue;
        }
        desired += 1;
        let Some(pod) = oldest else {
            continue;
        };
        current += 1;
        if is_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready_seconds, now) {
                available += 1;
            }
        }
        if is_updated(pod, hash) {
            updated += 1;
        }
    }
    let previous = ds.status.as_ref();
    DaemonSetStatus {
        current_number_scheduled: count(current),
        desired_number_scheduled: count(desired),
        number_misscheduled: count(misscheduled),
        number_ready: count(ready),
        number_available: Some(count(available)),
        number_unavailable: Some(count(desired - available)),
        updated_number_scheduled: Some(count(updated)),
        observed_generation: ds.metadata.generation,
        collision_count: previous.and_then(|s| s.collision_count),
        conditions: previous.and_then(|s| s.conditions.clone()),
    }
}
