//! Host bindings for `wasi:sockets`, generated from the WIT files
//! wasmtime-wasi ships, with the node's own resource types.
//!
//! `wasi:io` and `wasi:clocks` are wasmtime-wasi's, so the streams and
//! pollables a socket hands out are the same resources every other WASI
//! interface uses.

wasmtime::component::bindgen!({
    path: "src/runtime/sockets/wit",
    world: "wasmpod:sockets/pod-sockets",
    imports: { default: trappable },
    require_store_data_send: true,
    trappable_error_type: {
        "wasi:sockets/network.error-code" => super::error::SocketError,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:sockets/network.network": super::network::Network,
        "wasi:sockets/tcp.tcp-socket": super::tcp::TcpSocket,
        "wasi:sockets/udp.udp-socket": super::udp::UdpSocket,
        "wasi:sockets/udp.incoming-datagram-stream": super::udp::IncomingDatagramStream,
        "wasi:sockets/udp.outgoing-datagram-stream": super::udp::OutgoingDatagramStream,
        "wasi:sockets/ip-name-lookup.resolve-address-stream": super::lookup::ResolveAddressStream,
    },
});

pub(crate) use self::wasi::sockets::*;
