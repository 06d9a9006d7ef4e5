//! Label and field selectors as the API server applies them to list,
//! watch and deletecollection, and as controllers use them to find the
//! objects they own.

mod field;
mod label;
mod names;
mod parser;

pub use field::{FieldOperator, FieldRequirement, FieldSelector, field_value, supported_fields};
pub use label::{LabelSelector, Operator, Requirement};
pub use names::{is_dns1123_subdomain, is_qualified_name, is_valid_label_value};

/// Why a selector was refused; every message can go into a 400 `Status`
/// as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector term that does not parse or is invalid.
    #[error("unable to parse requirement: {0}")]
    ParseRequirement(String),
    /// A label selector whose terms are not separated properly.
    #[error("{0}")]
    Parse(String),
    /// A requirement with an invalid key, value or value count.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `matchExpressions` operator other than In, NotIn, Exists, DoesNotExist.
    #[error("\"{0}\" is not a valid label selector operator")]
    UnknownOperator(String),
    /// A field selector term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A field selector value with a bad escape or an unescaped `,` or `=`.
    #[error("invalid field selector: {0}")]
    FieldValue(String),
    /// A field the kind cannot be selected by.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}
