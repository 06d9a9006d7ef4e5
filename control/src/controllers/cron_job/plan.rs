//! The CronJob controller's decision as a pure function: from a CronJob,
//! the Jobs it owns, its parsed schedule and time zone and the current
//! time, the Job to create (if a run is due), the Jobs to delete
//! (concurrencyPolicy Replace, history limits), the status and when to look
//! again.

use std::cmp::Reverse;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use wasmpod_api::validation::schedule::CronSchedule;

use super::times;

/// The annotation holding the time a Job was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The Job to create for the run that is due.
    pub create: Option<Job>,
    /// Names of owned Jobs to delete.
    pub delete: Vec<String>,
    /// The status the CronJob should have.
    pub status: CronJobStatus,
    /// A run was due but skipped (concurrencyPolicy Forbid).
    pub skipped: bool,
    /// Look again then (the next run time).
    pub requeue_after: Option<Duration>,
}

/// How a Job ended, from its conditions.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        })
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cron_job: &str, scheduled: Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job for the run at `scheduled`.
pub fn job_for(cron: &CronJob, scheduled: Timestamp) -> Job {
    let name = cron.metadata.name.clone().unwrap_or_default();
    let template = cron.spec.as_ref().map(|s| &s.job_template);
    let meta = template
        .and_then(|t| t.metadata.clone())
        .unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), scheduled.to_string());
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cron.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name,
                uid: cron.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(template.and_then(|t| t.spec.clone()).unwrap_or_default()),
        status: None,
    }
}

/// The oldest finished Jobs beyond `limit` of those that ended as `how`.
fn beyond_history(jobs: &[&Job], how: &str, limit: Option<i32>) -> Vec<String> {
    let Some(limit) = limit else {
        return Vec::new();
    };
    let mut ended: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| finished(j) == Some(how))
        .collect();
    // Newest first, by start time (then name, which holds the schedule).
    ended.sort_by_key(|j| {
        Reverse((
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0),
            j.metadata.name.clone(),
        ))
    });
    ended
        .iter()
        .skip(usize::try_from(limit.max(0)).unwrap_or(0))
        .filter_map(|j| j.metadata.name.clone())
        .collect()
}

/// Decides what to do for `cron`, which owns `jobs`, at `now`.
pub fn plan(
    cron: &CronJob,
    jobs: &[&Job],
    schedule: &CronSchedule,
    tz: &TimeZone,
    now: Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let spec = cron.spec.clone().unwrap_or_default();
    let old = cron.status.clone().unwrap_or_default();
    let mut status = old.clone();

    let active: Vec<&Job> = jobs
        .iter()
        .copied()
        .filter(|j| finished(j).is_none() && j.metadata.deletion_timestamp.is_none())
        .collect();
    let last_success = jobs
        .iter()
        .filter(|j| finished(j) == Some("Complete"))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .max();
    if let Some(t) = last_success
        && old.last_successful_time.as_ref().is_none_or(|o| o.0 < t)
    {
        status.last_successful_time = Some(Time(t));
    }
    out.delete.extend(beyond_history(
        jobs,
        "Complete",
        spec.successful_jobs_history_limit,
    ));
    out.delete.extend(beyond_history(
        jobs,
        "Failed",
        spec.failed_jobs_history_limit,
    ));

    let created = cron
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let last = old.last_schedule_time.as_ref().map_or(created, |t| t.0);
    let mut active_refs: Vec<ObjectReference> = active.iter().map(|j| reference(j)).collect();

    if spec.suspend != Some(true) {
        let mut earliest = last;
        if let Some(deadline) = spec.starting_deadline_seconds {
            // A run missed by more than the deadline is not started.
            earliest = earliest.max(
                now - SignedDuration::from_secs(deadline.max(0)) - SignedDuration::from_secs(1),
            );
        }
        let cron_name = cron.metadata.name.clone().unwrap_or_default();
        if let Some(due) = times::latest(schedule, tz, earliest, now) {
            let name = job_name(&cron_name, due);
            let exists = jobs
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(&name));
            let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
            if exists {
                status.last_schedule_time = Some(Time(due));
            } else if policy == "Forbid" && !active.is_empty() {
                out.skipped = true;
            } else {
                if policy == "Replace" {
                    out.delete
                        .extend(active.iter().filter_map(|j| j.metadata.name.clone()));
                    active_refs.clear();
                }
                let job = job_for(cron, due);
                active_refs.push(reference(&job));
                out.create = Some(job);
                status.last_schedule_time = Some(Time(due));
            }
        }
        let from = status.last_schedule_time.as_ref().map_or(last, |t| t.0);
        out.requeue_after = times::next(schedule, tz, from, now).map(|at| times::until(now, at));
    }
    out.delete.sort();
    out.delete.dedup();
    active_refs.sort_by(|a, b| a.name.cmp(&b.name));
    // Only the identity of the active Jobs is status; their versions move.
    for r in &mut active_refs {
        r.resource_version = None;
    }
    status.active = (!active_refs.is_empty()).then_some(active_refs);
    out.status = status;
    out
}
