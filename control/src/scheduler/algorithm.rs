//! One scheduling decision: filter nodes until enough fit, score those,
//! pick the best (ties broken at random, as kube-scheduler does), or
//! explain why none fits.
//!
//! Like kube-scheduler, large clusters are sampled: filtering stops once
//! [`nodes_to_find`] feasible nodes are found (all nodes below 100; 42% of
//! 1,000; never under 5% or 100 nodes), starting where the previous
//! decision stopped so every node gets its turn. A pod that fits nowhere
//! is checked against every node, so its message counts them all.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;

use k8s_openapi::api::core::v1::PodSpec;

use super::cluster::{ClusterState, NodeInfo, PodInfo};
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

/// Below this many nodes every node is considered; above it, at least
/// this many feasible nodes are (kube-scheduler's `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The smallest share of a large cluster considered, in percent
/// (`minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// How many feasible nodes to find among `all` before scoring:
/// kube-scheduler's adaptive `percentageOfNodesToScore` (50% minus one
/// point per 125 nodes, at least 5%, at least 100 nodes).
pub fn nodes_to_find(all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let percentage = 50usize
        .saturating_sub(all / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE);
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// The node for `pod`, or why there is none.
pub fn schedule(spec: &PodSpec, pod: &PodInfo, state: &ClusterState) -> Result<String, FitError> {
    let anti = AntiAffinity::new(pod, state);
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let all: Vec<&NodeInfo> = state.nodes.values().filter(|n| n.exists).collect();
    let nodes = all.len();
    let wanted = nodes_to_find(nodes);
    let start = match nodes {
        0 => 0,
        n => state.next_start_node.load(Ordering::Relaxed) % n,
    };
    let mut reasons = Vec::new();
    let mut histogram: BTreeMap<Reason, usize> = BTreeMap::new();
    let mut feasible = Vec::with_capacity(wanted);
    let mut processed = 0;
    for &node in all[start..].iter().chain(&all[..start]) {
        if feasible.len() >= wanted {
            break;
        }
        processed += 1;
        reasons.clear();
        if fits(spec, pod, node, &anti, &mut reasons) {
            feasible.push(node);
        } else {
            for r in reasons.drain(..) {
                *histogram.entry(r).or_insert(0) += 1;
            }
        }
    }
    if nodes > 0 {
        state
            .next_start_node
            .store((start + processed) % nodes, Ordering::Relaxed);
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
