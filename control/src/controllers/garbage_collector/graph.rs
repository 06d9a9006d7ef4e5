//! The garbage collector's picture of ownership: every object it watches,
//! by uid, and for each owner uid the uids of the objects that name it in
//! their ownerReferences. Informer handlers keep it current; reconciles
//! read it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::kinds::GcKind;
use crate::controllers::runtime::ObjectRef;

/// One watched object: its kind and its (slim) metadata.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: &'static dyn GcKind,
    pub meta: Arc<ObjectMeta>,
}

/// Objects by uid, and owner uid -> dependent uids.
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

/// Locks the shared graph; handlers replace whole entries, so a poisoned
/// lock still guards a consistent graph.
pub fn lock(graph: &Mutex<Graph>) -> MutexGuard<'_, Graph> {
    graph
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The work queue key of the object with `uid`: the collector's keys are
/// uids (an ObjectRef without namespace), since one queue serves every kind.
pub fn key(uid: &str) -> ObjectRef {
    ObjectRef::new(None, uid)
}

impl Graph {
    /// Records the newest metadata of an object.
    pub fn apply(&mut self, kind: &'static dyn GcKind, meta: Arc<ObjectMeta>) {
        let Some(uid) = meta.uid.clone() else {
            return;
        };
        if let Some(old) = self.nodes.remove(&uid) {
            self.unlink(&uid, &old.meta);
        }
        for owner in owner_uids(&meta) {
            self.dependents
                .entry(owner.to_string())
                .or_default()
                .insert(uid.clone());
        }
        self.nodes.insert(uid, Node { kind, meta });
    }

    /// Forgets a deleted object. The objects it owns keep their entry
    /// under its uid until they are gone or no longer name it.
    pub fn remove(&mut self, meta: &ObjectMeta) {
        let Some(uid) = meta.uid.as_deref() else {
            return;
        };
        if let Some(old) = self.nodes.remove(uid) {
            self.unlink(uid, &old.meta);
        }
    }

    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The watched objects that name `owner` as an owner.
    pub fn dependents(&self, owner: &str) -> Vec<Node> {
        self.dependents
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|uid| self.nodes.get(uid).cloned())
            .collect()
    }

    /// Number of objects held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// What a change of an object makes worth a look: the object itself,
    /// its owners before and after (a foreground deletion may be waiting
    /// for it), and, once it is being deleted or gone, what it owns.
    pub fn keys(&self, old: Option<&ObjectMeta>, new: &ObjectMeta, gone: bool) -> Vec<ObjectRef> {
        let mut uids: Vec<&str> = Vec::new();
        uids.extend(new.uid.as_deref());
        uids.extend(old.into_iter().flat_map(owner_uids));
        uids.extend(owner_uids(new));
        if (gone || new.deletion_timestamp.is_some())
            && let Some(uid) = new.uid.as_deref()
        {
            uids.extend(
                self.dependents
                    .get(uid)
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
        let mut seen = HashSet::new();
        uids.into_iter()
            .filter(|uid| seen.insert(*uid))
            .map(key)
            .collect()
    }

    fn unlink(&mut self, uid: &str, meta: &ObjectMeta) {
        for owner in owner_uids(meta) {
            if let Some(set) = self.dependents.get_mut(owner) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(owner);
                }
            }
        }
    }
}

fn owner_uids(meta: &ObjectMeta) -> impl Iterator<Item = &str> {
    meta.owner_references
        .iter()
        .flatten()
        .map(|r| r.uid.as_str())
        .filter(|uid| !uid.is_empty())
}
