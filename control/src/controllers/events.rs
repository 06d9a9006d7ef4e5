//! Recording core/v1 Events about objects, as client-go's event recorder
//! does: callers hand an event over without waiting, and a background task
//! creates them through the API a few at a time. When the API falls far
//! behind, events are dropped rather than slowing controllers down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::{Metadata, Resource};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use wasmpod_api::client::ApiClient;

/// Events waiting to be written before new ones are dropped.
const BACKLOG: usize = 16_384;
/// Event creates in flight at once.
const CONCURRENCY: usize = 16;

/// Normal or Warning, as `kubectl get events` shows in TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// Hands events to the writer task; cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Event>,
    component: Arc<str>,
    instance: Arc<str>,
    sequence: Arc<AtomicU64>,
}

impl EventRecorder {
    /// A recorder reporting as `component` (e.g. `default-scheduler`) from
    /// `instance` (this process), writing until `stop`.
    pub fn spawn(
        client: ApiClient,
        component: &str,
        instance: &str,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Event>(BACKLOG);
        tokio::spawn(async move {
            let write = ReceiverStream::new(rx).for_each_concurrent(CONCURRENCY, |event| {
                let client = client.clone();
                async move {
                    let namespace = event.metadata.namespace.clone();
                    if let Err(e) = client.create(namespace.as_deref(), &event).await {
                        tracing::debug!(error = %e, reason = ?event.reason, "could not record an event");
                    }
                }
            });
            tokio::select! {
                () = stop.cancelled() => {}
                () = write => {}
            }
        });
        Self {
            tx,
            component: component.into(),
            instance: instance.into(),
            sequence: Arc::default(),
        }
    }

    /// Records an event about `obj` (in its namespace, or `default` for
    /// cluster-scoped objects).
    pub fn record<K>(&self, obj: &K, kind: EventType, reason: &str, message: String)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let event = self.event(obj, kind, reason, message);
        if self.tx.try_send(event).is_err() {
            tracing::debug!(reason, "event backlog full; event dropped");
        }
    }

    fn event<K>(&self, obj: &K, kind: EventType, reason: &str, message: String) -> Event
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let meta = obj.metadata();
        let now = k8s_openapi::jiff::Timestamp::now();
        let name = meta.name.clone().unwrap_or_default();
        // Unique like client-go's `<object>.<unix nanos in hex>`, with a
        // counter for events recorded in the same nanosecond.
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let event_name = format!("{name}.{:x}{seq:x}", now.as_nanosecond());
        Event {
            metadata: ObjectMeta {
                name: Some(event_name),
                namespace: Some(meta.namespace.clone().unwrap_or_else(|| "default".into())),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::API_VERSION.into()),
                kind: Some(K::KIND.into()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                field_path: None,
            },
            reason: Some(reason.into()),
            message: Some(message),
            type_: Some(kind.as_str().into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some(self.component.to_string()),
                host: None,
            }),
            reporting_component: Some(self.component.to_string()),
            reporting_instance: Some(self.instance.to_string()),
            ..Event::default()
        }
    }
}
