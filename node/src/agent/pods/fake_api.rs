//! An in-memory [`PodApi`] for the worker's tests: it records status
//! writes, deletions and events, and serves ConfigMaps, Secrets,
//! PersistentVolumeClaims and PersistentVolumes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use wasmpod_api::k8s_openapi::api::core::v1::{
    ConfigMap, Event, Namespace, PersistentVolume, PersistentVolumeClaim, PodStatus, Secret,
};

use super::api::PodApi;
use crate::agent::client::ClientError;
use crate::agent::container_runtime::PodRef;

#[derive(Default)]
struct Inner {
    statuses: Vec<PodStatus>,
    deleted: Vec<PodRef>,
    events: Vec<Event>,
    config_maps: HashMap<String, ConfigMap>,
    secrets: HashMap<String, Secret>,
    claims: HashMap<String, PersistentVolumeClaim>,
    volumes: HashMap<String, PersistentVolume>,
    namespaces: HashMap<String, Namespace>,
    /// Status writes still to fail, to exercise retries.
    failing_writes: usize,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
}

fn not_found(what: &str) -> ClientError {
    ClientError::Api {
        method: Method::GET,
        path: what.into(),
        code: 404,
        reason: "NotFound".into(),
        message: format!("{what} not found"),
    }
}

impl FakeApi {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn statuses(&self) -> Vec<PodStatus> {
        self.inner().statuses.clone()
    }

    pub fn last_status(&self) -> Option<PodStatus> {
        self.inner().statuses.last().cloned()
    }

    pub fn deleted(&self) -> Vec<PodRef> {
        self.inner().deleted.clone()
    }

    pub fn events(&self) -> Vec<Event> {
        self.inner().events.clone()
    }

    pub fn add_config_map(&self, cm: ConfigMap) {
        let name = cm.metadata.name.clone().unwrap_or_default();
        self.inner().config_maps.insert(name, cm);
    }

    pub fn add_secret(&self, secret: Secret) {
        let name = secret.metadata.name.clone().unwrap_or_default();
        self.inner().secrets.insert(name, secret);
    }

    pub fn add_claim(&self, claim: PersistentVolumeClaim) {
        let name = claim.metadata.name.clone().unwrap_or_default();
        self.inner().claims.insert(name, claim);
    }

    pub fn add_volume(&self, volume: PersistentVolume) {
        let name = volume.metadata.name.clone().unwrap_or_default();
        self.inner().volumes.insert(name, volume);
    }

    pub fn add_namespace(&self, namespace: Namespace) {
        let name = namespace.metadata.name.clone().unwrap_or_default();
        self.inner().namespaces.insert(name, namespace);
    }

    pub fn fail_next_status_writes(&self, n: usize) {
        self.inner().failing_writes = n;
    }
}

impl PodApi for FakeApi {
    async fn update_pod_status(
        &self,
        _pod: &PodRef,
        status: &PodStatus,
    ) -> Result<(), ClientError> {
        let mut inner = self.inner();
        if inner.failing_writes > 0 {
            inner.failing_writes -= 1;
            return Err(ClientError::Api {
                method: Method::PATCH,
                path: "pods/status".into(),
                code: 503,
                reason: "ServiceUnavailable".into(),
                message: "try again".into(),
            });
        }
        inner.statuses.push(status.clone());
        Ok(())
    }

    async fn delete_pod(&self, pod: &PodRef) -> Result<(), ClientError> {
        self.inner().deleted.push(pod.clone());
        Ok(())
    }

    async fn config_map(&self, _namespace: &str, name: &str) -> Result<ConfigMap, ClientError> {
        self.inner()
            .config_maps
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    async fn secret(&self, _namespace: &str, name: &str) -> Result<Secret, ClientError> {
        self.inner()
            .secrets
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    async fn persistent_volume_claim(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<PersistentVolumeClaim, ClientError> {
        self.inner()
            .claims
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    async fn persistent_volume(&self, name: &str) -> Result<PersistentVolume, ClientError> {
        self.inner()
            .volumes
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    async fn create_event(&self, event: &Event) -> Result<(), ClientError> {
        self.inner().events.push(event.clone());
        Ok(())
    }

    async fn namespace(&self, name: &str) -> Result<Namespace, ClientError> {
        self.inner()
            .namespaces
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))
    }
}
