//! The kubelet of a wasmpod node: registers the Node, renews its Lease,
//! watches the pods bound to it and drives each through its lifecycle on a
//! [`container_runtime::ContainerRuntime`], reporting status through the API.
//! Nothing here knows the wasm engine; the runtime knows nothing of the API.

/// The typed API client the agent talks through.
pub use wasmpod_api::client;
pub mod clock;
pub mod container_runtime;
pub mod fake_runtime;
pub mod jitter;
pub mod lifecycle;
pub mod log_server;
pub mod modules;
pub mod network_sync;
pub mod node_status;
pub mod pods;
pub mod probes;
pub mod wasm_runtime;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wasmpod_api::k8s_openapi::api::core::v1::Pod;

use client::{ApiClient, ListParams};
use container_runtime::ContainerRuntime;
use lifecycle::{BackoffConfig, HostFacts};
use node_status::{LeaseRenewer, NodeConfig, NodeStatusError, NodeStatusReporter};
use pods::network::{PodCidrSender, PodNetworking};
use pods::{PodManager, PodWorkerConfig};

use crate::network::{Fabric, FabricConfig};

/// Everything the agent is configured with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node: NodeConfig,
    /// The crash-loop and retry back-off of containers.
    pub backoff: BackoffConfig,
    /// How often ConfigMap, Secret and downward API files are refreshed.
    pub volume_resync: Duration,
    /// Where the node's log endpoint listens; its port is reported as the
    /// Node's kubelet endpoint. Port 0 picks a free one.
    pub log_listen: SocketAddr,
    /// Whether the log endpoint runs at all. Hollow nodes have no logs to
    /// serve: they report no kubelet endpoint, so `kubectl logs` for their
    /// pods fails with the API server's error for a node without one.
    pub serve_logs: bool,
    /// Whether pods may reach addresses outside the cluster (a Namespace
    /// labelled `network.wasmpod.io/egress: deny` narrows it for its pods).
    pub allow_egress: bool,
    /// Whether the node follows the cluster's Services, Endpoints and Nodes
    /// for its pods' virtual network. Hollow nodes do not: a thousand of
    /// them would hold three thousand watches.
    pub network_sync: bool,
}

impl AgentConfig {
    pub fn new(node: NodeConfig) -> Self {
        Self {
            node,
            backoff: BackoffConfig::default(),
            volume_resync: Duration::from_secs(60),
            log_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            serve_logs: true,
            allow_egress: true,
            network_sync: true,
        }
    }
}

/// A failure that stops the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    NodeStatus(#[from] NodeStatusError),
    #[error("listening for log requests on {addr}")]
    LogListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The node agent: see the module documentation.
pub struct Agent<R: ContainerRuntime> {
    client: ApiClient,
    config: AgentConfig,
    runtime: Arc<R>,
    networking: PodNetworking,
    pod_cidr: PodCidrSender,
}

/// The longest pause between attempts to register while the API server
/// cannot be reached.
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(30);

impl<R: ContainerRuntime> Agent<R> {
    pub fn new(client: ApiClient, config: AgentConfig, runtime: Arc<R>) -> Self {
        let node_addresses: Vec<IpAddr> = config
            .node
            .addresses
            .iter()
            .filter(|(kind, _)| kind == "InternalIP")
            .filter_map(|(_, address)| address.parse().ok())
            .collect();
        let fabric = Fabric::new(FabricConfig {
            allow_egress: config.allow_egress,
            node_addresses,
        });
        let (networking, pod_cidr) = PodNetworking::new(fabric, config.allow_egress);
        Self {
            client,
            config,
            runtime,
            networking,
            pod_cidr,
        }
    }

    /// The node's virtual network, which its pods are attached to.
    pub fn fabric(&self) -> &Fabric {
        self.networking.fabric()
    }

    /// Registers the Node (retrying until the API server answers), then
    /// reports its status, renews its Lease and runs its pods until
    /// `shutdown` resolves. Pods' containers stop with the agent.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        tokio::pin!(shutdown);
        let addr = self.config.log_listen;
        let listen_error = |source| AgentError::LogListen { addr, source };
        let listener = match self.config.serve_logs {
            true => Some(log_server::bind(addr).await.map_err(listen_error)?),
            false => None,
        };
        let port = match &listener {
            Some(l) => Some(l.local_addr().map_err(listen_error)?.port()),
            None => None,
        };
        let node = &NodeConfig {
            kubelet_port: port,
            ..self.config.node.clone()
        };
        let logs = async {
            let Some(listener) = listener else {
                return std::future::pending().await;
            };
            let server =
                log_server::LogServer::new(node.data_dir.clone(), self.runtime.log_writers());
            if let Err(e) = server.serve(listener).await {
                tracing::error!(error = %e, "the node log endpoint stopped");
            }
        };
        let mut reporter = NodeStatusReporter::new(self.client.clone(), node.clone());
        let mut pause = Duration::from_millis(250);
        let node_uid = loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                registered = reporter.register() => match registered {
                    Ok(uid) => break uid,
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "registering the node; retrying");
                    }
                },
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(REGISTER_RETRY_MAX);
        };
        tracing::info!(node = %node.name, "node registered");
        let lease = LeaseRenewer::new(
            self.client.clone(),
            node.name.clone(),
            Some(node_uid),
            node.lease_duration,
            node.lease_renew_interval,
        );
        let manager = PodManager::new(
            Arc::clone(&self.runtime),
            self.client.clone(),
            self.worker_config(),
        );
        let watcher = self.client.watcher::<Pod>(
            None,
            ListParams::fields(format!("spec.nodeName={}", node.name)),
        );
        let pod_cidr = async {
            network_sync::pod_cidr::wait(&self.client, &node.name, &self.pod_cidr).await;
            std::future::pending::<()>().await;
        };
        let network = async {
            if self.config.network_sync {
                network_sync::run(
                    self.client.clone(),
                    self.fabric().clone(),
                    node.name.clone(),
                )
                .await;
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = &mut shutdown => {}
            () = reporter.run() => {}
            () = lease.run() => {}
            () = manager.run(watcher) => {}
            () = logs => {}
            () = pod_cidr => {}
            () = network => {}
        }
        Ok(())
    }

    fn worker_config(&self) -> PodWorkerConfig {
        let node = &self.config.node;
        let mut config = PodWorkerConfig::new(node.name.clone(), node.data_dir.clone());
        config.backoff = self.config.backoff;
        config.volume_resync = self.config.volume_resync;
        config.host = HostFacts {
            host_ip: node.internal_ip().map(str::to_string),
        };
        config.node_cpu_millis = node.cpu_millis.saturating_sub(node.reserved_cpu_millis);
        config.node_memory_bytes = node.memory_bytes.saturating_sub(node.reserved_memory_bytes);
        config.network = Some(self.networking.clone());
        config
    }
}

/// An error and its causes on one line, for logs.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
