//! HTTP components (`wasm-examples/http-echo`, `http-client`) served on and
//! calling through pod networks of one fabric.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use wasmtime_wasi_http::io::TokioIo;

use super::component::example;
use super::*;
use crate::network::{Fabric, FabricConfig, NetError, PodNetwork};
use crate::runtime::ProgramKind;

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 2);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 3);

struct Pods {
    _fabric: Fabric,
    server: PodNetwork,
    client: PodNetwork,
}

fn pods() -> Pods {
    let fabric = Fabric::new(FabricConfig::default());
    Pods {
        server: fabric.attach(SERVER_IP, "default", false),
        client: fabric.attach(CLIENT_IP, "default", false),
        _fabric: fabric,
    }
}

fn echo_spec(network: &PodNetwork, log: &LogFile) -> InstanceSpec {
    InstanceSpec {
        args: vec!["http-echo".into()],
        env: vec![("HOSTNAME".into(), "echo-0".into())],
        stdout: Some(log.stdout()),
        stderr: Some(log.stderr()),
        network: Some(network.clone()),
        ports: vec![8080],
        ..InstanceSpec::default()
    }
}

/// An HTTP/1.1 connection from `pod` to `dst`.
async fn connect(pod: &PodNetwork, dst: SocketAddr) -> Result<SendRequest<Full<Bytes>>, NetError> {
    let (stream, _) = pod.connect(dst).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends a request and returns the status and body.
async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    sender.ready().await.expect("connection ready");
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "http-echo")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn server_addr() -> SocketAddr {
    SocketAddr::from((SERVER_IP, 8080))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_echo_serves_many_concurrent_keep_alive_clients() {
    let Some(bytes) = example("http-echo") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = runtime.load(&bytes).expect("component loads");
    assert_eq!(program.kind(), ProgramKind::HttpHandler);
    let pods = pods();
    let log = log(dir.path(), "echo.log");
    let instance = runtime
        .start(&program, echo_spec(&pods.server, &log))
        .await
        .expect("starts");
    assert_eq!(instance.try_status(), None, "a service keeps running");

    let mut clients = Vec::new();
    for c in 0..16 {
        let pod = pods.client.clone();
        clients.push(tokio::spawn(async move {
            let mut sender = connect(&pod, server_addr()).await.expect("connects");
            for r in 0..4 {
                let (status, body) =
                    request(&mut sender, "POST", &format!("/c{c}/r{r}"), "ping").await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    body,
                    format!("POST /c{c}/r{r}\nhostname: echo-0\nbody: ping\n")
                );
            }
        }));
    }
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("clients finish in time")
            .expect("client succeeded");
    }
    assert_eq!(instance.try_status(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_request_is_a_500_and_the_next_one_is_served() {
    let Some(bytes) = example("http-echo") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = runtime.load(&bytes).expect("component loads");
    let pods = pods();
    let log = log(dir.path(), "echo.log");
    let instance = runtime
        .start(&program, echo_spec(&pods.server, &log))
        .await
        .expect("starts");
    let mut sender = connect(&pods.client, server_addr())
        .await
        .expect("connects");
    let (status, body) = request(&mut sender, "GET", "/trap", "").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("trapped"), "{body}");
    let mut sender = connect(&pods.client, server_addr())
        .await
        .expect("connects");
    let (status, body) = request(&mut sender, "GET", "/after", "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "GET /after\nhostname: echo-0\nbody: \n")
    );
    assert_eq!(instance.try_status(), None);
    let output = logged(&log);
    assert!(
        output.contains("GET /trap: the handler trapped"),
        "{output}"
    );
    // The guest's own panic message reaches the container log too.
    assert!(output.contains("asked to trap"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_is_a_504() {
    let Some(bytes) = example("http-echo") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RuntimeConfig {
        pool_slots: 8,
        http_request_timeout: Duration::from_millis(300),
        ..RuntimeConfig::new(dir.path().join("cache"))
    };
    let runtime = Runtime::new(config).expect("runtime");
    let program = runtime.load(&bytes).expect("component loads");
    let pods = pods();
    let log = log(dir.path(), "echo.log");
    let _instance = runtime
        .start(&program, echo_spec(&pods.server, &log))
        .await
        .expect("starts");
    let mut sender = connect(&pods.client, server_addr())
        .await
        .expect("connects");
    let (status, body) = request(&mut sender, "GET", "/sleep?ms=5000", "").await;
    assert_eq!(status, 504, "{body}");
    let (status, _) = request(&mut sender, "GET", "/sleep?ms=1", "").await;
    assert_eq!(status, 200, "the same connection serves the next request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_http_component_stops_serving() {
    let Some(bytes) = example("http-echo") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = runtime.load(&bytes).expect("component loads");
    let pods = pods();
    let log = log(dir.path(), "echo.log");
    let instance = runtime
        .start(&program, echo_spec(&pods.server, &log))
        .await
        .expect("starts");
    let mut sender = connect(&pods.client, server_addr())
        .await
        .expect("connects");
    assert_eq!(request(&mut sender, "GET", "/", "").await.0, 200);
    instance.kill();
    assert_eq!(
        wait(&instance, Duration::from_secs(10)).await,
        ExitStatus::Killed
    );
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match pods.client.connect(server_addr()).await {
                Err(NetError::ConnectionRefused(_)) => break,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "the port is released after the kill");
}

#[tokio::test]
async fn an_http_component_whose_port_is_taken_exits_with_an_error() {
    let Some(bytes) = example("http-echo") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = runtime.load(&bytes).expect("component loads");
    let pods = pods();
    let _taken = pods
        .server
        .listen(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)), 1)
        .expect("binds");
    let log = log(dir.path(), "echo.log");
    let instance = runtime
        .start(&program, echo_spec(&pods.server, &log))
        .await
        .expect("starts");
    assert_eq!(
        wait(&instance, Duration::from_secs(10)).await,
        ExitStatus::Exit { code: 1 }
    );
    let output = logged(&log);
    assert!(
        output.contains("cannot serve HTTP on port 8080"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_reaches_http_echo_through_the_pod_network() {
    let (Some(echo), Some(client)) = (example("http-echo"), example("http-client")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let echo = runtime.load(&echo).expect("echo loads");
    let client = runtime.load(&client).expect("client loads");
    assert_eq!(client.kind(), ProgramKind::Component);
    let pods = pods();
    let echo_log = log(dir.path(), "echo.log");
    let _server = runtime
        .start(&echo, echo_spec(&pods.server, &echo_log))
        .await
        .expect("server starts");
    let client_log = log(dir.path(), "client.log");
    let spec = InstanceSpec {
        args: vec!["http-client".into()],
        env: vec![
            ("TARGET".into(), format!("http://{SERVER_IP}:8080/hello")),
            ("INTERVAL_MS".into(), "50".into()),
        ],
        stdout: Some(client_log.stdout()),
        stderr: Some(client_log.stderr()),
        network: Some(pods.client.clone()),
        ..InstanceSpec::default()
    };
    let client = runtime.start(&client, spec).await.expect("client starts");
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let output = logged(&client_log);
            if output.contains("3: status 200") {
                return output;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the client logs answers");
    assert!(
        seen.contains("body: GET /hello | hostname: echo-0"),
        "{seen}"
    );
    client.kill();
}

#[tokio::test]
async fn outgoing_requests_to_a_closed_port_fail_in_the_guest() {
    let Some(client) = example("http-client") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let client = runtime.load(&client).expect("client loads");
    let pods = pods();
    let client_log = log(dir.path(), "client.log");
    let spec = InstanceSpec {
        args: vec!["http-client".into()],
        env: vec![
            ("TARGET".into(), format!("http://{SERVER_IP}:9/")),
            ("INTERVAL_MS".into(), "50".into()),
        ],
        stdout: Some(client_log.stdout()),
        stderr: Some(client_log.stderr()),
        network: Some(pods.client.clone()),
        ..InstanceSpec::default()
    };
    let client = runtime.start(&client, spec).await.expect("client starts");
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let output = logged(&client_log);
            if output.contains("1: request failed") {
                return output;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the client logs the failure");
    assert!(seen.contains("ConnectionRefused"), "{seen}");
    client.kill();
}
