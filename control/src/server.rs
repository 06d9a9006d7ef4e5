//! Starts the control plane: opens the store, creates the initial
//! objects, starts the background loops and serves the API.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::apiserver::{self, ApiState};
use crate::controllers::node_ipam::NodeIpamSettings;
use crate::controllers::{self, ControllerConfig};
use crate::store::{Store, StoreError, StoreOptions};

/// How long shutdown waits for the controllers to stop.
const CONTROLLERS_STOP: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to serve the API on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    pub datastore: String,
    pub data_dir: PathBuf,
    pub store: StoreOptions,
    /// Run the scheduler and the controllers (leader-elected) beside the
    /// API; off for a bare API server.
    pub controllers: bool,
    pub node_health: NodeHealth,
    /// `--cluster-cidr` and `--node-cidr-mask-size`.
    pub pod_network: NodeIpamSettings,
}

/// How node failures are handled: how long a silent node has before it is
/// Unknown and tainted, and how long pods tolerate that by default before
/// they are evicted. Tuned for the edge; Kubernetes uses 40 s and 300 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeHealth {
    /// `--node-monitor-grace-period`.
    pub monitor_grace_period: Duration,
    /// `--default-toleration-seconds`.
    pub default_toleration_seconds: i64,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self {
            monitor_grace_period: crate::controllers::node_lifecycle::DEFAULT_GRACE_PERIOD,
            default_toleration_seconds: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the datastore")]
    Store(#[from] StoreError),
    #[error("listening on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the initial objects: {0}")]
    Bootstrap(wasmpod_api::ApiError),
    #[error("serving the API")]
    Serve(#[source] std::io::Error),
    #[error("starting the controllers")]
    Controllers(#[source] wasmpod_api::client::ClientError),
}

/// A control plane that is listening.
pub struct Server {
    pub addr: SocketAddr,
    pub state: ApiState,
    listener: TcpListener,
    controllers: bool,
    node_health: NodeHealth,
    pod_network: NodeIpamSettings,
}

impl Server {
    /// Opens the store, binds the listener and creates the initial objects.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let store = Store::open(&config.datastore, config.store.clone()).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let (ns_tx, ns_rx) = tokio::sync::mpsc::unbounded_channel();
        let state = ApiState::new(store, ns_tx)
            .with_default_toleration_seconds(config.node_health.default_toleration_seconds);
        crate::bootstrap::ensure(&state, addr.port())
            .await
            .map_err(ServerError::Bootstrap)?;
        tokio::spawn(apiserver::namespace_finalizer::run(state.clone(), ns_rx));
        Ok(Server {
            addr,
            state,
            listener,
            controllers: config.controllers,
            node_health: config.node_health,
            pod_network: config.pod_network,
        })
    }

    /// Serves until `shutdown` completes. Closing the store then ends every
    /// open watch, so the server stops promptly instead of waiting for
    /// long-lived watch connections.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let store = self.state.store.clone();
        tracing::info!(addr = %self.addr, "API server listening");
        let app = apiserver::router(self.state);
        let closing = store.clone();
        let controllers_stop = tokio_util::sync::CancellationToken::new();
        let controllers = if self.controllers {
            let mut config = ControllerConfig::new(format!("http://{}", loopback(self.addr)));
            config.node_lifecycle.grace_period = self.node_health.monitor_grace_period;
            config.node_ipam = self.pod_network;
            Some(
                controllers::spawn(config, controllers_stop.clone())
                    .map_err(ServerError::Controllers)?,
            )
        } else {
            None
        };
        let stop = async move {
            shutdown.await;
            // The controllers stop (and give up the leader Lease) while the
            // API still answers.
            controllers_stop.cancel();
            if let Some(handle) = controllers {
                let _ = tokio::time::timeout(CONTROLLERS_STOP, handle).await;
            }
            closing.close().await;
        };
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(ServerError::Serve);
        store.close().await;
        result
    }
}

/// The address the in-process controllers use: a wildcard listen address
/// is reached on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}
