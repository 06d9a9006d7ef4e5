//! Sends a component's `wasi:http/outgoing-handler` requests through its
//! pod's virtual network: the host is resolved as the pod resolves names
//! (Services by name included), the connection is made from the pod, and
//! HTTP/1.1 runs over it with hyper.

use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::task::{Poll, ready};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::network::{NetError, PodNetwork, VirtualStream};

/// How long connecting and waiting for the first byte of a response may
/// take when the guest sets no limit (as wasmtime's own default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The future that drives a connection after its response arrived.
type Driver = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// The `wasi:http` hooks of one instance: where its requests go.
pub(crate) struct PodHooks {
    network: Option<PodNetwork>,
}

impl PodHooks {
    pub(crate) fn new(network: Option<PodNetwork>) -> PodHooks {
        PodHooks { network }
    }
}

impl WasiHttpHooks for PodHooks {
    fn default_scheme(&mut self) -> Option<Scheme> {
        // The node speaks plain HTTP only, so that is what a request
        // without a scheme means.
        Some(Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(Response<WasiBody>, Driver), Error>> + Send> {
        let network = self.network.clone();
        Box::new(async move {
            let network = network.ok_or(Error::HttpRequestDenied)?;
            send(&network, request, options.unwrap_or_default()).await
        })
    }
}

/// Where a request goes: the host to resolve and the port.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
}

/// The target of an absolute `http://` URI. Other schemes are refused:
/// the node has no TLS client for guests.
fn target(uri: &Uri) -> Result<Target, Error> {
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(Error::HttpRequestDenied);
    }
    let authority: &Authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(Error::HttpRequestUriInvalid);
    }
    Ok(Target {
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(80),
    })
}

async fn send(
    network: &PodNetwork,
    mut request: Request<WasiBody>,
    options: RequestOptions,
) -> Result<(Response<WasiBody>, Driver), Error> {
    let target = target(request.uri())?;
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);
    let stream = tokio::time::timeout(connect_timeout, connect(network, &target))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries only the path: the scheme and authority are
    // for proxies.
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::from(path);

    let mut response = pin!(sender.send_request(request));
    let mut connection = Some(connection);
    // The connection must make progress while the response is awaited.
    let waiting = poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result.map_err(Error::from)),
        Poll::Pending => {
            let Some(driving) = connection.as_mut() else {
                return Poll::Pending;
            };
            let ended = ready!(Pin::new(driving).poll(cx));
            connection = None;
            match ended {
                Ok(()) => response.as_mut().poll(cx).map_err(Error::from),
                Err(error) => Poll::Ready(Err(Error::from(error))),
            }
        }
    });
    let response = tokio::time::timeout(first_byte_timeout, waiting)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let driver: Driver = Box::new(async move {
        match connection {
            Some(connection) => connection.await.map_err(Error::from),
            None => Ok(()),
        }
    });
    Ok((response, driver))
}

/// Connects from the pod to the first address of the target that accepts.
async fn connect(network: &PodNetwork, target: &Target) -> Result<VirtualStream, Error> {
    let addresses: Vec<IpAddr> = network
        .resolve(&target.host)
        .await
        .map_err(|error| net_error(&error))?;
    let mut last = Error::DestinationNotFound;
    for ip in addresses {
        match network.connect(SocketAddr::new(ip, target.port)).await {
            Ok((stream, _local)) => return Ok(stream),
            Err(error) => {
                tracing::debug!(%ip, port = target.port, %error, "outgoing HTTP connection failed");
                last = net_error(&error);
            }
        }
    }
    Err(last)
}

/// The `wasi:http` error a guest sees for a failure of the pod network.
fn net_error(error: &NetError) -> Error {
    match error {
        NetError::NameNotFound(_) => Error::DnsError {
            rcode: Some("NXDOMAIN".to_owned()),
            info_code: None,
        },
        NetError::ConnectionRefused(_) => Error::ConnectionRefused,
        NetError::Unreachable(_) => Error::DestinationIpUnroutable,
        NetError::Denied(_) => Error::DestinationIpProhibited,
        NetError::PortsExhausted => Error::ConnectionLimitReached,
        NetError::AddressInUse(_) | NetError::AddressNotAvailable(_) => {
            Error::InternalError(Some(error.to_string()))
        }
        NetError::Io(io) => Error::Connect(std::io::Error::new(io.kind(), io.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().expect("a valid URI")
    }

    #[test]
    fn targets_default_to_port_80_and_accept_names_and_ips() {
        assert_eq!(
            target(&uri("http://http-echo/hello")).expect("target"),
            Target {
                host: "http-echo".into(),
                port: 80
            }
        );
        assert_eq!(
            target(&uri("http://10.42.0.7:8080/")).expect("target"),
            Target {
                host: "10.42.0.7".into(),
                port: 8080
            }
        );
        assert_eq!(
            target(&uri("http://[::1]:81/")).expect("target"),
            Target {
                host: "::1".into(),
                port: 81
            }
        );
    }

    #[test]
    fn https_and_relative_uris_are_refused() {
        assert!(matches!(
            target(&uri("https://example.com/")),
            Err(Error::HttpRequestDenied)
        ));
        assert!(matches!(
            target(&uri("/only/a/path")),
            Err(Error::HttpRequestDenied)
        ));
    }

    #[test]
    fn network_failures_map_to_wasi_http_error_codes() {
        let addr: SocketAddr = "10.42.0.9:80".parse().expect("address");
        assert!(matches!(
            net_error(&NetError::ConnectionRefused(addr)),
            Error::ConnectionRefused
        ));
        assert!(matches!(
            net_error(&NetError::NameNotFound("nope".into())),
            Error::DnsError { .. }
        ));
        assert!(matches!(
            net_error(&NetError::Denied("egress".into())),
            Error::DestinationIpProhibited
        ));
        assert!(matches!(
            net_error(&NetError::Unreachable(addr)),
            Error::DestinationIpUnroutable
        ));
    }

    #[tokio::test]
    async fn without_a_pod_network_requests_are_denied() {
        let mut hooks = PodHooks::new(None);
        let request = Request::builder()
            .uri("http://example/")
            .body(
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("request");
        let sent = Pin::from(hooks.send_request(request, None, Box::new(async { Ok(()) }))).await;
        assert!(matches!(sent, Err(Error::HttpRequestDenied)));
    }
}
