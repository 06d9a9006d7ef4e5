//! Fetching modules under each pull policy, from a fake module store and
//! from a loopback HTTP server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmpod_api::module_ref::TagRef;

use super::cache::digest_of;
use super::fetch::{FetchError, ModuleStore, UrlSource};
use super::{ModuleFetcher, PullPolicy};

/// A core module with a custom section, so each `name` has its own digest.
fn module(name: &str) -> Vec<u8> {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.push(0);
    bytes.push(u8::try_from(name.len() + 1).expect("a short name"));
    bytes.push(u8::try_from(name.len()).expect("a short name"));
    bytes.extend_from_slice(name.as_bytes());
    bytes
}

/// The module store's part the node uses, in memory, counting calls.
#[derive(Default)]
struct FakeStore {
    tags: Mutex<HashMap<String, String>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    resolves: AtomicUsize,
    fetches: AtomicUsize,
}

impl FakeStore {
    fn push(&self, tag: &str, bytes: Vec<u8>) -> String {
        let digest = digest_of(&bytes);
        self.blobs
            .lock()
            .expect("a lock")
            .insert(digest.clone(), bytes);
        let tag = TagRef::parse(tag).expect("a valid tag").to_string();
        self.tags
            .lock()
            .expect("a lock")
            .insert(tag, digest.clone());
        digest
    }

    /// Makes the store answer `bytes` for `digest`, as a corrupt one would.
    fn corrupt(&self, digest: &str, bytes: Vec<u8>) {
        self.blobs
            .lock()
            .expect("a lock")
            .insert(digest.to_string(), bytes);
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.resolves.load(Ordering::SeqCst),
            self.fetches.load(Ordering::SeqCst),
        )
    }
}

/// Shares one fake between the test and the fetcher.
struct Shared(Arc<FakeStore>);

impl ModuleStore for Shared {
    fn resolve_tag<'a>(&'a self, tag: &'a TagRef) -> BoxFuture<'a, Result<String, FetchError>> {
        Box::pin(async move {
            self.0.resolves.fetch_add(1, Ordering::SeqCst);
            self.0
                .tags
                .lock()
                .expect("a lock")
                .get(&tag.to_string())
                .cloned()
                .ok_or_else(|| FetchError::NotFound(format!("{tag} is not in the module store")))
        })
    }

    fn fetch_blob<'a>(&'a self, digest: &'a str) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            self.0.fetches.fetch_add(1, Ordering::SeqCst);
            self.0
                .blobs
                .lock()
                .expect("a lock")
                .get(digest)
                .cloned()
                .ok_or_else(|| FetchError::NotFound(format!("{digest} is not in the module store")))
        })
    }
}

struct Setup {
    dir: tempfile::TempDir,
    store: Arc<FakeStore>,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("a temp dir"),
            store: Arc::new(FakeStore::default()),
        }
    }

    /// A fetcher on this setup's cache and store (as after a node restart,
    /// each call gives a new one on the same disk).
    fn fetcher(&self) -> ModuleFetcher {
        ModuleFetcher::new(self.dir.path().join("modules"))
            .expect("a fetcher")
            .with_store(Shared(Arc::clone(&self.store)))
    }

    /// A fetcher on this setup's cache without a module store (offline).
    fn offline(&self) -> ModuleFetcher {
        ModuleFetcher::new(self.dir.path().join("modules")).expect("a fetcher")
    }
}

#[tokio::test]
async fn a_pushed_module_is_fetched_once_then_served_from_the_cache() {
    let s = Setup::new();
    let digest = s.store.push("app:v1", module("one"));
    let fetched = s
        .fetcher()
        .fetch("app:v1", PullPolicy::IfNotPresent)
        .await
        .expect("fetches");
    assert_eq!(fetched.digest, digest);
    assert_eq!(fetched.bytes, module("one"));
    assert_eq!(s.store.counts(), (1, 1));

    let again = s
        .fetcher()
        .fetch("app:v1", PullPolicy::IfNotPresent)
        .await
        .expect("from the cache");
    assert_eq!(again.digest, digest);
    assert_eq!(s.store.counts(), (1, 1), "IfNotPresent asks nothing");

    for image in ["app:v1", digest.as_str(), &format!("app:v1@{digest}")] {
        let offline = s.offline().fetch(image, PullPolicy::Never).await;
        assert_eq!(offline.expect(image).digest, digest, "{image}");
    }
}

#[tokio::test]
async fn always_resolves_the_tag_again_but_reuses_cached_blobs() {
    let s = Setup::new();
    let first = s.store.push("app", module("one"));
    s.fetcher()
        .fetch("app", PullPolicy::Always)
        .await
        .expect("fetches");
    s.fetcher()
        .fetch("app:latest", PullPolicy::Always)
        .await
        .expect("fetches");
    assert_eq!(s.store.counts(), (2, 1), "resolved twice, downloaded once");

    let second = s.store.push("app:latest", module("two"));
    let moved = s
        .fetcher()
        .fetch("app", PullPolicy::Always)
        .await
        .expect("fetches");
    assert_eq!(moved.digest, second);
    assert_ne!(first, second);
    // The tag record follows: an offline start runs the new module.
    let offline = s
        .offline()
        .fetch("app", PullPolicy::Never)
        .await
        .expect("cached");
    assert_eq!(offline.digest, second);
}

#[tokio::test]
async fn never_without_the_module_in_the_cache_is_err_image_never_pull() {
    let s = Setup::new();
    let digest = s.store.push("app:v1", module("one"));
    for image in ["app:v1", digest.as_str()] {
        let err = s
            .fetcher()
            .fetch(image, PullPolicy::Never)
            .await
            .expect_err("not cached");
        assert_eq!(err.reason(), "ErrImageNeverPull", "{image}: {err}");
        assert!(err.to_string().contains(image), "{err}");
    }
    assert_eq!(s.store.counts(), (0, 0));
}

#[tokio::test]
async fn a_blob_that_does_not_hash_to_its_digest_is_refused_and_not_cached() {
    let s = Setup::new();
    let digest = s.store.push("app:v1", module("one"));
    s.store.corrupt(&digest, module("evil"));
    let err = s
        .fetcher()
        .fetch("app:v1", PullPolicy::IfNotPresent)
        .await
        .expect_err("a mismatch");
    assert_eq!(err.reason(), "ErrImagePull", "{err}");
    assert!(err.to_string().contains(&digest), "{err}");
    let offline = s.offline().fetch(&digest, PullPolicy::Never).await;
    assert_eq!(
        offline.expect_err("nothing cached").reason(),
        "ErrImageNeverPull"
    );
}

#[tokio::test]
async fn a_pinned_tag_is_fetched_by_its_pin() {
    let s = Setup::new();
    s.store.push("app:v1", module("one"));
    let other = s.store.push("app:v2", module("two"));
    // A pinned tag is fetched by its pin, so a pin of another module gets
    // that module; a pin nothing has is a pull error naming the image.
    let pinned = s
        .fetcher()
        .fetch(&format!("app:v1@{other}"), PullPolicy::IfNotPresent)
        .await
        .expect("fetched by the pin");
    assert_eq!(pinned.digest, other);
    let missing = format!("sha256:{}", "0".repeat(64));
    let image = format!("app:v1@{missing}");
    let err = s
        .fetcher()
        .fetch(&image, PullPolicy::IfNotPresent)
        .await
        .expect_err("unknown digest");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.to_string().starts_with(&image), "{err}");
}

#[tokio::test]
async fn unknown_tags_and_missing_sources_are_err_image_pull() {
    let s = Setup::new();
    let err = s
        .fetcher()
        .fetch("nope:v1", PullPolicy::IfNotPresent)
        .await
        .expect_err("unknown");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.to_string().contains("nope:v1"), "{err}");

    let offline = s.offline().fetch("app:v1", PullPolicy::IfNotPresent).await;
    assert_eq!(offline.expect_err("no store").reason(), "ErrImagePull");

    let files_only = ModuleFetcher::files_only()
        .fetch("https://example.com/app.wasm", PullPolicy::IfNotPresent)
        .await;
    assert_eq!(files_only.expect_err("no cache").reason(), "ErrImagePull");

    let bad = s.fetcher().fetch("App:v1", PullPolicy::IfNotPresent).await;
    assert_eq!(bad.expect_err("a bad name").reason(), "InvalidImageName");
}

#[tokio::test]
async fn file_modules_are_read_and_pinned() {
    let s = Setup::new();
    let path = s.dir.path().join("app.wasm");
    std::fs::write(&path, module("file")).expect("writes");
    let image = format!("file://{}", path.display());
    let fetched = s
        .offline()
        .fetch(&image, PullPolicy::Never)
        .await
        .expect("reads");
    assert_eq!(fetched.digest, digest_of(&module("file")));
    let wrong = format!("{image}@sha256:{}", "0".repeat(64));
    let err = s
        .offline()
        .fetch(&wrong, PullPolicy::IfNotPresent)
        .await
        .expect_err("a mismatch");
    assert_eq!(err.reason(), "ErrImagePull");
}

/// A loopback HTTP server answering every request with one response.
struct TinyServer {
    url: String,
    requests: Arc<AtomicUsize>,
}

async fn serve(status: &'static str, body: Vec<u8>) -> TinyServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("an address");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    TinyServer {
        url: format!("http://{addr}/m/app.wasm"),
        requests,
    }
}

impl TinyServer {
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn url_modules_are_downloaded_cached_and_downloaded_again_under_always() {
    let s = Setup::new();
    let server = serve("200 OK", module("url")).await;
    let fetched = s
        .offline()
        .fetch(&server.url, PullPolicy::IfNotPresent)
        .await
        .expect("downloads");
    assert_eq!(fetched.bytes, module("url"));
    assert_eq!(server.requests(), 1);

    s.offline()
        .fetch(&server.url, PullPolicy::IfNotPresent)
        .await
        .expect("from the cache");
    s.offline()
        .fetch(&server.url, PullPolicy::Never)
        .await
        .expect("from the cache");
    let pinned = format!("{}@{}", server.url, fetched.digest);
    s.offline()
        .fetch(&pinned, PullPolicy::Always)
        .await
        .expect("cached by its pin");
    assert_eq!(server.requests(), 1);

    s.offline()
        .fetch(&server.url, PullPolicy::Always)
        .await
        .expect("downloads again");
    assert_eq!(server.requests(), 2);

    let wrong = format!("{}@sha256:{}", server.url, "0".repeat(64));
    let err = s
        .offline()
        .fetch(&wrong, PullPolicy::IfNotPresent)
        .await
        .expect_err("a mismatch");
    assert_eq!(err.reason(), "ErrImagePull", "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[tokio::test]
async fn url_failures_name_the_image_and_the_cause() {
    let s = Setup::new();
    let missing = serve("404 Not Found", b"no".to_vec()).await;
    let err = s
        .offline()
        .fetch(&missing.url, PullPolicy::IfNotPresent)
        .await
        .expect_err("404");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(
        err.to_string().starts_with(&missing.url) && err.to_string().contains("404"),
        "{err}"
    );

    let text = serve("200 OK", b"<html>not wasm</html>".to_vec()).await;
    let err = s
        .offline()
        .fetch(&text.url, PullPolicy::IfNotPresent)
        .await
        .expect_err("not wasm");
    assert_eq!(err.reason(), "InvalidImage", "{err}");

    let big = serve("200 OK", module("a module over the cap")).await;
    let capped = s
        .offline()
        .with_url_source(UrlSource::new().expect("a client").with_max_bytes(16));
    let err = capped
        .fetch(&big.url, PullPolicy::IfNotPresent)
        .await
        .expect_err("too large");
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.to_string().contains("larger than"), "{err}");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.local_addr().expect("an address")
    };
    let err = s
        .offline()
        .fetch(
            &format!("http://{closed}/app.wasm"),
            PullPolicy::IfNotPresent,
        )
        .await
        .expect_err("nothing listens");
    assert_eq!(err.reason(), "ErrImagePull");
}
