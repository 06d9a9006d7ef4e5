//! Real listeners on the node's interface whose connections are carried
//! into the virtual network: what NodePorts and hostPorts share.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use super::error::NetError;
use super::fabric::Fabric;

/// How many connections wait for the forwarder to accept them.
const BACKLOG: u32 = 1024;

/// Picks where a connection from a client goes (a pod address or a
/// Service's virtual IP and port).
pub(crate) type Target = Arc<dyn Fn(SocketAddr) -> Result<SocketAddr, NetError> + Send + Sync>;

/// A forwarding listener; dropping it closes the listener. Connections
/// already forwarded live on until either end closes.
#[derive(Debug)]
pub(crate) struct Forwarder {
    local: SocketAddr,
    task: AbortHandle,
}

impl Forwarder {
    /// Listens on `bind` (a real address of the node) and forwards each
    /// connection to where `target` says, as the node's own connection
    /// with the client's address as its source.
    pub(crate) fn start(bind: SocketAddr, fabric: Fabric, target: Target) -> io::Result<Forwarder> {
        let listener = listen(bind)?;
        let local = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, fabric, target)).abort_handle();
        Ok(Forwarder { local, task })
    }

    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener with `SO_REUSEADDR`, so a port is bound again at once after
/// its previous listener's connections closed.
fn listen(bind: SocketAddr) -> io::Result<TcpListener> {
    let socket = match bind {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(bind)?;
    socket.listen(BACKLOG)
}

async fn accept_loop(listener: TcpListener, fabric: Fabric, target: Target) {
    loop {
        match listener.accept().await {
            Ok((stream, client)) => {
                tokio::spawn(forward(stream, client, fabric.clone(), Arc::clone(&target)));
            }
            Err(e) => {
                warn!(error = %e, "accepting a forwarded connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn forward(mut stream: TcpStream, client: SocketAddr, fabric: Fabric, target: Target) {
    let _ = stream.set_nodelay(true);
    let dst = match target(client) {
        Ok(dst) => dst,
        Err(e) => {
            debug!(%client, error = %e, "no destination for a forwarded connection");
            return;
        }
    };
    let mut backend = match fabric.connect(client, dst, false).await {
        Ok(backend) => backend,
        Err(e) => {
            debug!(%client, %dst, error = %e, "forwarding a connection");
            return;
        }
    };
    if let Err(e) = tokio::io::copy_bidirectional(&mut stream, &mut backend).await {
        debug!(%client, %dst, error = %e, "a forwarded connection ended");
    }
}
