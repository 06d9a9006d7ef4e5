//! The lifecycle rules, step by step, with time passed in by hand: the
//! harness here, the rules by theme in the submodules.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use wasmpod_api::k8s_openapi::api::core::v1::{Pod, PodStatus};
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::*;
use crate::agent::container_runtime::{ExitStatus, StartError};

const APP: ContainerKey = ContainerKey::App(0);

fn backoff() -> BackoffConfig {
    BackoffConfig {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(40),
        reset_after: Duration::from_secs(600),
    }
}

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": spec,
    }))
    .expect("a pod")
}

fn one(policy: &str) -> Pod {
    pod(
        json!({"restartPolicy": policy, "containers": [{"name": "app", "image": "file:///a.wasm"}]}),
    )
}

/// A pod's state with a hand-driven clock, keeping every effect seen.
struct Machine {
    state: Option<PodState>,
    t0: Instant,
    wall0: Timestamp,
    elapsed: Duration,
}

impl Machine {
    fn new(pod: &Pod) -> Self {
        let t0 = Instant::now();
        let wall0: Timestamp = "2025-01-01T00:00:00Z".parse().expect("a timestamp");
        let now = Now {
            mono: t0,
            wall: wall0,
        };
        Self {
            state: Some(PodState::new(pod, backoff(), now)),
            t0,
            wall0,
            elapsed: Duration::ZERO,
        }
    }

    fn adopted(pod: &Pod, checkpointed: &Checkpointed) -> Self {
        let mut m = Self::new(pod);
        m.state = Some(PodState::adopt(pod, backoff(), m.now(), checkpointed));
        m
    }

    fn now(&self) -> Now {
        Now {
            mono: self.t0 + self.elapsed,
            wall: self.wall0.checked_add(self.elapsed).expect("in range"),
        }
    }

    fn state(&self) -> &PodState {
        self.state.as_ref().expect("state")
    }

    fn step(&mut self, event: PodEvent) -> Vec<Effect> {
        let now = self.now();
        let state = self.state.take().expect("state");
        let (next, effects) = state.step(now, event);
        self.state = Some(next);
        effects
    }

    fn advance(&mut self, d: Duration) -> Vec<Effect> {
        self.elapsed += d;
        self.step(PodEvent::Tick)
    }

    fn started(&mut self, key: ContainerKey) -> Vec<Effect> {
        self.step(PodEvent::Started {
            key,
            image_id: "sha256:abc".into(),
        })
    }

    fn exited(&mut self, key: ContainerKey, code: i32) -> Vec<Effect> {
        self.step(PodEvent::Exited {
            key,
            status: ExitStatus::Exited { code },
        })
    }

    fn status(&self, pod: &Pod) -> PodStatus {
        let previous = pod.status.clone().unwrap_or_default();
        pod_status(
            self.state(),
            pod,
            &previous,
            &HostFacts::default(),
            None,
            self.now().wall,
        )
    }
}

fn starts(effects: &[Effect]) -> Vec<ContainerKey> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Start(k) => Some(*k),
            _ => None,
        })
        .collect()
}

fn waiting_reason(m: &Machine, key: ContainerKey) -> Option<String> {
    match &m.state().container(key).expect("container").state {
        ContainerState::Waiting(w) => Some(w.reason.clone()),
        _ => None,
    }
}

fn with_status(p: &Pod, status: serde_json::Value) -> Pod {
    let mut p = p.clone();
    p.status = Some(serde_json::from_value(status).expect("a status"));
    p
}

mod adoption;
mod probes;
mod running;
mod stopping;
