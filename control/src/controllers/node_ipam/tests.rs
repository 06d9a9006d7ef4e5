//! The node IPAM decisions, without a server.

use std::collections::HashMap;
use std::sync::Arc;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Node, NodeSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::NodeIpamSettings;
use super::plan::{Pending, Plan, plan, prune};

fn net(text: &str) -> Ipv4Net {
    text.parse().expect("a CIDR")
}

fn node(name: &str, cidr: Option<&str>) -> Arc<Node> {
    Arc::new(Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cidr.map(str::to_string),
            pod_cidrs: cidr.map(|c| vec![c.to_string()]),
            ..NodeSpec::default()
        }),
        status: None,
    })
}

fn range() -> Ipv4Net {
    net("10.42.0.0/16")
}

#[test]
fn a_node_gets_the_lowest_free_block() {
    let nodes = vec![
        node("a", Some("10.42.0.0/24")),
        node("b", Some("10.42.2.0/24")),
        node("c", None),
    ];
    let decision = plan(&nodes[2], &nodes, &HashMap::new(), range(), 24);
    assert_eq!(decision, Plan::Assign(net("10.42.1.0/24")));
}

#[test]
fn a_node_with_a_cidr_keeps_it() {
    let nodes = vec![node("a", Some("10.42.7.0/24"))];
    assert_eq!(
        plan(&nodes[0], &nodes, &HashMap::new(), range(), 24),
        Plan::Keep
    );
}

#[test]
fn pending_assignments_are_never_given_twice() {
    let nodes = vec![node("a", None), node("b", None)];
    let mut pending = HashMap::new();
    let Plan::Assign(first) = plan(&nodes[0], &nodes, &pending, range(), 24) else {
        panic!("expected an assignment");
    };
    pending.insert(
        "a".to_string(),
        Pending {
            uid: "uid-a".into(),
            cidr: first,
        },
    );
    // The cache does not show a's block yet: a is left alone, b gets the next.
    assert_eq!(plan(&nodes[0], &nodes, &pending, range(), 24), Plan::Keep);
    assert_eq!(
        plan(&nodes[1], &nodes, &pending, range(), 24),
        Plan::Assign(net("10.42.1.0/24"))
    );
}

#[test]
fn blocks_of_other_sizes_and_foreign_cidrs_are_respected() {
    let nodes = vec![
        node("wide", Some("10.42.0.0/23")),
        node("elsewhere", Some("192.168.0.0/24")),
        node("new", None),
    ];
    assert_eq!(
        plan(&nodes[2], &nodes, &HashMap::new(), range(), 24),
        Plan::Assign(net("10.42.2.0/24"))
    );
}

#[test]
fn an_exhausted_range_assigns_nothing() {
    let small = net("10.42.0.0/23");
    let nodes = vec![
        node("a", Some("10.42.0.0/24")),
        node("b", Some("10.42.1.0/24")),
        node("c", None),
    ];
    assert_eq!(
        plan(&nodes[2], &nodes, &HashMap::new(), small, 24),
        Plan::Exhausted
    );
}

#[test]
fn a_deleted_nodes_block_is_free_again() {
    let nodes = [node("a", Some("10.42.0.0/24")), node("b", None)];
    let remaining = vec![nodes[1].clone()];
    assert_eq!(
        plan(&nodes[1], &remaining, &HashMap::new(), range(), 24),
        Plan::Assign(net("10.42.0.0/24"))
    );
}

#[test]
fn pruning_keeps_only_assignments_still_on_their_way() {
    let mut pending = HashMap::from([
        (
            "shown".to_string(),
            Pending {
                uid: "uid-shown".into(),
                cidr: net("10.42.0.0/24"),
            },
        ),
        (
            "waiting".to_string(),
            Pending {
                uid: "uid-waiting".into(),
                cidr: net("10.42.1.0/24"),
            },
        ),
        (
            "replaced".to_string(),
            Pending {
                uid: "an-older-uid".into(),
                cidr: net("10.42.2.0/24"),
            },
        ),
        (
            "gone".to_string(),
            Pending {
                uid: "uid-gone".into(),
                cidr: net("10.42.3.0/24"),
            },
        ),
    ]);
    let nodes = vec![
        node("shown", Some("10.42.0.0/24")),
        node("waiting", None),
        node("replaced", None),
    ];
    prune(&mut pending, &nodes);
    let left: Vec<&str> = pending.keys().map(String::as_str).collect();
    assert_eq!(left, vec!["waiting"]);
}

#[test]
fn settings_refuse_a_block_larger_than_the_network_or_too_small_for_pods() {
    assert_eq!(NodeIpamSettings::default().cluster_cidr(), range());
    assert_eq!(NodeIpamSettings::default().node_mask_size(), 22);
    let settings = NodeIpamSettings::new(net("10.64.1.2/10"), 24).expect("valid settings");
    assert_eq!(settings.cluster_cidr(), net("10.64.0.0/10"));
    assert!(NodeIpamSettings::new(net("10.42.0.0/16"), 15).is_err());
    assert!(NodeIpamSettings::new(net("10.42.0.0/16"), 31).is_err());
    let message = NodeIpamSettings::new(net("10.42.0.0/16"), 8)
        .expect_err("a /8 block of a /16")
        .to_string();
    assert!(message.contains("--node-cidr-mask-size 8"), "{message}");
}
