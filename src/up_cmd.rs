//! `wasmpod up`: an all-in-one cluster in one process — the API server on
//! SQLite and one node — with the examples deployed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::examples;
use crate::node_cmd::{self, Node};
use crate::server_cmd;
use crate::shutdown::Shutdown;

pub struct Options {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The examples dir whose manifests are deployed, if any.
    pub examples: Option<PathBuf>,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let manifests = match &opts.examples {
        Some(dir) => examples::load(dir)?,
        None => Vec::new(),
    };
    let started = server_cmd::start(server_cmd::Options {
        data_dir: opts.data_dir,
        datastore: None,
        listen: opts.listen,
        watch_window: 10_000,
        node_health: Default::default(),
        pod_network: Default::default(),
    })
    .await?;
    let api_addr = loopback(started.server.addr);
    let loopback_ip = api_addr.ip();
    let base_url = format!("http://{api_addr}");
    let node_name = node_cmd::default_name();
    // The cluster lives on this host: the node is reached on loopback.
    let mut node_options = node_cmd::Options::new(
        base_url.clone(),
        node_name.clone(),
        started.data.path.join("node"),
    );
    node_options.node_ip = Some(loopback_ip);
    node_options.listen = Some(SocketAddr::new(loopback_ip, 0));
    let node = Node::prepare(node_options).await?;
    let shutdown = Shutdown::on_signal();
    let server = tokio::spawn(started.server.serve(shutdown.clone().wait()));
    let agent = tokio::spawn(node.run(shutdown.clone()));
    examples::deploy(&base_url, &manifests)
        .await
        .context("deploying the examples")?;
    println!(
        "wasmpod is up at {base_url} with node {node_name}\n\n  export KUBECONFIG={kc}\n  kubectl get pods\n",
        kc = started.kubeconfig.display()
    );
    // The first to fail ends `up`; both end on SIGINT or SIGTERM.
    tokio::try_join!(
        async {
            server
                .await
                .context("the API server panicked")?
                .map_err(anyhow::Error::from)
        },
        async { agent.await.context("the node agent panicked")? },
    )?;
    drop(started.data);
    Ok(())
}

/// The address clients in this process use: a wildcard listen address is
/// reached on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}
