//! The authentication and authorization seam: one middleware every API
//! request passes through. It attaches the requesting user to the request.
//!
//! Until credentials are issued (admin token, node join tokens, service
//! account tokens), every request is the cluster administrator; the server
//! therefore listens on loopback by default.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn admin() -> Self {
        Self {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }
}

/// Authenticates the request and records the user as a request extension.
pub async fn authenticate(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(UserInfo::admin());
    next.run(request).await
}
