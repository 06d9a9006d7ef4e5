//! Loading programs: recognising them, rejecting bad ones, and the
//! compiled-code cache.

use std::fs;

use super::*;
use crate::runtime::{ProgramKind, RuntimeError, RuntimeStats};

#[test]
fn bytes_that_are_not_wasm_are_an_invalid_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    for bytes in [&b"#!/bin/sh\necho hi\n"[..], b"", b"(module)"] {
        let error = runtime.load(bytes).expect_err("not wasm");
        assert!(
            matches!(error, RuntimeError::InvalidImage { .. }),
            "{error:?}"
        );
    }
}

#[test]
fn a_broken_module_is_a_compile_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let mut bytes = wasm(&hello("x", 0));
    bytes.truncate(bytes.len() - 3);
    let error = runtime.load(&bytes).expect_err("truncated");
    assert!(matches!(error, RuntimeError::Compile { .. }), "{error:?}");
}

#[test]
fn a_module_without_start_is_not_a_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let error = runtime
        .load(&wasm(r#"(module (func (export "run")))"#))
        .expect_err("no _start");
    assert!(
        matches!(error, RuntimeError::NotACommand { .. }),
        "{error:?}"
    );
}

#[test]
fn unknown_imports_are_a_link_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let module = r#"(module (import "env" "launch_missiles" (func))
        (func (export "_start")))"#;
    let error = runtime.load(&wasm(module)).expect_err("unknown import");
    assert!(matches!(error, RuntimeError::Link { .. }), "{error:?}");
}

#[test]
fn second_load_in_a_process_reuses_the_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let bytes = wasm(&hello("x", 0));
    let first = runtime.load(&bytes).expect("loads");
    let second = runtime.load(&bytes).expect("loads");
    assert_eq!(first.digest(), second.digest());
    assert!(first.digest().starts_with("sha256:"));
    assert_eq!(first.kind(), ProgramKind::Module);
    let stats = runtime.stats();
    assert_eq!((stats.compiled, stats.memory_hits), (1, 1));
}

#[tokio::test]
async fn a_new_runtime_loads_compiled_code_from_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wasm(&hello("cached\n", 0));
    {
        let first = runtime(dir.path());
        first.load(&bytes).expect("compiles");
        assert_eq!(first.stats().compiled, 1);
    }
    let second = runtime(dir.path());
    let program = second.load(&bytes).expect("loads from cache");
    assert_eq!(
        second.stats(),
        RuntimeStats {
            compiled: 0,
            disk_cache_hits: 1,
            memory_hits: 0
        }
    );
    let log = log(dir.path(), "cached.log");
    let spec = InstanceSpec {
        stdout: Some(log.stdout()),
        ..InstanceSpec::default()
    };
    assert_eq!(
        run(&second, &program, spec).await,
        ExitStatus::Exit { code: 0 }
    );
    assert_eq!(logged(&log), "cached\n");
}

#[test]
fn a_damaged_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = wasm(&hello("x", 0));
    runtime(dir.path()).load(&bytes).expect("compiles");
    let entries: Vec<_> = fs::read_dir(dir.path().join("cache"))
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    fs::write(&entries[0], b"garbage").expect("damage");
    let runtime = runtime(dir.path());
    runtime.load(&bytes).expect("recompiles");
    assert_eq!(runtime.stats().compiled, 1);
    assert_eq!(runtime.stats().disk_cache_hits, 0);
    assert_ne!(fs::read(&entries[0]).expect("rewritten"), b"garbage");
}

#[test]
fn precompiled_code_is_never_accepted_as_an_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    runtime.load(&wasm(&hello("x", 0))).expect("compiles");
    let entry = fs::read_dir(dir.path().join("cache"))
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .next()
        .expect("one entry");
    let compiled = fs::read(entry).expect("compiled code");
    let error = runtime.load(&compiled).expect_err("precompiled");
    assert!(
        matches!(error, RuntimeError::InvalidImage { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn programs_run_with_and_without_the_pooling_allocator() {
    use crate::runtime::PoolingChoice;
    for (choice, pooled) in [(PoolingChoice::On, true), (PoolingChoice::Off, false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = RuntimeConfig {
            pooling: choice,
            pool_slots: 4,
            ..RuntimeConfig::new(dir.path().join("cache"))
        };
        let runtime = Runtime::new(config).expect("runtime");
        assert_eq!(runtime.uses_pooling(), pooled);
        let program = load(&runtime, &hello("x", 5));
        let status = run(&runtime, &program, InstanceSpec::default()).await;
        assert_eq!(status, ExitStatus::Exit { code: 5 }, "{choice:?}");
    }
}

#[test]
fn starts_of_one_module_at_once_compile_it_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = runtime(dir.path());
    let bytes = wasm(&hello("x", 0));
    let barrier = std::sync::Barrier::new(8);
    let programs: Vec<Program> = std::thread::scope(|scope| {
        let loads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    runtime.load(&bytes).expect("loads")
                })
            })
            .collect();
        loads
            .into_iter()
            .map(|l| l.join().expect("no panic"))
            .collect()
    });
    assert_eq!(programs.len(), 8);
    let stats = runtime.stats();
    assert_eq!(stats.compiled, 1, "{stats:?}");
    assert_eq!(stats.disk_cache_hits, 0, "{stats:?}");
    assert_eq!(stats.memory_hits, 7, "{stats:?}");
}
