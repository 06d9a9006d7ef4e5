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
pub mod deployment;
pub mod events;
pub mod job;
pub mod leader;
pub mod replicaset;
pub mod runtime;

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
    Ok(tokio::spawn(leader::run_elected(
        lease,
        config.leader_election,
        shutdown,
        move |term| run_controllers(client.clone(), identity.clone(), term),
    )))
}

/// Runs every controller until `stop`.
async fn run_controllers(client: ApiClient, identity: String, stop: CancellationToken) {
    let mut running = JoinSet::new();
    for (name, start) in CONTROLLERS {
        let ctx = ControllerContext {
            client: client.clone(),
            identity: identity.clone(),
            stop: stop.clone(),
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
