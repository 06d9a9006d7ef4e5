//! `cargo bench --bench hollow_scale`: 10,000 pods on 1,000 hollow nodes.
//! The release `wasmpod server` (SQLite, all controllers and the scheduler)
//! and `wasmpod node --hollow --count 1000` run as child processes; once
//! every node is Ready, 10 Deployments of 1,000 replicas are created and a
//! watch measures the time until every pod is bound and until every pod
//! reports Running. The hollow process's resident memory is sampled with
//! the nodes idle and with the pods running. Report on stdout, progress on
//! stderr.

#[path = "bench_main.rs"]
mod bench_main;
#[path = "scale/progress.rs"]
mod progress;
#[path = "api_throughput/server.rs"]
#[allow(dead_code)]
mod server;

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use server::{ProcSample, Server};

const NODES: usize = 1_000;
const DEPLOYMENTS: usize = 10;
const REPLICAS: usize = 1_000;
const NAMESPACE: &str = "scale";
/// A pod network with a /22 block for each of 4,096 nodes.
const POD_NETWORK: &str = "10.64.0.0/10";
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// What a hollow node may cost in memory.
const RSS_PER_NODE_TARGET_KIB: u64 = 2 * 1024;

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), None, run)
}

/// The `wasmpod node --hollow` child process, stopped when dropped.
struct Hollow {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Hollow {
    fn start(server: &str, count: usize) -> anyhow::Result<Hollow> {
        let dir = tempfile::Builder::new()
            .prefix("wasmpod-bench-hollow-")
            .tempdir()?;
        let log = dir.path().join("hollow.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_wasmpod"))
            .args(["node", "--hollow", "--count", &count.to_string()])
            .args(["--server", server, "--node-ip", "127.0.0.1"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()
            .context("starting wasmpod node --hollow")?;
        Ok(Hollow {
            child,
            log,
            _dir: dir,
        })
    }

    fn sample(&self) -> anyhow::Result<ProcSample> {
        ProcSample::read(&format!("/proc/{}", self.child.id()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Hollow {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn run() -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    // 1,000 nodes need 1,000 pod CIDR blocks: the default 10.42.0.0/16
    // holds 64 of /22.
    let mut server = Server::start_with(None, &["--cluster-cidr", POD_NETWORK])?;
    server.wait_ready(&client).await?;
    let url = server.base_url.clone();
    let busy_before = server::machine_busy()?;

    eprintln!("starting {NODES} hollow nodes ...");
    let started = Instant::now();
    let mut hollow = Hollow::start(&url, NODES)?;
    loop {
        if let Ok(Some(status)) = hollow.child.try_wait() {
            bail!("the hollow nodes exited ({status}):\n{}", hollow.log_tail());
        }
        let ready = progress::ready_nodes(&client, &url).await.unwrap_or(0);
        if ready >= NODES {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("{ready} of {NODES} nodes Ready after {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let nodes_ready = started.elapsed();
    // Let registration settle: the first status reports and Lease creates.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = hollow.sample()?;
    eprintln!(
        "{NODES} nodes Ready in {:.1} s; hollow RSS {} MiB",
        nodes_ready.as_secs_f64(),
        idle.rss_kib / 1024
    );

    progress::create_namespace(&client, &url, NAMESPACE).await?;
    let (progress, watch) = progress::watch(&client, &url, NAMESPACE).await?;
    let t0 = Instant::now();
    for d in 0..DEPLOYMENTS {
        progress::create_deployment(
            &client,
            &url,
            NAMESPACE,
            &format!("web-{d}"),
            REPLICAS,
            "file:///hollow.wasm",
            &[],
        )
        .await?;
    }
    let total = DEPLOYMENTS * REPLICAS;
    let outcome = progress.wait_running(total, RUN_TIMEOUT).await;
    let loaded = hollow.sample()?;
    let server_sample = server.sample()?;
    let busy = server::machine_busy()?.saturating_sub(busy_before);
    watch.abort();
    outcome?;
    let c = progress.lock();
    let bound_in = c.last_bound.map_or(Duration::ZERO, |t| t - t0);
    let running_in = c.last_running.map_or(Duration::ZERO, |t| t - t0);
    let (min, max) = (
        c.per_node.values().min().copied().unwrap_or(0),
        c.per_node.values().max().copied().unwrap_or(0),
    );
    println!(
        "10,000 pods on 1,000 hollow nodes: bound in {:.1} s, Running in {:.1} s",
        bound_in.as_secs_f64(),
        running_in.as_secs_f64()
    );
    println!(
        "  {DEPLOYMENTS} Deployments x {REPLICAS} replicas; {} nodes used, {min}-{max} pods per node; \
         nodes Ready {:.1} s after the hollow process started",
        c.per_node.len(),
        nodes_ready.as_secs_f64()
    );
    let per_node = |s: &ProcSample| s.rss_kib / NODES as u64;
    println!(
        "  hollow node process RSS: {} MiB idle ({} KiB per node), {} MiB with the pods \
         ({} KiB per node; peak {} MiB) (target < {} KiB per node) [{}]",
        idle.rss_kib / 1024,
        per_node(&idle),
        loaded.rss_kib / 1024,
        per_node(&loaded),
        loaded.peak_rss_kib / 1024,
        RSS_PER_NODE_TARGET_KIB,
        if per_node(&loaded) < RSS_PER_NODE_TARGET_KIB {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  CPU during the run: server {:.1} s, hollow nodes {:.1} s, whole machine {:.1} s \
         (server RSS {} MiB)",
        server_sample.cpu.as_secs_f64(),
        loaded.cpu.as_secs_f64(),
        busy.as_secs_f64(),
        server_sample.rss_kib / 1024
    );
    Ok(())
}
