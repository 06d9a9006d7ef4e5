//! Crash safety: under a concurrent write load the server is killed with
//! SIGKILL; after a restart on the same data every create that was
//! acknowledged with a 2xx is there, on SQLite and on Postgres.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::postgres::PgSchema;
use common::{Cluster, unique};
use serde_json::{Value, json};

const WRITERS: usize = 8;

/// What the writers saw.
#[derive(Default)]
struct Outcome {
    /// Names whose create was answered with a 2xx.
    acknowledged: Vec<String>,
    /// Answers other than 2xx before the kill (none are expected).
    refused: Vec<String>,
}

fn acknowledged_creates_survive_kill9(mut c: Cluster) {
    let ns = unique("crash");
    c.create_namespace(&ns);
    let url = c.url(&format!("/api/v1/namespaces/{ns}/configmaps"));
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (client, url, stop, killed, outcome) =
                (c.client().clone(), url.clone(), stop.clone(), killed.clone(), outcome.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let name = format!("w{w}-{i}");
                    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                      "data": {"writer": w.to_string(), "seq": i.to_string()}});
                    let sent = client.post(&url).json(&body).timeout(Duration::from_secs(5)).send();
                    match sent {
                        Ok(resp) if resp.status().is_success() => {
                            outcome.lock().expect("outcome lock").acknowledged.push(name);
                        }
                        Ok(resp) if !killed.load(Ordering::Relaxed) => {
                            let status = resp.status();
                            let text = resp.text().unwrap_or_default();
                            outcome.lock().expect("outcome lock").refused.push(format!("{name}: {status} {text}"));
                        }
                        // Connection errors are expected once the server is gone.
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    killed.store(true, Ordering::Relaxed);
    c.kill9();
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("a writer thread panicked");
    }
    let outcome = std::mem::take(&mut *outcome.lock().expect("outcome lock"));
    assert!(
        outcome.refused.is_empty(),
        "creates refused under load: {:?}",
        &outcome.refused[..outcome.refused.len().min(5)]
    );
    assert!(
        outcome.acknowledged.len() >= 20,
        "the load made only {} creates",
        outcome.acknowledged.len()
    );

    eprintln!(
        "{} creates acknowledged before and during kill -9",
        outcome.acknowledged.len()
    );
    c.restart();
    let listed = c
        .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
        .expect(200)
        .clone();
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let stored: std::collections::HashMap<String, &Value> = items
        .iter()
        .filter_map(|o| {
            o["metadata"]["name"]
                .as_str()
                .map(|n| (n.to_string(), &o["data"]))
        })
        .collect();
    let lost: Vec<&String> = outcome
        .acknowledged
        .iter()
        .filter(|n| !stored.contains_key(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates were lost after kill -9, e.g. {:?}",
        lost.len(),
        outcome.acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
    for name in &outcome.acknowledged {
        let data = stored[name];
        let (writer, seq) = name
            .trim_start_matches('w')
            .split_once('-')
            .unwrap_or_default();
        assert_eq!(
            data,
            &json!({"writer": writer, "seq": seq}),
            "{name} came back with other data"
        );
    }

    // Revisions go on from where they were: a new write is newer than all.
    let max_rv = items
        .iter()
        .filter_map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    let fresh = c.create_configmap(&ns, "after-restart", json!({}));
    let fresh_rv: u64 = fresh["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        fresh_rv > max_rv,
        "a write after restart got revision {fresh_rv}, not above {max_rv}"
    );
}

#[test]
fn acknowledged_creates_survive_kill9_on_sqlite() {
    acknowledged_creates_survive_kill9(Cluster::start());
}

#[test]
fn acknowledged_creates_survive_kill9_on_postgres() {
    let schema = PgSchema::create();
    acknowledged_creates_survive_kill9(Cluster::start_with(Some(schema.datastore_url())));
}
