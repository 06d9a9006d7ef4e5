//! Every `INTERVAL_MS` (default 1000) GETs the URL in `TARGET` (default
//! `http://http-echo/hello`) with `wasi:http/outgoing-handler` and logs the
//! status and body, or the error.

use std::time::Duration;

use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, IncomingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    authority: String,
    path_with_query: String,
}

/// Parses an `http://host[:port][/path]` URL.
fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?} is not an http:// URL"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok(Url {
        authority: authority.to_owned(),
        path_with_query: path,
    })
}

fn get(url: &Url) -> Result<(u16, Vec<u8>), String> {
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| "invalid scheme")?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| format!("invalid authority {:?}", url.authority))?;
    request
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| format!("invalid path {:?}", url.path_with_query))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    let response = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| "the response was already taken".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "no response body")?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| "no response body stream")?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(error)) => {
                    return Err(format!("reading the body: {}", error.to_debug_string()));
                }
            }
        }
    }
    IncomingBody::finish(body);
    Ok((status, bytes))
}

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "http://http-echo/hello".to_owned());
    let interval = std::env::var("INTERVAL_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(1000u64);
    let url = match parse_url(&target) {
        Ok(url) => url,
        Err(error) => {
            eprintln!("invalid TARGET: {error}");
            std::process::exit(2);
        }
    };
    println!("http-client: GET {target} every {interval} ms");
    for n in 1u64.. {
        match get(&url) {
            Ok((status, body)) => {
                let body = String::from_utf8_lossy(&body);
                println!(
                    "{n}: status {status}, body: {}",
                    body.trim_end().replace('\n', " | ")
                );
            }
            Err(error) => println!("{n}: request failed: {error}"),
        }
        std::thread::sleep(Duration::from_millis(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            parse_url("http://http-echo.default.svc.cluster.local:8080/hello?x=1"),
            Ok(Url {
                authority: "http-echo.default.svc.cluster.local:8080".into(),
                path_with_query: "/hello?x=1".into()
            })
        );
        assert_eq!(
            parse_url("http://http-echo"),
            Ok(Url {
                authority: "http-echo".into(),
                path_with_query: "/".into()
            })
        );
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
