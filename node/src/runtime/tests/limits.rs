//! Memory and CPU limits, enforced on running guests.

use std::time::Duration;

use super::*;

const MIB: u64 = 1 << 20;

/// A guest that grows its memory 1 MiB (16 pages) at a time, `steps` times
/// (forever when `steps` is negative), then exits 0.
fn grower(steps: i32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
          (func (export "_start") (local $left i32)
            (local.set $left (i32.const {steps}))
            (block $done (loop $grow
              (br_if $done (i32.eqz (local.get $left)))
              (br_if $done (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
              (local.set $left (i32.sub (local.get $left) (i32.const 1)))
              (br $grow)))))"#
    )
}

#[tokio::test]
async fn growing_memory_past_the_limit_is_oom_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, &grower(-1));
    let spec = InstanceSpec {
        memory_limit_bytes: Some(4 * MIB),
        ..InstanceSpec::default()
    };
    let status = run(&runtime, &program, spec).await;
    assert_eq!(status, ExitStatus::OomKilled);
    assert_eq!(status.exit_code(), 137);
}

#[tokio::test]
async fn memory_within_the_limit_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    // 64 KiB to start with, plus 3 MiB: under a 4 MiB limit.
    let program = load(&runtime, &grower(3));
    let spec = InstanceSpec {
        memory_limit_bytes: Some(4 * MIB),
        ..InstanceSpec::default()
    };
    assert_eq!(
        run(&runtime, &program, spec).await,
        ExitStatus::Exit { code: 0 }
    );
}

#[tokio::test]
async fn initial_memory_over_the_limit_is_oom_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    // 64 pages are 4 MiB.
    let program = load(
        &runtime,
        r#"(module (memory (export "memory") 64) (func (export "_start")))"#,
    );
    let spec = InstanceSpec {
        memory_limit_bytes: Some(MIB),
        ..InstanceSpec::default()
    };
    assert_eq!(run(&runtime, &program, spec).await, ExitStatus::OomKilled);
}

/// A guest that spins forever, writing one byte to stdout every 2^16
/// iterations: its output measures how much CPU it got.
const COUNTER: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) ".")
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 1))
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 0xffff))) (then
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
      (br $spin))))"#;

/// Starts COUNTER with a CPU limit; its log measures its progress.
async fn counter(runtime: &Runtime, dir: &Path, millicores: Option<u64>) -> (Instance, LogFile) {
    let program = load(runtime, COUNTER);
    let log = log(dir, &format!("counter-{millicores:?}.log"));
    let spec = InstanceSpec {
        stdout: Some(log.stdout()),
        cpu_limit_millicores: millicores,
        ..InstanceSpec::default()
    };
    let instance = runtime.start(&program, spec).await.expect("starts");
    (instance, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_limit_throttles_a_busy_guest() {
    // Both run at once, on a thread each, so that other load on the host
    // slows them alike.
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let (unlimited, unlimited_log) = counter(&runtime, dir.path(), None).await;
    let (limited, limited_log) = counter(&runtime, dir.path(), Some(100)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for instance in [&unlimited, &limited] {
        instance.kill();
        assert_eq!(
            wait(instance, Duration::from_secs(5)).await,
            ExitStatus::Killed
        );
    }
    let unlimited = logged(&unlimited_log).len();
    let limited = logged(&limited_log).len();
    assert!(
        unlimited > 0 && limited > 0,
        "both made progress: {unlimited}, {limited}"
    );
    // 100 millicores is a tenth of a core.
    let share = limited as f64 / unlimited as f64;
    assert!(
        share < 0.4,
        "limited {limited} vs unlimited {unlimited}: share {share:.3}"
    );
}

#[test]
fn a_cpu_limited_busy_guest_lets_another_instance_progress() {
    // On one thread: the limited guest sleeps off its debt, and the other
    // runs meanwhile.
    on_one_thread(Duration::from_secs(20), || async {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = runtime(dir.path());
        let program = load(&runtime, COUNTER);
        let limited = InstanceSpec {
            cpu_limit_millicores: Some(200),
            ..InstanceSpec::default()
        };
        let busy = runtime.start(&program, limited).await.expect("starts");
        let short = runtime
            .start(&load(&runtime, &hello("ok\n", 0)), InstanceSpec::default())
            .await
            .expect("starts");
        assert_eq!(
            wait(&short, Duration::from_secs(5)).await,
            ExitStatus::Exit { code: 0 }
        );
        assert_eq!(busy.try_status(), None);
        busy.kill();
        assert_eq!(
            wait(&busy, Duration::from_secs(5)).await,
            ExitStatus::Killed
        );
    });
}
