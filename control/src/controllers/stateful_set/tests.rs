use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::plan::{self, DeleteReason, REVISION_LABEL, SetSpec, Step};
use super::revisions::{self, UpdateRevision};

fn set(replicas: i32) -> SetSpec {
    SetSpec {
        name: "web".into(),
        replicas,
        start: 0,
        parallel: false,
        partition: Some(0),
        min_ready_seconds: 0,
        current_revision: "web-a".into(),
        update_revision: "web-a".into(),
    }
}

fn pod(ordinal: i32, phase: &str, ready: bool, revision: &str) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(format!("web-{ordinal}")),
            uid: Some(format!("uid-{ordinal}")),
            labels: Some([(REVISION_LABEL.to_string(), revision.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    })
}

fn terminating(p: Arc<Pod>) -> Arc<Pod> {
    let mut p = p.as_ref().clone();
    p.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    Arc::new(p)
}

fn creates(p: &plan::Plan) -> Vec<i32> {
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::Create { ordinal, .. } => Some(*ordinal),
            Step::Delete { .. } => None,
        })
        .collect()
}

fn deletes(p: &plan::Plan) -> Vec<(String, DeleteReason)> {
    p.steps
        .iter()
        .filter_map(|s| match s {
            Step::Delete { pod, reason } => {
                Some((pod.metadata.name.clone().unwrap_or_default(), *reason))
            }
            Step::Create { .. } => None,
        })
        .collect()
}

fn now() -> Timestamp {
    Timestamp::now()
}

#[test]
fn ordinals_parse_only_the_sets_own_names() {
    assert_eq!(plan::ordinal_of("web", "web-0"), Some(0));
    assert_eq!(plan::ordinal_of("web", "web-12"), Some(12));
    assert_eq!(plan::ordinal_of("web", "web-01"), None);
    assert_eq!(plan::ordinal_of("web", "web-x"), None);
    assert_eq!(plan::ordinal_of("web", "webs-1"), None);
    assert_eq!(plan::ordinal_of("web", "web-"), None);
    assert_eq!(plan::ordinal_of("web", "web-db-1"), None);
    assert_eq!(plan::claim_name("data", "web", 2), "data-web-2");
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_in_order() {
    let s = set(3);
    assert_eq!(creates(&plan::plan(&s, &[], now())), [0]);
    // web-0 exists but is not ready yet: wait.
    let pending = [pod(0, "Pending", false, "web-a")];
    assert!(plan::plan(&s, &pending, now()).steps.is_empty());
    let ready = [pod(0, "Running", true, "web-a")];
    assert_eq!(creates(&plan::plan(&s, &ready, now())), [1]);
}

#[test]
fn parallel_creates_every_missing_pod_at_once() {
    let mut s = set(3);
    s.parallel = true;
    let pending = [pod(1, "Pending", false, "web-a")];
    assert_eq!(creates(&plan::plan(&s, &pending, now())), [0, 2]);
}

#[test]
fn a_pod_is_made_again_only_after_its_predecessor_is_gone() {
    let s = set(2);
    let pods = [
        terminating(pod(0, "Running", true, "web-a")),
        pod(1, "Running", true, "web-a"),
    ];
    assert!(plan::plan(&s, &pods, now()).steps.is_empty());
    let mut p = set(2);
    p.parallel = true;
    assert!(creates(&plan::plan(&p, &pods, now())).is_empty());
}

#[test]
fn finished_pods_are_deleted_to_be_made_again() {
    let s = set(2);
    let pods = [
        pod(0, "Failed", false, "web-a"),
        pod(1, "Running", true, "web-a"),
    ];
    assert_eq!(
        deletes(&plan::plan(&s, &pods, now())),
        [("web-0".to_string(), DeleteReason::Finished)]
    );
}

#[test]
fn scale_down_removes_the_highest_ordinal_first_once_all_are_healthy() {
    let s = set(1);
    let pods = [
        pod(0, "Running", true, "web-a"),
        pod(1, "Running", true, "web-a"),
        pod(2, "Running", true, "web-a"),
    ];
    assert_eq!(
        deletes(&plan::plan(&s, &pods, now())),
        [("web-2".to_string(), DeleteReason::ScaleDown)]
    );
    let waiting = [
        pod(0, "Running", true, "web-a"),
        pod(1, "Running", true, "web-a"),
        terminating(pod(2, "Running", true, "web-a")),
    ];
    assert!(plan::plan(&s, &waiting, now()).steps.is_empty());
    let unhealthy = [
        pod(0, "Running", false, "web-a"),
        pod(1, "Running", true, "web-a"),
    ];
    assert!(plan::plan(&s, &unhealthy, now()).steps.is_empty());
}

#[test]
fn rolling_update_replaces_from_the_highest_ordinal_down_to_the_partition() {
    let mut s = set(3);
    s.update_revision = "web-b".into();
    let pods = [
        pod(0, "Running", true, "web-a"),
        pod(1, "Running", true, "web-a"),
        pod(2, "Running", true, "web-a"),
    ];
    assert_eq!(
        deletes(&plan::plan(&s, &pods, now())),
        [("web-2".to_string(), DeleteReason::Update)]
    );
    // web-2 was replaced but is not ready yet: wait.
    let replaced = [
        pod(0, "Running", true, "web-a"),
        pod(1, "Running", true, "web-a"),
        pod(2, "Running", false, "web-b"),
    ];
    assert!(plan::plan(&s, &replaced, now()).steps.is_empty());
    // With partition 2 the pods below ordinal 2 keep the old revision,
    // and a missing one below it is made from the current revision.
    s.partition = Some(2);
    let done = [
        pod(0, "Running", true, "web-a"),
        pod(2, "Running", true, "web-b"),
    ];
    let p = plan::plan(&s, &done, now());
    assert!(matches!(&p.steps[..], [Step::Create { ordinal: 1, revision }] if revision == "web-a"));
    let all = [
        pod(0, "Running", true, "web-a"),
        pod(1, "Running", true, "web-a"),
        pod(2, "Running", true, "web-b"),
    ];
    assert!(plan::plan(&s, &all, now()).steps.is_empty());
    // OnDelete never replaces.
    s.partition = None;
    assert!(plan::plan(&s, &pods, now()).steps.is_empty());
}

#[test]
fn counts_follow_revisions_and_readiness() {
    let mut s = set(3);
    s.update_revision = "web-b".into();
    let pods = [
        pod(0, "Running", true, "web-a"),
        pod(1, "Pending", false, "web-a"),
        pod(2, "Running", true, "web-b"),
    ];
    let c = plan::plan(&s, &pods, now()).counts;
    assert_eq!(
        (c.replicas, c.ready, c.available, c.current, c.updated),
        (3, 2, 2, 2, 1)
    );
}

fn stateful_set(image: &str) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("set-uid".into()),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            selector: LabelSelector {
                match_labels: Some([("app".to_string(), "web".to_string())].into()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some(image.into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

#[test]
fn a_revision_restores_its_template_and_is_reused_or_renumbered() {
    let v1 = stateful_set("file:///a.wasm");
    let Some(UpdateRevision::Create(first)) = revisions::update_revision(&v1, &[]) else {
        panic!("a set without revisions gets one");
    };
    assert_eq!(first.revision, 1);
    assert!(
        first
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("web-"))
    );
    let data = &first.data.as_ref().map(|d| d.0.clone()).unwrap_or_default();
    assert_eq!(data["spec"]["template"]["$patch"], json!("replace"));
    assert_eq!(
        revisions::template_of(&first),
        v1.spec.as_ref().map(|s| s.template.clone())
    );
    let first = Arc::new(*first);
    assert!(matches!(
        revisions::update_revision(&v1, std::slice::from_ref(&first)),
        Some(UpdateRevision::Existing(_))
    ));

    let v2 = stateful_set("file:///b.wasm");
    let Some(UpdateRevision::Create(mut second)) =
        revisions::update_revision(&v2, std::slice::from_ref(&first))
    else {
        panic!("a new template gets a new revision");
    };
    assert_eq!(second.revision, 2);
    assert_ne!(second.metadata.name, first.metadata.name);
    second.metadata.uid = Some("r2".into());
    let both = [Arc::clone(&first), Arc::new(*second)];
    // Back to the first template: its revision becomes the newest.
    assert!(matches!(
        revisions::update_revision(&v1, &both),
        Some(UpdateRevision::Renumber(r, 3)) if r.revision == 1
    ));
    // Pruning keeps what is in use and the newest spare ones.
    let names: Vec<&str> = both
        .iter()
        .filter_map(|r| r.metadata.name.as_deref())
        .collect();
    assert!(revisions::to_prune(&both, &names, 0).is_empty());
    let pruned = revisions::to_prune(&both, &[names[1]], 0);
    assert_eq!(pruned.len(), 1);
    assert_eq!(pruned[0].revision, 1);
    assert!(revisions::to_prune(&both, &[names[1]], 1).is_empty());
}
