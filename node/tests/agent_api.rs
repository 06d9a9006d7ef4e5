//! The node agent against a real `wasmpod server` (built by `cargo build
//! --bin wasmpod`): the typed client and its watch semantics, Node
//! registration and Lease renewal, and pods driven end to end on the fake
//! runtime.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmpod_api::k8s_openapi::api::coordination::v1::Lease;
use wasmpod_api::k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use wasmpod_node::agent::client::{ApiClient, Change, ListParams};
use wasmpod_node::agent::container_runtime::PodRef;
use wasmpod_node::agent::fake_runtime::{Behavior, FakeRuntime};
use wasmpod_node::agent::lifecycle::BackoffConfig;
use wasmpod_node::agent::node_status::NodeConfig;
use wasmpod_node::agent::pods::api::PodApi;
use wasmpod_node::agent::{Agent, AgentConfig};

/// A `wasmpod server` child process, killed when dropped.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/wasmpod");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bin wasmpod` first",
        bin.display()
    );
    bin
}

async fn start_server(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let log = std::fs::File::create(dir.path().join("server.log")).expect("a log file");
    let child = Command::new(binary())
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting wasmpod server");
    let url = format!("http://127.0.0.1:{port}");
    let server = Server {
        child,
        url,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    loop {
        let ready = http
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return server;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pod(name: &str, node: &str, spec: serde_json::Value) -> Pod {
    let mut spec = spec;
    spec["nodeName"] = json!(node);
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("a pod")
}

fn pod_ref(p: &Pod) -> PodRef {
    PodRef {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Polls `check` until it returns `Some`, for up to `limit`.
async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_client_writes_status_deletes_with_preconditions_and_watches() {
    let server = start_server(&[]).await;
    let client = ApiClient::new(&server.url, None).expect("a client");
    let created = client
        .create(
            Some("default"),
            &pod(
                "p1",
                "n1",
                json!({"containers": [{"name": "c", "image": "x"}]}),
            ),
        )
        .await
        .expect("creates a pod");
    let mut watcher = client.watcher::<Pod>(None, ListParams::fields("spec.nodeName=n1"));
    let Ok(Change::Restarted(listed)) = watcher.next().await else {
        panic!("a watcher starts with the list");
    };
    assert_eq!(listed.len(), 1);

    let status: PodStatus = serde_json::from_value(json!({"phase": "Running"})).expect("a status");
    client
        .update_pod_status(&pod_ref(&created), &status)
        .await
        .expect("writes the status");
    match watcher.next().await.expect("a change") {
        Change::Applied(p) => {
            assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Running"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let mut replaced = created.clone();
    replaced.status = Some(serde_json::from_value(json!({"phase": "Pending"})).expect("a status"));
    let stale = client
        .replace_status(Some("default"), "p1", &replaced)
        .await
        .expect_err("the resourceVersion is stale");
    assert!(stale.is_conflict(), "{stale}");
    replaced.metadata.resource_version = None;
    let stored = client
        .replace_status(Some("default"), "p1", &replaced)
        .await
        .expect("replaces the status");
    assert_eq!(
        stored.status.and_then(|s| s.phase).as_deref(),
        Some("Pending")
    );
    assert!(matches!(watcher.next().await, Ok(Change::Applied(_))));
    let mut stranger = pod_ref(&created);
    stranger.uid = "another-pod".into();
    let refused = client.update_pod_status(&stranger, &status).await;
    assert_eq!(refused.err().and_then(|e| e.code()), Some(422));
    let refused = client
        .delete_pod(&stranger)
        .await
        .expect_err("the UID differs");
    assert!(refused.is_conflict(), "{refused}");

    client
        .delete_pod(&pod_ref(&created))
        .await
        .expect("deletes");
    match watcher.next().await.expect("a change") {
        Change::Deleted(p) => assert_eq!(p.metadata.name.as_deref(), Some("p1")),
        other => panic!("unexpected {other:?}"),
    }
    let gone = client
        .get::<Pod>(Some("default"), "p1")
        .await
        .expect_err("deleted");
    assert!(gone.is_not_found());
}

#[tokio::test]
async fn a_watch_too_old_for_the_server_lists_again() {
    let server = start_server(&["--watch-window", "5"]).await;
    let client = ApiClient::new(&server.url, None).expect("a client");
    let mut watcher = client.watcher::<Pod>(None, ListParams::fields("spec.nodeName=n1"));
    assert!(matches!(watcher.next().await, Ok(Change::Restarted(l)) if l.is_empty()));
    for i in 0..20 {
        client
            .create(
                Some("default"),
                &pod(
                    &format!("p{i}"),
                    "n1",
                    json!({"containers": [{"name": "c", "image": "x"}]}),
                ),
            )
            .await
            .expect("creates");
    }
    match watcher.next().await.expect("a change") {
        Change::Restarted(pods) => assert_eq!(pods.len(), 20),
        other => panic!("expected a re-list, got {other:?}"),
    }
}

#[tokio::test]
async fn the_agent_registers_its_node_renews_its_lease_and_runs_its_pods() {
    let server = start_server(&[]).await;
    let client = ApiClient::new(&server.url, None).expect("a client");
    let data = tempfile::tempdir().expect("a temp dir");
    let mut node = NodeConfig::detect("edge-1", data.path().to_path_buf());
    node.lease_renew_interval = Duration::from_millis(500);
    node.status_interval = Duration::from_millis(500);
    let mut config = AgentConfig::new(node);
    config.backoff = BackoffConfig {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(400),
        reset_after: Duration::from_secs(60),
    };
    let runtime = Arc::new(FakeRuntime::new(Behavior::RunUntilTerminated));
    runtime.set(
        "job.wasm",
        Behavior::Exit {
            after: Duration::from_millis(200),
            code: 3,
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = Agent::new(client.clone(), config, Arc::clone(&runtime));
    let task = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    // The agent creates its Node and then writes the status subresource, so
    // the object can be seen for a moment before its nodeInfo is.
    let info = eventually(Duration::from_secs(10), || async {
        client
            .get::<Node>(None, "edge-1")
            .await
            .ok()
            .and_then(|n| n.status?.node_info)
    })
    .await;
    assert_eq!(info.kubelet_version, "v1.32.0-wasmpod");
    let lease_renewal = || async {
        client
            .get::<Lease>(Some("kube-node-lease"), "edge-1")
            .await
            .ok()
            .and_then(|l| l.spec?.renew_time)
    };
    let first = eventually(Duration::from_secs(10), lease_renewal).await;
    eventually(Duration::from_secs(10), || async {
        lease_renewal().await.filter(|t| *t != first)
    })
    .await;

    client
        .create(
            Some("default"),
            &pod(
                "web",
                "edge-1",
                json!({"containers": [{"name": "c", "image": "web.wasm"}]}),
            ),
        )
        .await
        .expect("creates web");
    client
        .create(
            Some("default"),
            &pod("job", "edge-1", json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "job.wasm"}]})),
        )
        .await
        .expect("creates job");
    let phase = |name: &'static str| {
        let client = client.clone();
        async move {
            client
                .get::<Pod>(Some("default"), name)
                .await
                .ok()
                .and_then(|p| p.status?.phase)
        }
    };
    eventually(Duration::from_secs(10), || async {
        (phase("web").await.as_deref() == Some("Running")).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        (phase("job").await.as_deref() == Some("Failed")).then_some(())
    })
    .await;
    let job = client
        .get::<Pod>(Some("default"), "job")
        .await
        .expect("job");
    let term = job
        .status
        .and_then(|s| s.container_statuses)
        .expect("statuses")[0]
        .state
        .clone()
        .and_then(|s| s.terminated)
        .expect("terminated");
    assert_eq!((term.exit_code, term.reason.as_deref()), (3, Some("Error")));

    // A graceful delete: the node stops the pod and removes the object.
    client
        .delete::<Pod>(Some("default"), "web", &Default::default())
        .await
        .expect("deletes web");
    eventually(Duration::from_secs(10), || async {
        client
            .get::<Pod>(Some("default"), "web")
            .await
            .err()
            .filter(|e| e.is_not_found())
    })
    .await;
    assert_eq!(runtime.running(), 0);

    let _ = stop.send(());
    task.await
        .expect("the agent task")
        .expect("the agent stops cleanly");
}

const HELLO: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "hello from wasm\n")
    (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 16))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[tokio::test]
async fn a_wasm_module_runs_as_a_pod_and_its_output_is_logged() {
    use wasmpod_node::agent::pods::log_path;
    use wasmpod_node::agent::wasm_runtime::WasmRuntime;
    use wasmpod_node::runtime::{PoolingChoice, Runtime, RuntimeConfig};

    let server = start_server(&[]).await;
    let client = ApiClient::new(&server.url, None).expect("a client");
    let data = tempfile::tempdir().expect("a temp dir");
    let module = data.path().join("hello.wasm");
    std::fs::write(&module, wat::parse_str(HELLO).expect("valid wat")).expect("writes the module");
    let runtime = Runtime::new(RuntimeConfig {
        pooling: PoolingChoice::Off,
        ..RuntimeConfig::new(data.path().join("cache"))
    })
    .expect("a runtime");
    let node = NodeConfig::detect("wasm-1", data.path().to_path_buf());
    let agent = Agent::new(
        client.clone(),
        AgentConfig::new(node),
        Arc::new(WasmRuntime::new(runtime)),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));
    let created = client
        .create(
            Some("default"),
            &pod(
                "hello",
                "wasm-1",
                json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": format!("file://{}", module.display())}]}),
            ),
        )
        .await
        .expect("creates the pod");
    let done: Pod = eventually(Duration::from_secs(20), || async {
        client
            .get::<Pod>(Some("default"), "hello")
            .await
            .ok()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
    })
    .await;
    let status = &done
        .status
        .and_then(|s| s.container_statuses)
        .expect("statuses")[0];
    assert!(status.image_id.starts_with("sha256:"));
    let uid = created.metadata.uid.expect("a uid");
    let log = std::fs::read_to_string(log_path(data.path(), &uid, "c", 0)).expect("a log file");
    // One CRI record: `<timestamp> stdout F <text>`.
    assert!(log.ends_with(" stdout F hello from wasm\n"), "{log}");
    assert_eq!(log.lines().count(), 1, "{log}");
    let _ = stop.send(());
    task.await
        .expect("the agent task")
        .expect("the agent stops cleanly");
}
