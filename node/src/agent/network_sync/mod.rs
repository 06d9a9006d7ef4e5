//! What the node's virtual network learns from the API: the cluster's
//! Services and Endpoints (all namespaces), turned into the fabric's
//! [`ServiceTable`], and the other Nodes' pod CIDRs and tunnel addresses,
//! turned into its peers. Rebuilt at most every [`DEBOUNCE`] however
//! often things change. Also the node's own pod CIDR ([`pod_cidr`]),
//! which pods wait for before they get an IP.

mod convert;
pub mod pod_cidr;

pub use convert::{BALANCING_ANNOTATION, TUNNEL_ANNOTATION, endpoints_entry, peer, service_entry};

use std::collections::HashMap;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use wasmpod_api::k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use wasmpod_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wasmpod_api::k8s_openapi::{ListableResource, Metadata};

use crate::agent::client::{ApiClient, Change, ListParams, Watcher};
use crate::network::services::{EndpointsEntry, ServiceEntry, ServiceTable};
use crate::network::{Fabric, Peer};

/// The shortest time between two rebuilds of the Service table or peers.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// One change of one of the watched kinds.
enum Update {
    Services(Box<Change<Service>>),
    Endpoints(Box<Change<Endpoints>>),
    Nodes(Box<Change<Node>>),
}

type Key = (String, String);

/// What the watches have shown, converted.
#[derive(Default)]
struct Seen {
    services: HashMap<Key, ServiceEntry>,
    endpoints: HashMap<Key, EndpointsEntry>,
    peers: HashMap<Key, Peer>,
    services_listed: bool,
    endpoints_listed: bool,
    nodes_listed: bool,
    services_dirty: bool,
    peers_dirty: bool,
}

/// Keeps `fabric`'s Services and peers current until dropped.
pub async fn run(client: ApiClient, fabric: Fabric, node_name: String) {
    let updates = stream::select_all([
        changes(
            client.watcher::<Service>(None, ListParams::default()),
            Update::Services,
        ),
        changes(
            client.watcher::<Endpoints>(None, ListParams::default()),
            Update::Endpoints,
        ),
        changes(
            client.watcher::<Node>(None, ListParams::default()),
            Update::Nodes,
        ),
    ]);
    follow(updates, &fabric, &node_name).await;
}

async fn follow(
    mut updates: stream::SelectAll<BoxStream<'static, Update>>,
    fabric: &Fabric,
    node_name: &str,
) {
    let mut seen = Seen::default();
    let mut next_build = Instant::now();
    loop {
        let due = (seen.services_dirty && seen.services_listed && seen.endpoints_listed)
            || (seen.peers_dirty && seen.nodes_listed);
        tokio::select! {
            update = updates.next() => match update {
                Some(update) => seen.apply(update, node_name),
                None => return,
            },
            () = tokio::time::sleep_until(next_build), if due => {
                seen.publish(fabric);
                next_build = Instant::now() + DEBOUNCE;
            }
        }
    }
}

/// A watcher as a stream of updates; watch errors are logged (the watcher
/// recovers by itself).
fn changes<K>(watcher: Watcher<K>, wrap: fn(Box<Change<K>>) -> Update) -> BoxStream<'static, Update>
where
    K: ListableResource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Send + 'static,
{
    stream::unfold(watcher, move |mut watcher| async move {
        loop {
            match watcher.next().await {
                Ok(change) => return Some((wrap(Box::new(change)), watcher)),
                Err(e) => tracing::warn!(kind = K::KIND, error = %crate::agent::error_chain(&e), "watching for the node's network"),
            }
        }
    })
    .boxed()
}

fn key<K: Metadata<Ty = ObjectMeta>>(obj: &K) -> Key {
    let meta = obj.metadata();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Applies a change to a map of converted objects.
fn apply_change<K, V>(
    map: &mut HashMap<Key, V>,
    change: Change<K>,
    convert: impl Fn(&K) -> Option<V>,
) where
    K: Metadata<Ty = ObjectMeta>,
{
    match change {
        Change::Restarted(all) => {
            *map = all
                .iter()
                .filter_map(|obj| Some((key(obj), convert(obj)?)))
                .collect();
        }
        Change::Applied(obj) => match convert(&obj) {
            Some(value) => {
                map.insert(key(&obj), value);
            }
            None => {
                map.remove(&key(&obj));
            }
        },
        Change::Deleted(obj) => {
            map.remove(&key(&obj));
        }
    }
}

impl Seen {
    fn apply(&mut self, update: Update, node_name: &str) {
        match update {
            Update::Services(change) => {
                self.services_listed |= matches!(*change, Change::Restarted(_));
                apply_change(&mut self.services, *change, service_entry);
                self.services_dirty = true;
            }
            Update::Endpoints(change) => {
                self.endpoints_listed |= matches!(*change, Change::Restarted(_));
                apply_change(&mut self.endpoints, *change, endpoints_entry);
                self.services_dirty = true;
            }
            Update::Nodes(change) => {
                self.nodes_listed |= matches!(*change, Change::Restarted(_));
                apply_change(&mut self.peers, *change, |n| peer(n, node_name));
                self.peers_dirty = true;
            }
        }
    }

    /// Hands what is due to the fabric.
    fn publish(&mut self, fabric: &Fabric) {
        if self.services_dirty && self.services_listed && self.endpoints_listed {
            self.services_dirty = false;
            let services: Vec<ServiceEntry> = self.services.values().cloned().collect();
            let endpoints: Vec<EndpointsEntry> = self.endpoints.values().cloned().collect();
            let table = ServiceTable::new(&services, &endpoints).carry_over(&fabric.services());
            fabric.set_services(table);
            tracing::debug!(services = services.len(), "service table rebuilt");
        }
        if self.peers_dirty && self.nodes_listed {
            self.peers_dirty = false;
            let mut peers: Vec<Peer> = self.peers.values().cloned().collect();
            peers.sort_by_key(|p| p.pod_cidr);
            fabric.set_peers(peers);
        }
    }
}
