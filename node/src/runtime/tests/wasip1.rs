//! Preview 1 modules: output, exit codes, traps, argv and env, killing.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test]
async fn module_output_reaches_the_log_and_exit_code_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, &hello("hello from wasm\n", 7));
    let log = log(dir.path(), "hello.log");
    let spec = InstanceSpec {
        stdout: Some(log.stdout()),
        ..InstanceSpec::default()
    };
    assert_eq!(
        run(&runtime, &program, spec).await,
        ExitStatus::Exit { code: 7 }
    );
    assert_eq!(logged(&log), "hello from wasm\n");
}

#[tokio::test]
async fn returning_from_start_is_exit_code_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(
        &runtime,
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    let status = run(&runtime, &program, InstanceSpec::default()).await;
    assert_eq!(status, ExitStatus::Exit { code: 0 });
    assert_eq!(status.exit_code(), 0);
}

#[tokio::test]
async fn trap_is_reported_with_its_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(
        &runtime,
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    match run(&runtime, &program, InstanceSpec::default()).await {
        ExitStatus::Trap { message } => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn argv_and_env_reach_the_guest() {
    // The guest prints its argv buffer and environment buffer (each entry
    // NUL-terminated) to stdout.
    let module = format!(
        r#"(module {WASI_IMPORTS}
          (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func $print (param $ptr i32) (param $len i32)
            (i32.store (i32.const 0) (local.get $ptr))
            (i32.store (i32.const 4) (local.get $len))
            (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
          (func (export "_start")
            (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
            (drop (call $args_get (i32.const 1024) (i32.const 4096)))
            (call $print (i32.const 4096) (i32.load (i32.const 20)))
            (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
            (drop (call $environ_get (i32.const 2048) (i32.const 8192)))
            (call $print (i32.const 8192) (i32.load (i32.const 20)))))"#
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, &module);
    let log = log(dir.path(), "args.log");
    let spec = InstanceSpec {
        args: vec!["app".into(), "--flag".into()],
        env: vec![
            ("GREETING".into(), "hi".into()),
            ("EMPTY".into(), String::new()),
        ],
        stdout: Some(log.stdout()),
        ..InstanceSpec::default()
    };
    assert_eq!(
        run(&runtime, &program, spec).await,
        ExitStatus::Exit { code: 0 }
    );
    assert_eq!(logged(&log), "app\0--flag\0GREETING=hi\0EMPTY=\0");
}

/// A guest that never calls the host again.
const BUSY_LOOP: &str = r#"(module (memory (export "memory") 1)
  (func (export "_start") (loop $spin (br $spin))))"#;

#[tokio::test]
async fn kill_ends_a_busy_loop_promptly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, BUSY_LOOP);
    let instance = runtime
        .start(&program, InstanceSpec::default())
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(instance.try_status(), None, "a busy loop runs until killed");
    let killed_at = Instant::now();
    instance.kill();
    assert_eq!(
        wait(&instance, Duration::from_secs(5)).await,
        ExitStatus::Killed
    );
    let took = killed_at.elapsed();
    assert!(took < Duration::from_millis(500), "kill took {took:?}");
    // Waiting again gives the same answer.
    assert_eq!(instance.wait().await, ExitStatus::Killed);
}

#[tokio::test]
async fn kill_ends_a_guest_sleeping_in_the_host() {
    // poll_oneoff on a one-hour monotonic clock subscription.
    let module = format!(
        r#"(module {WASI_IMPORTS}
          (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const 3600000000000))
            (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
            (call $proc_exit (i32.const 3))))"#
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, &module);
    let instance = runtime
        .start(&program, InstanceSpec::default())
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(instance.try_status(), None, "the guest sleeps");
    instance.kill();
    assert_eq!(
        wait(&instance, Duration::from_secs(5)).await,
        ExitStatus::Killed
    );
}

#[test]
fn a_busy_guest_does_not_starve_others_on_one_thread() {
    // On one thread the short guest can only run if the busy one yields.
    on_one_thread(Duration::from_secs(20), || async {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = runtime(dir.path());
        let busy = runtime
            .start(&load(&runtime, BUSY_LOOP), InstanceSpec::default())
            .await
            .expect("starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let program = load(&runtime, &hello("still here\n", 0));
        let short = runtime
            .start(&program, InstanceSpec::default())
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

#[tokio::test]
async fn dropping_an_instance_kills_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, BUSY_LOOP);
    let instance = runtime
        .start(&program, InstanceSpec::default())
        .await
        .expect("starts");
    let watcher = instance.status.clone();
    drop(instance);
    let mut watcher = watcher;
    let ended = tokio::time::timeout(Duration::from_secs(5), watcher.wait_for(Option::is_some))
        .await
        .expect("ended in time")
        .map(|status| status.clone());
    assert_eq!(ended.ok().flatten(), Some(ExitStatus::Killed));
}

#[tokio::test]
async fn an_ended_instance_no_longer_writes_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let program = load(&runtime, &hello("bye\n", 0));
    let registry = crate::runtime::LogRegistry::new();
    let path = dir.path().join("0.log");
    let log = LogFile::create_registered(&path, 1 << 20, &registry).expect("log file");
    let spec = InstanceSpec {
        stdout: Some(log.stdout()),
        stderr: Some(log.stderr()),
        ..InstanceSpec::default()
    };
    let instance = runtime.start(&program, spec).await.expect("starts");
    assert!(registry.is_open(&path), "the instance writes its log");
    assert_eq!(
        wait(&instance, Duration::from_secs(30)).await,
        ExitStatus::Exit { code: 0 }
    );
    drop(log);
    // The guest's streams go with its store, which its task drops when it
    // ends, while the instance handle itself is still held.
    let deadline = Instant::now() + Duration::from_secs(5);
    while registry.is_open(&path) {
        assert!(Instant::now() < deadline, "the log is still registered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        logged(&LogFile::create(&path, 1 << 20).expect("reopens")),
        "bye\n"
    );
    drop(instance);
}
