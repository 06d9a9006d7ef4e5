//! The pod lifecycle: init containers in order, then the app containers
//! together under the restart policy, the active deadline, and graceful
//! deletion. [`PodState::step`] is the only way state changes.

use std::time::Duration;

use tokio::time::Instant;
use wasmpod_api::k8s_openapi::api::core::v1::Pod;
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::container::{Container, ContainerState, Health, human};
use super::{BackoffConfig, ContainerKey, Effect, Now, PodEvent, Record, RestartPolicy};
use crate::agent::probes::ProbeUpdate;

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";

/// A pod on this node and everything its lifecycle depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodState {
    pub restart_policy: RestartPolicy,
    pub init: Vec<Container>,
    pub app: Vec<Container>,
    pub stage: Stage,
    /// `status.startTime`: when the node accepted the pod.
    pub start_time: Timestamp,
    /// `status.reason` and `status.message` of a pod the node failed.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// A terminal phase reported before the node restarted; it never changes.
    pub(super) settled: Option<Phase>,
    pub(super) active_deadline: Option<Instant>,
    pub(super) grace: Duration,
    pub(super) backoff: BackoffConfig,
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Running the init containers, one at a time, in order.
    Initializing,
    /// The app containers run (or wait to restart).
    Running,
    /// Stopping every container; after `kill_at` they are killed.
    Terminating { kill_at: Instant, then: AfterStop },
    /// Nothing runs and nothing will.
    Finished,
    /// The pod object is being removed; the worker's job is done.
    Deleted,
}

/// What follows once a terminating pod's containers have all stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStop {
    /// Delete the pod object (a deletion was requested).
    Delete,
    /// Keep the pod as `Failed` (its active deadline passed).
    Fail,
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

impl PodState {
    /// A pod the node has just accepted: nothing has run yet.
    pub fn new(pod: &Pod, backoff: BackoffConfig, now: Now) -> Self {
        let spec = pod.spec.as_ref();
        let init: Vec<Container> = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .map(|c| Container::new(&c.name, "PodInitializing"))
            .collect();
        let app_reason = if init.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let app = spec
            .into_iter()
            .flat_map(|s| &s.containers)
            .map(|c| {
                let mut container = Container::new(&c.name, app_reason);
                container.health =
                    Health::new(c.startup_probe.is_some(), c.readiness_probe.is_some());
                container
            })
            .collect();
        let active_deadline = spec
            .and_then(|s| s.active_deadline_seconds)
            .map(|secs| now.mono + Duration::from_secs(secs.max(0).unsigned_abs()));
        Self {
            restart_policy: RestartPolicy::from_spec(
                spec.and_then(|s| s.restart_policy.as_deref()),
            ),
            init,
            app,
            stage: Stage::Initializing,
            start_time: now.wall,
            reason: None,
            message: None,
            settled: None,
            active_deadline,
            grace: spec
                .and_then(|s| s.termination_grace_period_seconds)
                .map(|s| Duration::from_secs(s.max(0).unsigned_abs()))
                .unwrap_or(DEFAULT_GRACE),
            backoff,
        }
    }

    /// Applies one event and brings the pod to where its rules say it must
    /// be at `now`, returning the effects to carry out.
    pub fn step(mut self, now: Now, event: PodEvent) -> (Self, Vec<Effect>) {
        let mut effects = Vec::new();
        self.apply(now, event, &mut effects);
        self.check_deadline(now, &mut effects);
        if self.stage == Stage::Initializing {
            self.run_init(now, &mut effects);
        }
        if self.stage == Stage::Running {
            self.run_app(now, &mut effects);
        }
        if let Stage::Terminating { .. } = self.stage {
            self.terminate(now, &mut effects);
        }
        (self, effects)
    }

    /// When the pod next needs a [`PodEvent::Tick`], if ever.
    pub fn next_wakeup(&self) -> Option<Instant> {
        match self.stage {
            Stage::Initializing | Stage::Running => {
                let retry = self.containers().filter_map(|(_, c)| c.retry_at()).min();
                let probe_kill = self
                    .app
                    .iter()
                    .filter(|c| c.is_running() && !c.kill_sent)
                    .filter_map(|c| c.health.failed.map(|(_, at)| at))
                    .min();
                [retry, self.active_deadline, probe_kill]
                    .into_iter()
                    .flatten()
                    .min()
            }
            Stage::Terminating { kill_at, .. } => self
                .containers()
                .any(|(_, c)| c.is_running() && !c.kill_sent)
                .then_some(kill_at),
            Stage::Finished | Stage::Deleted => None,
        }
    }

    pub fn container(&self, key: ContainerKey) -> Option<&Container> {
        match key {
            ContainerKey::Init(i) => self.init.get(i),
            ContainerKey::App(i) => self.app.get(i),
        }
    }

    fn container_mut(&mut self, key: ContainerKey) -> Option<&mut Container> {
        match key {
            ContainerKey::Init(i) => self.init.get_mut(i),
            ContainerKey::App(i) => self.app.get_mut(i),
        }
    }

    /// Every container with its key, init containers first.
    pub fn containers(&self) -> impl Iterator<Item = (ContainerKey, &Container)> {
        let init = self
            .init
            .iter()
            .enumerate()
            .map(|(i, c)| (ContainerKey::Init(i), c));
        let app = self
            .app
            .iter()
            .enumerate()
            .map(|(i, c)| (ContainerKey::App(i), c));
        init.chain(app)
    }

    /// True once every init container completed.
    pub fn initialized(&self) -> bool {
        self.init.iter().all(Container::completed)
    }

    /// Whether a container may (re)start in the pod's current stage.
    fn may_run(&self) -> bool {
        matches!(self.stage, Stage::Initializing | Stage::Running)
    }

    fn apply(&mut self, now: Now, event: PodEvent, effects: &mut Vec<Effect>) {
        match event {
            PodEvent::Tick => {}
            PodEvent::Started { key, image_id } => {
                let may_run = self.may_run();
                let Some(c) = self.container_mut(key) else {
                    return;
                };
                if !c.started(now, image_id) {
                    return;
                }
                effects.push(Record::normal(
                    "Started",
                    format!("Started container {}", c.name),
                ));
                if !may_run {
                    // Started while the pod was being stopped: stop it again.
                    c.kill_sent = true;
                    effects.push(Effect::Kill(key));
                }
            }
            PodEvent::StartFailed { key, error } => {
                let backoff = self.backoff;
                if let Some(c) = self.container_mut(key)
                    && c.start_failed(now, &error, &backoff).is_some()
                {
                    let reason = if error.is_volume_wait() {
                        "FailedMount"
                    } else {
                        "Failed"
                    };
                    effects.push(Record::warning(reason, format!("Error: {error}")));
                }
            }
            PodEvent::Exited { key, status } => {
                let backoff = self.backoff;
                if let Some(c) = self.container_mut(key) {
                    c.exited(now, &status, &backoff);
                }
            }
            PodEvent::DeletionRequested { grace } => self.request_deletion(now, grace, effects),
            PodEvent::Probed { key, run, update } => self.probed(now, key, run, update, effects),
        }
    }

    /// Applies what a probe of run `run` of a container found; news about
    /// an earlier run or a container no longer running is dropped.
    fn probed(
        &mut self,
        now: Now,
        key: ContainerKey,
        run: u32,
        update: ProbeUpdate,
        effects: &mut Vec<Effect>,
    ) {
        let serving = self.stage == Stage::Running;
        let (grace, policy) = (self.grace, self.restart_policy);
        let Some(c) = self.container_mut(key) else {
            return;
        };
        if c.runs != run || !c.is_running() {
            return;
        }
        match update {
            ProbeUpdate::Unhealthy { kind, message } => effects.push(Record::warning(
                "Unhealthy",
                format!("{} probe failed: {message}", kind.title()),
            )),
            ProbeUpdate::Started => c.health.started = true,
            ProbeUpdate::Ready(ready) => c.health.ready = ready,
            ProbeUpdate::Failed { kind, grace: own } => {
                if !serving || c.health.failed.is_some() {
                    return;
                }
                c.health.failed = Some((kind, now.mono + own.unwrap_or(grace)));
                c.health.ready = false;
                let restarts = if policy == RestartPolicy::Never {
                    ""
                } else {
                    ", will be restarted"
                };
                effects.push(Record::normal(
                    "Killing",
                    format!(
                        "Container {} failed {} probe{restarts}",
                        c.name,
                        kind.name()
                    ),
                ));
                effects.push(Effect::Terminate(key));
            }
        }
    }

    fn request_deletion(&mut self, now: Now, grace: Duration, effects: &mut Vec<Effect>) {
        let kill_at = now.mono + grace;
        match self.stage {
            Stage::Deleted => {}
            Stage::Terminating {
                kill_at: earlier, ..
            } => {
                // A second delete may shorten the grace period, never extend it.
                self.stage = Stage::Terminating {
                    kill_at: earlier.min(kill_at),
                    then: AfterStop::Delete,
                };
            }
            Stage::Finished => {
                self.stage = Stage::Terminating {
                    kill_at,
                    then: AfterStop::Delete,
                };
            }
            Stage::Initializing | Stage::Running => {
                self.stage = Stage::Terminating {
                    kill_at,
                    then: AfterStop::Delete,
                };
                self.ask_to_stop(effects);
            }
        }
    }

    /// Asks every running container to stop on its own.
    fn ask_to_stop(&mut self, effects: &mut Vec<Effect>) {
        for (key, c) in self.containers() {
            if c.is_running() {
                effects.push(Record::normal(
                    "Killing",
                    format!("Stopping container {}", c.name),
                ));
                effects.push(Effect::Terminate(key));
            }
        }
    }

    fn check_deadline(&mut self, now: Now, effects: &mut Vec<Effect>) {
        let Some(deadline) = self.active_deadline else {
            return;
        };
        if !self.may_run() || now.mono < deadline {
            return;
        }
        let message = "Pod was active on the node longer than the specified deadline";
        self.reason = Some(DEADLINE_EXCEEDED.into());
        self.message = Some(message.into());
        effects.push(Record::warning(DEADLINE_EXCEEDED, message.into()));
        self.stage = Stage::Terminating {
            kill_at: now.mono + self.grace,
            then: AfterStop::Fail,
        };
        self.ask_to_stop(effects);
    }

    /// Runs the first init container that has not completed; moves on to
    /// the app containers once all have.
    fn run_init(&mut self, now: Now, effects: &mut Vec<Effect>) {
        let policy = self.restart_policy;
        let backoff = self.backoff;
        let Some(i) = self.init.iter().position(|c| !c.completed()) else {
            for c in &mut self.app {
                if let ContainerState::Waiting(w) = &mut c.state
                    && c.runs == 0
                {
                    w.reason = "ContainerCreating".into();
                }
            }
            self.stage = Stage::Running;
            return;
        };
        let c = &mut self.init[i];
        if c.termination().is_some() {
            if !policy.retries_init() {
                // A failed init container fails the pod under `Never`.
                self.stage = Stage::Finished;
                return;
            }
            restart(c, now, &backoff, effects);
        }
        if c.begin_start(now) {
            effects.push(Effect::Start(ContainerKey::Init(i)));
        }
    }

    /// Starts app containers that wait and whose time has come, restarts
    /// ended ones the policy restarts, and finishes the pod when none runs
    /// or will run again.
    fn run_app(&mut self, now: Now, effects: &mut Vec<Effect>) {
        let policy = self.restart_policy;
        let backoff = self.backoff;
        for (i, c) in self.app.iter_mut().enumerate() {
            if c.is_running()
                && !c.kill_sent
                && c.health.failed.is_some_and(|(_, at)| at <= now.mono)
            {
                // A run a probe failed did not stop within its grace period.
                c.kill_sent = true;
                effects.push(Effect::Kill(ContainerKey::App(i)));
            }
            // A run stopped for a failed probe restarts whatever its exit
            // code, unless the policy is `Never`, as in the kubelet.
            let probe_failed = c.health.failed.is_some() && policy != RestartPolicy::Never;
            if let Some(t) = c.termination()
                && (policy.restarts(t.succeeded()) || probe_failed)
            {
                restart(c, now, &backoff, effects);
            }
            if c.begin_start(now) {
                effects.push(Effect::Start(ContainerKey::App(i)));
            }
        }
        if self.app.iter().all(|c| c.termination().is_some()) {
            self.stage = Stage::Finished;
        }
    }

    /// Kills what still runs after the grace period; once nothing runs,
    /// deletes the pod or leaves it failed.
    fn terminate(&mut self, now: Now, effects: &mut Vec<Effect>) {
        let Stage::Terminating { kill_at, then } = self.stage else {
            return;
        };
        if now.mono >= kill_at {
            let keys: Vec<ContainerKey> = self
                .containers()
                .filter(|(_, c)| c.is_running() && !c.kill_sent)
                .map(|(k, _)| k)
                .collect();
            for key in keys {
                if let Some(c) = self.container_mut(key) {
                    c.kill_sent = true;
                }
                effects.push(Effect::Kill(key));
            }
        }
        if self.containers().any(|(_, c)| c.is_active()) {
            return;
        }
        match then {
            AfterStop::Delete => {
                self.stage = Stage::Deleted;
                effects.push(Effect::DeletePod);
            }
            AfterStop::Fail => self.stage = Stage::Finished,
        }
    }

    /// `status.phase`, by the kubelet's rules: a container waiting to
    /// restart counts as stopped, not waiting.
    pub fn phase(&self) -> Phase {
        if let Some(phase) = self.settled {
            return phase;
        }
        if self.reason.as_deref() == Some(DEADLINE_EXCEEDED) {
            return Phase::Failed;
        }
        if !self.initialized() {
            let init_failed = self
                .init
                .iter()
                .any(|c| c.termination().is_some_and(|t| !t.succeeded()));
            return if init_failed && !self.restart_policy.retries_init() {
                Phase::Failed
            } else {
                Phase::Pending
            };
        }
        let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
        for c in &self.app {
            let ended = c.termination().or(match c.state {
                ContainerState::Waiting(_) | ContainerState::Starting => {
                    c.last_termination.as_ref()
                }
                _ => None,
            });
            match (&c.state, ended) {
                (ContainerState::Running { .. }, _) => running += 1,
                (_, Some(t)) => {
                    stopped += 1;
                    if t.succeeded() {
                        succeeded += 1;
                    }
                }
                (_, None) => waiting += 1,
            }
        }
        let stopping = matches!(self.stage, Stage::Terminating { .. } | Stage::Deleted);
        if running > 0 {
            return Phase::Running;
        }
        if waiting > 0 {
            // Containers that never ran and never will: the pod failed.
            return if self.stage == Stage::Deleted {
                Phase::Failed
            } else {
                Phase::Pending
            };
        }
        if stopping || self.stage == Stage::Finished {
            return if stopped == succeeded {
                Phase::Succeeded
            } else {
                Phase::Failed
            };
        }
        match self.restart_policy {
            RestartPolicy::Always => Phase::Running,
            RestartPolicy::OnFailure if stopped != succeeded => Phase::Running,
            _ if stopped == succeeded => Phase::Succeeded,
            _ => Phase::Failed,
        }
    }
}

/// Schedules a restart of an ended container, recording the back-off.
fn restart(c: &mut Container, now: Now, backoff: &BackoffConfig, effects: &mut Vec<Effect>) {
    if let Some(delay) = c.schedule_restart(now, backoff)
        && !delay.is_zero()
    {
        effects.push(Record::warning(
            "BackOff",
            format!(
                "Back-off {} restarting failed container {}",
                human(delay),
                c.name
            ),
        ));
    }
}
