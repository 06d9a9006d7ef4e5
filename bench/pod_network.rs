//! `cargo bench --bench pod_network`: TCP between two pods on one node,
//! over the virtual network (an in-memory stream between two wasm
//! components, through `wasi:sockets`), next to native loopback TCP
//! between two host threads in the same run.
//!
//! Round trips: the echo-client (`MODE=bench-rtt`) sends `ping N` lines to
//! the echo-server, one at a time; p50 and p99 in microseconds.
//! Throughput: the echo-client (`MODE=bench-throughput`) sends 256 MiB to
//! the echo-server in sink mode; MB/s until the sink's count comes back.
//! The guests measure with their own clocks and print one line each,
//! which the report copies. Needs `scripts/build-examples.sh` first.

#[path = "bench_main.rs"]
mod bench_main;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasmpod_node::network::{Fabric, FabricConfig, PodNetwork};
use wasmpod_node::runtime::{
    ExitStatus, InstanceSpec, LogFile, Program, Runtime, RuntimeConfig, log_format,
};

const ROUND_TRIPS: u64 = 10_000;
const BYTES: u64 = 256 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 3);
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), None, run)
}

/// One measurement: round-trip percentiles and throughput.
struct Figures {
    p50_us: f64,
    p99_us: f64,
    mb_per_s: f64,
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = Runtime::new(RuntimeConfig::new(dir.path().join("cache")))
        .context("starting the wasm runtime")?;
    let server = load(&runtime, "echo-server")?;
    let client = load(&runtime, "echo-client")?;
    let fabric = Fabric::new(FabricConfig::default());
    let server_pod = fabric.attach(SERVER_IP, "default", false);
    let client_pod = fabric.attach(CLIENT_IP, "default", false);

    eprintln!(
        "pod to pod: {ROUND_TRIPS} round trips, then {} MiB ...",
        BYTES >> 20
    );
    let pods = pod_to_pod(
        &runtime,
        dir.path(),
        &server,
        &client,
        &server_pod,
        &client_pod,
    )
    .await?;
    eprintln!("native loopback: the same ...");
    let native = tokio::task::spawn_blocking(native_loopback)
        .await
        .context("the native benchmark thread")??;

    println!();
    println!("wasmpod pod network benchmark (same node, pod IP to pod IP)");
    println!(
        "{:<34} {:>10} {:>10} {:>12}",
        "path", "rtt p50", "rtt p99", "throughput"
    );
    for (name, figures) in [
        ("pod to pod (wasi:sockets, memory)", &pods),
        ("native loopback TCP (host threads)", &native),
    ] {
        println!(
            "{name:<34} {:>7.1} µs {:>7.1} µs {:>7.0} MB/s",
            figures.p50_us, figures.p99_us, figures.mb_per_s
        );
    }
    println!();
    println!(
        "- anchor: native loopback in the same run; Kubernetes pod-to-pod on one node goes \
         through a veth pair and a bridge, so it is slower than loopback"
    );
    println!(
        "- {ROUND_TRIPS} round trips of a `ping N` line; {} MiB in 64 KiB writes",
        BYTES >> 20
    );
    Ok(())
}

fn load(runtime: &Runtime, name: &str) -> anyhow::Result<Program> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("wasm-examples/out/wasip2")
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading {} (run scripts/build-examples.sh)", path.display()))?;
    runtime
        .load(&bytes)
        .with_context(|| format!("loading {name}"))
}

async fn pod_to_pod(
    runtime: &Runtime,
    dir: &Path,
    server: &Program,
    client: &Program,
    server_pod: &PodNetwork,
    client_pod: &PodNetwork,
) -> anyhow::Result<Figures> {
    let start = async |program: &Program, pod: &PodNetwork, name: &str, env: &[(&str, String)]| {
        let log = LogFile::create(dir.join(format!("{name}.log")), 16 << 20)
            .with_context(|| format!("creating the log of {name}"))?;
        let spec = InstanceSpec {
            args: vec![name.to_owned()],
            env: env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
            stdout: Some(log.stdout()),
            stderr: Some(log.stderr()),
            network: Some(pod.clone()),
            ..InstanceSpec::default()
        };
        let instance = runtime
            .start(program, spec)
            .await
            .with_context(|| format!("starting {name}"))?;
        anyhow::Ok((instance, log))
    };
    let _echo = start(
        server,
        server_pod,
        "echo",
        &[("LISTEN", "0.0.0.0:7000".into())],
    )
    .await?;
    let _sink = start(
        server,
        server_pod,
        "sink",
        &[("LISTEN", "0.0.0.0:7001".into()), ("MODE", "sink".into())],
    )
    .await?;
    let rtt = start(
        client,
        client_pod,
        "rtt",
        &[
            ("MODE", "bench-rtt".into()),
            ("TARGET", format!("{SERVER_IP}:7000")),
            ("COUNT", ROUND_TRIPS.to_string()),
        ],
    )
    .await?;
    let rtt_line = finished(&rtt.0, &rtt.1, "bench-rtt").await?;
    let throughput = start(
        client,
        client_pod,
        "throughput",
        &[
            ("MODE", "bench-throughput".into()),
            ("TARGET", format!("{SERVER_IP}:7001")),
            ("BYTES", BYTES.to_string()),
        ],
    )
    .await?;
    let throughput_line = finished(&throughput.0, &throughput.1, "bench-throughput").await?;
    Ok(Figures {
        p50_us: field(&rtt_line, "p50_us")?,
        p99_us: field(&rtt_line, "p99_us")?,
        mb_per_s: field(&throughput_line, "mb_per_s")?,
    })
}

/// Waits for a benchmark client to exit and returns its figures line.
async fn finished(
    instance: &wasmpod_node::runtime::Instance,
    log: &LogFile,
    prefix: &str,
) -> anyhow::Result<String> {
    let status = tokio::time::timeout(RUN_TIMEOUT, instance.wait())
        .await
        .with_context(|| format!("{prefix} did not finish in {RUN_TIMEOUT:?}"))?;
    let output = logged(log)?;
    if status != (ExitStatus::Exit { code: 0 }) {
        bail!("{prefix} ended with {status:?}:\n{output}");
    }
    match output.lines().find(|line| line.starts_with(prefix)) {
        Some(line) => Ok(line.to_owned()),
        None => bail!("{prefix} printed no figures:\n{output}"),
    }
}

/// The text a guest wrote to its log.
fn logged(log: &LogFile) -> anyhow::Result<String> {
    let file = std::fs::read(log.path()).context("reading a guest's log")?;
    let mut text = String::new();
    for record in file.split(|&b| b == b'\n').filter_map(log_format::parse) {
        text.push_str(&String::from_utf8_lossy(record.text));
        if !record.partial {
            text.push('\n');
        }
    }
    Ok(text)
}

/// `name=value` from a figures line.
fn field(line: &str, name: &str) -> anyhow::Result<f64> {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .with_context(|| format!("no {name} in {line:?}"))?
        .parse()
        .with_context(|| format!("{name} in {line:?} is not a number"))
}

/// The same two measurements between two host threads over 127.0.0.1.
fn native_loopback() -> anyhow::Result<Figures> {
    let echo = TcpListener::bind("127.0.0.1:0").context("binding the echo listener")?;
    let echo_addr = echo.local_addr()?;
    let echo_thread = std::thread::spawn(move || -> std::io::Result<()> {
        let (stream, _) = echo.accept()?;
        let mut reader = BufReader::new(&stream);
        let mut writer = &stream;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            writer.write_all(&line)?;
        }
    });
    let stream = TcpStream::connect(echo_addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut micros = Vec::with_capacity(ROUND_TRIPS as usize);
    let mut reply = String::new();
    for sequence in 0..ROUND_TRIPS {
        let began = Instant::now();
        writer.write_all(format!("ping {sequence}\n").as_bytes())?;
        reply.clear();
        reader.read_line(&mut reply)?;
        micros.push(began.elapsed().as_secs_f64() * 1e6);
    }
    drop(reader);
    stream.shutdown(Shutdown::Both)?;
    let _ = echo_thread.join();
    micros.sort_by(f64::total_cmp);

    let sink = TcpListener::bind("127.0.0.1:0").context("binding the sink listener")?;
    let sink_addr = sink.local_addr()?;
    let sink_thread = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = sink.accept()?;
        let mut buffer = vec![0u8; CHUNK];
        let mut total: u64 = 0;
        loop {
            match stream.read(&mut buffer)? {
                0 => break,
                n => total += n as u64,
            }
        }
        writeln!(stream, "received {total} bytes")
    });
    let mut stream = TcpStream::connect(sink_addr)?;
    let chunk = vec![b'x'; CHUNK];
    let began = Instant::now();
    let mut left = BYTES;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    let seconds = began.elapsed().as_secs_f64();
    let _ = sink_thread.join();
    if answer.trim_end() != format!("received {BYTES} bytes") {
        bail!("the native sink answered {answer:?}");
    }
    Ok(Figures {
        p50_us: percentile(&micros, 50.0),
        p99_us: percentile(&micros, 99.0),
        mb_per_s: BYTES as f64 / seconds / 1e6,
    })
}

/// The `p`th percentile of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
