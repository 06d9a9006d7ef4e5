//! The scheduler's writes: the binding, the events, and the PodScheduled
//! condition of pods that fit nowhere.

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use wasmpod_api::client::Patch;

use super::{ScheduleError, Scheduler, bound_node};
use crate::controllers::events::EventType;
use crate::controllers::runtime::{Action, ObjectRef};

impl Scheduler {
    /// Binds `pod` to `node`, which the view already holds it on.
    pub(super) async fn bind(
        &self,
        pod: &Pod,
        key: &ObjectRef,
        node: &str,
    ) -> Result<Action, ScheduleError> {
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(key.name.clone()),
                namespace: key.namespace.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.into()),
                ..ObjectReference::default()
            },
        };
        let result = self
            .client
            .create_subresource::<Pod, _>(key.namespace.as_deref(), &key.name, "binding", &binding)
            .await;
        match result {
            Ok(_) => {
                self.pending().remove(key);
                let ns = key.namespace.as_deref().unwrap_or_default();
                self.events.record(
                    pod,
                    EventType::Normal,
                    "Scheduled",
                    format!("Successfully assigned {ns}/{} to {node}", key.name),
                );
                Ok(Action::Done)
            }
            // Bound by someone else, being deleted, or gone: the watch
            // brings the pod's real state into the view.
            Err(e) if e.is_conflict() || e.is_not_found() => {
                tracing::debug!(pod = %key, error = %e, "binding refused");
                Ok(Action::Done)
            }
            Err(source) => {
                // Unless the watch shows the binding happened after all,
                // the node's room is given back.
                let bound = self.pods.get(key).is_some_and(|p| bound_node(&p).is_some());
                if !bound {
                    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
                    let mut state = self.state();
                    if state.placement(key, uid) == Some(node) {
                        state.unplace(key);
                    }
                }
                Err(ScheduleError::Bind {
                    pod: key.clone(),
                    node: node.to_string(),
                    source,
                })
            }
        }
    }

    /// Records that `pod` fits nowhere: a FailedScheduling event when the
    /// reason is new, and the PodScheduled=False condition when the pod
    /// does not show it yet.
    pub(super) async fn report_unschedulable(
        &self,
        pod: &Pod,
        key: &ObjectRef,
        message: String,
    ) -> ScheduleError {
        let previous = self.pending().insert(key.clone(), message.clone());
        if previous.as_deref() != Some(message.as_str()) {
            self.events
                .record(pod, EventType::Warning, "FailedScheduling", message.clone());
        }
        if !shows_unschedulable(pod, &message) {
            let patch = Patch::Strategic(json!({
                "status": {"conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": k8s_openapi::jiff::Timestamp::now()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string(),
                }]}
            }));
            let result = self
                .client
                .patch_status::<Pod>(key.namespace.as_deref(), &key.name, &patch)
                .await;
            if let Err(e) = result {
                tracing::debug!(pod = %key, error = %e, "could not set PodScheduled=False");
            }
        }
        ScheduleError::Unschedulable(message)
    }
}

/// True if the pod already carries PodScheduled=False with `message`.
fn shows_unschedulable(pod: &Pod, message: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c: &&PodCondition| c.type_ == "PodScheduled"))
        .is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        })
}
