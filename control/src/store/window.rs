//! The watch window: the most recent committed events, held in memory so
//! watches can start from a recent revision without reading the database.
//!
//! The window always holds a contiguous run of revisions `base+1..=last`:
//! events enter only in revision order without gaps (the feeder fills gaps
//! from the change log first), and leave only from the front, when the
//! window is full or an event is older than the age limit. A watch may start
//! from any revision `>= base`; older ones are expired.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::types::{Event, StoreError};

#[derive(Debug)]
pub(crate) struct Window {
    events: VecDeque<(Instant, Arc<Event>)>,
    /// Every event with a revision above `base` is in the window.
    base: i64,
    capacity: usize,
    max_age: Duration,
}

impl Window {
    /// An empty window that continues after `revision`.
    pub(crate) fn new(revision: i64, capacity: usize, max_age: Duration) -> Self {
        Self {
            events: VecDeque::new(),
            base: revision,
            capacity,
            max_age,
        }
    }

    /// The lowest revision a watch may start from.
    pub(crate) fn base(&self) -> i64 {
        self.base
    }

    /// The revision of the newest event (or `base` when empty).
    pub(crate) fn last(&self) -> i64 {
        self.base + self.events.len() as i64
    }

    /// Appends the event of revision `last() + 1`, evicting the oldest one
    /// when full. Any other revision is refused, so the window cannot get a
    /// gap.
    pub(crate) fn push(&mut self, event: Arc<Event>, now: Instant) -> Result<(), Arc<Event>> {
        if event.revision != self.last() + 1 {
            return Err(event);
        }
        self.events.push_back((now, event));
        while self.events.len() > self.capacity {
            self.pop_front();
        }
        Ok(())
    }

    /// Drops events older than the age limit.
    pub(crate) fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.events.front() {
            if now.saturating_duration_since(*at) <= self.max_age {
                break;
            }
            self.pop_front();
        }
    }

    /// Forgets everything and continues after `revision`, for when the
    /// revisions between `last()` and `revision` can no longer be read.
    pub(crate) fn reset(&mut self, revision: i64) {
        self.events.clear();
        self.base = revision;
    }

    /// Events of `resource` with a revision above `after`, in order.
    pub(crate) fn since(&self, resource: &str, after: i64) -> Result<Vec<Arc<Event>>, StoreError> {
        if after < self.base {
            return Err(StoreError::Expired {
                requested: after,
                oldest: self.base,
            });
        }
        // Revisions are contiguous, so the position of `after + 1` is known.
        let start = usize::try_from(after - self.base).unwrap_or(usize::MAX);
        Ok(self
            .events
            .iter()
            .skip(start)
            .filter(|(_, e)| e.key.resource == resource)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn pop_front(&mut self) {
        if self.events.pop_front().is_some() {
            self.base += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::types::{EventType, Key};

    fn event(revision: i64, resource: &str) -> Arc<Event> {
        Arc::new(Event::new(
            EventType::Added,
            revision,
            Key::new(resource, "ns", format!("o{revision}")),
            Arc::new(json!({})),
            None,
        ))
    }

    fn revisions(events: &[Arc<Event>]) -> Vec<i64> {
        events.iter().map(|e| e.revision).collect()
    }

    #[test]
    fn refuses_events_that_would_leave_a_gap() -> anyhow::Result<()> {
        let now = Instant::now();
        let mut w = Window::new(10, 100, Duration::from_secs(300));
        assert!(w.push(event(12, "pods"), now).is_err());
        assert!(w.push(event(10, "pods"), now).is_err());
        assert!(w.push(event(11, "pods"), now).is_ok());
        assert_eq!(w.last(), 11);
        Ok(())
    }

    #[test]
    fn full_window_evicts_oldest_and_raises_base() -> anyhow::Result<()> {
        let now = Instant::now();
        let mut w = Window::new(0, 3, Duration::from_secs(300));
        for r in 1..=5 {
            assert!(w.push(event(r, "pods"), now).is_ok());
        }
        assert_eq!(w.base(), 2);
        assert_eq!(revisions(&w.since("pods", 2)?), vec![3, 4, 5]);
        assert!(matches!(
            w.since("pods", 1),
            Err(StoreError::Expired {
                requested: 1,
                oldest: 2
            })
        ));
        Ok(())
    }

    #[test]
    fn old_events_are_pruned_by_age() -> anyhow::Result<()> {
        let start = Instant::now();
        let mut w = Window::new(0, 100, Duration::from_secs(300));
        assert!(w.push(event(1, "pods"), start).is_ok());
        assert!(
            w.push(event(2, "pods"), start + Duration::from_secs(200))
                .is_ok()
        );
        w.prune(start + Duration::from_secs(400));
        assert_eq!(w.base(), 1);
        assert_eq!(revisions(&w.since("pods", 1)?), vec![2]);
        w.prune(start + Duration::from_secs(600));
        assert_eq!((w.base(), w.last()), (2, 2));
        Ok(())
    }

    #[test]
    fn since_filters_by_resource_and_starts_after_revision() -> anyhow::Result<()> {
        let now = Instant::now();
        let mut w = Window::new(0, 100, Duration::from_secs(300));
        for (r, res) in [(1, "pods"), (2, "nodes"), (3, "pods"), (4, "pods")] {
            assert!(w.push(event(r, res), now).is_ok());
        }
        assert_eq!(revisions(&w.since("pods", 0)?), vec![1, 3, 4]);
        assert_eq!(revisions(&w.since("pods", 3)?), vec![4]);
        assert!(w.since("pods", 9)?.is_empty());
        Ok(())
    }

    #[test]
    fn reset_continues_after_new_base() -> anyhow::Result<()> {
        let now = Instant::now();
        let mut w = Window::new(0, 100, Duration::from_secs(300));
        assert!(w.push(event(1, "pods"), now).is_ok());
        w.reset(7);
        assert!(w.since("pods", 6).is_err());
        assert!(w.push(event(8, "pods"), now).is_ok());
        assert_eq!(revisions(&w.since("pods", 7)?), vec![8]);
        Ok(())
    }
}
