//! The server process itself: the kubeconfig it writes, state kept across
//! a graceful restart, one server per data dir, and a prompt exit on
//! SIGTERM even while clients hold watches open.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, unique};
use serde_json::{Value, json};

#[test]
fn the_kubeconfig_points_kubectl_at_the_server() {
    let c = Cluster::start();
    let text = std::fs::read_to_string(c.kubeconfig()).expect("reading the kubeconfig");
    let config: Value = serde_yaml::from_str(&text).expect("the kubeconfig is YAML");
    assert_eq!(config["current-context"], "wasmpod", "{text}");
    let cluster = config["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "wasmpod"))
        .unwrap_or_else(|| panic!("no cluster named wasmpod: {text}"));
    assert_eq!(
        cluster["cluster"]["server"],
        c.base_url().as_str(),
        "{text}"
    );
    let context = config["contexts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "wasmpod"))
        .unwrap_or_else(|| panic!("no context named wasmpod: {text}"));
    assert_eq!(context["context"]["cluster"], "wasmpod");
    assert_eq!(context["context"]["namespace"], "default");

    let printed = Command::new(env!("CARGO_BIN_EXE_wasmpod"))
        .args(["kubeconfig", "--data-dir"])
        .arg(c.data_dir())
        .output()
        .expect("running wasmpod kubeconfig");
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        text,
        "`wasmpod kubeconfig` prints the same file"
    );
    assert_eq!(
        c.kubectl_ok(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.contexts[0].context.namespace}"
        ]),
        "default"
    );
}

#[test]
fn objects_survive_a_graceful_restart() {
    let mut c = Cluster::start();
    let ns = unique("restart");
    c.create_namespace(&ns);
    let before = c.create_configmap(&ns, "kept", json!({"k": "v"}));
    c.restart();
    let path = format!("/api/v1/namespaces/{ns}/configmaps/kept");
    let after = c.get(&path);
    assert_eq!(
        after.expect(200),
        &before,
        "the object is unchanged after a restart"
    );
    for system in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        c.get(&format!("/api/v1/namespaces/{system}")).expect(200);
    }
    let svc = c.kubectl_ok(&[
        "get",
        "service",
        "kubernetes",
        "-n",
        "default",
        "-o",
        "name",
    ]);
    assert_eq!(
        svc.trim(),
        "service/kubernetes",
        "kubectl works with the rewritten kubeconfig"
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let c = Cluster::start();
    let mut second = Command::new(env!("CARGO_BIN_EXE_wasmpod"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(c.data_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting a second server");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(status)) = second.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second server on the same data dir kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = second.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(!status.success(), "the second server exited with success");
    assert!(
        stderr.contains("in use"),
        "the refusal says the data dir is in use: {stderr}"
    );
    c.get("/readyz").expect(200);
}

#[test]
fn sigterm_stops_the_server_while_a_watch_is_open() {
    let mut c = Cluster::start();
    let mut watch = c
        .watch("/api/v1/namespaces/default/configmaps?watch=true")
        .unwrap_or_else(|resp| panic!("opening a watch: {}", resp.text));
    c.create_configmap("default", "seen", json!({}));
    watch.wait_for(Duration::from_secs(10), "ADDED seen", |ev| {
        ev["object"]["metadata"]["name"] == "seen"
    });
    let _kubectl_watch = c.kubectl_background(&["get", "pods", "-A", "-w"]);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let graceful = c.terminate(Duration::from_secs(5));
    assert!(
        graceful,
        "the server did not exit within 5 s of SIGTERM while watches were open (it was killed); log tail:\n{}",
        c.server_log_tail(5)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
