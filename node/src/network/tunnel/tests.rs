use std::net::{Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::network::{FabricConfig, Peer};

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

/// Fabric A (pods 10.42.0.0/24) with B (10.42.1.0/24) as its peer, B's
/// tunnel served on a real loopback port.
async fn two_nodes() -> (Fabric, Fabric, SocketAddr) {
    let a = Fabric::new(FabricConfig::default());
    let b = Fabric::new(FabricConfig::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tunnel_addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, b.clone(), std::future::pending()));
    a.set_peers(vec![Peer {
        pod_cidr: Ipv4Net::new(Ipv4Addr::new(10, 42, 1, 0), 24).expect("cidr"),
        tunnel: tunnel_addr,
    }]);
    (a, b, tunnel_addr)
}

#[test]
fn headers_round_trip() {
    let header = Header {
        dst: "10.42.1.7:8080".parse().expect("dst"),
        source: "10.42.0.3:40001".parse().expect("source"),
    };
    assert_eq!(Header::decode(&header.encode()), Ok(header));
    let mut wrong = header.encode();
    wrong[3] = 9;
    assert_eq!(Header::decode(&wrong), Err(HeaderError::Version(9)));
    wrong[0] = b'G';
    assert_eq!(Header::decode(&wrong), Err(HeaderError::Magic));
}

#[tokio::test]
async fn a_pod_reaches_a_pod_of_another_node_through_its_tunnel() {
    let (a, b, _) = two_nodes().await;
    let client = a.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    let server = b.attach(Ipv4Addr::new(10, 42, 1, 2), "default", false);
    let mut listener = server.listen(addr("0.0.0.0:8080"), 8).expect("listen");
    let echo = tokio::spawn(async move {
        let mut accepted = listener.accept().await.expect("a connection");
        let mut buf = [0u8; 5];
        accepted.stream.read_exact(&mut buf).await.expect("read");
        accepted.stream.write_all(&buf).await.expect("write");
        (accepted.peer, accepted.local)
    });
    let (mut stream, local) = client
        .connect(addr("10.42.1.2:8080"))
        .await
        .expect("connect");
    assert!(matches!(stream, VirtualStream::Tcp(_)));
    stream.write_all(b"hello").await.expect("write");
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"hello");
    let (peer, server_local) = echo.await.expect("echo");
    assert_eq!(peer, local, "the server sees the client pod's address");
    assert_eq!(server_local, addr("10.42.1.2:8080"));
}

#[tokio::test]
async fn a_port_nobody_listens_on_is_refused_across_nodes() {
    let (a, b, _) = two_nodes().await;
    let client = a.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    let _server = b.attach(Ipv4Addr::new(10, 42, 1, 2), "default", false);
    assert!(matches!(
        client.connect(addr("10.42.1.2:8080")).await,
        Err(NetError::ConnectionRefused(_))
    ));
}

#[tokio::test]
async fn a_pod_ip_the_peer_does_not_have_is_unreachable() {
    let (a, _b, _) = two_nodes().await;
    let client = a.attach(Ipv4Addr::new(10, 42, 0, 2), "default", false);
    assert!(matches!(
        client.connect(addr("10.42.1.99:8080")).await,
        Err(NetError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_peer_whose_tunnel_is_down_is_unreachable() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tunnel = closed.local_addr().expect("addr");
    drop(closed);
    assert!(matches!(
        connect(tunnel, addr("10.42.0.2:1234"), addr("10.42.1.2:80")).await,
        Err(NetError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_malformed_header_is_closed_without_an_answer() {
    let (_a, b, tunnel) = two_nodes().await;
    let server = b.attach(Ipv4Addr::new(10, 42, 1, 2), "default", false);
    let _listener = server.listen(addr("0.0.0.0:8080"), 8).expect("listen");
    let mut raw = TcpStream::connect(tunnel).await.expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    // The tunnel closes without an answer (a reset, as the request's tail
    // was never read).
    let mut rest = Vec::new();
    match raw.read_to_end(&mut rest).await {
        Ok(_) => assert!(rest.is_empty(), "no answer byte for a malformed header"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

#[tokio::test]
async fn the_tunnel_reaches_only_its_own_nodes_pods() {
    let (_a, b, tunnel) = two_nodes().await;
    // A destination outside the pod network, e.g. the node's own loopback.
    assert!(matches!(
        connect(tunnel, addr("10.42.0.2:1234"), addr("127.0.0.1:22")).await,
        Err(NetError::Unreachable(_))
    ));
    drop(b);
}
