//! `cargo bench --bench http_serve`: how fast the node serves a `wasi:http`
//! component. The http-echo example runs in the node's runtime on a pod
//! network, instantiated once per request, and is measured three ways:
//! - the node's own cost per request: creating and dropping a request's
//!   store and instance from the pre-instantiated component;
//! - requests/s and latency through a real TCP listener on loopback that
//!   forwards each connection into the pod network (as a NodePort does),
//!   with keep-alive clients;
//! - the same load on `wasmtime serve` with the same component, when a
//!   `wasmtime` binary is on PATH.
//!
//! The report goes to stdout.

#[path = "bench_main.rs"]
mod bench_main;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use wasmpod_node::network::{Fabric, FabricConfig};
use wasmpod_node::runtime::{InstanceSpec, Runtime, RuntimeConfig};

/// Concurrent keep-alive clients.
const CLIENTS: usize = 16;
/// How long each load runs, after its warm-up.
const MEASURE: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(1);
/// Rounds of the instantiation measurement.
const INSTANTIATIONS: u32 = 2000;
const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 2);
const PORT: u16 = 8080;

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), None, run)
}

async fn run() -> anyhow::Result<()> {
    let component =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wasm-examples/out/wasip2/http-echo.wasm");
    let bytes = std::fs::read(&component).with_context(|| {
        format!(
            "{}: build the examples first (scripts/build-examples.sh)",
            component.display()
        )
    })?;
    let dir = tempfile::tempdir()?;
    let runtime = Runtime::new(RuntimeConfig::new(dir.path().join("cache")))?;
    let loader = runtime.clone();
    let program = tokio::task::spawn_blocking(move || loader.load(&bytes)).await??;

    println!("http_serve: http-echo, one instance per request");
    let mean = runtime
        .mean_http_instantiation(&program, INSTANTIATIONS)
        .await?
        .context("http-echo is not an HTTP component")?;
    println!(
        "  instantiate per request (store + instance, pooling {}): {:.1} µs",
        if runtime.uses_pooling() { "on" } else { "off" },
        mean.as_secs_f64() * 1e6
    );

    let fabric = Fabric::new(FabricConfig::default());
    let pod = fabric.attach(POD_IP, "default", false);
    let spec = InstanceSpec {
        args: vec!["http-echo".into()],
        network: Some(pod.clone()),
        ports: vec![PORT],
        ..InstanceSpec::default()
    };
    let instance = runtime.start(&program, spec).await?;
    let front = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let front_addr = front.local_addr()?;
    tokio::spawn(forward(front, fabric.clone()));
    let node = load(front_addr).await?;
    node.print("wasmpod node (TCP front -> pod network)");
    instance.kill();

    match find_on_path("wasmtime") {
        None => println!("  wasmtime serve: skipped: wasmtime CLI not installed"),
        Some(wasmtime) => {
            let figures = wasmtime_serve(&wasmtime, &component).await?;
            figures.print("wasmtime serve (same component)");
            println!(
                "  wasmpod / wasmtime serve: {:.0} % (target >= 50 %)",
                100.0 * node.rate() / figures.rate()
            );
        }
    }
    Ok(())
}

/// Forwards every connection of `front` to the pod's port through the
/// fabric, as the node's NodePort listeners do.
async fn forward(front: TcpListener, fabric: Fabric) {
    loop {
        let Ok((mut client, peer)) = front.accept().await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let fabric = fabric.clone();
        tokio::spawn(async move {
            let dst = SocketAddr::from((POD_IP, PORT));
            if let Ok(mut pod) = fabric.connect(peer, dst, false).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut pod).await;
            }
        });
    }
}

/// What one load run measured.
struct Figures {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, what: &str) {
        let rate = self.rate();
        println!(
            "  {what}: {rate:.0} requests/s with {CLIENTS} keep-alive clients \
             (p50 {:.0} µs, p99 {:.0} µs, {} errors)",
            percentile(&self.latencies, 0.50).as_secs_f64() * 1e6,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1e6,
            self.errors
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `CLIENTS` keep-alive clients against `addr` for the warm-up and
/// then the measured period.
async fn load(addr: SocketAddr) -> anyhow::Result<Figures> {
    let start = Instant::now() + WARM_UP;
    let end = start + MEASURE;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(tokio::spawn(client(addr, start, end)));
    }
    let mut figures = Figures {
        requests: 0,
        errors: 0,
        elapsed: MEASURE,
        latencies: Vec::new(),
    };
    for client in clients {
        let (latencies, errors) = client.await??;
        figures.requests += latencies.len();
        figures.errors += errors;
        figures.latencies.extend(latencies);
    }
    figures.latencies.sort();
    if figures.requests == 0 {
        bail!("no request succeeded against {addr}");
    }
    Ok(figures)
}

/// One keep-alive client: requests until `end`, recording the latencies of
/// those sent after `start`.
async fn client(
    addr: SocketAddr,
    start: Instant,
    end: Instant,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut latencies = Vec::new();
    let mut errors = 0;
    loop {
        let began = Instant::now();
        if began >= end {
            break;
        }
        sender.ready().await?;
        let request = hyper::Request::get("/bench")
            .header("host", "http-echo")
            .body(Empty::new())?;
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let ok = response.status().is_success();
                response.into_body().collect().await.is_ok() && ok
            }
            Err(_) => false,
        };
        if began >= start {
            if ok {
                latencies.push(began.elapsed());
            } else {
                errors += 1;
            }
        }
        if !ok && sender.is_closed() {
            bail!("the server closed the connection");
        }
    }
    Ok((latencies, errors))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Serves the component with `wasmtime serve` on a free port and loads it.
async fn wasmtime_serve(wasmtime: &Path, component: &Path) -> anyhow::Result<Figures> {
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut child = tokio::process::Command::new(wasmtime)
        .arg("serve")
        .arg("-Scli")
        .arg("--addr")
        .arg(addr.to_string())
        .arg(component)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting wasmtime serve")?;
    let ready = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > ready {
            bail!("wasmtime serve did not listen on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let figures = load(addr).await;
    let _ = child.kill().await;
    figures
}
