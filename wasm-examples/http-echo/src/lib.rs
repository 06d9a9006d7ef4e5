//! A `wasi:http` service: answers every request with its method, path, the
//! pod's `HOSTNAME` (when set) and the request body. Two paths exist for
//! testing the node: `/trap` panics (a trap: the node answers 500) and
//! `/sleep?ms=N` waits N milliseconds before answering.

/// The component itself: only built for WebAssembly, where its exports
/// link.
#[cfg(target_arch = "wasm32")]
mod guest {
    use super::{reply, sleep_millis};
    use wasi::http::types::{
        Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };
    use wasi::io::streams::StreamError;

    wasi::http::proxy::export!(HttpEcho);

    struct HttpEcho;

    impl wasi::exports::http::incoming_handler::Guest for HttpEcho {
        fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
            let method = method_name(&request.method());
            let path = request.path_with_query().unwrap_or_else(|| "/".to_owned());
            if path == "/trap" || path.starts_with("/trap?") {
                panic!("asked to trap by {method} {path}");
            }
            if let Some(ms) = sleep_millis(&path) {
                wasi::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
            }
            let body = read_body(request);
            let hostname = std::env::var("HOSTNAME").ok();
            let text = reply(&method, &path, hostname.as_deref(), &body);
            respond(response_out, 200, text.as_bytes());
        }
    }

    fn method_name(method: &Method) -> String {
        match method {
            Method::Get => "GET".into(),
            Method::Head => "HEAD".into(),
            Method::Post => "POST".into(),
            Method::Put => "PUT".into(),
            Method::Delete => "DELETE".into(),
            Method::Connect => "CONNECT".into(),
            Method::Options => "OPTIONS".into(),
            Method::Trace => "TRACE".into(),
            Method::Patch => "PATCH".into(),
            Method::Other(other) => other.clone(),
        }
    }

    /// The whole request body (empty if it cannot be read).
    fn read_body(request: IncomingRequest) -> Vec<u8> {
        let mut bytes = Vec::new();
        let Ok(body) = request.consume() else {
            return bytes;
        };
        if let Ok(stream) = body.stream() {
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(error)) => {
                        eprintln!("reading the request body: {}", error.to_debug_string());
                        break;
                    }
                }
            }
        }
        IncomingBody::finish(body);
        bytes
    }

    fn respond(response_out: ResponseOutparam, status: u16, text: &[u8]) {
        let headers = Fields::new();
        let _ = headers.set("content-type", &[b"text/plain; charset=utf-8".to_vec()]);
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(status);
        let Ok(body) = response.body() else {
            return;
        };
        ResponseOutparam::set(response_out, Ok(response));
        if let Ok(stream) = body.write() {
            // blocking-write-and-flush takes at most 4096 bytes per call.
            for chunk in text.chunks(4096) {
                if let Err(error) = stream.blocking_write_and_flush(chunk) {
                    eprintln!("writing the response: {error:?}");
                    return;
                }
            }
        }
        let _ = OutgoingBody::finish(body, None);
    }
}

/// The text of the answer.
pub fn reply(method: &str, path: &str, hostname: Option<&str>, body: &[u8]) -> String {
    let mut text = format!("{method} {path}\n");
    if let Some(hostname) = hostname {
        text.push_str(&format!("hostname: {hostname}\n"));
    }
    text.push_str(&format!("body: {}\n", String::from_utf8_lossy(body)));
    text
}

/// The delay `/sleep?ms=N` asks for.
pub fn sleep_millis(path: &str) -> Option<u64> {
    let query = path.strip_prefix("/sleep?")?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|ms| ms.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_names_method_path_hostname_and_body() {
        assert_eq!(
            reply("POST", "/hello?x=1", Some("http-echo-1"), b"ping"),
            "POST /hello?x=1\nhostname: http-echo-1\nbody: ping\n"
        );
        assert_eq!(reply("GET", "/", None, b""), "GET /\nbody: \n");
    }

    #[test]
    fn sleep_takes_milliseconds_from_the_query() {
        assert_eq!(sleep_millis("/sleep?ms=250"), Some(250));
        assert_eq!(sleep_millis("/sleep?x=1&ms=5"), Some(5));
        assert_eq!(sleep_millis("/sleep"), None);
        assert_eq!(sleep_millis("/hello"), None);
    }
}
