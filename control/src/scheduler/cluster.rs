//! The scheduler's own view of the cluster: each node with what it offers
//! and what the pods placed on it (bound, or assumed by this scheduler
//! while their binding is in flight) already take. Updated incrementally
//! from the watches and by the scheduler's own decisions, so a burst of
//! pods is spread correctly before the watch has caught up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint};
use serde_json::{Map, Value};
use wasmpod_api::selector::LabelSelector;

use super::resources::{Resources, node_allocatable, pod_requests};
use crate::controllers::runtime::ObjectRef;

/// The taints the node lifecycle controller puts on nodes that are not
/// Ready; the scheduler applies them itself from the Ready condition.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Which namespaces a pod affinity term looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Namespaces {
    /// The listed ones (by default the pod's own).
    Listed(Vec<String>),
    /// All (an empty `namespaceSelector`).
    All,
}

/// A required pod (anti-)affinity term, parsed once.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub selector: LabelSelector,
    pub namespaces: Namespaces,
    pub topology_key: String,
}

impl AffinityTerm {
    fn parse(term: &PodAffinityTerm, own_namespace: &str) -> Option<Self> {
        // A term without a selector matches no pods.
        let selector = LabelSelector::from_api(term.label_selector.as_ref()?).ok()?;
        let all = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
        });
        let namespaces = match &term.namespaces {
            _ if all => Namespaces::All,
            Some(list) if !list.is_empty() => Namespaces::Listed(list.clone()),
            _ => Namespaces::Listed(vec![own_namespace.to_string()]),
        };
        Some(Self {
            selector,
            namespaces,
            topology_key: term.topology_key.clone(),
        })
    }

    /// True if `pod` is one of the pods this term selects.
    pub fn selects(&self, pod: &PodInfo) -> bool {
        let in_scope = match &self.namespaces {
            Namespaces::All => true,
            Namespaces::Listed(list) => list.contains(&pod.namespace),
        };
        in_scope && self.selector.matches(Some(&pod.labels))
    }
}

/// What the scheduler needs to know about a pod, computed once.
#[derive(Debug)]
pub struct PodInfo {
    pub key: ObjectRef,
    pub uid: String,
    pub namespace: String,
    pub labels: Map<String, Value>,
    /// Requests as the filter checks them.
    pub requests: Resources,
    /// Requests with the scoring defaults for containers requesting nothing.
    pub score_requests: Resources,
    /// The uid of the pod's controlling owner (ReplicaSet, Job, ...).
    pub owner_uid: Option<String>,
    /// Required pod anti-affinity terms.
    pub anti_affinity: Vec<AffinityTerm>,
    /// The required node affinity of the volumes bound to the pod's claims
    /// (set while scheduling, see `volumes`).
    pub volume_affinity: Vec<k8s_openapi::api::core::v1::NodeSelector>,
}

impl PodInfo {
    pub fn new(pod: &Pod) -> Option<Self> {
        let key = ObjectRef::from_obj(pod)?;
        let namespace = key.namespace.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let labels = pod
            .metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let anti_affinity = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|terms| {
                terms
                    .iter()
                    .filter_map(|t| AffinityTerm::parse(t, &namespace))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels,
            requests: spec.map(|s| pod_requests(s, false)).unwrap_or_default(),
            score_requests: spec.map(|s| pod_requests(s, true)).unwrap_or_default(),
            owner_uid: pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone()),
            anti_affinity,
            volume_affinity: Vec::new(),
            namespace,
            key,
        })
    }
}

/// One node: what it offers, and the pods placed on it.
#[derive(Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    /// False while only pods name this node and its Node object is unknown.
    pub exists: bool,
    pub labels: BTreeMap<String, String>,
    /// The node's taints plus the one its Ready condition implies.
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub allocatable_pods: i64,
    pub requested: Resources,
    pub score_requested: Resources,
    pub pods: HashMap<ObjectRef, Arc<PodInfo>>,
    /// Placed pods per controlling owner uid.
    pub owner_counts: HashMap<String, u32>,
}

impl NodeInfo {
    /// What a Node object says, apart from the pods.
    fn set_node(&mut self, node: &Node) {
        self.exists = true;
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        if let Some(key) = readiness_taint(node)
            && !self.taints.iter().any(|t| t.key == key)
        {
            self.taints.push(Taint {
                key: key.into(),
                effect: "NoSchedule".into(),
                ..Taint::default()
            });
        }
        (self.allocatable, self.allocatable_pods) = node_allocatable(node);
    }

    fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested = self.requested.plus(pod.requests);
        self.score_requested = self.score_requested.plus(pod.score_requests);
        if let Some(owner) = &pod.owner_uid {
            *self.owner_counts.entry(owner.clone()).or_insert(0) += 1;
        }
        self.pods.insert(pod.key.clone(), pod);
    }

    fn remove_pod(&mut self, key: &ObjectRef) -> Option<Arc<PodInfo>> {
        let pod = self.pods.remove(key)?;
        self.requested = self.requested.minus(pod.requests);
        self.score_requested = self.score_requested.minus(pod.score_requests);
        if let Some(owner) = &pod.owner_uid
            && let Some(count) = self.owner_counts.get_mut(owner)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.owner_counts.remove(owner);
            }
        }
        Some(pod)
    }

    /// The value of this node's topology domain for `key`; the node name
    /// stands in for a missing `kubernetes.io/hostname` label.
    pub fn topology_value(&self, key: &str) -> Option<&str> {
        match self.labels.get(key) {
            Some(v) => Some(v),
            None if key == HOSTNAME_LABEL => Some(&self.name),
            None => None,
        }
    }
}

pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The taint a node's Ready condition implies: not-ready when False,
/// unreachable when Unknown or missing.
pub fn readiness_taint(node: &Node) -> Option<&'static str> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    match ready {
        Some("True") => None,
        Some("False") => Some(TAINT_NOT_READY),
        _ => Some(TAINT_UNREACHABLE),
    }
}

/// All nodes and placed pods.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub nodes: HashMap<String, NodeInfo>,
    /// Where each placed pod is, by key.
    placed: HashMap<ObjectRef, String>,
    /// Placed pods that have required anti-affinity terms.
    pub with_anti_affinity: HashMap<ObjectRef, Arc<PodInfo>>,
    /// Where the next decision starts looking at nodes, so that with node
    /// sampling every node gets its turn (kube-scheduler's
    /// `nextStartNodeIndex`).
    pub next_start_node: AtomicUsize,
}

impl ClusterState {
    /// Adds or updates a node from its object.
    pub fn set_node(&mut self, node: &Node) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let info = self.nodes.entry(name.clone()).or_insert_with(|| NodeInfo {
            name,
            ..NodeInfo::default()
        });
        info.set_node(node);
    }

    /// Forgets a deleted node; its pods stay placed until they are gone.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            if info.pods.is_empty() {
                self.nodes.remove(name);
            } else {
                *info = NodeInfo {
                    name: info.name.clone(),
                    pods: std::mem::take(&mut info.pods),
                    owner_counts: std::mem::take(&mut info.owner_counts),
                    requested: info.requested,
                    score_requested: info.score_requested,
                    ..NodeInfo::default()
                };
            }
        }
    }

    /// The node `key` is placed on, if it is the pod with `uid`.
    pub fn placement(&self, key: &ObjectRef, uid: &str) -> Option<&str> {
        let node = self.placed.get(key)?;
        let pod = self.nodes.get(node)?.pods.get(key)?;
        (pod.uid == uid).then_some(node.as_str())
    }

    /// Places `pod` on `node` (replacing an earlier placement of its key).
    pub fn place(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.unplace(&pod.key);
        let info = self
            .nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeInfo {
                name: node.to_string(),
                ..NodeInfo::default()
            });
        if !pod.anti_affinity.is_empty() {
            self.with_anti_affinity
                .insert(pod.key.clone(), Arc::clone(&pod));
        }
        self.placed.insert(pod.key.clone(), node.to_string());
        info.add_pod(pod);
    }

    /// Removes a pod's placement; true if it had one.
    pub fn unplace(&mut self, key: &ObjectRef) -> bool {
        let Some(node) = self.placed.remove(key) else {
            return false;
        };
        self.with_anti_affinity.remove(key);
        if let Some(info) = self.nodes.get_mut(&node) {
            info.remove_pod(key);
            if !info.exists && info.pods.is_empty() {
                self.nodes.remove(&node);
            }
        }
        true
    }

    /// Where the placed pod `key` is.
    pub fn node_of(&self, key: &ObjectRef) -> Option<&NodeInfo> {
        self.nodes.get(self.placed.get(key)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, owner: Option<&str>) -> Arc<PodInfo> {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}
        }))
        .expect("a pod");
        if let Some(owner) = owner {
            p.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: "rs".into(),
                    uid: owner.into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                },
            ]);
        }
        Arc::new(PodInfo::new(&p).expect("named"))
    }

    #[test]
    fn placing_and_moving_pods_keeps_the_sums_right() {
        let mut state = ClusterState::default();
        let a = pod("a", Some("rs1"));
        state.place(Arc::clone(&a), "n1");
        state.place(pod("b", Some("rs1")), "n1");
        assert_eq!(state.nodes["n1"].requested.milli_cpu, 200);
        assert_eq!(state.nodes["n1"].owner_counts["rs1"], 2);
        assert_eq!(state.placement(&a.key, "uid-a"), Some("n1"));
        assert_eq!(state.placement(&a.key, "other"), None);
        // The same pod seen bound elsewhere moves.
        state.place(Arc::clone(&a), "n2");
        assert_eq!(state.nodes["n1"].requested.milli_cpu, 100);
        assert_eq!(state.nodes["n2"].pods.len(), 1);
        assert!(state.unplace(&a.key));
        assert!(!state.unplace(&a.key));
        assert!(
            !state.nodes.contains_key("n2"),
            "a node known only by its pods goes with them"
        );
        assert_eq!(state.nodes["n1"].owner_counts["rs1"], 1);
    }

    #[test]
    fn nodes_that_are_not_ready_get_the_lifecycle_taint() {
        let node = |status: Option<&str>| -> Node {
            let conditions = status
                .map(|s| serde_json::json!([{"type": "Ready", "status": s}]))
                .unwrap_or(serde_json::json!([]));
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n"},
                "status": {"conditions": conditions}
            }))
            .expect("a node")
        };
        assert_eq!(readiness_taint(&node(Some("True"))), None);
        assert_eq!(readiness_taint(&node(Some("False"))), Some(TAINT_NOT_READY));
        assert_eq!(
            readiness_taint(&node(Some("Unknown"))),
            Some(TAINT_UNREACHABLE)
        );
        assert_eq!(readiness_taint(&node(None)), Some(TAINT_UNREACHABLE));
        let mut state = ClusterState::default();
        state.set_node(&node(Some("False")));
        assert_eq!(state.nodes["n"].taints[0].key, TAINT_NOT_READY);
        state.set_node(&node(Some("True")));
        assert!(state.nodes["n"].taints.is_empty());
    }
}
