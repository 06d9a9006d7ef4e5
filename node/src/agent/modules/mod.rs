//! Getting a container's module: parses its `image` ([`reference`]),
//! honours `imagePullPolicy` against the node's module cache ([`cache`]),
//! downloads from the control plane's module store or a URL ([`fetch`]) and
//! verifies every digest, so the runtime only ever loads bytes whose digest
//! is known.
//!
//! Policies, as Kubernetes applies them to images:
//! - `Never`: the cache only (a tag or URL by the digest it resolved to
//!   last); otherwise `ErrImageNeverPull`.
//! - `IfNotPresent`: the cache when it has the module, else a download.
//! - `Always`: tags are resolved again and unpinned URLs downloaded again;
//!   a module already cached under the resulting digest is not.
//!
//! `file://` modules are read from the node's disk under every policy.

pub mod cache;
pub mod fetch;
pub mod reference;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use cache::{ModuleCache, digest_of};
use fetch::{FetchError, ModuleStore, UrlSource};
use reference::ModuleRef;
use wasmpod_api::module_ref::TagRef;

use super::container_runtime::{PullPolicy, StartError};

/// A module ready to load: its bytes and their digest (`sha256:<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub bytes: Vec<u8>,
    pub digest: String,
}

/// Setting up a [`ModuleFetcher`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("could not build the HTTP client for module downloads")]
    Http(#[source] reqwest::Error),
}

/// Fetches containers' modules: see the module documentation.
#[derive(Clone)]
pub struct ModuleFetcher {
    /// None: only `file://` modules can be had.
    cache: Option<ModuleCache>,
    store: Option<Arc<dyn ModuleStore>>,
    urls: Option<UrlSource>,
}

impl std::fmt::Debug for ModuleFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleFetcher")
            .field("cache", &self.cache.as_ref().map(ModuleCache::dir))
            .field("store", &self.store.is_some())
            .field("urls", &self.urls.is_some())
            .finish()
    }
}

impl ModuleFetcher {
    /// Reads `file://` modules only; every other reference fails with
    /// `ErrImagePull`.
    pub fn files_only() -> ModuleFetcher {
        ModuleFetcher {
            cache: None,
            store: None,
            urls: None,
        }
    }

    /// Caches modules in `cache_dir` (the node's `<data dir>/modules`) and
    /// downloads `https://`/`http://` modules. Pushed modules need
    /// [`ModuleFetcher::with_store`] as well.
    pub fn new(cache_dir: impl Into<std::path::PathBuf>) -> Result<ModuleFetcher, SetupError> {
        Ok(ModuleFetcher {
            cache: Some(ModuleCache::new(cache_dir)),
            store: None,
            urls: Some(UrlSource::new().map_err(SetupError::Http)?),
        })
    }

    /// Fetches pushed modules (`app:v1`, `sha256:<hex>`) from `store`,
    /// normally the node's `ApiClient`.
    pub fn with_store(mut self, store: impl ModuleStore) -> ModuleFetcher {
        self.store = Some(Arc::new(store));
        self
    }

    /// Downloads URLs with `urls` (a different size cap, in tests).
    pub fn with_url_source(mut self, urls: UrlSource) -> ModuleFetcher {
        self.urls = Some(urls);
        self
    }

    /// The module `image` names, under `policy`, with its digest verified.
    pub async fn fetch(&self, image: &str, policy: PullPolicy) -> Result<Module, StartError> {
        let reference = ModuleRef::parse(image)?;
        let module = match &reference {
            ModuleRef::File { path, .. } => read_file(path, policy).await?,
            ModuleRef::Digest { digest } => self.by_digest(image, digest, policy).await?,
            ModuleRef::Tag {
                pinned: Some(digest),
                ..
            } => self.by_digest(image, digest, policy).await?,
            ModuleRef::Tag { tag, pinned: None } => self.by_tag(image, tag, policy).await?,
            ModuleRef::Url { url, pinned } => {
                self.by_url(image, url, pinned.as_deref(), policy).await?
            }
        };
        if let Some(pinned) = reference.pinned()
            && module.digest != pinned
        {
            return Err(StartError::ImagePull(format!(
                "{image}: digest {} does not match the pinned {pinned}",
                module.digest
            )));
        }
        Ok(module)
    }

    fn cache(&self, image: &str) -> Result<&ModuleCache, StartError> {
        self.cache.as_ref().ok_or_else(|| {
            StartError::ImagePull(format!(
                "{image}: this node has no module cache; it runs file:// modules only"
            ))
        })
    }

    fn store(&self, image: &str) -> Result<&dyn ModuleStore, StartError> {
        self.store.as_deref().ok_or_else(|| {
            StartError::ImagePull(format!(
                "{image}: this node is not connected to a module store"
            ))
        })
    }

    /// A pushed module by digest: the cache, else the store.
    async fn by_digest(
        &self,
        image: &str,
        digest: &str,
        policy: PullPolicy,
    ) -> Result<Module, StartError> {
        let cache = self.cache(image)?;
        if let Some(module) = cached(image, cache, digest).await? {
            return Ok(module);
        }
        if policy == PullPolicy::Never {
            return Err(never_pull(image));
        }
        self.blob_from_store(image, cache, digest).await
    }

    /// A pushed module by tag: the tag's last digest from the cache unless
    /// the policy is `Always`, else the tag resolved by the store.
    async fn by_tag(
        &self,
        image: &str,
        tag: &TagRef,
        policy: PullPolicy,
    ) -> Result<Module, StartError> {
        let cache = self.cache(image)?;
        let record = format!("tag:{tag}");
        if policy != PullPolicy::Always {
            if let Some(module) = self.recorded(image, cache, &record).await? {
                return Ok(module);
            }
            if policy == PullPolicy::Never {
                return Err(never_pull(image));
            }
        }
        let store = self.store(image)?;
        let digest = store
            .resolve_tag(tag)
            .await
            .map_err(|e| pull_error(image, &e))?;
        wasmpod_api::module_ref::validate_digest(&digest).map_err(|e| {
            StartError::ImagePull(format!("{image}: the module store answered {e}"))
        })?;
        let module = match cached(image, cache, &digest).await? {
            Some(module) => module,
            None => self.blob_from_store(image, cache, &digest).await?,
        };
        remember(cache, &record, &digest).await;
        Ok(module)
    }

    /// A URL: the cache by its pin (or its last digest, unless `Always`),
    /// else a download.
    async fn by_url(
        &self,
        image: &str,
        url: &str,
        pinned: Option<&str>,
        policy: PullPolicy,
    ) -> Result<Module, StartError> {
        let cache = self.cache(image)?;
        let record = format!("url:{url}");
        let hit = match pinned {
            Some(digest) => cached(image, cache, digest).await?,
            None if policy != PullPolicy::Always => self.recorded(image, cache, &record).await?,
            None => None,
        };
        if let Some(module) = hit {
            return Ok(module);
        }
        if policy == PullPolicy::Never {
            return Err(never_pull(image));
        }
        let urls = self.urls.as_ref().ok_or_else(|| {
            StartError::ImagePull(format!("{image}: this node does not download modules"))
        })?;
        let bytes = urls.fetch(url).await.map_err(|e| pull_error(image, &e))?;
        check_wasm(image, &bytes)?;
        let digest = digest_of(&bytes);
        if pinned.is_some_and(|p| p != digest) {
            // Checked again by the caller; nothing unverified is cached.
            return Ok(Module { bytes, digest });
        }
        store_in_cache(image, cache, &digest, &bytes).await?;
        remember(cache, &record, &digest).await;
        Ok(Module { bytes, digest })
    }

    async fn recorded(
        &self,
        image: &str,
        cache: &ModuleCache,
        record: &str,
    ) -> Result<Option<Module>, StartError> {
        let digest = cache
            .resolved(record)
            .await
            .map_err(|e| cache_error(image, &e))?;
        match digest {
            Some(digest) => cached(image, cache, &digest).await,
            None => Ok(None),
        }
    }

    /// Downloads `digest` from the store, verifies and caches it.
    async fn blob_from_store(
        &self,
        image: &str,
        cache: &ModuleCache,
        digest: &str,
    ) -> Result<Module, StartError> {
        let bytes = self
            .store(image)?
            .fetch_blob(digest)
            .await
            .map_err(|e| pull_error(image, &e))?;
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(StartError::ImagePull(format!(
                "{image}: the module store sent bytes with digest {actual} for {digest}"
            )));
        }
        check_wasm(image, &bytes)?;
        store_in_cache(image, cache, digest, &bytes).await?;
        Ok(Module {
            bytes,
            digest: actual,
        })
    }
}

async fn cached(
    image: &str,
    cache: &ModuleCache,
    digest: &str,
) -> Result<Option<Module>, StartError> {
    let bytes = cache
        .get(digest)
        .await
        .map_err(|e| cache_error(image, &e))?;
    Ok(bytes.map(|bytes| Module {
        bytes,
        digest: digest.to_string(),
    }))
}

async fn store_in_cache(
    image: &str,
    cache: &ModuleCache,
    digest: &str,
    bytes: &[u8],
) -> Result<(), StartError> {
    cache
        .put(digest, bytes.to_vec())
        .await
        .map_err(|e| cache_error(image, &e))
}

/// Records a resolution; a failure only costs a later offline start.
async fn remember(cache: &ModuleCache, record: &str, digest: &str) {
    if let Err(e) = cache.record(record, digest).await {
        tracing::warn!(%record, %digest, error = %e, "recording a module reference in the cache");
    }
}

async fn read_file(path: &std::path::Path, policy: PullPolicy) -> Result<Module, StartError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Module {
            digest: digest_of(&bytes),
            bytes,
        }),
        Err(e) if policy == PullPolicy::Never && e.kind() == std::io::ErrorKind::NotFound => {
            Err(StartError::ImageNeverPull(format!(
                "{} is not on the node and the pull policy is Never",
                path.display()
            )))
        }
        Err(e) => Err(StartError::ImagePull(format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

/// Downloaded bytes that are not wasm are reported before they are cached.
fn check_wasm(image: &str, bytes: &[u8]) -> Result<(), StartError> {
    if bytes.starts_with(b"\0asm") {
        Ok(())
    } else {
        Err(StartError::InvalidImage(format!(
            "{image}: the download is not a WebAssembly module"
        )))
    }
}

fn never_pull(image: &str) -> StartError {
    StartError::ImageNeverPull(format!(
        "{image} is not in the node's module cache and the pull policy is Never"
    ))
}

fn pull_error(image: &str, e: &FetchError) -> StartError {
    StartError::ImagePull(format!("{image}: {e}"))
}

fn cache_error(image: &str, e: &std::io::Error) -> StartError {
    StartError::ImagePull(format!("{image}: the node's module cache: {e}"))
}
