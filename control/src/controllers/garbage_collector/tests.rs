use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::{List, Metadata};
use serde_json::json;

use super::graph::{Graph, key};
use super::kinds::{self, KINDS, Slim};
use super::plan::{FOREGROUND, ORPHAN, OwnerState, Plan, Propagation, plan};

fn owner_ref(uid: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: format!("rs-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(block),
    }
}

fn object(uid: &str, owners: &[OwnerReference]) -> ObjectMeta {
    ObjectMeta {
        name: Some(format!("obj-{uid}")),
        namespace: Some("ns".into()),
        uid: Some(uid.into()),
        resource_version: Some("7".into()),
        owner_references: (!owners.is_empty()).then(|| owners.to_vec()),
        ..ObjectMeta::default()
    }
}

fn deleting(mut meta: ObjectMeta, finalizers: &[&str]) -> ObjectMeta {
    meta.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    meta.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
    meta
}

#[test]
fn an_object_without_owners_is_left_alone() {
    assert!(plan(&object("a", &[]), &[], &[]).is_empty());
}

#[test]
fn an_object_with_a_solid_owner_is_kept() {
    let pod = object("p", &[owner_ref("rs", true)]);
    assert!(plan(&pod, &[OwnerState::Solid], &[]).is_empty());
}

#[test]
fn an_object_whose_every_owner_is_gone_is_deleted_in_the_background() {
    let pod = object("p", &[owner_ref("rs1", true), owner_ref("rs2", false)]);
    let decision = plan(&pod, &[OwnerState::Absent, OwnerState::Absent], &[]);
    assert_eq!(decision.delete, Some(Propagation::Background));
    assert_eq!(decision.keep_owner_references, None);
}

#[test]
fn dangling_references_are_dropped_while_a_solid_owner_remains() {
    let pod = object("p", &[owner_ref("gone", true), owner_ref("here", true)]);
    let decision = plan(&pod, &[OwnerState::Absent, OwnerState::Solid], &[]);
    assert_eq!(decision.delete, None);
    assert_eq!(
        decision.keep_owner_references,
        Some(vec![owner_ref("here", true)])
    );
}

#[test]
fn a_reference_to_an_owner_deleting_in_the_foreground_is_dropped_if_another_owner_stays() {
    let pod = object("p", &[owner_ref("fg", true), owner_ref("here", true)]);
    let decision = plan(
        &pod,
        &[OwnerState::WaitingForDependents, OwnerState::Solid],
        &[],
    );
    assert_eq!(
        decision.keep_owner_references,
        Some(vec![owner_ref("here", true)])
    );
}

#[test]
fn a_dependent_of_a_foreground_deletion_goes_in_the_foreground_when_it_owns_something() {
    let rs = object("rs", &[owner_ref("deploy", true)]);
    let pod = object("p", &[owner_ref("rs", true)]);
    let with_dependents = plan(&rs, &[OwnerState::WaitingForDependents], &[&pod]);
    assert_eq!(with_dependents.delete, Some(Propagation::Foreground));
    let alone = plan(&rs, &[OwnerState::WaitingForDependents], &[]);
    assert_eq!(alone.delete, Some(Propagation::Background));
}

#[test]
fn a_foreground_deletion_waits_for_blocking_dependents_only() {
    let owner = deleting(object("rs", &[]), &[FOREGROUND]);
    let blocking = object("p1", &[owner_ref("rs", true)]);
    let not_blocking = object("p2", &[owner_ref("rs", false)]);
    assert!(plan(&owner, &[], &[&blocking, &not_blocking]).is_empty());
    assert_eq!(
        plan(&owner, &[], &[&not_blocking]).remove_finalizer,
        Some(FOREGROUND)
    );
    assert_eq!(plan(&owner, &[], &[]).remove_finalizer, Some(FOREGROUND));
}

#[test]
fn an_orphaning_deletion_releases_every_dependent_then_its_finalizer() {
    let owner = deleting(object("rs", &[]), &[ORPHAN, "example.com/keep"]);
    let p1 = object("p1", &[owner_ref("rs", true)]);
    let p2 = object("p2", &[owner_ref("rs", false), owner_ref("other", true)]);
    let decision = plan(&owner, &[], &[&p1, &p2]);
    assert_eq!(
        decision,
        Plan {
            orphan: vec!["p1".into(), "p2".into()],
            remove_finalizer: Some(ORPHAN),
            ..Plan::default()
        }
    );
    assert_eq!(
        super::plan::without_owner(&p2, "rs"),
        vec![owner_ref("other", true)]
    );
    assert_eq!(
        super::plan::without_finalizer(&owner, ORPHAN),
        vec!["example.com/keep".to_string()]
    );
}

#[test]
fn an_object_already_being_deleted_is_not_deleted_again() {
    let pod = deleting(object("p", &[owner_ref("rs", true)]), &[]);
    assert!(plan(&pod, &[], &[]).is_empty());
    let other = deleting(object("p", &[owner_ref("rs", true)]), &["example.com/keep"]);
    assert!(plan(&other, &[], &[]).is_empty());
}

#[test]
fn the_state_of_an_owner_follows_its_deletion_and_finalizers() {
    let rs = object("rs", &[]);
    assert_eq!(OwnerState::of(&rs), OwnerState::Solid);
    assert_eq!(
        OwnerState::of(&deleting(rs.clone(), &[FOREGROUND])),
        OwnerState::WaitingForDependents
    );
    assert_eq!(OwnerState::of(&deleting(rs, &[ORPHAN])), OwnerState::Solid);
}

#[test]
fn the_graph_indexes_dependents_by_owner_uid_and_follows_changes() {
    let pod_kind = kinds::find("v1", "Pod").expect("pods are followed");
    let mut graph = Graph::default();
    let pod = object("p", &[owner_ref("rs", true)]);
    graph.apply(pod_kind, Arc::new(pod.clone()));
    assert_eq!(graph.dependents("rs").len(), 1);

    // The pod is released: no longer a dependent.
    graph.apply(pod_kind, Arc::new(object("p", &[])));
    assert!(graph.dependents("rs").is_empty());

    // Adopted by another owner, then deleted.
    let adopted = object("p", &[owner_ref("rs2", true)]);
    graph.apply(pod_kind, Arc::new(adopted.clone()));
    assert_eq!(graph.dependents("rs2").len(), 1);
    graph.remove(&adopted);
    assert!(graph.dependents("rs2").is_empty());
    assert_eq!(graph.len(), 0);
}

#[test]
fn a_change_enqueues_the_object_its_owners_and_once_deleting_its_dependents() {
    let pod_kind = kinds::find("v1", "Pod").expect("pods are followed");
    let rs_kind = kinds::find("apps/v1", "ReplicaSet").expect("replicasets are followed");
    let mut graph = Graph::default();
    let rs = object("rs", &[owner_ref("deploy", true)]);
    graph.apply(rs_kind, Arc::new(rs.clone()));
    graph.apply(pod_kind, Arc::new(object("p", &[owner_ref("rs", true)])));

    assert_eq!(graph.keys(None, &rs, false), vec![key("rs"), key("deploy")]);
    let rs_deleting = deleting(rs.clone(), &[FOREGROUND]);
    assert_eq!(
        graph.keys(Some(&rs), &rs_deleting, false),
        vec![key("rs"), key("deploy"), key("p")]
    );
    graph.remove(&rs);
    assert_eq!(
        graph.keys(None, &rs, true),
        vec![key("rs"), key("deploy"), key("p")]
    );
}

#[test]
fn slim_objects_keep_only_the_metadata_ownership_needs() {
    let list = json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "9"},
        "items": [{
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "8",
                "labels": {"app": "web"},
                "annotations": {"big": "x".repeat(1000)},
                "finalizers": ["orphan"],
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "rs", "uid": "u0", "controller": true}],
            },
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Pending"},
        }],
    });
    let list: List<Slim<Pod>> = serde_json::from_value(list).expect("a pod list decodes");
    let meta = list.items[0].metadata();
    assert_eq!(meta.name.as_deref(), Some("p"));
    assert_eq!(meta.uid.as_deref(), Some("u1"));
    assert_eq!(meta.resource_version.as_deref(), Some("8"));
    assert_eq!(meta.finalizers, Some(vec!["orphan".to_string()]));
    assert!(meta.deletion_timestamp.is_some());
    assert_eq!(meta.owner_references.as_ref().map(Vec::len), Some(1));
    assert_eq!(meta.labels, None);
    assert_eq!(meta.annotations, None);

    let other = serde_json::from_value::<List<Slim<ReplicaSet>>>(json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [],
    }));
    assert!(other.is_err(), "a list of another kind is refused");
}

#[test]
fn every_followed_kind_is_served_and_found_by_owner_reference() {
    for kind in KINDS {
        let served = wasmpod_api::registry::RESOURCES
            .iter()
            .any(|r| r.group == kind.group() && r.kind == kind.kind());
        assert!(served, "{kind:?} is not served");
        let api_version = if kind.group().is_empty() {
            "v1".to_string()
        } else {
            format!("{}/v1", kind.group())
        };
        assert!(kinds::find(&api_version, kind.kind()).is_some());
    }
    assert!(kinds::find("example.com/v1", "Widget").is_none());
    assert!(kinds::find("v1", "Node").is_some_and(|k| !k.namespaced()));
    assert!(kinds::find("v1", "ConfigMap").is_some_and(|k| k.namespaced()));
}
