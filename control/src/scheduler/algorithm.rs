//! One scheduling decision: filter every node, score those that fit, pick
//! the best (ties broken at random, as kube-scheduler does), or explain
//! why none fits.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::PodSpec;

use super::cluster::{ClusterState, PodInfo};
use super::filters::{AntiAffinity, Reason, fits};
use super::scores;

/// No node fits: how many nodes there were and why each was filtered out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    pub reasons: BTreeMap<Reason, usize>,
}

impl fmt::Display for FitError {
    /// Kubernetes' FailedScheduling message: `0/3 nodes are available: 1
    /// node(s) had untolerated taint {k: v}, 2 Insufficient memory.`, the
    /// reason counts sorted as strings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        write!(f, "0/{} nodes are available", self.nodes)?;
        let mut parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        parts.sort();
        write!(f, ": {}.", parts.join(", "))
    }
}

impl std::error::Error for FitError {}

/// The node for `pod`, or why there is none.
pub fn schedule(spec: &PodSpec, pod: &PodInfo, state: &ClusterState) -> Result<String, FitError> {
    let anti = AntiAffinity::new(pod, state);
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let mut reasons = Vec::new();
    let mut histogram: BTreeMap<Reason, usize> = BTreeMap::new();
    let mut feasible = Vec::new();
    let mut nodes = 0;
    for node in state.nodes.values().filter(|n| n.exists) {
        nodes += 1;
        reasons.clear();
        if fits(spec, pod, node, &anti, &mut reasons) {
            feasible.push(node);
        } else {
            for r in reasons.drain(..) {
                *histogram.entry(r).or_insert(0) += 1;
            }
        }
    }
    if feasible.is_empty() {
        return Err(FitError {
            nodes,
            reasons: histogram,
        });
    }
    let counts: Vec<(u32, u32)> = feasible
        .iter()
        .map(|node| {
            (
                scores::owner_count(pod, node),
                scores::intolerable_preferred_taints(tolerations, &node.taints),
            )
        })
        .collect();
    let max_owner = counts.iter().map(|c| c.0).max().unwrap_or(0);
    let max_taints = counts.iter().map(|c| c.1).max().unwrap_or(0);
    let mut best: Option<(i64, &str)> = None;
    let mut ties = 0u32;
    for (node, (owner, taints)) in feasible.iter().zip(counts) {
        let score = scores::LEAST_ALLOCATED_WEIGHT * scores::least_allocated(pod, node)
            + scores::SPREAD_WEIGHT * scores::spread(owner, max_owner)
            + scores::TAINT_WEIGHT * scores::taint_toleration(taints, max_taints);
        match best {
            Some((top, _)) if score < top => {}
            Some((top, _)) if score == top => {
                // Reservoir sampling: each tied node is equally likely.
                ties += 1;
                if rand::random_range(0..ties) == 0 {
                    best = Some((score, &node.name));
                }
            }
            _ => {
                ties = 1;
                best = Some((score, &node.name));
            }
        }
    }
    Ok(best.map(|(_, name)| name.to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests;
