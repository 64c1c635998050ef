//! The `proxy` handler: forwards a request to one of its backend's targets and streams the
//! answer back.
//!
//! Answering is in two steps. Synchronously, in `respond`: find the backend's live
//! upstream (`backends`), pick a target, and build the upstream request's head (its URI:
//! the target's base path, then the path inside the project, or what follows the
//! endpoint's prefix with `strip_prefix`, then the query, all raw; its headers: the
//! caller's, minus hop-by-hop ones, plus `host` and the `x-forwarded-*` and `x-request-id`
//! headers). Then, in a boxed future ([`Reply::Later`]): send it on the node's pooled
//! client, wait at most the backend's `timeout_ms` for the response head, and hand back its
//! status, headers (minus hop-by-hop ones) and body, streamed. Neither body is buffered.
//!
//! A failed connect marks the target down (`backends::health`); a request without a body
//! is then sent once more, to another healthy target if there is one. Failures answer 503
//! `upstream_unavailable` (no target, or none reachable), 504 `gateway_timeout` (connect
//! timeout, or no response head in time) or 502 `bad_gateway` (anything else), each
//! logged with the request id, the target and the cause; request headers are never logged.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use smallvec::SmallVec;

use super::{Context, Inbound, Reply};
use crate::backends::{
    Failure, Outgoing, Returning, SendError, Tail, Targets, Upstream, client::Chain, health,
};
use crate::body::Body;
use crate::error::{self, ApiError, Code};
use crate::model::{PREFIX_TAIL, ProxySpec};
use crate::observe;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A compiled proxy endpoint: the backend it forwards to, and whether its own path is
/// taken off the front.
#[derive(Debug, Clone)]
pub struct ProxyHandler {
    /// Shared with each request's future: cloning it costs no allocation.
    backend: Arc<str>,
    strip_prefix: bool,
}

impl ProxyHandler {
    pub fn compile(spec: &ProxySpec) -> ProxyHandler {
        ProxyHandler {
            backend: Arc::from(spec.backend.as_str()),
            strip_prefix: spec.strip_prefix,
        }
    }

    /// Forwards the request. Synchronous set-up (pick a target, build the upstream request
    /// head) then [`Reply::Later`] with a boxed future that sends it and maps the answer.
    pub fn respond(
        &self,
        cx: &Context<'_>,
        body: Option<Inbound>,
        upgrade: Option<OnUpgrade>,
    ) -> Reply {
        let id = cx.request_id;
        let Some(upstream) = cx.upstreams.get(&self.backend) else {
            // Validation makes a proxy endpoint name one of its project's backends.
            tracing::warn!(
                request_id = error::id_str(id),
                backend = &*self.backend,
                "a proxy endpoint names a backend the project does not have"
            );
            return Reply::Now(unavailable(&self.backend, id));
        };
        let now = health::now_ms();
        // One snapshot of the targets for the whole exchange: discovery may replace them.
        let targets = upstream.targets();
        let Some((index, target)) = upstream
            .pick(&targets, now)
            .and_then(|index| Some((index, targets.get(index)?)))
        else {
            return Reply::Now(unavailable(&self.backend, id));
        };
        let tail = if self.strip_prefix {
            Tail::Rest(cx.params.get(PREFIX_TAIL))
        } else {
            Tail::Path(cx.path)
        };
        let Some(uri) = target.uri(tail, cx.query) else {
            tracing::warn!(
                request_id = error::id_str(id),
                backend = &*self.backend,
                target = %target.authority(),
                "the upstream request's URI is not valid"
            );
            return Reply::Now(failure(Code::BadGateway, &self.backend, id));
        };
        let mut headers = request_headers(cx.headers, target.host(), cx.peer.ip(), id);
        if let Some(name) = cx.subject_header {
            // Only Switchyard says who the caller is: a header the caller sent goes.
            headers.remove(name);
            if let Some(value) = cx
                .identity
                .and_then(|i| HeaderValue::from_str(&i.subject).ok())
            {
                headers.insert(name.clone(), value);
            }
        }
        // A request for a protocol switch (WebSocket) keeps its `Upgrade` upstream, and the
        // `Connection: upgrade` that makes it one; the caller's connection goes along.
        let upgrade = upgrade.filter(|_| cx.headers.contains_key(header::UPGRADE));
        if upgrade.is_some() {
            for value in cx.headers.get_all(header::UPGRADE) {
                headers.append(header::UPGRADE, value.clone());
            }
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let exchange = Exchange {
            upgrade,
            upstream: Arc::clone(upstream),
            targets: Arc::clone(&targets),
            backend: self.backend.clone(),
            id: id.clone(),
            method: cx.method.clone(),
        };
        Reply::Later(Box::pin(exchange.run(index, uri, headers, body)))
    }
}

/// One request on its way upstream, with what its future needs to send it (again) and
/// report on it.
struct Exchange {
    /// The caller's connection, for a request that asks for a protocol switch.
    upgrade: Option<OnUpgrade>,
    upstream: Arc<Upstream>,
    /// The targets as they were when the request arrived; `index` points into them.
    targets: Arc<Targets>,
    backend: Arc<str>,
    id: HeaderValue,
    method: http::Method,
}

impl Exchange {
    /// Sends the request to target `index` (and on a failed connect, without a body, once
    /// more to another target), and maps the answer.
    async fn run(
        mut self,
        mut index: usize,
        mut uri: Uri,
        mut headers: HeaderMap,
        body: Option<Inbound>,
    ) -> Response<Body> {
        let deadline = tokio::time::Instant::now() + self.upstream.timeout();
        let mut body = Outgoing::from(body);
        // Only a request without a body can be sent twice: a body is read as it is sent.
        let mut again = body.is_empty() && self.targets.len() > 1;
        loop {
            let Some(target) = self.targets.get(index) else {
                return unavailable(&self.backend, &self.id);
            };
            // The head is kept for a second attempt only when there may be one.
            let mut request = Request::new(std::mem::take(&mut body));
            *request.method_mut() = self.method.clone();
            if again {
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers.clone();
            } else {
                *request.uri_mut() = std::mem::take(&mut uri);
                *request.headers_mut() = std::mem::take(&mut headers);
            }
            let sent = target
                .pool()
                .send(request, self.upstream.connect_timeout(), deadline);
            let error = match sent.await {
                Ok(response) => {
                    target.health().succeeded();
                    return match self.upgrade.take() {
                        Some(caller) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                            tunnel(caller, response, &self.backend, &self.id)
                        }
                        _ => relay(response),
                    };
                }
                Err(SendError::Timeout) => {
                    tracing::warn!(
                        request_id = error::id_str(&self.id),
                        backend = &*self.backend,
                        target = %target.authority(),
                        timeout_ms = self.upstream.timeout().as_millis(),
                        "the upstream sent no response head in time"
                    );
                    return failure(Code::GatewayTimeout, &self.backend, &self.id);
                }
                Err(error) => error,
            };
            let kind = error.failure();
            if kind.marks_down() {
                target.health().failed(health::now_ms());
            }
            let next = if again && kind.marks_down() {
                self.upstream
                    .pick_other(&self.targets, health::now_ms(), index)
            } else {
                None
            };
            tracing::warn!(
                request_id = error::id_str(&self.id),
                backend = &*self.backend,
                target = %target.authority(),
                error = %Chain(&error),
                retry = next.is_some(),
                "upstream request failed"
            );
            let code = match kind {
                Failure::Unreachable => Code::UpstreamUnavailable,
                Failure::ConnectTimeout => Code::GatewayTimeout,
                Failure::Connect | Failure::Exchange => Code::BadGateway,
            };
            let Some((next, other)) = next.and_then(|next| Some((next, self.targets.get(next)?)))
            else {
                return failure(code, &self.backend, &self.id);
            };
            let Some(rebased) = other.rebase(&uri, target) else {
                return failure(code, &self.backend, &self.id);
            };
            headers.insert(header::HOST, other.host().clone());
            index = next;
            uri = rebased;
            again = false;
        }
    }
}

/// The caller's answer from an upstream's: its status, its headers but hop-by-hop ones and
/// any `x-request-id` (the edge puts the request's own id in the placeholder first), and its
/// body, streamed.
fn relay(response: Response<Returning>) -> Response<Body> {
    let (head, body) = response.into_parts();
    let mut answer = Response::new(Body::upstream(body));
    *answer.status_mut() = head.status;
    *answer.headers_mut() = response_headers(head.headers);
    answer
}

/// The caller's answer to an upstream's `101 Switching Protocols`: the same head (its
/// `Upgrade` and `Connection: upgrade` kept, as a switch needs them), and, once both sides
/// have switched, the two connections joined byte for byte until either closes.
fn tunnel(
    caller: OnUpgrade,
    response: Response<Returning>,
    backend: &Arc<str>,
    id: &HeaderValue,
) -> Response<Body> {
    // The connection is the tunnel's now: it does not go back to the pool.
    let mut response = response.map(Returning::into_inner);
    let upstream = hyper::upgrade::on(&mut response);
    let (head, _) = response.into_parts();
    let (backend, request_id) = (backend.clone(), id.clone());
    tokio::spawn(async move {
        let (caller, upstream) = match tokio::try_join!(caller, upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::warn!(
                    request_id = error::id_str(&request_id),
                    backend = &*backend,
                    %error,
                    "a connection upgrade could not be completed"
                );
                return;
            }
        };
        let (mut caller, mut upstream) = (TokioIo::new(caller), TokioIo::new(upstream));
        if let Err(error) = tokio::io::copy_bidirectional(&mut caller, &mut upstream).await {
            tracing::debug!(
                request_id = error::id_str(&request_id),
                backend = &*backend,
                %error,
                "an upgraded connection ended with an error"
            );
        }
    });
    let upgrade: SmallVec<[HeaderValue; 1]> = head
        .headers
        .get_all(header::UPGRADE)
        .iter()
        .cloned()
        .collect();
    let mut answer = Response::new(Body::empty());
    *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let mut headers = response_headers(head.headers);
    for value in upgrade {
        headers.append(header::UPGRADE, value);
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    *answer.headers_mut() = headers;
    answer
}

/// The 503 of a backend with no target to send to.
fn unavailable(backend: &str, id: &HeaderValue) -> Response<Body> {
    failure(Code::UpstreamUnavailable, backend, id)
}

/// The error answer for an upstream failure. The message names the backend, never a target
/// (the caller need not learn the project's internal addresses).
fn failure(code: Code, backend: &str, id: &HeaderValue) -> Response<Body> {
    let message = match code {
        Code::UpstreamUnavailable => {
            format!("no target of the backend `{backend}` accepts connections")
        }
        Code::GatewayTimeout => format!("the backend `{backend}` did not answer in time"),
        _ => format!("the backend `{backend}` failed to answer"),
    };
    error::render(&ApiError::new(code, message), error::id_str(id))
}

/// Whether `name` is a hop-by-hop header: one of the standard ones, or one the message's
/// `Connection` headers (`connection`) name.
fn hop_by_hop(name: &HeaderName, connection: &[HeaderValue]) -> bool {
    *name == header::CONNECTION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
        || connection.iter().any(|value| names(value, name))
}

/// Whether a `Connection` value lists `name` (a comma-separated list of header names,
/// compared without case).
fn names(connection: &HeaderValue, name: &HeaderName) -> bool {
    connection
        .as_bytes()
        .split(|&byte| byte == b',')
        .any(|token| {
            token
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_str().as_bytes())
        })
}

/// The `Connection` values of a message (usually none).
fn connection_values(headers: &HeaderMap) -> SmallVec<[HeaderValue; 2]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .cloned()
        .collect()
}

/// The headers of the upstream request: the caller's, in order and repeated ones kept, but
/// hop-by-hop ones, `host` and those set here; then `host` (the target's authority),
/// `x-forwarded-for` (the incoming list, if any, then the caller's address),
/// `x-forwarded-proto: http`, `x-forwarded-host` (the incoming `host`, if any) and
/// `x-request-id` (the request's id).
fn request_headers(
    incoming: &HeaderMap,
    host: &HeaderValue,
    peer: IpAddr,
    id: &HeaderValue,
) -> HeaderMap {
    let connection = connection_values(incoming);
    let mut headers = HeaderMap::with_capacity(incoming.len() + 5);
    let mut forwarded_for: Option<Vec<u8>> = None;
    for (name, value) in incoming {
        if *name == X_FORWARDED_FOR {
            let list = forwarded_for.get_or_insert_with(Vec::new);
            if !list.is_empty() {
                list.extend_from_slice(b", ");
            }
            list.extend_from_slice(value.as_bytes());
            continue;
        }
        let ours = *name == header::HOST
            || *name == X_FORWARDED_PROTO
            || *name == X_FORWARDED_HOST
            || *name == observe::REQUEST_ID;
        if !ours && !hop_by_hop(name, &connection) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::HOST, host.clone());
    headers.insert(X_FORWARDED_FOR, forwarded(forwarded_for, peer));
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(incoming_host) = incoming.get(header::HOST) {
        headers.insert(X_FORWARDED_HOST, incoming_host.clone());
    }
    headers.insert(observe::REQUEST_ID, id.clone());
    headers
}

/// `x-forwarded-for`: the incoming list, then the caller's address (an IPv4 address mapped
/// into IPv6 written as IPv4).
fn forwarded(list: Option<Vec<u8>>, peer: IpAddr) -> HeaderValue {
    let mut joined = match list {
        Some(mut list) if !list.trim_ascii().is_empty() => {
            list.extend_from_slice(b", ");
            list
        }
        _ => Vec::with_capacity(15),
    };
    write_address(&mut joined, peer.to_canonical());
    // Valid header values joined by `, ` and an address are a valid header value.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(joined))
        .unwrap_or(HeaderValue::from_static(""))
}

/// Writes an address as `Display` does, an IPv4 one without going through `core::fmt` (it
/// is written for every proxied request).
fn write_address(out: &mut Vec<u8>, address: IpAddr) {
    match address {
        IpAddr::V4(v4) => {
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            // Writing to a `Vec` cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// The headers of the caller's answer: the upstream's, in order and repeated ones kept, but
/// hop-by-hop ones and `x-request-id` (the edge adds the request's own). Usually there is
/// none of those, and the map is handed on as it is.
fn response_headers(upstream: HeaderMap) -> HeaderMap {
    let connection = connection_values(&upstream);
    let dropped = |name: &HeaderName| *name == observe::REQUEST_ID || hop_by_hop(name, &connection);
    if !upstream.keys().any(dropped) {
        return upstream;
    }
    // Rebuilt rather than edited: removing from a `HeaderMap` reorders it.
    let mut headers = HeaderMap::with_capacity(upstream.len());
    let mut current: Option<HeaderName> = None;
    for (name, value) in upstream {
        // A name comes once, before the first of its values.
        if let Some(name) = name {
            current = Some(name);
        }
        let Some(name) = &current else { continue };
        if !dropped(name) {
            headers.append(name.clone(), value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect()
    }

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

    fn outgoing(incoming: &[(&str, &str)]) -> Vec<(String, String)> {
        let host = HeaderValue::from_static("upstream:9000");
        let id = HeaderValue::from_static("req-1");
        let mut got = pairs(&request_headers(&map(incoming), &host, PEER, &id));
        got.sort();
        got
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn request_headers_drop_hop_by_hop_and_add_forwarding() {
        let got = outgoing(&[
            ("host", "switchyard.example"),
            ("accept", "application/json"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "close"),
            ("x-secret-hop", "gone"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-request-id", "the-callers"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "spoofed"),
            ("content-length", "12"),
        ]);
        let want = owned(&[
            ("accept", "application/json"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("content-length", "12"),
            ("host", "upstream:9000"),
            ("x-forwarded-for", "10.0.0.7"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "switchyard.example"),
            ("x-request-id", "req-1"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn repeated_headers_keep_their_order() {
        let host = HeaderValue::from_static("u");
        let id = HeaderValue::from_static("r");
        let incoming = map(&[("via", "1.1 a"), ("via", "1.1 b"), ("via", "1.1 c")]);
        let headers = request_headers(&incoming, &host, PEER, &id);
        let via: Vec<_> = headers.get_all("via").iter().collect();
        assert_eq!(via, ["1.1 a", "1.1 b", "1.1 c"]);
    }

    #[test]
    fn x_forwarded_for_appends_the_caller() {
        let got = outgoing(&[("x-forwarded-for", "1.2.3.4")]);
        assert!(got.contains(&("x-forwarded-for".into(), "1.2.3.4, 10.0.0.7".into())));
        let got = outgoing(&[
            ("x-forwarded-for", "1.2.3.4, 5.6.7.8"),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        let want = "1.2.3.4, 5.6.7.8, 9.9.9.9, 10.0.0.7";
        assert!(
            got.contains(&("x-forwarded-for".into(), want.into())),
            "{got:?}"
        );
        let got = outgoing(&[("x-forwarded-for", "")]);
        assert!(got.contains(&("x-forwarded-for".into(), "10.0.0.7".into())));
        // No incoming host: no x-forwarded-host.
        assert!(!got.iter().any(|(name, _)| name == "x-forwarded-host"));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(forwarded(None, mapped), "192.0.2.1");
        assert_eq!(forwarded(None, IpAddr::V6(Ipv6Addr::LOCALHOST)), "::1");
    }

    #[test]
    fn response_headers_drop_hop_by_hop_and_the_upstreams_request_id() {
        let upstream = map(&[
            ("content-type", "text/plain"),
            ("x-request-id", "upstream-id"),
            ("set-cookie", "a=1"),
            ("connection", "x-internal"),
            ("x-internal", "secret"),
            ("set-cookie", "b=2"),
            ("transfer-encoding", "chunked"),
            ("keep-alive", "timeout=5"),
            ("content-length", "5"),
        ]);
        let headers = response_headers(upstream);
        assert_eq!(
            pairs(&headers),
            [
                ("content-type".into(), "text/plain".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
                ("content-length".into(), "5".into()),
            ]
        );
        // Nothing to take out: handed on as it is, in order.
        let plain = map(&[
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("content-length", "5"),
            ("set-cookie", "b=2"),
        ]);
        assert_eq!(pairs(&response_headers(plain.clone())), pairs(&plain));
        // The edge adds the request's id: exactly one id, ours.
        let mut headers = headers;
        observe::set_request_id(&mut headers, HeaderValue::from_static("ours"));
        let ids: Vec<_> = headers.get_all("x-request-id").iter().collect();
        assert_eq!(ids, ["ours"]);
    }

    #[test]
    fn connection_tokens_are_matched_whole_and_without_case() {
        let connection = [HeaderValue::from_static(" Foo ,bar-baz,,")];
        let named = |name: &'static str| hop_by_hop(&HeaderName::from_static(name), &connection);
        assert!(named("foo"));
        assert!(named("bar-baz"));
        assert!(!named("bar"));
        assert!(!named("foo-bar"));
        assert!(named("upgrade"));
        assert!(!named("accept"));
    }

    #[test]
    fn a_handler_stays_small() {
        assert!(std::mem::size_of::<ProxyHandler>() <= 24);
    }

    #[test]
    fn errors_name_the_backend_not_the_target() {
        let id = HeaderValue::from_static("req-9");
        for (code, status) in [
            (Code::UpstreamUnavailable, 503),
            (Code::GatewayTimeout, 504),
            (Code::BadGateway, 502),
        ] {
            let response = failure(code, "pay", &id);
            assert_eq!(response.status(), status);
            let Body::Full(Some(bytes)) = response.into_body() else {
                panic!("error bodies are full");
            };
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(value["error"]["code"], code.as_str());
            assert_eq!(value["error"]["request_id"], "req-9");
            assert!(
                value["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("`pay`")
            );
        }
    }
}
