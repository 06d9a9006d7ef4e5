//! `wasmpod push FILE [--tag NAME[:TAG]]`: uploads a wasm module to the
//! control plane's module store and prints the reference pods can name as
//! their `image` (`app:v1@sha256:<hex>`, or the digest alone without a tag).
//!
//! The server is `--server`, else the current context's cluster of the
//! kubeconfig (`$KUBECONFIG`, else `~/.kube/config`), whose user's token is
//! sent unless `--token` is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use wasmpod_api::module_ref::{MODULES_PATH, TagRef};

/// How long an upload may take (modules go up to 256 MiB).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags of `wasmpod push`.
#[derive(Debug, Clone)]
pub struct Options {
    pub file: PathBuf,
    pub tag: Option<String>,
    pub server: Option<String>,
    pub token: Option<String>,
}

/// Where to push and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    server: String,
    token: Option<String>,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if let Some(tag) = &opts.tag {
        TagRef::parse(tag).map_err(|e| anyhow!("--tag: {e}"))?;
    }
    let target = target(&opts)?;
    let bytes = tokio::fs::read(&opts.file)
        .await
        .with_context(|| format!("reading {}", opts.file.display()))?;
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(UPLOAD_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let url = format!("{}{MODULES_PATH}", target.server.trim_end_matches('/'));
    let mut request = http
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .body(bytes);
    if let Some(tag) = &opts.tag {
        request = request.query(&[("tag", tag)]);
    }
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    let file = opts.file.display();
    let response = request
        .send()
        .await
        .with_context(|| format!("pushing {file} to {}", target.server))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("pushing {file} to {}: reading the answer", target.server))?;
    if !status.is_success() {
        let message = body["message"].as_str().unwrap_or("no message");
        bail!("pushing {file} to {}: {status}: {message}", target.server);
    }
    let Some(reference) = body["reference"].as_str() else {
        bail!(
            "pushing {file} to {}: the answer has no reference: {body}",
            target.server
        );
    };
    tracing::debug!(digest = ?body["digest"], size = ?body["size"], "module pushed");
    println!("{reference}");
    Ok(())
}

/// The server and token from the flags, else from the kubeconfig.
fn target(opts: &Options) -> anyhow::Result<Target> {
    if let Some(server) = &opts.server {
        return Ok(Target {
            server: server.clone(),
            token: opts.token.clone(),
        });
    }
    let path = kubeconfig_path().ok_or_else(|| {
        anyhow!("no --server given and no kubeconfig found ($KUBECONFIG or ~/.kube/config)")
    })?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let mut target =
        from_kubeconfig(&text).with_context(|| format!("the kubeconfig {}", path.display()))?;
    if opts.token.is_some() {
        target.token = opts.token.clone();
    }
    Ok(target)
}

/// The first existing file of `$KUBECONFIG` (a path list), else
/// `~/.kube/config` when it exists.
fn kubeconfig_path() -> Option<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG") {
        return std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty() && p.exists());
    }
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home).join(".kube").join("config");
    path.exists().then_some(path)
}

/// The current context's server and its user's token.
fn from_kubeconfig(text: &str) -> anyhow::Result<Target> {
    let config: serde_yaml::Value = serde_yaml::from_str(text).context("not valid YAML")?;
    let current = config["current-context"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| anyhow!("current-context is not set"))?;
    let named = |list: &str, name: &str| {
        config[list]
            .as_sequence()
            .and_then(|items| items.iter().find(|i| i["name"].as_str() == Some(name)))
            .cloned()
    };
    let context =
        named("contexts", current).ok_or_else(|| anyhow!("contexts has no context {current:?}"))?;
    let cluster_name = context["context"]["cluster"]
        .as_str()
        .ok_or_else(|| anyhow!("context {current:?} names no cluster"))?;
    let cluster = named("clusters", cluster_name)
        .ok_or_else(|| anyhow!("clusters has no cluster {cluster_name:?}"))?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or_else(|| anyhow!("cluster {cluster_name:?} has no server"))?;
    let token = context["context"]["user"]
        .as_str()
        .and_then(|user| named("users", user))
        .and_then(|user| user["user"]["token"].as_str().map(str::to_string));
    Ok(Target {
        server: server.to_string(),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: http://10.0.0.1:6443
- name: wasmpod
  cluster:
    server: http://127.0.0.1:7443
contexts:
- name: wasmpod
  context:
    cluster: wasmpod
    user: admin
current-context: wasmpod
users:
- name: admin
  user:
    token: s3cret
";

    #[test]
    fn the_current_context_names_server_and_token() {
        let target = from_kubeconfig(KUBECONFIG).expect("a target");
        assert_eq!(
            target,
            Target {
                server: "http://127.0.0.1:7443".into(),
                token: Some("s3cret".into())
            }
        );
        let admin = crate::kubeconfig::render("127.0.0.1:6443".parse().expect("an address"));
        let target = from_kubeconfig(&admin).expect("the admin kubeconfig");
        assert_eq!(target.server, "http://127.0.0.1:6443");
        assert_eq!(target.token, None);
    }

    #[test]
    fn a_kubeconfig_without_a_usable_context_is_an_error() {
        let no_current = KUBECONFIG.replace("current-context: wasmpod", "");
        assert!(from_kubeconfig(&no_current).is_err());
        let dangling = KUBECONFIG.replace("cluster: wasmpod\n    user", "cluster: gone\n    user");
        let err = from_kubeconfig(&dangling).expect_err("no such cluster");
        assert!(err.to_string().contains("gone"), "{err}");
        assert!(from_kubeconfig(": not yaml: [").is_err());
    }

    #[test]
    fn flags_win_over_the_kubeconfig() {
        let opts = Options {
            file: "m.wasm".into(),
            tag: None,
            server: Some("http://127.0.0.1:1".into()),
            token: Some("t".into()),
        };
        let target = target(&opts).expect("a target");
        assert_eq!(target.server, "http://127.0.0.1:1");
        assert_eq!(target.token.as_deref(), Some("t"));
    }
}
