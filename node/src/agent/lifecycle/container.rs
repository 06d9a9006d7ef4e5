//! One container's lifecycle: waiting, starting, running, terminated, and
//! the back-off bookkeeping between runs. The pod machine decides when a
//! container starts; the transitions allowed from each state are here.

use std::time::Duration;

use tokio::time::Instant;
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::{BackoffConfig, Now};
use crate::agent::container_runtime::{ExitStatus, StartError};
use crate::agent::probes::ProbeKind;

/// How often a start waiting for a volume is retried: soon at first, then
/// less often, as the kubelet's volume manager retries mounts.
const VOLUME_RETRY: BackoffConfig = BackoffConfig {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(32),
    reset_after: Duration::ZERO,
};

/// The exit code reported for a container killed by the agent or for lack
/// of memory (128 + SIGKILL, as Kubernetes reports it).
pub const KILLED_EXIT_CODE: i32 = 137;

/// The exit code reported for a trap (128 + SIGABRT, as `wasmtime run` exits).
pub const TRAP_EXIT_CODE: i32 = 134;

/// Trap reasons are shown in `kubectl get pods`; longer ones are cut here
/// and kept whole in the message.
const MAX_REASON_CHARS: usize = 96;

/// A container of a pod, as the node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub state: ContainerState,
    /// The previous run's end, reported as `lastState`.
    pub last_termination: Option<Termination>,
    /// How many times the container has started in this pod.
    pub runs: u32,
    /// The module digest of the current or last run.
    pub image_id: Option<String>,
    /// Crashes counted by the restart back-off.
    crash_step: u32,
    /// Failed starts in a row, counted by the retry back-off.
    retry_step: u32,
    /// When the current run started, for resetting the back-off.
    running_since: Option<Instant>,
    /// Whether the current run was already sent a kill.
    pub(super) kill_sent: bool,
    /// What the probes say about the current run.
    pub health: Health,
}

/// A run's standing with its probes: `containerStatuses[].started` and
/// `.ready`, and a stop a failed liveness or startup probe asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    has_startup_probe: bool,
    has_readiness_probe: bool,
    /// The startup probe succeeded (or there is none).
    pub started: bool,
    /// The readiness probe says ready (or there is none).
    pub ready: bool,
    /// A probe failed the run: it is stopped, killed at the instant, and
    /// restarts unless the restart policy is `Never`.
    pub failed: Option<(ProbeKind, Instant)>,
}

impl Health {
    /// The standing of a container with these probes, before any run.
    pub fn new(has_startup_probe: bool, has_readiness_probe: bool) -> Self {
        Self {
            has_startup_probe,
            has_readiness_probe,
            ..Self::default()
        }
    }

    /// A new run: started and ready at once unless a probe must say so.
    fn reset(&mut self) {
        self.started = !self.has_startup_probe;
        self.ready = !self.has_readiness_probe;
        self.failed = None;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Waiting(Waiting),
    /// A start was requested and has not answered yet.
    Starting,
    Running {
        started_at: Timestamp,
    },
    Terminated(Termination),
}

/// A container that is not running, with the reason shown in the status
/// and the time it may (re)start, if it will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: Option<String>,
    /// `None`: start as soon as the pod allows; otherwise not before.
    pub retry_at: Option<Instant>,
}

/// How a run ended, as `state.terminated` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
}

impl Termination {
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }

    /// The termination of a run the node lost track of: it was started by
    /// an earlier incarnation of the node and did not survive it.
    pub fn lost(started_at: Option<Timestamp>, finished_at: Timestamp) -> Self {
        Self {
            exit_code: KILLED_EXIT_CODE,
            reason: "ContainerStatusUnknown".into(),
            message: Some("The container could not be located when the node restarted".into()),
            started_at,
            finished_at,
        }
    }

    fn from_exit(
        status: &ExitStatus,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    ) -> Self {
        let (exit_code, reason, message) = match status {
            ExitStatus::Exited { code: 0 } => (0, "Completed".to_string(), None),
            ExitStatus::Exited { code } => (*code, "Error".to_string(), None),
            ExitStatus::Trapped { message } => {
                (TRAP_EXIT_CODE, trap_reason(message), Some(message.clone()))
            }
            ExitStatus::OomKilled => (KILLED_EXIT_CODE, "OOMKilled".to_string(), None),
            ExitStatus::Killed => (KILLED_EXIT_CODE, "Error".to_string(), None),
        };
        Self {
            exit_code,
            reason,
            message,
            started_at,
            finished_at,
        }
    }
}

/// The first line of a trap message, short enough for a status column.
fn trap_reason(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return "Trap".into();
    }
    let mut reason: String = line.chars().take(MAX_REASON_CHARS).collect();
    if reason.len() < line.len() {
        reason.push('…');
    }
    reason
}

impl Container {
    /// A container that has not run yet, waiting with `reason`
    /// (`ContainerCreating`, or `PodInitializing` behind init containers).
    pub fn new(name: impl Into<String>, reason: &str) -> Self {
        Self {
            name: name.into(),
            state: ContainerState::Waiting(Waiting {
                reason: reason.into(),
                message: None,
                retry_at: None,
            }),
            last_termination: None,
            runs: 0,
            image_id: None,
            crash_step: 0,
            retry_step: 0,
            running_since: None,
            kill_sent: false,
            health: Health::default(),
        }
    }

    /// A container as an earlier incarnation of the node left it.
    pub(super) fn restored(
        name: String,
        state: ContainerState,
        last_termination: Option<Termination>,
        runs: u32,
        image_id: Option<String>,
        crash_step: u32,
    ) -> Self {
        Self {
            name,
            state,
            last_termination,
            runs,
            image_id,
            crash_step,
            retry_step: 0,
            running_since: None,
            kill_sent: false,
            health: Health::default(),
        }
    }

    /// `restartCount`: runs after the first.
    pub fn restart_count(&self) -> u32 {
        self.runs.saturating_sub(1)
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    /// Running, or a start is in flight: something may be executing.
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            ContainerState::Running { .. } | ContainerState::Starting
        )
    }

    pub fn termination(&self) -> Option<&Termination> {
        match &self.state {
            ContainerState::Terminated(t) => Some(t),
            _ => None,
        }
    }

    /// Ended successfully and will not run again.
    pub fn completed(&self) -> bool {
        self.termination().is_some_and(Termination::succeeded)
    }

    /// The time a waiting container may start, if it waits for one.
    pub fn retry_at(&self) -> Option<Instant> {
        match &self.state {
            ContainerState::Waiting(w) => w.retry_at,
            _ => None,
        }
    }

    /// Moves a waiting container whose time has come to `Starting`; true if
    /// the caller must start it.
    pub(super) fn begin_start(&mut self, now: Now) -> bool {
        match &self.state {
            ContainerState::Waiting(w) if w.retry_at.is_none_or(|at| at <= now.mono) => {
                self.state = ContainerState::Starting;
                true
            }
            _ => false,
        }
    }

    /// The start succeeded. False if no start was in flight.
    pub(super) fn started(&mut self, now: Now, image_id: String) -> bool {
        if self.state != ContainerState::Starting {
            return false;
        }
        self.state = ContainerState::Running {
            started_at: now.wall,
        };
        self.runs += 1;
        self.retry_step = 0;
        self.image_id = Some(image_id);
        self.running_since = Some(now.mono);
        self.kill_sent = false;
        self.health.reset();
        true
    }

    /// The start failed: wait with the failure's reason and retry after the
    /// back-off. Returns the delay, or `None` if no start was in flight.
    pub(super) fn start_failed(
        &mut self,
        now: Now,
        error: &StartError,
        backoff: &BackoffConfig,
    ) -> Option<Duration> {
        if self.state != ContainerState::Starting {
            return None;
        }
        let delay = if error.is_volume_wait() {
            VOLUME_RETRY.retry_delay(self.retry_step)
        } else {
            backoff.retry_delay(self.retry_step)
        };
        // The first failure of a streak shows its own reason; pull failures
        // then show the back-off, as the kubelet reports them.
        let reason = if self.retry_step > 0 && error.is_pull_failure() {
            "ImagePullBackOff"
        } else {
            error.reason()
        };
        self.retry_step = self.retry_step.saturating_add(1);
        self.state = ContainerState::Waiting(Waiting {
            reason: reason.into(),
            message: Some(error.to_string()),
            retry_at: Some(now.mono + delay),
        });
        Some(delay)
    }

    /// The running container ended. False if it was not running.
    pub(super) fn exited(
        &mut self,
        now: Now,
        status: &ExitStatus,
        backoff: &BackoffConfig,
    ) -> bool {
        let ContainerState::Running { started_at } = self.state else {
            return false;
        };
        if self
            .running_since
            .is_some_and(|since| now.mono.duration_since(since) >= backoff.reset_after)
        {
            self.crash_step = 0;
        }
        self.running_since = None;
        let mut termination = Termination::from_exit(status, Some(started_at), now.wall);
        if let Some((kind, _)) = self.health.failed {
            termination.message.get_or_insert_with(|| {
                format!("Container {} failed {} probe", self.name, kind.name())
            });
        }
        self.state = ContainerState::Terminated(termination);
        true
    }

    /// Turns a terminated container into one waiting to run again after the
    /// crash back-off. Returns the delay; zero means it may start now.
    pub(super) fn schedule_restart(
        &mut self,
        now: Now,
        backoff: &BackoffConfig,
    ) -> Option<Duration> {
        let ContainerState::Terminated(termination) = &self.state else {
            return None;
        };
        let delay = backoff.crash_delay(self.crash_step);
        self.crash_step = self.crash_step.saturating_add(1);
        let message = (!delay.is_zero()).then(|| {
            format!(
                "back-off {} restarting failed container={}",
                human(delay),
                self.name
            )
        });
        self.last_termination = Some(termination.clone());
        self.state = ContainerState::Waiting(Waiting {
            reason: "CrashLoopBackOff".into(),
            message,
            retry_at: Some(now.mono + delay),
        });
        Some(delay)
    }
}

/// A delay as the kubelet prints it in back-off messages (`10s`, `2m40s`).
pub(super) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}
