//! Probe results in the pod lifecycle: startup gating, readiness and the
//! conditions, restarts after a failed liveness probe.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::agent::probes::{ProbeKind, ProbeUpdate};

fn probed(m: &mut Machine, update: ProbeUpdate) -> Vec<Effect> {
    let run = m.state().app[0].runs;
    m.step(PodEvent::Probed {
        key: APP,
        run,
        update,
    })
}

fn probed_pod(policy: &str, probes: serde_json::Value) -> Pod {
    let mut container = json!({"name": "app", "image": "x"});
    if let (Some(c), Some(p)) = (container.as_object_mut(), probes.as_object()) {
        c.extend(p.clone());
    }
    pod(json!({
        "restartPolicy": policy,
        "terminationGracePeriodSeconds": 5,
        "containers": [container],
    }))
}

fn ready(status: &PodStatus) -> (bool, Option<bool>, String) {
    let cs = &status.container_statuses.as_ref().expect("statuses")[0];
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
        .unwrap_or_default();
    (cs.ready, cs.started, condition)
}

#[test]
fn a_readiness_probe_keeps_a_running_container_unready_until_it_succeeds() {
    let p = probed_pod(
        "Always",
        json!({"readinessProbe": {"tcpSocket": {"port": 80}}}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    assert_eq!(ready(&m.status(&p)), (false, Some(true), "False".into()));
    let effects = probed(
        &mut m,
        ProbeUpdate::Unhealthy {
            kind: ProbeKind::Readiness,
            message: "dial tcp 10.42.0.2:80: connect: connection refused".into(),
        },
    );
    assert_eq!(
        effects,
        vec![Effect::Record(Record {
            warning: true,
            reason: "Unhealthy".into(),
            message: "Readiness probe failed: dial tcp 10.42.0.2:80: connect: connection refused"
                .into(),
        })]
    );
    probed(&mut m, ProbeUpdate::Ready(true));
    assert_eq!(ready(&m.status(&p)), (true, Some(true), "True".into()));
    probed(&mut m, ProbeUpdate::Ready(false));
    assert_eq!(ready(&m.status(&p)).2, "False");
}

#[test]
fn a_container_with_a_startup_probe_is_neither_started_nor_ready_until_it_passes() {
    let p = probed_pod(
        "Always",
        json!({"startupProbe": {"tcpSocket": {"port": 80}}}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    assert_eq!(ready(&m.status(&p)), (false, Some(false), "False".into()));
    probed(&mut m, ProbeUpdate::Started);
    assert_eq!(ready(&m.status(&p)), (true, Some(true), "True".into()));
}

#[test]
fn a_failed_liveness_probe_stops_and_restarts_the_container() {
    let p = probed_pod(
        "OnFailure",
        json!({"livenessProbe": {"tcpSocket": {"port": 80}}}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    let effects = probed(
        &mut m,
        ProbeUpdate::Failed {
            kind: ProbeKind::Liveness,
            grace: None,
        },
    );
    assert_eq!(
        effects,
        vec![
            Effect::Record(Record {
                warning: false,
                reason: "Killing".into(),
                message: "Container app failed liveness probe, will be restarted".into(),
            }),
            Effect::Terminate(APP),
        ]
    );
    assert_eq!(
        m.state().next_wakeup(),
        Some(m.t0 + Duration::from_secs(5)),
        "killed after the pod's grace period"
    );
    assert_eq!(m.advance(Duration::from_secs(5)), vec![Effect::Kill(APP)]);
    // A run that stops on its own after the request restarts too, even
    // with exit code 0 under OnFailure.
    let effects = m.exited(APP, 0);
    assert_eq!(starts(&effects), vec![APP], "restarted at once");
    let c = &m.state().app[0];
    let last = c.last_termination.as_ref().expect("last state");
    assert_eq!(
        last.message.as_deref(),
        Some("Container app failed liveness probe")
    );
    m.started(APP);
    assert_eq!(m.state().app[0].restart_count(), 1);
    assert_eq!(m.state().app[0].health.failed, None);
}

#[test]
fn a_probes_own_grace_period_overrides_the_pods() {
    let p = probed_pod(
        "Always",
        json!({"livenessProbe": {"tcpSocket": {"port": 80}}}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    let effects = probed(
        &mut m,
        ProbeUpdate::Failed {
            kind: ProbeKind::Startup,
            grace: Some(Duration::ZERO),
        },
    );
    assert!(effects.contains(&Effect::Kill(APP)), "{effects:?}");
}

#[test]
fn a_failed_liveness_probe_under_never_does_not_restart() {
    let p = probed_pod(
        "Never",
        json!({"livenessProbe": {"tcpSocket": {"port": 80}}}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    let effects = probed(
        &mut m,
        ProbeUpdate::Failed {
            kind: ProbeKind::Liveness,
            grace: None,
        },
    );
    assert!(effects.contains(&Effect::Record(Record {
        warning: false,
        reason: "Killing".into(),
        message: "Container app failed liveness probe".into(),
    })));
    m.step(PodEvent::Exited {
        key: APP,
        status: ExitStatus::Killed,
    });
    assert_eq!(m.state().phase(), Phase::Failed);
}

#[test]
fn news_about_an_earlier_run_is_ignored() {
    let p = probed_pod(
        "Always",
        json!({"readinessProbe": {"tcpSocket": {"port": 80}}}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    m.step(PodEvent::Probed {
        key: APP,
        run: 0,
        update: ProbeUpdate::Ready(true),
    });
    assert!(!m.state().app[0].health.ready);
}
