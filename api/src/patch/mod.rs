//! The three patch types a PATCH request can carry (JSON merge patch,
//! JSON patch, strategic merge patch), each a pure function over JSON
//! values so the API server only decides which one to call.

mod json;
mod strategic;

pub use json::{MAX_JSON_PATCH_OPERATIONS, json_patch, merge_patch};
pub use strategic::strategic_merge_patch;

/// Why a patch could not be applied; the message is fit for a `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed (not a list of operations, not an
    /// object, a directive of the wrong shape).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well-formed but cannot be applied to this object.
    #[error("{0}")]
    Invalid(String),
    /// One JSON patch operation failed; nothing was changed.
    #[error("json patch {op} operation {index} failed at path \"{path}\": {reason}")]
    OperationFailed {
        index: usize,
        op: &'static str,
        path: String,
        reason: String,
    },
    /// More JSON patch operations than the server accepts.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// Strategic merge patch needs the kind's schema; this kind has none.
    #[error("strategic merge patch is not supported for {0}")]
    Unsupported(String),
}

impl PatchError {
    /// The HTTP status Kubernetes answers this failure with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Invalid(_) | PatchError::OperationFailed { .. } => 422,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Unsupported(_) => 415,
        }
    }
}
