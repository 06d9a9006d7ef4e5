//! Pod creates through HTTP: a fixed number of `POST .../pods`, shared by a
//! fixed number of concurrent clients (closed loop: each client sends its
//! next create when the previous one is answered).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::CONTENT_TYPE;

use crate::report::Latencies;

/// What one run of creates measured.
pub struct CreateRun {
    pub count: usize,
    pub wall: Duration,
    /// Latency of every create answered 201.
    pub latencies: Latencies,
    /// Creates not answered 201, and the first such answer.
    pub failures: usize,
    pub first_failure: Option<String>,
}

impl CreateRun {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }
}

/// A small valid pod: one container with a name and an image.
fn pod_body(prefix: &str, i: usize) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{prefix}-{i}"}},"spec":{{"containers":[{{"name":"app","image":"registry.example/bench/app.wasm"}}]}}}}"#
    )
}

/// Creates `count` pods named `<prefix>-<i>` in `default` with
/// `concurrency` clients sharing `client`'s connection pool.
pub async fn run(
    client: &reqwest::Client,
    base_url: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<CreateRun> {
    let url: Arc<str> = format!("{base_url}/api/v1/namespaces/default/pods").into();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.clone();
        let next = next.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::with_capacity(count / concurrency + 1);
            let mut failures = 0;
            let mut first_failure = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let body = pod_body(&prefix, i);
                let sent = Instant::now();
                let outcome = client
                    .post(&*url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                // The body is read in full so the connection goes back to
                // the pool, and that is part of the request's latency.
                let outcome = match outcome {
                    Ok(resp) => {
                        let status = resp.status();
                        resp.bytes().await.map(|b| (status, b))
                    }
                    Err(e) => Err(e),
                };
                let latency = sent.elapsed();
                match outcome {
                    Ok((status, _)) if status == reqwest::StatusCode::CREATED => {
                        latencies.push(latency);
                    }
                    Ok((status, body)) => {
                        failures += 1;
                        first_failure.get_or_insert_with(|| {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        failures += 1;
                        first_failure.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (latencies, failures, first_failure)
        }));
    }
    let mut run = CreateRun {
        count,
        wall: Duration::ZERO,
        latencies: Latencies::with_capacity(count),
        failures: 0,
        first_failure: None,
    };
    for task in tasks {
        let (latencies, failures, first_failure) =
            task.await.context("a create client panicked")?;
        run.latencies.extend(latencies);
        run.failures += failures;
        if run.first_failure.is_none() {
            run.first_failure = first_failure;
        }
    }
    run.wall = started.elapsed();
    Ok(run)
}
