use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;

fn ip(text: &str) -> Ipv4Addr {
    text.parse().expect("an IPv4 address")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

fn web(balancing: Balancing, affinity: Option<Duration>) -> ServiceEntry {
    ServiceEntry {
        namespace: "shop".into(),
        name: "web".into(),
        cluster_ip: Some(ip("10.43.0.10")),
        ports: vec![
            ServicePort {
                name: "http".into(),
                port: 80,
                node_port: Some(30080),
            },
            ServicePort {
                name: "admin".into(),
                port: 9000,
                node_port: None,
            },
        ],
        affinity,
        balancing,
    }
}

fn endpoint(address: &str, ready: bool) -> EndpointAddress {
    EndpointAddress {
        ip: ip(address),
        hostname: None,
        ready,
        ports: vec![("http".into(), 8080), ("admin".into(), 9090)],
    }
}

fn web_endpoints(addresses: Vec<EndpointAddress>) -> EndpointsEntry {
    EndpointsEntry {
        namespace: "shop".into(),
        name: "web".into(),
        addresses,
    }
}

fn three() -> Vec<EndpointAddress> {
    vec![
        endpoint("10.42.0.2", true),
        endpoint("10.42.1.2", true),
        endpoint("10.42.2.2", true),
    ]
}

fn spread(
    table: &ServiceTable,
    picks: usize,
    client: impl Fn(usize) -> IpAddr,
) -> HashMap<SocketAddr, usize> {
    let mut counts = HashMap::new();
    for i in 0..picks {
        match table.route(addr("10.43.0.10:80"), client(i)) {
            Route::To(backend) => *counts.entry(backend).or_insert(0) += 1,
            other => panic!("expected an endpoint, got {other:?}"),
        }
    }
    counts
}

fn assert_even(counts: &HashMap<SocketAddr, usize>, picks: usize) {
    assert_eq!(counts.len(), 3, "{counts:?}");
    let expected = picks / 3;
    for (backend, &n) in counts {
        assert!(
            n >= expected * 8 / 10 && n <= expected * 12 / 10,
            "{backend} got {n} of {picks}: {counts:?}"
        );
    }
}

#[test]
fn round_robin_spreads_evenly_over_ready_endpoints() {
    let table = ServiceTable::new(
        &[web(Balancing::RoundRobin, None)],
        &[web_endpoints(three())],
    );
    let counts = spread(&table, 3000, |_| IpAddr::V4(ip("10.42.5.5")));
    assert_even(&counts, 3000);
    assert!(counts.keys().all(|b| b.port() == 8080));
}

#[test]
fn random_spreads_within_twenty_percent() {
    let table = ServiceTable::new(&[web(Balancing::Random, None)], &[web_endpoints(three())]);
    let counts = spread(&table, 3000, |_| IpAddr::V4(ip("10.42.5.5")));
    assert_even(&counts, 3000);
}

#[test]
fn client_ip_affinity_sticks_each_client_to_its_endpoint() {
    let table = ServiceTable::new(
        &[web(Balancing::Random, Some(DEFAULT_AFFINITY_TIMEOUT))],
        &[web_endpoints(three())],
    );
    let client = IpAddr::V4(ip("10.42.5.5"));
    let Route::To(first) = table.route(addr("10.43.0.10:80"), client) else {
        panic!("expected an endpoint");
    };
    for _ in 0..100 {
        assert_eq!(table.route(addr("10.43.0.10:80"), client), Route::To(first));
    }
    // Many clients still spread over every endpoint.
    let counts = spread(&table, 3000, |i| {
        IpAddr::V4(Ipv4Addr::from(
            0x0A2A_0000 + u32::try_from(i).expect("small"),
        ))
    });
    assert_even(&counts, 3000);
}

#[test]
fn affinity_ends_after_the_timeout_or_when_the_endpoint_goes() {
    let timeout = Duration::from_secs(10);
    let table = ServiceTable::new(
        &[web(Balancing::RoundRobin, Some(timeout))],
        &[web_endpoints(three())],
    );
    let client = IpAddr::V4(ip("10.42.5.5"));
    let dst = addr("10.43.0.10:80");
    let start = Instant::now();
    let first = table.route_at(dst, client, start);
    assert_eq!(
        table.route_at(dst, client, start + Duration::from_secs(9)),
        first
    );
    // Used 9 s in, so still stuck 18 s in; 10 s idle later it is not.
    assert_eq!(
        table.route_at(dst, client, start + Duration::from_secs(18)),
        first
    );
    assert_ne!(
        table.route_at(dst, client, start + Duration::from_secs(40)),
        first
    );

    let Route::To(stuck) = table.route(dst, client) else {
        panic!("expected an endpoint");
    };
    let remaining: Vec<EndpointAddress> = three()
        .into_iter()
        .filter(|e| SocketAddr::from((e.ip, 8080)) != stuck)
        .collect();
    let rebuilt = ServiceTable::new(
        &[web(Balancing::RoundRobin, Some(timeout))],
        &[web_endpoints(remaining)],
    )
    .carry_over(&table);
    assert_ne!(rebuilt.route(dst, client), Route::To(stuck));
}

#[test]
fn affinity_survives_a_rebuild_of_the_table() {
    let service = web(Balancing::Random, Some(DEFAULT_AFFINITY_TIMEOUT));
    let table = ServiceTable::new(std::slice::from_ref(&service), &[web_endpoints(three())]);
    let client = IpAddr::V4(ip("10.42.5.5"));
    let first = table.route(addr("10.43.0.10:80"), client);
    let rebuilt = ServiceTable::new(&[service], &[web_endpoints(three())]).carry_over(&table);
    for _ in 0..20 {
        assert_eq!(rebuilt.route(addr("10.43.0.10:80"), client), first);
    }
}

#[test]
fn only_ready_endpoints_receive_connections() {
    let table = ServiceTable::new(
        &[web(Balancing::RoundRobin, None)],
        &[web_endpoints(vec![
            endpoint("10.42.0.2", false),
            endpoint("10.42.0.3", true),
        ])],
    );
    for _ in 0..10 {
        assert_eq!(
            table.route(addr("10.43.0.10:80"), IpAddr::V4(ip("10.42.5.5"))),
            Route::To(addr("10.42.0.3:8080"))
        );
    }
}

#[test]
fn each_service_port_goes_to_the_endpoints_port_of_its_name() {
    let table = ServiceTable::new(
        &[web(Balancing::RoundRobin, None)],
        &[web_endpoints(vec![endpoint("10.42.0.2", true)])],
    );
    let client = IpAddr::V4(ip("10.42.5.5"));
    assert_eq!(
        table.route(addr("10.43.0.10:9000"), client),
        Route::To(addr("10.42.0.2:9090"))
    );
    assert_eq!(
        table.route(addr("10.43.0.10:81"), client),
        Route::NotAService
    );
    assert_eq!(
        table.route(addr("10.43.0.11:80"), client),
        Route::NotAService
    );
}

#[test]
fn a_service_without_ready_endpoints_refuses() {
    let no_endpoints = ServiceTable::new(&[web(Balancing::RoundRobin, None)], &[]);
    let client = IpAddr::V4(ip("10.42.5.5"));
    assert_eq!(
        no_endpoints.route(addr("10.43.0.10:80"), client),
        Route::NoEndpoints
    );
    assert_eq!(
        no_endpoints.route_node_port(30080, client),
        Route::NoEndpoints
    );
    let unready = ServiceTable::new(
        &[web(Balancing::RoundRobin, None)],
        &[web_endpoints(vec![endpoint("10.42.0.2", false)])],
    );
    assert_eq!(
        unready.route(addr("10.43.0.10:80"), client),
        Route::NoEndpoints
    );
}

#[test]
fn node_ports_route_like_the_cluster_ip() {
    let table = ServiceTable::new(
        &[web(Balancing::RoundRobin, None)],
        &[web_endpoints(vec![endpoint("10.42.0.2", true)])],
    );
    assert_eq!(table.node_ports(), vec![30080]);
    let client = IpAddr::V4(ip("192.0.2.9"));
    assert_eq!(
        table.route_node_port(30080, client),
        Route::To(addr("10.42.0.2:8080"))
    );
    assert_eq!(table.route_node_port(30081, client), Route::NotAService);
}

#[test]
fn service_names_resolve_to_the_cluster_ip_in_every_form() {
    let table = ServiceTable::new(&[web(Balancing::RoundRobin, None)], &[]);
    let want = Some(vec![IpAddr::V4(ip("10.43.0.10"))]);
    for name in [
        "web",
        "web.shop",
        "web.shop.svc",
        "web.shop.svc.cluster.local",
        "web.shop.svc.cluster.local.",
        "WEB.Shop.SVC.Cluster.Local",
    ] {
        assert_eq!(table.lookup(name, "shop"), want, "{name}");
    }
    // From another namespace only the qualified forms work.
    assert_eq!(table.lookup("web", "other"), None);
    assert_eq!(table.lookup("web.shop", "other"), want);
    assert_eq!(table.lookup("web.shop.svc.cluster.local", "other"), want);
    assert_eq!(table.lookup("example.com", "shop"), None);
    assert_eq!(table.lookup("nothing.shop.svc.cluster.local", "shop"), None);
    assert_eq!(table.lookup("", "shop"), None);
}

fn headless_db() -> (ServiceEntry, EndpointsEntry) {
    let service = ServiceEntry {
        namespace: "shop".into(),
        name: "db".into(),
        cluster_ip: None,
        ports: vec![ServicePort {
            name: String::new(),
            port: 5432,
            node_port: None,
        }],
        affinity: None,
        balancing: Balancing::RoundRobin,
    };
    let member = |address: &str, hostname: &str, ready: bool| EndpointAddress {
        ip: ip(address),
        hostname: Some(hostname.into()),
        ready,
        ports: vec![(String::new(), 5432)],
    };
    let endpoints = EndpointsEntry {
        namespace: "shop".into(),
        name: "db".into(),
        addresses: vec![
            member("10.42.1.7", "db-1", true),
            member("10.42.0.4", "db-0", true),
            member("10.42.2.9", "db-2", false),
        ],
    };
    (service, endpoints)
}

#[test]
fn a_headless_service_resolves_to_its_ready_endpoints() {
    let (service, endpoints) = headless_db();
    let table = ServiceTable::new(&[service], &[endpoints]);
    assert_eq!(
        table.lookup("db", "shop"),
        Some(vec![
            IpAddr::V4(ip("10.42.0.4")),
            IpAddr::V4(ip("10.42.1.7"))
        ])
    );
    // No virtual IP to route.
    assert_eq!(
        table.route(addr("10.42.0.4:5432"), IpAddr::V4(ip("10.42.5.5"))),
        Route::NotAService
    );
}

#[test]
fn stateful_pod_names_resolve_to_their_endpoint() {
    let (service, endpoints) = headless_db();
    let table = ServiceTable::new(&[service], &[endpoints]);
    let db0 = Some(vec![IpAddr::V4(ip("10.42.0.4"))]);
    for name in [
        "db-0.db",
        "db-0.db.shop",
        "db-0.db.shop.svc",
        "db-0.db.shop.svc.cluster.local",
        "DB-0.DB.SHOP.SVC.CLUSTER.LOCAL",
    ] {
        assert_eq!(table.lookup(name, "shop"), db0, "{name}");
    }
    assert_eq!(table.lookup("db-0.db.shop", "other"), db0);
    // Not ready: not resolved.
    assert_eq!(table.lookup("db-2.db", "shop"), None);
    assert_eq!(table.lookup("db-9.db", "shop"), None);
}

#[test]
fn endpoints_without_a_service_are_ignored() {
    let (_, endpoints) = headless_db();
    let table = ServiceTable::new(&[], &[endpoints]);
    assert_eq!(table.lookup("db", "shop"), None);
    assert!(table.node_ports().is_empty());
}
