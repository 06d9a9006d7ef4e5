//! Leader election over a `coordination.k8s.io/v1` Lease, as client-go's
//! leaderelection does, so that of several control-plane processes on one
//! datastore only one runs the scheduler and the controllers.
//!
//! The leader renews the Lease every `retry_period` (2 s). Another process
//! takes the Lease over only when it has seen the same Lease
//! resourceVersion for a whole `lease_duration` (15 s) by its own clock,
//! so clock skew between processes does not matter; writes use the
//! resourceVersion it read (optimistic concurrency), so of two contenders
//! one wins. A leader that could not renew for `renew_deadline` (10 s,
//! shorter than the lease duration) stops its controllers before anyone
//! else may start theirs: two processes never act at once.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wasmpod_api::client::{ApiClient, ClientError};

/// Where the Lease is and how it is held.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This process's holderIdentity; unique per process.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// `kube-system/wasmpod-controller-manager` with client-go's timings
    /// (15 s lease, 10 s renew deadline, 2 s retry period).
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            namespace: "kube-system".into(),
            name: "wasmpod-controller-manager".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Reads and writes the one Lease (the API, or a fake in tests).
pub trait LeaseStore: Send + Sync + 'static {
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, ClientError>> + Send;
    fn create(&self, lease: &Lease) -> impl Future<Output = Result<Lease, ClientError>> + Send;
    /// PUT with the lease's resourceVersion: a conflict if it changed.
    fn replace(&self, lease: &Lease) -> impl Future<Output = Result<Lease, ClientError>> + Send;
}

/// The Lease `namespace/name` through the API.
pub struct ApiLease {
    pub client: ApiClient,
    pub namespace: String,
    pub name: String,
}

impl LeaseStore for ApiLease {
    async fn get(&self) -> Result<Option<Lease>, ClientError> {
        match self
            .client
            .get::<Lease>(Some(&self.namespace), &self.name)
            .await
        {
            Ok(lease) => Ok(Some(lease)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create(&self, lease: &Lease) -> Result<Lease, ClientError> {
        self.client.create(Some(&self.namespace), lease).await
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, ClientError> {
        self.client
            .replace(Some(&self.namespace), &self.name, lease)
            .await
    }
}

/// The outcome of one attempt to acquire or renew.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Leading,
    /// Someone else holds an unexpired Lease.
    HeldByOther,
    /// The Lease changed between read and write; try again.
    Raced,
}

/// Runs `lead` while this process holds the Lease, until `stop`. `lead`
/// gets a token that is cancelled when leadership ends; the next term
/// starts only after the previous term's task has finished. On `stop` a
/// held Lease is released so another process takes over at once.
pub async fn run_elected<S, F, Fut>(
    store: S,
    config: LeaderElectionConfig,
    stop: CancellationToken,
    mut lead: F,
) where
    S: LeaseStore,
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut elector = Elector {
        store,
        config,
        observed: None,
    };
    loop {
        if !elector.acquire(&stop).await {
            return;
        }
        tracing::info!(identity = %elector.config.identity, "became the leader");
        let term = stop.child_token();
        let task = tokio::spawn(lead(term.clone()));
        let shutdown = elector.hold(&stop).await;
        term.cancel();
        if let Err(e) = task.await {
            tracing::error!(error = %e, "the leader's controllers panicked");
        }
        if shutdown {
            elector.release().await;
            return;
        }
        tracing::warn!(identity = %elector.config.identity, "lost leadership; controllers stopped");
    }
}

struct Elector<S> {
    store: S,
    config: LeaderElectionConfig,
    /// The Lease resourceVersion last seen and when it was first seen.
    observed: Option<(String, Instant)>,
}

impl<S: LeaseStore> Elector<S> {
    /// Tries every retry period until the Lease is ours; false on `stop`.
    async fn acquire(&mut self, stop: &CancellationToken) -> bool {
        loop {
            if stop.is_cancelled() {
                return false;
            }
            let attempt =
                tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew());
            match attempt.await {
                Ok(Ok(Attempt::Leading)) => return true,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not read or write the leader Lease")
                }
                Err(_) => tracing::warn!("the leader Lease request timed out"),
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
    }

    /// Renews until leadership is lost (false) or `stop` (true).
    async fn hold(&mut self, stop: &CancellationToken) -> bool {
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return true,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
            let deadline = renewed + self.config.renew_deadline;
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(Attempt::Leading)) => renewed = Instant::now(),
                Ok(Ok(Attempt::HeldByOther)) => return false,
                Ok(Ok(Attempt::Raced)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the leader Lease"),
                Err(_) => return false,
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, ClientError> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let me = self.config.identity.clone();
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.store.get().await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.store.create(&lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(e) if e.is_already_exists() => Ok(Attempt::Raced),
                Err(e) => Err(e),
            };
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let seen_at = match &self.observed {
            Some((v, at)) if *v == version => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((version, at));
                at
            }
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != me {
            let held_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.config.lease_duration, Duration::from_secs);
            if !holder.is_empty() && Instant::now() < seen_at + held_for {
                return Ok(Attempt::HeldByOther);
            }
            spec.holder_identity = Some(me);
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(duration_secs);
        match self.store.replace(&lease).await {
            Ok(_) => Ok(Attempt::Leading),
            Err(e) if e.is_conflict() => Ok(Attempt::Raced),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up so another process need not wait for it to expire.
    async fn release(&mut self) {
        let release = async {
            let Some(mut lease) = self.store.get().await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
            self.store.replace(&lease).await.map(|_| ())
        };
        match tokio::time::timeout(Duration::from_secs(2), release).await {
            Ok(Ok(())) => tracing::info!("released the leader Lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the leader Lease"),
            Err(_) => tracing::warn!("releasing the leader Lease timed out"),
        }
    }
}

#[cfg(test)]
mod tests;
