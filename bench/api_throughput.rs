//! `cargo bench --bench api_throughput`: the API server's throughput and
//! latency figures of DESIGN.md §7, measured against the real `wasmpod
//! server` binary as a child process: pod creates per second on SQLite and
//! on Postgres, watch delivery latency with 1,000 open watches, and the
//! server's idle resident memory. The report (stdout) prints every figure
//! beside its target and its anchor; progress goes to stderr.

#[path = "bench_main.rs"]
mod bench_main;
#[path = "api_throughput/creates.rs"]
mod creates;
#[path = "api_throughput/postgres.rs"]
mod postgres;
#[path = "api_throughput/report.rs"]
mod report;
#[path = "api_throughput/server.rs"]
mod server;
#[path = "api_throughput/watches.rs"]
mod watches;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use creates::CreateRun;
use report::{Row, Verdict, mb, ms, thousands};
use server::{ProcSample, Server};
use watches::{WatchLoad, WatchRun};

const CONCURRENT_CLIENTS: usize = 32;
const WARMUP_CREATES: usize = 1_000;
const MEASURED_CREATES: usize = 20_000;
const IDLE_AFTER_START: Duration = Duration::from_secs(5);
const IDLE_AFTER_LOAD: Duration = Duration::from_secs(10);
const WATCH_LOAD: WatchLoad = WatchLoad {
    watchers: 1_000,
    creates_per_second: 200,
    duration: Duration::from_secs(5),
    drain: Duration::from_secs(10),
};

const CREATES_PER_SECOND_SQLITE: f64 = 3_000.0;
const CREATES_PER_SECOND_POSTGRES: f64 = 1_500.0;
const CREATE_P99: Duration = Duration::from_millis(20);
const WATCH_P99: Duration = Duration::from_millis(50);
const IDLE_RSS_BYTES: u64 = 40_000_000;

const ANCHOR_MUTATING: &str = "Kubernetes SLO: mutating API call p99 <= 1 s";
const ANCHOR_WATCH: &str = "Kubernetes SLO: pod startup p99 <= 5 s (watch delivery is part of it)";
const ANCHOR_RSS: &str = "k3s server ~1.6 GB";

fn main() -> ExitCode {
    bench_main::run(env!("CARGO_CRATE_NAME"), Some("info"), run)
}

/// Wall time, the CPU time the server, this load generator and the whole
/// machine used, and the server's resident memory at the end.
struct Usage {
    wall: Duration,
    server_cpu: Duration,
    bench_cpu: Duration,
    machine_cpu: Duration,
    server_rss_kib: u64,
}

/// Takes the CPU counters at the start of a phase.
struct Meter {
    started: Instant,
    server: ProcSample,
    bench: ProcSample,
    machine: Duration,
}

impl Meter {
    fn start(server: &Server) -> anyhow::Result<Meter> {
        Ok(Meter {
            started: Instant::now(),
            server: server.sample()?,
            bench: ProcSample::read("/proc/self")?,
            machine: server::machine_busy()?,
        })
    }

    fn finish(self, server: &Server) -> anyhow::Result<Usage> {
        let wall = self.started.elapsed();
        let server_now = server.sample()?;
        let bench_now = ProcSample::read("/proc/self")?;
        let machine_now = server::machine_busy()?;
        Ok(Usage {
            wall,
            server_cpu: server_now.cpu.saturating_sub(self.server.cpu),
            bench_cpu: bench_now.cpu.saturating_sub(self.bench.cpu),
            machine_cpu: machine_now.saturating_sub(self.machine),
            server_rss_kib: server_now.rss_kib,
        })
    }
}

/// What the SQLite server measured.
struct SqliteResults {
    creates: CreateRun,
    creates_usage: Usage,
    watch: WatchRun,
    watch_usage: Usage,
    idle_start: ProcSample,
    idle_after_load: ProcSample,
}

/// The Postgres row: measured, or why not.
enum PostgresResults {
    Measured { creates: CreateRun, usage: Usage },
    NotMeasured { reason: String },
}

/// Runs everything and prints the report; false when the run itself
/// failed (failed requests, or a Postgres that was asked for and is not
/// there). Missing a target is a result, not a failure.
async fn run() -> anyhow::Result<bool> {
    let mut sqlite = measure_sqlite().await?;
    let pg_target = postgres::Target::from_env();
    let (mut postgres, pg_ok) = measure_postgres(&pg_target).await;
    let ok = print_report(&mut sqlite, &mut postgres, &pg_target) && pg_ok;
    Ok(ok)
}

/// One client for the create load: keep-alive connections, enough idle
/// slots that none of the concurrent clients ever reconnects.
fn create_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(CONCURRENT_CLIENTS * 2)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()?)
}

async fn measure_sqlite() -> anyhow::Result<SqliteResults> {
    let client = create_client()?;
    let mut server = Server::start(None)?;
    server.wait_ready(&client).await?;
    tracing::info!(pid = server.pid, url = %server.base_url, "SQLite server ready; idling");
    tokio::time::sleep(IDLE_AFTER_START).await;
    let idle_start = server.sample()?;

    let (creates, creates_usage) = measure_creates(&client, &server, "SQLite").await?;

    tracing::info!(
        watchers = WATCH_LOAD.watchers,
        rate = WATCH_LOAD.creates_per_second,
        "opening watches"
    );
    let meter = Meter::start(&server)?;
    let watch = watches::run(&server.base_url, &WATCH_LOAD).await?;
    let watch_usage = meter.finish(&server)?;

    // Every watch connection is closed by now (the watchers' streams were
    // dropped), so what stays resident is the server's own state.
    drop(client);
    tracing::info!("load done; idling");
    tokio::time::sleep(IDLE_AFTER_LOAD).await;
    let idle_after_load = server.sample()?;
    server.stop();
    Ok(SqliteResults {
        creates,
        creates_usage,
        watch,
        watch_usage,
        idle_start,
        idle_after_load,
    })
}

/// The Postgres row, and whether its outcome is acceptable: a Postgres
/// that is not reachable is only a failure when the caller named it.
async fn measure_postgres(target: &postgres::Target) -> (PostgresResults, bool) {
    let schema = match postgres::Schema::create(&target.url) {
        Ok(schema) => schema,
        Err(e) => {
            let reason = format!("Postgres at {} is not usable: {e:#}", target.url);
            tracing::warn!("{reason}");
            return (PostgresResults::NotMeasured { reason }, !target.explicit);
        }
    };
    let measured = async {
        let client = create_client()?;
        let mut server = Server::start(Some(&schema.datastore_url()))?;
        server.wait_ready(&client).await?;
        tracing::info!(pid = server.pid, "Postgres server ready");
        let (creates, usage) = measure_creates(&client, &server, "Postgres").await?;
        server.stop();
        anyhow::Ok(PostgresResults::Measured { creates, usage })
    }
    .await;
    // The schema is dropped only after the server has stopped.
    drop(schema);
    match measured {
        Ok(results) => (results, true),
        Err(e) => {
            let reason = format!("the Postgres run failed: {e:#}");
            tracing::error!("{reason}");
            (PostgresResults::NotMeasured { reason }, false)
        }
    }
}

/// Warm-up creates, then the measured ones.
async fn measure_creates(
    client: &reqwest::Client,
    server: &Server,
    store: &str,
) -> anyhow::Result<(CreateRun, Usage)> {
    tracing::info!(store, count = WARMUP_CREATES, "warm-up creates");
    let warmup = creates::run(
        client,
        &server.base_url,
        "warmup",
        WARMUP_CREATES,
        CONCURRENT_CLIENTS,
    )
    .await?;
    if let Some(failure) = warmup.first_failure {
        anyhow::bail!(
            "{} of the warm-up creates on {store} failed; the first: {failure}",
            warmup.failures
        );
    }
    tracing::info!(
        store,
        count = MEASURED_CREATES,
        clients = CONCURRENT_CLIENTS,
        "measured creates"
    );
    let meter = Meter::start(server)?;
    let run = creates::run(
        client,
        &server.base_url,
        "pod",
        MEASURED_CREATES,
        CONCURRENT_CLIENTS,
    )
    .await?;
    let usage = meter.finish(server)?;
    Ok((run, usage))
}

/// Prints the report; false when requests failed.
fn print_report(
    sqlite: &mut SqliteResults,
    postgres: &mut PostgresResults,
    pg_target: &postgres::Target,
) -> bool {
    let mut ok = true;
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    ok &= create_rows(
        &mut rows,
        &mut notes,
        "SQLite",
        &mut sqlite.creates,
        CREATES_PER_SECOND_SQLITE,
    );
    match postgres {
        PostgresResults::Measured { creates, .. } => {
            ok &= create_rows(
                &mut rows,
                &mut notes,
                "Postgres",
                creates,
                CREATES_PER_SECOND_POSTGRES,
            );
        }
        PostgresResults::NotMeasured { reason } => {
            rows.push(Row::new(
                "Pod creates/s, Postgres",
                "not measured (see below)",
                format!(
                    ">= {}/s, p99 <= {}",
                    thousands(CREATES_PER_SECOND_POSTGRES as u64),
                    ms(CREATE_P99)
                ),
                Verdict::None,
                ANCHOR_MUTATING,
            ));
            notes.push(format!(
                "Postgres row not measured ({} URL {}): {reason}",
                pg_target.source, pg_target.url
            ));
        }
    }
    ok &= watch_rows(&mut rows, &mut notes, &mut sqlite.watch);
    for (label, sample) in [
        ("Idle RSS after start (+5 s idle)", &sqlite.idle_start),
        (
            "Idle RSS after the load above (+10 s idle)",
            &sqlite.idle_after_load,
        ),
    ] {
        let bytes = sample.rss_kib * 1024;
        rows.push(Row::new(
            label,
            mb(bytes),
            format!("<= {}", mb(IDLE_RSS_BYTES)),
            Verdict::of(bytes <= IDLE_RSS_BYTES),
            ANCHOR_RSS,
        ));
    }
    notes.push(format!(
        "Server peak RSS (VmHWM) during the SQLite run: {}.",
        mb(sqlite.idle_after_load.peak_rss_kib * 1024)
    ));

    println!();
    println!("wasmpod API throughput benchmark");
    println!("{}", machine_line());
    println!(
        "The load generator (this process) runs on the same CPUs as the server, and so \
         does Postgres: the CPU times below show how the cores were shared (the whole \
         machine has {cpus}.00 cores to give).",
        cpus = std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!();
    print!("{}", report::results_table(&rows));
    println!();
    let mut usage_rows = vec![
        ("Pod creates, SQLite", &sqlite.creates_usage),
        ("Watch delivery, SQLite", &sqlite.watch_usage),
    ];
    if let PostgresResults::Measured { usage, .. } = &*postgres {
        usage_rows.push(("Pod creates, Postgres", usage));
    }
    print!("{}", usage_table(&usage_rows));
    println!();
    for note in notes {
        println!("- {note}");
    }
    ok
}

/// The throughput and latency rows of one create run; false when creates
/// failed.
fn create_rows(
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
    store: &str,
    run: &mut CreateRun,
    target_per_second: f64,
) -> bool {
    let per_second = run.per_second();
    let p50 = run.latencies.percentile(50.0);
    let p99 = run.latencies.percentile(99.0);
    let max = run.latencies.percentile(100.0);
    rows.push(Row::new(
        format!(
            "Pod creates/s, {store} ({CONCURRENT_CLIENTS} clients, {} creates)",
            thousands(run.count as u64)
        ),
        format!("{}/s", thousands(per_second.round() as u64)),
        format!(">= {}/s", thousands(target_per_second as u64)),
        Verdict::of(per_second >= target_per_second),
        ANCHOR_MUTATING,
    ));
    rows.push(Row::new(
        format!("Pod create latency p50 / p99, {store}"),
        format!("{} / {}", ms(p50), ms(p99)),
        format!("p99 <= {}", ms(CREATE_P99)),
        Verdict::of(p99 <= CREATE_P99),
        ANCHOR_MUTATING,
    ));
    notes.push(format!(
        "{store}: {} creates in {:.2} s after {} warm-up creates; max latency {}.",
        thousands(run.latencies.len() as u64),
        run.wall.as_secs_f64(),
        thousands(WARMUP_CREATES as u64),
        ms(max),
    ));
    if let Some(failure) = &run.first_failure {
        notes.push(format!(
            "{store}: {} creates FAILED; the first: {failure}",
            run.failures
        ));
        return false;
    }
    true
}

/// The watch rows; false when creates failed (missing deliveries are a
/// result, reported as such).
fn watch_rows(rows: &mut Vec<Row>, notes: &mut Vec<String>, run: &mut WatchRun) -> bool {
    let p50 = run.deliveries.percentile(50.0);
    let p99 = run.deliveries.percentile(99.0);
    let max = run.deliveries.percentile(100.0);
    let load = format!(
        "{} watches, {} ConfigMaps/s for {} s",
        thousands(run.watchers as u64),
        WATCH_LOAD.creates_per_second,
        WATCH_LOAD.duration.as_secs()
    );
    rows.push(Row::new(
        format!("Watch delivery latency p50 / p99 ({load})"),
        format!("{} / {}", ms(p50), ms(p99)),
        format!("p99 <= {}", ms(WATCH_P99)),
        Verdict::of(p99 <= WATCH_P99 && !run.deliveries.is_empty()),
        ANCHOR_WATCH,
    ));
    let complete = run.received_deliveries >= run.expected_deliveries && run.duplicates == 0;
    rows.push(Row::new(
        "Watch deliveries received (every watcher, every event, once)",
        format!(
            "{} / {}; {} of {} watchers got all",
            thousands(run.received_deliveries),
            thousands(run.expected_deliveries),
            thousands(run.complete_watchers as u64),
            thousands(run.watchers as u64),
        ),
        "all",
        Verdict::of(complete),
        "-",
    ));
    let mut creates = std::mem::take(&mut run.create_latencies);
    notes.push(format!(
        "Watch: latency is from just before the ConfigMap create was sent to the moment the \
         watcher read the event, so it includes the create's own commit (create latency p50 {} \
         / p99 {}); max delivery latency {}. {} creates in {:.2} s ({:.0}/s achieved); the \
         {} watches took {:.2} s to open.",
        ms(creates.percentile(50.0)),
        ms(creates.percentile(99.0)),
        ms(max),
        thousands(run.events as u64),
        run.write_wall.as_secs_f64(),
        run.events as f64 / run.write_wall.as_secs_f64().max(f64::EPSILON),
        thousands(run.watchers as u64),
        run.open_wall.as_secs_f64(),
    ));
    if run.duplicates > 0 {
        notes.push(format!(
            "Watch: {} events were delivered twice.",
            thousands(run.duplicates)
        ));
    }
    if let Some(e) = &run.first_stream_error {
        notes.push(format!(
            "Watch: {} streams failed or carried an unexpected event; the first: {e}",
            run.stream_errors
        ));
    }
    if let Some(failure) = &run.first_write_failure {
        notes.push(format!(
            "Watch: {} ConfigMap creates FAILED; the first: {failure}",
            run.write_failures
        ));
        return false;
    }
    true
}

/// Wall time next to the CPU time each process used, in cores.
fn usage_table(phases: &[(&str, &Usage)]) -> String {
    let cores = |cpu: Duration, wall: Duration| {
        format!(
            "{:.2} s ({:.2} cores)",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / wall.as_secs_f64().max(f64::EPSILON)
        )
    };
    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|(phase, usage)| {
            vec![
                (*phase).to_owned(),
                format!("{:.2} s", usage.wall.as_secs_f64()),
                cores(usage.server_cpu, usage.wall),
                cores(usage.bench_cpu, usage.wall),
                cores(usage.machine_cpu, usage.wall),
                mb(usage.server_rss_kib * 1024),
            ]
        })
        .collect();
    report::table(
        &[
            "Phase",
            "Wall time",
            "Server CPU",
            "Load generator CPU",
            "Whole machine CPU",
            "Server RSS at the end",
        ],
        &rows,
    )
}

/// CPUs, CPU model and memory of this machine, from `/proc`.
fn machine_line() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "Machine: {cpus} CPUs ({model}), {:.1} GiB RAM.",
        mem_kib as f64 / (1024.0 * 1024.0)
    )
}
