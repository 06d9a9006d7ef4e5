//! Harness for the end-to-end tests: runs the real `wasmpod server` binary on
//! a free loopback port with its own data dir, and drives it through the
//! installed kubectl and through raw HTTP. Every cluster has its own
//! directory and port, so tests run in parallel.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod datastore;
pub mod fake_node;
pub mod http;
pub mod kubectl;
pub mod manifests;
pub mod node;
pub mod postgres;
pub mod process;
pub mod table;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use process::ServerProcess;

/// How long a server may take to answer `/readyz` (a debug build opening
/// Postgres and running migrations on a loaded CI machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How a cluster's server is started.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `--datastore`; SQLite in the data dir when unset.
    pub datastore: Option<String>,
    /// `--watch-window`.
    pub watch_window: Option<usize>,
    /// More `wasmpod server` flags.
    pub extra_args: Vec<String>,
}

impl ClusterOptions {
    /// For clusters with fake Node objects that never renew a Lease: the
    /// node lifecycle controller leaves them alone for an hour instead of
    /// marking them Unknown and evicting their pods after seconds.
    pub fn with_silent_nodes() -> Self {
        Self {
            extra_args: vec!["--node-monitor-grace-period".into(), "1h".into()],
            ..Self::default()
        }
    }
}

/// A `wasmpod server` child process with its own data dir and port. The
/// server is stopped when the value is dropped.
pub struct Cluster {
    root: tempfile::TempDir,
    options: ClusterOptions,
    server: Option<ServerProcess>,
    addr: SocketAddr,
    client: reqwest::blocking::Client,
    /// Removed by the server's wrapper when the test process exits (for
    /// clusters that live in a `static` and are never dropped).
    cleanup_on_exit: bool,
}

impl Cluster {
    /// A server on SQLite.
    pub fn start() -> Cluster {
        Self::start_with(None)
    }

    /// A server on `datastore` (`postgres://...`), or on SQLite for `None`.
    pub fn start_with(datastore: Option<String>) -> Cluster {
        Self::start_with_options(ClusterOptions {
            datastore,
            ..ClusterOptions::default()
        })
    }

    pub fn start_with_options(options: ClusterOptions) -> Cluster {
        Self::launch(options, false)
    }

    /// One SQLite cluster per test binary, for tests that do not interfere
    /// (each works in its own namespace). It is stopped and its directory
    /// removed when the test process exits.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        // Several test files put fake nodes in their shared cluster.
        SHARED.get_or_init(|| Self::launch(ClusterOptions::with_silent_nodes(), true))
    }

    fn launch(options: ClusterOptions, cleanup_on_exit: bool) -> Cluster {
        let root = tempfile::Builder::new()
            .prefix("wasmpod-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        let client = reqwest::blocking::Client::builder()
            .timeout(None::<Duration>)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("building an HTTP client");
        let mut cluster = Cluster {
            root,
            options,
            server: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            client,
            cleanup_on_exit,
        };
        std::fs::create_dir_all(cluster.kube_cache_dir()).expect("creating kubectl's cache dir");
        cluster.boot();
        cluster
    }

    /// Starts the server on a fresh port, retrying when another process
    /// took the port between our probe and the server's bind.
    fn boot(&mut self) {
        const ATTEMPTS: usize = 5;
        for attempt in 1..=ATTEMPTS {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log_start = self.log_len();
            let mut args = vec![
                "server".to_string(),
                "--data-dir".to_string(),
                self.data_dir().display().to_string(),
                "--listen".to_string(),
                addr.to_string(),
            ];
            if let Some(ds) = &self.options.datastore {
                args.extend(["--datastore".to_string(), ds.clone()]);
            }
            if let Some(window) = self.options.watch_window {
                args.extend(["--watch-window".to_string(), window.to_string()]);
            }
            args.extend(self.options.extra_args.iter().cloned());
            let cleanup = self.cleanup_on_exit.then(|| self.root.path().to_path_buf());
            let mut server = ServerProcess::spawn(
                Path::new(env!("CARGO_BIN_EXE_wasmpod")),
                &args,
                &self.log_path(),
                cleanup.as_deref(),
            );
            self.addr = addr;
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if server.exited() {
                    let log = self.log_since(log_start);
                    if attempt < ATTEMPTS && log.contains("Address already in use") {
                        break;
                    }
                    panic!("wasmpod server exited before it was ready; its log:\n{log}");
                }
                if self.ready() {
                    assert!(
                        self.kubeconfig().exists(),
                        "the server is ready but wrote no {}",
                        self.kubeconfig().display()
                    );
                    self.server = Some(server);
                    return;
                }
                if Instant::now() > deadline {
                    server.kill9();
                    panic!(
                        "wasmpod server was not ready after {READY_TIMEOUT:?}; its log:\n{}",
                        self.log_since(log_start)
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("wasmpod server could not bind a free port in {ATTEMPTS} attempts");
    }

    fn ready(&self) -> bool {
        self.client
            .get(self.url("/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .is_ok_and(|r| r.status().is_success())
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill9();
        }
    }

    /// Stops the server with SIGTERM, and SIGKILL after 10 s.
    pub fn stop(&mut self) {
        self.terminate(Duration::from_secs(10));
    }

    /// Sends SIGTERM; true if the server exited within `grace` (it is
    /// killed otherwise). True as well when no server was running.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        match self.server.take() {
            Some(mut server) => server.stop(grace),
            None => true,
        }
    }

    /// Starts the server again on the same data dir and datastore (on a
    /// new port; the kubeconfig is rewritten).
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.pid)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("kubeconfig.yaml")
    }

    /// A scratch directory for manifests and scripts of a test.
    pub fn scratch_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join("scratch").join(name);
        std::fs::create_dir_all(&dir).expect("creating a scratch dir");
        dir
    }

    fn kube_cache_dir(&self) -> PathBuf {
        self.root.path().join("kube-cache")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let text = std::fs::read(self.log_path()).unwrap_or_default();
        let start = usize::try_from(offset).unwrap_or(0).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// Everything the server (and its restarts) wrote to stderr.
    pub fn server_log(&self) -> String {
        self.log_since(0)
    }

    /// The last `lines` lines of the server log.
    pub fn server_log_tail(&self, lines: usize) -> String {
        let log = self.server_log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- wasmpod server log (last 40 lines) ---\n{}\n---",
                self.server_log_tail(40)
            );
        }
        // The state is thrown away, so a slow graceful shutdown is not waited for.
        self.terminate(Duration::from_secs(2));
    }
}

/// A port that was free a moment ago. The server may lose it to another
/// process before binding; `boot` retries then.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a probe socket");
    listener.local_addr().expect("probe socket address").port()
}

/// A namespace of its own on the shared cluster.
#[track_caller]
pub fn namespace(prefix: &str) -> (&'static Cluster, String) {
    let cluster = Cluster::shared();
    let ns = unique(prefix);
    cluster.create_namespace(&ns);
    (cluster, ns)
}

/// A name unique within this test process, for namespaces and objects.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Polls `check` every 50 ms until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
