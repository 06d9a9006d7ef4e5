//! The Job controller's decisions, without a server.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::plan::{self, format_indexes, parse_indexes};
use super::*;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("valid time")
}

fn job(spec: impl FnOnce(&mut JobSpec)) -> Job {
    let mut s = JobSpec {
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "primes".to_string())].into()),
                annotations: Some([("note".to_string(), "x".to_string())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                restart_policy: Some("Never".into()),
                containers: vec![Container {
                    name: "main".into(),
                    image: Some("primes".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        },
        completions: Some(1),
        parallelism: Some(1),
        backoff_limit: Some(6),
        completion_mode: Some("NonIndexed".into()),
        suspend: Some(false),
        ..JobSpec::default()
    };
    spec(&mut s);
    Job {
        metadata: ObjectMeta {
            name: Some("pi".into()),
            namespace: Some("ns".into()),
            uid: Some("uid-1".into()),
            ..ObjectMeta::default()
        },
        spec: Some(s),
        status: None,
    }
}

fn pod(name: &str, phase: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            ..PodStatus::default()
        }),
    }
}

fn indexed_pod(name: &str, phase: &str, index: i32) -> Pod {
    let mut p = pod(name, phase);
    p.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), index.to_string())].into());
    p
}

fn decide(job: &Job, pods: &[Pod]) -> Plan {
    let refs: Vec<&Pod> = pods.iter().collect();
    plan(job, &refs, now())
}

fn condition<'a>(status: &'a JobStatus, type_: &str) -> Option<(&'a str, Option<&'a str>)> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_deref()))
}

/// Applies a plan's status to the job, as the status write does.
fn written(mut job: Job, plan: &Plan) -> Job {
    job.status = Some(plan.status.clone());
    job
}

#[test]
fn a_new_job_creates_one_pod_and_records_its_start() {
    let j = job(|_| {});
    let p = decide(&j, &[]);
    assert_eq!(p.create, vec![None]);
    assert!(p.delete.is_empty());
    assert_eq!(p.status.active, Some(1));
    assert_eq!(p.status.start_time, Some(Time(now())));
    assert_eq!(p.status.conditions, None);
}

#[test]
fn a_running_pod_is_not_duplicated_and_the_status_is_stable() {
    let j = written(job(|_| {}), &decide(&job(|_| {}), &[]));
    let pods = [pod("pi-a", "Running")];
    let p = decide(&j, &pods);
    assert!(p.create.is_empty());
    assert_eq!(p.status.active, Some(1));
    // Reconciling again with nothing new changes nothing.
    let again = decide(&written(j, &p), &pods);
    assert_eq!(again.status, p.status);
}

#[test]
fn parallelism_caps_the_pods_and_completions_the_total() {
    let j = job(|s| {
        s.completions = Some(3);
        s.parallelism = Some(2);
    });
    assert_eq!(decide(&j, &[]).create.len(), 2);
    let p = decide(&j, &[pod("a", "Succeeded"), pod("b", "Running")]);
    assert_eq!(p.create.len(), 1);
    let p = decide(
        &j,
        &[
            pod("a", "Succeeded"),
            pod("b", "Succeeded"),
            pod("c", "Running"),
        ],
    );
    assert!(p.create.is_empty(), "only one completion remains");
    assert_eq!(p.status.succeeded, Some(2));
}

#[test]
fn enough_successes_complete_the_job_and_keep_finished_pods() {
    let j = job(|s| s.completions = Some(2));
    let p = decide(&j, &[pod("a", "Succeeded"), pod("b", "Succeeded")]);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(
        condition(&p.status, "Complete"),
        Some(("True", Some("CompletionsReached")))
    );
    assert_eq!(
        condition(&p.status, "SuccessCriteriaMet").map(|c| c.0),
        Some("True")
    );
    assert_eq!(p.status.completion_time, Some(Time(now())));
    assert_eq!(p.status.active, Some(0));
    // A finished Job does nothing more.
    let later = decide(
        &written(j, &p),
        &[pod("a", "Succeeded"), pod("b", "Succeeded")],
    );
    assert!(later.create.is_empty() && !later.delete_job);
}

#[test]
fn failures_beyond_the_backoff_limit_fail_the_job_and_stop_its_pods() {
    let j = job(|s| {
        s.backoff_limit = Some(1);
        s.parallelism = Some(2);
        s.completions = Some(2);
    });
    let p = decide(&j, &[pod("a", "Failed")]);
    assert_eq!(p.create.len(), 2, "one failure is within the limit");
    let p = decide(
        &j,
        &[pod("a", "Failed"), pod("b", "Failed"), pod("c", "Running")],
    );
    assert!(p.create.is_empty());
    assert_eq!(p.delete, vec!["c".to_string()]);
    assert_eq!(
        condition(&p.status, "Failed"),
        Some(("True", Some("BackoffLimitExceeded")))
    );
    assert_eq!(
        condition(&p.status, "FailureTarget").map(|c| c.0),
        Some("True")
    );
    assert_eq!(p.status.failed, Some(2));
    assert_eq!(p.status.active, Some(0));
}

#[test]
fn container_restarts_count_as_failures_under_on_failure() {
    let j = job(|s| {
        s.backoff_limit = Some(2);
        if let Some(spec) = s.template.spec.as_mut() {
            spec.restart_policy = Some("OnFailure".into());
        }
    });
    let mut running = pod("a", "Running");
    if let Some(status) = running.status.as_mut() {
        status.container_statuses = Some(vec![ContainerStatus {
            name: "main".into(),
            restart_count: 3,
            ..ContainerStatus::default()
        }]);
    }
    let p = decide(&j, &[running]);
    assert_eq!(
        condition(&p.status, "Failed"),
        Some(("True", Some("BackoffLimitExceeded")))
    );
    assert_eq!(p.delete, vec!["a".to_string()]);
}

#[test]
fn the_active_deadline_fails_the_job_and_is_waited_for() {
    let mut j = job(|s| s.active_deadline_seconds = Some(30));
    j.status = Some(JobStatus {
        start_time: Some(Time(now() - SignedDuration::from_secs(10))),
        ..JobStatus::default()
    });
    let p = decide(&j, &[pod("a", "Running")]);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
    assert_eq!(condition(&p.status, "Failed"), None);

    j.status = Some(JobStatus {
        start_time: Some(Time(now() - SignedDuration::from_secs(31))),
        ..JobStatus::default()
    });
    let p = decide(&j, &[pod("a", "Running")]);
    assert_eq!(
        condition(&p.status, "Failed"),
        Some(("True", Some("DeadlineExceeded")))
    );
    assert_eq!(p.delete, vec!["a".to_string()]);
}

#[test]
fn a_finished_job_is_deleted_once_its_ttl_passed() {
    let j = job(|s| s.ttl_seconds_after_finished = Some(60));
    let done = decide(&j, &[pod("a", "Succeeded")]);
    let finished = written(j, &done);
    let p = decide(&finished, &[pod("a", "Succeeded")]);
    assert!(!p.delete_job);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(60)));
    let refs = [pod("a", "Succeeded")];
    let refs: Vec<&Pod> = refs.iter().collect();
    let p = plan(&finished, &refs, now() + SignedDuration::from_secs(60));
    assert!(p.delete_job);
}

#[test]
fn indexed_jobs_run_each_missing_index_once() {
    let j = job(|s| {
        s.completion_mode = Some("Indexed".into());
        s.completions = Some(3);
        s.parallelism = Some(3);
    });
    assert_eq!(decide(&j, &[]).create, vec![Some(0), Some(1), Some(2)]);
    let pods = [
        indexed_pod("a", "Succeeded", 0),
        indexed_pod("b", "Running", 1),
        indexed_pod("c", "Running", 1),
        indexed_pod("d", "Failed", 2),
    ];
    let p = decide(&j, &pods);
    assert_eq!(p.create, vec![Some(2)], "the failed index is retried");
    assert_eq!(p.delete, vec!["c".to_string()], "one pod per index");
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0"));

    let pods = [
        indexed_pod("a", "Succeeded", 0),
        indexed_pod("b", "Succeeded", 1),
        indexed_pod("e", "Succeeded", 1),
        indexed_pod("f", "Succeeded", 2),
    ];
    let p = decide(&j, &pods);
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(condition(&p.status, "Complete").map(|c| c.0), Some("True"));
}

#[test]
fn suspending_stops_the_pods_and_resuming_restarts_the_clock() {
    let j = job(|s| s.suspend = Some(true));
    let p = decide(&j, &[pod("a", "Running")]);
    assert_eq!(p.delete, vec!["a".to_string()]);
    assert!(p.create.is_empty());
    assert_eq!(
        condition(&p.status, "Suspended"),
        Some(("True", Some("JobSuspended")))
    );
    assert_eq!(p.status.start_time, None);

    let mut resumed = written(j, &p);
    if let Some(spec) = resumed.spec.as_mut() {
        spec.suspend = Some(false);
    }
    let p = decide(&resumed, &[]);
    assert_eq!(p.create, vec![None]);
    assert_eq!(
        condition(&p.status, "Suspended"),
        Some(("False", Some("JobResumed")))
    );
    assert_eq!(p.status.start_time, Some(Time(now())));
}

#[test]
fn counts_never_go_down_when_finished_pods_are_deleted() {
    let j = job(|s| s.completions = Some(3));
    let p = decide(&j, &[pod("a", "Succeeded"), pod("b", "Failed")]);
    let p = decide(&written(j, &p), &[]);
    assert_eq!(p.status.succeeded, Some(1));
    assert_eq!(p.status.failed, Some(1));
    assert_eq!(p.create.len(), 1);
}

#[test]
fn ready_and_terminating_pods_are_counted() {
    let j = job(|s| s.parallelism = Some(2));
    let mut ready = pod("a", "Running");
    if let Some(status) = ready.status.as_mut() {
        status.conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..PodCondition::default()
        }]);
    }
    let mut leaving = pod("b", "Running");
    leaving.metadata.deletion_timestamp = Some(Time(now()));
    let p = decide(&j, &[ready, leaving]);
    assert_eq!(p.status.ready, Some(1));
    assert_eq!(p.status.terminating, Some(1));
    assert_eq!(p.status.active, Some(1));
}

#[test]
fn indexes_format_as_ranges_and_parse_back() {
    let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
    assert_eq!(format_indexes(&set), "0-2,4,6-7");
    assert_eq!(parse_indexes("0-2,4,6-7"), set);
    assert_eq!(format_indexes(&BTreeSet::new()), "");
    assert!(parse_indexes("").is_empty());
}

#[test]
fn pods_carry_the_template_the_owner_and_the_index() {
    let j = job(|s| s.completion_mode = Some("Indexed".into()));
    let p = pod_for(&j, Some(2));
    let meta = &p.metadata;
    assert_eq!(meta.generate_name.as_deref(), Some("pi-2-"));
    assert_eq!(meta.namespace.as_deref(), Some("ns"));
    let labels = meta.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("primes"));
    assert_eq!(
        labels
            .get("batch.kubernetes.io/job-name")
            .map(String::as_str),
        Some("pi")
    );
    assert_eq!(
        labels
            .get("batch.kubernetes.io/controller-uid")
            .map(String::as_str),
        Some("uid-1")
    );
    let annotations = meta.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("note").map(String::as_str), Some("x"));
    assert_eq!(
        annotations.get(COMPLETION_INDEX).map(String::as_str),
        Some("2")
    );
    let owner = &meta.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", "uid-1"));
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    let spec = p.spec.expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    let env = spec.containers[0].env.clone().unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == COMPLETION_INDEX_ENV && e.value.as_deref() == Some("2"))
    );
    assert_eq!(
        plan::completion_index(&indexed_pod("x", "Running", 2)),
        Some(2)
    );

    let plain = pod_for(&job(|_| {}), None);
    assert_eq!(plain.metadata.generate_name.as_deref(), Some("pi-"));
    assert!(plain.spec.expect("spec").containers[0].env.is_none());
}
