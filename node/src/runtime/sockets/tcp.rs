//! TCP sockets on the pod network: `tcp-create-socket` and `tcp`.
//!
//! A socket goes through WASI's states: unbound, bound (the port is
//! reserved in the pod at once, so a conflict is reported by `bind`),
//! listening, or connecting and then connected. Socket options that mean
//! nothing on an in-memory connection are accepted and remembered.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, Pollable, subscribe};

use super::SocketsView;
use super::address::{self, from_std, to_std};
use super::bindings::network::{ErrorCode, IpAddressFamily, IpSocketAddress};
use super::bindings::tcp::{self, ShutdownType};
use super::bindings::tcp_create_socket;
use super::error::{SocketResult, code};
use super::network::Network;
use super::streams::{self, Reader, Writer};
use crate::network::{Accepted, NetError, PodNetwork, VirtualListener, VirtualStream};

/// The backlog a listener gets unless the guest asks for another, as
/// Linux's `somaxconn` default.
const DEFAULT_BACKLOG: usize = 128;
/// The most connections one listener lets wait.
const MAX_BACKLOG: usize = 4096;

/// A connection attempt: the stream, its local and its remote address.
type Connecting = Pin<Box<dyn Future<Output = Result<Connected, NetError>> + Send>>;
type Connected = (VirtualStream, SocketAddr, SocketAddr);

/// A guest's TCP socket.
pub struct TcpSocket {
    family: IpAddressFamily,
    network: PodNetwork,
    state: State,
    backlog: usize,
    options: Options,
}

/// Options a guest may set; remembered, but an in-memory connection has
/// no use for them.
struct Options {
    keep_alive: bool,
    keep_alive_idle_time: u64,
    keep_alive_interval: u64,
    keep_alive_count: u32,
    hop_limit: u8,
    receive_buffer_size: u64,
    send_buffer_size: u64,
}

impl Default for Options {
    fn default() -> Options {
        const SECOND: u64 = 1_000_000_000;
        Options {
            keep_alive: false,
            keep_alive_idle_time: 7200 * SECOND,
            keep_alive_interval: 75 * SECOND,
            keep_alive_count: 9,
            hop_limit: 64,
            receive_buffer_size: 256 * 1024,
            send_buffer_size: 256 * 1024,
        }
    }
}

enum State {
    Unbound,
    /// `start-bind` reserved the address; `finish-bind` is next.
    BindStarted(VirtualListener),
    Bound(VirtualListener),
    ListenStarted(Listening),
    Listening(Listening),
    Connecting(Connecting),
    /// The connection attempt ended; `finish-connect` reports how.
    ConnectDone(Result<Connected, NetError>),
    Connected(Connection),
    /// A failed connect, after which the socket is unusable.
    Closed,
}

/// A bound port taking connections.
struct Listening {
    listener: VirtualListener,
    /// A connection a readiness check already took from the queue.
    next: Option<Accepted>,
}

/// An established connection.
struct Connection {
    local: SocketAddr,
    remote: SocketAddr,
    reader: Reader,
    writer: Writer,
}

impl TcpSocket {
    fn new(family: IpAddressFamily, network: PodNetwork) -> TcpSocket {
        TcpSocket {
            family,
            network,
            state: State::Unbound,
            backlog: DEFAULT_BACKLOG,
            options: Options::default(),
        }
    }

    fn connected(&self, accepted: Accepted) -> (TcpSocket, Reader, Writer) {
        let (reader, writer) = streams::split(accepted.stream);
        let connection = Connection {
            local: accepted.local,
            remote: accepted.peer,
            reader: reader.clone(),
            writer: writer.clone(),
        };
        let socket = TcpSocket {
            family: self.family,
            network: self.network.clone(),
            state: State::Connected(connection),
            backlog: DEFAULT_BACKLOG,
            options: Options::default(),
        };
        (socket, reader, writer)
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            State::Connecting(connecting) => {
                let result = std::task::ready!(connecting.as_mut().poll(cx));
                self.state = State::ConnectDone(result);
                Poll::Ready(())
            }
            State::Listening(listening) if listening.next.is_none() => {
                match listening.listener.poll_accept(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(next) => {
                        listening.next = next;
                        Poll::Ready(())
                    }
                }
            }
            _ => Poll::Ready(()),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TcpSocket {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await;
    }
}

fn noop() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

fn fail<T>(error: ErrorCode) -> SocketResult<T> {
    Err(error.into())
}

impl tcp_create_socket::Host for SocketsView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        let Some(network) = self.ctx.network.clone() else {
            return fail(ErrorCode::AccessDenied);
        };
        Ok(self.table.push(TcpSocket::new(family, network))?)
    }
}

impl tcp::Host for SocketsView<'_> {}

impl SocketsView<'_> {
    fn socket(&mut self, this: &Resource<TcpSocket>) -> SocketResult<&mut TcpSocket> {
        Ok(self.table.get_mut(this)?)
    }

    /// Gives a connection's streams to the guest, as children of its socket.
    fn push_streams(
        &mut self,
        socket: &Resource<TcpSocket>,
        reader: Reader,
        writer: Writer,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let input: DynInputStream = Box::new(reader);
        let output: DynOutputStream = Box::new(writer);
        let input = self.table.push_child(input, socket)?;
        let output = self.table.push_child(output, socket)?;
        Ok((input, output))
    }
}

impl tcp::HostTcpSocket for SocketsView<'_> {
    fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let local = to_std(local);
        let socket = self.socket(&this)?;
        if !matches!(socket.state, State::Unbound) {
            return fail(ErrorCode::InvalidState);
        }
        address::check(&local, socket.family, false)?;
        let listener = socket.network.listen(local, socket.backlog)?;
        socket.state = State::BindStarted(listener);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let socket = self.socket(&this)?;
        match std::mem::replace(&mut socket.state, State::Closed) {
            State::BindStarted(listener) => {
                socket.state = State::Bound(listener);
                Ok(())
            }
            other => {
                socket.state = other;
                fail(ErrorCode::NotInProgress)
            }
        }
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let remote = to_std(remote);
        let socket = self.socket(&this)?;
        match socket.state {
            State::Unbound | State::Bound(_) => {}
            State::Connecting(_) | State::ConnectDone(_) => {
                return fail(ErrorCode::ConcurrencyConflict);
            }
            _ => return fail(ErrorCode::InvalidState),
        }
        address::check(&remote, socket.family, true)?;
        let network = socket.network.clone();
        socket.state = State::Connecting(Box::pin(async move {
            let (stream, local) = network.connect(remote).await?;
            Ok((stream, local, remote))
        }));
        // A connection to a pod on this node is made at once.
        let _ = socket.poll_ready(&mut noop());
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let socket = self.socket(&this)?;
        if socket.poll_ready(&mut noop()).is_pending() {
            return fail(ErrorCode::WouldBlock);
        }
        let result = match std::mem::replace(&mut socket.state, State::Closed) {
            State::ConnectDone(result) => result,
            other => {
                socket.state = other;
                return fail(ErrorCode::NotInProgress);
            }
        };
        let (stream, local, remote) = match result {
            Ok(connected) => connected,
            Err(error) => {
                tracing::debug!(%error, "guest connection failed");
                return fail(code(&error));
            }
        };
        let (reader, writer) = streams::split(stream);
        socket.state = State::Connected(Connection {
            local,
            remote,
            reader: reader.clone(),
            writer: writer.clone(),
        });
        self.push_streams(&this, reader, writer)
    }

    fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let socket = self.socket(&this)?;
        match std::mem::replace(&mut socket.state, State::Closed) {
            State::Bound(listener) => {
                socket.state = State::ListenStarted(Listening {
                    listener,
                    next: None,
                });
                Ok(())
            }
            other @ (State::BindStarted(_) | State::Connecting(_) | State::ConnectDone(_)) => {
                socket.state = other;
                fail(ErrorCode::ConcurrencyConflict)
            }
            other => {
                socket.state = other;
                fail(ErrorCode::InvalidState)
            }
        }
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let socket = self.socket(&this)?;
        match std::mem::replace(&mut socket.state, State::Closed) {
            State::ListenStarted(listening) => {
                socket.state = State::Listening(listening);
                Ok(())
            }
            other => {
                socket.state = other;
                fail(ErrorCode::NotInProgress)
            }
        }
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let socket = self.socket(&this)?;
        let State::Listening(listening) = &mut socket.state else {
            return fail(ErrorCode::InvalidState);
        };
        let Some(accepted) = listening
            .next
            .take()
            .or_else(|| listening.listener.try_accept())
        else {
            return fail(ErrorCode::WouldBlock);
        };
        let (connected, reader, writer) = socket.connected(accepted);
        let connected = self.table.push(connected)?;
        let (input, output) = self.push_streams(&connected, reader, writer)?;
        Ok((connected, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let socket = self.socket(&this)?;
        match &socket.state {
            State::Bound(listener) => Ok(from_std(listener.local_addr())),
            State::ListenStarted(listening) | State::Listening(listening) => {
                Ok(from_std(listening.listener.local_addr()))
            }
            State::Connected(connection) => Ok(from_std(connection.local)),
            _ => fail(ErrorCode::InvalidState),
        }
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let socket = self.socket(&this)?;
        match &socket.state {
            State::Connected(connection) => Ok(from_std(connection.remote)),
            _ => fail(ErrorCode::InvalidState),
        }
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        let socket = self.table.get(&this)?;
        Ok(matches!(socket.state, State::Listening(_)))
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        let socket = self.socket(&this)?;
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        match socket.state {
            State::Unbound => {
                socket.backlog = usize::try_from(value)
                    .unwrap_or(MAX_BACKLOG)
                    .min(MAX_BACKLOG);
                Ok(())
            }
            // The port's queue was made at bind; Linux, too, only lets a
            // backlog change take effect through a new listen.
            State::Bound(_) | State::ListenStarted(_) | State::Listening(_) => Ok(()),
            _ => fail(ErrorCode::InvalidState),
        }
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        Ok(self.socket(&this)?.options.keep_alive)
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.socket(&this)?.options.keep_alive = value;
        Ok(())
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.socket(&this)?.options.keep_alive_idle_time)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.keep_alive_idle_time = value;
        Ok(())
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.socket(&this)?.options.keep_alive_interval)
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.keep_alive_interval = value;
        Ok(())
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        Ok(self.socket(&this)?.options.keep_alive_count)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.keep_alive_count = value;
        Ok(())
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        Ok(self.socket(&this)?.options.hop_limit)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.hop_limit = value;
        Ok(())
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.socket(&this)?.options.receive_buffer_size)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.receive_buffer_size = value;
        Ok(())
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        Ok(self.socket(&this)?.options.send_buffer_size)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        if value == 0 {
            return fail(ErrorCode::InvalidArgument);
        }
        self.socket(&this)?.options.send_buffer_size = value;
        Ok(())
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(self.table, this)
    }

    fn shutdown(&mut self, this: Resource<TcpSocket>, how: ShutdownType) -> SocketResult<()> {
        let socket = self.socket(&this)?;
        let State::Connected(connection) = &socket.state else {
            return fail(ErrorCode::InvalidState);
        };
        if matches!(how, ShutdownType::Receive | ShutdownType::Both) {
            connection.reader.shutdown();
        }
        if matches!(how, ShutdownType::Send | ShutdownType::Both) {
            connection.writer.shutdown();
        }
        Ok(())
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
