//! The seam between the kubelet logic and whatever executes containers: a
//! runtime starts a container from a fully resolved spec and hands back a
//! handle to wait on or kill. Nothing here names a wasm engine type, so the
//! agent is tested against a fake and the engine never sees the API.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use super::log_server::{LogWriters, NoWriters};

/// Executes containers. One value serves every pod of the node.
pub trait ContainerRuntime: Send + Sync + 'static {
    type Handle: ContainerHandle;

    /// Starts one container: fetches and prepares its module (honouring
    /// `spec.image_pull_policy`) and begins running it. Returns once the
    /// container runs; its end is reported by [`ContainerHandle::wait`].
    fn start(
        &self,
        spec: ContainerSpec,
    ) -> impl Future<Output = Result<Self::Handle, StartError>> + Send;

    /// Which containers' log files ([`ContainerSpec::log_path`]) are still
    /// written, so that `kubectl logs -f` ends with the container. A
    /// runtime that does not know says none are.
    fn log_writers(&self) -> Arc<dyn LogWriters> {
        Arc::new(NoWriters)
    }
}

/// A running (or finished) container.
pub trait ContainerHandle: Send + Sync + 'static {
    /// Resolves when the container has ended, with how it ended. May be
    /// awaited again after it resolved and then returns the same status.
    fn wait(&self) -> impl Future<Output = ExitStatus> + Send;

    /// Asks the container to stop on its own. Wasm modules have no signals,
    /// so runtimes without a way to deliver the request keep this default;
    /// the agent kills the container when the grace period is over.
    fn terminate(&self) {}

    /// Stops the container now, even inside a busy loop. `wait` then
    /// resolves with [`ExitStatus::Killed`] unless it had already ended.
    fn kill(&self);

    /// The digest of the module that runs (`sha256:<hex>`), reported as the
    /// container status's `imageID`.
    fn image_id(&self) -> String;
}

/// Everything a runtime needs to start a container, resolved from the pod
/// spec, its ConfigMaps and Secrets by the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub pod: PodRef,
    /// The container's name in the pod.
    pub name: String,
    /// How many times this container ran before in this pod (0 on the first
    /// start): the `restartCount` it will have once it runs.
    pub attempt: u32,
    /// The module reference (`file:///…`, a pushed name or digest, `https://…`).
    pub image: String,
    pub image_pull_policy: PullPolicy,
    /// `command` followed by `args`, with `$(VAR)` references expanded. When
    /// the container has no `command`, `argv[0]` is the container's name.
    pub argv: Vec<String>,
    /// Environment variables in the order the pod spec gives them.
    pub env: Vec<(String, String)>,
    /// Directories preopened for the module.
    pub mounts: Vec<Mount>,
    pub working_dir: Option<String>,
    /// `resources.limits.memory` in bytes: the cap on linear memory.
    pub memory_limit_bytes: Option<u64>,
    /// `resources.limits.cpu` in millicores: the CPU budget.
    pub cpu_limit_millis: Option<u64>,
    /// The file that receives this attempt's stdout and stderr.
    pub log_path: PathBuf,
    /// The TCP `containerPort`s, in the pod spec's order: where an HTTP
    /// component is served (port 8080 when there are none).
    pub ports: Vec<u16>,
    /// The pod's virtual network, which the container's sockets use;
    /// `None` gives it none.
    pub network: Option<crate::network::PodNetwork>,
}

/// The pod a container belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// A host directory preopened into the module at `guest_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub read_only: bool,
}

/// `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// The policy a container spec names; unknown or missing values mean
    /// `IfNotPresent` (the API server defaults the field).
    pub fn from_spec(policy: Option<&str>) -> Self {
        match policy {
            Some("Always") => Self::Always,
            Some("Never") => Self::Never,
            _ => Self::IfNotPresent,
        }
    }
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The module returned from its entry point or called `proc_exit`.
    Exited { code: i32 },
    /// The module trapped (unreachable, out-of-bounds access, ...).
    Trapped { message: String },
    /// The module needed more memory than its limit allows.
    OomKilled,
    /// The agent killed it.
    Killed,
}

/// Why a container could not be started; each maps to the waiting reason
/// Kubernetes reports for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The module could not be fetched (missing file, network, wrong digest).
    #[error("{0}")]
    ImagePull(String),
    /// `imagePullPolicy: Never` and the module is not on the node.
    #[error("{0}")]
    ImageNeverPull(String),
    /// The reference does not name a module the node can fetch.
    #[error("{0}")]
    InvalidImageName(String),
    /// The module was fetched but is not a runnable wasm module or component.
    #[error("{0}")]
    InvalidImage(String),
    /// The container's configuration could not be resolved (a missing
    /// ConfigMap or Secret, an unsupported volume).
    #[error("{0}")]
    CreateContainerConfig(String),
    /// A volume is not ready yet (its claim is not bound): the container
    /// keeps waiting in ContainerCreating and the start is retried soon.
    #[error("{0}")]
    VolumeNotReady(String),
    /// The runtime failed to create the instance.
    #[error("{0}")]
    CreateContainer(String),
}

impl StartError {
    /// The waiting reason Kubernetes reports for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ImagePull(_) => "ErrImagePull",
            Self::ImageNeverPull(_) => "ErrImageNeverPull",
            Self::InvalidImageName(_) => "InvalidImageName",
            Self::InvalidImage(_) => "InvalidImage",
            Self::CreateContainerConfig(_) => "CreateContainerConfigError",
            Self::VolumeNotReady(_) => "ContainerCreating",
            Self::CreateContainer(_) => "CreateContainerError",
        }
    }

    /// True for failures to fetch a module, which Kubernetes retries under
    /// the `ImagePullBackOff` reason.
    pub fn is_pull_failure(&self) -> bool {
        matches!(self, Self::ImagePull(_))
    }

    /// True while a volume is not ready: the kubelet's volume manager
    /// retries on its own quick schedule, not the crash-loop back-off.
    pub fn is_volume_wait(&self) -> bool {
        matches!(self, Self::VolumeNotReady(_))
    }
}
