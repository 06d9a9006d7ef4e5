//! `wasmpod server` and `wasmpod up`: run the control plane until SIGINT or
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use wasmpod_control::server::{Server, ServerConfig};
use wasmpod_control::store::StoreOptions;

use crate::data_dir::DataDir;
use crate::kubeconfig;

pub struct Options {
    pub data_dir: PathBuf,
    pub datastore: Option<String>,
    pub listen: SocketAddr,
    pub watch_window: usize,
    /// Print how to use the cluster once it is up (`wasmpod up`).
    pub announce: bool,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
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
    };
    let server = Server::bind(config).await?;
    let kubeconfig = kubeconfig::write(&data.path, server.addr)?;
    if opts.announce {
        println!(
            "wasmpod is up at http://{addr}\n\n  export KUBECONFIG={kc}\n  kubectl get namespaces\n",
            addr = server.addr,
            kc = kubeconfig.display()
        );
    }
    server.serve(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
