//! Writing a pod's status (and finally deleting the pod object) in a task
//! of its own, so a slow or unreachable API server never holds up the
//! containers: the worker publishes what it wants written, the reporter
//! writes the latest of it, retrying with back-off, and skips what the
//! server already has.

use std::time::Duration;

use tokio::sync::watch;
use wasmpod_api::k8s_openapi::api::core::v1::PodStatus;

use super::api::PodApi;
use crate::agent::container_runtime::PodRef;

const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the API should hold for one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub status: Option<PodStatus>,
    /// Every container has stopped after a deletion request: remove the object.
    pub delete: bool,
}

/// Writes `desired` as it changes, until its sender is dropped. `written`
/// is the status the server holds already.
pub async fn run<A: PodApi>(
    api: A,
    pod: PodRef,
    written: Option<PodStatus>,
    mut desired: watch::Receiver<Desired>,
) {
    let mut written = written;
    let mut deleted = false;
    let mut retry: Option<Duration> = None;
    loop {
        let want = desired.borrow_and_update().clone();
        let mut failed = false;
        if let Some(status) = want.status.filter(|s| written.as_ref() != Some(s)) {
            match api.update_pod_status(&pod, &status).await {
                Ok(()) => written = Some(status),
                // The pod is gone or its name belongs to another pod now
                // (422 from the UID test): nothing to retry.
                Err(e) if e.is_not_found() || e.code() == Some(422) => {
                    tracing::debug!(pod = %pod.name, error = %e, "pod status not written");
                    written = Some(status);
                }
                Err(e) => {
                    tracing::warn!(namespace = %pod.namespace, pod = %pod.name, error = %crate::agent::error_chain(&e), "writing pod status");
                    failed = true;
                }
            }
        }
        if want.delete && !deleted && !failed {
            match api.delete_pod(&pod).await {
                Ok(()) => deleted = true,
                // Gone already, or replaced by a pod of the same name.
                Err(e) if e.is_not_found() || e.is_conflict() => deleted = true,
                Err(e) => {
                    tracing::warn!(namespace = %pod.namespace, pod = %pod.name, error = %crate::agent::error_chain(&e), "deleting pod");
                    failed = true;
                }
            }
        }
        if failed {
            let pause = retry.map_or(RETRY_FIRST, |d| (d * 2).min(RETRY_MAX));
            retry = Some(pause);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                changed = desired.changed() => if changed.is_err() { return },
            }
            continue;
        }
        retry = None;
        if desired.changed().await.is_err() {
            return;
        }
    }
}
