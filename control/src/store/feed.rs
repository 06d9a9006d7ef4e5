//! The shared end of the watch machinery: the window of recent events and
//! one broadcast channel per resource, kept under one lock so that a new
//! watcher can subscribe and snapshot the window atomically (every event is
//! then either in its snapshot or in its channel, never both or neither).
//!
//! Only the feeder task publishes, always in revision order without gaps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use super::types::{Event, StoreError};
use super::window::Window;

/// Events a live watcher may fall behind its channel before it has to
/// catch up from the window. Each slot is preallocated per watched
/// resource, so this stays far below the window size.
pub(crate) const CHANNEL_CAPACITY: usize = 1024;

/// Events older than this leave the window even when it is not full, so an
/// idle control plane does not hold thousands of old objects in memory.
pub(crate) const MAX_EVENT_AGE: Duration = Duration::from_secs(300);

pub(crate) struct Feed {
    state: Mutex<State>,
    /// The newest committed revision this process knows of.
    revision: AtomicI64,
    closed: AtomicBool,
}

struct State {
    window: Window,
    channels: HashMap<String, broadcast::Sender<Arc<Event>>>,
}

/// What a new watcher starts from.
pub(crate) struct Subscription {
    pub(crate) receiver: broadcast::Receiver<Arc<Event>>,
    /// Window events of the resource after the requested revision.
    pub(crate) replay: Vec<Arc<Event>>,
}

impl Feed {
    pub(crate) fn new(revision: i64, window_size: usize) -> Self {
        Self {
            state: Mutex::new(State {
                window: Window::new(revision, window_size, MAX_EVENT_AGE),
                channels: HashMap::new(),
            }),
            revision: AtomicI64::new(revision),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in a watcher (every
        // method leaves it whole), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn revision(&self) -> i64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Records that `revision` is committed.
    pub(crate) fn observe(&self, revision: i64) {
        self.revision.fetch_max(revision, Ordering::AcqRel);
    }

    /// The revision of the newest published event.
    pub(crate) fn last(&self) -> i64 {
        self.lock().window.last()
    }

    /// The lowest revision a watch may start from.
    pub(crate) fn base(&self) -> i64 {
        self.lock().window.base()
    }

    /// Appends events that continue the window exactly and sends them to
    /// the watchers of their resource. Returns the first event that does
    /// not continue the window, which is not published (nor is anything
    /// after it).
    pub(crate) fn publish(&self, events: Vec<Arc<Event>>) -> Result<(), Arc<Event>> {
        let now = Instant::now();
        let mut state = self.lock();
        let State { window, channels } = &mut *state;
        for event in events {
            let revision = event.revision;
            let resource_sender = channels.get(&event.key.resource);
            let sent = resource_sender.map(|tx| (tx.clone(), event.clone()));
            window.push(event, now)?;
            if let Some((tx, event)) = sent {
                // An error means nobody listens any more: forget the channel.
                if tx.send(event).is_err() {
                    channels.retain(|_, tx| tx.receiver_count() > 0);
                }
            }
            self.observe(revision);
        }
        window.prune(now);
        Ok(())
    }

    /// Drops events past the age limit.
    pub(crate) fn prune(&self) {
        self.lock().window.prune(Instant::now());
    }

    /// Starts over after `revision` because the events between the window
    /// and it are gone from the change log. Closing every channel ends the
    /// live watchers, which then report `Expired`: they would miss events.
    pub(crate) fn reset(&self, revision: i64) {
        let mut state = self.lock();
        state.window.reset(revision);
        state.channels.clear();
        self.observe(revision);
    }

    pub(crate) fn subscribe(&self, resource: &str, after: i64) -> Result<Subscription, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Closed);
        }
        let mut state = self.lock();
        let replay = state.window.since(resource, after)?;
        let receiver = match state.channels.get(resource) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(CHANNEL_CAPACITY);
                state.channels.insert(resource.to_owned(), tx);
                rx
            }
        };
        Ok(Subscription { receiver, replay })
    }

    /// Window events of `resource` after `after`, for a watcher catching up
    /// after falling behind its channel.
    pub(crate) fn since(&self, resource: &str, after: i64) -> Result<Vec<Arc<Event>>, StoreError> {
        self.lock().window.since(resource, after)
    }

    /// Ends every watch: their channels close and they finish.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.lock().channels.clear();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}
