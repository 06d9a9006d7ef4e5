//! The `network` capability and `instance-network`.

use wasmtime::component::Resource;

use super::SocketsView;
use super::bindings::{instance_network, network};
use super::error::{SocketError, io_code};
use network::ErrorCode;

/// The `network` resource: the capability to use sockets. What the
/// sockets may reach is the instance's pod network, held in its
/// [`SocketsCtx`](super::SocketsCtx), not here.
#[derive(Debug)]
pub struct Network;

impl network::Host for SocketsView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let error = self.table.get(&error)?;
        Ok(error.downcast_ref::<std::io::Error>().map(io_code))
    }
}

impl network::HostNetwork for SocketsView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(network)?;
        Ok(())
    }
}

impl instance_network::Host for SocketsView<'_> {
    fn instance_network(&mut self) -> wasmtime::Result<Resource<Network>> {
        Ok(self.table.push(Network)?)
    }
}
