//! `wasmpod node`: join a cluster and run the pods bound to this node until
//! SIGINT or SIGTERM. `wasmpod up` runs the same agent in its own process.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use wasmpod_node::agent::client::ApiClient;
use wasmpod_node::agent::modules::ModuleFetcher;
use wasmpod_node::agent::node_status::NodeConfig;
use wasmpod_node::agent::wasm_runtime::WasmRuntime;
use wasmpod_node::agent::{Agent, AgentConfig};
use wasmpod_node::network::node_ports::NodePorts;
use wasmpod_node::network::tunnel::{self, TUNNEL_ANNOTATION};
use wasmpod_node::runtime::{PoolingChoice, Runtime, RuntimeConfig};

use crate::data_dir::DataDir;
use crate::shutdown::Shutdown;

/// How a node is set up (the flags of `wasmpod node`).
#[derive(Debug, Clone)]
pub struct Options {
    pub server: String,
    pub token: Option<String>,
    pub name: String,
    pub data_dir: PathBuf,
    /// The address the node reports as its InternalIP; detected when unset.
    pub node_ip: Option<IpAddr>,
    /// Where the node's HTTP endpoint (container logs) listens; the node's
    /// IP and port 10250 when unset.
    pub listen: Option<SocketAddr>,
    /// The port of the node's tunnel (other nodes' connections to its pods)
    /// on its IP; 0 picks a free one. The Node advertises it.
    pub tunnel_port: u16,
    /// Pods may not leave the cluster (`--deny-egress`).
    pub deny_egress: bool,
    pub max_pods: u32,
    pub lease_renew_interval: Duration,
    pub lease_duration: Duration,
    pub status_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub volume_resync: Duration,
    pub pooling: PoolingChoice,
    pub pool_slots: u32,
}

impl Options {
    /// Kubernetes' defaults for a node named `name` joining `server`.
    pub fn new(server: String, name: String, data_dir: PathBuf) -> Options {
        Options {
            server,
            token: None,
            name,
            data_dir,
            node_ip: None,
            listen: None,
            tunnel_port: 0,
            deny_egress: false,
            max_pods: 1000,
            // A quarter of the server's node monitor grace period (8 s),
            // as kubelet renews at a quarter of its lease duration.
            lease_renew_interval: Duration::from_secs(2),
            lease_duration: Duration::from_secs(8),
            status_interval: Duration::from_secs(10),
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(300),
            volume_resync: Duration::from_secs(60),
            pooling: PoolingChoice::Auto,
            pool_slots: 1000,
        }
    }
}

/// The kubelet's port, where the node serves container logs by default.
const KUBELET_PORT: u16 = 10250;

/// The node's name when none is given: the host's name.
pub fn default_name() -> String {
    wasmpod_node::agent::node_status::host::hostname()
        .map(|h| h.to_ascii_lowercase())
        .unwrap_or_else(|| "wasmpod-node".to_string())
}

/// A node ready to run: its locked data dir, its agent and the real
/// listener of its pods' network.
pub struct Node {
    agent: Agent<WasmRuntime>,
    tunnel: tokio::net::TcpListener,
    node_ip: IpAddr,
    _data: DataDir,
}

impl Node {
    /// Locks the data dir and sets up the wasm runtime (engine, compiled
    /// code cache) and the agent. Nothing talks to the API server yet.
    pub async fn prepare(opts: Options) -> anyhow::Result<Node> {
        let data = DataDir::open(&opts.data_dir)?;
        let client = ApiClient::new(&opts.server, opts.token.clone())
            .with_context(|| format!("API server URL {}", opts.server))?;
        let runtime_config = RuntimeConfig {
            pooling: opts.pooling,
            pool_slots: opts.pool_slots,
            ..RuntimeConfig::new(data.path.join("compiled"))
        };
        let runtime = tokio::task::spawn_blocking(move || Runtime::new(runtime_config))
            .await
            .context("setting up the wasm runtime")?
            .context("setting up the wasm runtime")?;
        tracing::info!(pooling = runtime.uses_pooling(), "wasm runtime ready");
        let mut node = NodeConfig::detect(opts.name.clone(), data.path.clone());
        if let Some(ip) = opts.node_ip {
            node.set_internal_ip(ip.to_string());
        }
        let node_ip: IpAddr = node
            .internal_ip()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let listen = opts
            .listen
            .unwrap_or(SocketAddr::new(node_ip, KUBELET_PORT));
        let tunnel_addr = SocketAddr::new(node_ip, opts.tunnel_port);
        let tunnel = tokio::net::TcpListener::bind(tunnel_addr)
            .await
            .with_context(|| format!("listening for the node's tunnel on {tunnel_addr}"))?;
        let tunnel_addr = tunnel.local_addr().context("the tunnel's address")?;
        node.annotations
            .insert(TUNNEL_ANNOTATION.to_string(), tunnel_addr.to_string());
        node.max_pods = opts.max_pods;
        node.lease_renew_interval = opts.lease_renew_interval;
        node.lease_duration = opts.lease_duration;
        node.status_interval = opts.status_interval;
        let mut config = AgentConfig::new(node);
        config.backoff.base = opts.backoff_base;
        config.backoff.cap = opts.backoff_cap;
        config.volume_resync = opts.volume_resync;
        config.log_listen = listen;
        config.allow_egress = !opts.deny_egress;
        let modules = ModuleFetcher::new(data.path.join("modules"))
            .context("setting up the module cache")?
            .with_store(client.clone());
        let runtime = WasmRuntime::new(runtime).with_modules(modules);
        let agent = Agent::new(client, config, Arc::new(runtime));
        Ok(Node {
            agent,
            tunnel,
            node_ip,
            _data: data,
        })
    }

    /// Runs the agent, the node's tunnel and its NodePorts until
    /// `shutdown`; the pods' modules stop with it.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let fabric = self.agent.fabric().clone();
        tokio::spawn(tunnel::serve(
            self.tunnel,
            fabric.clone(),
            shutdown.clone().wait(),
        ));
        tokio::spawn(NodePorts::new(fabric, self.node_ip).run(shutdown.clone().wait()));
        self.agent.run(shutdown.wait()).await?;
        Ok(())
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let node = Node::prepare(opts).await?;
    node.run(Shutdown::on_signal()).await
}
