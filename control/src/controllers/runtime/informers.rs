//! Starting a controller's informers together and running its reconcile
//! loop once every cache is complete, so each controller's `run` is only
//! what it watches and how it reconciles.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ListableResource, Metadata};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Action, Controller, Informer, ObjectRef, Synced};

/// The running informers of one controller.
pub struct Informers {
    stop: CancellationToken,
    synced: Vec<Synced>,
    tasks: Vec<JoinHandle<()>>,
}

impl Informers {
    /// Informers that watch until `stop` is cancelled.
    pub fn new(stop: &CancellationToken) -> Self {
        Self {
            stop: stop.clone(),
            synced: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// Starts watching with `informer` (its handlers and caches must be
    /// taken before).
    pub fn start<K>(&mut self, informer: Informer<K>)
    where
        K: ListableResource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Send + Sync + 'static,
    {
        self.synced.push(informer.synced());
        self.tasks
            .push(tokio::spawn(informer.run(self.stop.clone())));
    }

    /// Waits until every informer has listed once; false if stopped first.
    pub async fn wait_synced(&self) -> bool {
        let all = futures::future::join_all(self.synced.iter().cloned().map(Synced::wait));
        tokio::select! {
            () = self.stop.cancelled() => false,
            _ = all => true,
        }
    }

    /// Runs `controller` once the caches are complete, until stop; then
    /// shuts its queue down and waits for the informers to end.
    pub async fn run_controller<Ctx, R, Fut, E, P>(
        self,
        controller: Controller<Ctx>,
        reconcile: R,
        error_policy: P,
    ) where
        Ctx: Send + Sync + 'static,
        R: Fn(ObjectRef, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
        P: Fn(&ObjectRef, &E, &Ctx) -> Action + Send + Sync + 'static,
    {
        let queue = controller.queue().clone();
        if self.wait_synced().await {
            controller
                .run(reconcile, error_policy, self.stop.clone())
                .await;
        }
        queue.shut_down();
        self.join().await;
    }

    /// Waits for every informer task to end (after stop).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
