//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: a pod's container logs
//! live on its node, so the API server checks the request as
//! kube-apiserver does (the query, the container, the node) and streams the
//! answer of the node's log endpoint (`/containerLogs/...`) back unchanged,
//! chunk by chunk, so that `kubectl logs -f` sees output as it is written.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use wasmpod_api::ApiError;

use super::ApiState;
use super::objects;
use super::request::ResourceRequest;
use crate::store::Key;

/// The `PodLogOptions` of a request, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogQuery {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub since_seconds: Option<i64>,
    /// As given (RFC 3339), once checked.
    pub since_time: Option<String>,
    pub limit_bytes: Option<i64>,
}

impl LogQuery {
    /// Reads the log parameters of a query; a bad value is a 400 naming it.
    pub fn parse(query: &HashMap<String, String>) -> Result<LogQuery, ApiError> {
        let since_time = match query.get("sinceTime").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                v.parse::<jiff::Timestamp>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "sinceTime: Invalid value: {v:?}: must be an RFC 3339 time"
                    ))
                })?;
                Some(v.clone())
            }
        };
        let parsed = LogQuery {
            container: query.get("container").filter(|c| !c.is_empty()).cloned(),
            follow: boolean("follow", query)?,
            previous: boolean("previous", query)?,
            timestamps: boolean("timestamps", query)?,
            tail_lines: number("tailLines", query)?,
            since_seconds: number("sinceSeconds", query)?,
            since_time,
            limit_bytes: number("limitBytes", query)?,
        };
        if let Some(n) = parsed.tail_lines.filter(|n| *n < 0) {
            return Err(invalid(
                "tailLines",
                n,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(n) = parsed.limit_bytes.filter(|n| *n < 1) {
            return Err(invalid("limitBytes", n, "must be greater than 0"));
        }
        if let Some(n) = parsed.since_seconds.filter(|n| *n < 1) {
            return Err(invalid("sinceSeconds", n, "must be greater than 0"));
        }
        if parsed.since_seconds.is_some() && parsed.since_time.is_some() {
            return Err(ApiError::BadRequest(
                "sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified".into(),
            ));
        }
        Ok(parsed)
    }

    /// The query for the node's endpoint.
    fn node_query(&self, pod_uid: &str) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("podUID", pod_uid.to_string())];
        for (name, set) in [
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ] {
            if set {
                pairs.push((name, "true".into()));
            }
        }
        for (name, value) in [
            ("tailLines", self.tail_lines),
            ("sinceSeconds", self.since_seconds),
            ("limitBytes", self.limit_bytes),
        ] {
            if let Some(v) = value {
                pairs.push((name, v.to_string()));
            }
        }
        if let Some(t) = &self.since_time {
            pairs.push(("sinceTime", t.clone()));
        }
        pairs
    }
}

fn boolean(param: &str, query: &HashMap<String, String>) -> Result<bool, ApiError> {
    match query.get(param).map(String::as_str) {
        None | Some("" | "0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{param}: Invalid value: {other:?}: must be true or false"
        ))),
    }
}

fn number(param: &str, query: &HashMap<String, String>) -> Result<Option<i64>, ApiError> {
    match query.get(param).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::BadRequest(format!("{param}: Invalid value: {v:?}: must be an integer"))
        }),
    }
}

fn invalid(param: &str, value: i64, detail: &str) -> ApiError {
    ApiError::BadRequest(format!("{param}: Invalid value: {value}: {detail}"))
}

/// Answers a `log` request: see the module documentation.
pub async fn logs(state: &ApiState, req: &ResourceRequest) -> Result<Response, ApiError> {
    let query = LogQuery::parse(&req.query.other)?;
    let pod = objects::current(state, req).await?.object;
    let pod_name = objects::name(req).to_string();
    let namespace = req.namespace.clone().unwrap_or_default();
    let container = choose_container(&pod, &pod_name, query.container.as_deref())?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("pod {pod_name} does not have a host assigned"))
        })?;
    let node = state
        .store
        .get(&Key::new("nodes", "", node_name))
        .await
        .map_err(|e| super::response::store_error("", "nodes", e))?
        .ok_or_else(|| ApiError::not_found("", "nodes", node_name))?
        .object;
    let (host, port) = kubelet_endpoint(&node, node_name)?;
    let pod_uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut url = reqwest::Url::parse(&format!("http://{}/", authority(&host, port)))
        .map_err(|e| unreachable(node_name, &e))?;
    url.path_segments_mut()
        .map_err(|()| ApiError::Internal("the node URL cannot have a path".into()))?
        .extend(["containerLogs", &namespace, &pod_name, &container]);
    url.query_pairs_mut()
        .extend_pairs(query.node_query(pod_uid));
    tracing::debug!(%url, "proxying pod logs to the node");
    let answer = state
        .http_client()
        .get(url)
        .send()
        .await
        .map_err(|e| unreachable(node_name, &e))?;
    Ok(relay(answer))
}

/// The node's answer as the response: same code, content type and body.
fn relay(answer: reqwest::Response) -> Response {
    let code = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        .unwrap_or_else(|| HeaderValue::from_static("text/plain"));
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

fn unreachable(node: &str, error: &dyn std::fmt::Display) -> ApiError {
    ApiError::ServiceUnavailable(format!(
        "the logs of node \"{node}\" cannot be reached: {error}"
    ))
}

/// `host:port`, with brackets around an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// The container a log request is about, chosen as kube-apiserver does.
pub fn choose_container(
    pod: &Value,
    pod_name: &str,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    let names = |list: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    };
    let containers = names("containers");
    let mut all = names("initContainers");
    all.extend(containers.iter().cloned());
    all.extend(names("ephemeralContainers"));
    match requested {
        Some(name) if all.iter().any(|c| c == name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::BadRequest(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None if containers.is_empty() => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        None => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// Where the node's log endpoint is: its InternalIP (else its Hostname,
/// else loopback) and `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_endpoint(node: &Value, node_name: &str) -> Result<(String, u16), ApiError> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            ApiError::ServiceUnavailable(format!(
                "node \"{node_name}\" does not report a kubelet endpoint for logs"
            ))
        })?;
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let address = |kind: &str| {
        addresses
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .find_map(|a| a.get("address").and_then(Value::as_str))
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    };
    let host = address("InternalIP")
        .or_else(|| address("Hostname"))
        .unwrap_or_else(|| "127.0.0.1".into());
    Ok((host, port))
}

#[cfg(test)]
mod tests;
