//! The node's heartbeat: a Lease named after the node in `kube-node-lease`,
//! owned by the Node object, whose renewTime the node moves forward every
//! renew interval.

use std::time::Duration;

use wasmpod_api::k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use wasmpod_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    MicroTime, ObjectMeta, OwnerReference,
};
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use crate::agent::client::{ApiClient, ClientError};

pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Renews one node's Lease.
pub struct LeaseRenewer {
    client: ApiClient,
    node: String,
    node_uid: Option<String>,
    duration: Duration,
    interval: Duration,
    /// The Lease as last written, to update with optimistic concurrency.
    current: Option<Lease>,
}

impl LeaseRenewer {
    /// A renewer for `node`; `node_uid` makes the Node the Lease's owner,
    /// so the Lease goes when the Node does.
    pub fn new(
        client: ApiClient,
        node: impl Into<String>,
        node_uid: Option<String>,
        duration: Duration,
        interval: Duration,
    ) -> Self {
        Self {
            client,
            node: node.into(),
            node_uid: node_uid.filter(|u| !u.is_empty()),
            duration,
            interval,
            current: None,
        }
    }

    /// Moves the Lease's renewTime to now, creating the Lease if needed.
    /// A conflict (someone else wrote it) is resolved by reading it again
    /// and retrying once.
    pub async fn renew(&mut self) -> Result<Lease, ClientError> {
        match self.try_renew().await {
            Err(e) if e.is_conflict() || e.is_not_found() || e.is_already_exists() => {
                self.current = None;
                self.try_renew().await
            }
            other => other,
        }
    }

    /// Renews at once, then every interval (jittered), forever.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.renew().await {
                tracing::warn!(node = %self.node, error = %crate::agent::error_chain(&e), "renewing the node lease");
            }
            tokio::time::sleep(crate::agent::jitter::jittered(self.interval)).await;
        }
    }

    async fn try_renew(&mut self) -> Result<Lease, ClientError> {
        let existing = match self.current.take() {
            Some(lease) => Some(lease),
            None => match self
                .client
                .get::<Lease>(Some(NODE_LEASE_NAMESPACE), &self.node)
                .await
            {
                Ok(lease) => Some(lease),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
        };
        let now = MicroTime(Timestamp::now());
        let written = match existing {
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                spec.holder_identity = Some(self.node.clone());
                spec.lease_duration_seconds = Some(self.duration_seconds());
                spec.renew_time = Some(now);
                self.client
                    .replace(Some(NODE_LEASE_NAMESPACE), &self.node, &lease)
                    .await?
            }
            None => {
                let lease = self.new_lease(now);
                self.client
                    .create(Some(NODE_LEASE_NAMESPACE), &lease)
                    .await?
            }
        };
        self.current = Some(written.clone());
        Ok(written)
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn new_lease(&self, now: MicroTime) -> Lease {
        let owner = self.node_uid.as_ref().map(|uid| {
            vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Node".into(),
                name: self.node.clone(),
                uid: uid.clone(),
                ..OwnerReference::default()
            }]
        });
        Lease {
            metadata: ObjectMeta {
                name: Some(self.node.clone()),
                namespace: Some(NODE_LEASE_NAMESPACE.into()),
                owner_references: owner,
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                renew_time: Some(now),
                ..LeaseSpec::default()
            }),
        }
    }
}
