//! The Endpoints controller (v1): for every Service with a selector, an
//! Endpoints object of the same name listing the selected pods' addresses
//! per port, as kube-controller-manager's endpoints controller does.
//!
//! [`plan::subsets`] computes what the Endpoints should say; a reconcile
//! per Service compares it with the Endpoints in the cache and writes only
//! a difference, so pod changes that do not move an address cause no
//! writes. Services without a selector are left alone (their Endpoints
//! are managed by hand). When a Service is deleted, its Endpoints are
//! deleted too. Pods without `status.podIP` or not yet bound are skipped,
//! as Kubernetes does; an empty `selector: {}` counts as no selector.
//! Endpoints left over from Services deleted while no controller ran are
//! not collected.

pub mod plan;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta};
use wasmpod_api::client::{ApiClient, ClientError, ListParams};

use crate::controllers::ControllerContext;
use crate::controllers::replicaset::plan::selects;
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, InformerEvent, Informers, ObjectRef, WorkQueue,
};

const WORKERS: usize = 4;

/// A failed reconcile: an API call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("{what} endpoints {key}")]
pub struct EndpointsError {
    what: &'static str,
    key: ObjectRef,
    #[source]
    source: ClientError,
}

struct Ctx {
    client: ApiClient,
    services: Cache<Service>,
    pods: Cache<Pod>,
    endpoints: Cache<Endpoints>,
}

/// Runs the Endpoints controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(Backoff::default());
    let mut services = Informer::<Service>::new(ctx.client.clone(), None, ListParams::default());
    services.enqueue_self(&queue);
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    let service_cache = services.cache();
    pods.enqueue_mapped(&queue, move |event| {
        selecting_services(&service_cache, event)
    });
    let mut endpoints = Informer::<Endpoints>::new(ctx.client.clone(), None, ListParams::default());
    let service_cache = services.cache();
    // Endpoints of a Service with a selector changed by someone else are
    // put back; others are not this controller's.
    endpoints.enqueue_mapped(&queue, move |event| {
        ObjectRef::from_obj(event.object().as_ref())
            .filter(|key| {
                service_cache
                    .get(key)
                    .is_some_and(|s| plan::selector(&s).is_some())
            })
            .into_iter()
            .collect()
    });
    let state = Arc::new(Ctx {
        client: ctx.client.clone(),
        services: services.cache(),
        pods: pods.cache(),
        endpoints: endpoints.cache(),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(services);
    informers.start(pods);
    informers.start(endpoints);
    let controller = Controller::new("endpoints", queue, state).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

/// The Services that select a pod before or after its change.
fn selecting_services(services: &Cache<Service>, event: &InformerEvent<Pod>) -> Vec<ObjectRef> {
    let pod = event.object();
    let Some(ns) = pod.metadata.namespace.as_deref() else {
        return Vec::new();
    };
    let old_labels = match event {
        InformerEvent::Applied { old: Some(old), .. } => old.metadata.labels.clone(),
        _ => None,
    };
    services
        .list_namespace(ns)
        .iter()
        .filter(|s| {
            plan::selector(s).is_some_and(|sel| {
                selects(&sel, pod.metadata.labels.as_ref()) || selects(&sel, old_labels.as_ref())
            })
        })
        .filter_map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, EndpointsError> {
    let namespace = key.namespace.as_deref();
    let current = ctx.endpoints.get(&key);
    let Some(service) = ctx.services.get(&key) else {
        if current.is_some() {
            match ctx
                .client
                .delete::<Endpoints>(namespace, &key.name, &DeleteOptions::default())
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(source) => {
                    return Err(EndpointsError {
                        what: "deleting",
                        key,
                        source,
                    });
                }
            }
        }
        return Ok(Action::done());
    };
    let Some(selector) = plan::selector(&service) else {
        return Ok(Action::done());
    };
    let pods = ctx.pods.list_namespace(namespace.unwrap_or_default());
    let subsets = plan::subsets(&service, &selector, &pods);
    let labels = plan::labels(&service);
    let labels = (!labels.is_empty()).then_some(labels);
    let subsets_value = (!subsets.is_empty()).then_some(subsets);

    match current {
        Some(ep)
            if ep.subsets.as_ref().filter(|s| !s.is_empty()) == subsets_value.as_ref()
                && ep.metadata.labels.as_ref().filter(|l| !l.is_empty()) == labels.as_ref() =>
        {
            Ok(Action::done())
        }
        Some(ep) => {
            let mut updated = (*ep).clone();
            updated.metadata.labels = labels;
            updated.subsets = subsets_value;
            ctx.client
                .replace(namespace, &key.name, &updated)
                .await
                .map(|_| Action::done())
                .map_err(|source| EndpointsError {
                    what: "updating",
                    key,
                    source,
                })
        }
        None => {
            let ep = Endpoints {
                metadata: ObjectMeta {
                    name: Some(key.name.clone()),
                    namespace: key.namespace.clone(),
                    labels,
                    ..ObjectMeta::default()
                },
                subsets: subsets_value,
            };
            match ctx.client.create(namespace, &ep).await {
                Ok(_) => Ok(Action::done()),
                Err(source) => Err(EndpointsError {
                    what: "creating",
                    key,
                    source,
                }),
            }
        }
    }
}
