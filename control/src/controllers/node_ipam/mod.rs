//! The node IPAM controller, as kube-controller-manager's node-ipam
//! controller with its range allocator: every Node gets `spec.podCIDR` and
//! `spec.podCIDRs`, the lowest free block of the cluster's pod network
//! (`--cluster-cidr`, 10.42.0.0/16, in `--node-cidr-mask-size` blocks,
//! /22), from which its agent hands out pod IPs.
//!
//! A Node that has a pod CIDR keeps it (the API server refuses to change
//! it). Blocks are chosen one Node at a time (one worker), counting the
//! assignments written but not yet back through the watch, so two Nodes
//! never get the same block; a deleted Node's block is free again and goes
//! to a Node still waiting. When the range is exhausted the Node gets a
//! `CIDRNotAvailable` event and nothing else.
//!
//! The decision is [`plan::plan`] (pure, unit-tested).

pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use serde_json::json;
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};

use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};
use plan::{Pending, Plan};

const COMPONENT: &str = "node-controller";
/// The reason of the event a Node gets when no block is left.
pub const REASON_CIDR_NOT_AVAILABLE: &str = "CIDRNotAvailable";

const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(30),
};

/// The default size of each Node's block (`--node-cidr-mask-size`): a /22
/// holds 1,021 pod IPs, enough for a node's default 1,000 pods; the
/// default pod network then holds 64 nodes.
pub const DEFAULT_NODE_CIDR_MASK_SIZE: u8 = 22;

/// The cluster's pod network and how it is cut into the Nodes' blocks:
/// the server's `--cluster-cidr` and `--node-cidr-mask-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIpamSettings {
    cluster_cidr: Ipv4Net,
    node_mask_size: u8,
}

/// Pod network settings that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIpamSettingsError {
    #[error(
        "--node-cidr-mask-size {mask} must be at least the prefix of --cluster-cidr {cluster} and at most 30"
    )]
    MaskSize { cluster: Ipv4Net, mask: u8 },
}

impl NodeIpamSettings {
    /// Blocks of `/node_mask_size` cut from `cluster_cidr` (truncated to its
    /// network address).
    pub fn new(cluster_cidr: Ipv4Net, node_mask_size: u8) -> Result<Self, NodeIpamSettingsError> {
        if node_mask_size < cluster_cidr.prefix_len() || node_mask_size > 30 {
            return Err(NodeIpamSettingsError::MaskSize {
                cluster: cluster_cidr,
                mask: node_mask_size,
            });
        }
        Ok(Self {
            cluster_cidr: cluster_cidr.trunc(),
            node_mask_size,
        })
    }

    /// The cluster's pod network, which the Nodes' blocks are cut from.
    pub fn cluster_cidr(&self) -> Ipv4Net {
        self.cluster_cidr
    }

    /// The prefix length of each Node's block.
    pub fn node_mask_size(&self) -> u8 {
        self.node_mask_size
    }
}

impl Default for NodeIpamSettings {
    /// 10.42.0.0/16 in /22 blocks.
    fn default() -> Self {
        Self {
            cluster_cidr: Ipv4Net::new(Ipv4Addr::new(10, 42, 0, 0), 16).unwrap_or_default(),
            node_mask_size: DEFAULT_NODE_CIDR_MASK_SIZE,
        }
    }
}

/// A failed write of a Node's pod CIDR.
#[derive(Debug, thiserror::Error)]
#[error("assigning pod CIDR {cidr} to node {node}")]
pub struct NodeIpamError {
    node: String,
    cidr: Ipv4Net,
    #[source]
    source: ClientError,
}

struct Ctx {
    client: ApiClient,
    nodes: Cache<Node>,
    /// Assignments written that the cache may not show yet, by node name.
    pending: Mutex<HashMap<String, Pending>>,
    /// Node UIDs already told that no block is left.
    reported: Mutex<HashSet<String>>,
    events: EventRecorder,
    settings: NodeIpamSettings,
}

/// Runs the node IPAM controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let mut nodes = Informer::<Node>::new(ctx.client.clone(), None, ListParams::default());
    let cache = nodes.cache();
    nodes.enqueue_mapped(&queue, move |event| {
        let mut keys: Vec<ObjectRef> = ObjectRef::from_obj(event.object().as_ref())
            .into_iter()
            .collect();
        // A deleted Node's block may be what a waiting Node needs.
        if let InformerEvent::Deleted(_) = event {
            keys.extend(
                cache
                    .filter(|n| !plan::has_cidr(n))
                    .iter()
                    .filter_map(|n| ObjectRef::from_obj(n.as_ref())),
            );
        }
        keys
    });
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        nodes: nodes.cache(),
        pending: Mutex::default(),
        reported: Mutex::default(),
        events: ctx.event_recorder(COMPONENT),
        settings: ctx.node_ipam,
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(nodes);
    // One worker: each choice must see the one before it.
    let controller = Controller::new("nodeipam", queue, state).concurrency(1);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, NodeIpamError> {
    let Some(node) = ctx.nodes.get(&key) else {
        return Ok(Action::done());
    };
    let nodes = ctx.nodes.list();
    let decision = {
        let mut pending = lock(&ctx.pending);
        plan::prune(&mut pending, &nodes);
        plan::plan(
            &node,
            &nodes,
            &pending,
            ctx.settings.cluster_cidr(),
            ctx.settings.node_mask_size(),
        )
    };
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let cidr = match decision {
        Plan::Keep => {
            lock(&ctx.reported).remove(&uid);
            return Ok(Action::done());
        }
        Plan::Exhausted => {
            if lock(&ctx.reported).insert(uid) {
                tracing::warn!(node = %key.name, range = %ctx.settings.cluster_cidr(), "no pod CIDR left for the node");
                ctx.events.record(
                    node.as_ref(),
                    EventType::Warning,
                    REASON_CIDR_NOT_AVAILABLE,
                    format!(
                        "Node {} status is now: {REASON_CIDR_NOT_AVAILABLE}",
                        key.name
                    ),
                );
            }
            return Ok(Action::done());
        }
        Plan::Assign(cidr) => cidr,
    };
    let value = cidr.to_string();
    let patch = Patch::Merge(json!({"spec": {"podCIDR": value, "podCIDRs": [value]}}));
    match ctx.client.patch::<Node>(None, &key.name, &patch).await {
        Ok(_) => {
            tracing::info!(node = %key.name, %cidr, "assigned the node's pod CIDR");
            lock(&ctx.reported).remove(&uid);
            lock(&ctx.pending).insert(key.name.clone(), Pending { uid, cidr });
            Ok(Action::done())
        }
        // Gone meanwhile: its deletion comes through the watch.
        Err(e) if e.is_not_found() => Ok(Action::done()),
        Err(source) => Err(NodeIpamError {
            node: key.name,
            cidr,
            source,
        }),
    }
}
