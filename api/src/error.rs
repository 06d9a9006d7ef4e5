//! The one error type of the API: every failure a request can meet, each
//! rendering to a Kubernetes `Status` with the HTTP code and reason clients
//! (kubectl, client-go) switch on.

use serde_json::{Value, json};

/// One invalid field, as a `StatusCause` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `spec.containers[0].name`.
    pub field: String,
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueDuplicate`,
    /// `FieldValueNotSupported`, `FieldValueForbidden`, `FieldValueTooLong`.
    pub reason: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueRequired",
            message: "Required value".into(),
        }
    }
    pub fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        detail: impl std::fmt::Display,
    ) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: \"{value}\": {detail}"),
        }
    }
    pub fn duplicate(field: impl Into<String>, value: impl std::fmt::Display) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: \"{value}\""),
        }
    }
    pub fn not_supported(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        supported: &[&str],
    ) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            field: field.into(),
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: \"{value}\": supported values: {list}"),
        }
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {}", detail.into()),
        }
    }
    pub fn immutable(field: impl Into<String>) -> Self {
        Self::forbidden(field, "field is immutable")
    }
    /// The same error with another message (the reason is kept).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            field: field.into(),
            reason: "FieldValueTooLong",
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Identifies the object an error is about, for `Status.details`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    /// Resource (plural) for NotFound/AlreadyExists/Conflict; kind for Invalid.
    pub kind: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    NotFound { target: Target, message: String },
    #[error("{message}")]
    AlreadyExists { target: Target, message: String },
    #[error("{message}")]
    Conflict { target: Target, message: String },
    #[error("{message}")]
    Invalid {
        target: Target,
        message: String,
        causes: Vec<FieldError>,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// A resourceVersion older than the watch window or a continue token past it.
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified(group, resource);
        ApiError::NotFound {
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
            message: format!("{qualified} \"{name}\" not found"),
        }
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified(group, resource);
        ApiError::AlreadyExists {
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
            message: format!("{qualified} \"{name}\" already exists"),
        }
    }
    pub fn conflict(group: &str, resource: &str, name: &str, detail: &str) -> Self {
        let qualified = qualified(group, resource);
        ApiError::Conflict {
            target: Target {
                group: group.into(),
                kind: resource.into(),
                name: name.into(),
            },
            message: format!("Operation cannot be fulfilled on {qualified} \"{name}\": {detail}"),
        }
    }
    /// 422 Invalid, with the message kubectl users know:
    /// `Pod "x" is invalid: spec.containers[0].name: Required value`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldError>) -> Self {
        let list = causes.iter().map(ToString::to_string).collect::<Vec<_>>();
        let body = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        ApiError::Invalid {
            target: Target {
                group: group.into(),
                kind: kind.into(),
                name: name.into(),
            },
            message: format!("{kind} \"{name}\" is invalid: {body}"),
            causes,
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Expired(_) => 410,
            ApiError::RequestEntityTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::Internal(_) => 500,
            ApiError::ServiceUnavailable(_) => 503,
            ApiError::Timeout(_) => 504,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound { .. } => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Expired(_) => "Expired",
            ApiError::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Internal(_) => "InternalError",
            ApiError::ServiceUnavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(_) => "Timeout",
        }
    }

    /// The `meta.k8s.io/v1 Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let target = match self {
            ApiError::NotFound { target, .. }
            | ApiError::AlreadyExists { target, .. }
            | ApiError::Conflict { target, .. }
            | ApiError::Invalid { target, .. } => Some(target),
            _ => None,
        };
        if let Some(t) = target {
            let mut details = json!({ "name": t.name, "kind": t.kind });
            if !t.group.is_empty() {
                details["group"] = json!(t.group);
            }
            if let ApiError::Invalid { causes, .. } = self {
                details["causes"] = causes
                    .iter()
                    .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                    .collect();
            }
            status["details"] = details;
        }
        status
    }
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_names_each_field() {
        let err = ApiError::invalid(
            "",
            "Pod",
            "web",
            vec![
                FieldError::required("spec.containers[0].name"),
                FieldError::required("spec.containers[0].image"),
            ],
        );
        let status = err.to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "Pod \"web\" is invalid: [spec.containers[0].name: Required value, spec.containers[0].image: Required value]"
        );
        assert_eq!(
            status["details"]["causes"][1]["field"],
            "spec.containers[0].image"
        );
    }

    #[test]
    fn not_found_message_qualifies_group() {
        let err = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(err.to_string(), "deployments.apps \"web\" not found");
        assert_eq!(err.to_status()["details"]["group"], "apps");
    }
}
