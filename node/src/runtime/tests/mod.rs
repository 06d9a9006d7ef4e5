//! Tests of the runtime through its public API, with guests written in the
//! WebAssembly text format (and the example components, when built).

mod component;
mod files;
mod http;
mod limits;
mod loading;
mod sockets;
mod wasip1;

use std::path::Path;
use std::time::Duration;

use super::{ExitStatus, Instance, InstanceSpec, LogFile, Program, Runtime, RuntimeConfig};

/// A runtime with a small pool, so that many tests can each have one.
fn runtime(dir: &Path) -> Runtime {
    let config = RuntimeConfig {
        pool_slots: 8,
        ..RuntimeConfig::new(dir.join("cache"))
    };
    Runtime::new(config).expect("runtime")
}

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid WebAssembly text")
}

fn load(runtime: &Runtime, text: &str) -> Program {
    runtime.load(&wasm(text)).expect("program loads")
}

/// A log file in `dir` for stdout and stderr together.
fn log(dir: &Path, name: &str) -> LogFile {
    LogFile::create(dir.join(name), 1 << 20).expect("log file")
}

/// The guest's output in a log file: the text of its records, partial
/// records joined, each full line ending in a newline.
fn logged(log: &LogFile) -> String {
    let file = std::fs::read(log.path()).expect("log readable");
    let mut joiner = super::log_format::LineJoiner::default();
    let mut lines: Vec<_> = file
        .split(|&b| b == b'\n')
        .filter_map(super::log_format::parse)
        .filter_map(|record| joiner.push(&record))
        .collect();
    lines.extend(joiner.finish());
    let mut text = Vec::new();
    for line in lines {
        text.extend_from_slice(&line.text);
        if line.complete {
            text.push(b'\n');
        }
    }
    String::from_utf8(text).expect("utf-8 output")
}

/// Waits for an instance, failing the test if it does not end in time.
async fn wait(instance: &Instance, limit: Duration) -> ExitStatus {
    tokio::time::timeout(limit, instance.wait())
        .await
        .expect("instance ended in time")
}

/// Runs `test` on a single-threaded tokio runtime in a thread of its own,
/// and fails (instead of hanging) when it does not finish within `limit`: a
/// guest that never yields would block that thread, and any timer on it.
fn on_one_thread<F, T>(limit: Duration, test: F)
where
    F: FnOnce() -> T + Send + 'static,
    T: Future<Output = ()>,
{
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        tokio.block_on(test());
        let _ = done.send(());
    });
    finished
        .recv_timeout(limit)
        .expect("the test finished on its one thread");
}

async fn run(runtime: &Runtime, program: &Program, spec: InstanceSpec) -> ExitStatus {
    let instance = runtime.start(program, spec).await.expect("instance starts");
    wait(&instance, Duration::from_secs(30)).await
}

/// Imports of the WASI preview 1 functions the test guests use.
const WASI_IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"#;

/// A guest that writes `message` to stdout and exits with `code`.
fn hello(message: &str, code: i32) -> String {
    format!(
        r#"(module {WASI_IMPORTS}
          (memory (export "memory") 1)
          (data (i32.const 64) "{message}")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const {len}))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (call $proc_exit (i32.const {code}))))"#,
        len = message.len(),
        message = message.replace('\n', "\\n"),
    )
}

#[test]
fn runtime_handles_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    fn shared<T: Send + Sync>() {}
    shared::<Runtime>();
    shared::<Program>();
    shared::<Instance>();
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, &hello("x", 0));
    // The agent awaits starts and waits from its own spawned tasks.
    send(&runtime.start(&program, InstanceSpec::default()));
}
