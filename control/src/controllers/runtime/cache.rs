//! The in-memory copy of one kind that an informer keeps and reconcilers
//! read: the newest object seen for each key.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::ObjectRef;

/// A shared, cheaply cloned map from key to the newest object. Reads never
/// wait on the API; they see what the informer's watch has delivered.
pub struct Cache<K> {
    objects: Arc<RwLock<HashMap<ObjectRef, Arc<K>>>>,
}

impl<K> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Self {
            objects: Arc::clone(&self.objects),
        }
    }
}

impl<K> Default for Cache<K> {
    fn default() -> Self {
        Self {
            objects: Arc::default(),
        }
    }
}

impl<K> Cache<K> {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<ObjectRef, Arc<K>>> {
        // Writers replace whole entries, so a poisoned map is still consistent.
        self.objects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, HashMap<ObjectRef, Arc<K>>> {
        self.objects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, key: &ObjectRef) -> Option<Arc<K>> {
        self.read().get(key).cloned()
    }

    /// Every object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    /// The objects of one namespace.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .iter()
            .filter(|(k, _)| k.namespace.as_deref() == Some(namespace))
            .map(|(_, v)| Arc::clone(v))
            .collect()
    }

    /// The objects `keep` accepts.
    pub fn filter(&self, mut keep: impl FnMut(&K) -> bool) -> Vec<Arc<K>> {
        self.read().values().filter(|v| keep(v)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
