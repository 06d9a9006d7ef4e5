use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

fn fabric() -> Fabric {
    Fabric::new(FabricConfig::default())
}

async fn echo_once(mut listener: VirtualListener) -> SocketAddr {
    let mut accepted = listener.accept().await.expect("a connection");
    let mut buf = [0u8; 5];
    accepted.stream.read_exact(&mut buf).await.expect("read");
    accepted.stream.write_all(&buf).await.expect("write");
    accepted.peer
}

#[tokio::test]
async fn modules_of_one_pod_meet_on_loopback() {
    let fabric = fabric();
    let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    let listener = pod.listen(addr("127.0.0.1:8080"), 8).expect("listen");
    let server = tokio::spawn(echo_once(listener));
    let (mut stream, local) = pod.connect(addr("127.0.0.1:8080")).await.expect("connect");
    stream.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"hello");
    assert_eq!(server.await.expect("server"), local);
    assert!(local.ip().is_loopback());
}

#[tokio::test]
async fn two_pods_listen_on_one_port_and_reach_each_other_by_ip() {
    let fabric = fabric();
    let a = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    let b = fabric.attach(Ipv4Addr::new(10, 42, 0, 3), "default", false);
    let _a_listener = a.listen(addr("0.0.0.0:8080"), 8).expect("a listens");
    let b_listener = b.listen(addr("0.0.0.0:8080"), 8).expect("b listens");
    let server = tokio::spawn(echo_once(b_listener));
    let (mut stream, local) = a.connect(addr("10.42.0.3:8080")).await.expect("connect");
    stream.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.expect("read");
    assert_eq!(
        server.await.expect("server").ip(),
        IpAddr::V4(Ipv4Addr::new(10, 42, 0, 2))
    );
    assert_eq!(local.ip(), IpAddr::V4(Ipv4Addr::new(10, 42, 0, 2)));
}

#[tokio::test]
async fn another_pods_loopback_is_not_reachable() {
    let fabric = fabric();
    let a = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    let b = fabric.attach(Ipv4Addr::new(10, 42, 0, 3), "default", false);
    let _listener = b.listen(addr("127.0.0.1:9000"), 8).expect("listen");
    assert!(matches!(
        a.connect(addr("10.42.0.3:9000")).await,
        Err(NetError::ConnectionRefused(_))
    ));
    assert!(matches!(
        a.connect(addr("127.0.0.1:9000")).await,
        Err(NetError::ConnectionRefused(_))
    ));
}

#[tokio::test]
async fn a_pod_ip_no_node_owns_is_unreachable() {
    let fabric = fabric();
    let a = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    assert!(matches!(
        a.connect(addr("10.42.9.9:80")).await,
        Err(NetError::Unreachable(_))
    ));
}

#[tokio::test]
async fn leaving_the_cluster_needs_egress() {
    let fabric = fabric();
    let closed = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    assert!(matches!(
        closed.connect(addr("192.0.2.1:80")).await,
        Err(NetError::Denied(_))
    ));
    assert!(matches!(
        closed.resolve("example.com").await,
        Err(NetError::Denied(_))
    ));
}

#[tokio::test]
async fn the_nodes_own_addresses_are_never_reachable() {
    let real = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let node_addr = real.local_addr().expect("addr");
    let fabric = Fabric::new(FabricConfig {
        allow_egress: true,
        node_addresses: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))],
    });
    let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", true);
    // 127.0.0.1 is the pod's own loopback, never the node's.
    assert!(matches!(
        pod.connect(node_addr).await,
        Err(NetError::ConnectionRefused(_))
    ));
    assert!(matches!(
        pod.connect(addr("192.0.2.7:10250")).await,
        Err(NetError::Denied(_))
    ));
}

#[tokio::test]
async fn a_detached_pod_frees_its_ip() {
    let fabric = fabric();
    let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    assert!(fabric.has_pod(Ipv4Addr::new(10, 42, 0, 2)));
    drop(pod);
    assert!(!fabric.has_pod(Ipv4Addr::new(10, 42, 0, 2)));
}

#[tokio::test]
async fn names_resolve_to_literals_and_localhost() {
    let fabric = fabric();
    let pod = fabric.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    assert_eq!(
        pod.resolve("localhost").await.expect("localhost"),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
    );
    assert_eq!(
        pod.resolve("10.43.0.1").await.expect("literal"),
        vec![IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1))]
    );
    assert!(matches!(
        pod.resolve("nothing.default.svc.cluster.local").await,
        Err(NetError::NameNotFound(_))
    ));
}
