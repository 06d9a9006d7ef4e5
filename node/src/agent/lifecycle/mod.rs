//! The pod and container lifecycles as pure state machines: a step takes the
//! pod's state and one event and returns the new state and the effects to
//! carry out (start, stop or kill a container, delete the pod, record an
//! Event). No I/O and no clock happen here; time comes in with each event,
//! so every transition is unit-tested without a runtime or an API server.

mod adopt;
mod container;
mod pod;
mod status;

use std::time::Duration;

use tokio::time::Instant;
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::container_runtime::{ExitStatus, StartError};
use super::probes::ProbeUpdate;

pub use adopt::Checkpointed;
pub use container::{Container, ContainerState, Health, Termination, Waiting};
pub use pod::{AfterStop, Phase, PodState, Stage};
pub use status::{HostFacts, container_id, pod_status};

/// The time of a step: monotonic for deadlines and back-offs, wall-clock for
/// the timestamps the status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: Timestamp,
}

impl Now {
    /// The wall-clock time of a monotonic instant, relative to this one.
    pub fn wall_at(&self, at: Instant) -> Timestamp {
        let offset = if at >= self.mono {
            signed(at - self.mono)
        } else {
            -signed(self.mono - at)
        };
        self.wall.checked_add(offset).unwrap_or(self.wall)
    }

    /// The monotonic instant of a wall-clock time, relative to this one;
    /// times in the past map to now.
    pub fn mono_at(&self, at: Timestamp) -> Instant {
        let ahead = at.duration_since(self.wall);
        match Duration::try_from(ahead) {
            Ok(d) => self.mono + d,
            Err(_) => self.mono,
        }
    }
}

fn signed(d: Duration) -> wasmpod_api::k8s_openapi::jiff::SignedDuration {
    wasmpod_api::k8s_openapi::jiff::SignedDuration::try_from(d)
        .unwrap_or(wasmpod_api::k8s_openapi::jiff::SignedDuration::MAX)
}

/// `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The policy a pod spec names; the API server defaults it to `Always`.
    pub fn from_spec(policy: Option<&str>) -> Self {
        match policy {
            Some("OnFailure") => Self::OnFailure,
            Some("Never") => Self::Never,
            _ => Self::Always,
        }
    }

    /// Whether an app container that ended this way starts again.
    pub fn restarts(self, succeeded: bool) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => !succeeded,
            Self::Never => false,
        }
    }

    /// Whether a failed init container is retried (Kubernetes retries them
    /// unless the policy is `Never`).
    pub fn retries_init(self) -> bool {
        self != Self::Never
    }
}

/// The exponential back-off between restarts of a crashing container and
/// between failed starts. Kubernetes uses 10 s doubling up to 5 minutes;
/// tests shrink both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub base: Duration,
    pub cap: Duration,
    /// A container that ran at least this long before it ended restarts
    /// without delay, as if it had never crashed.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

impl BackoffConfig {
    /// The delay before restart number `step + 1` of a crash loop: the first
    /// restart is immediate, then `base`, doubling up to `cap`.
    pub fn crash_delay(&self, step: u32) -> Duration {
        match step {
            0 => Duration::ZERO,
            n => self.doubled(n - 1),
        }
    }

    /// The delay before retrying a start that failed `step + 1` times in a row.
    pub fn retry_delay(&self, step: u32) -> Duration {
        self.doubled(step)
    }

    fn doubled(&self, times: u32) -> Duration {
        let factor = 1u32.checked_shl(times.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// One of a pod's containers: an init container or an app container, by
/// its index in the pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContainerKey {
    Init(usize),
    App(usize),
}

/// What happened to a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodEvent {
    /// Time passed (a back-off, grace period or deadline may be over).
    Tick,
    /// A start requested by [`Effect::Start`] succeeded.
    Started { key: ContainerKey, image_id: String },
    /// A start requested by [`Effect::Start`] failed.
    StartFailed {
        key: ContainerKey,
        error: StartError,
    },
    /// A running container ended.
    Exited {
        key: ContainerKey,
        status: ExitStatus,
    },
    /// The pod got a deletionTimestamp: stop everything within `grace`,
    /// then delete the pod object.
    DeletionRequested { grace: Duration },
    /// A probe of a container's run number `run` (its `runs` once started)
    /// found something out.
    Probed {
        key: ContainerKey,
        run: u32,
        update: ProbeUpdate,
    },
}

/// What the pod worker must do after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start the container (its restart count is the state's).
    Start(ContainerKey),
    /// Ask the running container to stop on its own.
    Terminate(ContainerKey),
    /// Stop the running container now.
    Kill(ContainerKey),
    /// Remove the pod object (grace period 0, UID precondition): every
    /// container has stopped after a deletion request.
    DeletePod,
    /// Record a Kubernetes Event about the pod.
    Record(Record),
}

/// An Event to record about the pod, as the kubelet reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Record {
    fn normal(reason: &str, message: String) -> Effect {
        Effect::Record(Self {
            warning: false,
            reason: reason.into(),
            message,
        })
    }

    fn warning(reason: &str, message: String) -> Effect {
        Effect::Record(Self {
            warning: true,
            reason: reason.into(),
            message,
        })
    }
}

#[cfg(test)]
mod tests;
