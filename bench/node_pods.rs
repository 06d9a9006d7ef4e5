//! `cargo bench --bench node_pods`: the node's figures of DESIGN.md §7,
//! against the real `wasmpod server` and `wasmpod node` binaries as child
//! processes on one machine: pod create -> Running seen by a watch with the
//! module cached (1,000 pods), the first start of each example (compile)
//! beside its warm and disk-cached starts, the node's idle resident memory,
//! and its memory with 1,000 idle ticker pods. The report (stdout) prints
//! every figure beside its target and anchor; progress goes to stderr.
//! The example modules must be built first (scripts/build-examples.sh).

#[path = "bench_main.rs"]
mod bench_main;
#[path = "node_pods/node.rs"]
mod node;
#[path = "node_pods/pods.rs"]
mod pods;
#[path = "api_throughput/report.rs"]
#[allow(dead_code)]
mod report;
#[path = "api_throughput/server.rs"]
#[allow(dead_code)]
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use node::Node;
use report::{Latencies, Row, Verdict, mb, ms};
use server::Server;

const NAMESPACE: &str = "bench";
const IDLE_PODS: usize = 1_000;
/// Pods created per second in the latency run: a steady stream, as a
/// Deployment scaling up would send them.
const CREATES_PER_SECOND: u64 = 100;
const START_TIMEOUT: Duration = Duration::from_secs(120);
const IDLE_SETTLE: Duration = Duration::from_secs(5);

const P50_TARGET: Duration = Duration::from_millis(5);
const P99_TARGET: Duration = Duration::from_millis(50);
const NODE_IDLE_RSS: u64 = 25_000_000;
const NODE_RSS_1000_PODS: u64 = 1 << 30;

const ANCHOR_START: &str = "Kubernetes SLO p99 <= 5 s; containerd-shim-spin ~1.1 s";
const ANCHOR_IDLE: &str = "k3s agent ~275 MB";
const ANCHOR_PODS: &str = "kubelet default: 110 pods per node";

/// The examples whose first start is measured, with the arguments and
/// container fields that make them run as in their manifests.
fn examples() -> Vec<(&'static str, Vec<&'static str>, Value)> {
    vec![
        ("hello", vec![], json!({})),
        ("ticker", vec!["60000"], json!({})),
        (
            "writer",
            vec![],
            json!({"env": [{"name": "SHARED_DIR", "value": "/tmp"}]}),
        ),
        (
            "reader",
            vec![],
            json!({"env": [{"name": "SHARED_DIR", "value": "/tmp"}]}),
        ),
        ("primes", vec!["1000"], json!({})),
        (
            "memhog",
            vec!["16"],
            json!({"resources": {"limits": {"memory": "64Mi"}}}),
        ),
        (
            "spin",
            vec![],
            json!({"resources": {"limits": {"cpu": "100m"}}}),
        ),
        (
            "configured",
            vec![],
            json!({"env": [{"name": "PASSWORD", "value": "x"}]}),
        ),
    ]
}

fn image(name: &str) -> anyhow::Result<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("wasm-examples/out/wasip2")
        .join(format!("{name}.wasm"));
    if !path.exists() {
        bail!(
            "{} is missing: run scripts/build-examples.sh",
            path.display()
        );
    }
    Ok(format!("file://{}", path.display()))
}

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), Some("info"), run)
}

/// One example's start times.
struct ExampleStarts {
    name: &'static str,
    first: Duration,
    warm: Duration,
    disk: Option<Duration>,
}

async fn run() -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()?;
    let mut server = Server::start(None)?;
    server.wait_ready(&client).await?;
    let api = server.base_url.clone();
    let mut node = Node::start(&api, "bench-node")?;
    node.wait_ready(&client, &api).await?;
    pods::create_namespace(&client, &api, NAMESPACE).await?;
    tracing::info!("node ready; idling");
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle = node.sample()?;

    // First and warm starts of every example, on a node that has compiled nothing.
    let (seen, watch) = pods::watch(&client, &api, NAMESPACE).await?;
    let mut starts = Vec::new();
    for (name, args, extra) in examples() {
        let image = image(name)?;
        let mut times = Vec::new();
        for round in ["first", "warm"] {
            let pod_name = format!("{name}-{round}");
            let pod = pods::pod(&pod_name, &node.name, &image, &args, extra.clone());
            let sent = pods::create(&client, &api, NAMESPACE, &pod).await?;
            times.push(pods::started_after(&seen, &pod_name, sent, START_TIMEOUT).await?);
        }
        tracing::info!(example = name, first = ?times[0], warm = ?times[1], "example started");
        starts.push(ExampleStarts {
            name,
            first: times[0],
            warm: times[1],
            disk: None,
        });
    }
    watch.abort();
    pods::delete_all(&client, &api, NAMESPACE).await?;
    wait_no_pods(&client, &api).await?;

    // After a restart the compiled code comes from the node's disk cache.
    node.restart()?;
    node.wait_ready(&client, &api).await?;
    let (seen, watch) = pods::watch(&client, &api, NAMESPACE).await?;
    for start in &mut starts {
        let (name, args, extra) = examples()
            .into_iter()
            .find(|(n, _, _)| *n == start.name)
            .context("an example")?;
        let pod_name = format!("{name}-disk");
        let pod = pods::pod(&pod_name, &node.name, &image(name)?, &args, extra);
        let sent = pods::create(&client, &api, NAMESPACE, &pod).await?;
        start.disk = Some(pods::started_after(&seen, &pod_name, sent, START_TIMEOUT).await?);
    }
    watch.abort();
    pods::delete_all(&client, &api, NAMESPACE).await?;
    wait_no_pods(&client, &api).await?;
    tokio::time::sleep(IDLE_SETTLE).await;
    let idle_after_restart = node.sample()?;

    // 1,000 ticker pods, module cached: create -> Running seen by a watch.
    let (seen, watch) = pods::watch(&client, &api, NAMESPACE).await?;
    let ticker = image("ticker")?;
    let mut sent_at = Vec::with_capacity(IDLE_PODS);
    let began = Instant::now();
    let pace = Duration::from_micros(1_000_000 / CREATES_PER_SECOND);
    for i in 0..IDLE_PODS {
        let due = began + pace * u32::try_from(i)?;
        tokio::time::sleep_until(due.into()).await;
        let name = format!("ticker-{i}");
        let pod = pods::pod(&name, &node.name, &ticker, &["60000"], json!({}));
        sent_at.push((name, pods::create(&client, &api, NAMESPACE, &pod).await?));
    }
    let mut latencies = Latencies::with_capacity(IDLE_PODS);
    for (name, sent) in &sent_at {
        latencies.push(pods::started_after(&seen, name, *sent, START_TIMEOUT).await?);
    }
    let all_running = began.elapsed();
    watch.abort();
    tracing::info!(
        count = seen.count(),
        ?all_running,
        "all pods running; idling"
    );
    tokio::time::sleep(IDLE_SETTLE * 2).await;
    let loaded = node.sample()?;
    pods::delete_all(&client, &api, NAMESPACE).await?;

    print_report(
        &starts,
        &mut latencies,
        idle.rss_kib,
        idle_after_restart.rss_kib,
        loaded.rss_kib,
        all_running,
    );
    node.stop();
    server.stop();
    Ok(())
}

async fn wait_no_pods(client: &reqwest::Client, api: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let list: Value = client
            .get(format!("{api}/api/v1/namespaces/{NAMESPACE}/pods"))
            .send()
            .await?
            .json()
            .await?;
        if list["items"].as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the bench pods were not deleted within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_report(
    starts: &[ExampleStarts],
    latencies: &mut Latencies,
    idle_kib: u64,
    idle_after_restart_kib: u64,
    loaded_kib: u64,
    all_running: Duration,
) {
    let p50 = latencies.percentile(50.0);
    let p99 = latencies.percentile(99.0);
    let idle = idle_kib * 1024;
    let loaded = loaded_kib * 1024;
    let per_pod = loaded.saturating_sub(idle_after_restart_kib * 1024) / IDLE_PODS as u64;
    let rows = vec![
        Row::new(
            format!(
                "pod create -> Running (watch), cached module, {IDLE_PODS} pods at {CREATES_PER_SECOND}/s"
            ),
            format!("p50 {}, p99 {}", ms(p50), ms(p99)),
            format!("p50 <= {}, p99 <= {}", ms(P50_TARGET), ms(P99_TARGET)),
            Verdict::of(p50 <= P50_TARGET && p99 <= P99_TARGET),
            ANCHOR_START,
        ),
        Row::new(
            "node idle RSS",
            mb(idle),
            format!("<= {}", mb(NODE_IDLE_RSS)),
            Verdict::of(idle <= NODE_IDLE_RSS),
            ANCHOR_IDLE,
        ),
        Row::new(
            format!("node RSS, {IDLE_PODS} idle ticker pods"),
            mb(loaded),
            "<= 1 GiB",
            Verdict::of(loaded <= NODE_RSS_1000_PODS),
            ANCHOR_PODS,
        ),
        Row::new(
            "memory per idle ticker pod",
            mb(per_pod),
            "-",
            Verdict::None,
            "-",
        ),
        Row::new(
            format!("{IDLE_PODS} pods created and all Running"),
            ms(all_running),
            "-",
            Verdict::None,
            "runwasi: 1,000 wasm tasks in 3.0 s",
        ),
    ];
    println!("{}", report::results_table(&rows));
    let example_rows: Vec<Vec<String>> = starts
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                ms(s.first),
                ms(s.warm),
                s.disk.map_or_else(|| "-".into(), ms),
            ]
        })
        .collect();
    println!("Start of each example (create -> started, seen by a watch; wasip2 components):\n");
    println!(
        "{}",
        report::table(
            &[
                "example",
                "first start (compile)",
                "second start (in memory)",
                "after node restart (disk cache)"
            ],
            &example_rows
        )
    );
}
