//! Running pods: init containers, restart policies, back-off, exit
//! reasons and conditions.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn a_container_that_exits_zero_under_never_makes_the_pod_succeed() {
    let p = one("Never");
    let mut m = Machine::new(&p);
    assert_eq!(m.state().phase(), Phase::Pending);
    assert_eq!(starts(&m.step(PodEvent::Tick)), vec![APP]);
    m.started(APP);
    assert_eq!(m.state().phase(), Phase::Running);
    assert!(starts(&m.exited(APP, 0)).is_empty());
    assert_eq!(m.state().stage, Stage::Finished);
    assert_eq!(m.state().phase(), Phase::Succeeded);
    let status = m.status(&p);
    let cs = &status.container_statuses.expect("statuses")[0];
    let term = cs
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert_eq!(m.state().next_wakeup(), None);
}

#[test]
fn a_failed_container_under_never_fails_the_pod() {
    let mut m = Machine::new(&one("Never"));
    m.step(PodEvent::Tick);
    m.started(APP);
    m.exited(APP, 3);
    assert_eq!(m.state().phase(), Phase::Failed);
    let t = m.state().app[0].termination().expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_str()), (3, "Error"));
}

#[test]
fn init_containers_run_one_at_a_time_before_the_app_containers_start_together() {
    let p = pod(json!({
        "initContainers": [{"name": "i1", "image": "x"}, {"name": "i2", "image": "x"}],
        "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}],
    }));
    let mut m = Machine::new(&p);
    assert_eq!(starts(&m.step(PodEvent::Tick)), vec![ContainerKey::Init(0)]);
    assert_eq!(waiting_reason(&m, APP).as_deref(), Some("PodInitializing"));
    assert!(starts(&m.started(ContainerKey::Init(0))).is_empty());
    assert_eq!(
        starts(&m.exited(ContainerKey::Init(0), 0)),
        vec![ContainerKey::Init(1)]
    );
    m.started(ContainerKey::Init(1));
    assert_eq!(m.state().phase(), Phase::Pending);
    assert!(!m.state().initialized());
    assert_eq!(
        starts(&m.exited(ContainerKey::Init(1), 0)),
        vec![ContainerKey::App(0), ContainerKey::App(1)]
    );
    assert!(m.state().initialized());
    assert_eq!(m.state().stage, Stage::Running);
}

#[test]
fn a_failed_init_container_fails_the_pod_under_never() {
    let p = pod(json!({
        "restartPolicy": "Never",
        "initContainers": [{"name": "i", "image": "x"}],
        "containers": [{"name": "a", "image": "x"}],
    }));
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(ContainerKey::Init(0));
    let effects = m.exited(ContainerKey::Init(0), 1);
    assert!(starts(&effects).is_empty(), "the app never starts");
    assert_eq!(m.state().stage, Stage::Finished);
    assert_eq!(m.state().phase(), Phase::Failed);
}

#[test]
fn a_failed_init_container_is_retried_with_back_off_under_on_failure() {
    let p = pod(json!({
        "restartPolicy": "OnFailure",
        "initContainers": [{"name": "i", "image": "x"}],
        "containers": [{"name": "a", "image": "x"}],
    }));
    let mut m = Machine::new(&p);
    let init = ContainerKey::Init(0);
    m.step(PodEvent::Tick);
    m.started(init);
    assert_eq!(
        starts(&m.exited(init, 1)),
        vec![init],
        "first retry is immediate"
    );
    m.started(init);
    assert!(starts(&m.exited(init, 1)).is_empty());
    assert_eq!(
        waiting_reason(&m, init).as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(m.state().phase(), Phase::Pending);
    assert!(starts(&m.advance(Duration::from_secs(9))).is_empty());
    assert_eq!(starts(&m.advance(Duration::from_secs(1))), vec![init]);
    assert_eq!(m.state().init[0].restart_count(), 1);
}

#[test]
fn crash_loop_back_off_doubles_up_to_the_cap() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    let mut delays = Vec::new();
    for _ in 0..6 {
        m.started(APP);
        let mut effects = m.exited(APP, 1);
        let mut waited = Duration::ZERO;
        while starts(&effects).is_empty() {
            assert_eq!(waiting_reason(&m, APP).as_deref(), Some("CrashLoopBackOff"));
            assert_eq!(
                m.state().phase(),
                Phase::Running,
                "a restarting pod stays Running"
            );
            let next = m.state().next_wakeup().expect("a wake-up");
            let d = next - m.now().mono;
            waited += d;
            effects = m.advance(d);
        }
        delays.push(waited.as_secs());
    }
    assert_eq!(delays, vec![0, 10, 20, 40, 40, 40]);
    m.started(APP);
    assert_eq!(m.state().app[0].restart_count(), 6);
    let status = m.status(&one("Always"));
    let cs = &status.container_statuses.expect("statuses")[0];
    assert_eq!(cs.restart_count, 6);
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("lastState");
    assert_eq!(last.exit_code, 1);
}

#[test]
fn the_back_off_resets_after_a_long_run() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    m.started(APP);
    m.exited(APP, 1);
    m.started(APP);
    m.exited(APP, 1);
    m.advance(Duration::from_secs(10));
    m.started(APP);
    m.elapsed += Duration::from_secs(601);
    assert_eq!(starts(&m.exited(APP, 1)), vec![APP], "restarted at once");
}

#[test]
fn on_failure_keeps_completed_containers_and_restarts_failed_ones() {
    let p = pod(json!({
        "restartPolicy": "OnFailure",
        "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}],
    }));
    let (a, b) = (ContainerKey::App(0), ContainerKey::App(1));
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(a);
    m.started(b);
    assert!(starts(&m.exited(a, 0)).is_empty());
    assert_eq!(starts(&m.exited(b, 2)), vec![b]);
    assert_eq!(m.state().phase(), Phase::Running);
    m.started(b);
    m.exited(b, 0);
    assert_eq!(m.state().phase(), Phase::Succeeded);
    assert_eq!(m.state().stage, Stage::Finished);
}

#[test]
fn always_restarts_containers_that_exit_zero() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    m.started(APP);
    assert_eq!(starts(&m.exited(APP, 0)), vec![APP]);
}

#[test]
fn exit_reasons_say_how_the_container_ended() {
    for (status, code, reason) in [
        (ExitStatus::OomKilled, 137, "OOMKilled"),
        (ExitStatus::Killed, 137, "Error"),
        (
            ExitStatus::Trapped {
                message: "wasm trap: integer divide by zero\nbacktrace".into(),
            },
            134,
            "wasm trap: integer divide by zero",
        ),
    ] {
        let mut m = Machine::new(&one("Never"));
        m.step(PodEvent::Tick);
        m.started(APP);
        m.step(PodEvent::Exited { key: APP, status });
        let t = m.state().app[0].termination().expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_str()), (code, reason));
    }
}

#[test]
fn pull_failures_wait_with_err_image_pull_then_image_pull_back_off() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    let fail = PodEvent::StartFailed {
        key: APP,
        error: StartError::ImagePull("no such file".into()),
    };
    let effects = m.step(fail.clone());
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Record(r) if r.warning && r.reason == "Failed"))
    );
    assert_eq!(waiting_reason(&m, APP).as_deref(), Some("ErrImagePull"));
    assert!(starts(&m.advance(Duration::from_secs(9))).is_empty());
    assert_eq!(starts(&m.advance(Duration::from_secs(1))), vec![APP]);
    m.step(fail);
    assert_eq!(waiting_reason(&m, APP).as_deref(), Some("ImagePullBackOff"));
    assert!(starts(&m.advance(Duration::from_secs(19))).is_empty());
    assert_eq!(starts(&m.advance(Duration::from_secs(1))), vec![APP]);
    assert_eq!(m.state().phase(), Phase::Pending);
}

#[test]
fn conditions_follow_the_containers_and_keep_their_transition_times() {
    let p = pod(json!({
        "initContainers": [{"name": "i", "image": "x"}],
        "containers": [{"name": "a", "image": "x"}],
    }));
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    let cond = |s: &PodStatus, kind: &str| {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == kind)
            .cloned()
            .expect("condition")
    };
    let first = m.status(&p);
    assert_eq!(cond(&first, "PodScheduled").status, "True");
    assert_eq!(cond(&first, "Initialized").status, "False");
    assert_eq!(
        cond(&first, "Initialized").reason.as_deref(),
        Some("ContainersNotInitialized")
    );
    assert_eq!(cond(&first, "Ready").status, "False");
    m.started(ContainerKey::Init(0));
    m.exited(ContainerKey::Init(0), 0);
    m.started(APP);
    m.elapsed += Duration::from_secs(5);
    let mut p2 = p.clone();
    p2.status = Some(first.clone());
    let second = m.status(&p2);
    assert_eq!(cond(&second, "Ready").status, "True");
    assert_eq!(cond(&second, "ContainersReady").status, "True");
    assert_eq!(
        cond(&second, "PodScheduled").last_transition_time,
        cond(&first, "PodScheduled").last_transition_time,
        "an unchanged condition keeps its time"
    );
    assert_ne!(
        cond(&second, "Ready").last_transition_time,
        cond(&first, "Ready").last_transition_time
    );
    p2.status = Some(second.clone());
    assert_eq!(m.status(&p2), second, "rendering is stable");
}

#[test]
fn crash_delays_follow_the_kubelet_sequence() {
    let b = BackoffConfig::default();
    let secs: Vec<u64> = (0..8).map(|n| b.crash_delay(n).as_secs()).collect();
    assert_eq!(secs, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(b.crash_delay(u32::MAX), b.cap);
}
