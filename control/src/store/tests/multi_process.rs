//! Several store instances on one Postgres schema, as several control-plane
//! processes would run: revisions stay gap-free across them and each one's
//! watches see the others' writes in order.

use super::concurrency::write_concurrently;
use super::{Backend, TestDb, assert_consecutive, next_events, pod, pod_key, run};
use crate::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_another_instance_reach_watches_in_order() -> anyhow::Result<()> {
    run(Backend::Postgres, |db: TestDb| async move {
        let a = db.open().await?;
        let b = db.open().await?;
        let mut on_a = a.watch("pods", None, 0)?;
        let mut on_b = b.watch("pods", None, 0)?;
        let writers = [a.clone(), b.clone(), a.clone(), b.clone()];
        let mut tasks = Vec::new();
        for (w, store) in writers.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for i in 0..30 {
                    let name = format!("w{w}-{i}");
                    store
                        .create(pod_key("default", &name), pod("default", &name))
                        .await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        for watch in [&mut on_a, &mut on_b] {
            let events = next_events(watch, 120).await?;
            let revisions: Vec<i64> = events.iter().map(|e| e.revision).collect();
            assert_consecutive(&revisions, 1);
        }
        close_all(&[a, b]).await;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_in_two_instances_get_gap_free_revisions() -> anyhow::Result<()> {
    run(Backend::Postgres, |db: TestDb| async move {
        let stores = [db.open().await?, db.open().await?];
        write_concurrently(&stores).await?;
        close_all(&stores).await;
        Ok(())
    })
    .await
}

async fn close_all(stores: &[Store]) {
    for store in stores {
        store.close().await;
    }
}
