//! The names, tags and digests of pushed modules: the one grammar the
//! module store checks when a module is pushed and the node uses when it
//! resolves a container's `image`, so both agree on what a reference means.
//!
//! A name is a lowercase image-name path as in container image references
//! (`app`, `team/app`, `my-app.v2`); a tag is `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`;
//! a digest is `sha256:` and 64 lowercase hex digits.

/// Where the API serves modules by digest (`{MODULES_PATH}/sha256:<hex>`)
/// and takes pushes (`POST {MODULES_PATH}?tag=NAME:TAG`).
pub const MODULES_PATH: &str = "/wasmpod/v1/modules";

/// Where the API serves tags (`{TAGS_PATH}/NAME:TAG`, and the list).
pub const TAGS_PATH: &str = "/wasmpod/v1/tags";

/// The tag a name without one stands for.
pub const DEFAULT_TAG: &str = "latest";

/// The longest name accepted, as in container image references.
pub const MAX_NAME_LEN: usize = 255;

/// The longest tag accepted.
pub const MAX_TAG_LEN: usize = 128;

/// Why a name, tag or digest is not valid; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReference(pub String);

/// A module's name and tag (`app:v1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagRef {
    pub name: String,
    pub tag: String,
}

impl TagRef {
    /// Parses `NAME[:TAG]`; a missing tag is [`DEFAULT_TAG`].
    pub fn parse(reference: &str) -> Result<TagRef, InvalidReference> {
        let (name, tag) = split_tag(reference);
        validate_name(name)?;
        let tag = tag.unwrap_or(DEFAULT_TAG);
        validate_tag(tag)?;
        Ok(TagRef {
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }
}

impl std::fmt::Display for TagRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// Splits `NAME:TAG` at the last colon (a name has none); `None` when there
/// is no tag.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    match reference.rsplit_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (reference, None),
    }
}

/// A name: path components of `[a-z0-9]` runs joined by one `.`, one or
/// two `_`, or any number of `-`, separated by `/`. The bare name `sha256`
/// is refused, since `sha256:<hex>` is a digest reference.
pub fn validate_name(name: &str) -> Result<(), InvalidReference> {
    let invalid = |why: &str| InvalidReference(format!("invalid module name {name:?}: {why}"));
    if name.is_empty() {
        return Err(invalid("the name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(&format!("longer than {MAX_NAME_LEN} characters")));
    }
    if name == "sha256" {
        return Err(invalid("it would read as a digest"));
    }
    for component in name.split('/') {
        if !valid_component(component) {
            return Err(invalid(
                "each /-separated part is lowercase letters and digits, joined by '.', '_', '__' or dashes",
            ));
        }
    }
    Ok(())
}

fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), InvalidReference> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = match tag.as_bytes() {
        [] => false,
        [first, rest @ ..] => {
            tag.len() <= MAX_TAG_LEN
                && word(*first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidReference(format!(
            "invalid module tag {tag:?}: a tag is up to {MAX_TAG_LEN} letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        )))
    }
}

/// A digest: `sha256:` and 64 lowercase hex digits.
pub fn validate_digest(digest: &str) -> Result<(), InvalidReference> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(InvalidReference(format!(
            "invalid digest {digest:?}: a digest is sha256: and 64 lowercase hex digits"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_image_name_grammar() {
        for ok in ["app", "team/app", "a.b", "a_b", "a__b", "a---b", "x1/y2/z3"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "App", "a..b", "a___b", "-a", "a-", "a//b", "/a", "a/", "a:b", "a b", "sha256",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn tags_follow_the_tag_grammar() {
        for ok in ["v1", "latest", "_x", "1.0-rc.1", "V_2"] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".v1", "-v1", "v/1", "v:1"] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        assert!(validate_tag(&"a".repeat(MAX_TAG_LEN)).is_ok());
        assert!(validate_tag(&"a".repeat(MAX_TAG_LEN + 1)).is_err());
    }

    #[test]
    fn a_missing_tag_is_latest() {
        let r = TagRef::parse("team/app").expect("valid");
        assert_eq!(r.to_string(), "team/app:latest");
        let r = TagRef::parse("app:v1").expect("valid");
        assert_eq!((r.name.as_str(), r.tag.as_str()), ("app", "v1"));
        assert!(TagRef::parse("app:").is_err());
        assert!(TagRef::parse("App:v1").is_err());
    }

    #[test]
    fn digests_are_lowercase_sha256() {
        assert!(validate_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(validate_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(validate_digest(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(validate_digest("sha256:abc").is_err());
    }
}
