//! The agent's [`ContainerRuntime`] on the node's wasmtime runtime: fetches
//! a container's module, verifies a pinned digest, loads it (compiled code
//! is cached by the runtime) and starts it with the container's argv, env,
//! mounts, limits and log file. Only this file knows both sides.

use std::sync::Arc;

use super::container_runtime::{
    ContainerHandle, ContainerRuntime, ContainerSpec, ExitStatus, StartError,
};
use super::log_server::LogWriters;
use super::modules::ModuleFetcher;
use crate::runtime::{self, Instance, InstanceSpec, LogFile, LogRegistry, Runtime, RuntimeError};

/// Kubernetes' default `containerLogMaxSize`: a log file is rotated at this size.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 << 20;

/// Containers as wasmtime instances.
#[derive(Debug, Clone)]
pub struct WasmRuntime {
    runtime: Runtime,
    log_max_bytes: u64,
    /// The log files of the instances that still run.
    logs: Arc<LogRegistry>,
    modules: ModuleFetcher,
}

impl WasmRuntime {
    /// Runs `file://` modules only; see [`WasmRuntime::with_modules`].
    pub fn new(runtime: Runtime) -> Self {
        Self {
            runtime,
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            logs: LogRegistry::new(),
            modules: ModuleFetcher::files_only(),
        }
    }

    /// Gets modules through `modules`: its cache, the module store and URLs.
    pub fn with_modules(mut self, modules: ModuleFetcher) -> Self {
        self.modules = modules;
        self
    }

    /// Rotates each container's log file at `bytes`.
    pub fn with_log_max_bytes(mut self, bytes: u64) -> Self {
        self.log_max_bytes = bytes;
        self
    }
}

/// A container running as a wasmtime instance.
#[derive(Debug)]
pub struct WasmContainer {
    instance: Instance,
    image_id: String,
}

impl ContainerRuntime for WasmRuntime {
    type Handle = WasmContainer;

    async fn start(&self, spec: ContainerSpec) -> Result<WasmContainer, StartError> {
        let bytes = self
            .modules
            .fetch(&spec.image, spec.image_pull_policy)
            .await?
            .bytes;
        let runtime = self.runtime.clone();
        let program = tokio::task::spawn_blocking(move || runtime.load(&bytes))
            .await
            .map_err(|e| StartError::CreateContainer(format!("loading the module: {e}")))?
            .map_err(|e| load_error(&spec.image, &e))?;
        let log = LogFile::create_registered(&spec.log_path, self.log_max_bytes, &self.logs)
            .map_err(|e| {
                StartError::CreateContainer(format!("opening {}: {e}", spec.log_path.display()))
            })?;
        let instance_spec = InstanceSpec {
            args: spec.argv,
            env: spec.env,
            mounts: spec
                .mounts
                .into_iter()
                .map(|m| runtime::Mount {
                    host_path: m.host_path,
                    guest_path: m.guest_path,
                    read_only: m.read_only,
                })
                .collect(),
            working_dir: spec.working_dir,
            stdout: Some(log.stdout()),
            stderr: Some(log.stderr()),
            memory_limit_bytes: spec.memory_limit_bytes,
            cpu_limit_millicores: spec.cpu_limit_millis,
            network: spec.network,
            ports: spec.ports,
        };
        let instance = self
            .runtime
            .start(&program, instance_spec)
            .await
            .map_err(|e| match e {
                RuntimeError::Mount { .. } => StartError::CreateContainerConfig(chain(&e)),
                other => StartError::CreateContainer(chain(&other)),
            })?;
        Ok(WasmContainer {
            image_id: program.digest().to_string(),
            instance,
        })
    }

    fn log_writers(&self) -> Arc<dyn LogWriters> {
        Arc::clone(&self.logs) as Arc<dyn LogWriters>
    }
}

impl LogWriters for LogRegistry {
    fn is_writing(&self, path: &std::path::Path) -> bool {
        self.is_open(path)
    }
}

impl ContainerHandle for WasmContainer {
    async fn wait(&self) -> ExitStatus {
        match self.instance.wait().await {
            runtime::ExitStatus::Exit { code } => ExitStatus::Exited { code },
            runtime::ExitStatus::Trap { message } => ExitStatus::Trapped { message },
            runtime::ExitStatus::OomKilled => ExitStatus::OomKilled,
            runtime::ExitStatus::Killed => ExitStatus::Killed,
        }
    }

    fn kill(&self) {
        self.instance.kill();
    }

    fn image_id(&self) -> String {
        self.image_id.clone()
    }
}

fn load_error(image: &str, e: &RuntimeError) -> StartError {
    match e {
        RuntimeError::InvalidImage { .. }
        | RuntimeError::Compile { .. }
        | RuntimeError::Link { .. }
        | RuntimeError::NotACommand { .. } => {
            StartError::InvalidImage(format!("{image}: {}", chain(e)))
        }
        other => StartError::CreateContainer(chain(other)),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    super::error_chain(e)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::agent::container_runtime::{PodRef, PullPolicy};
    use crate::runtime::{PoolingChoice, RuntimeConfig};

    const EXIT_3: &str = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit (i32.const 3))))"#;
    const SPIN: &str = r#"(module
        (memory (export "memory") 1)
        (func (export "_start") (loop $l (br $l))))"#;

    struct Setup {
        dir: tempfile::TempDir,
        runtime: WasmRuntime,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = RuntimeConfig {
            pooling: PoolingChoice::Off,
            ..RuntimeConfig::new(dir.path().join("cache"))
        };
        let runtime = WasmRuntime::new(Runtime::new(config).expect("a runtime"));
        Setup { dir, runtime }
    }

    impl Setup {
        fn module(&self, name: &str, wat_text: &str) -> PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, wat::parse_str(wat_text).expect("valid wat")).expect("writes");
            path
        }

        fn spec(&self, image: String) -> ContainerSpec {
            ContainerSpec {
                pod: PodRef {
                    namespace: "default".into(),
                    name: "p".into(),
                    uid: "u".into(),
                },
                name: "c".into(),
                attempt: 0,
                image,
                image_pull_policy: PullPolicy::IfNotPresent,
                argv: vec!["c".into()],
                env: Vec::new(),
                mounts: Vec::new(),
                working_dir: None,
                memory_limit_bytes: None,
                cpu_limit_millis: None,
                log_path: self.dir.path().join("logs/0.log"),
                ports: Vec::new(),
                network: None,
            }
        }
    }

    #[tokio::test]
    async fn a_file_module_runs_and_reports_its_exit_code_and_digest() {
        let s = setup();
        std::fs::create_dir_all(s.dir.path().join("logs")).expect("a log dir");
        let path = s.module("exit3.wasm", EXIT_3);
        let container = s
            .runtime
            .start(s.spec(format!("file://{}", path.display())))
            .await
            .expect("starts");
        assert_eq!(container.wait().await, ExitStatus::Exited { code: 3 });
        assert!(container.image_id().starts_with("sha256:"));
        let pinned = format!("file://{}@{}", path.display(), container.image_id());
        let again = s
            .runtime
            .start(s.spec(pinned))
            .await
            .expect("a matching digest");
        assert_eq!(again.wait().await, ExitStatus::Exited { code: 3 });
    }

    #[tokio::test]
    async fn a_busy_module_is_killed() {
        let s = setup();
        std::fs::create_dir_all(s.dir.path().join("logs")).expect("a log dir");
        let path = s.module("spin.wasm", SPIN);
        let container = s
            .runtime
            .start(s.spec(format!("file://{}", path.display())))
            .await
            .expect("starts");
        tokio::time::sleep(Duration::from_millis(50)).await;
        container.kill();
        let status = tokio::time::timeout(Duration::from_secs(10), container.wait())
            .await
            .expect("ends after the kill");
        assert_eq!(status, ExitStatus::Killed);
    }

    #[tokio::test]
    async fn bad_modules_fail_with_the_kubernetes_reason() {
        let s = setup();
        let not_wasm = s.dir.path().join("text.wasm");
        std::fs::write(&not_wasm, b"hello").expect("writes");
        let path = s.module("exit3.wasm", EXIT_3);
        let cases = [
            (format!("file://{}", not_wasm.display()), "InvalidImage"),
            ("file:///no/such/module.wasm".to_string(), "ErrImagePull"),
            ("file://relative.wasm".to_string(), "InvalidImageName"),
            ("https://example.com/app.wasm".to_string(), "ErrImagePull"),
            (
                format!("file://{}@sha256:{}", path.display(), "0".repeat(64)),
                "ErrImagePull",
            ),
        ];
        for (image, reason) in cases {
            let err = s
                .runtime
                .start(s.spec(image.clone()))
                .await
                .expect_err("does not start");
            assert_eq!(err.reason(), reason, "{image}: {err}");
        }
        let mut never = s.spec("file:///no/such/module.wasm".into());
        never.image_pull_policy = PullPolicy::Never;
        let err = s.runtime.start(never).await.expect_err("does not start");
        assert_eq!(err.reason(), "ErrImageNeverPull");
    }
}
