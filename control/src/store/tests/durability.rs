//! No acknowledged write is lost when the writing process is killed with
//! SIGKILL. The test runs its own test binary again as the child that
//! writes (the `kill_9_child_writer` entry below), reads the names the
//! child reports as acknowledged, kills it mid-stream, reopens the store
//! and checks every one of them.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{TestDb, on_both_backends, pod, pod_key};

on_both_backends!(acknowledged_writes_survive_kill_9);

/// Set for the child: the store URL to write to.
const CHILD_ENV: &str = "WASMPOD_STORE_KILL_CHILD_URL";
const CHILD_TEST: &str = "store::tests::durability::kill_9_child_writer";
const ACKS_BEFORE_KILL: usize = 300;

/// The child half of `acknowledged_writes_survive_kill_9`; returns at once
/// unless started by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_child_writer() -> anyhow::Result<()> {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return Ok(());
    };
    let store = crate::store::Store::open(&url, Default::default()).await?;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("t{t}-{i}");
                store
                    .create(pod_key("default", &name), pod("default", &name))
                    .await?;
                // Printed only once the commit returned: an acknowledgement.
                println!("ack {name}");
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

async fn acknowledged_writes_survive_kill_9(db: TestDb) -> anyhow::Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = HashSet::new();
    let read_acks = async {
        while acked.len() < ACKS_BEFORE_KILL {
            let line = lines
                .next_line()
                .await?
                .context("child exited before being killed")?;
            if let Some(name) = line.strip_prefix("ack ") {
                acked.insert(name.to_owned());
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), read_acks)
        .await
        .context("child too slow")??;
    // SIGKILL: no destructors, no graceful close.
    child.kill().await?;
    // Acknowledgements printed before the kill landed count too.
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(name) = line.strip_prefix("ack ") {
            acked.insert(name.to_owned());
        }
    }

    let store = db.open().await?;
    for name in &acked {
        anyhow::ensure!(
            store.get(&pod_key("default", name)).await?.is_some(),
            "acknowledged {name} was lost"
        );
    }
    let all = store.list("pods", None, None, None).await?;
    assert!(all.items.len() >= acked.len());
    // Only creates happened, so the revision counts the objects exactly.
    assert_eq!(all.revision, all.items.len() as i64);
    store.close().await;
    Ok(())
}
