//! A real HTTP/1.1 upstream for the proxy tests: a hyper server on 127.0.0.1 inside the
//! test process, one task per connection, keep-alive, that records every request it gets
//! and counts the TCP connections it accepts.
//!
//! A route is chosen by the first path segment that names one, wherever it stands (so the
//! routes work behind any proxy prefix or base path); what follows it is its argument:
//! - `slow?ms=N`: the echo, after waiting N ms before the response head;
//! - `array`: `[1,2,3]`; `text`: [`text_body`] as text/plain; `binary`: the 256 byte values
//!   as application/octet-stream;
//! - `large?bytes=N`: [`large_body`]`(N)`, with a content-length;
//! - `chunked?chunks=N&ms=M`: [`chunk`]`(0..N)` streamed (chunked, no content-length), M ms
//!   apart (10 unless given);
//! - `status/NNN`: status NNN with `{"upstream": NAME, "status": NNN}`;
//! - `headers`: [`HEADERS`]: a custom header, two `set-cookie`, hop-by-hop ones
//!   (`connection: x-custom-hop`, `x-custom-hop`, `keep-alive`) and its own `x-request-id`;
//! - anything else, the echo: 200 `{"upstream", "method", "path" (raw, percent-encoding
//!   kept), "query" (raw or null), "headers" ({name: value, or [values] when repeated}),
//!   "body_len", "body_sha256"}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The headers the `headers` route answers with, in order (`set-cookie` twice).
pub const HEADERS: &[(&str, &str)] = &[
    ("x-custom", "kept"),
    ("set-cookie", "a=1; Path=/"),
    ("set-cookie", "b=2; Path=/; HttpOnly"),
    ("connection", "x-custom-hop"),
    ("x-custom-hop", "1"),
    ("keep-alive", "timeout=5"),
    ("x-request-id", "from-upstream"),
];

/// A running upstream; it stops accepting when dropped.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

struct State {
    name: String,
    seen: Mutex<Vec<Seen>>,
    connections: AtomicUsize,
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target: the raw path and `?query`.
    pub target: String,
    /// Every header line in arrival order, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every value of header `name` (lower case), in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

impl Upstream {
    /// Starts upstream `name` on a free port of 127.0.0.1.
    pub async fn start(name: &str) -> Upstream {
        Upstream::start_on(name, 0).await
    }

    /// Starts upstream `name` on `port` of 127.0.0.1 (0: any free one).
    pub async fn start_on(name: &str, port: u16) -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the upstream binds");
        let addr = listener.local_addr().expect("upstream address");
        let state = Arc::new(State {
            name: name.to_owned(),
            seen: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(serve(listener, state.clone()));
        Upstream {
            name: name.to_owned(),
            addr,
            state,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests_seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }

    /// The last request received, failing the test when there is none.
    pub fn last(&self) -> Seen {
        self.requests_seen()
            .pop()
            .unwrap_or_else(|| panic!("upstream {} saw no request", self.name))
    }

    /// How many requests it received.
    pub fn request_count(&self) -> usize {
        self.state.seen.lock().expect("seen").len()
    }

    /// How many TCP connections it accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The `text` route's body.
pub fn text_body(name: &str) -> String {
    format!("plain text from {name}\n")
}

/// The `large` route's body of `bytes` bytes.
pub fn large_body(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i % 251) as u8).collect()
}

/// Chunk `i` of the `chunked` route.
pub fn chunk(i: u64) -> String {
    format!("chunk {i};")
}

/// An http URL of a 127.0.0.1 port where nothing listens (bound, then released).
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The URL of a server that reads each request head and answers bytes that are not HTTP,
/// then closes the connection. It runs until the test's runtime ends.
pub async fn garbage_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(b"this is not HTTP at all\r\n\r\n").await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// `101 Switching Protocols` to `protocol`; then the connection greets with the upstream's
/// name and a newline, and echoes every byte it gets until the other side closes.
fn switch(
    upgrade: hyper::upgrade::OnUpgrade,
    protocol: hyper::header::HeaderValue,
    name: &str,
) -> Response<Body> {
    let greeting = format!("{name}\n");
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        if io.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        let mut buffer = [0u8; 1024];
        loop {
            match io.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => {
                    if io.write_all(&buffer[..read]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(hyper::header::UPGRADE, protocol);
    response
        .headers_mut()
        .insert(hyper::header::CONNECTION, "upgrade".parse().expect("value"));
    response
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(state.clone(), request));
            // A connection ends when the proxy closes it; how is no concern of the tests.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str())
            .to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_vec(),
    };
    state.seen.lock().expect("seen").push(seen.clone());

    let query = parts.uri.query();
    let mut route = parts
        .uri
        .path()
        .split('/')
        .skip_while(|segment| !ROUTES.contains(segment));
    let response = match route.next() {
        Some("slow") => {
            let ms = param(query, "ms").unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            echo(&state.name, &seen)
        }
        Some("array") => full(StatusCode::OK, "application/json", "[1,2,3]"),
        Some("text") => full(StatusCode::OK, "text/plain", text_body(&state.name)),
        Some("binary") => full(
            StatusCode::OK,
            "application/octet-stream",
            (0..=255u8).collect::<Vec<u8>>(),
        ),
        Some("large") => {
            let bytes = param(query, "bytes").unwrap_or(0) as usize;
            full(
                StatusCode::OK,
                "application/octet-stream",
                large_body(bytes),
            )
        }
        Some("chunked") => chunked(
            param(query, "chunks").unwrap_or(3),
            Duration::from_millis(param(query, "ms").unwrap_or(10)),
        ),
        Some("status") => {
            let status = route
                .next()
                .and_then(|code| code.parse().ok())
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::BAD_REQUEST);
            let body = json!({"upstream": state.name, "status": status.as_u16()});
            full(status, "application/json", body.to_string())
        }
        Some("upgrade") => match (upgrade, parts.headers.get(hyper::header::UPGRADE)) {
            (Some(upgrade), Some(protocol)) => switch(upgrade, protocol.clone(), &state.name),
            _ => full(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "no upgrade asked for",
            ),
        },
        Some("headers") => {
            let mut response = full(StatusCode::OK, "application/json", "{}");
            for (name, value) in HEADERS {
                response
                    .headers_mut()
                    .append(*name, value.parse().expect("value"));
            }
            response
        }
        _ => echo(&state.name, &seen),
    };
    Ok(response)
}

const ROUTES: &[&str] = &[
    "slow", "array", "text", "binary", "large", "chunked", "status", "headers", "upgrade",
];

fn echo(name: &str, seen: &Seen) -> Response<Body> {
    let mut headers = Map::new();
    for (key, value) in &seen.headers {
        match headers.get_mut(key) {
            None => {
                headers.insert(key.clone(), json!(value));
            }
            Some(Value::Array(values)) => values.push(json!(value)),
            Some(first) => {
                let first_value = first.take();
                *first = json!([first_value, value]);
            }
        }
    }
    let (path, query) = match seen.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (seen.target.as_str(), None),
    };
    let sha256: String = Sha256::digest(&seen.body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let body = json!({
        "upstream": name,
        "method": seen.method,
        "path": path,
        "query": query,
        "headers": headers,
        "body_len": seen.body.len(),
        "body_sha256": sha256,
    });
    full(StatusCode::OK, "application/json", body.to_string())
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed_unsync())
        .expect("response")
}

/// `count` chunks `pause` apart, as a body of unknown length (so sent chunked).
fn chunked(count: u64, pause: Duration) -> Response<Body> {
    let frames = futures_util::stream::unfold(0, move |i| async move {
        if i == count {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        Some((Ok(Frame::data(Bytes::from(chunk(i)))), i + 1))
    });
    Response::builder()
        .header("content-type", "text/plain")
        .body(StreamBody::new(frames).boxed_unsync())
        .expect("response")
}

/// The number `key=N` in `query`.
fn param(query: Option<&str>, key: &str) -> Option<u64> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
}
