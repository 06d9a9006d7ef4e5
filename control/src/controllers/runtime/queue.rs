//! The work queue between informers and reconcilers, with client-go's
//! semantics: a key is queued at most once; a key being processed is not
//! handed out again until [`WorkQueue::done`], and a key added meanwhile is
//! processed once more after that; keys can be added after a delay, or after
//! a per-key exponential backoff that [`WorkQueue::forget`] resets.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-key exponential backoff: `first`, doubling per failure, at most
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before the `failures`-th retry (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

impl Default for Backoff {
    /// 5 ms doubling to 1000 s, as client-go's default controller rate
    /// limiter.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

/// A de-duplicating, delaying work queue; cheap to clone (all clones are
/// the same queue).
pub struct WorkQueue<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Notify,
    backoff: Backoff,
}

struct State<T> {
    /// Keys ready to be handed out, in order.
    ready: VecDeque<T>,
    /// The keys in `ready`.
    queued: HashSet<T>,
    /// Keys handed out and not yet `done`.
    processing: HashSet<T>,
    /// Keys added while being processed.
    dirty: HashSet<T>,
    /// When each delayed key becomes ready, with the tie-breaking sequence
    /// number of its entry in `timers`.
    delayed: HashMap<T, (Instant, u64)>,
    timers: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

impl<T: Clone + Eq + Hash> WorkQueue<T> {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    ready: VecDeque::new(),
                    queued: HashSet::new(),
                    processing: HashSet::new(),
                    dirty: HashSet::new(),
                    delayed: HashMap::new(),
                    timers: BTreeMap::new(),
                    next_seq: 0,
                    failures: HashMap::new(),
                    shut_down: false,
                }),
                changed: Notify::new(),
                backoff,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves consistent sets behind (each
        // method finishes its bookkeeping before anything can panic).
        self.shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `key` now. A pending delayed add of it is dropped: the key is
    /// processed now, and its reconciler says again when it wants more.
    pub fn add(&self, key: T) {
        let mut state = self.lock();
        state.cancel_delay(&key);
        if state.make_ready(key) {
            drop(state);
            self.shared.changed.notify_waiters();
        }
    }

    /// Queues `key` after `delay`; an earlier pending add of it wins.
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut state = self.lock();
        if state.shut_down || state.queued.contains(&key) {
            return;
        }
        if let Some((pending, _)) = state.delayed.get(&key) {
            if *pending <= at {
                return;
            }
            state.cancel_delay(&key);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.delayed.insert(key.clone(), (at, seq));
        state.timers.insert((at, seq), key);
        drop(state);
        // A waiter may need to wake earlier than it planned.
        self.shared.changed.notify_waiters();
    }

    /// Queues `key` after its backoff, counting one more failure of it;
    /// returns the delay.
    pub fn add_with_backoff(&self, key: T) -> Duration {
        let delay = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_insert(0);
            *failures = failures.saturating_add(1);
            self.shared.backoff.delay(*failures)
        };
        self.add_after(key, delay);
        delay
    }

    /// Resets `key`'s backoff (after it was processed successfully).
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// How many times in a row `key` failed.
    pub fn failures(&self, key: &T) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// The next key to process, waiting for one; `None` once the queue is
    /// shut down. Call [`WorkQueue::done`] with it when finished.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_timer = {
                let mut state = self.lock();
                if state.shut_down {
                    return None;
                }
                state.promote_due(Instant::now());
                if let Some(key) = state.ready.pop_front() {
                    state.queued.remove(&key);
                    state.processing.insert(key.clone());
                    return Some(key);
                }
                state.timers.keys().next().map(|(at, _)| *at)
            };
            match next_timer {
                Some(at) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &T) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.remove(key) && state.make_ready(key.clone()) {
            drop(state);
            self.shared.changed.notify_waiters();
        }
    }

    /// Keys queued now (not delayed, not processing).
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the queue: every `get` returns `None` from now on.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.shared.changed.notify_waiters();
    }
}

impl<T: Clone + Eq + Hash> State<T> {
    /// Puts `key` in the ready queue unless it is there already; a key being
    /// processed is marked dirty instead. True when a getter may proceed.
    fn make_ready(&mut self, key: T) -> bool {
        if self.shut_down {
            return false;
        }
        if self.processing.contains(&key) {
            self.dirty.insert(key);
            return false;
        }
        if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
            return true;
        }
        false
    }

    fn cancel_delay(&mut self, key: &T) {
        if let Some(entry) = self.delayed.remove(key) {
            self.timers.remove(&entry);
        }
    }

    fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_key_value().map(|(k, _)| *k) {
            if entry.0 > now {
                break;
            }
            if let Some(key) = self.timers.remove(&entry) {
                self.delayed.remove(&key);
                self.make_ready(key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
