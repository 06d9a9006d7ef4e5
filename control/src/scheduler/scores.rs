//! The scores: how much the scheduler likes a node that fits, each 0-100
//! as kube-scheduler's plugins give them, combined with its weights.

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::cluster::{NodeInfo, PodInfo};
use super::filters::tolerates;

/// Weights of the scores (kube-scheduler's defaults for the plugins these
/// stand for: NodeResourcesFit 1, PodTopologySpread 2, TaintToleration 3).
pub const LEAST_ALLOCATED_WEIGHT: i64 = 1;
pub const SPREAD_WEIGHT: i64 = 2;
pub const TAINT_WEIGHT: i64 = 3;

/// NodeResourcesFit's LeastAllocated: the share of CPU and of memory left
/// after placing the pod, averaged, 0-100.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let after = node.score_requested.plus(pod.score_requests);
    let share = |requested: i64, capacity: i64| {
        if capacity <= 0 || requested > capacity {
            0
        } else {
            (capacity - requested).saturating_mul(100) / capacity
        }
    };
    (share(after.milli_cpu, node.allocatable.milli_cpu)
        + share(after.memory, node.allocatable.memory))
        / 2
}

/// How many pods of the pod's controlling owner the node has already.
pub fn owner_count(pod: &PodInfo, node: &NodeInfo) -> u32 {
    pod.owner_uid
        .as_ref()
        .and_then(|owner| node.owner_counts.get(owner))
        .copied()
        .unwrap_or(0)
}

/// Spreading pods of one owner across nodes: 100 for the nodes with the
/// fewest of them, down to 0 for those with the most (`max` among the
/// nodes that fit).
pub fn spread(count: u32, max: u32) -> i64 {
    if max == 0 {
        return 100;
    }
    i64::from(max - count.min(max)) * 100 / i64::from(max)
}

/// PreferNoSchedule taints the pod does not tolerate.
pub fn intolerable_preferred_taints(tolerations: &[Toleration], taints: &[Taint]) -> u32 {
    let preferred: Vec<&Toleration> = tolerations
        .iter()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .collect();
    let count = taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|taint| !preferred.iter().any(|t| tolerates(t, taint)))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// TaintToleration's score: 100 for no such taints, down to 0 for the most
/// among the nodes that fit.
pub fn taint_toleration(count: u32, max: u32) -> i64 {
    spread(count, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::resources::Resources;

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let pod = PodInfo {
            score_requests: Resources {
                milli_cpu: 100,
                memory: 100,
            },
            ..test_pod()
        };
        let node = |used: i64| NodeInfo {
            allocatable: Resources {
                milli_cpu: 1000,
                memory: 1000,
            },
            score_requested: Resources {
                milli_cpu: used,
                memory: used,
            },
            ..NodeInfo::default()
        };
        assert_eq!(least_allocated(&pod, &node(0)), 90);
        assert_eq!(least_allocated(&pod, &node(500)), 40);
        assert_eq!(least_allocated(&pod, &node(1000)), 0);
        assert_eq!(least_allocated(&pod, &NodeInfo::default()), 0);
    }

    #[test]
    fn spreading_scores_fewer_siblings_higher() {
        assert_eq!(spread(0, 0), 100);
        assert_eq!(spread(0, 4), 100);
        assert_eq!(spread(2, 4), 50);
        assert_eq!(spread(4, 4), 0);
    }

    #[test]
    fn only_untolerated_prefer_no_schedule_taints_count() {
        let taint = |key: &str, effect: &str| Taint {
            key: key.into(),
            effect: effect.into(),
            ..Taint::default()
        };
        let taints = [
            taint("a", "PreferNoSchedule"),
            taint("b", "PreferNoSchedule"),
            taint("c", "NoSchedule"),
        ];
        assert_eq!(intolerable_preferred_taints(&[], &taints), 2);
        let tolerate_a = Toleration {
            key: Some("a".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert_eq!(intolerable_preferred_taints(&[tolerate_a], &taints), 1);
        assert_eq!(taint_toleration(1, 2), 50);
    }

    fn test_pod() -> PodInfo {
        let pod = k8s_openapi::api::core::v1::Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        PodInfo::new(&pod).expect("named")
    }
}
