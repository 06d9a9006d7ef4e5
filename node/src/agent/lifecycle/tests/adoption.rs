//! Adoption of pods by a restarted node.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn adopting_a_running_never_pod_reports_the_run_lost_and_does_not_run_it_again() {
    let p = with_status(
        &one("Never"),
        json!({
            "phase": "Running",
            "startTime": "2025-01-01T00:00:00Z",
            "containerStatuses": [{
                "name": "app", "image": "file:///a.wasm", "imageID": "sha256:abc", "ready": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2025-01-01T00:00:01Z"}},
            }],
        }),
    );
    let mut m = Machine::adopted(&p, &Checkpointed::default());
    let effects = m.step(PodEvent::Tick);
    assert!(starts(&effects).is_empty());
    assert_eq!(m.state().phase(), Phase::Failed);
    let t = m.state().app[0].termination().expect("terminated");
    assert_eq!(t.reason, "ContainerStatusUnknown");
}

#[test]
fn adopting_a_running_always_pod_restarts_it_as_a_restart() {
    let p = with_status(
        &one("Always"),
        json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 2,
                "state": {"running": {}},
            }],
        }),
    );
    let mut m = Machine::adopted(&p, &Checkpointed::default());
    assert_eq!(
        starts(&m.step(PodEvent::Tick)),
        Vec::<ContainerKey>::new(),
        "backs off"
    );
    let wake = m.state().next_wakeup().expect("a restart is scheduled");
    assert_eq!(wake - m.now().mono, Duration::from_secs(20));
    m.advance(Duration::from_secs(20));
    m.started(APP);
    assert_eq!(m.state().app[0].restart_count(), 3);
}

#[test]
fn adoption_never_reruns_completed_init_containers_or_finished_pods() {
    let p = pod(json!({
        "restartPolicy": "Never",
        "initContainers": [{"name": "i", "image": "x"}],
        "containers": [{"name": "a", "image": "x"}],
    }));
    let init_done = with_status(
        &p,
        json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "i", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [{"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}],
        }),
    );
    let mut m = Machine::adopted(&init_done, &Checkpointed::default());
    assert_eq!(starts(&m.step(PodEvent::Tick)), vec![APP]);

    let finished = with_status(
        &p,
        json!({
            "phase": "Succeeded",
            "containerStatuses": [{"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        }),
    );
    let mut m = Machine::adopted(&finished, &Checkpointed::default());
    assert!(m.step(PodEvent::Tick).is_empty());
    assert_eq!(m.state().phase(), Phase::Succeeded);
}

#[test]
fn a_recorded_start_the_status_never_showed_counts_as_a_lost_run() {
    let p = with_status(
        &one("Never"),
        json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}],
        }),
    );
    let checkpointed = Checkpointed {
        runs: [("app".to_string(), 1)].into_iter().collect(),
    };
    let mut m = Machine::adopted(&p, &checkpointed);
    assert!(starts(&m.step(PodEvent::Tick)).is_empty());
    assert_eq!(m.state().phase(), Phase::Failed);

    let mut fresh = Machine::adopted(&p, &Checkpointed::default());
    assert_eq!(starts(&fresh.step(PodEvent::Tick)), vec![APP]);
}

#[test]
fn adoption_keeps_the_active_deadline_from_the_start_time() {
    let p = pod(json!({"activeDeadlineSeconds": 100, "containers": [{"name": "a", "image": "x"}]}));
    let p = with_status(
        &p,
        json!({"phase": "Pending", "startTime": "2024-12-31T23:59:00Z"}),
    );
    let m = Machine::adopted(&p, &Checkpointed::default());
    assert_eq!(
        m.state().next_wakeup(),
        Some(m.t0 + Duration::from_secs(40))
    );
}
