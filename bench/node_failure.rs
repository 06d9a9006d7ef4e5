//! `cargo bench --bench node_failure`: how long a dead node's pods take to
//! run elsewhere with the server's edge defaults. A `wasmpod server` and
//! two `wasmpod node` processes run on loopback; a 10-replica Deployment of
//! the ticker example runs on node A (node B cordoned meanwhile); node A
//! is killed with SIGKILL and the time until 10 replacement pods are
//! Running on node B is measured. The report (stdout) prints the figure
//! beside its target and Kubernetes' anchor; progress goes to stderr.

#[path = "bench_main.rs"]
mod bench_main;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

const REPLICAS: usize = 10;
const TARGET_SECONDS: f64 = 15.0;
const ANCHOR: &str = "Kubernetes defaults about 5 min 50 s";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(50);
const NS: &str = "default";

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), None, run)
}

/// A `wasmpod` child process, killed when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(args: &[String], log: PathBuf) -> anyhow::Result<Process> {
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = file.try_clone().context("duplicating the log handle")?;
        let child = Command::new(env!("CARGO_BIN_EXE_wasmpod"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting wasmpod {}", args[0]))?;
        Ok(Process { child, log })
    }

    /// SIGKILL, as a crash or a power cut would.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok(resp.json().await?)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<()> {
        let content_type = if method == reqwest::Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .json(body)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("{path}: {} {}", resp.status(), resp.text().await?);
        }
        Ok(())
    }

    async fn ready(&self, node: &str) -> bool {
        self.get(&format!("/api/v1/nodes/{node}"))
            .await
            .is_ok_and(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    }

    /// Running, not terminating pods on `node`.
    async fn running_on(&self, node: &str) -> usize {
        let Ok(list) = self.get(&format!("/api/v1/namespaces/{NS}/pods")).await else {
            return 0;
        };
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["spec"]["nodeName"] == node
                    && p["status"]["phase"] == "Running"
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .count()
    }

    async fn cordon(&self, node: &str, unschedulable: bool) -> anyhow::Result<()> {
        let body = json!({"spec": {"unschedulable": unschedulable}});
        self.send(
            reqwest::Method::PATCH,
            &format!("/api/v1/nodes/{node}"),
            &body,
        )
        .await
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn ticker_image() -> anyhow::Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("wasm-examples/out/wasip2/ticker.wasm");
    if !path.exists() {
        bail!(
            "{} is missing: run scripts/build-examples.sh",
            path.display()
        );
    }
    Ok(format!("file://{}", path.display()))
}

async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    bail!("{what} not within {timeout:?}")
}

async fn run() -> anyhow::Result<()> {
    let image = ticker_image()?;
    let dir = tempfile::Builder::new()
        .prefix("wasmpod-bench-node-failure-")
        .tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let server_args: Vec<String> = vec![
        "server".into(),
        "--data-dir".into(),
        dir.path().join("server").display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ];
    let server = Process::spawn(&server_args, dir.path().join("server.log"))?;
    let api = Api {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    wait_until(READY_TIMEOUT, "the server ready", || async {
        api.http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await
    .with_context(|| server.log_tail())?;

    let start_node = |name: &str| {
        let args: Vec<String> = vec![
            "node".into(),
            "--server".into(),
            base.clone(),
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            dir.path().join(name).display().to_string(),
            "--node-ip".into(),
            "127.0.0.1".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        Process::spawn(&args, dir.path().join(format!("{name}.log")))
    };
    let mut node_a = start_node("node-a")?;
    let node_b = start_node("node-b")?;
    for (name, node) in [("node-a", &node_a), ("node-b", &node_b)] {
        wait_until(READY_TIMEOUT, &format!("{name} Ready"), || api.ready(name))
            .await
            .with_context(|| node.log_tail())?;
    }
    eprintln!("server and nodes ready");

    api.cordon("node-b", true).await?;
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ticker"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "ticker"}},
            "template": {
                "metadata": {"labels": {"app": "ticker"}},
                "spec": {"containers": [{"name": "ticker", "image": image}]},
            },
        },
    });
    api.send(
        reqwest::Method::POST,
        &format!("/apis/apps/v1/namespaces/{NS}/deployments"),
        &deployment,
    )
    .await?;
    wait_until(ROLLOUT_TIMEOUT, "10 pods Running on node-a", || async {
        api.running_on("node-a").await == REPLICAS
    })
    .await
    .with_context(|| node_a.log_tail())?;
    api.cordon("node-b", false).await?;
    eprintln!("{REPLICAS} pods Running on node-a; killing it");

    let killed = Instant::now();
    node_a.kill9();
    wait_until(
        FAILOVER_TIMEOUT,
        "10 replacements Running on node-b",
        || async { api.running_on("node-b").await == REPLICAS },
    )
    .await
    .with_context(|| format!("server log:\n{}", server.log_tail()))?;
    let seconds = killed.elapsed().as_secs_f64();

    println!(
        "dead node -> replacements Running: {seconds:.1} s (target <= {TARGET_SECONDS:.0} s; {ANCHOR})"
    );
    drop(node_b);
    drop(server);
    Ok(())
}
