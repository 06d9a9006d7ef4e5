//! Rendering a pod's lifecycle state as the `PodStatus` Kubernetes clients
//! read: phase, conditions, and per-container states. Pure, so the worker
//! can compare renderings and write only when something changed.

use wasmpod_api::k8s_openapi::api::core::v1::{
    ContainerState as K8sContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use wasmpod_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use super::container::{Container, ContainerState, Termination};
use super::pod::{Phase, PodState, Stage};

/// What the node reports about itself in each pod's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub host_ip: Option<String>,
}

/// The status of `pod` as `state` has it, following `previous` (the status
/// last reported): fields the node does not own (QoS class, nominated
/// node, other components' conditions) are kept from it, and a condition
/// keeps its transition time while its value does not change. `pod_ip` is
/// the IP the pod got on this node; without one (not attached yet, or a
/// finished pod adopted after a restart) the reported one is kept.
pub fn pod_status(
    state: &PodState,
    pod: &Pod,
    previous: &PodStatus,
    host: &HostFacts,
    pod_ip: Option<&str>,
    now: Timestamp,
) -> PodStatus {
    let previous = previous.clone();
    let phase = state.phase();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let images = |init: bool, name: &str| -> String {
        let spec = pod.spec.as_ref();
        let list = if init {
            spec.and_then(|s| s.init_containers.as_ref())
        } else {
            spec.map(|s| &s.containers)
        };
        list.into_iter()
            .flatten()
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    };
    let serving = state.stage == Stage::Running;
    let init_statuses: Vec<ContainerStatus> = state
        .init
        .iter()
        .map(|c| container_status(c, &images(true, &c.name), uid, c.completed()))
        .collect();
    let app_statuses: Vec<ContainerStatus> = state
        .app
        .iter()
        .map(|c| {
            let ready = serving && c.is_running() && c.health.started && c.health.ready;
            container_status(c, &images(false, &c.name), uid, ready)
        })
        .collect();
    let conditions = conditions(state, phase, &app_statuses, &previous, now);
    let (pod_ip, pod_ips) = match pod_ip {
        Some(ip) => (
            Some(ip.to_string()),
            Some(vec![PodIP { ip: ip.to_string() }]),
        ),
        None => (previous.pod_ip.clone(), previous.pod_ips.clone()),
    };
    PodStatus {
        phase: Some(phase.as_str().into()),
        conditions: Some(conditions),
        host_ip: host.host_ip.clone(),
        host_ips: host
            .host_ip
            .as_ref()
            .map(|ip| vec![HostIP { ip: ip.clone() }]),
        pod_ip,
        pod_ips,
        start_time: Some(Time(state.start_time)),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(app_statuses),
        reason: state.reason.clone(),
        message: state.message.clone(),
        ..previous
    }
}

/// The conditions the node owns, after any others the pod carries.
fn conditions(
    state: &PodState,
    phase: Phase,
    app: &[ContainerStatus],
    previous: &PodStatus,
    now: Timestamp,
) -> Vec<PodCondition> {
    let old = previous.conditions.clone().unwrap_or_default();
    let completed = matches!(phase, Phase::Succeeded | Phase::Failed);
    let incomplete: Vec<&str> = state
        .init
        .iter()
        .filter(|c| !c.completed())
        .map(|c| c.name.as_str())
        .collect();
    let unready: Vec<&str> = app
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let initialized = if incomplete.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };
    let ready = if unready.is_empty() {
        (true, None, None)
    } else if completed {
        (false, Some("PodCompleted"), None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let mut out: Vec<PodCondition> = old
        .iter()
        .filter(|c| !OWNED.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    let scheduled = old
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .cloned()
        .unwrap_or_else(|| condition("PodScheduled", (true, None, None), &old, now));
    out.push(scheduled);
    out.push(condition("Initialized", initialized, &old, now));
    out.push(condition("ContainersReady", ready.clone(), &old, now));
    out.push(condition("Ready", ready, &old, now));
    out
}

/// The condition types this module writes.
const OWNED: [&str; 4] = ["PodScheduled", "Initialized", "ContainersReady", "Ready"];

fn condition(
    kind: &str,
    (ok, reason, message): (bool, Option<&str>, Option<String>),
    old: &[PodCondition],
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(since),
        last_probe_time: None,
    }
}

fn container_status(c: &Container, image: &str, pod_uid: &str, ready: bool) -> ContainerStatus {
    let container_id = (c.runs > 0).then(|| container_id(pod_uid, &c.name, c.runs - 1));
    let state = match &c.state {
        ContainerState::Waiting(w) => K8sContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(w.reason.clone()),
                message: w.message.clone(),
            }),
            ..K8sContainerState::default()
        },
        ContainerState::Starting => K8sContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            }),
            ..K8sContainerState::default()
        },
        ContainerState::Running { started_at } => K8sContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..K8sContainerState::default()
        },
        ContainerState::Terminated(t) => terminated(t, container_id.clone()),
    };
    ContainerStatus {
        name: c.name.clone(),
        image: image.into(),
        image_id: c.image_id.clone().unwrap_or_default(),
        container_id: container_id.filter(|_| c.is_running() || c.termination().is_some()),
        ready,
        restart_count: i32::try_from(c.restart_count()).unwrap_or(i32::MAX),
        started: Some(c.is_running() && c.health.started),
        state: Some(state),
        last_state: Some(
            c.last_termination
                .as_ref()
                .map(|t| terminated(t, None))
                .unwrap_or_default(),
        ),
        ..ContainerStatus::default()
    }
}

/// The ID of one run of a container, unique on the node and stable across
/// node restarts: what `containerID` reports and logs are filed under.
pub fn container_id(pod_uid: &str, name: &str, attempt: u32) -> String {
    format!("wasmpod://{pod_uid}/{name}/{attempt}")
}

fn terminated(t: &Termination, container_id: Option<String>) -> K8sContainerState {
    K8sContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: t.started_at.map(Time),
            finished_at: Some(Time(t.finished_at)),
            container_id,
            signal: None,
        }),
        ..K8sContainerState::default()
    }
}
