//! The log endpoint through its router, on log files in temporary
//! directories.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;
use crate::runtime::{LogFile, LogRegistry};

const UID: &str = "uid-1";

struct Node {
    dir: tempfile::TempDir,
    registry: Arc<LogRegistry>,
    server: LogServer,
}

fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = LogRegistry::new();
    let writers: Arc<dyn LogWriters> = registry.clone();
    let server =
        LogServer::with_poll_interval(dir.path().to_path_buf(), writers, Duration::from_millis(10));
    Node {
        dir,
        registry,
        server,
    }
}

/// A record written at `second` seconds past 2024-01-01T00:00:00Z.
fn record(second: u32, stream: &str, tag: &str, text: &str) -> String {
    format!("2024-01-01T00:00:{second:02}.000000000Z {stream} {tag} {text}\n")
}

impl Node {
    fn path(&self, container: &str, attempt: u32) -> PathBuf {
        let path = log_path(self.dir.path(), UID, container, attempt);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("log dir");
        path
    }

    /// Writes attempt `attempt` of container `c` from records.
    fn seed(&self, attempt: u32, records: &[String]) -> PathBuf {
        let path = self.path("c", attempt);
        std::fs::write(&path, records.concat()).expect("writes");
        path
    }

    async fn get(&self, query: &str) -> (StatusCode, String, String) {
        self.get_path(&format!("/containerLogs/ns/p/c?podUID={UID}&{query}"))
            .await
    }

    async fn get_path(&self, uri: &str) -> (StatusCode, String, String) {
        let response = self
            .server
            .router()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("a response");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = tokio::time::timeout(
            Duration::from_secs(10),
            axum::body::to_bytes(response.into_body(), usize::MAX),
        )
        .await
        .expect("the body ends")
        .expect("a body");
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).expect("utf-8"),
        )
    }

    async fn error(&self, query: &str) -> (StatusCode, String) {
        let (status, content_type, body) = self.get(query).await;
        assert_eq!(content_type, "application/json");
        let status_object: serde_json::Value = serde_json::from_str(&body).expect("a Status");
        assert_eq!(status_object["kind"], "Status");
        let message = status_object["message"].as_str().unwrap_or_default();
        (status, message.to_string())
    }
}

fn seven_lines() -> Vec<String> {
    vec![
        record(1, "stdout", "F", "one"),
        record(2, "stdout", "P", "tw"),
        record(3, "stderr", "F", "warning"),
        record(4, "stdout", "F", "o"),
        record(5, "stdout", "F", "three"),
        record(6, "stderr", "F", "four"),
        record(7, "stdout", "P", "no newline"),
    ]
}

#[tokio::test]
async fn the_current_attempt_is_served_with_partial_lines_joined() {
    let node = node();
    node.seed(0, &[record(1, "stdout", "F", "old")]);
    node.seed(1, &seven_lines());
    let (status, content_type, body) = node.get("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain");
    assert_eq!(body, "one\nwarning\ntwo\nthree\nfour\nno newline");
}

#[tokio::test]
async fn previous_is_the_attempt_before_the_current_one() {
    let node = node();
    node.seed(0, &[record(1, "stdout", "F", "zero")]);
    node.seed(2, &[record(1, "stdout", "F", "two")]);
    assert_eq!(node.get("previous=true").await.2, "zero\n");
    assert_eq!(node.get("").await.2, "two\n");
}

#[tokio::test]
async fn missing_logs_are_kubelet_errors() {
    let node = node();
    let (status, message) = node.error("").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
    );
    node.seed(0, &[record(1, "stdout", "F", "zero")]);
    let (status, message) = node.error("previous=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "previous terminated container \"c\" in pod \"p\" not found"
    );
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_parameter() {
    let node = node();
    node.seed(0, &seven_lines());
    for (query, param) in [
        ("tailLines=-1", "tailLines"),
        ("limitBytes=0", "limitBytes"),
        ("sinceTime=soon", "sinceTime"),
        ("follow=maybe", "follow"),
    ] {
        let (status, message) = node.error(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(message.starts_with(param), "{query}: {message}");
    }
    let (status, _, body) = node.get_path("/containerLogs/ns/p/c").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("podUID"), "{body}");
    let (status, _, body) = node
        .get_path(&format!("/containerLogs/ns/p/..?podUID={UID}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn tail_since_limit_and_timestamps_apply_to_lines() {
    let node = node();
    node.seed(0, &seven_lines());
    assert_eq!(node.get("tailLines=2").await.2, "four\nno newline");
    assert_eq!(node.get("tailLines=0").await.2, "");
    // "two" began at second 2, before the since time: lines are as old as
    // their first record.
    assert_eq!(
        node.get("sinceTime=2024-01-01T00:00:03Z").await.2,
        "warning\nthree\nfour\nno newline"
    );
    assert_eq!(node.get("limitBytes=6").await.2, "one\nwa");
    assert_eq!(
        node.get("timestamps=true&tailLines=1&sinceTime=2024-01-01T00:00:01Z")
            .await
            .2,
        "2024-01-01T00:00:07Z no newline"
    );
    assert_eq!(
        node.get("timestamps=true&limitBytes=26").await.2,
        "2024-01-01T00:00:01Z one\n2"
    );
    // sinceSeconds counts back from now: these records are long past.
    assert_eq!(node.get("sinceSeconds=60").await.2, "");
}

#[tokio::test]
async fn the_rotated_file_is_read_before_the_current_one() {
    let node = node();
    let path = node.seed(0, &[record(3, "stdout", "F", "new")]);
    std::fs::write(
        crate::runtime::rotated_path(&path),
        [
            record(1, "stdout", "F", "old"),
            record(2, "stdout", "P", "ha"),
        ]
        .concat(),
    )
    .expect("writes");
    assert_eq!(node.get("").await.2, "old\nhanew\n");
}

#[tokio::test]
async fn follow_streams_until_the_writer_is_gone() {
    let node = node();
    let path = node.path("c", 0);
    let log = LogFile::create_registered(&path, 1 << 20, &node.registry).expect("a log");
    let (out, err) = (log.stdout(), log.stderr());
    drop(log);
    write(&out, "first\npart").await;
    let follower = {
        let node_server = node.server.clone();
        tokio::spawn(async move {
            let response = node_server
                .router()
                .oneshot(
                    Request::get(format!("/containerLogs/ns/p/c?podUID={UID}&follow=true"))
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("a response");
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body")
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    write(&err, "oops\n").await;
    write(&out, "ial\nlast").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!follower.is_finished(), "the writer is still alive");
    drop((out, err));
    let body = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the stream ends with its writer")
        .expect("the follower");
    assert_eq!(body, "first\noops\npartial\nlast");
}

#[tokio::test]
async fn follow_goes_on_across_a_rotation() {
    let node = node();
    let path = node.path("c", 0);
    // Small enough that each line rotates the file.
    let log = LogFile::create_registered(&path, 60, &node.registry).expect("a log");
    let out = log.stdout();
    drop(log);
    write(&out, "one\n").await;
    let follower = {
        let node_server = node.server.clone();
        tokio::spawn(async move {
            let response = node_server
                .router()
                .oneshot(
                    Request::get(format!("/containerLogs/ns/p/c?podUID={UID}&follow=1"))
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("a response");
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body")
        })
    };
    for line in ["two\n", "three\n", "four\n"] {
        tokio::time::sleep(Duration::from_millis(30)).await;
        write(&out, line).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(out);
    let body = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the stream ends with its writer")
        .expect("the follower");
    assert_eq!(body, "one\ntwo\nthree\nfour\n");
}

#[tokio::test]
async fn follow_of_an_ended_attempt_returns_its_log() {
    let node = node();
    node.seed(0, &seven_lines());
    let (status, _, body) = node.get("follow=true&tailLines=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "no newline");
}

/// Writes as a guest does, through the stream's handle.
async fn write(stream: &crate::runtime::LogStream, text: &str) {
    use tokio::io::AsyncWriteExt;
    let mut stream = stream.clone();
    stream.write_all(text.as_bytes()).await.expect("writes");
}
