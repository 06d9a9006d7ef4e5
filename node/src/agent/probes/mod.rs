//! Container probes, as the kubelet runs them: startup, liveness and
//! readiness probes (`httpGet`, `tcpSocket`) against the pod's address on
//! its virtual network, never the host's.
//!
//! [`spec`] reads a container's probes, [`machine`] turns run outcomes into
//! decisions (pure: consecutive counts against thresholds), [`transport`]
//! runs one check over the pod network, and [`runner`] schedules the runs
//! of one container's probes and reports each [`ProbeUpdate`]. The pod
//! lifecycle turns updates into readiness, restarts and Events.

pub mod machine;
pub mod runner;
pub mod spec;
pub mod transport;

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use machine::{Outcome, ProbeMachine};
pub use runner::{Transport, run};
pub use spec::{Action, ContainerProbes, HttpGet, ProbeSpec};
pub use transport::NetworkTransport;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As the kubelet's Events name it: `Liveness probe failed: ...`.
    pub fn title(self) -> &'static str {
        match self {
            Self::Startup => "Startup",
            Self::Liveness => "Liveness",
            Self::Readiness => "Readiness",
        }
    }

    /// Lower case, for the middle of a sentence.
    pub fn name(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Liveness => "liveness",
            Self::Readiness => "readiness",
        }
    }
}

/// What a container's probes found out, as far as the pod's lifecycle is
/// concerned. Only changes are reported, besides each failed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeUpdate {
    /// A run failed (an `Unhealthy` Event), below the threshold or not.
    Unhealthy { kind: ProbeKind, message: String },
    /// The startup probe succeeded: the container has started.
    Started,
    /// The readiness probe crossed a threshold.
    Ready(bool),
    /// The liveness or startup probe failed `failureThreshold` times in a
    /// row: the container is stopped within `grace` (the pod's grace
    /// period when `None`) and restarted under the restart policy.
    Failed {
        kind: ProbeKind,
        grace: Option<Duration>,
    },
}

/// The running probes of one run of a container; dropping it stops them.
#[derive(Debug)]
pub struct ProbeTask(JoinHandle<()>);

impl ProbeTask {
    /// Runs `probes` (a future around [`run`]) until the task is dropped.
    pub fn spawn(probes: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(probes))
    }
}

impl Drop for ProbeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
