//! Starts the control plane: opens the store, creates the initial
//! objects, starts the background loops and serves the API.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::apiserver::{self, ApiState};
use crate::store::{Store, StoreError, StoreOptions};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to serve the API on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    pub datastore: String,
    pub data_dir: PathBuf,
    pub store: StoreOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening the datastore")]
    Store(#[from] StoreError),
    #[error("listening on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the initial objects: {0}")]
    Bootstrap(wasmpod_api::ApiError),
    #[error("serving the API")]
    Serve(#[source] std::io::Error),
}

/// A control plane that is listening.
pub struct Server {
    pub addr: SocketAddr,
    pub state: ApiState,
    listener: TcpListener,
}

impl Server {
    /// Opens the store, binds the listener and creates the initial objects.
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let store = Store::open(&config.datastore, config.store.clone()).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: config.listen,
                source,
            })?;
        let (ns_tx, ns_rx) = tokio::sync::mpsc::unbounded_channel();
        let state = ApiState::new(store, ns_tx);
        crate::bootstrap::ensure(&state, addr.port())
            .await
            .map_err(ServerError::Bootstrap)?;
        tokio::spawn(apiserver::namespace_finalizer::run(state.clone(), ns_rx));
        Ok(Server {
            addr,
            state,
            listener,
        })
    }

    /// Serves until `shutdown` completes. Closing the store then ends every
    /// open watch, so the server stops promptly instead of waiting for
    /// long-lived watch connections.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let store = self.state.store.clone();
        tracing::info!(addr = %self.addr, "API server listening");
        let app = apiserver::router(self.state);
        let closing = store.clone();
        let stop = async move {
            shutdown.await;
            closing.close().await;
        };
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(ServerError::Serve);
        store.close().await;
        result
    }
}
