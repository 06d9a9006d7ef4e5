//! The pod worker and manager against the fake runtime and the fake API,
//! on a paused tokio clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use wasmpod_api::k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Secret};

use super::fake_api::FakeApi;
use super::{PodManager, PodWorkerConfig};
use crate::agent::client::Change;
use crate::agent::clock::Clock;
use crate::agent::container_runtime::StartError;
use crate::agent::fake_runtime::{Behavior, FakeRuntime};
use crate::agent::lifecycle::BackoffConfig;

const NODE: &str = "n1";

struct Node {
    runtime: Arc<FakeRuntime>,
    api: FakeApi,
    manager: PodManager<FakeRuntime, FakeApi>,
    dir: tempfile::TempDir,
}

impl Node {
    fn new(default: Behavior) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        Self::with(Arc::new(FakeRuntime::new(default)), FakeApi::default(), dir)
    }

    /// A node on the same runtime, API and data directory, as after a restart.
    fn restarted(self) -> Self {
        let Node {
            runtime,
            api,
            manager,
            dir,
        } = self;
        drop(manager);
        Self::with(runtime, api, dir)
    }

    fn with(runtime: Arc<FakeRuntime>, api: FakeApi, dir: tempfile::TempDir) -> Self {
        let mut config = PodWorkerConfig::new(NODE, dir.path().to_path_buf());
        config.backoff = BackoffConfig {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(4),
            reset_after: Duration::from_secs(600),
        };
        config.clock = Clock::anchored_at("2025-01-01T00:00:00Z".parse().expect("a timestamp"));
        config.node_cpu_millis = 2000;
        config.node_memory_bytes = 1 << 30;
        let manager = PodManager::new(Arc::clone(&runtime), api.clone(), config);
        Self {
            runtime,
            api,
            manager,
            dir,
        }
    }

    fn apply(&mut self, pod: &Pod) {
        self.manager.handle(Change::Applied(pod.clone()));
    }

    fn phases(&self) -> Vec<String> {
        let mut phases: Vec<String> = Vec::new();
        for s in self.api.statuses() {
            let p = s.phase.unwrap_or_default();
            if phases.last() != Some(&p) {
                phases.push(p);
            }
        }
        phases
    }

    fn last(&self) -> PodStatus {
        self.api.last_status().expect("a status was written")
    }
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = json!(NODE);
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }))
    .expect("a pod")
}

fn deleting(p: &Pod, grace: i64) -> Pod {
    let mut p = p.clone();
    p.metadata.deletion_timestamp = Some(
        wasmpod_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2025-01-01T00:00:30Z".parse().expect("a timestamp"),
        ),
    );
    p.metadata.deletion_grace_period_seconds = Some(grace);
    p
}

/// Lets virtual time pass in small steps until `done` holds; returns how
/// long that took, or panics after `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() <= limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn terminated_reason(s: &PodStatus) -> Option<String> {
    s.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .terminated
        .as_ref()?
        .reason
        .clone()
}

fn waiting_reason(s: &PodStatus) -> Option<String> {
    s.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_pod_runs_to_completion_and_each_status_is_written_once() {
    let mut node = Node::new(Behavior::Exit {
        after: Duration::from_secs(5),
        code: 0,
    });
    let p = pod(
        "job",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "job.wasm"}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || {
        node.phases() == ["Pending", "Running"]
    })
    .await;
    until(Duration::from_secs(6), || {
        node.phases().last().map(String::as_str) == Some("Succeeded")
    })
    .await;
    assert_eq!(node.phases(), ["Pending", "Running", "Succeeded"]);
    assert_eq!(
        terminated_reason(&node.last()).as_deref(),
        Some("Completed")
    );
    let statuses = node.api.statuses();
    assert!(
        statuses.windows(2).all(|w| w[0] != w[1]),
        "no status is written twice"
    );
    let written = statuses.len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        node.api.statuses().len(),
        written,
        "nothing changes, nothing is written"
    );
    assert_eq!(node.runtime.starts().len(), 1);
    assert_eq!(
        node.last().qos_class.as_deref(),
        Some("BestEffort"),
        "fields of others are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crashing_container_restarts_with_growing_back_off() {
    let mut node = Node::new(Behavior::Exit {
        after: Duration::from_millis(100),
        code: 1,
    });
    let p = pod(
        "crash",
        json!({"containers": [{"name": "c", "image": "crash.wasm"}]}),
    );
    node.apply(&p);
    let mut gaps = Vec::new();
    let mut seen = 0;
    for _ in 0..5 {
        let took = until(Duration::from_secs(10), || {
            node.runtime.starts().len() > seen
        })
        .await;
        seen = node.runtime.starts().len();
        gaps.push(took.as_millis() / 100 * 100);
    }
    // Started at once; then each run lasts 100 ms and waits 0, 1, 2, 4 s.
    assert_eq!(gaps, vec![0, 100, 1100, 2100, 4100]);
    let attempts: Vec<u32> = node.runtime.starts().iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, vec![0, 1, 2, 3, 4]);
    until(Duration::from_secs(1), || {
        waiting_reason(&node.last()).as_deref() == Some("CrashLoopBackOff")
    })
    .await;
    assert_eq!(node.last().phase.as_deref(), Some("Running"));
    let events = node.api.events();
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("BackOff"))
    );
}

#[tokio::test(start_paused = true)]
async fn deletion_kills_a_container_that_ignores_it_after_the_grace_period() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let p = pod(
        "loop",
        json!({"containers": [{"name": "c", "image": "loop.wasm"}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || node.runtime.running() == 1).await;
    node.apply(&deleting(&p, 5));
    tokio::time::sleep(Duration::from_millis(4900)).await;
    assert_eq!(node.runtime.running(), 1, "still within the grace period");
    assert!(node.api.deleted().is_empty());
    let took = until(Duration::from_secs(1), || !node.api.deleted().is_empty()).await;
    assert!(took <= Duration::from_millis(200));
    assert_eq!(node.runtime.running(), 0);
    assert_eq!(node.api.deleted()[0].uid, "uid-loop");
    assert_eq!(
        node.last().phase.as_deref(),
        Some("Failed"),
        "the final status precedes the delete"
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_that_stops_when_asked_is_deleted_without_waiting_for_the_grace_period() {
    let mut node = Node::new(Behavior::RunUntilTerminated);
    let p = pod(
        "polite",
        json!({"containers": [{"name": "c", "image": "x"}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || node.runtime.running() == 1).await;
    node.apply(&deleting(&p, 30));
    let took = until(Duration::from_secs(1), || !node.api.deleted().is_empty()).await;
    assert!(took < Duration::from_secs(1));
    assert_eq!(node.phases().last().map(String::as_str), Some("Succeeded"));
}

#[tokio::test(start_paused = true)]
async fn a_removed_pod_is_stopped_and_its_directory_removed() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let p = pod(
        "gone",
        json!({"volumes": [{"name": "scratch", "emptyDir": {}}],
               "containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}]}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || node.runtime.running() == 1).await;
    let pod_dir = super::pod_dir(node.dir.path(), "uid-gone");
    assert!(pod_dir.join("volumes/scratch").is_dir());
    node.manager.handle(Change::Deleted(p.clone()));
    until(Duration::from_secs(1), || node.runtime.running() == 0).await;
    until(Duration::from_secs(1), || !pod_dir.exists()).await;
    assert!(
        node.api.deleted().is_empty(),
        "nothing to delete: the object is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_relist_without_a_pod_removes_it() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let a = pod("a", json!({"containers": [{"name": "c", "image": "x"}]}));
    let b = pod("b", json!({"containers": [{"name": "c", "image": "x"}]}));
    node.manager.handle(Change::Restarted(vec![a.clone(), b]));
    until(Duration::from_secs(1), || node.runtime.running() == 2).await;
    node.manager.handle(Change::Restarted(vec![a]));
    until(Duration::from_secs(1), || node.runtime.running() == 1).await;
    assert_eq!(node.manager.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn pods_bound_to_other_nodes_are_ignored() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let mut p = pod(
        "elsewhere",
        json!({"containers": [{"name": "c", "image": "x"}]}),
    );
    p.spec.as_mut().expect("spec").node_name = Some("n2".into());
    node.apply(&p);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(node.runtime.starts().is_empty());
    assert!(node.manager.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_adopts_its_pods_without_running_any_twice() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let never = pod(
        "never",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}),
    );
    node.apply(&never);
    until(Duration::from_secs(1), || {
        node.phases() == ["Pending", "Running"]
    })
    .await;
    let reported = node.last();

    let mut node = node.restarted();
    // The old node's containers die with it.
    until(Duration::from_secs(1), || node.runtime.running() == 0).await;
    let mut seen = never.clone();
    seen.status = Some(reported);
    node.apply(&seen);
    until(Duration::from_secs(1), || {
        node.phases().last().map(String::as_str) == Some("Failed")
    })
    .await;
    assert_eq!(node.runtime.starts().len(), 1, "not started again");
    assert_eq!(
        terminated_reason(&node.last()).as_deref(),
        Some("ContainerStatusUnknown")
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_whose_status_was_never_written_is_not_repeated_after_a_restart() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    node.api.fail_next_status_writes(usize::MAX);
    let never = pod(
        "unreported",
        json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}),
    );
    node.apply(&never);
    until(Duration::from_secs(1), || node.runtime.running() == 1).await;
    let mut node = node.restarted();
    node.api.fail_next_status_writes(0);
    node.apply(&never);
    until(Duration::from_secs(2), || {
        node.phases().last().map(String::as_str) == Some("Failed")
    })
    .await;
    assert_eq!(node.runtime.starts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn status_writes_are_retried_until_they_succeed() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    node.api.fail_next_status_writes(3);
    let p = pod(
        "retry",
        json!({"containers": [{"name": "c", "image": "x"}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(10), || {
        node.phases().last().map(String::as_str) == Some("Running")
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn env_argv_and_volumes_are_resolved_into_the_container_spec() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings", "namespace": "default"},
        "data": {"greeting": "hello", "config.toml": "level = 3"},
    }))
    .expect("a configmap");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "namespace": "default"},
        "data": {"token": "czNjcjN0"},
    }))
    .expect("a secret");
    node.api.add_config_map(cm);
    node.api.add_secret(secret);
    let p = pod(
        "configured",
        json!({
            "volumes": [{"name": "conf", "configMap": {"name": "settings", "items": [{"key": "config.toml", "path": "app.toml"}]}}],
            "containers": [{
                "name": "c", "image": "app.wasm",
                "command": ["app"], "args": ["--greet", "$(GREETING)", "$$(LITERAL)"],
                "env": [
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MSG", "value": "$(GREETING) from $(POD)"},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                ],
                "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
                "volumeMounts": [{"name": "conf", "mountPath": "/etc/app"}],
            }],
        }),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || node.runtime.running() == 1).await;
    let spec = node.runtime.starts().remove(0);
    assert_eq!(spec.argv, ["app", "--greet", "hello", "$(LITERAL)"]);
    let env: std::collections::HashMap<_, _> = spec.env.iter().cloned().collect();
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(env["TOKEN"], "s3cr3t");
    assert_eq!(env["POD"], "configured");
    assert_eq!(env["MSG"], "hello from configured");
    assert_eq!(env["MEM"], "64");
    assert_eq!(spec.memory_limit_bytes, Some(64 << 20));
    assert_eq!(spec.cpu_limit_millis, Some(250));
    assert_eq!(spec.mounts.len(), 1);
    assert!(spec.mounts[0].read_only, "configMap volumes are read-only");
    assert_eq!(spec.mounts[0].guest_path, "/etc/app");
    let file =
        std::fs::read_to_string(spec.mounts[0].host_path.join("app.toml")).expect("projected");
    assert_eq!(file, "level = 3");
    assert_eq!(
        spec.log_path,
        super::log_path(node.dir.path(), "uid-configured", "c", 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_config_map_keeps_the_container_waiting_with_its_reason() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let p = pod(
        "unconfigured",
        json!({"containers": [{"name": "c", "image": "x",
            "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || {
        node.api
            .last_status()
            .and_then(|s| waiting_reason(&s))
            .as_deref()
            == Some("CreateContainerConfigError")
    })
    .await;
    assert_eq!(node.last().phase.as_deref(), Some("Pending"));
    assert!(
        node.runtime.starts().is_empty(),
        "the runtime is never asked"
    );
}

#[tokio::test(start_paused = true)]
async fn a_module_that_cannot_be_fetched_reports_err_image_pull_and_is_retried() {
    let node_runtime = Behavior::FailStart(StartError::ImagePull(
        "file:///nope.wasm: no such file".into(),
    ));
    let mut node = Node::new(node_runtime);
    let p = pod(
        "nopull",
        json!({"containers": [{"name": "c", "image": "file:///nope.wasm"}]}),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || {
        node.api
            .last_status()
            .and_then(|s| waiting_reason(&s))
            .as_deref()
            == Some("ErrImagePull")
    })
    .await;
    until(Duration::from_secs(3), || {
        node.api
            .last_status()
            .and_then(|s| waiting_reason(&s))
            .as_deref()
            == Some("ImagePullBackOff")
    })
    .await;
    assert!(node.runtime.starts().len() >= 2);
    let dir = super::pod_dir(node.dir.path(), "uid-nopull");
    let record = std::fs::read_to_string(dir.join("starts.json")).unwrap_or_default();
    assert!(
        !record.contains("\"c\":1"),
        "failed starts are not recorded as runs: {record}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_waits_for_its_claim_to_be_bound_then_gets_the_volume() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let claim = |phase: &str| {
        serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "c1"},
            "spec": {"volumeName": "pvc-c1"},
            "status": {"phase": phase},
        }))
        .expect("a claim")
    };
    node.api.add_claim(claim("Pending"));
    let p = pod(
        "stateful",
        json!({
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "c", "image": "x",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        }),
    );
    node.apply(&p);
    until(Duration::from_secs(1), || {
        node.api
            .last_status()
            .and_then(|s| waiting_reason(&s))
            .as_deref()
            == Some("ContainerCreating")
            && node.api.events().iter().any(|e| {
                e.reason.as_deref() == Some("FailedMount")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("waiting for volume"))
            })
    })
    .await;
    assert!(node.runtime.starts().is_empty(), "nothing starts unbound");
    node.api.add_claim(claim("Bound"));
    node.api.add_volume(
        serde_json::from_value(json!({
            "metadata": {"name": "pvc-c1"},
            "spec": {"local": {"path": "local-path/default/data-c1"}},
        }))
        .expect("a volume"),
    );
    // Volume waits are retried on their own short schedule.
    until(Duration::from_secs(5), || node.runtime.running() == 1).await;
    let spec = node.runtime.starts().remove(0);
    assert_eq!(
        spec.mounts[0].host_path,
        node.dir.path().join("volumes/local-path/default/data-c1")
    );
    assert!(!spec.mounts[0].read_only);
    assert!(spec.mounts[0].host_path.is_dir());
}

#[tokio::test(start_paused = true)]
async fn a_readiness_probe_without_a_pod_network_keeps_the_pod_running_but_unready() {
    let mut node = Node::new(Behavior::RunUntilKilled);
    let p = pod(
        "probed",
        json!({"containers": [{"name": "c", "image": "app.wasm",
            "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1},
            "livenessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1,
                "failureThreshold": 2, "terminationGracePeriodSeconds": 0}}]}),
    );
    node.apply(&p);
    let unhealthy = |node: &Node, probe: &str| {
        node.api
            .events()
            .iter()
            .filter(|e| {
                e.reason.as_deref() == Some("Unhealthy")
                    && e.message.as_deref().is_some_and(|m| {
                        m.starts_with(probe) && m.ends_with("connect: connection refused")
                    })
            })
            .count()
    };
    until(Duration::from_secs(5), || {
        unhealthy(&node, "Readiness probe failed") >= 2 && node.runtime.starts().len() >= 2
    })
    .await;
    let last = node.last();
    assert_eq!(last.phase.as_deref(), Some("Running"));
    let cs = &last.container_statuses.as_ref().expect("statuses")[0];
    assert!(!cs.ready);
    assert!(unhealthy(&node, "Liveness probe failed") >= 2);
    assert!(
        node.api
            .events()
            .iter()
            .any(|e| e.reason.as_deref() == Some("Killing")
                && e.message.as_deref()
                    == Some("Container c failed liveness probe, will be restarted"))
    );
    assert!(
        node.api.statuses().iter().all(|s| s
            .container_statuses
            .iter()
            .flatten()
            .all(|cs| !cs.ready)),
        "never ready"
    );
}
