//! One probe check over the pod's virtual network: the node connects to
//! podIP:port through its fabric, as the kubelet dials the pod IP; HTTP
//! probes send one GET over that connection. Failure messages follow the
//! kubelet's wording.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;

use super::machine::Outcome;
use super::runner::Transport;
use super::spec::{Action, HttpGet};
use crate::network::{NetError, PodNetwork, VirtualStream};

/// The User-Agent of probe requests, as the kubelet of the API level sends.
const USER_AGENT: &str = "kube-probe/1.32";

/// The first and last source ports of the node's probe connections.
const SOURCE_PORT_FIRST: u16 = 32768;
const SOURCE_PORT_LAST: u16 = 60999;

static NEXT_SOURCE_PORT: AtomicU16 = AtomicU16::new(SOURCE_PORT_FIRST);

/// Checks a pod's probes over its network. A pod without one (the fake
/// runtime's) refuses every connection.
#[derive(Debug, Clone)]
pub struct NetworkTransport {
    network: Option<PodNetwork>,
}

impl NetworkTransport {
    pub fn new(network: Option<PodNetwork>) -> Self {
        Self { network }
    }

    /// Where a probe with `host` connects: the host if given, else the pod IP.
    fn target(&self, host: Option<IpAddr>, port: u16) -> Target {
        let ip = host.or_else(|| self.network.as_ref().map(|n| IpAddr::V4(n.ip())));
        Target { ip, port }
    }

    async fn connect(&self, target: Target) -> Result<VirtualStream, NetError> {
        let Some(ip) = target.ip else {
            return Err(NetError::ConnectionRefused(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                target.port,
            ))));
        };
        let dst = SocketAddr::new(ip, target.port);
        let Some(network) = &self.network else {
            return Err(NetError::ConnectionRefused(dst));
        };
        let source = SocketAddr::new(IpAddr::V4(node_address(network.ip())), source_port());
        network.fabric().connect(source, dst, false).await
    }

    async fn tcp(&self, host: Option<IpAddr>, port: u16, timeout: Duration) -> Outcome {
        let target = self.target(host, port);
        match tokio::time::timeout(timeout, self.connect(target)).await {
            Ok(Ok(_)) => Outcome::Success,
            Ok(Err(e)) => Outcome::Failure(format!("dial tcp {target}: {}", describe(&e))),
            Err(_) => Outcome::Failure(format!("dial tcp {target}: i/o timeout")),
        }
    }

    async fn http(&self, get: &HttpGet, timeout: Duration) -> Outcome {
        let target = self.target(get.host, get.port);
        let url = format!("http://{target}{}", get.path);
        let request = match request(get, target) {
            Ok(r) => r,
            Err(message) => return Outcome::Failure(message),
        };
        let exchange = async {
            let stream = self
                .connect(target)
                .await
                .map_err(|e| format!("dial tcp {target}: {}", describe(&e)))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            let response = sender.send_request(request);
            tokio::pin!(connection, response);
            // The connection must make progress while the answer is awaited;
            // once it ends, the answer is there or never comes.
            let answered = tokio::select! {
                biased;
                answered = &mut response => answered,
                ended = &mut connection => match ended {
                    Ok(()) => response.await,
                    Err(e) => Err(e),
                },
            };
            answered.map(|r| r.status()).map_err(|e| e.to_string())
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(status)) if (200..400).contains(&status.as_u16()) => Outcome::Success,
            Ok(Ok(status)) => Outcome::Failure(format!(
                "HTTP probe failed with statuscode: {}",
                status.as_u16()
            )),
            Ok(Err(message)) => Outcome::Failure(format!("Get \"{url}\": {message}")),
            Err(_) => Outcome::Failure(format!(
                "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )),
        }
    }
}

impl Transport for NetworkTransport {
    async fn check(&self, action: &Action, timeout: Duration) -> Outcome {
        match action {
            Action::Unsupported(message) => Outcome::Failure(message.clone()),
            Action::Tcp { host, port } => self.tcp(*host, *port, timeout).await,
            Action::Http(get) => self.http(get, timeout).await,
        }
    }
}

/// A probe's destination; the IP is unknown for a pod without a network.
#[derive(Debug, Clone, Copy)]
struct Target {
    ip: Option<IpAddr>,
    port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(ip) => write!(f, "{}", SocketAddr::new(ip, self.port)),
            None => write!(f, ":{}", self.port),
        }
    }
}

/// The GET the kubelet sends: its User-Agent and Accept, the Host of the
/// target, and the probe's headers over them (a `Host` header included).
fn request(get: &HttpGet, target: Target) -> Result<Request<Empty<Bytes>>, String> {
    let mut request = Request::get(get.path.as_str())
        .body(Empty::new())
        .map_err(|e| format!("invalid probe path {:?}: {e}", get.path))?;
    let headers = request.headers_mut();
    let host = match target.ip {
        Some(_) => target.to_string(),
        None => format!("localhost{target}"),
    };
    let fixed = [
        (header::HOST, host.as_str()),
        (header::USER_AGENT, USER_AGENT),
        (header::ACCEPT, "*/*"),
    ];
    for (name, value) in fixed {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    let mut replaced: Vec<HeaderName> = Vec::new();
    for (name, value) in &get.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid probe header name {name:?}"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("invalid value of probe header {name}"))?;
        // The probe's headers replace the defaults; repeated ones add up.
        if !replaced.contains(&name) {
            headers.remove(&name);
            replaced.push(name.clone());
        }
        headers.append(name, value);
    }
    Ok(request)
}

/// A connection failure in the words of Go's dialer, which probe messages
/// carry in Kubernetes.
fn describe(error: &NetError) -> String {
    match error {
        NetError::ConnectionRefused(_) => "connect: connection refused".into(),
        NetError::Unreachable(_) => "connect: no route to host".into(),
        other => other.to_string(),
    }
}

/// The node's own address on the pod's /24: its first address (x.x.x.1),
/// which is never a pod's.
fn node_address(pod_ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(pod_ip) & 0xffff_ff00) | 1)
}

fn source_port() -> u16 {
    let port = NEXT_SOURCE_PORT.fetch_add(1, Ordering::Relaxed);
    if (SOURCE_PORT_FIRST..=SOURCE_PORT_LAST).contains(&port) {
        return port;
    }
    NEXT_SOURCE_PORT.store(SOURCE_PORT_FIRST + 1, Ordering::Relaxed);
    SOURCE_PORT_FIRST
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::network::{Fabric, FabricConfig, VirtualListener};

    const TIMEOUT: Duration = Duration::from_secs(1);

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a socket address")
    }

    fn pod() -> PodNetwork {
        Fabric::new(FabricConfig::default()).attach(Ipv4Addr::new(10, 42, 0, 7), "default", false)
    }

    fn get(port: u16, path: &str) -> Action {
        Action::Http(HttpGet {
            host: None,
            port,
            path: path.into(),
            headers: vec![("X-Probe".into(), "yes".into())],
        })
    }

    /// Answers one HTTP request with `status`, returning the request head.
    async fn answer_once(mut listener: VirtualListener, status: &'static str) -> String {
        let mut accepted = listener.accept().await.expect("a connection");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = accepted.stream.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let response = format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
        accepted
            .stream
            .write_all(response.as_bytes())
            .await
            .expect("write");
        assert_eq!(accepted.peer.ip(), IpAddr::V4(Ipv4Addr::new(10, 42, 0, 1)));
        String::from_utf8_lossy(&head).into_owned()
    }

    #[tokio::test]
    async fn an_http_probe_succeeds_on_2xx_over_the_pod_network() {
        let pod = pod();
        let listener = pod.listen(addr("0.0.0.0:8080"), 8).expect("listen");
        let server = tokio::spawn(answer_once(listener, "200 OK"));
        let transport = NetworkTransport::new(Some(pod));
        assert_eq!(
            transport.check(&get(8080, "/healthz?x=1"), TIMEOUT).await,
            Outcome::Success
        );
        let head = server.await.expect("server").to_ascii_lowercase();
        assert!(head.starts_with("get /healthz?x=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("host: 10.42.0.7:8080"), "{head}");
        assert!(head.contains("user-agent: kube-probe/1.32"), "{head}");
        assert!(head.contains("x-probe: yes"), "{head}");
    }

    #[tokio::test]
    async fn an_http_probe_fails_on_5xx() {
        let pod = pod();
        let listener = pod.listen(addr("10.42.0.7:8080"), 8).expect("listen");
        let server = tokio::spawn(answer_once(listener, "503 Service Unavailable"));
        let transport = NetworkTransport::new(Some(pod));
        assert_eq!(
            transport.check(&get(8080, "/"), TIMEOUT).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503".into())
        );
        server.await.expect("server");
    }

    #[tokio::test]
    async fn a_probe_to_a_port_nobody_listens_on_is_refused() {
        let transport = NetworkTransport::new(Some(pod()));
        assert_eq!(
            transport.check(&get(9999, "/"), TIMEOUT).await,
            Outcome::Failure(
                "Get \"http://10.42.0.7:9999/\": dial tcp 10.42.0.7:9999: connect: connection refused"
                    .into()
            )
        );
        let tcp = Action::Tcp {
            host: None,
            port: 9999,
        };
        assert_eq!(
            transport.check(&tcp, TIMEOUT).await,
            Outcome::Failure("dial tcp 10.42.0.7:9999: connect: connection refused".into())
        );
    }

    #[tokio::test]
    async fn a_loopback_only_listener_is_not_reachable_by_probes() {
        let pod = pod();
        let _listener = pod.listen(addr("127.0.0.1:7000"), 8).expect("listen");
        let transport = NetworkTransport::new(Some(pod));
        let tcp = Action::Tcp {
            host: None,
            port: 7000,
        };
        assert!(matches!(
            transport.check(&tcp, TIMEOUT).await,
            Outcome::Failure(_)
        ));
    }

    #[tokio::test]
    async fn a_tcp_probe_succeeds_when_something_listens() {
        let pod = pod();
        let _listener = pod.listen(addr("0.0.0.0:7000"), 8).expect("listen");
        let transport = NetworkTransport::new(Some(pod));
        let tcp = Action::Tcp {
            host: None,
            port: 7000,
        };
        assert_eq!(transport.check(&tcp, TIMEOUT).await, Outcome::Success);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http_probe_that_gets_no_answer_times_out() {
        let pod = pod();
        let _listener = pod.listen(addr("0.0.0.0:8080"), 8).expect("listen");
        let transport = NetworkTransport::new(Some(pod));
        let Outcome::Failure(message) = transport.check(&get(8080, "/"), TIMEOUT).await else {
            panic!("a timeout");
        };
        assert!(message.contains("context deadline exceeded"), "{message}");
    }

    #[tokio::test]
    async fn a_pod_without_network_refuses_every_probe() {
        let transport = NetworkTransport::new(None);
        let tcp = Action::Tcp {
            host: None,
            port: 80,
        };
        assert_eq!(
            transport.check(&tcp, TIMEOUT).await,
            Outcome::Failure("dial tcp :80: connect: connection refused".into())
        );
    }
}
