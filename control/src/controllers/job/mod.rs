//! The Job controller (batch/v1): runs a Job's pods to completion, as
//! kube-controller-manager's job controller does.
//!
//! The decision is [`plan::plan`] (pure, unit-tested): from the Job and the
//! pods it controls it derives the pods to create or delete and the status
//! (active, ready, succeeded, failed, terminating, startTime,
//! completionTime, completedIndexes and the conditions SuccessCriteriaMet,
//! Complete, FailureTarget, Failed, Suspended). This module wires it to the
//! API: informers on Jobs and pods, a reconcile per Job, and in-memory
//! *expectations* so a pod created or deleted a moment ago but not yet seen
//! by the pod informer is not created or deleted twice.
//!
//! Supported: completions, parallelism, backoffLimit (failed pods, plus
//! container restarts under restartPolicy OnFailure), activeDeadlineSeconds,
//! ttlSecondsAfterFinished, completionMode Indexed, suspend. Finished pods
//! are kept. Not supported (stored, no effect): podFailurePolicy,
//! successPolicy, backoffLimitPerIndex, maxFailedIndexes,
//! podReplacementPolicy, managedBy; pods are recreated after a failure at
//! once (no exponential delay) and counted from the pods that exist rather
//! than with tracking finalizers (counts never decrease, so deleting a
//! finished pod does not undo its count).

mod plan;
mod pod;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use k8s_openapi::jiff::Timestamp;
use wasmpod_api::client::{ApiClient, ClientError, ListParams};

use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, Informers, ObjectRef, WorkQueue,
};

pub use self::plan::{Plan, plan};
pub use self::pod::{COMPLETION_INDEX_ENV, pod_for};

/// The annotation (and label) holding an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

const COMPONENT: &str = "job-controller";
const WORKERS: usize = 8;
/// How long a pod created or deleted is waited for in the informer before
/// the Job is reconciled without it (a lost watch event must not stall it).
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);
const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(30),
};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("creating a pod for job {job}")]
    CreatePod {
        job: ObjectRef,
        #[source]
        source: ClientError,
    },
    #[error("deleting pod {pod} of job {job}")]
    DeletePod {
        job: ObjectRef,
        pod: String,
        #[source]
        source: ClientError,
    },
    #[error("writing the status of job {job}")]
    Status {
        job: ObjectRef,
        #[source]
        source: ClientError,
    },
    #[error("deleting finished job {job}")]
    DeleteJob {
        job: ObjectRef,
        #[source]
        source: ClientError,
    },
}

/// Pods this controller created or deleted that the pod cache has not
/// reflected yet.
#[derive(Debug)]
struct Expectation {
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Instant,
}

struct JobController {
    client: ApiClient,
    jobs: Cache<Job>,
    pods: Cache<Pod>,
    expectations: Mutex<HashMap<ObjectRef, Expectation>>,
    events: EventRecorder,
}

impl JobController {
    fn expectations(&self) -> MutexGuard<'_, HashMap<ObjectRef, Expectation>> {
        self.expectations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the pod cache already shows every pod created or deleted for
    /// `key` (or the wait timed out).
    fn satisfied(&self, key: &ObjectRef, pods: &[Arc<Pod>]) -> bool {
        let mut all = self.expectations();
        let Some(e) = all.get(key) else {
            return true;
        };
        let present = |name: &String| {
            pods.iter()
                .find(|p| p.metadata.name.as_ref() == Some(name))
                .map(|p| p.metadata.deletion_timestamp.is_some())
        };
        let done = e.created.iter().all(|n| present(n).is_some())
            && e.deleted.iter().all(|n| present(n).is_none_or(|gone| gone));
        if done || e.since.elapsed() > EXPECTATION_TIMEOUT {
            all.remove(key);
            return true;
        }
        false
    }

    fn expect(&self, key: &ObjectRef, created: Vec<String>, deleted: Vec<String>) {
        if created.is_empty() && deleted.is_empty() {
            return;
        }
        self.expectations().insert(
            key.clone(),
            Expectation {
                created: created.into_iter().collect(),
                deleted: deleted.into_iter().collect(),
                since: Instant::now(),
            },
        );
    }

    /// The pods whose controller is the Job with `uid`.
    fn owned_pods(&self, namespace: &str, uid: &str) -> Vec<Arc<Pod>> {
        self.pods.filter(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata.owner_references.as_ref().is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.controller == Some(true) && r.kind == "Job" && r.uid == uid)
                })
        })
    }
}

/// Runs the Job controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let mut jobs = Informer::<Job>::new(ctx.client.clone(), None, ListParams::default());
    jobs.enqueue_self(&queue);
    let mut pods = Informer::<Pod>::new(ctx.client.clone(), None, ListParams::default());
    pods.enqueue_controller(&queue, "Job");
    let controller = Arc::new(JobController {
        client: ctx.client.clone(),
        jobs: jobs.cache(),
        pods: pods.cache(),
        expectations: Mutex::default(),
        events: ctx.event_recorder(COMPONENT),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(jobs);
    informers.start(pods);
    let controller = Controller::new("job", queue, controller).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

async fn reconcile(key: ObjectRef, ctx: Arc<JobController>) -> Result<Action, JobError> {
    let Some(job) = ctx.jobs.get(&key) else {
        ctx.expectations().remove(&key);
        return Ok(Action::done());
    };
    let (Some(namespace), Some(uid)) = (key.namespace.as_deref(), job.metadata.uid.as_deref())
    else {
        return Ok(Action::done());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::done());
    }
    let pods = ctx.owned_pods(namespace, uid);
    if !ctx.satisfied(&key, &pods) {
        // The pod informer's events for those pods enqueue the Job again.
        return Ok(Action::requeue_after(EXPECTATION_TIMEOUT));
    }
    let refs: Vec<&Pod> = pods.iter().map(AsRef::as_ref).collect();
    let decision = plan(&job, &refs, Timestamp::now());

    let (deleted, delete_result) = delete_pods(&ctx, &key, &decision.delete).await;
    let (created, create_result) = create_pods(&ctx, &key, &job, &decision.create).await;
    ctx.expect(&key, created, deleted);
    delete_result?;
    create_result?;

    let current = job.status.clone().unwrap_or_default();
    if decision.status != current {
        record_transitions(&ctx.events, &job, &decision);
        let mut updated = (*job).clone();
        updated.status = Some(decision.status.clone());
        ctx.client
            .replace_status(Some(namespace), &key.name, &updated)
            .await
            .map_err(|source| JobError::Status {
                job: key.clone(),
                source,
            })?;
    }

    if decision.delete_job {
        let options = DeleteOptions {
            propagation_policy: Some("Background".into()),
            preconditions: Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Preconditions {
                    uid: Some(uid.into()),
                    resource_version: None,
                },
            ),
            ..DeleteOptions::default()
        };
        match ctx
            .client
            .delete::<Job>(Some(namespace), &key.name, &options)
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(source) => {
                return Err(JobError::DeleteJob {
                    job: key.clone(),
                    source,
                });
            }
        }
        return Ok(Action::done());
    }
    Ok(decision.requeue_after.map_or(Action::done(), |d| {
        Action::requeue_after(d + Duration::from_millis(100))
    }))
}

/// Deletes `names`; returns the names whose deletion was sent, and the
/// error that stopped it early.
async fn delete_pods(
    ctx: &JobController,
    key: &ObjectRef,
    names: &[String],
) -> (Vec<String>, Result<(), JobError>) {
    let mut deleted = Vec::with_capacity(names.len());
    for name in names {
        match ctx
            .client
            .delete::<Pod>(key.namespace.as_deref(), name, &DeleteOptions::default())
            .await
        {
            Ok(()) => deleted.push(name.clone()),
            Err(e) if e.is_not_found() => {}
            Err(source) => {
                let error = JobError::DeletePod {
                    job: key.clone(),
                    pod: name.clone(),
                    source,
                };
                return (deleted, Err(error));
            }
        }
    }
    (deleted, Ok(()))
}

/// Creates one pod per entry of `indexes`; returns the created pods' names,
/// and the error that stopped it early.
async fn create_pods(
    ctx: &JobController,
    key: &ObjectRef,
    job: &Job,
    indexes: &[Option<i32>],
) -> (Vec<String>, Result<(), JobError>) {
    let mut created = Vec::with_capacity(indexes.len());
    for index in indexes {
        let pod = pod_for(job, *index);
        match ctx.client.create(key.namespace.as_deref(), &pod).await {
            Ok(pod) => {
                let name = pod.metadata.name.unwrap_or_default();
                ctx.events.record(
                    job,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                );
                created.push(name);
            }
            Err(source) => {
                ctx.events.record(
                    job,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating: {source}"),
                );
                let error = JobError::CreatePod {
                    job: key.clone(),
                    source,
                };
                return (created, Err(error));
            }
        }
    }
    (created, Ok(()))
}

/// Events for a Job that finishes, as Kubernetes records them.
fn record_transitions(events: &EventRecorder, job: &Job, decision: &Plan) {
    let old = job.status.clone().unwrap_or_default();
    if plan::finished_at(&old).is_some() {
        return;
    }
    let Some(conditions) = decision.status.conditions.as_ref() else {
        return;
    };
    for c in conditions.iter().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            plan::COMPLETE => {
                events.record(job, EventType::Normal, "Completed", "Job completed".into());
            }
            plan::FAILED => events.record(
                job,
                EventType::Warning,
                c.reason.as_deref().unwrap_or("Failed"),
                c.message.clone().unwrap_or_default(),
            ),
            _ => {}
        }
    }
}
