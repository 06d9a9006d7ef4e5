//! Writes a controller made that its caches have not shown yet, as
//! kube-controller-manager's `ControllerExpectations`: until the pods it
//! created appear (and the ones it deleted go), the owner is not counted
//! again, so a reconcile racing the watch never creates or deletes twice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::controllers::runtime::ObjectRef;

/// After this long, expectations are dropped even if the watch never
/// showed them (a create that failed after the server answered, a missed
/// event): the controller then trusts its cache again.
pub const EXPIRY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Pending {
    creates: HashSet<ObjectRef>,
    deletes: HashSet<ObjectRef>,
    since: Instant,
}

/// Per-owner pending creations and deletions.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<ObjectRef, Pending>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `owner` created `created` and deleted `deleted`.
    pub fn expect(
        &self,
        owner: &ObjectRef,
        created: impl IntoIterator<Item = ObjectRef>,
        deleted: impl IntoIterator<Item = ObjectRef>,
    ) {
        let mut pending = self.lock();
        let entry = pending.entry(owner.clone()).or_insert_with(|| Pending {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        entry.creates.extend(created);
        entry.deletes.extend(deleted);
        entry.since = Instant::now();
    }

    /// Whether the cache shows everything `owner` did: `present(key)` says
    /// whether a pod is in the cache and not terminating.
    pub fn satisfied(&self, owner: &ObjectRef, present: impl Fn(&ObjectRef) -> bool) -> bool {
        let mut pending = self.lock();
        let Some(entry) = pending.get_mut(owner) else {
            return true;
        };
        entry.creates.retain(|k| !present(k));
        entry.deletes.retain(|k| present(k));
        let done = (entry.creates.is_empty() && entry.deletes.is_empty())
            || entry.since.elapsed() >= EXPIRY;
        if done {
            pending.remove(owner);
        }
        done
    }

    /// Forgets `owner` (it was deleted).
    pub fn forget(&self, owner: &ObjectRef) {
        self.lock().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectRef {
        ObjectRef::new(Some("ns"), name)
    }

    #[tokio::test(start_paused = true)]
    async fn satisfied_once_creates_appear_and_deletes_go_or_after_expiry() {
        let e = Expectations::default();
        let rs = key("rs");
        assert!(e.satisfied(&rs, |_| false));
        e.expect(&rs, [key("a"), key("b")], [key("c")]);
        assert!(!e.satisfied(&rs, |k| k.name == "c"));
        assert!(!e.satisfied(&rs, |k| k.name == "a" || k.name == "c"));
        assert!(e.satisfied(&rs, |k| k.name == "b"));
        e.expect(&rs, [key("d")], []);
        assert!(!e.satisfied(&rs, |_| false));
        tokio::time::advance(EXPIRY).await;
        assert!(e.satisfied(&rs, |_| false));
    }
}
