//! The CronJob controller's scheduling decisions, without a server.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, CronJobStatus, Job, JobCondition, JobSpec, JobStatus, JobTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use wasmpod_api::validation::schedule::parse_schedule;

use super::*;

/// 2027-01-15T10:00:00Z, a Friday.
fn t0() -> Timestamp {
    "2027-01-15T10:00:00Z".parse().expect("valid time")
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn cron(schedule: &str, spec: impl FnOnce(&mut CronJobSpec)) -> CronJob {
    let mut s = CronJobSpec {
        schedule: schedule.into(),
        concurrency_policy: Some("Allow".into()),
        suspend: Some(false),
        successful_jobs_history_limit: Some(3),
        failed_jobs_history_limit: Some(1),
        job_template: JobTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "tick".to_string())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(JobSpec::default()),
        },
        ..CronJobSpec::default()
    };
    spec(&mut s);
    CronJob {
        metadata: ObjectMeta {
            name: Some("tick".into()),
            namespace: Some("ns".into()),
            uid: Some("cj-uid".into()),
            creation_timestamp: Some(Time(t0())),
            ..ObjectMeta::default()
        },
        spec: Some(s),
        status: None,
    }
}

fn owned_job(name: &str, outcome: Option<&str>, started: Timestamp) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("{name}-uid")),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name: "tick".into(),
                uid: "cj-uid".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(JobStatus {
            start_time: Some(Time(started)),
            completion_time: outcome.map(|_| Time(started + mins(1))),
            conditions: outcome.map(|o| {
                vec![JobCondition {
                    type_: o.into(),
                    status: "True".into(),
                    ..JobCondition::default()
                }]
            }),
            ..JobStatus::default()
        }),
    }
}

fn decide(c: &CronJob, jobs: &[Job], now: Timestamp) -> Plan {
    let schedule = parse_schedule(&c.spec.as_ref().expect("spec").schedule).expect("schedule");
    let refs: Vec<&Job> = jobs.iter().collect();
    plan(c, &refs, &schedule, &TimeZone::UTC, now)
}

fn with_last_schedule(mut c: CronJob, at: Timestamp) -> CronJob {
    c.status = Some(CronJobStatus {
        last_schedule_time: Some(Time(at)),
        ..CronJobStatus::default()
    });
    c
}

#[test]
fn nothing_runs_before_the_first_scheduled_minute() {
    let c = cron("* * * * *", |_| {});
    let p = decide(&c, &[], t0() + SignedDuration::from_secs(30));
    assert!(p.create.is_none());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
}

#[test]
fn a_due_run_creates_a_job_named_for_its_minute() {
    let c = cron("* * * * *", |_| {});
    let now = t0() + mins(1) + SignedDuration::from_secs(5);
    let p = decide(&c, &[], now);
    let job = p.create.expect("a job");
    let minute = (t0() + mins(1)).as_second() / 60;
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("tick-{minute}").as_str())
    );
    assert_eq!(job.metadata.namespace.as_deref(), Some("ns"));
    let owner = &job.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("CronJob", "cj-uid")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert_eq!(
        job.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("tick")
    );
    assert!(
        job.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(SCHEDULED_TIMESTAMP))
    );
    assert_eq!(p.status.last_schedule_time, Some(Time(t0() + mins(1))));
    assert_eq!(p.status.active.as_ref().map(Vec::len), Some(1));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(55)));
}

#[test]
fn a_run_already_made_is_not_made_again() {
    let c = with_last_schedule(cron("* * * * *", |_| {}), t0() + mins(1));
    let p = decide(&c, &[], t0() + mins(1) + SignedDuration::from_secs(20));
    assert!(p.create.is_none());
    // Nor when only the Job exists (the status write was lost).
    let c = cron("* * * * *", |_| {});
    let name = job_name("tick", t0() + mins(1));
    let p = decide(
        &c,
        &[owned_job(&name, None, t0() + mins(1))],
        t0() + mins(1) + SignedDuration::from_secs(20),
    );
    assert!(p.create.is_none());
    assert_eq!(p.status.last_schedule_time, Some(Time(t0() + mins(1))));
}

#[test]
fn only_the_latest_missed_run_starts() {
    let c = cron("*/5 * * * *", |_| {});
    let p = decide(&c, &[], t0() + mins(23));
    let job = p.create.expect("a job");
    assert_eq!(job.metadata.name, Some(job_name("tick", t0() + mins(20))));
}

#[test]
fn forbid_skips_while_a_job_runs_and_replace_replaces_it() {
    let running = owned_job("tick-old", None, t0());
    let now = t0() + mins(2);
    let c = cron("* * * * *", |s| {
        s.concurrency_policy = Some("Forbid".into())
    });
    let p = decide(&c, std::slice::from_ref(&running), now);
    assert!(p.create.is_none() && p.skipped);
    assert!(p.delete.is_empty());

    let c = cron("* * * * *", |s| {
        s.concurrency_policy = Some("Replace".into())
    });
    let p = decide(&c, std::slice::from_ref(&running), now);
    assert!(p.create.is_some());
    assert_eq!(p.delete, vec!["tick-old".to_string()]);

    let c = cron("* * * * *", |_| {});
    let p = decide(&c, &[running], now);
    assert!(p.create.is_some() && p.delete.is_empty());
    assert_eq!(p.status.active.as_ref().map(Vec::len), Some(2));
}

#[test]
fn suspended_cron_jobs_start_nothing() {
    let c = cron("* * * * *", |s| s.suspend = Some(true));
    let p = decide(&c, &[], t0() + mins(5));
    assert!(p.create.is_none());
    assert_eq!(p.requeue_after, None);
}

#[test]
fn a_run_missed_by_more_than_the_starting_deadline_is_skipped() {
    let c = cron("0 * * * *", |s| s.starting_deadline_seconds = Some(60));
    // 10:00 was missed by five minutes; the next run is 11:00.
    let p = decide(&c, &[], t0() + mins(5));
    assert!(p.create.is_none());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(55 * 60)));
    let c = with_last_schedule(
        cron("0 * * * *", |s| s.starting_deadline_seconds = Some(60)),
        t0() - mins(60),
    );
    let p = decide(&c, &[], t0() + SignedDuration::from_secs(30));
    assert!(p.create.is_some(), "within the deadline");
}

#[test]
fn finished_jobs_beyond_the_history_limits_are_deleted() {
    let c = cron("0 0 1 1 *", |s| {
        s.successful_jobs_history_limit = Some(1);
        s.failed_jobs_history_limit = Some(0);
    });
    let jobs = [
        owned_job("tick-1", Some("Complete"), t0()),
        owned_job("tick-2", Some("Complete"), t0() + mins(1)),
        owned_job("tick-3", Some("Failed"), t0() + mins(2)),
        owned_job("tick-4", None, t0() + mins(3)),
    ];
    let p = decide(&c, &jobs, t0() + mins(10));
    assert_eq!(p.delete, vec!["tick-1".to_string(), "tick-3".to_string()]);
    assert_eq!(p.status.last_successful_time, Some(Time(t0() + mins(2))));
    let active = p.status.active.expect("active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].name.as_deref(), Some("tick-4"));
}

#[test]
fn schedules_are_read_in_the_time_zone() {
    // 10:00 UTC is 11:00 in Berlin in January (UTC+1).
    let tz = TimeZone::fixed(k8s_openapi::jiff::tz::offset(1));
    let schedule = parse_schedule("0 11 * * *").expect("schedule");
    assert_eq!(
        times::latest(&schedule, &tz, t0() - mins(1), t0() + mins(1)),
        Some(t0())
    );
    assert_eq!(
        times::latest(&schedule, &TimeZone::UTC, t0() - mins(1), t0() + mins(1)),
        None
    );
    // Friday is day 5; the next Monday 09:00 UTC is three days on, minus an hour.
    let mondays = parse_schedule("0 9 * * 1").expect("schedule");
    assert_eq!(
        times::next(&mondays, &TimeZone::UTC, t0(), t0()),
        Some(t0() + SignedDuration::from_hours(3 * 24 - 1))
    );
    let every = parse_schedule("@every 90s").expect("schedule");
    assert_eq!(
        times::latest(
            &every,
            &TimeZone::UTC,
            t0(),
            t0() + SignedDuration::from_secs(200)
        ),
        Some(t0() + SignedDuration::from_secs(180))
    );
}
