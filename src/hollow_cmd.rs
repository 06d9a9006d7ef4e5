//! `wasmpod node --hollow --count N`: N nodes in one process, each the real
//! node agent (registration, status, Lease, the pod lifecycle) over a
//! container runtime that runs nothing, so a cluster of a thousand nodes
//! can be exercised on one machine, as kubemark's hollow kubelets do.
//! Containers "run" until their pod is deleted; hollow nodes serve no logs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmpod_node::agent::client::ApiClient;
use wasmpod_node::agent::fake_runtime::{Behavior, FakeRuntime};
use wasmpod_node::agent::node_status::NodeConfig;
use wasmpod_node::agent::{Agent, AgentConfig};

use crate::data_dir::DataDir;
use crate::node_cmd::Options;
use crate::shutdown::Shutdown;

/// The name prefix when `--name` is not given.
pub const DEFAULT_PREFIX: &str = "hollow";

/// The longest pause between two nodes' starts. Nodes start spread over
/// one status interval (at most this far apart), so their heartbeats begin
/// out of phase; the jitter of each period keeps them apart.
const MAX_START_SPACING: Duration = Duration::from_millis(10);

/// The name of hollow node `index` of `prefix`.
pub fn node_name(prefix: &str, index: u32) -> String {
    format!("{prefix}-{index}")
}

/// How long to wait between starting two of `count` nodes.
fn start_spacing(status_interval: Duration, count: u32) -> Duration {
    (status_interval / count.max(1)).min(MAX_START_SPACING)
}

/// The configuration of one hollow node: the host's resources as capacity,
/// the node's own name as its `Hostname` address, and a data dir of its own
/// (pods' start records) under the process's data dir.
fn node_config(opts: &Options, name: String, data: &DataDir) -> AgentConfig {
    let mut node = NodeConfig::detect(name.clone(), data.path.join(&name));
    node.addresses.retain(|(kind, _)| kind != "Hostname");
    node.addresses.push(("Hostname".into(), name));
    if let Some(ip) = opts.node_ip {
        node.set_internal_ip(ip.to_string());
    }
    node.max_pods = opts.max_pods;
    node.lease_renew_interval = opts.lease_renew_interval;
    node.lease_duration = opts.lease_duration;
    node.status_interval = opts.status_interval;
    let mut config = AgentConfig::new(node);
    config.backoff.base = opts.backoff_base;
    config.backoff.cap = opts.backoff_cap;
    config.volume_resync = opts.volume_resync;
    config.serve_logs = false;
    config.allow_egress = !opts.deny_egress;
    // Pods of hollow nodes get IPs but run nothing that would connect.
    config.network_sync = false;
    config
}

/// Runs `count` hollow nodes named `<opts.name>-<i>` until SIGINT or
/// SIGTERM. One API client (one connection pool) and one fake runtime serve
/// them all.
pub async fn run(opts: Options, count: u32) -> anyhow::Result<()> {
    let data = DataDir::open(&opts.data_dir)?;
    let client = ApiClient::new(&opts.server, opts.token.clone())
        .with_context(|| format!("API server URL {}", opts.server))?;
    let runtime = Arc::new(FakeRuntime::unrecorded(Behavior::RunUntilTerminated));
    let shutdown = Shutdown::on_signal();
    let spacing = start_spacing(opts.status_interval, count);
    tracing::info!(count, prefix = %opts.name, "starting hollow nodes");
    let mut agents = tokio::task::JoinSet::new();
    for i in 0..count {
        let name = node_name(&opts.name, i);
        let agent = Agent::new(
            client.clone(),
            node_config(&opts, name.clone(), &data),
            Arc::clone(&runtime),
        );
        let stop = shutdown.clone();
        agents.spawn(async move {
            if let Err(e) = agent.run(stop.wait()).await {
                tracing::error!(node = %name, error = %e, "hollow node stopped");
            }
        });
        tokio::select! {
            () = shutdown.clone().wait() => break,
            () = tokio::time::sleep(spacing) => {}
        }
    }
    tracing::info!(count, "hollow nodes started");
    while agents.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_spread_over_the_status_interval_up_to_a_cap() {
        let ten = Duration::from_secs(10);
        assert_eq!(start_spacing(ten, 1000), Duration::from_millis(10));
        assert_eq!(start_spacing(ten, 5), MAX_START_SPACING);
        assert_eq!(start_spacing(ten, 10_000), Duration::from_millis(1));
        assert_eq!(start_spacing(ten, 0), MAX_START_SPACING);
    }

    #[test]
    fn nodes_are_numbered_after_the_prefix() {
        assert_eq!(node_name(DEFAULT_PREFIX, 7), "hollow-7");
    }
}
