//! Jobs on a real node, through kubectl: a Job runs to completion and
//! `kubectl wait --for=condition=complete` sees it, failures beyond the
//! backoff limit fail it, parallel and Indexed Jobs run the right pods.
//! Completion and Indexed Jobs run on SQLite and on Postgres.

mod common;

use std::time::Duration;

use common::datastore::Datastore;
use common::node::example_image;
use common::{Cluster, eventually};
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(120);

/// A namespace on the datastore's shared cluster, with its node running.
fn setup(ds: Datastore, prefix: &str) -> (&'static Cluster, String) {
    ds.node();
    ds.namespace(prefix)
}

fn job(ns: &str, name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

fn primes(args: &[&str]) -> Value {
    json!({
        "restartPolicy": "Never",
        "containers": [{
            "name": "primes",
            "image": example_image("wasip1", "primes"),
            "args": args,
        }],
    })
}

/// The Job's pods, by label.
fn pods_of(c: &Cluster, ns: &str, job: &str) -> Vec<Value> {
    let list = c.get(&format!(
        "/api/v1/namespaces/{ns}/pods?labelSelector=batch.kubernetes.io/job-name={job}"
    ));
    list.body["items"].as_array().cloned().unwrap_or_default()
}

fn job_status(c: &Cluster, ns: &str, name: &str) -> Value {
    c.get(&format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"))
        .body["status"]
        .clone()
}

fn condition(status: &Value, type_: &str) -> Value {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits until the Job's status has condition `type_` True.
#[track_caller]
fn wait_condition(c: &Cluster, ns: &str, name: &str, type_: &str) -> Value {
    eventually(FINISH, || {
        let status = job_status(c, ns, name);
        (condition(&status, type_)["status"] == "True").then_some(status)
    })
    .unwrap_or_else(|| {
        panic!(
            "job {ns}/{name} never got {type_}; status:\n{}\npods:\n{:#}",
            job_status(c, ns, name),
            Value::Array(pods_of(c, ns, name))
        )
    })
}

on_each_datastore!(
    a_job_completes_and_kubectl_wait_sees_it,
    an_indexed_job_runs_each_index_once,
);

fn a_job_completes_and_kubectl_wait_sees_it(ds: Datastore) {
    let (c, ns) = setup(ds, "job-ok");
    c.apply(&job(
        &ns,
        "primes",
        json!({"template": {"spec": primes(&["1000"])}}),
    ));
    c.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        "job/primes",
        "-n",
        &ns,
        "--timeout=120s",
    ]);
    let status = job_status(c, &ns, "primes");
    assert_eq!(status["succeeded"], 1, "{status}");
    assert_eq!(status["active"], 0, "{status}");
    assert!(status["startTime"].is_string() && status["completionTime"].is_string());
    assert_eq!(condition(&status, "SuccessCriteriaMet")["status"], "True");

    let pods = pods_of(c, &ns, "primes");
    assert_eq!(pods.len(), 1, "the finished pod is kept");
    let pod = &pods[0];
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert!(
        pod["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("primes-"))
    );
    let owner = &pod["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Job");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);

    let logs = c.kubectl_ok(&["logs", "job/primes", "-n", &ns]);
    assert!(logs.contains("primes below 1000: count 168"), "{logs}");
}

#[test]
fn failures_beyond_the_backoff_limit_fail_the_job() {
    let (c, ns) = setup(Datastore::Sqlite, "job-fail");
    c.apply(&job(
        &ns,
        "broken",
        json!({"backoffLimit": 1, "template": {"spec": primes(&["--fail"])}}),
    ));
    let status = wait_condition(c, &ns, "broken", "Failed");
    assert_eq!(
        condition(&status, "Failed")["reason"],
        "BackoffLimitExceeded",
        "{status}"
    );
    assert_eq!(status["failed"], 2, "{status}");
    let pods = pods_of(c, &ns, "broken");
    assert_eq!(pods.len(), 2, "{pods:#?}");
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Failed"));
    c.kubectl_ok(&[
        "wait",
        "--for=condition=failed",
        "job/broken",
        "-n",
        &ns,
        "--timeout=10s",
    ]);
}

#[test]
fn a_parallel_job_runs_all_completions() {
    let (c, ns) = setup(Datastore::Sqlite, "job-par");
    c.apply(&job(
        &ns,
        "par",
        json!({
            "completions": 3,
            "parallelism": 2,
            "template": {"spec": primes(&["500"])},
        }),
    ));
    let status = wait_condition(c, &ns, "par", "Complete");
    assert_eq!(status["succeeded"], 3, "{status}");
    let pods = pods_of(c, &ns, "par");
    assert_eq!(pods.len(), 3, "{pods:#?}");
}

fn an_indexed_job_runs_each_index_once(ds: Datastore) {
    let (c, ns) = setup(ds, "job-idx");
    c.apply(&job(
        &ns,
        "idx",
        json!({
            "completions": 3,
            "parallelism": 3,
            "completionMode": "Indexed",
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "hello",
                    "image": example_image("wasip2", "hello"),
                    "env": [{
                        "name": "GREETING",
                        "valueFrom": {"fieldRef": {"fieldPath":
                            "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
                    }],
                }],
            }},
        }),
    ));
    let status = wait_condition(c, &ns, "idx", "Complete");
    assert_eq!(status["completedIndexes"], "0-2", "{status}");
    assert_eq!(status["succeeded"], 3, "{status}");
    let mut seen = Vec::new();
    for pod in pods_of(c, &ns, "idx") {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let logs = c.kubectl_ok(&["logs", &name, "-n", &ns]);
        assert!(
            logs.contains(&format!("{index} from wasmpod!")),
            "{name}: {logs}"
        );
        seen.push(index);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);
}

#[test]
fn a_cron_job_creates_a_job_each_minute() {
    let (c, ns) = setup(Datastore::Sqlite, "cron");
    c.apply(
        &json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "every", "namespace": ns},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": {"spec": primes(&["100"])}}},
            },
        })
        .to_string(),
    );
    let job = eventually(Duration::from_secs(75), || {
        let list = c.get(&format!("/apis/batch/v1/namespaces/{ns}/jobs"));
        list.body["items"].as_array()?.first().cloned()
    })
    .expect("the CronJob created no Job within 75 s");
    let name = job["metadata"]["name"].as_str().unwrap_or_default();
    let minutes = name
        .strip_prefix("every-")
        .expect("named <cronjob>-<minutes>");
    assert!(minutes.parse::<u64>().is_ok(), "{name}");
    let owner = &job["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["controller"], true);
    wait_condition(c, &ns, name, "Complete");
    let status = eventually(Duration::from_secs(10), || {
        let cron = c.get(&format!("/apis/batch/v1/namespaces/{ns}/cronjobs/every"));
        let status = cron.body["status"].clone();
        status["lastScheduleTime"].is_string().then_some(status)
    })
    .expect("lastScheduleTime is set");
    assert!(status["lastSuccessfulTime"].is_string() || status["active"].is_array());
}
