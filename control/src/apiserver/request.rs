//! Turns a request path, method and query into what it asks for: the
//! resource, namespace, name, subresource and verb (Kubernetes'
//! RequestInfo), and its query options.

use std::collections::HashMap;

use http::Method;
use wasmpod_api::ApiError;
use wasmpod_api::registry::{self, ResourceType, Subresource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

/// A request for a resource (not discovery or OpenAPI).
#[derive(Debug)]
pub struct ResourceRequest {
    pub resource: &'static ResourceType,
    /// Namespace of the request; None for cluster-scoped kinds or all namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<SubresourceName>,
    pub verb: Verb,
    pub query: Query,
}

/// Subresources, including `log`, which is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubresourceName {
    Stored(Subresource),
    Log,
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` resource paths.
/// Returns Ok(None) when the path is not a resource path at all.
pub fn parse(
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Result<Option<ResourceRequest>, ApiError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let mut namespace = None;
    let mut rest = rest;
    // `/namespaces/{ns}/{resource}...` addresses a namespaced resource, except
    // `/namespaces/{name}/status|finalize`, subresources of the namespace itself.
    if rest[0] == "namespaces" && rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
        namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    let plural = rest[0];
    let resource = registry::by_plural(group, version, plural).ok_or_else(|| {
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        ApiError::NotFound {
            target: Default::default(),
            message: format!("the server could not find the requested resource ({plural} in {gv})"),
        }
    })?;
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = match rest.get(2) {
        None => None,
        Some(&"log") if resource.kind == "Pod" => Some(SubresourceName::Log),
        Some(sub) => {
            let found = resource
                .subresources
                .iter()
                .find(|s| s.name() == *sub)
                .copied();
            Some(SubresourceName::Stored(found.ok_or_else(|| {
                ApiError::NotFound {
                    target: Default::default(),
                    message: format!("{plural} has no subresource {sub:?}"),
                }
            })?))
        }
    };
    if rest.len() > 3 {
        return Err(ApiError::NotFound {
            target: Default::default(),
            message: format!("no resource at {path}"),
        });
    }
    if !resource.namespaced && namespace.is_some() {
        return Err(ApiError::NotFound {
            target: Default::default(),
            message: format!("{} is not namespaced", resource.plural),
        });
    }
    let query = Query::parse(raw_query)?;
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", true) => Verb::Get,
        ("GET", false) if query.watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("POST", true) if subresource == Some(SubresourceName::Stored(Subresource::Binding)) => {
            Verb::Create
        }
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        (m, _) => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow {m} on this resource path"
            )));
        }
    };
    Ok(Some(ResourceRequest {
        resource,
        namespace,
        name,
        subresource,
        verb,
        query,
    }))
}

/// The query options of list, watch and write requests.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub watch: bool,
    pub timeout_seconds: Option<u64>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub field_validation: FieldValidation,
    pub dry_run: bool,
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub include_object: Option<String>,
    /// `follow`, `tailLines`, `previous`, `container`, `timestamps`, ... for `log`.
    pub other: HashMap<String, String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        for (k, v) in form_urlencoded(raw) {
            match k.as_str() {
                "labelSelector" => q.label_selector = Some(v).filter(|s| !s.is_empty()),
                "fieldSelector" => q.field_selector = Some(v).filter(|s| !s.is_empty()),
                "limit" => q.limit = Some(parse_num(&k, &v)?).filter(|n: &usize| *n > 0),
                "continue" => q.continue_token = Some(v).filter(|s| !s.is_empty()),
                "resourceVersion" => q.resource_version = Some(v).filter(|s| !s.is_empty()),
                "watch" => q.watch = v == "true" || v == "1",
                "timeoutSeconds" => q.timeout_seconds = Some(parse_num(&k, &v)?),
                "allowWatchBookmarks" => q.allow_bookmarks = v == "true",
                "sendInitialEvents" => q.send_initial_events = v == "true",
                "fieldValidation" => {
                    q.field_validation = match v.as_str() {
                        "Strict" => FieldValidation::Strict,
                        "Warn" | "" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "fieldValidation: invalid value {other:?}: must be Ignore, Warn or Strict"
                            )));
                        }
                    }
                }
                "dryRun" => {
                    if v != "All" && !v.is_empty() {
                        return Err(ApiError::BadRequest(format!(
                            "dryRun: unsupported value {v:?}: must be All"
                        )));
                    }
                    q.dry_run = v == "All";
                }
                "propagationPolicy" => q.propagation_policy = Some(v),
                "gracePeriodSeconds" => q.grace_period_seconds = Some(parse_num(&k, &v)?),
                "includeObject" => q.include_object = Some(v),
                _ => {
                    q.other.insert(k, v);
                }
            }
        }
        Ok(q)
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ApiError> {
    value.parse().map_err(|_| {
        ApiError::BadRequest(format!("{key}: invalid value {value:?}: must be a number"))
    })
}

fn form_urlencoded(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1])
                .zip(hex(bytes[i + 2]))
                .map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str) -> ResourceRequest {
        parse(&method, path, None)
            .expect("parses")
            .expect("is a resource path")
    }

    #[test]
    fn namespaced_item_paths() {
        let r = req(Method::GET, "/api/v1/namespaces/default/pods/web");
        assert_eq!(r.resource.kind, "Pod");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.verb, Verb::Get);
    }

    #[test]
    fn namespace_status_is_a_subresource_of_the_namespace() {
        let r = req(Method::PUT, "/api/v1/namespaces/dev/status");
        assert_eq!(r.resource.kind, "Namespace");
        assert_eq!(r.name.as_deref(), Some("dev"));
        assert_eq!(
            r.subresource,
            Some(SubresourceName::Stored(Subresource::Status))
        );
        let r = req(Method::GET, "/api/v1/namespaces/dev");
        assert_eq!(r.resource.kind, "Namespace");
        assert_eq!(r.verb, Verb::Get);
    }

    #[test]
    fn group_paths_and_watch() {
        let r = parse(
            &Method::GET,
            "/apis/apps/v1/deployments",
            Some("watch=true&labelSelector=app%3Dweb"),
        )
        .expect("parses")
        .expect("resource");
        assert_eq!(r.verb, Verb::Watch);
        assert_eq!(r.query.label_selector.as_deref(), Some("app=web"));
        assert!(r.namespace.is_none());
    }

    #[test]
    fn unknown_resources_are_not_found() {
        let err = parse(&Method::GET, "/api/v1/widgets", None).expect_err("unknown");
        assert_eq!(err.code(), 404);
    }

    #[test]
    fn bad_field_validation_is_rejected() {
        assert!(Query::parse(Some("fieldValidation=Loose")).is_err());
    }

    #[test]
    fn percent_decoding_handles_truncated_escapes() {
        assert_eq!(percent_decode("a%3Db"), "a=b");
        assert_eq!(percent_decode("a%3"), "a%3");
        assert_eq!(percent_decode("a%"), "a%");
    }
}
