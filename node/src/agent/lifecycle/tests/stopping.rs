//! Stopping pods: graceful deletion and the active deadline.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn deletion_stops_containers_and_kills_them_after_the_grace_period() {
    let p = pod(
        json!({"terminationGracePeriodSeconds": 5, "containers": [{"name": "a", "image": "x"}]}),
    );
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    let effects = m.step(PodEvent::DeletionRequested {
        grace: Duration::from_secs(5),
    });
    assert!(effects.contains(&Effect::Terminate(APP)));
    assert!(!effects.contains(&Effect::Kill(APP)));
    assert!(
        !m.advance(Duration::from_secs(4))
            .contains(&Effect::Kill(APP))
    );
    assert_eq!(m.advance(Duration::from_secs(1)), vec![Effect::Kill(APP)]);
    assert!(
        m.advance(Duration::from_secs(1)).is_empty(),
        "one kill only"
    );
    let effects = m.step(PodEvent::Exited {
        key: APP,
        status: ExitStatus::Killed,
    });
    assert_eq!(effects, vec![Effect::DeletePod]);
    assert_eq!(m.state().stage, Stage::Deleted);
    assert_eq!(m.state().phase(), Phase::Failed);
}

#[test]
fn a_container_that_stops_within_the_grace_period_is_not_killed() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    m.started(APP);
    m.step(PodEvent::DeletionRequested {
        grace: Duration::from_secs(30),
    });
    let effects = m.exited(APP, 0);
    assert_eq!(effects, vec![Effect::DeletePod], "no restart, no kill");
}

#[test]
fn a_second_deletion_can_only_shorten_the_grace_period() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    m.started(APP);
    m.step(PodEvent::DeletionRequested {
        grace: Duration::from_secs(30),
    });
    m.step(PodEvent::DeletionRequested {
        grace: Duration::from_secs(60),
    });
    assert_eq!(
        m.state().next_wakeup(),
        Some(m.now().mono + Duration::from_secs(30))
    );
    let effects = m.step(PodEvent::DeletionRequested {
        grace: Duration::ZERO,
    });
    assert!(effects.contains(&Effect::Kill(APP)));
}

#[test]
fn a_container_starting_during_deletion_is_killed_once_it_runs() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    let effects = m.step(PodEvent::DeletionRequested {
        grace: Duration::from_secs(30),
    });
    assert!(
        !effects.contains(&Effect::DeletePod),
        "a start is in flight"
    );
    assert!(m.started(APP).contains(&Effect::Kill(APP)));
    assert_eq!(
        m.step(PodEvent::Exited {
            key: APP,
            status: ExitStatus::Killed
        }),
        vec![Effect::DeletePod]
    );
}

#[test]
fn deleting_a_pod_that_never_started_deletes_it_at_once() {
    let mut m = Machine::new(&one("Always"));
    m.step(PodEvent::Tick);
    m.step(PodEvent::StartFailed {
        key: APP,
        error: StartError::ImagePull("gone".into()),
    });
    let effects = m.step(PodEvent::DeletionRequested {
        grace: Duration::from_secs(30),
    });
    assert_eq!(effects, vec![Effect::DeletePod]);
}

#[test]
fn the_active_deadline_fails_the_pod_and_stops_its_containers() {
    let p = pod(json!({
        "activeDeadlineSeconds": 60,
        "terminationGracePeriodSeconds": 2,
        "containers": [{"name": "a", "image": "x"}],
    }));
    let mut m = Machine::new(&p);
    m.step(PodEvent::Tick);
    m.started(APP);
    assert_eq!(
        m.state().next_wakeup(),
        Some(m.t0 + Duration::from_secs(60))
    );
    let effects = m.advance(Duration::from_secs(60));
    assert!(effects.contains(&Effect::Terminate(APP)));
    assert_eq!(m.state().phase(), Phase::Failed);
    assert_eq!(m.state().reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(m.advance(Duration::from_secs(2)), vec![Effect::Kill(APP)]);
    let effects = m.step(PodEvent::Exited {
        key: APP,
        status: ExitStatus::Killed,
    });
    assert!(effects.is_empty(), "the pod stays, Failed");
    assert_eq!(m.state().stage, Stage::Finished);
    let status = m.status(&p);
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(status.phase.as_deref(), Some("Failed"));
}
