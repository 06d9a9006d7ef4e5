//! Volume binding in the scheduler, after kube-scheduler's VolumeBinding
//! plugin: a pod's PersistentVolumeClaims must exist; a bound claim's
//! volume must be reachable from the node (its required node affinity);
//! an unbound claim of a WaitForFirstConsumer class fits any node and,
//! once the pod has a node, is annotated with it
//! (`volume.kubernetes.io/selected-node`) before the pod is bound, so the
//! volume is provisioned where the pod runs. Any other unbound claim keeps
//! the pod pending until the claim is bound.
//!
//! [`pod_claims`] and [`affinity_fits`] are pure; [`Scheduler::select_node`]
//! writes the annotations.

use k8s_openapi::api::core::v1::{NodeSelector, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::json;
use wasmpod_api::client::Patch;

use super::cluster::NodeInfo;
use super::filters::term_matches;
use super::{ScheduleError, Scheduler};
use crate::controllers::persistent_volume::SELECTED_NODE;
use crate::controllers::runtime::{Cache, ObjectRef};

/// The claims, volumes and classes the scheduler watches.
#[derive(Clone, Default)]
pub struct VolumeCaches {
    pub claims: Cache<PersistentVolumeClaim>,
    pub volumes: Cache<PersistentVolume>,
    pub classes: Cache<StorageClass>,
}

/// What a pod's claims ask of its node.
#[derive(Debug, Default, PartialEq)]
pub struct PodClaims {
    /// The required node affinity of each bound volume; a node must match
    /// every one.
    pub affinities: Vec<NodeSelector>,
    /// Unbound claims of WaitForFirstConsumer classes, to be told the node.
    pub delayed: Vec<ObjectRef>,
}

/// The pod's claims, or why no node can take the pod (kube-scheduler's
/// PreFilter messages).
pub fn pod_claims(pod: &Pod, caches: &VolumeCaches) -> Result<PodClaims, String> {
    let namespace = pod.metadata.namespace.as_deref();
    let mut claims = PodClaims::default();
    let names = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str());
    for name in names {
        let key = ObjectRef::new(namespace, name);
        let Some(claim) = caches.claims.get(&key) else {
            return Err(format!("persistentvolumeclaim \"{name}\" not found"));
        };
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(format!("persistentvolumeclaim \"{name}\" is being deleted"));
        }
        let volume = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .filter(|v| !v.is_empty());
        if let Some(volume) = volume {
            let Some(pv) = caches.volumes.get(&ObjectRef::new(None, volume)) else {
                return Err("pvc(s) bound to non-existent pv(s)".into());
            };
            if let Some(required) = pv
                .spec
                .as_ref()
                .and_then(|s| s.node_affinity.as_ref())
                .and_then(|a| a.required.clone())
            {
                claims.affinities.push(required);
            }
            continue;
        }
        let class = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            .filter(|c| !c.is_empty())
            .and_then(|c| caches.classes.get(&ObjectRef::new(None, c)));
        let delayed =
            class.is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
        if !delayed {
            return Err("pod has unbound immediate PersistentVolumeClaims".into());
        }
        claims.delayed.push(key);
    }
    Ok(claims)
}

/// The FailedScheduling message of a pod whose claims rule out every node.
pub fn unschedulable_message(nodes: usize, reason: &str) -> String {
    format!("0/{nodes} nodes are available: {reason}.")
}

/// True if `node` matches the node affinity of every bound volume (the
/// terms of one selector are ORed).
pub fn affinity_fits(affinities: &[NodeSelector], node: &NodeInfo) -> bool {
    affinities.iter().all(|selector| {
        selector
            .node_selector_terms
            .iter()
            .any(|term| term_matches(term, &node.name, &node.labels))
    })
}

impl Scheduler {
    /// Tells each delayed claim the node its first pod goes to, so the
    /// volume is provisioned there. On failure the pod's assumed place is
    /// given back.
    pub(super) async fn select_node(
        &self,
        pod: &Pod,
        key: &ObjectRef,
        claims: &[ObjectRef],
        node: &str,
    ) -> Result<(), ScheduleError> {
        for claim in claims {
            let current = self.volumes.claims.get(claim);
            let selected = current
                .as_ref()
                .and_then(|c| c.metadata.annotations.as_ref())
                .and_then(|a| a.get(SELECTED_NODE))
                .map(String::as_str);
            if selected == Some(node) {
                continue;
            }
            let patch = Patch::Merge(json!({"metadata": {"annotations": {SELECTED_NODE: node}}}));
            let result = self
                .client
                .patch::<PersistentVolumeClaim>(claim.namespace.as_deref(), &claim.name, &patch)
                .await;
            if let Err(source) = result {
                let uid = pod.metadata.uid.as_deref().unwrap_or_default();
                let mut state = self.state();
                if state.placement(key, uid) == Some(node) {
                    state.unplace(key);
                }
                return Err(ScheduleError::SelectNode {
                    pod: key.clone(),
                    node: node.to_string(),
                    source,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Node;
    use serde_json::Value;

    use super::*;
    use crate::controllers::runtime::Informer;
    use crate::scheduler::testing;

    fn caches(claims: &[Value], volumes: &[Value], classes: &[Value]) -> VolumeCaches {
        fn fill<K>(informer: &Informer<K>, items: &[Value])
        where
            K: k8s_openapi::ListableResource
                + k8s_openapi::Metadata<
                    Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                > + serde::de::DeserializeOwned
                + Clone
                + Send
                + Sync
                + 'static,
        {
            for item in items {
                let obj: K = serde_json::from_value(item.clone()).expect("decodes");
                informer.apply(wasmpod_api::client::Change::Applied(obj));
            }
        }
        let c = Informer::<PersistentVolumeClaim>::detached();
        let v = Informer::<PersistentVolume>::detached();
        let s = Informer::<StorageClass>::detached();
        fill(&c, claims);
        fill(&v, volumes);
        fill(&s, classes);
        VolumeCaches {
            claims: c.cache(),
            volumes: v.cache(),
            classes: s.cache(),
        }
    }

    fn claim(name: &str, class: &str, volume: Option<&str>) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"},
            "spec": {"storageClassName": class, "volumeName": volume}})
    }

    fn class(name: &str, mode: &str) -> Value {
        json!({"metadata": {"name": name}, "provisioner": "p", "volumeBindingMode": mode})
    }

    fn pod_using(claims: &[&str]) -> Pod {
        let volumes: Vec<Value> = claims
            .iter()
            .map(|c| json!({"name": c, "persistentVolumeClaim": {"claimName": c}}))
            .collect();
        testing::pod("p", json!({"spec": {"volumes": volumes}}))
    }

    fn node_info(node: &Node) -> NodeInfo {
        let state = testing::state(std::slice::from_ref(node));
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = state.nodes.get(&name).expect("the node");
        NodeInfo {
            name: info.name.clone(),
            labels: info.labels.clone(),
            ..NodeInfo::default()
        }
    }

    #[test]
    fn missing_claim_makes_the_pod_unschedulable() {
        let c = caches(&[], &[], &[]);
        assert_eq!(
            pod_claims(&pod_using(&["data"]), &c),
            Err("persistentvolumeclaim \"data\" not found".into())
        );
    }

    #[test]
    fn unbound_immediate_claim_waits_and_delayed_one_is_selected() {
        let c = caches(
            &[claim("now", "fast", None), claim("later", "local", None)],
            &[],
            &[
                class("fast", "Immediate"),
                class("local", "WaitForFirstConsumer"),
            ],
        );
        assert_eq!(
            pod_claims(&pod_using(&["now"]), &c),
            Err("pod has unbound immediate PersistentVolumeClaims".into())
        );
        let claims = pod_claims(&pod_using(&["later"]), &c).expect("schedulable");
        assert_eq!(claims.delayed, [ObjectRef::new(Some("ns"), "later")]);
        assert!(claims.affinities.is_empty());
    }

    #[test]
    fn bound_volume_pins_the_pod_to_its_node() {
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {"nodeAffinity": {"required": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}});
        let c = caches(&[claim("data", "", Some("pv1"))], &[pv], &[]);
        let claims = pod_claims(&pod_using(&["data"]), &c).expect("schedulable");
        let n1 = node_info(&testing::node("n1", json!({})));
        let n2 = node_info(&testing::node("n2", json!({})));
        assert!(affinity_fits(&claims.affinities, &n1));
        assert!(!affinity_fits(&claims.affinities, &n2));
        let unpinned = Arc::new(PodClaims::default());
        assert!(affinity_fits(&unpinned.affinities, &n2));
    }
}
