//! The connections and listeners of the virtual network.
//!
//! A connection is either an in-memory pipe (both ends in pods of this
//! node) or a real TCP stream (to another node's tunnel, or outside the
//! cluster); guests and the node's proxies see one type for both.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::ports::Registration;

/// How many bytes an in-memory connection buffers in each direction.
pub(crate) const PIPE_BUFFER: usize = 256 * 1024;

/// One end of a connection on the virtual network.
#[derive(Debug)]
pub enum VirtualStream {
    /// Both ends are on this node.
    Memory(DuplexStream),
    /// The other end is reached through a real socket.
    Tcp(TcpStream),
}

impl VirtualStream {
    /// A connected in-memory pair: (the connecting end, the accepted end).
    pub fn pair() -> (VirtualStream, VirtualStream) {
        let (a, b) = tokio::io::duplex(PIPE_BUFFER);
        (VirtualStream::Memory(a), VirtualStream::Memory(b))
    }
}

impl AsyncRead for VirtualStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            VirtualStream::Memory(stream) => Pin::new(stream).poll_read(cx, buf),
            VirtualStream::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for VirtualStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            VirtualStream::Memory(stream) => Pin::new(stream).poll_write(cx, buf),
            VirtualStream::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            VirtualStream::Memory(stream) => Pin::new(stream).poll_flush(cx),
            VirtualStream::Tcp(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            VirtualStream::Memory(stream) => Pin::new(stream).poll_shutdown(cx),
            VirtualStream::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// A connection a listener accepted.
#[derive(Debug)]
pub struct Accepted {
    /// The accepted end.
    pub stream: VirtualStream,
    /// The connecting side's address as the listener sees it.
    pub peer: SocketAddr,
    /// The address the connection was made to (the listener's port on the
    /// pod IP or on loopback).
    pub local: SocketAddr,
}

/// A port a pod listens on. Dropping it frees the port; connections
/// already accepted live on.
#[derive(Debug)]
pub struct VirtualListener {
    pub(crate) incoming: mpsc::Receiver<Accepted>,
    pub(crate) registration: Registration,
}

impl VirtualListener {
    /// The address it was bound to (its port is the real one when port 0
    /// was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.registration.addr()
    }

    /// The next connection; `None` only if the pod's network is gone.
    pub async fn accept(&mut self) -> Option<Accepted> {
        self.incoming.recv().await
    }

    /// The next connection if one is waiting, without waiting.
    pub fn try_accept(&mut self) -> Option<Accepted> {
        self.incoming.try_recv().ok()
    }

    /// Polls for the next connection (for callers that implement their own
    /// futures, such as the `wasi:sockets` pollables).
    pub fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<Accepted>> {
        self.incoming.poll_recv(cx)
    }
}
