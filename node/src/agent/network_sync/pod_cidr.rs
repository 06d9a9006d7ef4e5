//! The node's own pod CIDR, which the node IPAM controller writes to its
//! Node soon after it registers. Pods wait for it before they get an IP;
//! once set it never changes (the API server refuses to change it).

use std::time::Duration;

use ipnet::Ipv4Net;
use wasmpod_api::k8s_openapi::api::core::v1::Node;

use crate::agent::client::ApiClient;
use crate::agent::pods::network::PodCidrSender;

const POLL_FIRST: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(5);

/// The pod CIDR a Node carries, if it parses.
pub fn of(node: &Node) -> Option<Ipv4Net> {
    node.spec
        .as_ref()?
        .pod_cidr
        .as_deref()?
        .parse::<Ipv4Net>()
        .ok()
        .map(|n| n.trunc())
}

/// Reads the Node until it has a pod CIDR (backing off up to a few
/// seconds between reads) and hands it to `sender`.
pub async fn wait(client: &ApiClient, node: &str, sender: &PodCidrSender) {
    let mut pause = POLL_FIRST;
    loop {
        match client.get::<Node>(None, node).await {
            Ok(found) => {
                if let Some(cidr) = of(&found) {
                    tracing::info!(%node, %cidr, "the node's pod CIDR");
                    sender.send(cidr);
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(%node, error = %crate::agent::error_chain(&e), "reading the node for its pod CIDR");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_MAX);
    }
}
