//! UDP, which pods do not have yet: creating a UDP socket fails with
//! `not-supported` (`access-denied` without a pod network), so none of the
//! resources below ever exists.

use wasmtime::component::Resource;
use wasmtime_wasi::p2::DynPollable;

use super::SocketsView;
use super::bindings::network::{ErrorCode, IpAddressFamily, IpSocketAddress};
use super::bindings::{udp, udp_create_socket};
use super::error::SocketResult;
use super::network::Network;

/// A UDP socket; there are none.
pub enum UdpSocket {}
/// A UDP socket's receiving stream; there are none.
pub enum IncomingDatagramStream {}
/// A UDP socket's sending stream; there are none.
pub enum OutgoingDatagramStream {}

fn unsupported<T>() -> SocketResult<T> {
    Err(ErrorCode::NotSupported.into())
}

impl udp_create_socket::Host for SocketsView<'_> {
    fn create_udp_socket(&mut self, _family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        if self.ctx.network.is_none() {
            return Err(ErrorCode::AccessDenied.into());
        }
        unsupported()
    }
}

impl udp::Host for SocketsView<'_> {}

impl udp::HostUdpSocket for SocketsView<'_> {
    fn start_bind(
        &mut self,
        _this: Resource<UdpSocket>,
        _network: Resource<Network>,
        _local: IpSocketAddress,
    ) -> SocketResult<()> {
        unsupported()
    }

    fn finish_bind(&mut self, _this: Resource<UdpSocket>) -> SocketResult<()> {
        unsupported()
    }

    fn stream(
        &mut self,
        _this: Resource<UdpSocket>,
        _remote: Option<IpSocketAddress>,
    ) -> SocketResult<(
        Resource<IncomingDatagramStream>,
        Resource<OutgoingDatagramStream>,
    )> {
        unsupported()
    }

    fn local_address(&mut self, _this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        unsupported()
    }

    fn remote_address(&mut self, _this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        unsupported()
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        match *self.table.get(&this)? {}
    }

    fn unicast_hop_limit(&mut self, _this: Resource<UdpSocket>) -> SocketResult<u8> {
        unsupported()
    }

    fn set_unicast_hop_limit(
        &mut self,
        _this: Resource<UdpSocket>,
        _value: u8,
    ) -> SocketResult<()> {
        unsupported()
    }

    fn receive_buffer_size(&mut self, _this: Resource<UdpSocket>) -> SocketResult<u64> {
        unsupported()
    }

    fn set_receive_buffer_size(
        &mut self,
        _this: Resource<UdpSocket>,
        _value: u64,
    ) -> SocketResult<()> {
        unsupported()
    }

    fn send_buffer_size(&mut self, _this: Resource<UdpSocket>) -> SocketResult<u64> {
        unsupported()
    }

    fn set_send_buffer_size(
        &mut self,
        _this: Resource<UdpSocket>,
        _value: u64,
    ) -> SocketResult<()> {
        unsupported()
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        match *self.table.get(&this)? {}
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl udp::HostIncomingDatagramStream for SocketsView<'_> {
    fn receive(
        &mut self,
        _this: Resource<IncomingDatagramStream>,
        _max: u64,
    ) -> SocketResult<Vec<udp::IncomingDatagram>> {
        unsupported()
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        match *self.table.get(&this)? {}
    }

    fn drop(&mut self, this: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl udp::HostOutgoingDatagramStream for SocketsView<'_> {
    fn check_send(&mut self, _this: Resource<OutgoingDatagramStream>) -> SocketResult<u64> {
        unsupported()
    }

    fn send(
        &mut self,
        _this: Resource<OutgoingDatagramStream>,
        _datagrams: Vec<udp::OutgoingDatagram>,
    ) -> SocketResult<u64> {
        unsupported()
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        match *self.table.get(&this)? {}
    }

    fn drop(&mut self, this: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
