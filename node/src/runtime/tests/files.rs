//! Mounts: what a guest can and cannot reach on the node's filesystem.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::runtime::Mount;

/// `path_open` lookup flag: follow a final symbolic link.
const FOLLOW_SYMLINKS: i32 = 1;
/// `path_open` open flag: create the file.
const O_CREAT: i32 = 1;
const RIGHT_FD_READ: i64 = 1 << 1;
const RIGHT_FD_WRITE: i64 = 1 << 6;

#[derive(Clone, Copy)]
enum Access {
    /// Open for reading and copy the first bytes to stdout.
    Read,
    /// Open (creating) for writing and write `written by the guest`.
    Write { create: bool },
}

/// A guest that opens `path` under the first mount (fd 3) and exits with
/// the WASI errno of the first failing call, 0 when all succeeded.
fn opener(path: &str, access: Access) -> String {
    let (oflags, rights, body) = match access {
        Access::Read => (
            0,
            RIGHT_FD_READ,
            r#"(i32.store (i32.const 16) (i32.const 1024))
               (i32.store (i32.const 20) (i32.const 256))
               (local.set $errno (call $fd_read (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 24)))
               (if (i32.eqz (local.get $errno)) (then
                 (i32.store (i32.const 20) (i32.load (i32.const 24)))
                 (local.set $errno (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))"#,
        ),
        Access::Write { create } => (
            if create { O_CREAT } else { 0 },
            RIGHT_FD_WRITE,
            r#"(i32.store (i32.const 16) (i32.const 512))
               (i32.store (i32.const 20) (i32.const 20))
               (local.set $errno (call $fd_write (i32.load (i32.const 0)) (i32.const 16) (i32.const 1) (i32.const 24)))"#,
        ),
    };
    format!(
        r#"(module {WASI_IMPORTS}
          (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 256) "{path}")
          (data (i32.const 512) "written by the guest")
          (func (export "_start") (local $errno i32)
            (local.set $errno (call $path_open (i32.const 3) (i32.const {FOLLOW_SYMLINKS})
              (i32.const 256) (i32.const {len}) (i32.const {oflags})
              (i64.const {rights}) (i64.const 0) (i32.const 0) (i32.const 0)))
            (if (i32.eqz (local.get $errno)) (then {body}))
            (call $proc_exit (local.get $errno))))"#,
        len = path.len(),
    )
}

/// A mount directory with a file inside and a secret file outside it.
struct Layout {
    _dir: tempfile::TempDir,
    root: PathBuf,
    mount: PathBuf,
    outside: PathBuf,
}

fn layout() -> Layout {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let mount = root.join("volume");
    let outside = root.join("outside");
    fs::create_dir_all(&mount).expect("mount dir");
    fs::create_dir_all(&outside).expect("outside dir");
    fs::write(mount.join("inside.txt"), "inside").expect("inside file");
    fs::write(outside.join("secret.txt"), "top secret").expect("secret file");
    Layout {
        _dir: dir,
        root,
        mount,
        outside,
    }
}

async fn open_in_mount(
    layout: &Layout,
    path: &str,
    access: Access,
    read_only: bool,
) -> (ExitStatus, String) {
    let runtime = runtime(&layout.root);
    let program = load(&runtime, &opener(path, access));
    let log = log(&layout.root, "guest.log");
    let spec = InstanceSpec {
        mounts: vec![Mount {
            host_path: layout.mount.clone(),
            guest_path: "/data".into(),
            read_only,
        }],
        stdout: Some(log.stdout()),
        ..InstanceSpec::default()
    };
    let status = run(&runtime, &program, spec).await;
    let output = logged(&log);
    fs::remove_file(log.path()).expect("log removed");
    (status, output)
}

fn failed(status: &ExitStatus) -> bool {
    matches!(status, ExitStatus::Exit { code } if *code != 0)
}

#[tokio::test]
async fn guest_reads_a_file_in_its_mount() {
    let layout = layout();
    let (status, output) = open_in_mount(&layout, "inside.txt", Access::Read, true).await;
    assert_eq!(status, ExitStatus::Exit { code: 0 });
    assert_eq!(output, "inside");
}

#[tokio::test]
async fn writable_mount_accepts_new_files() {
    let layout = layout();
    let (status, _) =
        open_in_mount(&layout, "new.txt", Access::Write { create: true }, false).await;
    assert_eq!(status, ExitStatus::Exit { code: 0 });
    let written = fs::read_to_string(layout.mount.join("new.txt")).expect("file created");
    assert_eq!(written, "written by the guest");
}

#[tokio::test]
async fn read_only_mount_rejects_writes() {
    let layout = layout();
    let (status, _) = open_in_mount(&layout, "new.txt", Access::Write { create: true }, true).await;
    assert!(failed(&status), "creating a file: {status:?}");
    assert!(!layout.mount.join("new.txt").exists());

    let (status, _) =
        open_in_mount(&layout, "inside.txt", Access::Write { create: false }, true).await;
    assert!(failed(&status), "writing a file: {status:?}");
    assert_eq!(
        fs::read_to_string(layout.mount.join("inside.txt")).expect("still there"),
        "inside"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn paths_cannot_escape_a_mount() {
    use std::os::unix::fs::symlink;

    let layout = layout();
    let absolute: &Path = &layout.outside;
    symlink(absolute, layout.mount.join("absolute-link")).expect("symlink");
    symlink("../outside", layout.mount.join("relative-link")).expect("symlink");
    symlink("../outside/secret.txt", layout.mount.join("file-link")).expect("symlink");
    for path in [
        "../outside/secret.txt",
        "/data/../outside/secret.txt",
        "absolute-link/secret.txt",
        "relative-link/secret.txt",
        "file-link",
    ] {
        let (status, output) = open_in_mount(&layout, path, Access::Read, false).await;
        assert!(failed(&status), "{path}: {status:?}");
        assert!(!output.contains("secret"), "{path} leaked {output:?}");
    }
}

#[tokio::test]
async fn missing_mount_directory_is_an_error() {
    let layout = layout();
    let runtime = runtime(&layout.root);
    let program = load(&runtime, &opener("x", Access::Read));
    let spec = InstanceSpec {
        mounts: vec![Mount {
            host_path: layout.root.join("does-not-exist"),
            guest_path: "/data".into(),
            read_only: false,
        }],
        ..InstanceSpec::default()
    };
    let error = runtime
        .start(&program, spec)
        .await
        .expect_err("cannot mount");
    assert!(
        matches!(error, crate::runtime::RuntimeError::Mount { .. }),
        "{error:?}"
    );
}
