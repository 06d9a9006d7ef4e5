//! How failures on the virtual network reach a guest: each [`NetError`]
//! becomes one `wasi:sockets` error code.

use std::io;

use super::bindings::network::ErrorCode;
use crate::network::NetError;

/// The error of a sockets host function: an error code for the guest, or
/// a trap (a bad resource handle, a host failure).
pub(crate) struct SocketError(wasmtime::Error);

impl SocketError {
    /// The error code for the guest; anything else traps.
    pub(crate) fn downcast(self) -> wasmtime::Result<ErrorCode> {
        self.0.downcast()
    }
}

impl std::fmt::Debug for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for SocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SocketError {}

impl From<ErrorCode> for SocketError {
    fn from(code: ErrorCode) -> SocketError {
        SocketError(code.into())
    }
}

impl From<wasmtime::component::ResourceTableError> for SocketError {
    fn from(error: wasmtime::component::ResourceTableError) -> SocketError {
        SocketError(error.into())
    }
}

/// The result of a sockets host function.
pub(crate) type SocketResult<T> = Result<T, SocketError>;

/// The error code a failed virtual network operation means to a guest.
pub(crate) fn code(error: &NetError) -> ErrorCode {
    match error {
        NetError::AddressInUse(_) => ErrorCode::AddressInUse,
        NetError::AddressNotAvailable(_) => ErrorCode::AddressNotBindable,
        NetError::ConnectionRefused(_) => ErrorCode::ConnectionRefused,
        NetError::Unreachable(_) => ErrorCode::RemoteUnreachable,
        NetError::Denied(_) => ErrorCode::AccessDenied,
        NetError::NameNotFound(_) => ErrorCode::NameUnresolvable,
        // WASI counts running out of ephemeral ports as address-in-use.
        NetError::PortsExhausted => ErrorCode::AddressInUse,
        NetError::Io(error) => io_code(error),
    }
}

/// The error code of a failed real socket (another node's tunnel, the
/// outside world) or stream.
pub(crate) fn io_code(error: &io::Error) -> ErrorCode {
    use io::ErrorKind;
    match error.kind() {
        ErrorKind::AddrInUse => ErrorCode::AddressInUse,
        ErrorKind::AddrNotAvailable => ErrorCode::AddressNotBindable,
        ErrorKind::ConnectionRefused => ErrorCode::ConnectionRefused,
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => ErrorCode::ConnectionReset,
        ErrorKind::ConnectionAborted => ErrorCode::ConnectionAborted,
        ErrorKind::NotConnected => ErrorCode::InvalidState,
        ErrorKind::TimedOut => ErrorCode::Timeout,
        ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
        ErrorKind::InvalidInput => ErrorCode::InvalidArgument,
        ErrorKind::OutOfMemory => ErrorCode::OutOfMemory,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => ErrorCode::RemoteUnreachable,
        ErrorKind::WouldBlock => ErrorCode::WouldBlock,
        _ => ErrorCode::Unknown,
    }
}

impl From<NetError> for SocketError {
    fn from(error: NetError) -> SocketError {
        code(&error).into()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([10, 42, 0, 5], 7000))
    }

    #[test]
    fn each_network_error_has_its_socket_error_code() {
        let cases = [
            (NetError::AddressInUse(addr()), ErrorCode::AddressInUse),
            (
                NetError::AddressNotAvailable(addr()),
                ErrorCode::AddressNotBindable,
            ),
            (
                NetError::ConnectionRefused(addr()),
                ErrorCode::ConnectionRefused,
            ),
            (NetError::Unreachable(addr()), ErrorCode::RemoteUnreachable),
            (NetError::Denied("egress".into()), ErrorCode::AccessDenied),
            (
                NetError::NameNotFound("nope".into()),
                ErrorCode::NameUnresolvable,
            ),
            (NetError::PortsExhausted, ErrorCode::AddressInUse),
            (
                NetError::Io(io::ErrorKind::ConnectionRefused.into()),
                ErrorCode::ConnectionRefused,
            ),
            (
                NetError::Io(io::ErrorKind::BrokenPipe.into()),
                ErrorCode::ConnectionReset,
            ),
            (NetError::Io(io::Error::other("odd")), ErrorCode::Unknown),
        ];
        for (error, expected) in cases {
            assert_eq!(code(&error), expected, "{error}");
        }
    }

    #[test]
    fn a_network_error_reaches_the_guest_as_its_code() {
        let error = SocketError::from(NetError::ConnectionRefused(addr()));
        assert_eq!(
            error.downcast().expect("an error code, not a trap"),
            ErrorCode::ConnectionRefused
        );
    }
}
