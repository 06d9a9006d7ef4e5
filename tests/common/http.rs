//! Raw HTTP calls to a cluster's API, for what kubectl would hide: exact
//! status codes, `Status` bodies, content types and watch streams.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::Cluster;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A response with its body read.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    /// The body as JSON; `Null` when it is not JSON.
    pub body: Value,
}

impl ApiResponse {
    fn read(resp: reqwest::blocking::Response) -> ApiResponse {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        ApiResponse {
            status,
            content_type,
            text,
            body,
        }
    }

    /// Asserts the status code and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, code: u16) -> &Value {
        assert_eq!(
            self.status, code,
            "expected HTTP {code}, got {}: {}",
            self.status, self.text
        );
        &self.body
    }

    /// Asserts a 2xx status and returns the JSON body.
    #[track_caller]
    pub fn expect_success(&self) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got HTTP {}: {}",
            self.status,
            self.text
        );
        &self.body
    }

    /// Asserts that the response is a failure `Status` with this HTTP code,
    /// `code` field and `reason`, and returns the Status.
    #[track_caller]
    pub fn expect_status(&self, code: u16, reason: &str) -> &Value {
        assert_eq!(
            self.status, code,
            "expected HTTP {code} {reason}, got {}: {}",
            self.status, self.text
        );
        assert_status_object(&self.body, code, reason);
        &self.body
    }
}

/// Asserts that `status` is a `Status` object with `code` and `reason`.
#[track_caller]
pub fn assert_status_object(status: &Value, code: u16, reason: &str) {
    assert_eq!(status["kind"], "Status", "not a Status object: {status}");
    assert_eq!(
        status["apiVersion"], "v1",
        "Status without apiVersion v1: {status}"
    );
    assert_eq!(
        status["status"], "Failure",
        "Status is not a Failure: {status}"
    );
    assert_eq!(status["code"], json!(code), "Status code: {status}");
    assert_eq!(status["reason"], reason, "Status reason: {status}");
    assert!(
        status["message"].as_str().is_some_and(|m| !m.is_empty()),
        "Status without a message: {status}"
    );
}

impl Cluster {
    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Sends one request; `content_type` defaults to JSON when there is a body.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> ApiResponse {
        let mut req = self
            .client
            .request(method.clone(), self.url(path))
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    content_type.unwrap_or("application/json"),
                )
                .body(body);
        } else if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        match req.send() {
            Ok(resp) => ApiResponse::read(resp),
            Err(e) => panic!(
                "{method} {path} failed: {e:?}\nserver log:\n{}",
                self.server_log_tail(30)
            ),
        }
    }

    pub fn get(&self, path: &str) -> ApiResponse {
        self.send(Method::GET, path, None, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> ApiResponse {
        self.send(
            Method::POST,
            path,
            None,
            Some(body.to_string().into_bytes()),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> ApiResponse {
        self.send(Method::PUT, path, None, Some(body.to_string().into_bytes()))
    }

    pub fn patch(&self, path: &str, content_type: &str, body: &Value) -> ApiResponse {
        self.send(
            Method::PATCH,
            path,
            Some(content_type),
            Some(body.to_string().into_bytes()),
        )
    }

    pub fn delete(&self, path: &str) -> ApiResponse {
        self.send(Method::DELETE, path, None, None)
    }

    /// Creates a namespace through the API.
    #[track_caller]
    pub fn create_namespace(&self, name: &str) {
        self.post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .expect(201);
    }

    /// Creates a ConfigMap with `data` and returns the stored object.
    #[track_caller]
    pub fn create_configmap(&self, namespace: &str, name: &str, data: Value) -> Value {
        self.post(
            &format!("/api/v1/namespaces/{namespace}/configmaps"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
        )
        .expect(201)
        .clone()
    }

    /// Opens a watch (`path` carries `?watch=true` and any other
    /// parameters). A non-200 answer comes back as the `Err` response.
    pub fn watch(&self, path: &str) -> Result<WatchStream, ApiResponse> {
        let resp = match self.client.get(self.url(path)).send() {
            Ok(r) => r,
            Err(e) => panic!("GET {path} failed: {e:?}"),
        };
        if resp.status().as_u16() != 200 {
            return Err(ApiResponse::read(resp));
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(resp).lines() {
                let Ok(line) = line else { return };
                if line.trim().is_empty() {
                    continue;
                }
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"type": "UNPARSABLE", "line": line}));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Ok(WatchStream {
            rx,
            seen: Vec::new(),
        })
    }
}

/// The events of an open watch, read by a background thread.
pub struct WatchStream {
    rx: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl WatchStream {
    /// The next event, or `None` when none arrives within `timeout` or the
    /// stream ended.
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        let event = self.rx.recv_timeout(timeout).ok()?;
        self.seen.push(event.clone());
        Some(event)
    }

    /// Reads events until one matches `pred`; panics, listing what was seen,
    /// after `timeout`.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(ev) if pred(&ev) => return ev,
                Some(_) => {}
                None => break,
            }
        }
        let seen: Vec<String> = self
            .seen
            .iter()
            .map(|e| format!("{} {}", e["type"], e["object"]["metadata"]["name"]))
            .collect();
        panic!("no watch event {what} within {timeout:?}; saw: {seen:?}");
    }
}
