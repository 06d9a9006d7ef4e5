//! Strategic merge patch against the patches kubectl actually sends.

use serde_json::{Value, json};

use super::*;

const POD: &str = "io.k8s.api.core.v1.Pod";
const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

fn smp(target: Value, patch: Value, schema: &str) -> Value {
    match strategic_merge_patch(&target, &patch, schema) {
        Ok(v) => v,
        Err(e) => panic!("patch failed: {e}"),
    }
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "busybox"}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    })
}

fn containers(v: &Value) -> &Vec<Value> {
    v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
}

fn names(list: &[Value], key: &str) -> Vec<String> {
    list.iter()
        .map(|v| v[key].to_string().trim_matches('"').to_string())
        .collect()
}

#[test]
fn apply_changes_an_image_and_removes_a_container() {
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [{"image": "nginx:2", "name": "app"}, {"$patch": "delete", "name": "sidecar"}]
        }}}
    });
    let out = smp(deployment(), patch, DEPLOYMENT);
    let c = containers(&out);
    assert_eq!(names(c, "name"), vec!["app"]);
    assert_eq!(c[0]["image"], "nginx:2");
    // Fields the patch does not mention survive the merge.
    assert_eq!(c[0]["ports"][0]["containerPort"], 80);
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":1}"
    );
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn apply_inserts_a_container_where_set_element_order_puts_it() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "init"}, {"name": "sidecar"}],
        "containers": [{"name": "init", "image": "alpine"}]
    }}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        names(containers(&out), "name"),
        vec!["app", "init", "sidecar"]
    );
}

#[test]
fn edit_adds_an_env_var_in_order() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "B"}],
            "env": [{"name": "C", "value": "3"}],
            "name": "app"
        }]
    }}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    let env = containers(&out)[0]["env"].as_array().expect("env");
    assert_eq!(names(env, "name"), vec!["A", "C", "B"]);
    assert_eq!(env[1]["value"], "3");
    assert_eq!(names(containers(&out), "name"), vec!["app", "sidecar"]);
}

#[test]
fn merged_items_without_an_order_directive_come_before_server_items() {
    // Kubernetes puts patch items the server order does not place first.
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "9"}]}
    ]}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    let env = containers(&out)[0]["env"].as_array().expect("env");
    assert_eq!(names(env, "name"), vec!["C", "A", "B"]);
    assert_eq!(env[1]["value"], "9");
}

#[test]
fn label_patches_add_and_remove_labels() {
    let pod = json!({"metadata": {"name": "p", "labels": {"app": "web", "old": "x"}}});
    let out = smp(
        pod.clone(),
        json!({"metadata": {"labels": {"tier": "front"}}}),
        POD,
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "old": "x", "tier": "front"})
    );
    let out = smp(pod, json!({"metadata": {"labels": {"old": null}}}), POD);
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn null_deletes_fields_and_is_dropped_from_new_maps() {
    let out = smp(
        deployment(),
        json!({"spec": {"replicas": null, "paused": true, "template": {"spec": {"securityContext": {"runAsUser": null, "fsGroup": 2}}}}}),
        DEPLOYMENT,
    );
    assert!(out["spec"].get("replicas").is_none());
    assert_eq!(out["spec"]["paused"], true);
    assert_eq!(
        out["spec"]["template"]["spec"]["securityContext"],
        json!({"fsGroup": 2})
    );
}

#[test]
fn finalizers_merge_as_a_set() {
    let pod = json!({"metadata": {"name": "p", "finalizers": ["a", "b"]}});
    let out = smp(pod, json!({"metadata": {"finalizers": ["c", "a"]}}), POD);
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
}

#[test]
fn delete_from_primitive_list_removes_finalizers() {
    let pod = json!({"metadata": {"name": "p", "finalizers": ["a", "b", "c"]}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "$setElementOrder/finalizers": ["a", "c"]}});
    let out = smp(pod, patch, POD);
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    let patch = json!({"spec": {"template": {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "c", "operator": "Exists"}])
    );
}

#[test]
fn patch_replace_directive_replaces_a_map() {
    let patch =
        json!({"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "new": "1"}}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"],
        json!({"new": "1"})
    );
}

#[test]
fn patch_delete_directive_empties_a_map() {
    let patch = json!({"spec": {"template": {"metadata": {"labels": {"$patch": "delete"}}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(out["spec"]["template"]["metadata"]["labels"], json!({}));
}

#[test]
fn patch_replace_item_replaces_a_merge_list() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "x"}
    ]}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        containers(&out),
        &vec![json!({"name": "only", "image": "x"})]
    );
}

#[test]
fn patch_merge_directive_merges() {
    let patch = json!({"metadata": {"$patch": "merge", "labels": {"x": "y"}},
        "spec": {"template": {"spec": {"containers": [{"$patch": "merge", "name": "sidecar", "image": "b2"}]}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(out["metadata"]["labels"], json!({"app": "web", "x": "y"}));
    assert_eq!(names(containers(&out), "name"), vec!["app", "sidecar"]);
    assert_eq!(containers(&out)[1]["image"], "b2");
}

#[test]
fn retain_keys_clears_the_other_members_of_a_union() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));

    let patch = json!({"spec": {"template": {"spec": {"volumes": [
        {"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "data"}
    ]}}}});
    let out = smp(deployment(), patch, DEPLOYMENT);
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}])
    );
}

#[test]
fn retain_keys_must_list_every_patched_key() {
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}});
    let err = strategic_merge_patch(&deployment(), &patch, DEPLOYMENT).expect_err("rejected");
    assert_eq!(
        err,
        PatchError::BadRequest("invalid patch format of retainKeys".to_string())
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc = json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}]}});
    let out = smp(
        svc,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        "io.k8s.api.core.v1.Service",
    );
    assert_eq!(
        out["spec"]["ports"],
        json!([{"name": "http", "port": 80, "targetPort": 9090}, {"name": "https", "port": 443}])
    );
}

#[test]
fn owner_references_merge_by_uid() {
    let pod = json!({"metadata": {"name": "p", "ownerReferences": [{"uid": "1", "name": "rs-a", "kind": "ReplicaSet"}]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "rs-b", "kind": "ReplicaSet"}]}});
    let out = smp(pod, patch, POD);
    assert_eq!(
        names(
            out["metadata"]["ownerReferences"].as_array().expect("list"),
            "uid"
        ),
        vec!["2", "1"]
    );
}

#[test]
fn status_conditions_merge_by_type() {
    let pod = json!({"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}
    ]}});
    let patch = json!({"status": {"$setElementOrder/conditions": [{"type": "PodScheduled"}, {"type": "Ready"}],
        "conditions": [{"type": "Ready", "status": "True"}], "phase": "Running"}});
    let out = smp(pod, patch, POD);
    assert_eq!(
        out["status"]["conditions"][1],
        json!({"type": "Ready", "status": "True"})
    );
    assert_eq!(out["status"]["phase"], "Running");
}

#[test]
fn new_lists_are_taken_from_the_patch_without_directives() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {}});
    let patch = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"$patch": "delete", "name": "b"}]}});
    let out = smp(pod, patch, POD);
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "x"}])
    );
}

#[test]
fn merge_items_must_carry_the_merge_key() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    let err = strategic_merge_patch(&deployment(), &patch, DEPLOYMENT).expect_err("rejected");
    assert_eq!(err.status_code(), 422);
    assert!(
        err.to_string()
            .contains("does not contain declared merge key: name"),
        "{err}"
    );
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"name": "app", "image": "a"}, {"name": "sidecar", "image": "b"}]
    }}}});
    let err = strategic_merge_patch(&deployment(), &patch, DEPLOYMENT).expect_err("rejected");
    assert_eq!(err.status_code(), 400);
}

#[test]
fn malformed_patches_and_unknown_kinds_are_refused() {
    assert_eq!(
        strategic_merge_patch(&deployment(), &json!([]), DEPLOYMENT).map_err(|e| e.status_code()),
        Err(400)
    );
    assert_eq!(
        strategic_merge_patch(&deployment(), &json!({}), "io.example.v1.Widget")
            .map_err(|e| e.status_code()),
        Err(415)
    );
    let bad_directive = json!({"metadata": {"labels": {"$patch": "explode"}}});
    assert_eq!(
        strategic_merge_patch(&deployment(), &bad_directive, DEPLOYMENT)
            .map_err(|e| e.status_code()),
        Err(422)
    );
}

#[test]
fn type_changes_replace_the_value() {
    let out = smp(
        json!({"metadata": {"annotations": {"a": "1"}}}),
        json!({"metadata": {"annotations": "oops"}}),
        POD,
    );
    assert_eq!(out["metadata"]["annotations"], "oops");
}
