//! The one small runtime every controller shares, after kube-runtime:
//! informers (a watch per kind feeding an in-memory [`Cache`]), a
//! de-duplicating [`WorkQueue`] with per-key backoff, and a [`Controller`]
//! loop calling an idempotent reconciler.
//!
//! # Writing a controller
//!
//! A controller is a reconcile function over cached objects plus an error
//! policy. It is level-triggered: it gets a key (`namespace/name`), reads
//! the current objects from caches, makes the world match the spec through
//! the API, and returns an [`Action`]. It never depends on *why* it was
//! called, so a lost or repeated trigger is harmless.
//!
//! ```ignore
//! use std::sync::Arc;
//! use k8s_openapi::api::apps::v1::ReplicaSet;
//! use k8s_openapi::api::core::v1::Pod;
//! use wasmpod_api::client::{ApiClient, ListParams};
//! use crate::controllers::runtime::*;
//!
//! struct Ctx { client: ApiClient, replica_sets: Cache<ReplicaSet>, pods: Cache<Pod> }
//!
//! async fn reconcile(key: ObjectRef, ctx: Arc<Ctx>) -> Result<Action, MyError> {
//!     let Some(rs) = ctx.replica_sets.get(&key) else { return Ok(Action::done()) };
//!     // ... count ctx.pods, create or delete pods through ctx.client ...
//!     Ok(Action::done())
//! }
//!
//! pub async fn run(client: ApiClient, stop: tokio_util::sync::CancellationToken) {
//!     let queue = WorkQueue::new(Backoff::default());
//!     let mut rs = Informer::<ReplicaSet>::new(client.clone(), None, ListParams::default());
//!     rs.enqueue_self(&queue);                      // a ReplicaSet changed: look at it
//!     let mut pods = Informer::<Pod>::new(client.clone(), None, ListParams::default());
//!     pods.enqueue_controller(&queue, "ReplicaSet"); // a pod changed: look at its owner
//!     let ctx = Arc::new(Ctx { client, replica_sets: rs.cache(), pods: pods.cache() });
//!     let mut informers = Informers::new(&stop);
//!     informers.start(rs);
//!     informers.start(pods);
//!     // Reconciles only once every cache is complete, until `stop`.
//!     informers
//!         .run_controller(
//!             Controller::new("replicaset", queue, ctx).concurrency(4),
//!             reconcile,
//!             |_key, _err, _ctx| Action::Backoff,
//!         )
//!         .await;
//! }
//! ```
//!
//! Then add one line to the list in `controllers::start` (the module above)
//! so the controller manager runs it while it holds the leader lease.
//!
//! # Guarantees
//!
//! - [`Informer`]: the cache is updated before any handler runs, so a
//!   reconciler triggered by a change sees it. After the first list (and
//!   after every re-list following a 410) every object is reported as
//!   [`InformerEvent::Applied`] (with `old` the copy held before, if any)
//!   and objects gone meanwhile as [`InformerEvent::Deleted`].
//!   [`Informer::synced`] resolves after the first list. Handlers run
//!   inline on the watch task: keep them cheap (enqueue keys, update a
//!   small index). [`Informer::detached`] + [`Informer::apply`] feed an
//!   informer without a server, for tests.
//! - [`WorkQueue`]: a key is queued at most once; a key being reconciled is
//!   never handed to a second worker, and if it is added meanwhile it is
//!   reconciled once more afterwards. `add` is immediate and drops a pending
//!   delayed add of the key; `add_after` keeps the earliest pending time;
//!   `add_with_backoff` waits `first * 2^(failures-1)` capped at `max`.
//! - [`Controller`]: `Action::Done` forgets the key's backoff;
//!   `Action::RequeueAfter(d)` forgets it and reconciles again after `d`
//!   (unless a change comes first); `Action::Backoff` (the usual error
//!   policy answer) retries after the key's growing backoff. When the stop
//!   token is cancelled (the leader lease was lost, or shutdown) workers
//!   stop taking keys and in-flight reconciles are dropped.
//!
//! Timers are `tokio::time`, so tests drive them with a paused clock.

mod cache;
mod controller;
mod informer;
mod informers;
mod object_ref;
mod queue;

pub use cache::Cache;
pub use controller::{Action, Controller};
pub use informer::{Informer, InformerEvent, Synced};
pub use informers::Informers;
pub use object_ref::ObjectRef;
pub use queue::{Backoff, WorkQueue};
