//! Field paths as Kubernetes prints them (`spec.containers[0].ports[1].name`)
//! and the few `FieldError` shapes and numeric checks every kind repeats.

use std::fmt;

use crate::error::FieldError;

/// A field path: `child` appends `.name`, `index` appends `[i]`, `key`
/// appends `[key]`, exactly as apimachinery's `field.Path` renders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(String);

impl Path {
    /// A path starting at `root` (e.g. `spec`); an empty root is allowed.
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, key: &str) -> Self {
        Path(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(path: Path) -> String {
        path.0
    }
}

impl From<&Path> for String {
    fn from(path: &Path) -> String {
        path.0.clone()
    }
}

/// `Required value: <detail>`, the form `field.Required(path, detail)` prints.
pub fn required_because(path: impl Into<String>, detail: &str) -> FieldError {
    let mut error = FieldError::required(path);
    if !detail.is_empty() {
        error.message = format!("Required value: {detail}");
    }
    error
}

/// `Not found: "<value>"`, for references to something that is not declared.
pub fn not_found(path: impl Into<String>, value: impl fmt::Display) -> FieldError {
    FieldError {
        field: path.into(),
        reason: "FieldValueNotFound",
        message: format!("Not found: \"{value}\""),
    }
}

/// One `Invalid` error per message, as the `Is*` checks return them.
pub fn invalid_each(path: &Path, value: &str, messages: Vec<String>) -> Vec<FieldError> {
    messages
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

pub const NONNEGATIVE: &str = "must be greater than or equal to 0";
pub const POSITIVE: &str = "must be greater than 0";

pub fn nonnegative(errors: &mut Vec<FieldError>, path: &Path, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errors.push(FieldError::invalid(path, v, NONNEGATIVE));
    }
}

pub fn positive(errors: &mut Vec<FieldError>, path: &Path, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v <= 0) {
        errors.push(FieldError::invalid(path, v, POSITIVE));
    }
}

/// `must be between lo and hi, inclusive`, apimachinery's `InclusiveRangeError`.
pub fn inclusive_range(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Reports `value` as unsupported unless it is one of `allowed`; an empty
/// value is reported as required.
pub fn one_of(errors: &mut Vec<FieldError>, path: &Path, value: Option<&str>, allowed: &[&str]) {
    match value {
        None | Some("") => errors.push(FieldError::required(path)),
        Some(v) if !allowed.contains(&v) => {
            errors.push(FieldError::not_supported(path, v, allowed))
        }
        Some(_) => {}
    }
}

/// Like `one_of`, but an unset value is fine.
pub fn optional_one_of(
    errors: &mut Vec<FieldError>,
    path: &Path,
    value: Option<&str>,
    allowed: &[&str],
) {
    if let Some(v) = value {
        one_of(errors, path, Some(v), allowed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_like_apimachinery() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("resources")
            .child("limits")
            .key("cpu");
        assert_eq!(p.as_str(), "spec.containers[0].resources.limits[cpu]");
        assert_eq!(Path::new("").child("data").as_str(), "data");
    }

    #[test]
    fn required_because_carries_detail() {
        assert_eq!(
            required_because("spec.x", "why").message,
            "Required value: why"
        );
        assert_eq!(required_because("spec.x", "").message, "Required value");
    }
}
