use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

use super::plan::*;

fn pv(name: &str, size: &str, extra: Value) -> Arc<PersistentVolume> {
    let mut base = json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": format!("/srv/{name}")},
            "persistentVolumeReclaimPolicy": "Retain",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Available"}
    });
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    Arc::new(serde_json::from_value(base).expect("a volume"))
}

fn claim(name: &str, size: &str, extra: Value) -> PersistentVolumeClaim {
    let mut base = json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            "storageClassName": "",
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Pending"}
    });
    wasmpod_api::patch::merge_patch(&mut base, &extra);
    serde_json::from_value(base).expect("a claim")
}

fn local_path_class(mode: &str) -> Arc<StorageClass> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": LOCAL_PATH_CLASS},
            "provisioner": LOCAL_PATH_PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": mode,
        }))
        .expect("a class"),
    )
}

fn claimed_by(c: &PersistentVolumeClaim) -> Value {
    json!({"spec": {"claimRef": {
        "namespace": c.metadata.namespace, "name": c.metadata.name, "uid": c.metadata.uid
    }}})
}

fn reserved_name(step: &ClaimStep) -> Option<String> {
    match step {
        ClaimStep::Reserve(pv) => pv.metadata.name.clone(),
        _ => None,
    }
}

#[test]
fn claim_gets_the_smallest_volume_that_fits() {
    let c = claim("data", "1Gi", json!({}));
    let volumes = [
        pv("big", "10Gi", json!({})),
        pv("small", "512Mi", json!({})),
        pv("fit", "2Gi", json!({})),
    ];
    let step = claim_step(&c, &volumes, &[]);
    assert_eq!(reserved_name(&step).as_deref(), Some("fit"));
    let ClaimStep::Reserve(reserved) = step else {
        unreachable!()
    };
    let r = claim_ref(&reserved).expect("points at the claim");
    assert_eq!(r.uid.as_deref(), Some("uid-data"));
}

#[test]
fn class_access_modes_and_selector_must_match() {
    let c = claim(
        "data",
        "1Gi",
        json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
            "selector": {"matchLabels": {"tier": "db"}}}}),
    );
    let both = json!({"spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
    let mut labelled = both.clone();
    labelled["metadata"] = json!({"labels": {"tier": "db"}});
    let mut other_class = labelled.clone();
    other_class["spec"]["storageClassName"] = json!("fast");
    let volumes = [
        pv(
            "one-mode",
            "1Gi",
            json!({"metadata": {"labels": {"tier": "db"}}}),
        ),
        pv("unlabelled", "1Gi", both),
        pv("classed", "1Gi", other_class),
        pv("right", "5Gi", labelled),
    ];
    assert_eq!(
        reserved_name(&claim_step(&c, &volumes, &[])).as_deref(),
        Some("right")
    );
}

#[test]
fn volume_bound_elsewhere_or_released_is_not_taken() {
    let c = claim("data", "1Gi", json!({}));
    let other = claim("other", "1Gi", json!({}));
    let volumes = [
        pv("taken", "1Gi", claimed_by(&other)),
        pv("released", "1Gi", json!({"status": {"phase": "Released"}})),
    ];
    assert!(matches!(
        claim_step(&c, &volumes, &[]),
        ClaimStep::Pending {
            reason: "FailedBinding",
            ..
        }
    ));
}

#[test]
fn claim_naming_a_volume_binds_to_it() {
    let c = claim("data", "1Gi", json!({"spec": {"volumeName": "chosen"}}));
    let volumes = [
        pv("cheaper", "1Gi", json!({})),
        pv("chosen", "8Gi", json!({})),
    ];
    assert_eq!(
        reserved_name(&claim_step(&c, &volumes, &[])).as_deref(),
        Some("chosen")
    );
}

#[test]
fn volume_pointing_at_the_claim_completes_the_binding() {
    let c = claim("data", "1Gi", json!({}));
    let volumes = [pv("mine", "2Gi", claimed_by(&c))];
    assert!(matches!(
        claim_step(&c, &volumes, &[]),
        ClaimStep::Complete(_)
    ));
    let bound = claim(
        "data",
        "1Gi",
        json!({"spec": {"volumeName": "mine"}, "status": {"phase": "Bound",
            "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]}}),
    );
    let volumes = [pv(
        "mine",
        "2Gi",
        json!({"spec": claimed_by(&c)["spec"], "status": {"phase": "Bound"}}),
    )];
    assert_eq!(claim_step(&bound, &volumes, &[]), ClaimStep::InSync);
    assert_eq!(claim_step(&bound, &[], &[]), ClaimStep::Lost);
}

#[test]
fn local_path_claim_waits_for_its_first_consumer_then_is_provisioned_there() {
    let c = claim(
        "data",
        "1Gi",
        json!({"spec": {"storageClassName": LOCAL_PATH_CLASS}}),
    );
    let classes = [local_path_class("WaitForFirstConsumer")];
    assert!(matches!(
        claim_step(&c, &[], &classes),
        ClaimStep::Pending {
            reason: "WaitForFirstConsumer",
            ..
        }
    ));
    let placed = claim(
        "data",
        "1Gi",
        json!({"metadata": {"annotations": {SELECTED_NODE: "n1"}},
            "spec": {"storageClassName": LOCAL_PATH_CLASS}}),
    );
    let ClaimStep::Provision(volume) = claim_step(&placed, &[], &classes) else {
        panic!("expected a provisioned volume");
    };
    let v = serde_json::to_value(&volume).expect("encodes");
    assert_eq!(v["metadata"]["name"], "pvc-uid-data");
    assert_eq!(v["spec"]["local"]["path"], "local-path/ns/data-uid-data");
    assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
    assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(v["spec"]["storageClassName"], LOCAL_PATH_CLASS);
    assert_eq!(v["spec"]["claimRef"]["uid"], "uid-data");
    let term = &v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0];
    assert_eq!(term["matchExpressions"][0]["key"], "kubernetes.io/hostname");
    assert_eq!(term["matchExpressions"][0]["values"], json!(["n1"]));
}

#[test]
fn immediate_local_path_claim_stays_pending_with_a_reason() {
    let c = claim(
        "data",
        "1Gi",
        json!({"metadata": {"annotations": {SELECTED_NODE: "n1"}},
            "spec": {"storageClassName": LOCAL_PATH_CLASS}}),
    );
    let step = claim_step(&c, &[], &[local_path_class("Immediate")]);
    let ClaimStep::Pending { reason, message } = step else {
        panic!("expected pending, got {step:?}");
    };
    assert_eq!(reason, "ProvisioningFailed");
    assert!(message.contains("WaitForFirstConsumer"), "{message}");
}

#[test]
fn volume_phases_follow_its_claim() {
    let c = Arc::new(claim("data", "1Gi", json!({"spec": {"volumeName": "v"}})));
    let free = pv("v", "1Gi", json!({"status": {"phase": "Pending"}}));
    assert_eq!(
        volume_step(&free, &[]),
        VolumeStep::Phase("Available", None)
    );
    let bound = pv("v", "1Gi", claimed_by(&c));
    assert_eq!(
        volume_step(&bound, std::slice::from_ref(&c)),
        VolumeStep::Phase("Bound", None)
    );
    assert_eq!(
        volume_step(&bound, &[]),
        VolumeStep::Phase("Released", None)
    );
    // A claim of the same name but another uid is a different claim.
    let recreated = Arc::new(claim("data", "1Gi", json!({"metadata": {"uid": "new"}})));
    assert_eq!(
        volume_step(&bound, &[recreated]),
        VolumeStep::Phase("Released", None)
    );
}

#[test]
fn provisioned_volume_with_delete_policy_is_deleted_with_its_claim() {
    let c = claim("data", "1Gi", json!({}));
    let mut extra = claimed_by(&c);
    extra["metadata"] = json!({"annotations": {PROVISIONED_BY: LOCAL_PATH_PROVISIONER}});
    extra["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    extra["status"] = json!({"phase": "Bound"});
    assert_eq!(
        volume_step(&pv("v", "1Gi", extra.clone()), &[]),
        VolumeStep::Delete
    );
    // A hand-made volume with Delete has nothing to delete it.
    extra["metadata"] = json!({});
    assert!(matches!(
        volume_step(&pv("v", "1Gi", extra), &[]),
        VolumeStep::Phase("Failed", Some(_))
    ));
}

#[test]
fn volume_pre_bound_to_a_future_claim_stays_available() {
    let v = pv(
        "v",
        "1Gi",
        json!({"spec": {"claimRef": {"namespace": "ns", "name": "later"}}, "status": {"phase": "Pending"}}),
    );
    assert_eq!(volume_step(&v, &[]), VolumeStep::Phase("Available", None));
    let later = claim("later", "1Gi", json!({}));
    let other = pv("cheap", "1Gi", json!({}));
    assert_eq!(
        reserved_name(&claim_step(&later, &[other, v], &[])).as_deref(),
        Some("v")
    );
}
