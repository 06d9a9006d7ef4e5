//! Adoption: rebuilding a pod's lifecycle from the status an earlier
//! incarnation of the node reported (and from the node's own record of the
//! starts it made), so a restarted node continues its pods without running
//! any container a second time. Runs that were in progress when the node
//! went away are reported lost; whether they run again is the restart
//! policy's decision, exactly as for a crash.

use std::collections::HashMap;
use std::time::Duration;

use wasmpod_api::k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};

use super::container::{Container, ContainerState, Termination, Waiting};
use super::pod::{Phase, PodState, Stage};
use super::{BackoffConfig, Now};

/// How many times each container (by name) was started, as the node
/// recorded before each start. It covers a start whose status report was
/// lost with the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpointed {
    pub runs: HashMap<String, u32>,
}

impl Checkpointed {
    fn runs(&self, name: &str) -> u32 {
        self.runs.get(name).copied().unwrap_or(0)
    }
}

impl PodState {
    /// The state of a pod this node may have run before, from its status.
    pub fn adopt(pod: &Pod, backoff: BackoffConfig, now: Now, checkpointed: &Checkpointed) -> Self {
        let mut state = Self::new(pod, backoff, now);
        let Some(status) = pod.status.as_ref() else {
            return state;
        };
        if let Some(start) = &status.start_time {
            state.start_time = start.0;
            let deadline = pod
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .map(|secs| Duration::from_secs(secs.max(0).unsigned_abs()));
            if let Some(deadline) = deadline {
                let at = start.0.checked_add(deadline).unwrap_or(start.0);
                state.active_deadline = Some(now.mono_at(at));
            }
        }
        let statuses = |list: &Option<Vec<ContainerStatus>>| -> HashMap<String, ContainerStatus> {
            list.iter()
                .flatten()
                .map(|cs| (cs.name.clone(), cs.clone()))
                .collect()
        };
        let init = statuses(&status.init_container_statuses);
        let app = statuses(&status.container_statuses);
        for c in &mut state.init {
            restore(
                c,
                init.get(&c.name),
                checkpointed.runs(&c.name),
                &backoff,
                now,
            );
        }
        for c in &mut state.app {
            restore(
                c,
                app.get(&c.name),
                checkpointed.runs(&c.name),
                &backoff,
                now,
            );
        }
        state.reason = status.reason.clone();
        state.message = status.message.clone();
        state.settled = match status.phase.as_deref() {
            Some("Succeeded") => Some(Phase::Succeeded),
            Some("Failed") => Some(Phase::Failed),
            _ => None,
        };
        state.stage = if state.settled.is_some() {
            Stage::Finished
        } else if state.initialized() {
            Stage::Running
        } else {
            Stage::Initializing
        };
        state
    }
}

/// Rebuilds one container from its reported status and recorded starts.
fn restore(
    c: &mut Container,
    status: Option<&ContainerStatus>,
    recorded_runs: u32,
    backoff: &BackoffConfig,
    now: Now,
) {
    let reported = status.map(|s| reported_state(s, backoff, now));
    let (mut state, mut last, mut runs, image_id, mut crash_step) = match reported {
        Some(r) => r,
        None => (c.state.clone(), None, 0, None, 0),
    };
    if recorded_runs > runs {
        // A start the status never showed: it ran, and its end is unknown.
        if let ContainerState::Terminated(t) = &state {
            last = Some(t.clone());
        }
        state = ContainerState::Terminated(Termination::lost(None, now.wall));
        runs = recorded_runs;
        crash_step = runs.saturating_sub(1);
    }
    let health = c.health;
    *c = Container::restored(c.name.clone(), state, last, runs, image_id, crash_step);
    c.health = health;
}

type Reported = (
    ContainerState,
    Option<Termination>,
    u32,
    Option<String>,
    u32,
);

/// A container status turned back into the machine's state: the state,
/// the last termination, the runs so far, the image ID and the back-off step.
fn reported_state(status: &ContainerStatus, backoff: &BackoffConfig, now: Now) -> Reported {
    let st = status.state.clone().unwrap_or_default();
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| termination(t, now));
    let ran = st.running.is_some() || st.terminated.is_some() || last.is_some();
    let restarts = u32::try_from(status.restart_count).unwrap_or(0);
    let runs = if ran { restarts + 1 } else { 0 };
    let image_id = Some(status.image_id.clone()).filter(|s| !s.is_empty());
    if let Some(running) = st.running {
        // The run was in this node's memory and ended with it.
        let lost = Termination::lost(running.started_at.map(|t| t.0), now.wall);
        return (
            ContainerState::Terminated(lost),
            last,
            runs,
            image_id,
            restarts,
        );
    }
    if let Some(t) = &st.terminated {
        let t = termination(t, now);
        return (
            ContainerState::Terminated(t),
            last,
            runs,
            image_id,
            restarts,
        );
    }
    let waiting = st.waiting.unwrap_or_default();
    let reason = waiting.reason.unwrap_or_else(|| "ContainerCreating".into());
    match &last {
        // Waiting out a crash back-off: it continues where it was.
        Some(previous) => {
            let step = restarts;
            let delay = backoff.crash_delay(step);
            let retry = previous
                .finished_at
                .checked_add(delay)
                .unwrap_or(previous.finished_at);
            let state = ContainerState::Waiting(Waiting {
                reason,
                message: waiting.message,
                retry_at: Some(now.mono_at(retry)),
            });
            (state, last, runs, image_id, step + 1)
        }
        None => {
            let state = ContainerState::Waiting(Waiting {
                reason,
                message: waiting.message,
                retry_at: None,
            });
            (state, None, 0, image_id, 0)
        }
    }
}

fn termination(t: &ContainerStateTerminated, now: Now) -> Termination {
    Termination {
        exit_code: t.exit_code,
        reason: t.reason.clone().unwrap_or_else(|| {
            if t.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            }
            .into()
        }),
        message: t.message.clone(),
        started_at: t.started_at.as_ref().map(|s| s.0),
        finished_at: t.finished_at.as_ref().map(|f| f.0).unwrap_or(now.wall),
    }
}
