//! Socket addresses between their WASI form and std's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::bindings::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};

/// The std form of a WASI socket address.
pub(crate) fn to_std(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(v4) => {
            let (a, b, c, d) = v4.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), v4.port))
        }
        IpSocketAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(a, b, c, d, e, f, g, h),
                v6.port,
                v6.flow_info,
                v6.scope_id,
            ))
        }
    }
}

/// The WASI form of a std socket address.
pub(crate) fn from_std(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}

/// The WASI form of an IP address.
pub(crate) fn ip_from_std(ip: IpAddr) -> IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

/// The family of an address.
pub(crate) fn family(addr: &SocketAddr) -> IpAddressFamily {
    match addr {
        SocketAddr::V4(_) => IpAddressFamily::Ipv4,
        SocketAddr::V6(_) => IpAddressFamily::Ipv6,
    }
}

/// Checks an address a socket of `socket_family` binds to or connects to,
/// as WASI asks: the same family, and no multicast or broadcast address.
/// Connecting also needs a port and a specified address.
pub(crate) fn check(
    addr: &SocketAddr,
    socket_family: IpAddressFamily,
    connecting: bool,
) -> Result<(), ErrorCode> {
    if family(addr) != socket_family {
        return Err(ErrorCode::InvalidArgument);
    }
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_multicast() || broadcast {
        return Err(ErrorCode::InvalidArgument);
    }
    if connecting && (ip.is_unspecified() || addr.port() == 0) {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_survive_the_round_trip() {
        for text in [
            "10.42.0.7:7000",
            "127.0.0.1:0",
            "0.0.0.0:65535",
            "[::1]:8080",
            "[fe80::1%3]:443",
        ] {
            let addr: SocketAddr = text.parse().expect("address");
            assert_eq!(to_std(from_std(addr)), addr, "{text}");
        }
    }

    #[test]
    fn wasi_fields_map_to_std_fields() {
        let wasi = IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: 7000,
            address: (10, 42, 0, 7),
        });
        assert_eq!(to_std(wasi), SocketAddr::from(([10, 42, 0, 7], 7000)));
        assert!(matches!(
            ip_from_std("::1".parse().expect("ip")),
            IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1))
        ));
    }

    #[test]
    fn bad_addresses_are_invalid_arguments() {
        let v4 = IpAddressFamily::Ipv4;
        let parse = |text: &str| text.parse::<SocketAddr>().expect("address");
        assert_eq!(check(&parse("0.0.0.0:7000"), v4, false), Ok(()));
        assert_eq!(check(&parse("10.42.0.7:7000"), v4, true), Ok(()));
        for (text, connecting) in [
            ("[::1]:7000", false),
            ("224.0.0.1:7000", false),
            ("255.255.255.255:7000", true),
            ("0.0.0.0:7000", true),
            ("10.42.0.7:0", true),
        ] {
            assert_eq!(
                check(&parse(text), v4, connecting),
                Err(ErrorCode::InvalidArgument),
                "{text}"
            );
        }
    }
}
