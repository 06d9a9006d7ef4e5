use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use wasmpod_api::selector::LabelSelector;

use super::plan::{self, counts, deletion_order, next_available_in, slow_start_batches};
use super::pod_from_template;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("valid time")
}

fn labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

fn selector() -> LabelSelector {
    LabelSelector::from_map(&labels("web")).expect("valid selector")
}

struct P(Pod);

impl P {
    fn new(name: &str, app: &str) -> Self {
        Self(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels(app)),
                creation_timestamp: Some(Time(ts(100))),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..PodStatus::default()
            }),
        })
    }

    fn owned_by(mut self, uid: &str) -> Self {
        self.0.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        self
    }

    fn created(mut self, secs: i64) -> Self {
        self.0.metadata.creation_timestamp = Some(Time(ts(secs)));
        self
    }

    fn on_node(mut self) -> Self {
        if let Some(spec) = self.0.spec.as_mut() {
            spec.node_name = Some("n1".into());
        }
        self
    }

    fn running_ready_since(mut self, secs: i64) -> Self {
        let status = self.0.status.get_or_insert_with(PodStatus::default);
        status.phase = Some("Running".into());
        status.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(Time(ts(secs))),
            ..PodCondition::default()
        }]);
        self
    }

    fn phase(mut self, phase: &str) -> Self {
        if let Some(status) = self.0.status.as_mut() {
            status.phase = Some(phase.into());
        }
        self
    }

    fn terminating(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(Time(ts(200)));
        self
    }

    fn arc(self) -> Arc<Pod> {
        Arc::new(self.0)
    }
}

fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
    pods.iter()
        .map(|p| p.metadata.name.as_deref().unwrap_or_default())
        .collect()
}

#[test]
fn missing_replicas_are_created_and_terminating_pods_do_not_count() {
    let pods = vec![
        P::new("a", "web").owned_by("rs").arc(),
        P::new("b", "web").owned_by("rs").terminating().arc(),
        P::new("c", "web").owned_by("rs").phase("Failed").arc(),
        P::new("d", "web").owned_by("other").arc(),
    ];
    let plan = plan::plan("rs", &selector(), 3, &pods, true);
    assert_eq!(plan.create, 2);
    assert!(plan.delete.is_empty());
    assert_eq!(names(&plan.active), ["a"]);
}

#[test]
fn creation_is_bounded_per_reconcile() {
    let plan = plan::plan("rs", &selector(), 1000, &[], true);
    assert_eq!(plan.create, plan::BURST_REPLICAS);
}

#[test]
fn extra_replicas_are_deleted_least_valuable_first() {
    let pods = vec![
        P::new("ready-old", "web")
            .owned_by("rs")
            .on_node()
            .running_ready_since(10)
            .arc(),
        P::new("ready-new", "web")
            .owned_by("rs")
            .on_node()
            .running_ready_since(50)
            .arc(),
        P::new("pending", "web").owned_by("rs").on_node().arc(),
        P::new("unscheduled", "web").owned_by("rs").arc(),
    ];
    let plan = plan::plan("rs", &selector(), 1, &pods, true);
    assert_eq!(plan.create, 0);
    assert_eq!(names(&plan.delete), ["unscheduled", "pending", "ready-new"]);
}

#[test]
fn among_equals_the_newest_pod_goes_first() {
    let old = P::new("old", "web").created(10).0;
    let new = P::new("new", "web").created(20).0;
    assert_eq!(deletion_order(&new, &old), std::cmp::Ordering::Less);
}

#[test]
fn matching_orphans_are_adopted_and_counted() {
    let pods = vec![
        P::new("orphan", "web").arc(),
        P::new("other-app", "db").arc(),
        P::new("dying-orphan", "web").terminating().arc(),
    ];
    let plan = plan::plan("rs", &selector(), 2, &pods, true);
    assert_eq!(names(&plan.adopt), ["orphan"]);
    assert_eq!(names(&plan.active), ["orphan"]);
    assert_eq!(plan.create, 1);
    let deleting_owner = plan::plan("rs", &selector(), 2, &pods, false);
    assert!(deleting_owner.adopt.is_empty());
}

#[test]
fn owned_pods_that_no_longer_match_are_released_and_replaced() {
    let pods = vec![P::new("relabeled", "debug").owned_by("rs").arc()];
    let plan = plan::plan("rs", &selector(), 1, &pods, true);
    assert_eq!(names(&plan.release), ["relabeled"]);
    assert_eq!(plan.create, 1);
}

#[test]
fn an_empty_selector_selects_nothing() {
    let pods = vec![P::new("orphan", "web").arc()];
    let plan = plan::plan("rs", &LabelSelector::everything(), 1, &pods, true);
    assert!(plan.adopt.is_empty());
}

#[test]
fn status_counts_ready_available_and_fully_labeled() {
    let mut extra = labels("web");
    extra.insert("tier".into(), "front".into());
    let mut fully = P::new("a", "web").running_ready_since(0).0;
    fully.metadata.labels = Some(extra.clone());
    let active = vec![
        Arc::new(fully),
        P::new("b", "web").running_ready_since(95).arc(),
        P::new("c", "web").arc(),
    ];
    let c = counts(&active, Some(&extra), 10, 7, ts(100));
    assert_eq!(
        (
            c.replicas,
            c.fully_labeled,
            c.ready,
            c.available,
            c.observed_generation
        ),
        (3, 1, 2, 1, 7)
    );
    assert_eq!(next_available_in(&active, 10, ts(100)), Some(5));
    assert_eq!(next_available_in(&active, 0, ts(100)), None);
    let without_min_ready = counts(&active, None, 0, 7, ts(100));
    assert_eq!(without_min_ready.available, 2);
    assert_eq!(without_min_ready.fully_labeled, 3);
}

#[test]
fn slow_start_doubles_the_batch() {
    assert_eq!(slow_start_batches(0), Vec::<usize>::new());
    assert_eq!(slow_start_batches(10), [1, 2, 4, 3]);
    assert_eq!(slow_start_batches(1000).iter().sum::<usize>(), 1000);
}

#[test]
fn pods_from_a_template_carry_its_metadata_and_the_owner() {
    let rs = k8s_openapi::api::apps::v1::ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web-abc".into()),
            namespace: Some("ns".into()),
            uid: Some("rs-uid".into()),
            ..ObjectMeta::default()
        },
        ..Default::default()
    };
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels("web")),
            annotations: Some(BTreeMap::from([("a".to_string(), "b".to_string())])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec::default()),
    };
    let pod = pod_from_template(&rs, &template);
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
    assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
    assert_eq!(pod.metadata.labels, Some(labels("web")));
    assert!(pod.metadata.annotations.is_some());
    let owner = &pod.metadata.owner_references.expect("owner")[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.uid.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("ReplicaSet", "rs-uid", Some(true), Some(true))
    );
}
