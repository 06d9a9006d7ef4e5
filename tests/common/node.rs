//! `wasmpod node` child processes joined to a test cluster, and the example
//! modules they run. Each node has its own name and data dir under the
//! cluster's directory; its log goes to `<name>.log` there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Cluster;
use super::process::ServerProcess;

/// How long a node may take to register and report Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Flags of a test node beyond the required ones. The defaults keep tests
/// fast: a short crash-loop back-off and volume resync.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub backoff_base: &'static str,
    pub backoff_cap: &'static str,
    pub volume_resync: &'static str,
    /// The node's InternalIP, where it also serves logs, its tunnel and
    /// NodePorts: nodes of one test need distinct loopback addresses
    /// (127.0.0.N) to serve the same NodePort.
    pub node_ip: &'static str,
    pub extra: Vec<String>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            backoff_base: "1s",
            backoff_cap: "8s",
            volume_resync: "1s",
            node_ip: "127.0.0.1",
            extra: Vec::new(),
        }
    }
}

/// A `wasmpod node` process. It is stopped when the value is dropped.
pub struct NodeProcess {
    pub name: String,
    data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    process: Option<ServerProcess>,
}

impl Cluster {
    /// Starts a node named `name` with the test defaults and waits until
    /// its Node object is Ready.
    pub fn start_node(&self, name: &str) -> NodeProcess {
        self.start_node_with(name, NodeOptions::default())
    }

    pub fn start_node_with(&self, name: &str, options: NodeOptions) -> NodeProcess {
        let dir = self.root.path().join("nodes").join(name);
        std::fs::create_dir_all(&dir).expect("creating the node's dir");
        let data_dir = dir.join("data");
        let mut args = vec![
            "node".to_string(),
            "--server".into(),
            self.base_url(),
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--backoff-base".into(),
            options.backoff_base.into(),
            "--backoff-cap".into(),
            options.backoff_cap.into(),
            "--volume-resync".into(),
            options.volume_resync.into(),
            "--pooling".into(),
            "off".into(),
            "--node-ip".into(),
            options.node_ip.into(),
            "--listen".into(),
            format!("{}:0", options.node_ip),
        ];
        args.extend(options.extra);
        let mut node = NodeProcess {
            name: name.to_string(),
            data_dir,
            log: dir.join("node.log"),
            args,
            process: None,
        };
        node.launch(self);
        node
    }
}

impl NodeProcess {
    fn launch(&mut self, cluster: &Cluster) {
        let process = ServerProcess::spawn(
            Path::new(env!("CARGO_BIN_EXE_wasmpod")),
            &self.args,
            &self.log,
            None,
        );
        self.process = Some(process);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.process.as_mut().is_some_and(|p| p.exited()) {
                panic!(
                    "wasmpod node {} exited; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            let node = cluster.get(&format!("/api/v1/nodes/{}", self.name));
            if node.status == 200 && is_ready(&node.body) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "node {} was not Ready after {READY_TIMEOUT:?}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the node with SIGKILL, as a crash would; its pods' modules die
    /// with it.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill9();
        }
    }

    /// Stops the node with SIGTERM (SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) {
        if let Some(mut p) = self.process.take() {
            p.stop(grace);
        }
    }

    /// Starts the node again with the same name, data dir and flags.
    pub fn restart(&mut self, cluster: &Cluster) {
        self.stop(Duration::from_secs(10));
        self.launch(cluster);
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the node wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- wasmpod node {} log (last 40 lines) ---\n{}\n---",
                self.name,
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        self.stop(Duration::from_secs(5));
    }
}

fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The `file://` image of a built example module (scripts/build-examples.sh):
/// `target` is `wasip1` or `wasip2`.
pub fn example_image(target: &str, name: &str) -> String {
    let path = example_path(target, name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-examples.sh",
        path.display()
    );
    format!("file://{}", path.display())
}

pub fn example_path(target: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wasm-examples/out")
        .join(target)
        .join(format!("{name}.wasm"))
}

/// An example manifest with its image placeholder filled in.
pub fn example_manifest(file: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("wasm-examples");
    let text = std::fs::read_to_string(root.join("manifests").join(file))
        .unwrap_or_else(|e| panic!("reading example manifest {file}: {e}"));
    text.replace("WASM_EXAMPLES_OUT", &root.join("out").display().to_string())
}

/// One node joined to [`Cluster::shared`], for tests that work in their own
/// namespace. It is stopped when the test process exits.
pub fn shared_node() -> &'static NodeProcess {
    static SHARED: std::sync::OnceLock<NodeProcess> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| Cluster::shared().start_node("shared-node"))
}

impl Cluster {
    /// Polls the pod until `check` accepts its JSON; panics with the last
    /// state seen after `timeout`.
    #[track_caller]
    pub fn wait_pod(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let resp = self.get(&format!("/api/v1/namespaces/{ns}/pods/{name}"));
            if resp.status == 200 {
                if check(&resp.body) {
                    return resp.body;
                }
                last = resp.body;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "pod {ns}/{name}: {what} not seen within {timeout:?}; last status:\n{}",
            serde_json::to_string_pretty(&last["status"]).unwrap_or_default()
        );
    }
}

/// The status of the pod's container `name` (containers or init containers).
pub fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|field| pod["status"][field].as_array())
        .flatten()
        .find(|s| s["name"] == name)
        .unwrap_or(&Value::Null)
}
