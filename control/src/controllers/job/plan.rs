//! The Job controller's decision as a pure function: from a Job, the pods
//! it owns and the current time, what to create, what to delete, the status
//! to write and when to look again. No I/O, so every rule is unit-tested.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";

pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
pub const REASON_COMPLETIONS: &str = "CompletionsReached";

/// What the controller does for one Job in one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Pods to create: `None` for a NonIndexed Job, the completion index
    /// for an Indexed one.
    pub create: Vec<Option<i32>>,
    /// Names of active pods to delete.
    pub delete: Vec<String>,
    /// The status the Job should have (written only if it differs).
    pub status: JobStatus,
    /// Delete the Job itself (its ttlSecondsAfterFinished has passed).
    pub delete_job: bool,
    /// Look again after this long (deadline or TTL), if anything is timed.
    pub requeue_after: Option<Duration>,
}

/// The spec values the decision reads, with Kubernetes' defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    completions: Option<i32>,
    parallelism: i32,
    backoff_limit: i32,
    indexed: bool,
    suspend: bool,
    on_failure: bool,
    active_deadline: Option<i64>,
    ttl: Option<i32>,
}

impl Spec {
    fn of(job: &Job) -> Self {
        let spec = job.spec.as_ref();
        let completions = spec.and_then(|s| s.completions);
        let parallelism = spec.and_then(|s| s.parallelism).unwrap_or(1).max(0);
        Self {
            // Neither set means one pod, as the API server defaults it.
            completions: if completions.is_none() && spec.and_then(|s| s.parallelism).is_none() {
                Some(1)
            } else {
                completions
            },
            parallelism,
            backoff_limit: spec.and_then(|s| s.backoff_limit).unwrap_or(6).max(0),
            indexed: spec.and_then(|s| s.completion_mode.as_deref()) == Some("Indexed"),
            suspend: spec.and_then(|s| s.suspend) == Some(true),
            on_failure: spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.restart_policy.as_deref())
                == Some("OnFailure"),
            active_deadline: spec.and_then(|s| s.active_deadline_seconds),
            ttl: spec.and_then(|s| s.ttl_seconds_after_finished),
        }
    }
}

/// The owned pods, sorted by what they mean to the Job.
#[derive(Debug, Default)]
struct Observed<'a> {
    active: Vec<&'a Pod>,
    succeeded: usize,
    failed: usize,
    terminating: usize,
    ready: usize,
    /// Container restarts of active pods (failures under OnFailure).
    restarts: usize,
    completed_indexes: BTreeSet<i32>,
}

fn observe<'a>(pods: &[&'a Pod], spec: &Spec) -> Observed<'a> {
    let mut seen = Observed::default();
    for &pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        match phase {
            Some("Succeeded") => {
                seen.succeeded += 1;
                if spec.indexed
                    && let Some(i) = completion_index(pod)
                {
                    seen.completed_indexes.insert(i);
                }
            }
            Some("Failed") => seen.failed += 1,
            _ if pod.metadata.deletion_timestamp.is_some() => seen.terminating += 1,
            _ => {
                if is_ready(pod) {
                    seen.ready += 1;
                }
                seen.restarts += restart_count(pod);
                seen.active.push(pod);
            }
        }
    }
    seen
}

/// The completion index a pod of an Indexed Job carries in its annotation.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(super::COMPLETION_INDEX)?
        .parse()
        .ok()
        .filter(|i| *i >= 0)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn restart_count(pod: &Pod) -> usize {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter()
                .map(|c| usize::try_from(c.restart_count).unwrap_or(0))
                .sum()
        })
}

fn condition_true<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// The time the Job finished (its Complete or Failed condition), if it has.
pub fn finished_at(status: &JobStatus) -> Option<Timestamp> {
    [COMPLETE, FAILED].iter().find_map(|t| {
        let c = condition_true(status, t)?;
        Some(
            c.last_transition_time
                .as_ref()
                .or(status.completion_time.as_ref())
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        )
    })
}

/// Sets condition `type_` to `status`, keeping its transition time when the
/// status does not change.
fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let same = c.status == status
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message);
        if same {
            return;
        }
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(Time(now));
        return;
    }
    conditions.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
}

/// `0-2,4` for {0, 1, 2, 4}, as Kubernetes writes completedIndexes.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// The inverse of [`format_indexes`]; malformed parts are skipped.
pub fn parse_indexes(text: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    set.insert(i);
                }
            }
        }
    }
    set
}

fn some_conditions(conditions: Vec<JobCondition>) -> Option<Vec<JobCondition>> {
    (!conditions.is_empty()).then_some(conditions)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// Decides what to do for `job`, which owns `pods`, at `now`.
pub fn plan(job: &Job, pods: &[&Pod], now: Timestamp) -> Plan {
    let spec = Spec::of(job);
    let old = job.status.clone().unwrap_or_default();
    let seen = observe(pods, &spec);
    let mut status = old.clone();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let mut out = Plan::default();

    // Counts never go down: a finished pod deleted by someone stays counted.
    let succeeded = seen
        .succeeded
        .max(old.succeeded.unwrap_or(0).max(0) as usize);
    let failed_pods = seen.failed.max(old.failed.unwrap_or(0).max(0) as usize);
    let mut completed = seen.completed_indexes.clone();
    if spec.indexed {
        completed.extend(
            old.completed_indexes
                .as_deref()
                .map(parse_indexes)
                .unwrap_or_default(),
        );
        completed.retain(|i| spec.completions.is_none_or(|c| *i < c));
    }

    status.succeeded = Some(count(succeeded));
    status.failed = Some(count(failed_pods));
    status.ready = Some(count(seen.ready));
    status.terminating = Some(count(seen.terminating));
    if spec.indexed {
        status.completed_indexes = Some(format_indexes(&completed));
    }
    let active_names = || -> Vec<String> {
        seen.active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect()
    };

    // A finished Job only stops what still runs and waits for its TTL.
    if let Some(finished) = finished_at(&old) {
        out.delete = active_names();
        status.active = Some(count(seen.active.len() - out.delete.len()));
        if let Some(ttl) = spec.ttl {
            let expires = finished + SignedDuration::from_secs(i64::from(ttl.max(0)));
            if now >= expires {
                out.delete_job = true;
            } else {
                out.requeue_after = Some(until(now, expires));
            }
        }
        status.conditions = some_conditions(conditions);
        out.status = status;
        return out;
    }

    if spec.suspend {
        out.delete = active_names();
        status.active = Some(0);
        status.ready = Some(0);
        set_condition(
            &mut conditions,
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
        // The deadline counts from the last resume, as in Kubernetes.
        status.start_time = None;
        status.conditions = some_conditions(conditions);
        out.status = status;
        return out;
    }
    if condition_true(&old, SUSPENDED).is_some() {
        set_condition(
            &mut conditions,
            SUSPENDED,
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
    }
    let start = old.start_time.as_ref().map_or(now, |t| t.0);
    status.start_time = Some(Time(start));

    // Failure: too many failed pods, or past the deadline.
    let failures = failed_pods + if spec.on_failure { seen.restarts } else { 0 };
    let deadline = spec
        .active_deadline
        .map(|s| start + SignedDuration::from_secs(s.max(0)));
    let failure = if failures > spec.backoff_limit as usize {
        Some((
            REASON_BACKOFF_LIMIT,
            "Job has reached the specified backoff limit",
        ))
    } else if deadline.is_some_and(|d| now >= d) {
        Some((
            REASON_DEADLINE,
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    if let Some((reason, message)) = failure {
        out.delete = active_names();
        status.active = Some(0);
        status.ready = Some(0);
        set_condition(
            &mut conditions,
            FAILURE_TARGET,
            "True",
            reason,
            message,
            now,
        );
        set_condition(&mut conditions, FAILED, "True", reason, message, now);
        status.conditions = some_conditions(conditions);
        out.status = status;
        out.requeue_after = spec.ttl.map(|t| Duration::from_secs(t.max(0) as u64));
        return out;
    }

    // Success: enough completions (or, without completions, one success
    // and nothing left running).
    let done = match (spec.indexed, spec.completions) {
        (true, Some(c)) => completed.len() >= c.max(0) as usize,
        (false, Some(c)) => succeeded >= c.max(0) as usize,
        (_, None) => succeeded > 0 && seen.active.is_empty(),
    };
    if done {
        out.delete = active_names();
        status.active = Some(0);
        status.ready = Some(0);
        let message = "Reached expected number of succeeded pods";
        set_condition(
            &mut conditions,
            SUCCESS_CRITERIA_MET,
            "True",
            REASON_COMPLETIONS,
            message,
            now,
        );
        set_condition(
            &mut conditions,
            COMPLETE,
            "True",
            REASON_COMPLETIONS,
            message,
            now,
        );
        status.completion_time = Some(Time(now));
        status.conditions = some_conditions(conditions);
        out.status = status;
        out.requeue_after = spec.ttl.map(|t| Duration::from_secs(t.max(0) as u64));
        return out;
    }

    // Running: as many pods as parallelism allows and work remains.
    let parallelism = spec.parallelism.max(0) as usize;
    if spec.indexed {
        let total = spec.completions.unwrap_or(0).max(0);
        let mut running: BTreeSet<i32> = BTreeSet::new();
        for pod in &seen.active {
            match completion_index(pod) {
                // One pod per index: duplicates and stray indexes go.
                Some(i) if i < total && !completed.contains(&i) && running.insert(i) => {}
                _ => out.delete.extend(pod.metadata.name.clone()),
            }
        }
        let room = parallelism.saturating_sub(running.len());
        out.create = (0..total)
            .filter(|i| !completed.contains(i) && !running.contains(i))
            .take(room)
            .map(Some)
            .collect();
        status.active = Some(count(running.len() + out.create.len()));
    } else {
        let remaining = match spec.completions {
            Some(c) => (c.max(0) as usize).saturating_sub(succeeded),
            // A work queue Job: once one pod succeeded no new ones start.
            None if succeeded > 0 => seen.active.len(),
            None => parallelism,
        };
        let wanted = parallelism.min(remaining);
        if seen.active.len() > wanted {
            // Delete the newest pods first, keeping the ones furthest along.
            let mut active = seen.active.clone();
            active.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            out.delete = active[wanted..]
                .iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect();
        } else {
            out.create = vec![None; wanted - seen.active.len()];
        }
        status.active = Some(count(
            seen.active.len() - out.delete.len() + out.create.len(),
        ));
    }
    status.conditions = some_conditions(conditions);
    out.status = status;
    out.requeue_after = deadline.map(|d| until(now, d));
    out
}
