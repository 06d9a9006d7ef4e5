//! The node lifecycle controller's decisions, without a server.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Node, NodeCondition, NodeSpec, NodeStatus, Pod, PodSpec, PodStatus, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::plan::{MESSAGE_NEVER_UPDATED, NO_EXECUTE, NO_SCHEDULE, REASON_NEVER_UPDATED};
use super::*;

const GRACE: Duration = Duration::from_secs(8);

fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("valid time")
}

fn at(seconds: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(seconds))
        .expect("valid time")
}

fn condition(kind: &str, status: &str) -> NodeCondition {
    NodeCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some("KubeletReady".into()),
        last_heartbeat_time: Some(Time(t0())),
        last_transition_time: Some(Time(t0())),
        ..NodeCondition::default()
    }
}

fn node(conditions: Vec<NodeCondition>, taints: Vec<Taint>) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some("edge-1".into()),
            creation_timestamp: Some(Time(t0())),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then_some(taints),
            ..NodeSpec::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(conditions),
            ..NodeStatus::default()
        }),
    }
}

fn taint(key: &str, effect: &str, added: Timestamp) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        time_added: Some(Time(added)),
        value: None,
    }
}

fn unreachable_since(added: Timestamp) -> Vec<Taint> {
    vec![
        taint(TAINT_UNREACHABLE, NO_SCHEDULE, added),
        taint(TAINT_UNREACHABLE, NO_EXECUTE, added),
    ]
}

fn unknown_ready(since: Timestamp) -> NodeCondition {
    NodeCondition {
        status: "Unknown".into(),
        reason: Some(REASON_STATUS_UNKNOWN.into()),
        last_transition_time: Some(Time(since)),
        ..condition("Ready", "Unknown")
    }
}

fn tolerating(key: &str, seconds: Option<i64>) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(NO_EXECUTE.into()),
        toleration_seconds: seconds,
        value: None,
    }
}

fn pod(name: &str, tolerations: Vec<Toleration>) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("edge-1".into()),
            tolerations: Some(tolerations),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
    })
}

fn terminating(name: &str, deleted_at: Timestamp, grace: i64) -> Arc<Pod> {
    let mut p = (*pod(name, Vec::new())).clone();
    p.metadata.deletion_timestamp = Some(Time(deleted_at));
    p.metadata.deletion_grace_period_seconds = Some(grace);
    Arc::new(p)
}

fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
    pods.iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect()
}

#[test]
fn a_node_heard_from_within_the_grace_period_is_left_alone_until_it_ends() {
    let n = node(vec![condition("Ready", "True")], Vec::new());
    let decision = plan(&n, t0(), &[pod("web", Vec::new())], at(3), GRACE);
    assert!(decision.conditions.is_none());
    assert!(decision.taints.is_none());
    assert!(decision.evict.is_empty());
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(5)));
}

#[test]
fn a_silent_node_gets_every_condition_unknown_and_the_unreachable_taints() {
    let n = node(
        vec![
            condition("Ready", "True"),
            condition("MemoryPressure", "False"),
        ],
        vec![taint("dedicated", NO_SCHEDULE, t0())],
    );
    let decision = plan(&n, t0(), &[], at(8), GRACE);
    let conditions = decision.conditions.expect("conditions written");
    for kind in ["Ready", "MemoryPressure"] {
        let c = conditions
            .iter()
            .find(|c| c.type_ == kind)
            .expect("condition kept");
        assert_eq!(c.status, "Unknown");
        assert_eq!(c.reason.as_deref(), Some(REASON_STATUS_UNKNOWN));
        assert_eq!(c.message.as_deref(), Some(MESSAGE_STATUS_UNKNOWN));
        assert_eq!(c.last_transition_time, Some(Time(at(8))));
        assert_eq!(c.last_heartbeat_time, Some(Time(t0())), "heartbeat kept");
    }
    let never = conditions
        .iter()
        .find(|c| c.type_ == "DiskPressure")
        .expect("missing node conditions are added");
    assert_eq!(never.reason.as_deref(), Some(REASON_NEVER_UPDATED));
    assert_eq!(never.message.as_deref(), Some(MESSAGE_NEVER_UPDATED));
    let mut expected = vec![taint("dedicated", NO_SCHEDULE, t0())];
    expected.extend(unreachable_since(at(8)));
    assert_eq!(decision.taints, Some(expected));
}

#[test]
fn a_node_already_unknown_is_not_written_again_and_keeps_its_taint_times() {
    let n = node(vec![unknown_ready(at(8))], unreachable_since(at(8)));
    let decision = plan(&n, t0(), &[], at(20), GRACE);
    assert!(decision.conditions.is_none());
    assert!(decision.taints.is_none());
}

#[test]
fn a_node_that_never_reported_is_unknown_after_the_grace_period() {
    let mut n = node(Vec::new(), Vec::new());
    n.status = None;
    let decision = plan(&n, t0(), &[], at(1), GRACE);
    assert!(
        decision.conditions.is_none(),
        "still within the grace period"
    );
    let decision = plan(&n, t0(), &[], at(9), GRACE);
    let conditions = decision.conditions.expect("conditions written");
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready added");
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some(REASON_NEVER_UPDATED));
    assert_eq!(
        ready.last_heartbeat_time,
        Some(Time(t0())),
        "the creation time"
    );
    assert_eq!(decision.taints, Some(unreachable_since(at(9))));
}

#[test]
fn a_not_ready_node_is_tainted_not_ready_and_a_ready_one_is_untainted() {
    let mut not_ready_taints = vec![taint("dedicated", NO_SCHEDULE, t0())];
    not_ready_taints.extend(unreachable_since(t0()));
    let n = node(vec![condition("Ready", "False")], not_ready_taints);
    let decision = plan(&n, at(1), &[], at(2), GRACE);
    assert_eq!(
        decision.taints,
        Some(vec![
            taint("dedicated", NO_SCHEDULE, t0()),
            taint(TAINT_NOT_READY, NO_SCHEDULE, at(2)),
            taint(TAINT_NOT_READY, NO_EXECUTE, at(2)),
        ])
    );

    let n = node(vec![condition("Ready", "True")], unreachable_since(t0()));
    let decision = plan(&n, at(1), &[], at(2), GRACE);
    assert_eq!(decision.taints, Some(Vec::new()));
}

#[test]
fn pods_not_tolerating_a_no_execute_taint_are_evicted_at_once() {
    let n = node(vec![unknown_ready(t0())], unreachable_since(t0()));
    let pods = [
        pod("bare", Vec::new()),
        pod("other-key", vec![tolerating("dedicated", None)]),
    ];
    let decision = plan(&n, t0(), &pods, at(9), GRACE);
    assert_eq!(names(&decision.evict), ["bare", "other-key"]);
}

#[test]
fn tolerating_pods_are_evicted_toleration_seconds_after_the_taint_was_added() {
    let n = node(vec![unknown_ready(at(8))], unreachable_since(at(8)));
    let pods = [
        pod("five", vec![tolerating(TAINT_UNREACHABLE, Some(5))]),
        pod("ten", vec![tolerating(TAINT_UNREACHABLE, Some(10))]),
        pod("forever", vec![tolerating(TAINT_UNREACHABLE, None)]),
    ];
    let decision = plan(&n, t0(), &pods, at(10), GRACE);
    assert!(decision.evict.is_empty());
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(3)));

    let decision = plan(&n, t0(), &pods, at(13), GRACE);
    assert_eq!(names(&decision.evict), ["five"]);
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(5)));

    let decision = plan(&n, t0(), &pods, at(3600), GRACE);
    assert_eq!(names(&decision.evict), ["five", "ten"], "forever stays");
}

#[test]
fn the_shortest_toleration_a_pod_uses_decides() {
    let n = node(vec![unknown_ready(t0())], unreachable_since(t0()));
    let wildcard = Toleration {
        operator: Some("Exists".into()),
        ..Toleration::default()
    };
    let pods = [pod(
        "both",
        vec![wildcard, tolerating(TAINT_UNREACHABLE, Some(30))],
    )];
    let decision = plan(&n, t0(), &pods, at(29), GRACE);
    assert!(decision.evict.is_empty());
    let decision = plan(&n, t0(), &pods, at(30), GRACE);
    assert_eq!(names(&decision.evict), ["both"]);
}

#[test]
fn finished_and_terminating_pods_are_not_evicted() {
    let n = node(vec![condition("Ready", "False")], Vec::new());
    let mut done = (*pod("done", Vec::new())).clone();
    done.status = Some(PodStatus {
        phase: Some("Succeeded".into()),
        ..PodStatus::default()
    });
    let pods = [Arc::new(done), terminating("leaving", at(5), 30)];
    let decision = plan(&n, at(1), &pods, at(2), GRACE);
    assert!(decision.evict.is_empty());
    assert!(decision.force_delete.is_empty(), "the node is reachable");
}

#[test]
fn terminating_pods_on_an_unreachable_node_are_force_deleted_after_their_grace() {
    let n = node(vec![unknown_ready(at(10))], unreachable_since(at(10)));
    // Deleted at 15 with 30 s grace: deletionTimestamp is 45.
    let pods = [terminating("web", at(45), 30)];
    let decision = plan(&n, t0(), &pods, at(44), GRACE);
    assert!(decision.force_delete.is_empty());
    assert_eq!(decision.requeue_after, Some(Duration::from_secs(1)));
    let decision = plan(&n, t0(), &pods, at(45), GRACE);
    assert_eq!(names(&decision.force_delete), ["web"]);
}

#[test]
fn a_pod_deleted_before_its_node_went_silent_waits_a_grace_period_of_unknown() {
    let n = node(vec![unknown_ready(at(20))], unreachable_since(at(20)));
    let pods = [terminating("web", at(10), 5)];
    let decision = plan(&n, t0(), &pods, at(24), GRACE);
    assert!(decision.force_delete.is_empty());
    let decision = plan(&n, t0(), &pods, at(25), GRACE);
    assert_eq!(names(&decision.force_delete), ["web"]);
}

#[test]
fn an_observation_moves_only_when_a_heartbeat_changes() {
    let beat = |s: i64| Heartbeat {
        lease_renewed: Some(at(s)),
        ready_heartbeat: None,
    };
    let first = observe(None, beat(0), at(100));
    assert_eq!(first.at, at(100), "counted from when it was first seen");
    let same = observe(Some(&first), beat(0), at(105));
    assert_eq!(same.at, at(100));
    let renewed = observe(Some(&same), beat(2), at(106));
    assert_eq!(renewed.at, at(106));
}

#[test]
fn orphaned_pods_are_deleted_once_their_node_has_been_missing_for_the_quarantine() {
    let pods = [pod("web", Vec::new())];
    let (delete, wait) = orphans(&pods, t0(), at(3), GRACE);
    assert!(delete.is_empty());
    assert_eq!(wait, Some(Duration::from_secs(5)));
    let (delete, wait) = orphans(&pods, t0(), at(8), GRACE);
    assert_eq!(names(&delete), ["web"]);
    assert_eq!(wait, None);
}
