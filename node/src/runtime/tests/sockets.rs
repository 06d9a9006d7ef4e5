//! `wasi:sockets` over pod networks, with the echo example components:
//! sidecars on a pod's loopback, two pods on one port, refusals and failed
//! lookups as a guest sees them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::component::example;
use super::*;
use crate::network::{Fabric, FabricConfig, PodNetwork};

const POD_A: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 2);
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 3);

/// The echo server and client, if built.
fn echo_programs(runtime: &Runtime) -> Option<(Program, Program)> {
    let server = example("echo-server")?;
    let client = example("echo-client")?;
    Some((
        runtime.load(&server).expect("echo server loads"),
        runtime.load(&client).expect("echo client loads"),
    ))
}

/// Starts `program` in `network` with `env`, logging to `dir/name.log`.
async fn start_in(
    runtime: &Runtime,
    program: &Program,
    network: Option<&PodNetwork>,
    env: &[(&str, &str)],
    dir: &Path,
    name: &str,
) -> (Instance, LogFile) {
    let log = log(dir, &format!("{name}.log"));
    let spec = InstanceSpec {
        args: vec![name.to_owned()],
        env: env
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        stdout: Some(log.stdout()),
        stderr: Some(log.stderr()),
        network: network.cloned(),
        ..InstanceSpec::default()
    };
    let instance = runtime.start(program, spec).await.expect("instance starts");
    (instance, log)
}

/// Waits until the log shows `text`, failing with the log when it does not
/// within ten seconds.
async fn wait_for_log(log: &LogFile, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let output = logged(log);
        if output.contains(text) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {text:?} in the log:\n{output}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `line` to `dst` from the node, as a probe would, and reads the
/// echo.
async fn echo_from_node(fabric: &Fabric, dst: SocketAddr, line: &str) -> String {
    let source = SocketAddr::from(([10, 42, 0, 1], 40000));
    let stream = fabric
        .connect(source, dst, false)
        .await
        .expect("the node reaches the pod");
    let (read, mut write) = tokio::io::split(stream);
    write
        .write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write");
    let mut reply = String::new();
    BufReader::new(read)
        .read_line(&mut reply)
        .await
        .expect("read");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_reach_each_other_on_the_pods_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let Some((server, client)) = echo_programs(&runtime) else {
        return;
    };
    let fabric = Fabric::new(FabricConfig::default());
    let pod = fabric.attach(POD_A, "default", false);
    // The client starts first: it retries until the server listens.
    let (_client, client_log) = start_in(
        &runtime,
        &client,
        Some(&pod),
        &[("INTERVAL_MS", "50")],
        dir.path(),
        "client",
    )
    .await;
    let (_server, server_log) =
        start_in(&runtime, &server, Some(&pod), &[], dir.path(), "server").await;
    wait_for_log(&server_log, "echo server listening on 0.0.0.0:7000").await;
    wait_for_log(&client_log, "reply: ping 3\n").await;
    wait_for_log(&server_log, "connection from 127.0.0.1:").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_listen_on_one_port_and_reach_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let Some((server, client)) = echo_programs(&runtime) else {
        return;
    };
    let fabric = Fabric::new(FabricConfig::default());
    let pod_a = fabric.attach(POD_A, "default", false);
    let pod_b = fabric.attach(POD_B, "default", false);
    let (_server_a, log_a) =
        start_in(&runtime, &server, Some(&pod_a), &[], dir.path(), "server-a").await;
    let (_server_b, log_b) =
        start_in(&runtime, &server, Some(&pod_b), &[], dir.path(), "server-b").await;
    wait_for_log(&log_a, "listening on 0.0.0.0:7000").await;
    wait_for_log(&log_b, "listening on 0.0.0.0:7000").await;

    // Pod A's client talks to pod B's server by pod IP.
    let target = format!("{POD_B}:7000");
    let (_client, client_log) = start_in(
        &runtime,
        &client,
        Some(&pod_a),
        &[("TARGET", &target), ("INTERVAL_MS", "50")],
        dir.path(),
        "client",
    )
    .await;
    wait_for_log(&client_log, "reply: ping 2\n").await;
    wait_for_log(&log_b, &format!("connection from {POD_A}:")).await;

    // Pod A's server still has its own port 7000, which the node reaches.
    let reply = echo_from_node(&fabric, SocketAddr::from((POD_A, 7000)), "probe").await;
    assert_eq!(reply, "probe\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_closed_port_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let Some((_, client)) = echo_programs(&runtime) else {
        return;
    };
    let fabric = Fabric::new(FabricConfig::default());
    let pod = fabric.attach(POD_A, "default", false);
    let (_client, log) = start_in(
        &runtime,
        &client,
        Some(&pod),
        &[("TARGET", "127.0.0.1:7001"), ("INTERVAL_MS", "50")],
        dir.path(),
        "client",
    )
    .await;
    wait_for_log(&log, "cannot connect to 127.0.0.1:7001: Connection refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_name_does_not_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let Some((_, client)) = echo_programs(&runtime) else {
        return;
    };
    let fabric = Fabric::new(FabricConfig::default());
    let pod = fabric.attach(POD_A, "default", false);
    let (_client, log) = start_in(
        &runtime,
        &client,
        Some(&pod),
        &[
            ("TARGET", "nosuch.default.svc.cluster.local:7000"),
            ("INTERVAL_MS", "50"),
        ],
        dir.path(),
        "client",
    )
    .await;
    wait_for_log(
        &log,
        "cannot connect to nosuch.default.svc.cluster.local:7000: ",
    )
    .await;
    assert!(!logged(&log).contains("refused"), "{}", logged(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_pod_network_sockets_are_denied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let Some((server, _)) = echo_programs(&runtime) else {
        return;
    };
    let (instance, log) = start_in(&runtime, &server, None, &[], dir.path(), "server").await;
    assert_eq!(
        wait(&instance, Duration::from_secs(10)).await,
        ExitStatus::Exit { code: 1 }
    );
    let output = logged(&log);
    assert!(output.contains("cannot listen on 0.0.0.0:7000"), "{output}");
    assert!(output.to_lowercase().contains("denied"), "{output}");
}
