//! The filters: whether one node can take one pod, and if not, why, in
//! Kubernetes' words (they make up the FailedScheduling message). Pure
//! functions over the pod and the scheduler's [`NodeInfo`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};

use super::cluster::{ClusterState, NodeInfo, PodInfo, TAINT_UNSCHEDULABLE};

/// Why a node was filtered out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Unschedulable,
    UntoleratedTaint { key: String, value: String },
    NodeAffinity,
    Insufficient(&'static str),
    TooManyPods,
    AntiAffinity,
    ExistingAntiAffinity,
    VolumeNodeAffinity,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unschedulable => f.write_str("node(s) were unschedulable"),
            Self::UntoleratedTaint { key, value } => {
                write!(f, "node(s) had untolerated taint {{{key}: {value}}}")
            }
            Self::NodeAffinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Self::Insufficient(resource) => write!(f, "Insufficient {resource}"),
            Self::TooManyPods => f.write_str("Too many pods"),
            Self::AntiAffinity => f.write_str("node(s) didn't match pod anti-affinity rules"),
            Self::ExistingAntiAffinity => {
                f.write_str("node(s) didn't satisfy existing pods anti-affinity rules")
            }
            Self::VolumeNodeAffinity => f.write_str("node(s) had volume node affinity conflict"),
        }
    }
}

/// Runs every filter in kube-scheduler's order and stops at the first that
/// fails, adding its reasons. True if the node fits.
pub fn fits(
    spec: &PodSpec,
    pod: &PodInfo,
    node: &NodeInfo,
    anti: &AntiAffinity,
    reasons: &mut Vec<Reason>,
) -> bool {
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    if let Some(r) = unschedulable(tolerations, node) {
        reasons.push(r);
        return false;
    }
    if let Some(taint) = untolerated_taint(tolerations, &node.taints) {
        reasons.push(Reason::UntoleratedTaint {
            key: taint.key.clone(),
            value: taint.value.clone().unwrap_or_default(),
        });
        return false;
    }
    if !matches_node_selector(spec, node) {
        reasons.push(Reason::NodeAffinity);
        return false;
    }
    let before = reasons.len();
    resources_fit(pod, node, reasons);
    if reasons.len() > before {
        return false;
    }
    if !super::volumes::affinity_fits(&pod.volume_affinity, node) {
        reasons.push(Reason::VolumeNodeAffinity);
        return false;
    }
    if let Some(r) = anti.check(node) {
        reasons.push(r);
        return false;
    }
    true
}

/// `spec.unschedulable` nodes take only pods tolerating the
/// `node.kubernetes.io/unschedulable` taint.
pub fn unschedulable(tolerations: &[Toleration], node: &NodeInfo) -> Option<Reason> {
    if !node.unschedulable {
        return None;
    }
    let taint = Taint {
        key: TAINT_UNSCHEDULABLE.into(),
        effect: "NoSchedule".into(),
        ..Taint::default()
    };
    (!tolerations.iter().any(|t| tolerates(t, &taint))).then_some(Reason::Unschedulable)
}

/// The first NoSchedule or NoExecute taint no toleration tolerates.
/// PreferNoSchedule taints only lower the score.
pub fn untolerated_taint<'a>(tolerations: &[Toleration], taints: &'a [Taint]) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// Kubernetes' `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// `spec.nodeSelector` and the required node affinity both hold.
pub fn matches_node_selector(spec: &PodSpec, node: &NodeInfo) -> bool {
    if let Some(selector) = &spec.node_selector
        && !selector
            .iter()
            .all(|(k, v)| node.labels.get(k).is_some_and(|l| l == v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        // The terms are ORed.
        Some(selector) => selector
            .node_selector_terms
            .iter()
            .any(|term| term_matches(term, &node.name, &node.labels)),
        None => true,
    }
}

/// One node selector term: its expressions and fields ANDed; a term with
/// neither matches nothing.
pub fn term_matches(
    term: &NodeSelectorTerm,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            // metadata.name is the only field a node selector may name.
            r.key == "metadata.name" && requirement_matches(r, Some(name))
        })
}

/// One requirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) against the
/// value of its key, if the node has it.
pub fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else {
                return false;
            };
            let Ok(want) = want.parse::<i64>() else {
                return false;
            };
            if r.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// CPU, memory and pod count against what the node has left.
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo, reasons: &mut Vec<Reason>) {
    if i64::try_from(node.pods.len()).unwrap_or(i64::MAX) + 1 > node.allocatable_pods {
        reasons.push(Reason::TooManyPods);
    }
    let free = node.allocatable.minus(node.requested);
    if pod.requests.milli_cpu > 0 && pod.requests.milli_cpu > free.milli_cpu {
        reasons.push(Reason::Insufficient("cpu"));
    }
    if pod.requests.memory > 0 && pod.requests.memory > free.memory {
        reasons.push(Reason::Insufficient("memory"));
    }
}

/// Required pod anti-affinity, both ways: the topology domains the
/// incoming pod must avoid because pods it selects are there, and those it
/// must avoid because pods there select it. Computed once per pod.
#[derive(Debug, Default)]
pub struct AntiAffinity {
    /// (topology key, domains) from the incoming pod's own terms.
    own: Vec<(String, HashSet<String>)>,
    /// (topology key, domains) from placed pods' terms selecting it.
    existing: Vec<(String, HashSet<String>)>,
}

impl AntiAffinity {
    pub fn new(pod: &PodInfo, state: &ClusterState) -> Self {
        let mut own = Vec::new();
        for term in &pod.anti_affinity {
            let mut domains = HashSet::new();
            for node in state.nodes.values() {
                let Some(domain) = node.topology_value(&term.topology_key) else {
                    continue;
                };
                if domains.contains(domain) {
                    continue;
                }
                if node
                    .pods
                    .values()
                    .any(|other| other.key != pod.key && term.selects(other))
                {
                    domains.insert(domain.to_string());
                }
            }
            own.push((term.topology_key.clone(), domains));
        }
        let mut existing: Vec<(String, HashSet<String>)> = Vec::new();
        for other in state.with_anti_affinity.values() {
            if other.key == pod.key {
                continue;
            }
            let Some(node) = state.node_of(&other.key) else {
                continue;
            };
            for term in other.anti_affinity.iter().filter(|t| t.selects(pod)) {
                let Some(domain) = node.topology_value(&term.topology_key) else {
                    continue;
                };
                match existing.iter_mut().find(|(k, _)| *k == term.topology_key) {
                    Some((_, set)) => {
                        set.insert(domain.to_string());
                    }
                    None => existing.push((
                        term.topology_key.clone(),
                        HashSet::from([domain.to_string()]),
                    )),
                }
            }
        }
        Self { own, existing }
    }

    pub fn check(&self, node: &NodeInfo) -> Option<Reason> {
        let hit = |rules: &[(String, HashSet<String>)]| {
            rules.iter().any(|(key, domains)| {
                node.topology_value(key)
                    .is_some_and(|d| domains.contains(d))
            })
        };
        if hit(&self.existing) {
            return Some(Reason::ExistingAntiAffinity);
        }
        hit(&self.own).then_some(Reason::AntiAffinity)
    }
}

#[cfg(test)]
mod tests;
