//! Parsing a container's `image` into the place its module comes from and
//! the digest it must have.

use std::path::PathBuf;

use wasmpod_api::module_ref::{self, TagRef};

use crate::agent::container_runtime::StartError;

/// Where a module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleRef {
    /// `file:///abs/path.wasm[@sha256:<hex>]`: a file on the node.
    File {
        path: PathBuf,
        pinned: Option<String>,
    },
    /// `sha256:<hex>`: a module pushed to the control plane, by digest.
    Digest { digest: String },
    /// `NAME[:TAG][@sha256:<hex>]`: a module pushed to the control plane,
    /// by tag (`latest` when none is given).
    Tag { tag: TagRef, pinned: Option<String> },
    /// `https://…` or `http://…` (for local mirrors), optionally pinned.
    Url { url: String, pinned: Option<String> },
}

impl ModuleRef {
    /// Parses `image`; a reference the node cannot read is
    /// `InvalidImageName` naming the image.
    pub fn parse(image: &str) -> Result<ModuleRef, StartError> {
        let invalid = |why: String| StartError::InvalidImageName(format!("{image}: {why}"));
        if image.is_empty() {
            return Err(invalid("the image is empty".into()));
        }
        if image.starts_with("sha256:") {
            module_ref::validate_digest(image).map_err(|e| invalid(e.to_string()))?;
            return Ok(ModuleRef::Digest {
                digest: image.to_string(),
            });
        }
        // An `@` in a file path or URL is not a pin unless a digest follows.
        let (location, pinned) = match image.rsplit_once('@') {
            Some((location, digest)) if digest.starts_with("sha256:") || !image.contains("://") => {
                module_ref::validate_digest(digest)
                    .map_err(|e| invalid(format!("a pinned digest: {e}")))?;
                (location, Some(digest.to_string()))
            }
            _ => (image, None),
        };
        if let Some(path) = location.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid("file:// references need an absolute path".into()));
            }
            return Ok(ModuleRef::File {
                path: PathBuf::from(path),
                pinned,
            });
        }
        if let Some(rest) = location
            .strip_prefix("https://")
            .or_else(|| location.strip_prefix("http://"))
        {
            let host = rest.split('/').next().unwrap_or("");
            if host.is_empty() || rest.chars().any(char::is_whitespace) {
                return Err(invalid("a module URL needs a host and no spaces".into()));
            }
            return Ok(ModuleRef::Url {
                url: location.to_string(),
                pinned,
            });
        }
        if location.contains("://") {
            return Err(invalid(
                "a module is file://, https://, http://, sha256:<hex> or NAME[:TAG]".into(),
            ));
        }
        let tag = TagRef::parse(location).map_err(|e| invalid(e.to_string()))?;
        Ok(ModuleRef::Tag { tag, pinned })
    }

    /// The digest the module must have, when the reference fixes one.
    pub fn pinned(&self) -> Option<&str> {
        match self {
            ModuleRef::Digest { digest } => Some(digest),
            ModuleRef::File { pinned, .. }
            | ModuleRef::Tag { pinned, .. }
            | ModuleRef::Url { pinned, .. } => pinned.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn every_kind_of_reference_parses() {
        let d = digest('a');
        assert_eq!(
            ModuleRef::parse(&format!("file:///m/app.wasm@{d}")).expect("valid"),
            ModuleRef::File {
                path: PathBuf::from("/m/app.wasm"),
                pinned: Some(d.clone())
            }
        );
        assert_eq!(
            ModuleRef::parse(&d).expect("valid"),
            ModuleRef::Digest { digest: d.clone() }
        );
        let tagged = ModuleRef::parse("team/app").expect("valid");
        assert_eq!(
            tagged,
            ModuleRef::Tag {
                tag: TagRef::parse("team/app:latest").expect("valid"),
                pinned: None
            }
        );
        let pinned = ModuleRef::parse(&format!("app:v1@{d}")).expect("valid");
        assert_eq!(pinned.pinned(), Some(d.as_str()));
        assert_eq!(
            ModuleRef::parse("https://example.com/m/app.wasm").expect("valid"),
            ModuleRef::Url {
                url: "https://example.com/m/app.wasm".into(),
                pinned: None
            }
        );
        assert!(matches!(
            ModuleRef::parse(&format!("http://127.0.0.1:8080/app.wasm@{d}")),
            Ok(ModuleRef::Url {
                pinned: Some(_),
                ..
            })
        ));
        assert_eq!(
            ModuleRef::parse("file:///m/a@b/app.wasm").expect("valid"),
            ModuleRef::File {
                path: PathBuf::from("/m/a@b/app.wasm"),
                pinned: None
            }
        );
    }

    #[test]
    fn bad_references_are_invalid_image_names_naming_the_image() {
        for image in [
            "",
            "file://relative.wasm",
            "sha256:abc",
            "App:v1",
            "app:v1@sha256:xyz",
            "app:-v1",
            "ftp://host/app.wasm",
            "https:///app.wasm",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            let err = ModuleRef::parse(image).expect_err(image);
            assert_eq!(err.reason(), "InvalidImageName", "{image}: {err}");
            assert!(err.to_string().starts_with(image), "{image}: {err}");
        }
    }
}
