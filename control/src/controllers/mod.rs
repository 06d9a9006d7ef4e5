//! The controller manager: the scheduler and the controllers, run inside
//! the server process while it holds the leader Lease, each talking to the
//! API over loopback like any other client.
//!
//! [`spawn`] starts leader election; when this process becomes the leader
//! every entry of [`CONTROLLERS`] is started with a [`ControllerContext`]
//! whose `stop` token is cancelled when leadership ends (they are started
//! again on the next term) or at shutdown. Controllers are built on
//! [`runtime`]; adding one is one line in [`CONTROLLERS`].

pub mod cron_job;
pub mod daemon_set;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod garbage_collector;
pub mod job;
pub mod leader;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod persistent_volume;
pub mod replicaset;
pub mod runtime;
pub mod service_account;
pub mod stateful_set;

use std::future::Future;
use std::pin::Pin;

use tokio::task::{JoinHandle, JoinSet};
/// The stop signal [`spawn`] and every controller take.
pub use tokio_util::sync::CancellationToken;
use wasmpod_api::client::{ApiClient, ClientError};

use self::leader::{ApiLease, LeaderElectionConfig};

/// What every controller gets when it starts.
#[derive(Clone, Debug)]
pub struct ControllerContext {
    /// A client of this server's API.
    pub client: ApiClient,
    /// This process's identity (the leader Lease's holderIdentity, the
    /// events' reportingInstance).
    pub identity: String,
    /// Cancelled when this term of leadership ends.
    pub stop: CancellationToken,
    /// How the node lifecycle controller judges nodes (server flags).
    pub node_lifecycle: node_lifecycle::NodeLifecycleSettings,
    /// How the node IPAM controller cuts the pod network (server flags).
    pub node_ipam: node_ipam::NodeIpamSettings,
}

impl ControllerContext {
    /// An event recorder reporting as `component` from this process, until
    /// this term ends.
    pub fn event_recorder(&self, component: &str) -> events::EventRecorder {
        events::EventRecorder::spawn(
            self.client.clone(),
            component,
            &self.identity,
            self.stop.clone(),
        )
    }
}

type Start = fn(ControllerContext) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every controller the manager runs: a name (for logs) and how to start
/// it. A controller returns when its context's `stop` is cancelled.
pub const CONTROLLERS: &[(&str, Start)] = &[
    ("scheduler", |ctx| Box::pin(crate::scheduler::run(ctx))),
    ("replicaset", |ctx| {
        Box::pin(replicaset::run_replica_sets(ctx))
    }),
    ("replicationcontroller", |ctx| {
        Box::pin(replicaset::run_replication_controllers(ctx))
    }),
    ("deployment", |ctx| Box::pin(deployment::run(ctx))),
    ("job", |ctx| Box::pin(job::run(ctx))),
    ("cronjob", |ctx| Box::pin(cron_job::run(ctx))),
    ("statefulset", |ctx| Box::pin(stateful_set::run(ctx))),
    ("nodelifecycle", |ctx| Box::pin(node_lifecycle::run(ctx))),
    ("nodeipam", |ctx| Box::pin(node_ipam::run(ctx))),
    ("daemonset", |ctx| Box::pin(daemon_set::run(ctx))),
    ("endpoints", |ctx| Box::pin(endpoints::run(ctx))),
    ("garbagecollector", |ctx| {
        Box::pin(garbage_collector::run(ctx))
    }),
    ("serviceaccount", |ctx| Box::pin(service_account::run(ctx))),
    ("persistentvolume-binder", |ctx| {
        Box::pin(persistent_volume::run(ctx))
    }),
];

/// How to reach the API and who this process is.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `http://127.0.0.1:6443`.
    pub api_url: String,
    pub token: Option<String>,
    /// Unique per process.
    pub identity: String,
    pub leader_election: LeaderElectionConfig,
    pub node_lifecycle: node_lifecycle::NodeLifecycleSettings,
    pub node_ipam: node_ipam::NodeIpamSettings,
}

impl ControllerConfig {
    /// The defaults for a process reaching its API at `api_url`, with a
    /// fresh identity (`<host>_<uuid>` as Kubernetes components use).
    pub fn new(api_url: impl Into<String>) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "wasmpod".into());
        let identity = format!("{host}_{}", uuid::Uuid::new_v4());
        Self {
            api_url: api_url.into(),
            token: None,
            leader_election: LeaderElectionConfig::new(identity.clone()),
            identity,
            node_lifecycle: node_lifecycle::NodeLifecycleSettings::default(),
            node_ipam: node_ipam::NodeIpamSettings::default(),
        }
    }
}

/// Starts leader election and, while leading, the controllers; all stop
/// when `shutdown` is cancelled (the Lease is released then). The handle
/// resolves once everything has stopped.
pub fn spawn(
    config: ControllerConfig,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, ClientError> {
    let client = ApiClient::new(&config.api_url, config.token.clone())?;
    let lease = ApiLease {
        client: client.clone(),
        namespace: config.leader_election.namespace.clone(),
        name: config.leader_election.name.clone(),
    };
    let identity = config.identity.clone();
    let settings = Settings {
        node_lifecycle: config.node_lifecycle,
        node_ipam: config.node_ipam,
    };
    Ok(tokio::spawn(leader::run_elected(
        lease,
        config.leader_election,
        shutdown,
        move |term| run_controllers(client.clone(), identity.clone(), settings, term),
    )))
}

/// The controllers' settings from the server's flags.
#[derive(Debug, Clone, Copy)]
struct Settings {
    node_lifecycle: node_lifecycle::NodeLifecycleSettings,
    node_ipam: node_ipam::NodeIpamSettings,
}

/// Runs every controller until `stop`.
async fn run_controllers(
    client: ApiClient,
    identity: String,
    settings: Settings,
    stop: CancellationToken,
) {
    let mut running = JoinSet::new();
    for (name, start) in CONTROLLERS {
        let ctx = ControllerContext {
            client: client.clone(),
            identity: identity.clone(),
            stop: stop.clone(),
            node_lifecycle: settings.node_lifecycle,
            node_ipam: settings.node_ipam,
        };
        tracing::info!(controller = name, "starting");
        running.spawn(start(ctx));
    }
    while let Some(result) = running.join_next().await {
        if let Err(e) = result {
            tracing::error!(error = %e, "a controller panicked");
        }
    }
}
