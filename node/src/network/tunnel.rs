//! The node's tunnel: one real TCP listener per node that carries other
//! nodes' connections to its pods.
//!
//! A connection through the tunnel starts with a fixed 16-byte header from
//! the connecting node: the magic `WPT`, the protocol version, the pod
//! address asked for (IPv4, port) and the source address the pod should see
//! (IPv4, port). The tunnel answers with one byte (accepted, refused,
//! unreachable); after an acceptance the TCP stream is the connection.
//! Only pods of the tunnel's own node are reachable through it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use super::error::NetError;
use super::fabric::Fabric;
use super::stream::VirtualStream;

/// The Node annotation that advertises the node's tunnel as `<ip>:<port>`.
pub const TUNNEL_ANNOTATION: &str = "network.wasmpod.io/tunnel";

const MAGIC: [u8; 3] = *b"WPT";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 16;

/// How long a node waits for the other node's tunnel to accept and answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the tunnel waits for a new connection's header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The tunnel's one-byte answers to a header.
const ACCEPTED: u8 = 0;
const REFUSED: u8 = 1;
const UNREACHABLE: u8 = 2;

/// What the tunnel answered; after an acceptance the stream is the
/// connection.
#[derive(Debug)]
enum Answer<S> {
    Accepted(S),
    Refused,
    Unreachable,
}

/// Why a header was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum HeaderError {
    #[error("not a tunnel header")]
    Magic,
    #[error("tunnel protocol version {0} is not supported")]
    Version(u8),
}

/// The addresses a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    dst: SocketAddrV4,
    source: SocketAddrV4,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..3].copy_from_slice(&MAGIC);
        out[3] = VERSION;
        out[4..8].copy_from_slice(&self.dst.ip().octets());
        out[8..10].copy_from_slice(&self.dst.port().to_be_bytes());
        out[10..14].copy_from_slice(&self.source.ip().octets());
        out[14..16].copy_from_slice(&self.source.port().to_be_bytes());
        out
    }

    fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, HeaderError> {
        if bytes[..3] != MAGIC {
            return Err(HeaderError::Magic);
        }
        if bytes[3] != VERSION {
            return Err(HeaderError::Version(bytes[3]));
        }
        let addr = |at: usize| {
            let ip = Ipv4Addr::new(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
            SocketAddrV4::new(ip, u16::from_be_bytes([bytes[at + 4], bytes[at + 5]]))
        };
        Ok(Header {
            dst: addr(4),
            source: addr(10),
        })
    }
}

/// The IPv4 form of a source address. Pods live on IPv4 only; a client
/// that came over IPv6 (to a NodePort, say) is shown with the unspecified
/// address and its port.
fn source_v4(source: SocketAddr) -> SocketAddrV4 {
    let ip = match source.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    };
    SocketAddrV4::new(ip, source.port())
}

/// Opens a connection from `source` to the pod address `dst` through the
/// tunnel listener of the node that owns it.
pub async fn connect(
    tunnel: SocketAddr,
    source: SocketAddr,
    dst: SocketAddr,
) -> Result<VirtualStream, NetError> {
    let SocketAddr::V4(dst_v4) = dst else {
        return Err(NetError::Unreachable(dst));
    };
    let header = Header {
        dst: dst_v4,
        source: source_v4(source),
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(tunnel)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            debug!(%tunnel, %dst, error = %e, "the peer's tunnel cannot be reached");
            return Err(NetError::Unreachable(dst));
        }
        Err(_) => {
            debug!(%tunnel, %dst, "the peer's tunnel did not accept in time");
            return Err(NetError::Unreachable(dst));
        }
    };
    stream.set_nodelay(true)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake(stream, header)).await {
        Ok(Ok(Answer::Accepted(stream))) => Ok(VirtualStream::Tcp(stream)),
        Ok(Ok(Answer::Refused)) => Err(NetError::ConnectionRefused(dst)),
        Ok(Ok(Answer::Unreachable)) => Err(NetError::Unreachable(dst)),
        Ok(Err(e)) => Err(NetError::Io(e)),
        Err(_) => {
            debug!(%tunnel, %dst, "the peer's tunnel did not answer in time");
            Err(NetError::Unreachable(dst))
        }
    }
}

/// Sends the header and reads the tunnel's answer.
async fn handshake(mut stream: TcpStream, header: Header) -> std::io::Result<Answer<TcpStream>> {
    stream.write_all(&header.encode()).await?;
    match stream.read_u8().await? {
        ACCEPTED => Ok(Answer::Accepted(stream)),
        REFUSED => Ok(Answer::Refused),
        // An unknown answer from a newer peer: the pod cannot be reached.
        _ => Ok(Answer::Unreachable),
    }
}

/// Serves the node's tunnel on `listener` until `shutdown` resolves: each
/// arriving connection goes to the local pod its header names. Connections
/// already spliced live on after shutdown until either end closes.
pub async fn serve(listener: TcpListener, fabric: Fabric, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause, not spin.
                    warn!(error = %e, "accepting on the node's tunnel");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_one(stream, peer, fabric.clone()));
    }
}

async fn serve_one(mut stream: TcpStream, peer: SocketAddr, fabric: Fabric) {
    let _ = stream.set_nodelay(true);
    let mut bytes = [0u8; HEADER_LEN];
    match tokio::time::timeout(HEADER_TIMEOUT, stream.read_exact(&mut bytes)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "a tunnel connection closed before its header");
            return;
        }
        Err(_) => {
            debug!(%peer, "a tunnel connection sent no header in time");
            return;
        }
    }
    let header = match Header::decode(&bytes) {
        Ok(header) => header,
        Err(e) => {
            debug!(%peer, error = %e, "closing a tunnel connection");
            return;
        }
    };
    let dst = SocketAddr::V4(header.dst);
    let delivered = fabric.connect_local(SocketAddr::V4(header.source), dst);
    let answer = match &delivered {
        Ok(_) => ACCEPTED,
        Err(NetError::ConnectionRefused(_)) => REFUSED,
        Err(_) => UNREACHABLE,
    };
    if let Err(e) = stream.write_u8(answer).await {
        debug!(%peer, %dst, error = %e, "answering a tunnel connection");
        return;
    }
    let Ok(mut local) = delivered else {
        return;
    };
    if let Err(e) = tokio::io::copy_bidirectional(&mut stream, &mut local).await {
        debug!(%peer, %dst, error = %e, "a tunnelled connection ended");
    }
}

#[cfg(test)]
mod tests;
