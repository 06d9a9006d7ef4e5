//! The module store end to end: `wasmpod push` uploads a module to a
//! running server, which serves it back by digest and lists its tag; bad
//! pushes and lookups get the `Status` a client switches on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Cluster, unique};
use reqwest::Method;

/// A valid core module whose custom section makes its digest unique.
fn module_bytes(marker: &str) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    let len = u8::try_from(marker.len()).expect("a short marker");
    bytes.extend_from_slice(&[0, len + 1, len]);
    bytes.extend_from_slice(marker.as_bytes());
    bytes
}

fn write_module(c: &Cluster, marker: &str) -> (PathBuf, Vec<u8>) {
    let bytes = module_bytes(marker);
    let path = c.scratch_dir(marker).join("app.wasm");
    std::fs::write(&path, &bytes).expect("writing the module");
    (path, bytes)
}

/// Runs `wasmpod push` with `args` after the file, and `KUBECONFIG` set to
/// `kubeconfig` (or unset).
fn push(file: &Path, args: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmpod"));
    command.arg("push").arg(file).args(args);
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        None => command.env_remove("KUBECONFIG"),
    };
    command.output().expect("running wasmpod push")
}

#[track_caller]
fn pushed_reference(output: &Output) -> String {
    assert!(
        output.status.success(),
        "wasmpod push failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {stdout:?}");
    lines[0].to_string()
}

#[test]
fn a_pushed_module_comes_back_by_digest_and_tag() {
    let c = Cluster::shared();
    let name = unique("app");
    let (file, bytes) = write_module(c, &name);
    let server = c.base_url();
    let reference = pushed_reference(&push(
        &file,
        &["--tag", &format!("{name}:v1"), "--server", &server],
        None,
    ));
    let (tag, digest) = reference.split_once('@').expect("NAME:TAG@sha256:<hex>");
    assert_eq!(tag, format!("{name}:v1"));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{reference}"
    );

    let got = c
        .client()
        .get(c.url(&format!("/wasmpod/v1/modules/{digest}")))
        .send()
        .expect("GET the module");
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/wasm")
    );
    assert_eq!(got.bytes().expect("the body").to_vec(), bytes);

    let tag = c.get(&format!("/wasmpod/v1/tags/{name}:v1"));
    assert_eq!(tag.expect(200)["digest"], digest);
    let list = c.get("/wasmpod/v1/tags");
    let listed = list.expect(200)["tags"]
        .as_array()
        .expect("a list of tags")
        .iter()
        .any(|t| t["name"] == format!("{name}:v1").as_str() && t["digest"] == digest);
    assert!(listed, "the tag is listed: {}", list.text);
}

#[test]
fn push_finds_the_server_in_the_kubeconfig_and_defaults_the_tag() {
    let c = Cluster::shared();
    let name = unique("kc");
    let (file, _) = write_module(c, &name);
    let reference = pushed_reference(&push(&file, &["--tag", &name], Some(&c.kubeconfig())));
    assert!(
        reference.starts_with(&format!("{name}:latest@sha256:")),
        "{reference}"
    );
    // Without a tag the reference is the digest alone.
    let digest = pushed_reference(&push(&file, &[], Some(&c.kubeconfig())));
    assert!(
        reference.ends_with(&format!("@{digest}")),
        "{reference} {digest}"
    );
}

#[test]
fn push_errors_name_the_file_or_the_servers_message() {
    let c = Cluster::shared();
    let server = c.base_url();
    let not_wasm = c.scratch_dir("not-wasm").join("notes.txt");
    std::fs::write(&not_wasm, b"just text").expect("writing a file");
    let out = push(&not_wasm, &["--tag", "x:v1", "--server", &server], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("not a WebAssembly module"),
        "{stderr}"
    );

    let missing = c.scratch_dir("missing").join("absent.wasm");
    let out = push(&missing, &["--server", &server], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("absent.wasm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (file, _) = write_module(c, &unique("badtag"));
    let out = push(&file, &["--tag", "Bad:v1", "--server", &server], None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn the_module_api_answers_bad_requests_with_a_status() {
    let c = Cluster::shared();
    c.send(
        Method::POST,
        "/wasmpod/v1/modules?tag=x:v1",
        Some("application/wasm"),
        Some(b"hello".to_vec()),
    )
    .expect_status(400, "BadRequest");
    let bad_tag = c.send(
        Method::POST,
        "/wasmpod/v1/modules?tag=Bad:-v1",
        Some("application/octet-stream"),
        Some(module_bytes("bad-tag")),
    );
    let status = bad_tag.expect_status(400, "BadRequest");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("tag")),
        "{status}"
    );
    let unknown = format!("/wasmpod/v1/modules/sha256:{}", "0".repeat(64));
    c.get(&unknown).expect_status(404, "NotFound");
    c.get("/wasmpod/v1/tags/never-pushed:v1")
        .expect_status(404, "NotFound");
}

#[test]
fn pods_run_pushed_modules_by_tag_and_by_digest() {
    let c = Cluster::shared();
    let node = common::node::shared_node();
    let ns = unique("pushed");
    c.create_namespace(&ns);
    let file = common::node::example_path("wasip1", "hello");
    let name = unique("hello");
    let reference = pushed_reference(&push(
        &file,
        &["--tag", &format!("{name}:v1"), "--server", &c.base_url()],
        None,
    ));
    let digest = reference
        .split_once('@')
        .map(|(_, d)| d.to_string())
        .expect("a pinned reference");
    let images = [
        ("by-tag", format!("{name}:v1")),
        ("by-digest", digest.clone()),
        ("pinned", reference.clone()),
        ("unknown-tag", format!("{name}:v2")),
    ];
    for (pod, image) in &images {
        c.apply(
            &serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns},
                "spec": {"nodeName": node.name, "restartPolicy": "Never",
                         "containers": [{"name": "app", "image": image}]},
            })
            .to_string(),
        );
    }
    for (pod, _) in &images[..3] {
        let p = c.wait_pod(
            &ns,
            pod,
            std::time::Duration::from_secs(60),
            "Succeeded",
            |p| p["status"]["phase"] == "Succeeded",
        );
        assert_eq!(
            common::node::container_status(&p, "app")["imageID"],
            digest.as_str(),
            "{pod}"
        );
        let logs = c.kubectl_ok(&["logs", pod, "-n", &ns]);
        assert!(logs.contains("Hello from wasmpod!"), "{pod}: {logs}");
    }
    let p = c.wait_pod(
        &ns,
        "unknown-tag",
        std::time::Duration::from_secs(60),
        "a pull error",
        |p| {
            matches!(
                common::node::container_status(p, "app")["state"]["waiting"]["reason"].as_str(),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
        },
    );
    let message = common::node::container_status(&p, "app")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(":v2"), "{message}");
}
