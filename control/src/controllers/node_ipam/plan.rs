//! The node IPAM decision: which pod CIDR a Node gets, from every Node the
//! controller sees and the assignments it made that the cache does not
//! show yet.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;

/// An assignment the controller wrote and the cache may not show yet, by
/// node name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The UID of the Node it was written to.
    pub uid: String,
    pub cidr: Ipv4Net,
}

/// What to do about one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// It has a pod CIDR (or one is on its way): nothing to do.
    Keep,
    /// Write this pod CIDR to it.
    Assign(Ipv4Net),
    /// Every block of the range is taken.
    Exhausted,
}

/// The pod CIDRs a Node carries (`spec.podCIDRs`, or `spec.podCIDR`), as
/// far as they parse.
pub fn node_cidrs(node: &Node) -> Vec<Ipv4Net> {
    let Some(spec) = node.spec.as_ref() else {
        return Vec::new();
    };
    spec.pod_cidrs
        .iter()
        .flatten()
        .chain(spec.pod_cidr.iter())
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// Whether the Node already has a pod CIDR.
pub fn has_cidr(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .is_some_and(|c| !c.is_empty())
}

/// The pod CIDR of `node`: none to write when it has one or one was just
/// written to it; otherwise the lowest `/prefix` block of `range` that no
/// Node has and no pending assignment holds.
pub fn plan(
    node: &Node,
    nodes: &[Arc<Node>],
    pending: &HashMap<String, Pending>,
    range: Ipv4Net,
    prefix: u8,
) -> Plan {
    if has_cidr(node) {
        return Plan::Keep;
    }
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let uid = node.metadata.uid.as_deref().unwrap_or_default();
    if pending.get(name).is_some_and(|p| p.uid == uid) {
        return Plan::Keep;
    }
    let taken: Vec<Ipv4Net> = nodes
        .iter()
        .flat_map(|n| node_cidrs(n))
        .chain(pending.values().map(|p| p.cidr))
        .collect();
    let Ok(mut blocks) = range.subnets(prefix) else {
        return Plan::Exhausted;
    };
    blocks
        .find(|block| !taken.iter().any(|t| overlaps(t, block)))
        .map_or(Plan::Exhausted, Plan::Assign)
}

/// Drops pending assignments the cache now shows, or whose Node is gone
/// or was replaced: only assignments still on their way hold a block.
pub fn prune(pending: &mut HashMap<String, Pending>, nodes: &[Arc<Node>]) {
    let current: HashMap<&str, &Node> = nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.as_deref()?, n.as_ref())))
        .collect();
    pending.retain(|name, p| {
        current
            .get(name.as_str())
            .is_some_and(|n| n.metadata.uid.as_deref() == Some(p.uid.as_str()) && !has_cidr(n))
    });
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
