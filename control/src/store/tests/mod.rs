//! Tests of the store. Each runs against SQLite (a temporary file) and
//! against Postgres (a fresh schema of the database named by
//! `WASMPOD_TEST_POSTGRES_URL`; skipped with a notice when it is unset, and
//! failing when it is set but unreachable).

mod blobs;
mod compaction;
mod concurrency;
mod crud;
mod durability;
mod list;
mod multi_process;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

use super::{Event, Key, Store, StoreOptions, WatchStream};

pub(super) const POSTGRES_ENV: &str = "WASMPOD_TEST_POSTGRES_URL";

/// How long a test waits for an event before failing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

/// The database of one test.
#[derive(Clone, Debug)]
pub(super) struct TestDb {
    pub(super) url: String,
}

impl TestDb {
    pub(super) async fn open(&self) -> anyhow::Result<Store> {
        self.open_with(StoreOptions::default()).await
    }

    pub(super) async fn open_with(&self, options: StoreOptions) -> anyhow::Result<Store> {
        Store::open(&self.url, options)
            .await
            .with_context(|| format!("opening {}", self.url))
    }
}

/// Runs `test` on a fresh database of `backend`.
pub(super) async fn run<F, Fut>(backend: Backend, test: F) -> anyhow::Result<()>
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}", dir.path().join("store.db").display());
            test(TestDb { url }).await
        }
        Backend::Postgres => {
            let Ok(base) = std::env::var(POSTGRES_ENV) else {
                eprintln!("skipping the Postgres variant: {POSTGRES_ENV} is not set");
                return Ok(());
            };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::connect(&base)
                .await
                .with_context(|| format!("connecting to {base}"))?;
            admin
                .execute(format!("CREATE SCHEMA {schema}").as_str())
                .await?;
            let separator = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
            let result = test(TestDb { url }).await;
            // A failed test leaves its schema behind for inspection.
            if result.is_ok() {
                admin
                    .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                    .await?;
            }
            result
        }
    }
}

/// Declares, for each async fn `name(TestDb) -> anyhow::Result<()>`, the
/// tests `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::store::tests::{Backend, run};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                run(Backend::Sqlite, super::$name).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                run(Backend::Postgres, super::$name).await
            }
        }
    )*};
}
pub(super) use on_both_backends;

pub(super) fn pod_key(namespace: &str, name: &str) -> Key {
    Key::new("pods", namespace, name)
}

pub(super) fn pod(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}")},
        "spec": {"containers": [{"name": "app", "image": "app.wasm"}]},
    })
}

pub(super) fn resource_version(object: &Value) -> Option<i64> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
}

/// The next `n` events of `watch`, failing on an error or a stall.
pub(super) async fn next_events(
    watch: &mut WatchStream,
    n: usize,
) -> anyhow::Result<Vec<Arc<Event>>> {
    let mut events = Vec::with_capacity(n);
    while events.len() < n {
        let event = tokio::time::timeout(EVENT_TIMEOUT, watch.next())
            .await
            .with_context(|| format!("no event after {} of {n}", events.len()))?
            .context("watch ended")??;
        events.push(event);
    }
    Ok(events)
}

/// Fails unless `revisions` are exactly `first..first + len`, in order.
pub(super) fn assert_consecutive(revisions: &[i64], first: i64) {
    let expected: Vec<i64> = (first..first + revisions.len() as i64).collect();
    assert_eq!(
        revisions,
        expected.as_slice(),
        "revisions are not consecutive from {first}"
    );
}
