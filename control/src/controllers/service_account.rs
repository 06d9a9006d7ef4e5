//! The ServiceAccount controller: every Active namespace has a ServiceAccount
//! named `default` (created when missing, again when deleted), as
//! kube-controller-manager's serviceaccount controller ensures.
//!
//! Keys are namespace names; [`needs_default`] is the decision, the
//! reconcile only creates.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wasmpod_api::client::{ApiClient, ClientError, ListParams};

use crate::controllers::ControllerContext;
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, Informers, ObjectRef, WorkQueue,
};

/// The name of the ServiceAccount every namespace gets.
pub const DEFAULT: &str = "default";

const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(60),
};

#[derive(Debug, thiserror::Error)]
#[error("creating the default ServiceAccount in namespace {namespace}")]
pub struct ServiceAccountError {
    namespace: String,
    #[source]
    source: ClientError,
}

struct Ctx {
    client: ApiClient,
    namespaces: Cache<Namespace>,
    service_accounts: Cache<ServiceAccount>,
}

/// Whether `namespace` lacks its default ServiceAccount and may get one:
/// it is Active (not being deleted) and `existing` is absent.
pub fn needs_default(namespace: &Namespace, existing: Option<&ServiceAccount>) -> bool {
    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    !terminating && existing.is_none()
}

/// Runs the ServiceAccount controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let mut namespaces =
        Informer::<Namespace>::new(ctx.client.clone(), None, ListParams::default());
    namespaces.enqueue_self(&queue);
    let mut service_accounts =
        Informer::<ServiceAccount>::new(ctx.client.clone(), None, ListParams::default());
    service_accounts.enqueue_mapped(&queue, |event| {
        let meta = &event.object().metadata;
        match (meta.name.as_deref(), meta.namespace.as_deref()) {
            (Some(DEFAULT), Some(ns)) => vec![ObjectRef::new(None, ns)],
            _ => Vec::new(),
        }
    });
    let controller = Arc::new(Ctx {
        client: ctx.client.clone(),
        namespaces: namespaces.cache(),
        service_accounts: service_accounts.cache(),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(namespaces);
    informers.start(service_accounts);
    let controller = Controller::new("serviceaccount", queue, controller).concurrency(2);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, ServiceAccountError> {
    let Some(namespace) = ctx.namespaces.get(&key) else {
        return Ok(Action::done());
    };
    let existing = ctx
        .service_accounts
        .get(&ObjectRef::new(Some(&key.name), DEFAULT));
    if !needs_default(&namespace, existing.as_deref()) {
        return Ok(Action::done());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            namespace: Some(key.name.clone()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match ctx.client.create(Some(&key.name), &account).await {
        Ok(_) => {
            tracing::debug!(namespace = %key.name, "created the default ServiceAccount");
            Ok(Action::done())
        }
        // Created meanwhile, or the namespace started terminating (403) or
        // went away: the informers bring whatever happens next.
        Err(e) if e.is_already_exists() || matches!(e.code(), Some(403 | 404)) => {
            Ok(Action::done())
        }
        Err(source) => Err(ServiceAccountError {
            namespace: key.name,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::NamespaceStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn namespace(phase: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("n".into()),
                ..ObjectMeta::default()
            },
            status: Some(NamespaceStatus {
                phase: Some(phase.into()),
                ..NamespaceStatus::default()
            }),
            ..Namespace::default()
        }
    }

    #[test]
    fn an_active_namespace_without_a_default_service_account_gets_one() {
        assert!(needs_default(&namespace("Active"), None));
        assert!(needs_default(&Namespace::default(), None));
    }

    #[test]
    fn an_existing_default_service_account_is_enough() {
        let sa = ServiceAccount::default();
        assert!(!needs_default(&namespace("Active"), Some(&sa)));
    }

    #[test]
    fn a_terminating_namespace_gets_none() {
        assert!(!needs_default(&namespace("Terminating"), None));
        let mut deleting = namespace("Active");
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!needs_default(&deleting, None));
    }
}
