//! The node's own objects: it registers its Node (capacity, allocatable,
//! nodeInfo, addresses), keeps the Node's conditions current with heartbeat
//! times, and renews its Lease in `kube-node-lease`, which is how the
//! control plane tells a live node from a dead one.

pub mod host;
mod lease;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use wasmpod_api::k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use wasmpod_api::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use wasmpod_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::client::{ApiClient, ClientError, Patch};
pub use host::{HostSample, SystemIdentity};
pub use lease::LeaseRenewer;

/// The version a wasmpod node reports as its kubelet's.
pub const KUBELET_VERSION: &str = "v1.32.0-wasmpod";
/// The container runtime a wasmpod node reports.
pub const CONTAINER_RUNTIME_VERSION: &str = "wasmtime://48";

/// How the node describes itself and how often it says so.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub name: String,
    /// Labels beyond the well-known hostname/os/arch ones.
    pub labels: BTreeMap<String, String>,
    /// Annotations the node sets on its Node, such as where its tunnel
    /// listens (`network.wasmpod.io/tunnel`).
    pub annotations: BTreeMap<String, String>,
    /// `(type, address)` pairs: `InternalIP`, `Hostname`, ...
    pub addresses: Vec<(String, String)>,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub max_pods: u32,
    /// Held back from allocatable for the node itself.
    pub reserved_cpu_millis: u64,
    pub reserved_memory_bytes: u64,
    /// The port of the node's HTTP endpoint (logs), if it serves one.
    pub kubelet_port: Option<u16>,
    /// The directory whose file system DiskPressure watches.
    pub data_dir: PathBuf,
    /// MemoryPressure when less memory than this is available.
    pub memory_pressure_below: u64,
    /// DiskPressure when less than this share of the disk is free.
    pub disk_pressure_below: f64,
    /// How often conditions are sampled (and written if they changed).
    pub status_interval: Duration,
    /// How often the status is written even when nothing changed, to
    /// refresh the heartbeat times.
    pub status_report_interval: Duration,
    pub lease_duration: Duration,
    pub lease_renew_interval: Duration,
}

impl NodeConfig {
    /// A configuration from what the host reports, with Kubernetes' defaults
    /// for the intervals and thresholds.
    pub fn detect(name: impl Into<String>, data_dir: PathBuf) -> Self {
        let name = name.into();
        let hostname = host::hostname().unwrap_or_else(|| name.clone());
        Self {
            addresses: vec![
                ("InternalIP".into(), host::internal_ip().to_string()),
                ("Hostname".into(), hostname),
            ],
            name,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            cpu_millis: host::cpu_millis(),
            memory_bytes: host::memory_total().unwrap_or(1 << 30),
            max_pods: 1000,
            reserved_cpu_millis: 0,
            reserved_memory_bytes: 0,
            kubelet_port: None,
            data_dir,
            memory_pressure_below: 100 << 20,
            disk_pressure_below: 0.10,
            status_interval: Duration::from_secs(10),
            status_report_interval: Duration::from_secs(60),
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
        }
    }

    /// Replaces the detected `InternalIP` address.
    pub fn set_internal_ip(&mut self, ip: String) {
        self.addresses.retain(|(kind, _)| kind != "InternalIP");
        self.addresses.insert(0, ("InternalIP".into(), ip));
    }

    /// The address pods report as `hostIP`.
    pub fn internal_ip(&self) -> Option<&str> {
        self.addresses
            .iter()
            .find(|(kind, _)| kind == "InternalIP")
            .map(|(_, a)| a.as_str())
    }

    fn all_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), self.name.clone()),
            (
                "kubernetes.io/os".to_string(),
                host::operating_system().to_string(),
            ),
            (
                "kubernetes.io/arch".to_string(),
                host::architecture().to_string(),
            ),
        ]);
        labels.extend(self.labels.clone());
        labels
    }
}

/// A failure to register or report the Node.
#[derive(Debug, thiserror::Error)]
pub enum NodeStatusError {
    #[error("registering node {node}")]
    Register {
        node: String,
        #[source]
        source: ClientError,
    },
    #[error("reporting the status of node {node}")]
    Report {
        node: String,
        #[source]
        source: ClientError,
    },
}

/// The Node object the node registers (its status is written separately).
pub fn node_object(config: &NodeConfig) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(config.all_labels()),
            annotations: (!config.annotations.is_empty()).then(|| config.annotations.clone()),
            ..ObjectMeta::default()
        },
        ..Node::default()
    }
}

/// The Node's status from the configuration and one host sample. A
/// condition keeps its transition time while its value stays the same; its
/// heartbeat time is `now`.
pub fn node_status(
    config: &NodeConfig,
    identity: &SystemIdentity,
    sample: &HostSample,
    previous: &[NodeCondition],
    now: Timestamp,
) -> NodeStatus {
    let capacity = resources(config.cpu_millis, config.memory_bytes, config.max_pods);
    let allocatable = resources(
        config.cpu_millis.saturating_sub(config.reserved_cpu_millis),
        config
            .memory_bytes
            .saturating_sub(config.reserved_memory_bytes),
        config.max_pods,
    );
    let memory_pressure = sample
        .memory_available
        .is_some_and(|m| m < config.memory_pressure_below);
    let disk_pressure = sample
        .disk_free_ratio
        .is_some_and(|r| r < config.disk_pressure_below);
    let conditions = vec![
        node_condition(
            "Ready",
            true,
            "KubeletReady",
            "kubelet is posting ready status",
            previous,
            now,
        ),
        node_condition(
            "MemoryPressure",
            memory_pressure,
            if memory_pressure {
                "KubeletHasInsufficientMemory"
            } else {
                "KubeletHasSufficientMemory"
            },
            if memory_pressure {
                "kubelet has insufficient memory available"
            } else {
                "kubelet has sufficient memory available"
            },
            previous,
            now,
        ),
        node_condition(
            "DiskPressure",
            disk_pressure,
            if disk_pressure {
                "KubeletHasDiskPressure"
            } else {
                "KubeletHasNoDiskPressure"
            },
            if disk_pressure {
                "kubelet has disk pressure"
            } else {
                "kubelet has no disk pressure"
            },
            previous,
            now,
        ),
    ];
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(conditions),
        addresses: Some(
            config
                .addresses
                .iter()
                .map(|(kind, address)| NodeAddress {
                    type_: kind.clone(),
                    address: address.clone(),
                })
                .collect(),
        ),
        daemon_endpoints: config.kubelet_port.map(|port| NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: host::architecture().into(),
            operating_system: host::operating_system().into(),
            kubelet_version: KUBELET_VERSION.into(),
            container_runtime_version: CONTAINER_RUNTIME_VERSION.into(),
            kernel_version: identity.kernel_version.clone(),
            os_image: identity.os_image.clone(),
            machine_id: identity.machine_id.clone(),
            boot_id: identity.boot_id.clone(),
            ..NodeSystemInfo::default()
        }),
        ..NodeStatus::default()
    }
}

fn resources(cpu_millis: u64, memory_bytes: u64, pods: u32) -> BTreeMap<String, Quantity> {
    let cpu = if cpu_millis.is_multiple_of(1000) {
        (cpu_millis / 1000).to_string()
    } else {
        format!("{cpu_millis}m")
    };
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu)),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", memory_bytes / 1024)),
        ),
        ("pods".to_string(), Quantity(pods.to_string())),
    ])
}

fn node_condition(
    kind: &str,
    value: bool,
    reason: &str,
    message: &str,
    previous: &[NodeCondition],
    now: Timestamp,
) -> NodeCondition {
    let status = if value { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    NodeCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(since),
    }
}

/// The condition values of a status, without times, to tell whether a
/// report carries news.
fn condition_values(status: &NodeStatus) -> Vec<(String, String)> {
    status
        .conditions
        .iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

/// Registers the Node and keeps its status current.
pub struct NodeStatusReporter {
    client: ApiClient,
    config: NodeConfig,
    identity: SystemIdentity,
    /// The last status written and when.
    last: Option<(NodeStatus, Instant)>,
}

impl NodeStatusReporter {
    pub fn new(client: ApiClient, config: NodeConfig) -> Self {
        Self {
            client,
            config,
            identity: host::system_identity(),
            last: None,
        }
    }

    /// Creates the Node, or adopts an existing one of the same name (a
    /// restarted node) by updating its labels and annotations; then writes
    /// its status.
    /// Returns the Node's UID.
    pub async fn register(&mut self) -> Result<String, NodeStatusError> {
        let name = self.config.name.clone();
        let register = |source| NodeStatusError::Register {
            node: name.clone(),
            source,
        };
        let wanted = node_object(&self.config);
        let node = match self.client.create(None, &wanted).await {
            Ok(node) => node,
            Err(e) if e.is_already_exists() => {
                let patch = Patch::Merge(json!({"metadata": {
                    "labels": wanted.metadata.labels,
                    "annotations": wanted.metadata.annotations,
                }}));
                self.client
                    .patch::<Node>(None, &name, &patch)
                    .await
                    .map_err(register)?
            }
            Err(e) => return Err(register(e)),
        };
        self.last = None;
        self.report(node.status.as_ref()).await?;
        Ok(node.metadata.uid.unwrap_or_default())
    }

    /// Samples the host and writes the status if a condition changed or the
    /// last write is older than the report interval. A Node deleted behind
    /// the node's back is registered again.
    pub async fn sync(&mut self) -> Result<(), NodeStatusError> {
        let due = self
            .last
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= self.config.status_report_interval);
        let previous = self.last.as_ref().map(|(s, _)| s.clone());
        let candidate = self.status(previous.as_ref());
        let changed = previous
            .as_ref()
            .is_none_or(|p| condition_values(p) != condition_values(&candidate));
        if !(due || changed || self.server_differs(previous.as_ref()).await) {
            return Ok(());
        }
        match self.write(candidate).await {
            Err(NodeStatusError::Report { source, .. }) if source.is_not_found() => {
                tracing::warn!(node = %self.config.name, "the Node object is gone; registering again");
                self.register().await.map(|_| ())
            }
            other => other,
        }
    }

    /// Whether the Node's conditions on the server are not the ones this
    /// node last wrote: the node lifecycle controller marked it Unknown
    /// (its Lease was late), or someone else changed them. Kubelet
    /// compares with the server's Node on every status interval too.
    async fn server_differs(&self, last: Option<&NodeStatus>) -> bool {
        let Some(last) = last else {
            return true;
        };
        match self.client.get::<Node>(None, &self.config.name).await {
            Ok(node) => node
                .status
                .as_ref()
                .is_none_or(|s| condition_values(s) != condition_values(last)),
            Err(e) => {
                tracing::debug!(node = %self.config.name, error = %e, "cannot read the Node");
                false
            }
        }
    }

    /// Syncs at once, then every status interval (jittered), forever.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %crate::agent::error_chain(&e), "node status");
            }
            tokio::time::sleep(crate::agent::jitter::jittered(self.config.status_interval)).await;
        }
    }

    fn status(&self, previous: Option<&NodeStatus>) -> NodeStatus {
        let conditions = previous
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        node_status(
            &self.config,
            &self.identity,
            &host::sample(&self.config.data_dir),
            &conditions,
            Timestamp::now(),
        )
    }

    async fn report(&mut self, current: Option<&NodeStatus>) -> Result<(), NodeStatusError> {
        let status = self.status(current);
        self.write(status).await
    }

    async fn write(&mut self, status: NodeStatus) -> Result<(), NodeStatusError> {
        let patch = Patch::Merge(json!({ "status": status }));
        self.client
            .patch_status::<Node>(None, &self.config.name, &patch)
            .await
            .map_err(|source| NodeStatusError::Report {
                node: self.config.name.clone(),
                source,
            })?;
        self.last = Some((status, Instant::now()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        let mut c = NodeConfig::detect("n1", std::env::temp_dir());
        c.cpu_millis = 2500;
        c.memory_bytes = 4 << 30;
        c.max_pods = 300;
        c.reserved_memory_bytes = 1 << 30;
        c
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    #[test]
    fn capacity_and_allocatable_are_kubernetes_quantities() {
        let status = node_status(
            &config(),
            &SystemIdentity::default(),
            &HostSample::default(),
            &[],
            at("2025-01-01T00:00:00Z"),
        );
        let capacity = status.capacity.expect("capacity");
        assert_eq!(capacity["cpu"].0, "2500m");
        assert_eq!(capacity["memory"].0, "4194304Ki");
        assert_eq!(capacity["pods"].0, "300");
        assert_eq!(
            status.allocatable.expect("allocatable")["memory"].0,
            "3145728Ki"
        );
        let info = status.node_info.expect("nodeInfo");
        assert_eq!(info.kubelet_version, "v1.32.0-wasmpod");
        assert_eq!(info.container_runtime_version, "wasmtime://48");
    }

    #[test]
    fn pressure_conditions_follow_the_host_and_keep_transition_times() {
        let c = config();
        let calm = HostSample {
            memory_available: Some(2 << 30),
            disk_free_ratio: Some(0.5),
        };
        let first = node_status(
            &c,
            &SystemIdentity::default(),
            &calm,
            &[],
            at("2025-01-01T00:00:00Z"),
        );
        let conds = first.conditions.clone().expect("conditions");
        let kinds: Vec<(&str, &str)> = conds
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("Ready", "True"),
                ("MemoryPressure", "False"),
                ("DiskPressure", "False")
            ]
        );
        let tight = HostSample {
            memory_available: Some(1 << 20),
            disk_free_ratio: Some(0.01),
        };
        let second = node_status(
            &c,
            &SystemIdentity::default(),
            &tight,
            &conds,
            at("2025-01-01T00:01:00Z"),
        );
        let get = |s: &NodeStatus, k: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == k)
                .cloned()
                .expect("condition")
        };
        assert_eq!(get(&second, "MemoryPressure").status, "True");
        assert_eq!(get(&second, "DiskPressure").status, "True");
        assert_eq!(
            get(&second, "Ready").last_transition_time,
            get(&first, "Ready").last_transition_time
        );
        assert_ne!(
            get(&second, "Ready").last_heartbeat_time,
            get(&first, "Ready").last_heartbeat_time
        );
        assert_ne!(
            get(&second, "MemoryPressure").last_transition_time,
            get(&first, "MemoryPressure").last_transition_time
        );
        assert_ne!(condition_values(&first), condition_values(&second));
    }

    #[test]
    fn the_node_carries_the_well_known_labels() {
        let mut c = config();
        c.labels.insert("tier".into(), "edge".into());
        let node = node_object(&c);
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/arch"], host::architecture());
        assert_eq!(labels["tier"], "edge");
        assert_eq!(node.metadata.annotations, None);
    }

    #[test]
    fn the_node_advertises_its_annotations() {
        let mut c = config();
        c.annotations
            .insert("network.wasmpod.io/tunnel".into(), "192.0.2.7:41000".into());
        let node = node_object(&c);
        let annotations = node.metadata.annotations.expect("annotations");
        assert_eq!(annotations["network.wasmpod.io/tunnel"], "192.0.2.7:41000");
    }
}
