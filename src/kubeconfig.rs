//! The admin kubeconfig: written into the data dir when the API starts,
//! printed by `wasmpod kubeconfig`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("kubeconfig.yaml")
}

/// The kubeconfig text for an API served at `addr`.
pub fn render(addr: SocketAddr) -> String {
    // A wildcard listen address is reachable on loopback.
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let host = if addr.is_ipv6() && !addr.ip().is_unspecified() {
        format!("[{host}]")
    } else {
        host
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: wasmpod
  cluster:
    server: http://{host}:{port}
contexts:
- name: wasmpod
  context:
    cluster: wasmpod
    user: admin
    namespace: default
current-context: wasmpod
users:
- name: admin
  user: {{}}
preferences: {{}}
",
        port = addr.port()
    )
}

pub fn write(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<PathBuf> {
    let p = path(data_dir);
    std::fs::write(&p, render(addr)).with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

pub fn read(data_dir: &Path) -> anyhow::Result<String> {
    let p = path(data_dir);
    std::fs::read_to_string(&p).with_context(|| {
        format!(
            "reading {} (start `wasmpod up` or `wasmpod server` with this data dir first)",
            p.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_become_loopback() {
        let text = render("0.0.0.0:6443".parse().expect("addr"));
        assert!(text.contains("server: http://127.0.0.1:6443"));
        let parsed: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid yaml");
        assert_eq!(parsed["current-context"], "wasmpod");
    }
}
