//! The reconcile loop: workers take keys from a [`WorkQueue`], call the
//! reconciler, and requeue the key as its [`Action`] (or, on error, the
//! error policy's) says.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ObjectRef, WorkQueue};

/// What to do with a key after reconciling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next change of a watched object; resets the key's
    /// backoff.
    Done,
    /// Reconcile the key again after this long (a periodic check, or a
    /// deadline the reconciler knows); resets the key's backoff.
    RequeueAfter(Duration),
    /// Reconcile the key again after its per-key exponential backoff (the
    /// queue's [`super::Backoff`]), counting one more failure.
    Backoff,
}

impl Action {
    pub fn done() -> Self {
        Self::Done
    }

    pub fn requeue_after(delay: Duration) -> Self {
        Self::RequeueAfter(delay)
    }
}

/// Runs a reconciler over the keys of a queue with a bounded number of
/// concurrent reconciles (never two for one key: the queue guarantees it).
pub struct Controller<Ctx> {
    queue: WorkQueue<ObjectRef>,
    ctx: Arc<Ctx>,
    concurrency: usize,
    name: &'static str,
}

impl<Ctx: Send + Sync + 'static> Controller<Ctx> {
    /// A controller named `name` (for logs) over `queue`, whose reconciles
    /// get `ctx`.
    pub fn new(name: &'static str, queue: WorkQueue<ObjectRef>, ctx: Arc<Ctx>) -> Self {
        Self {
            queue,
            ctx,
            concurrency: 4,
            name,
        }
    }

    /// The queue the workers take keys from.
    pub fn queue(&self) -> &WorkQueue<ObjectRef> {
        &self.queue
    }

    /// How many keys are reconciled at once (default 4).
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = workers.max(1);
        self
    }

    /// Reconciles until `stop` is cancelled; reconciles in flight then are
    /// dropped (they are idempotent, and whoever runs next redoes them).
    /// `error_policy` maps a failed reconcile to what happens to its key
    /// ([`Action::Backoff`] is the usual answer).
    pub async fn run<R, Fut, E, P>(self, reconcile: R, error_policy: P, stop: CancellationToken)
    where
        R: Fn(ObjectRef, Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
        P: Fn(&ObjectRef, &E, &Ctx) -> Action + Send + Sync + 'static,
    {
        let reconcile = Arc::new(reconcile);
        let error_policy = Arc::new(error_policy);
        let mut workers = JoinSet::new();
        for _ in 0..self.concurrency {
            let queue = self.queue.clone();
            let ctx = Arc::clone(&self.ctx);
            let reconcile = Arc::clone(&reconcile);
            let error_policy = Arc::clone(&error_policy);
            let stop = stop.clone();
            let name = self.name;
            workers.spawn(async move {
                loop {
                    let key = tokio::select! {
                        () = stop.cancelled() => return,
                        key = queue.get() => match key {
                            Some(key) => key,
                            None => return,
                        },
                    };
                    let result = tokio::select! {
                        () = stop.cancelled() => return,
                        result = reconcile(key.clone(), Arc::clone(&ctx)) => result,
                    };
                    let action = match result {
                        Ok(action) => action,
                        Err(e) => {
                            let action = error_policy(&key, &e, &ctx);
                            tracing::debug!(controller = name, %key, error = %e, ?action, "reconcile failed");
                            action
                        }
                    };
                    match action {
                        Action::Done => queue.forget(&key),
                        Action::RequeueAfter(delay) => {
                            queue.forget(&key);
                            queue.add_after(key.clone(), delay);
                        }
                        Action::Backoff => {
                            queue.add_with_backoff(key.clone());
                        }
                    }
                    queue.done(&key);
                }
            });
        }
        while workers.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests;
