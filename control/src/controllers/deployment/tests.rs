use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
    RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::plan::*;

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

fn deployment(
    replicas: i32,
    surge: Option<IntOrString>,
    unavailable: Option<IntOrString>,
) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            generation: Some(3),
            annotations: Some(BTreeMap::from([
                ("kubernetes.io/change-cause".to_string(), "v2".to_string()),
                (REVISION.to_string(), "1".to_string()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            template: template("a"),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: surge,
                    max_unavailable: unavailable,
                }),
            }),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn rs(name: &str, replicas: i32, current: i32, available: i32) -> RsState {
    RsState {
        name: name.into(),
        replicas,
        current,
        available,
    }
}

fn replica_set(name: &str, revision: i64, replicas: i32, current: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(BTreeMap::from([(
                REVISION.to_string(),
                revision.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..ReplicaSetSpec::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas: current,
            ready_replicas: Some(current),
            available_replicas: Some(current),
            ..ReplicaSetStatus::default()
        }),
    }
}

#[test]
fn the_hash_is_stable_safe_and_ignores_the_hash_label() {
    let a = template("a");
    assert_eq!(template_hash(&a, 0), template_hash(&a.clone(), 0));
    assert_ne!(template_hash(&a, 0), template_hash(&template("b"), 0));
    assert_ne!(template_hash(&a, 0), template_hash(&a, 1));
    assert!(
        template_hash(&a, 0)
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    );
    let mut labelled = a.clone();
    if let Some(labels) = labelled.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.insert(HASH_LABEL.into(), "xyz".into());
    }
    assert!(equal_ignoring_hash(&a, &labelled));
    assert!(!equal_ignoring_hash(&a, &template("b")));
}

#[test]
fn an_undone_template_with_empty_fields_matches_its_replica_set() {
    // `kubectl rollout undo` sends the old template with `resources: {}`.
    let stored = template("a");
    let mut undone = stored.clone();
    if let Some(spec) = undone.spec.as_mut() {
        spec.containers[0].resources = Some(Default::default());
        spec.containers[0].env = Some(Vec::new());
    }
    assert!(equal_ignoring_hash(&stored, &undone));
    assert_eq!(template_hash(&stored, 0), template_hash(&undone, 0));
}

#[test]
fn fenceposts_round_surge_up_and_unavailable_down() {
    let pct = |s: &str| Some(IntOrString::String(s.into()));
    assert_eq!(fenceposts(&deployment(10, None, None), 10), (3, 2));
    assert_eq!(
        fenceposts(&deployment(3, pct("50%"), pct("50%")), 3),
        (2, 1)
    );
    assert_eq!(
        fenceposts(
            &deployment(3, Some(IntOrString::Int(2)), Some(IntOrString::Int(0))),
            3
        ),
        (2, 0)
    );
    assert_eq!(
        fenceposts(
            &deployment(3, Some(IntOrString::Int(0)), Some(IntOrString::Int(0))),
            3
        ),
        (0, 1)
    );
}

#[test]
fn a_rolling_update_surges_then_scales_old_down_within_min_available() {
    // 3 replicas, surge 1, unavailable 0: the new RS goes to 1 first.
    let step = rolling_step(3, 1, 0, &rs("new", 0, 0, 0), &[rs("old", 3, 3, 3)]);
    assert_eq!(step, [("new".to_string(), 1)]);
    // At the surge limit with the new pod not available: nothing moves.
    assert!(rolling_step(3, 1, 0, &rs("new", 1, 1, 0), &[rs("old", 3, 3, 3)]).is_empty());
    // Once it is available, one old replica goes.
    let step = rolling_step(3, 1, 0, &rs("new", 1, 1, 1), &[rs("old", 3, 3, 3)]);
    assert_eq!(step, [("old".to_string(), 2)]);
    // Done: nothing to do.
    assert!(rolling_step(3, 1, 0, &rs("new", 3, 3, 3), &[rs("old", 0, 0, 0)]).is_empty());
}

#[test]
fn unhealthy_old_replicas_go_first_and_scaling_only_touches_the_new_set() {
    // Old RS has 2 replicas that are not available; maxUnavailable 1
    // bounds the step to one of them.
    let step = rolling_step(3, 0, 1, &rs("new", 0, 0, 0), &[rs("old", 3, 3, 1)]);
    assert_eq!(step, [("old".to_string(), 2)]);
    // With room for two, both unavailable ones go, not the available one.
    let step = rolling_step(4, 0, 2, &rs("new", 0, 0, 0), &[rs("old", 4, 4, 2)]);
    assert_eq!(step, [("old".to_string(), 2)]);
    assert_eq!(
        rolling_step(5, 2, 1, &rs("new", 3, 3, 3), &[]),
        [("new".to_string(), 5)]
    );
    assert_eq!(
        rolling_step(1, 2, 1, &rs("new", 3, 3, 3), &[]),
        [("new".to_string(), 1)]
    );
}

#[test]
fn recreate_scales_old_to_zero_and_waits_for_their_pods() {
    let new = rs("new", 0, 0, 0);
    assert_eq!(
        recreate_step(2, &new, &[rs("old", 2, 2, 2)]),
        [("old".to_string(), 0)]
    );
    assert!(recreate_step(2, &new, &[rs("old", 0, 1, 0)]).is_empty());
    assert_eq!(
        recreate_step(2, &new, &[rs("old", 0, 0, 0)]),
        [("new".to_string(), 2)]
    );
}

#[test]
fn history_keeps_the_newest_idle_replica_sets() {
    let a = replica_set("a", 1, 0, 0);
    let b = replica_set("b", 2, 0, 0);
    let c = replica_set("c", 3, 0, 0);
    let busy = replica_set("busy", 0, 0, 1);
    let old = [&c, &a, &busy, &b];
    assert_eq!(history_to_delete(&old, 1), ["a", "b"]);
    assert!(history_to_delete(&old, 10).is_empty());
    assert_eq!(history_to_delete(&old, 0), ["a", "b", "c"]);
}

#[test]
fn new_replica_sets_carry_the_deployment_annotations_and_revision() {
    let a = new_rs_annotations(&deployment(3, None, None), 4, 3, 1);
    assert_eq!(a.get(REVISION).map(String::as_str), Some("4"));
    assert_eq!(
        a.get("kubernetes.io/change-cause").map(String::as_str),
        Some("v2")
    );
    assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("4"));
}

#[test]
fn status_reports_counts_and_a_finished_rollout() {
    let d = deployment(2, None, None);
    let new = replica_set("web-new", 2, 2, 2);
    let old = replica_set("web-old", 1, 0, 0);
    let now = Timestamp::from_second(1000).expect("time");
    let s = status(&d, Some(&new), &[&new, &old], now);
    assert_eq!(
        (
            s.observed_generation,
            s.replicas,
            s.updated_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(3), Some(2), Some(2), Some(2), Some(0))
    );
    let conditions = s.conditions.clone().unwrap_or_default();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("progressing");
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    let available = conditions
        .iter()
        .find(|c| c.type_ == "Available")
        .expect("available");
    assert_eq!(available.status, "True");

    // The same facts later keep the condition times, so nothing is written.
    let mut d2 = d.clone();
    d2.status = Some(s.clone());
    let later = Timestamp::from_second(2000).expect("time");
    assert_eq!(status(&d2, Some(&new), &[&new, &old], later), s);

    // A rollout in progress.
    let half = replica_set("web-new", 2, 1, 1);
    let s = status(&d2, Some(&half), &[&half, &old], later);
    let conditions = s.conditions.unwrap_or_default();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("progressing");
    assert_eq!(progressing.reason.as_deref(), Some("ReplicaSetUpdated"));
    assert_eq!(
        progressing.last_transition_time.as_ref().map(|t| t.0),
        Some(now)
    );
}
