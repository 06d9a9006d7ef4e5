//! Validation: the field rules Kubernetes enforces, one function per served
//! kind (bound to the kinds in `object.rs`), each taking the object and, on
//! update, the stored object, and returning every violated rule as a
//! `FieldError` with the field path Kubernetes prints.
//!
//! Metadata rules common to all kinds live in `meta` and are applied by
//! `object::admit`; the helpers the kinds share (names, quantities, label
//! selectors, the pod spec rules of Pods and workload templates) live in
//! their own modules and are public for the rest of wasmpod to reuse.

mod batch;
mod cluster;
mod config;
mod controller;
mod cron_job;
pub mod diff;
pub mod field;
pub mod meta;
pub mod names;
pub mod pod;
pub mod quantity;
mod rbac;
pub mod schedule;
pub mod selector;
mod service;
mod stateful_set;
mod storage;
mod storage_class;
#[cfg(test)]
mod testing;
mod workloads;

pub use self::batch::job;
pub use self::cluster::{event, lease, namespace, node, service_account};
pub use self::config::{config_map, secret};
pub use self::cron_job::cron_job;
pub use self::pod::pod;
pub use self::rbac::{cluster_role, cluster_role_binding, role, role_binding};
pub use self::service::{endpoints, service};
pub use self::stateful_set::{controller_revision, stateful_set};
pub use self::storage::{persistent_volume, persistent_volume_claim};
pub use self::storage_class::storage_class;
pub use self::workloads::{daemon_set, deployment, replica_set, replication_controller};

#[cfg(test)]
mod admission_tests {
    use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
    use serde_json::json;

    use crate::object::{AdmitError, admit};

    fn deployment_manifest(template_app: &str) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": template_app}},
                    "spec": {"containers": [{"name": "app", "image": "file:///srv/web.wasm"}]}
                }
            }
        })
    }

    #[test]
    fn admitted_deployment_carries_kubernetes_defaults() {
        let out = match admit::<Deployment>(deployment_manifest("web"), None) {
            Ok(v) => v,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let pod_spec = &out["spec"]["template"]["spec"];
        assert_eq!(pod_spec["restartPolicy"], "Always");
        assert_eq!(pod_spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            pod_spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
    }

    #[test]
    fn admission_reports_template_label_mismatch_with_kubernetes_path() {
        match admit::<Deployment>(deployment_manifest("api"), None) {
            Err(AdmitError::Invalid(errors)) => {
                let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
                assert_eq!(
                    rendered,
                    [
                        "spec.template.metadata.labels: Invalid value: \"app=api\": `selector` does not match template `labels`"
                    ]
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn admitted_pod_update_may_only_change_images() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}]}
        });
        let stored = match admit::<Pod>(pod.clone(), None) {
            Ok(v) => v,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(stored["status"]["phase"], "Pending");
        assert_eq!(stored["spec"]["serviceAccountName"], "default");

        let mut new_image = stored.clone();
        new_image["spec"]["containers"][0]["image"] = json!("app:v2");
        assert!(admit::<Pod>(new_image, Some(&stored)).is_ok());

        let mut new_command = stored.clone();
        new_command["spec"]["containers"][0]["command"] = json!(["/bin/other"]);
        match admit::<Pod>(new_command, Some(&stored)) {
            Err(AdmitError::Invalid(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].field, "spec");
                assert!(
                    errors[0]
                        .message
                        .contains("pod updates may not change fields other than")
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
