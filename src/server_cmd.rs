//! `wasmpod server`: run the control plane until SIGINT or SIGTERM. `wasmpod
//! up` starts the same server through [`start`].

use std::net::SocketAddr;
use std::path::PathBuf;

use wasmpod_control::controllers::node_ipam::NodeIpamSettings;
use wasmpod_control::server::{NodeHealth, Server, ServerConfig};
use wasmpod_control::store::StoreOptions;

use crate::data_dir::DataDir;
use crate::kubeconfig;
use crate::shutdown::Shutdown;

pub struct Options {
    pub data_dir: PathBuf,
    pub datastore: Option<String>,
    pub listen: SocketAddr,
    pub watch_window: usize,
    pub node_health: NodeHealth,
    pub pod_network: NodeIpamSettings,
}

/// A bound API server, its admin kubeconfig and the lock on its data dir.
pub struct Started {
    pub server: Server,
    pub kubeconfig: PathBuf,
    pub data: DataDir,
}

/// Opens the data dir and the store, binds the API and writes the kubeconfig.
pub async fn start(opts: Options) -> anyhow::Result<Started> {
    let data = DataDir::open(&opts.data_dir)?;
    let datastore = opts.datastore.unwrap_or_else(|| data.sqlite_url());
    let config = ServerConfig {
        listen: opts.listen,
        datastore,
        data_dir: data.path.clone(),
        store: StoreOptions {
            watch_window: opts.watch_window,
            ..StoreOptions::default()
        },
        controllers: true,
        node_health: opts.node_health,
        pod_network: opts.pod_network,
    };
    let server = Server::bind(config).await?;
    let kubeconfig = kubeconfig::write(&data.path, server.addr)?;
    Ok(Started {
        server,
        kubeconfig,
        data,
    })
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let started = start(opts).await?;
    started.server.serve(Shutdown::on_signal().wait()).await?;
    drop(started.data);
    Ok(())
}
