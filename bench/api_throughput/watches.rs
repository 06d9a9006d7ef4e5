//! Watch delivery latency: many open `?watch=true` streams on ConfigMaps of
//! one namespace while one writer creates ConfigMaps at a steady rate. Each
//! ConfigMap carries its sequence number and the moment its create was sent
//! (microseconds since a base instant of this process), so every watcher
//! can time every event it reads and tell which ones it got.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::report::Latencies;

const NAMESPACE: &str = "bench-watch";
const SEQ_KEY: &str = "bench-seq";
const SENT_KEY: &str = "bench-sent-us";
/// The keys as they appear in an event line, value quote included.
const SEQ_NEEDLE: &[u8] = br#""bench-seq":""#;
const SENT_NEEDLE: &[u8] = br#""bench-sent-us":""#;

/// Watches that may be opening at once, so the server's accept queue and
/// the client's connect path are not flooded.
const OPENING_AT_ONCE: usize = 64;

/// What to measure.
pub struct WatchLoad {
    pub watchers: usize,
    pub creates_per_second: u32,
    pub duration: Duration,
    /// How long after the last create the watchers may take to catch up
    /// before the missing deliveries are counted as lost.
    pub drain: Duration,
}

impl WatchLoad {
    fn events(&self) -> usize {
        (f64::from(self.creates_per_second) * self.duration.as_secs_f64()).round() as usize
    }
}

/// What one run measured.
pub struct WatchRun {
    pub watchers: usize,
    /// Creates answered 201: each watcher should see each of them once.
    pub events: usize,
    pub write_failures: usize,
    pub first_write_failure: Option<String>,
    /// From the first create sent to the last one answered.
    pub write_wall: Duration,
    pub create_latencies: Latencies,
    /// Receive time minus send time, over every delivery.
    pub deliveries: Latencies,
    pub expected_deliveries: u64,
    /// Distinct (watcher, event) pairs received.
    pub received_deliveries: u64,
    pub duplicates: u64,
    /// Watchers that received every event.
    pub complete_watchers: usize,
    /// Streams that ended early, failed, or carried an ERROR event.
    pub stream_errors: usize,
    pub first_stream_error: Option<String>,
    /// Time to open all the watches.
    pub open_wall: Duration,
}

/// What one watcher saw.
struct WatcherResult {
    latencies: Latencies,
    distinct: usize,
    duplicates: u64,
    error: Option<String>,
}

/// Runs the whole measurement against the server at `base_url`.
pub async fn run(base_url: &str, load: &WatchLoad) -> anyhow::Result<WatchRun> {
    let writer = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()?;
    // Watch connections are never idle, so this client's pool only ever
    // holds streams in use.
    let watcher_client = reqwest::Client::builder().tcp_nodelay(true).build()?;

    create_namespace(&writer, base_url).await?;
    let list_rv = list_revision(&writer, base_url).await?;
    let events = load.events();
    let base = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);

    let open_started = Instant::now();
    let url: Arc<str> = format!(
        "{base_url}/api/v1/namespaces/{NAMESPACE}/configmaps?watch=true&resourceVersion={list_rv}"
    )
    .into();
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let (opened_tx, mut opened_rx) = mpsc::channel::<Result<(), String>>(load.watchers);
    let mut watchers = Vec::with_capacity(load.watchers);
    for _ in 0..load.watchers {
        let watcher = Watcher {
            client: watcher_client.clone(),
            url: url.clone(),
            base,
            events,
            received: received.clone(),
            stop: stop_rx.clone(),
        };
        let opening = opening.clone();
        let opened = opened_tx.clone();
        watchers.push(tokio::spawn(watcher.run(opening, opened)));
    }
    drop(opened_tx);
    for _ in 0..load.watchers {
        match opened_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => bail!("opening a watch: {e}"),
            None => bail!("a watcher ended before its watch was open"),
        }
    }
    let open_wall = open_started.elapsed();

    let writes = write(&writer, base_url, load, events, base).await?;
    let expected = writes.created as u64 * load.watchers as u64;
    let drain_deadline = Instant::now() + load.drain;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Nothing more is coming that the figure may count.
    let _ = stop_tx.send(true);

    let mut run = WatchRun {
        watchers: load.watchers,
        events: writes.created,
        write_failures: writes.failures,
        first_write_failure: writes.first_failure,
        write_wall: writes.wall,
        create_latencies: writes.latencies,
        deliveries: Latencies::with_capacity(expected as usize),
        expected_deliveries: expected,
        received_deliveries: 0,
        duplicates: 0,
        complete_watchers: 0,
        stream_errors: 0,
        first_stream_error: None,
        open_wall,
    };
    for watcher in watchers {
        let result = watcher.await.context("a watcher panicked")?;
        run.received_deliveries += result.distinct as u64;
        run.duplicates += result.duplicates;
        if result.distinct >= writes.created {
            run.complete_watchers += 1;
        }
        if let Some(e) = result.error {
            run.stream_errors += 1;
            run.first_stream_error.get_or_insert(e);
        }
        run.deliveries.extend(result.latencies);
    }
    Ok(run)
}

async fn create_namespace(client: &reqwest::Client, base_url: &str) -> anyhow::Result<()> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{NAMESPACE}"}}}}"#);
    let resp = client
        .post(format!("{base_url}/api/v1/namespaces"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    if status != reqwest::StatusCode::CREATED {
        bail!(
            "creating namespace {NAMESPACE}: HTTP {status}: {}",
            resp.text().await?
        );
    }
    Ok(())
}

/// The list's resourceVersion, which the watches start from.
async fn list_revision(client: &reqwest::Client, base_url: &str) -> anyhow::Result<String> {
    let resp = client
        .get(format!(
            "{base_url}/api/v1/namespaces/{NAMESPACE}/configmaps"
        ))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("listing configmaps: HTTP {status}: {text}");
    }
    let list: Value = serde_json::from_str(&text).context("the list is not JSON")?;
    list["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the list has no resourceVersion: {text}"))
}

struct Writes {
    created: usize,
    failures: usize,
    first_failure: Option<String>,
    wall: Duration,
    latencies: Latencies,
}

/// Creates `events` ConfigMaps at the load's rate. Open loop: each create is
/// sent on its tick whether or not the previous one was answered, so a slow
/// answer does not lower the offered rate.
async fn write(
    client: &reqwest::Client,
    base_url: &str,
    load: &WatchLoad,
    events: usize,
    base: Instant,
) -> anyhow::Result<Writes> {
    let url: Arc<str> = format!("{base_url}/api/v1/namespaces/{NAMESPACE}/configmaps").into();
    let period = Duration::from_secs(1) / load.creates_per_second.max(1);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut creates = Vec::with_capacity(events);
    for seq in 0..events {
        ticks.tick().await;
        let client = client.clone();
        let url = url.clone();
        creates.push(tokio::spawn(async move {
            let sent = Instant::now();
            let sent_us = sent.duration_since(base).as_micros();
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{seq}"}},"data":{{"{SEQ_KEY}":"{seq}","{SENT_KEY}":"{sent_us}"}}}}"#
            );
            let outcome = client
                .post(&*url)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            let outcome = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    resp.bytes().await.map(|b| (status, b))
                }
                Err(e) => Err(e),
            };
            let latency = sent.elapsed();
            match outcome {
                Ok((status, _)) if status == reqwest::StatusCode::CREATED => Ok(latency),
                Ok((status, body)) => Err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                )),
                Err(e) => Err(format!("{e:#}")),
            }
        }));
    }
    let mut writes = Writes {
        created: 0,
        failures: 0,
        first_failure: None,
        wall: Duration::ZERO,
        latencies: Latencies::with_capacity(events),
    };
    for create in creates {
        match create.await.context("a create panicked")? {
            Ok(latency) => {
                writes.created += 1;
                writes.latencies.push(latency);
            }
            Err(e) => {
                writes.failures += 1;
                writes.first_failure.get_or_insert(e);
            }
        }
    }
    writes.wall = started.elapsed();
    Ok(writes)
}

/// One watch stream's reader.
struct Watcher {
    client: reqwest::Client,
    url: Arc<str>,
    base: Instant,
    /// Sequence numbers run from 0 to this (exclusive).
    events: usize,
    /// Distinct deliveries over all watchers, for knowing when all arrived.
    received: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

impl Watcher {
    async fn run(
        mut self,
        opening: Arc<Semaphore>,
        opened: mpsc::Sender<Result<(), String>>,
    ) -> WatcherResult {
        let mut result = WatcherResult {
            latencies: Latencies::with_capacity(self.events),
            distinct: 0,
            duplicates: 0,
            error: None,
        };
        let permit = opening.acquire_owned().await;
        let resp = match self.client.get(&*self.url).send().await {
            Ok(resp) if resp.status().is_success() => resp,
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let _ = opened.send(Err(format!("HTTP {status}: {text}"))).await;
                return result;
            }
            Err(e) => {
                let _ = opened.send(Err(format!("{e:#}"))).await;
                return result;
            }
        };
        drop(permit);
        let _ = opened.send(Ok(())).await;

        let mut seen = vec![false; self.events];
        let mut partial: Vec<u8> = Vec::new();
        let mut stream = resp.bytes_stream();
        loop {
            let chunk = tokio::select! {
                biased;
                _ = self.stop.changed() => break,
                chunk = stream.next() => chunk,
            };
            // All lines of one read arrived at the same moment.
            let now_us = self.base.elapsed().as_micros();
            let chunk = match chunk {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    result.error = Some(format!("reading the watch: {e:#}"));
                    break;
                }
                None => {
                    result.error = Some("the server ended the watch".into());
                    break;
                }
            };
            partial.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(len) = partial[start..].iter().position(|&b| b == b'\n') {
                let line = &partial[start..start + len];
                start += len + 1;
                if let Err(e) = self.record(line, now_us, &mut seen, &mut result) {
                    result.error.get_or_insert(e);
                }
            }
            partial.drain(..start);
        }
        result
    }

    /// Accounts for one event line.
    fn record(
        &self,
        line: &[u8],
        now_us: u128,
        seen: &mut [bool],
        result: &mut WatcherResult,
    ) -> Result<(), String> {
        if line.starts_with(br#"{"type":"BOOKMARK""#) {
            return Ok(());
        }
        if !line.starts_with(br#"{"type":"ADDED""#) {
            return Err(format!(
                "unexpected event: {}",
                String::from_utf8_lossy(&line[..line.len().min(300)])
            ));
        }
        let seq = data_value(line, SEQ_NEEDLE).and_then(|s| usize::try_from(s).ok());
        let sent_us = data_value(line, SENT_NEEDLE);
        let (Some(seq), Some(sent_us)) = (seq, sent_us) else {
            return Err("an ADDED event without the benchmark's data fields".into());
        };
        let Some(slot) = seen.get_mut(seq) else {
            return Err(format!("an event with sequence number {seq} out of range"));
        };
        if *slot {
            result.duplicates += 1;
            return Ok(());
        }
        *slot = true;
        result.distinct += 1;
        self.received.fetch_add(1, Ordering::Relaxed);
        let latency_us = now_us.saturating_sub(u128::from(sent_us));
        result.latencies.push(Duration::from_micros(
            u64::try_from(latency_us).unwrap_or(u64::MAX),
        ));
        Ok(())
    }
}

/// The number after `needle` (`"<key>":"`) inside an event line. A
/// substring search, not a JSON parse, so the reader spends as little of the
/// shared CPU as possible; the keys are unique to the benchmark's ConfigMaps.
fn data_value(line: &[u8], needle: &[u8]) -> Option<u64> {
    let at = line.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits = &line[at..];
    let end = digits.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}
