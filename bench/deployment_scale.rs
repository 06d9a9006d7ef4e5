//! `cargo bench --bench deployment_scale`: one real node (the release
//! `wasmpod node`) and a 1,000-replica Deployment of the ticker example;
//! the time from the Deployment's create until a watch has seen all 1,000
//! pods Running (Deployment and ReplicaSet controllers, scheduler, node
//! start-up of 1,000 wasm instances, status writes). The node starts with
//! the module neither fetched nor compiled: the first pod's start compiles
//! it once for all. (A warm-up pod would not fit beside the 1,000: the
//! node's default max-pods is 1,000.) The example modules
//! must be built first (scripts/build-examples.sh). Report on stdout,
//! progress on stderr.

#[path = "bench_main.rs"]
mod bench_main;
#[path = "node_pods/node.rs"]
#[allow(dead_code)]
mod node;
#[path = "scale/progress.rs"]
#[allow(dead_code)]
mod progress;
#[path = "api_throughput/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;

use node::Node;
use server::Server;

const REPLICAS: usize = 1_000;
const NAMESPACE: &str = "scale";
const TIMEOUT: Duration = Duration::from_secs(300);
const TARGET: Duration = Duration::from_secs(2);
const ANCHOR: &str = "runwasi: 1,000 wasm tasks in 3.0 s";

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), None, run)
}

fn ticker() -> anyhow::Result<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wasm-examples/out/wasip2/ticker.wasm");
    if !path.exists() {
        bail!(
            "{} is missing: run scripts/build-examples.sh",
            path.display()
        );
    }
    Ok(format!("file://{}", path.display()))
}

async fn run() -> anyhow::Result<()> {
    let image = ticker()?;
    let client = reqwest::Client::new();
    let mut server = Server::start(None)?;
    server.wait_ready(&client).await?;
    let url = server.base_url.clone();
    let mut node = Node::start(&url, "scale-node")?;
    node.wait_ready(&client, &url).await?;
    progress::create_namespace(&client, &url, NAMESPACE).await?;

    let busy_before = server::machine_busy()?;
    let (progress, watch) = progress::watch(&client, &url, NAMESPACE).await?;
    eprintln!("creating a Deployment of {REPLICAS} ticker pods ...");
    let t0 = Instant::now();
    progress::create_deployment(
        &client,
        &url,
        NAMESPACE,
        "ticker",
        REPLICAS,
        &image,
        &["60000"],
    )
    .await?;
    let outcome = progress.wait_running(REPLICAS, TIMEOUT).await;
    let busy = server::machine_busy()?.saturating_sub(busy_before);
    let node_sample = node.sample()?;
    watch.abort();
    if let Err(e) = outcome {
        bail!("{e:#}; node log:\n{}", node.log_tail(20));
    }
    let c = progress.lock();
    let bound = c.last_bound.map_or(Duration::ZERO, |t| t - t0);
    let running = c.last_running.map_or(Duration::ZERO, |t| t - t0);
    println!(
        "1,000-replica Deployment on one node: Running in {:.2} s (target <= 2 s ({ANCHOR})) [{}]",
        running.as_secs_f64(),
        if running <= TARGET { "met" } else { "MISSED" }
    );
    println!(
        "  all bound {:.2} s after the create; node RSS {} MiB with the pods; \
         machine CPU busy {:.1} s during the run",
        bound.as_secs_f64(),
        node_sample.rss_kib / 1024,
        busy.as_secs_f64()
    );
    Ok(())
}
