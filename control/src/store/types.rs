//! The store's vocabulary: keys, stored objects, write operations, watch
//! events and errors. Shared by every backend and by the API server.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// Where an object lives: its resource (`pods`, `deployments.apps`), its
/// namespace (empty for cluster-scoped kinds) and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(
        resource: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.resource, self.name)
        } else {
            write!(f, "{}/{}/{}", self.resource, self.namespace, self.name)
        }
    }
}

/// An object as stored: its JSON, whose `metadata.resourceVersion` is
/// `revision` as a decimal string.
#[derive(Debug, Clone)]
pub struct Stored {
    pub revision: i64,
    pub object: Arc<Value>,
}

/// One write. A `commit` applies a list of them atomically.
#[derive(Debug, Clone)]
pub enum Op {
    /// Fails with `AlreadyExists` if the key exists.
    Create { key: Key, object: Value },
    /// Fails with `NotFound` if the key is absent, and with `Conflict` if
    /// `expected_revision` is given and differs from the stored revision.
    Update {
        key: Key,
        object: Value,
        expected_revision: Option<i64>,
    },
    /// Same preconditions as `Update`.
    Delete {
        key: Key,
        expected_revision: Option<i64>,
    },
}

impl Op {
    pub fn key(&self) -> &Key {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

/// A consistent page of a list.
#[derive(Debug, Clone)]
pub struct List {
    /// The store revision the page was read at.
    pub revision: i64,
    /// Objects ordered by (namespace, name).
    pub items: Vec<Stored>,
    /// True when more objects follow the last item.
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub kind: EventType,
    pub revision: i64,
    pub key: Key,
    /// The object after the change; for `Deleted`, the last state with
    /// `metadata.resourceVersion` set to the deletion's revision.
    pub object: Arc<Value>,
    /// The object before the change (None for `Added`).
    pub prev: Option<Arc<Value>>,
    json: OnceLock<Arc<str>>,
}

impl Event {
    pub fn new(
        kind: EventType,
        revision: i64,
        key: Key,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
    ) -> Self {
        Self {
            kind,
            revision,
            key,
            object,
            prev,
            json: OnceLock::new(),
        }
    }

    /// The object serialized once, shared by every watcher that sends it.
    pub fn object_json(&self) -> Arc<str> {
        self.json
            .get_or_init(|| Arc::from(self.object.to_string()))
            .clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(Key),
    #[error("{0} already exists")]
    AlreadyExists(Key),
    #[error("{key}: the object has been modified (expected revision {expected}, stored {actual})")]
    Conflict {
        key: Key,
        expected: i64,
        actual: i64,
    },
    /// The requested revision is older than what the watch window keeps.
    #[error("too old resource version: {requested} (oldest available {oldest})")]
    Expired { requested: i64, oldest: i64 },
    #[error("invalid datastore URL {0:?}: expected sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("stored object {key} is not valid JSON")]
    Corrupt {
        key: Key,
        #[source]
        source: serde_json::Error,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store is shut down")]
    Closed,
}
