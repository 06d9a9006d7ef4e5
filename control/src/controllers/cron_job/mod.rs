//! The CronJob controller (batch/v1): creates a Job for each run of a
//! CronJob's schedule, as kube-controller-manager's cronjob controller
//! does.
//!
//! The decision is [`plan::plan`] (pure, unit-tested); [`times`] computes
//! run times. Jobs are named `<cronjob>-<scheduled time in minutes>`, so a
//! run is created at most once even if a status write is lost. Supported:
//! schedule (five fields and descriptors, as validation parses them),
//! timeZone (from the host's zoneinfo database; UTC when unset),
//! concurrencyPolicy Allow/Forbid/Replace, suspend,
//! startingDeadlineSeconds, successful/failedJobsHistoryLimit, and status
//! active, lastScheduleTime and lastSuccessfulTime. Only the most recent
//! missed run is started, as Kubernetes does.

mod plan;
#[cfg(test)]
mod tests;
mod times;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;
use wasmpod_api::client::{ApiClient, ClientError, ListParams};
use wasmpod_api::validation::schedule::parse_schedule;

use crate::controllers::ControllerContext;
use crate::controllers::events::{EventRecorder, EventType};
use crate::controllers::runtime::{
    Action, Backoff, Cache, Controller, Informer, Informers, ObjectRef, WorkQueue,
};

pub use self::plan::{Plan, SCHEDULED_TIMESTAMP, job_for, job_name, plan};

const COMPONENT: &str = "cronjob-controller";
const WORKERS: usize = 4;
const ZONEINFO: &str = "/usr/share/zoneinfo";
/// How often a CronJob whose schedule or time zone cannot be used is
/// looked at again.
const RECHECK: Duration = Duration::from_secs(300);
const RETRY_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(30),
};

#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    #[error("creating job {job} of cronjob {cron_job}")]
    CreateJob {
        cron_job: ObjectRef,
        job: String,
        #[source]
        source: ClientError,
    },
    #[error("deleting job {job} of cronjob {cron_job}")]
    DeleteJob {
        cron_job: ObjectRef,
        job: String,
        #[source]
        source: ClientError,
    },
    #[error("writing the status of cronjob {cron_job}")]
    Status {
        cron_job: ObjectRef,
        #[source]
        source: ClientError,
    },
}

struct CronJobController {
    client: ApiClient,
    cron_jobs: Cache<CronJob>,
    jobs: Cache<Job>,
    events: EventRecorder,
}

/// Runs the CronJob controller until `ctx.stop`.
pub async fn run(ctx: ControllerContext) {
    let queue = WorkQueue::new(RETRY_BACKOFF);
    let mut cron_jobs = Informer::<CronJob>::new(ctx.client.clone(), None, ListParams::default());
    cron_jobs.enqueue_self(&queue);
    let mut jobs = Informer::<Job>::new(ctx.client.clone(), None, ListParams::default());
    jobs.enqueue_controller(&queue, "CronJob");
    let controller = Arc::new(CronJobController {
        client: ctx.client.clone(),
        cron_jobs: cron_jobs.cache(),
        jobs: jobs.cache(),
        events: ctx.event_recorder(COMPONENT),
    });
    let mut informers = Informers::new(&ctx.stop);
    informers.start(cron_jobs);
    informers.start(jobs);
    let controller = Controller::new("cronjob", queue, controller).concurrency(WORKERS);
    informers
        .run_controller(controller, reconcile, |_key, _error, _ctx| Action::Backoff)
        .await;
}

/// The named time zone from the host's zoneinfo database.
fn time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Ok(TimeZone::UTC);
    };
    if name == "UTC" || name == "Etc/UTC" {
        return Ok(TimeZone::UTC);
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!("unknown time zone {name}"));
    }
    let data = std::fs::read(std::path::Path::new(ZONEINFO).join(name))
        .map_err(|e| format!("unknown time zone {name}: {e}"))?;
    TimeZone::tzif(name, &data).map_err(|e| format!("unknown time zone {name}: {e}"))
}

async fn reconcile(key: ObjectRef, ctx: Arc<CronJobController>) -> Result<Action, CronJobError> {
    let Some(cron) = ctx.cron_jobs.get(&key) else {
        return Ok(Action::done());
    };
    let (Some(namespace), Some(uid)) = (key.namespace.as_deref(), cron.metadata.uid.as_deref())
    else {
        return Ok(Action::done());
    };
    if cron.metadata.deletion_timestamp.is_some() {
        return Ok(Action::done());
    }
    let spec = cron.spec.clone().unwrap_or_default();
    let schedule = match parse_schedule(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            let message = format!("unparseable schedule {:?}: {e}", spec.schedule);
            ctx.events.record(
                cron.as_ref(),
                EventType::Warning,
                "UnparseableSchedule",
                message,
            );
            return Ok(Action::requeue_after(RECHECK));
        }
    };
    let tz = match time_zone(spec.time_zone.as_deref()) {
        Ok(tz) => tz,
        Err(message) => {
            ctx.events.record(
                cron.as_ref(),
                EventType::Warning,
                "UnknownTimeZone",
                message,
            );
            return Ok(Action::requeue_after(RECHECK));
        }
    };
    let jobs = ctx.jobs.filter(|j| {
        j.metadata.namespace.as_deref() == Some(namespace)
            && j.metadata.owner_references.as_ref().is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.controller == Some(true) && r.kind == "CronJob" && r.uid == uid)
            })
    });
    let refs: Vec<&Job> = jobs.iter().map(AsRef::as_ref).collect();
    let decision = plan(&cron, &refs, &schedule, &tz, Timestamp::now());

    if decision.skipped {
        ctx.events.record(
            cron.as_ref(),
            EventType::Normal,
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into(),
        );
    }
    let background = DeleteOptions {
        propagation_policy: Some("Background".into()),
        ..DeleteOptions::default()
    };
    for name in &decision.delete {
        match ctx
            .client
            .delete::<Job>(Some(namespace), name, &background)
            .await
        {
            Ok(()) => ctx.events.record(
                cron.as_ref(),
                EventType::Normal,
                "SuccessfulDelete",
                format!("Deleted job {name}"),
            ),
            Err(e) if e.is_not_found() => {}
            Err(source) => {
                return Err(CronJobError::DeleteJob {
                    cron_job: key.clone(),
                    job: name.clone(),
                    source,
                });
            }
        }
    }
    if let Some(job) = &decision.create {
        let name = job.metadata.name.clone().unwrap_or_default();
        match ctx.client.create(Some(namespace), job).await {
            Ok(_) => ctx.events.record(
                cron.as_ref(),
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created job {name}"),
            ),
            // Created before: the run happened once, as it should.
            Err(e) if e.is_already_exists() => {}
            Err(source) => {
                ctx.events.record(
                    cron.as_ref(),
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating job: {source}"),
                );
                return Err(CronJobError::CreateJob {
                    cron_job: key.clone(),
                    job: name,
                    source,
                });
            }
        }
    }
    let current = cron.status.clone().unwrap_or_default();
    if decision.status != current {
        let mut updated = (*cron).clone();
        updated.status = Some(decision.status.clone());
        ctx.client
            .replace_status(Some(namespace), &key.name, &updated)
            .await
            .map_err(|source| CronJobError::Status {
                cron_job: key.clone(),
                source,
            })?;
    }
    Ok(decision.requeue_after.map_or(Action::done(), |d| {
        Action::requeue_after(d + Duration::from_millis(100))
    }))
}
