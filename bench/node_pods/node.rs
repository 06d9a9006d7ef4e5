//! The `wasmpod node` child process under measurement: joined to a bench
//! server, with its own temp data dir, read through `/proc` for resident
//! memory, stopped with SIGTERM when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::server::ProcSample;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(20);

pub struct Node {
    child: Child,
    pub pid: u32,
    pub name: String,
    args: Vec<String>,
    log: PathBuf,
    /// Kept so the data dir lives as long as the node that uses it.
    _data_dir: tempfile::TempDir,
}

impl Node {
    /// Starts a node named `name` joined to the API at `server`.
    pub fn start(server: &str, name: &str) -> anyhow::Result<Node> {
        let data_dir = tempfile::Builder::new()
            .prefix("wasmpod-bench-node-")
            .tempdir()
            .context("creating the node's data dir")?;
        let args = vec![
            "node".to_string(),
            "--server".into(),
            server.into(),
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            data_dir.path().join("data").display().to_string(),
            "--node-ip".into(),
            "127.0.0.1".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        let log = data_dir.path().join("node.log");
        let child = spawn(&args, &log)?;
        Ok(Node {
            pid: child.id(),
            child,
            name: name.into(),
            args,
            log,
            _data_dir: data_dir,
        })
    }

    /// Waits until the Node object reports Ready.
    pub async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        server: &str,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{server}/api/v1/nodes/{}", self.name);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "the node exited ({status}); its log:\n{}",
                    self.log_tail(30)
                );
            }
            if let Ok(resp) = client.get(&url).send().await
                && let Ok(node) = resp.json::<serde_json::Value>().await
            {
                let ready = node["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                if ready {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the node was not Ready within {READY_TIMEOUT:?}; its log:\n{}",
            self.log_tail(30)
        )
    }

    /// Stops the node and starts it again on the same data dir.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.child = spawn(&self.args, &self.log)?;
        self.pid = self.child.id();
        Ok(())
    }

    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        ProcSample::read(&format!("/proc/{}", self.pid))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(args: &[String], log: &std::path::Path) -> anyhow::Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = file.try_clone().context("duplicating the log handle")?;
    Command::new(env!("CARGO_BIN_EXE_wasmpod"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .spawn()
        .context("starting wasmpod node")
}
