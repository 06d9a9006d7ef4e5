//! Pods' places on the node's virtual network: once the Node has its pod
//! CIDR, each pod gets an IP of it and is attached to the node's
//! [`Fabric`]; its modules share the resulting [`PodNetwork`]. Whether the
//! pod may reach addresses outside the cluster is the node's policy, which
//! the pod's Namespace may narrow with the label
//! `network.wasmpod.io/egress: deny`.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ipnet::Ipv4Net;
use tokio::sync::watch;

use super::api::PodApi;
use super::pod_ips::PodIps;
use crate::agent::container_runtime::{PodRef, StartError};
use crate::network::{Fabric, PodNetwork};

/// The Namespace label that denies its pods egress.
pub const EGRESS_LABEL: &str = "network.wasmpod.io/egress";

/// The node's half of pod networking, shared by every pod worker. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct PodNetworking {
    fabric: Fabric,
    allow_egress: bool,
    cidr: watch::Receiver<Option<Ipv4Net>>,
    ips: Arc<Mutex<Option<PodIps>>>,
}

/// Tells pod networking the node's pod CIDR once it is known.
#[derive(Debug)]
pub struct PodCidrSender(watch::Sender<Option<Ipv4Net>>);

impl PodCidrSender {
    pub fn send(&self, cidr: Ipv4Net) {
        self.0.send_replace(Some(cidr));
    }
}

impl PodNetworking {
    /// Pod networking over `fabric`; pods get IPs once the returned sender
    /// has the node's pod CIDR. `allow_egress` is the node's policy.
    pub fn new(fabric: Fabric, allow_egress: bool) -> (Self, PodCidrSender) {
        let (tx, rx) = watch::channel(None);
        let networking = Self {
            fabric,
            allow_egress,
            cidr: rx,
            ips: Arc::default(),
        };
        (networking, PodCidrSender(tx))
    }

    /// Pod networking whose CIDR is known from the start (tests).
    pub fn with_cidr(fabric: Fabric, allow_egress: bool, cidr: Ipv4Net) -> Self {
        let (networking, sender) = Self::new(fabric, allow_egress);
        sender.send(cidr);
        networking
    }

    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    fn ips(&self) -> MutexGuard<'_, Option<PodIps>> {
        self.ips.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the node's pod CIDR.
    async fn pod_cidr(&self) -> Result<Ipv4Net, StartError> {
        let mut rx = self.cidr.clone();
        if rx.borrow().is_none() {
            tracing::info!("waiting for the node's pod CIDR before starting pods");
        }
        let cidr = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StartError::CreateContainer("the node has no pod CIDR".into()))?;
        cidr.ok_or_else(|| StartError::CreateContainer("the node has no pod CIDR".into()))
    }

    /// Gives `pod` an IP (`preferred`, the one it reported before, if that
    /// is free) and attaches it to the fabric. Waits for the node's pod
    /// CIDR first.
    pub async fn attach<A: PodApi>(
        &self,
        api: &A,
        pod: &PodRef,
        preferred: Option<Ipv4Addr>,
    ) -> Result<PodNetwork, StartError> {
        let cidr = self.pod_cidr().await?;
        let ip = {
            let mut ips = self.ips();
            if ips.as_ref().is_none_or(|i| i.cidr() != cidr) {
                *ips = Some(PodIps::new(cidr));
            }
            let Some(ips) = ips.as_mut() else {
                return Err(StartError::CreateContainer("no pod IPs".into()));
            };
            ips.allocate(&pod.uid, preferred).map_err(|e| {
                StartError::CreateContainer(format!("setting up the pod network: {e}"))
            })?
        };
        let egress = self.egress(api, &pod.namespace).await;
        tracing::debug!(pod = %pod.name, %ip, egress, "pod attached to the node's network");
        Ok(self.fabric.attach(ip, &pod.namespace, egress))
    }

    /// Gives pod `uid`'s IP back.
    pub fn release(&self, uid: &str) {
        if let Some(ips) = self.ips().as_mut()
            && let Some(ip) = ips.release(uid)
        {
            tracing::debug!(%ip, "pod IP released");
        }
    }

    /// Whether pods of `namespace` may leave the cluster: never when the
    /// node denies it; otherwise unless the Namespace denies it. When the
    /// Namespace cannot be read the node's policy applies.
    async fn egress<A: PodApi>(&self, api: &A, namespace: &str) -> bool {
        if !self.allow_egress {
            return false;
        }
        match api.namespace(namespace).await {
            Ok(ns) => ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(EGRESS_LABEL))
                .is_none_or(|v| v != "deny"),
            Err(e) => {
                tracing::warn!(%namespace, error = %crate::agent::error_chain(&e), "reading the pod's namespace; the node's egress policy applies");
                self.allow_egress
            }
        }
    }
}

#[cfg(test)]
mod tests;
