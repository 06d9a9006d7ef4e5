//! What a pod worker needs from the API server, as a trait: the real
//! client implements it over HTTP and the worker's tests use an in-memory
//! fake, so the lifecycle plumbing is tested without a server.

use std::future::Future;

use serde_json::json;
use wasmpod_api::k8s_openapi::api::core::v1::{
    ConfigMap, Event, EventSource, Namespace, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, Pod, PodStatus, Secret,
};
use wasmpod_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use wasmpod_api::k8s_openapi::jiff::Timestamp;

use crate::agent::client::{ApiClient, ClientError, Patch};
use crate::agent::container_runtime::PodRef;
use crate::agent::lifecycle::Record;

pub trait PodApi: Clone + Send + Sync + 'static {
    /// Replaces the pod's status, only if the pod is still the one with
    /// the reference's UID.
    fn update_pod_status(
        &self,
        pod: &PodRef,
        status: &PodStatus,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// Removes the pod object at once (grace period 0), only if it is still
    /// the one with the reference's UID.
    fn delete_pod(&self, pod: &PodRef) -> impl Future<Output = Result<(), ClientError>> + Send;

    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<ConfigMap, ClientError>> + Send;

    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Secret, ClientError>> + Send;

    fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<PersistentVolumeClaim, ClientError>> + Send;

    fn persistent_volume(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<PersistentVolume, ClientError>> + Send;

    fn create_event(&self, event: &Event) -> impl Future<Output = Result<(), ClientError>> + Send;

    /// The pod's Namespace (its labels carry network policy).
    fn namespace(&self, name: &str) -> impl Future<Output = Result<Namespace, ClientError>> + Send;
}

impl PodApi for ApiClient {
    async fn update_pod_status(&self, pod: &PodRef, status: &PodStatus) -> Result<(), ClientError> {
        // A JSON patch whose `test` fails (422) when the name now belongs
        // to another pod.
        let patch = Patch::Json(json!([
            {"op": "test", "path": "/metadata/uid", "value": pod.uid},
            {"op": "add", "path": "/status", "value": status},
        ]));
        self.patch_status::<Pod>(Some(&pod.namespace), &pod.name, &patch)
            .await
            .map(|_| ())
    }

    async fn delete_pod(&self, pod: &PodRef) -> Result<(), ClientError> {
        self.delete_now::<Pod>(Some(&pod.namespace), &pod.name, &pod.uid)
            .await
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<ConfigMap, ClientError> {
        self.get(Some(namespace), name).await
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Secret, ClientError> {
        self.get(Some(namespace), name).await
    }

    async fn persistent_volume_claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<PersistentVolumeClaim, ClientError> {
        self.get(Some(namespace), name).await
    }

    async fn persistent_volume(&self, name: &str) -> Result<PersistentVolume, ClientError> {
        self.get(None, name).await
    }

    async fn create_event(&self, event: &Event) -> Result<(), ClientError> {
        self.create(event.metadata.namespace.as_deref(), event)
            .await
            .map(|_| ())
    }

    async fn namespace(&self, name: &str) -> Result<Namespace, ClientError> {
        self.get(None, name).await
    }
}

/// The Event the kubelet of `node` records about a pod.
pub fn pod_event(pod: &PodRef, node: &str, record: &Record, now: Timestamp) -> Event {
    let nanos = now.as_nanosecond();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", pod.name, nanos)),
            namespace: Some(pod.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()),
            ..ObjectReference::default()
        },
        reason: Some(record.reason.clone()),
        message: Some(record.message.clone()),
        type_: Some(if record.warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node.into()),
        }),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}
