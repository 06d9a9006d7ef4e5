//! The kinds the garbage collector follows, and the slim form in which it
//! watches them: only the metadata that ownership needs, so the graph of a
//! large cluster stays small.
//!
//! The API client is typed, so each kind is one [`Typed`] entry of
//! [`KINDS`]; following another kind is one more line there.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::{apps, batch, coordination, core, rbac};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::{ListableResource, Metadata, Resource};
use serde::{Deserialize, Deserializer};
use wasmpod_api::client::{ApiClient, ClientError, ListParams, Patch};

use super::graph::Graph;
use crate::controllers::runtime::{Informer, InformerEvent, Informers, ObjectRef, WorkQueue};

/// Every kind whose objects can own or be owned, as far as the collector
/// knows. An ownerReference to any other kind is never treated as dangling.
pub static KINDS: &[&dyn GcKind] = &[
    &Typed::<core::v1::Pod>::KIND,
    &Typed::<core::v1::ConfigMap>::KIND,
    &Typed::<core::v1::Secret>::KIND,
    &Typed::<core::v1::Service>::KIND,
    &Typed::<core::v1::Endpoints>::KIND,
    &Typed::<core::v1::ServiceAccount>::KIND,
    &Typed::<core::v1::PersistentVolumeClaim>::KIND,
    &Typed::<core::v1::ReplicationController>::KIND,
    &Typed::<core::v1::Node>::KIND,
    &Typed::<apps::v1::Deployment>::KIND,
    &Typed::<apps::v1::ReplicaSet>::KIND,
    &Typed::<apps::v1::StatefulSet>::KIND,
    &Typed::<apps::v1::DaemonSet>::KIND,
    &Typed::<apps::v1::ControllerRevision>::KIND,
    &Typed::<batch::v1::Job>::KIND,
    &Typed::<batch::v1::CronJob>::KIND,
    &Typed::<coordination::v1::Lease>::KIND,
    &Typed::<rbac::v1::Role>::KIND,
    &Typed::<rbac::v1::RoleBinding>::KIND,
];

/// The kind an ownerReference names (matched by group and kind; wasmpod
/// serves one version per group).
pub fn find(api_version: &str, kind: &str) -> Option<&'static dyn GcKind> {
    let (group, _) = wasmpod_api::registry::split_api_version(api_version);
    KINDS
        .iter()
        .copied()
        .find(|k| k.group() == group && k.kind() == kind)
}

/// What the collector does with one kind, untyped.
pub trait GcKind: Send + Sync {
    fn group(&self) -> &'static str;
    fn kind(&self) -> &'static str;
    /// Whether objects of the kind live in a namespace (per the registry).
    fn namespaced(&self) -> bool;
    /// Starts watching the kind into `graph`, adding the keys each change
    /// makes worth a look to `queue`.
    fn start(
        &'static self,
        client: &ApiClient,
        graph: &Arc<Mutex<Graph>>,
        queue: &WorkQueue<ObjectRef>,
        informers: &mut Informers,
    );
    /// The metadata of one object, read from the API (not a cache).
    fn get<'a>(
        &'a self,
        client: &'a ApiClient,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ObjectMeta>, ClientError>>;
    fn delete<'a>(
        &'a self,
        client: &'a ApiClient,
        namespace: Option<&'a str>,
        name: &'a str,
        options: &'a DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ClientError>>;
    fn patch<'a>(
        &'a self,
        client: &'a ApiClient,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a Patch,
    ) -> BoxFuture<'a, Result<(), ClientError>>;
}

impl std::fmt::Debug for dyn GcKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// [`GcKind`] for the `k8s-openapi` type `K`.
pub struct Typed<K>(PhantomData<fn() -> K>);

impl<K> Typed<K> {
    const KIND: Self = Self(PhantomData);
}

impl<K> GcKind for Typed<K>
where
    K: ListableResource + Send + Sync + 'static,
{
    fn group(&self) -> &'static str {
        K::GROUP
    }

    fn kind(&self) -> &'static str {
        K::KIND
    }

    fn namespaced(&self) -> bool {
        wasmpod_api::registry::by_kind(K::API_VERSION, K::KIND).is_some_and(|r| r.namespaced)
    }

    fn start(
        &'static self,
        client: &ApiClient,
        graph: &Arc<Mutex<Graph>>,
        queue: &WorkQueue<ObjectRef>,
        informers: &mut Informers,
    ) {
        let mut informer = Informer::<Slim<K>>::new(client.clone(), None, ListParams::default());
        let graph = Arc::clone(graph);
        informer.enqueue_mapped(queue, move |event| {
            let mut graph = super::graph::lock(&graph);
            match event {
                InformerEvent::Applied { old, new } => {
                    graph.apply(self, Arc::clone(&new.metadata));
                    graph.keys(
                        old.as_ref().map(|o| o.metadata.as_ref()),
                        &new.metadata,
                        false,
                    )
                }
                InformerEvent::Deleted(old) => {
                    graph.remove(&old.metadata);
                    graph.keys(None, &old.metadata, true)
                }
            }
        });
        informers.start(informer);
    }

    fn get<'a>(
        &'a self,
        client: &'a ApiClient,
        namespace: Option<&'a str>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<ObjectMeta>, ClientError>> {
        Box::pin(async move {
            let obj = client.get::<Slim<K>>(namespace, name).await?;
            Ok(obj.metadata)
        })
    }

    fn delete<'a>(
        &'a self,
        client: &'a ApiClient,
        namespace: Option<&'a str>,
        name: &'a str,
        options: &'a DeleteOptions,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(client.delete::<K>(namespace, name, options))
    }

    fn patch<'a>(
        &'a self,
        client: &'a ApiClient,
        namespace: Option<&'a str>,
        name: &'a str,
        patch: &'a Patch,
    ) -> BoxFuture<'a, Result<(), ClientError>> {
        Box::pin(async move {
            client
                .patch::<Slim<K>>(namespace, name, patch)
                .await
                .map(|_| ())
        })
    }
}

/// An object of kind `K` decoded down to the metadata ownership needs:
/// name, namespace, uid, resourceVersion, deletionTimestamp, finalizers
/// and ownerReferences. Everything else (spec, status, labels,
/// annotations) is skipped while decoding.
pub struct Slim<K> {
    pub metadata: Arc<ObjectMeta>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Slim<K> {
    pub fn new(metadata: ObjectMeta) -> Self {
        Self {
            metadata: Arc::new(metadata),
            kind: PhantomData,
        }
    }
}

impl<K: Resource> Resource for Slim<K> {
    const API_VERSION: &'static str = K::API_VERSION;
    const GROUP: &'static str = K::GROUP;
    const KIND: &'static str = K::KIND;
    const VERSION: &'static str = K::VERSION;
    const URL_PATH_SEGMENT: &'static str = K::URL_PATH_SEGMENT;
    type Scope = K::Scope;
}

impl<K: ListableResource> ListableResource for Slim<K> {
    const LIST_KIND: &'static str = K::LIST_KIND;
}

impl<K: Resource> Metadata for Slim<K> {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        Arc::make_mut(&mut self.metadata)
    }
}

impl<'de, K> Deserialize<'de> for Slim<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            name: Option<String>,
            namespace: Option<String>,
            uid: Option<String>,
            resource_version: Option<String>,
            deletion_timestamp: Option<Time>,
            finalizers: Option<Vec<String>>,
            owner_references: Option<Vec<OwnerReference>>,
        }
        #[derive(Deserialize)]
        struct Object {
            metadata: Option<Meta>,
        }
        let Object { metadata } = Object::deserialize(deserializer)?;
        let m = metadata.unwrap_or_default();
        Ok(Self::new(ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            owner_references: m.owner_references,
            ..ObjectMeta::default()
        }))
    }
}
