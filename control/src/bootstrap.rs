//! What exists from a cluster's first start: the system namespaces, the
//! `kubernetes` Service in `default` that stands for the API server, and
//! the default StorageClass `local-path` (node-local directories, see
//! `controllers::persistent_volume`).

use serde_json::json;
use wasmpod_api::ApiError;
use wasmpod_api::registry::by_kind;

use crate::apiserver::ApiState;
use crate::apiserver::admission::KUBERNETES_SERVICE_IP;
use crate::apiserver::objects::create_object;
use crate::controllers::persistent_volume::{LOCAL_PATH_CLASS, LOCAL_PATH_PROVISIONER};

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates whatever of the initial objects is missing. Safe to run at every
/// start and from several API servers at once.
pub async fn ensure(state: &ApiState, api_port: u16) -> Result<(), ApiError> {
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        create_if_missing(state, "Namespace", "", obj).await?;
    }
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "kubernetes", "labels": { "component": "apiserver", "provider": "kubernetes" } },
        "spec": {
            "clusterIP": KUBERNETES_SERVICE_IP,
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port }],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
    });
    // Its Endpoints are left to the networking layer: the API often listens
    // on loopback, which is not a valid endpoint address.
    create_if_missing(state, "Service", "default", service).await?;
    // Created once and never overwritten: an administrator may change the
    // default class or remove the annotation.
    let class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": LOCAL_PATH_CLASS,
            "annotations": { "storageclass.kubernetes.io/is-default-class": "true" },
        },
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    create_if_missing(state, "StorageClass", "", class).await
}

async fn create_if_missing(
    state: &ApiState,
    kind: &str,
    ns: &str,
    obj: serde_json::Value,
) -> Result<(), ApiError> {
    let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
    let resource = by_kind(api_version, kind)
        .ok_or_else(|| ApiError::Internal(format!("kind {kind} is not registered")))?;
    match create_object(state, resource, ns, obj, false).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
