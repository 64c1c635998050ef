//! The response body type every answer uses, on both the project path and the platform path.
//!
//! A closed enum rather than a boxed body: a mock answer is a `Bytes` handed to hyper as is,
//! with no allocation for the body wrapper. Platform answers (axum) keep axum's own body;
//! proxied answers stream the upstream's body as it arrives (`handlers::proxy`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body as _;
use http_body::{Frame, SizeHint};

use crate::backends::Returning;

/// The largest piece of a whole body handed to hyper at once. hyper copies what it sends
/// into the connection's write buffer (`server`), which keeps its size: sending a large
/// body in pieces bounds that buffer. Splitting shares the bytes, it does not copy them.
pub const MAX_FRAME: usize = 16 * 1024;

/// A response body: whole bytes (the hot path), nothing, a platform (axum) body, or an
/// upstream's body.
pub enum Body {
    /// The whole body in one buffer; `None` once it has been sent.
    Full(Option<Bytes>),
    /// A body from the platform API.
    Axum(axum::body::Body),
    /// An upstream's body, streamed as it arrives (proxy endpoints). Boxed: it is rare,
    /// and every answer moves a `Body`.
    Upstream(Box<Streamed>),
}

/// An upstream's body on its way to the caller, handed to hyper in pieces of at most
/// [`MAX_FRAME`] bytes, like a whole body: the client reads upstream bodies in frames of up
/// to its read buffer's size, and a frame is copied whole into the connection's write
/// buffer. Splitting shares the bytes, it does not copy them.
pub struct Streamed {
    body: Returning,
    /// What is left of the last frame read.
    rest: Bytes,
}

impl Body {
    pub fn full(bytes: Bytes) -> Self {
        if bytes.is_empty() {
            Body::Full(None)
        } else {
            Body::Full(Some(bytes))
        }
    }

    pub fn empty() -> Self {
        Body::Full(None)
    }

    /// An upstream's body, streamed.
    pub fn upstream(body: Returning) -> Self {
        Body::Upstream(Box::new(Streamed {
            body,
            rest: Bytes::new(),
        }))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = axum::Error;

    // The whole-bytes arm is the hot path and stays small enough to inline into hyper's
    // writer; the streamed kinds are handled out of line.
    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(match bytes {
                Some(rest) if rest.len() > MAX_FRAME => {
                    Some(Ok(Frame::data(rest.split_to(MAX_FRAME))))
                }
                rest => rest.take().map(|b| Ok(Frame::data(b))),
            }),
            streamed => streamed.poll_streamed(cx),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.is_none(),
            streamed => streamed.streamed_end(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            streamed => streamed.streamed_hint(),
        }
    }
}

impl Body {
    /// An upstream's body read whole (to check it against its endpoint's documented
    /// responses), if it ends within `limit` bytes and by `deadline`; otherwise what was
    /// read goes first and the rest streams as it arrives, and `false` says it is not
    /// whole. Trailers, which an upstream's answer to a proxied call hardly ever has, are
    /// not kept when the body is read whole. Other bodies are returned as they are.
    pub async fn gather(self, limit: usize, deadline: tokio::time::Instant) -> (Body, bool) {
        use http_body_util::BodyExt;
        let Body::Upstream(mut streamed) = self else {
            let whole = matches!(self, Body::Full(_));
            return (self, whole);
        };
        let mut read = bytes::BytesMut::from(&streamed.rest[..]);
        loop {
            let frame = match tokio::time::timeout_at(deadline, streamed.body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => return (Body::full(read.freeze()), true),
                // An error, or no end in time: it goes to the caller as it comes.
                Ok(Some(Err(_))) | Err(_) => break,
            };
            if let Some(data) = frame.data_ref() {
                read.extend_from_slice(data);
                if read.len() > limit {
                    break;
                }
            }
        }
        streamed.rest = read.freeze();
        (Body::Upstream(streamed), false)
    }

    #[inline(never)]
    fn poll_streamed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self {
            Body::Full(_) => Poll::Ready(None),
            Body::Axum(body) => Pin::new(body).poll_frame(cx),
            Body::Upstream(streamed) => streamed.poll_frame(cx),
        }
    }

    #[inline(never)]
    fn streamed_end(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.is_none(),
            Body::Axum(body) => body.is_end_stream(),
            Body::Upstream(streamed) => streamed.rest.is_empty() && streamed.body.is_end_stream(),
        }
    }

    #[inline(never)]
    fn streamed_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Axum(body) => body.size_hint(),
            Body::Upstream(streamed) => {
                let mut hint = streamed.body.size_hint();
                let rest = streamed.rest.len() as u64;
                // The upper bound first: `SizeHint` refuses a lower bound above it.
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper.saturating_add(rest));
                }
                hint.set_lower(hint.lower().saturating_add(rest));
                hint
            }
        }
    }
}

impl Streamed {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if !self.rest.is_empty() {
            let piece = self.rest.len().min(MAX_FRAME);
            return Poll::Ready(Some(Ok(Frame::data(self.rest.split_to(piece)))));
        }
        let frame = match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => {
                return Poll::Ready(Some(Err(axum::Error::new(error))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        Poll::Ready(Some(Ok(match frame.into_data() {
            Ok(mut data) if data.len() > MAX_FRAME => {
                let piece = data.split_to(MAX_FRAME);
                self.rest = data;
                Frame::data(piece)
            }
            Ok(data) => Frame::data(data),
            // Trailers go as they came.
            Err(frame) => frame,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_large_body_goes_out_in_bounded_frames_and_whole() {
        let bytes: Vec<u8> = (0..MAX_FRAME * 2 + 100).map(|i| i as u8).collect();
        let mut body = Body::full(Bytes::from(bytes.clone()));
        let mut sizes = Vec::new();
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            sizes.push(data.len());
            seen.extend_from_slice(&data);
            assert_eq!(
                body.size_hint().exact(),
                Some((bytes.len() - seen.len()) as u64)
            );
        }
        assert_eq!(sizes, [MAX_FRAME, MAX_FRAME, 100]);
        assert_eq!(seen, bytes);
        assert!(body.is_end_stream());
    }

    #[test]
    fn streaming_an_upstream_body_does_not_grow_the_hot_path() {
        // Every answer moves a `Body`: an upstream's (hyper's `Incoming`) is no larger than
        // whole bytes with their tag, so the mock path moves no more than before.
        assert!(std::mem::size_of::<Body>() <= 40);
    }

    /// A response from a raw HTTP/1.1 server on the loopback: `head` then `body`, as hyper's
    /// client reads it.
    async fn raw_response(head: &'static str, body: Vec<u8>) -> http::Response<Returning> {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buffer).unwrap();
                assert!(n > 0);
                request.extend_from_slice(&buffer[..n]);
            }
            socket.write_all(head.as_bytes()).unwrap();
            socket.write_all(&body).unwrap();
        });
        let authority: http::uri::Authority = addr.to_string().parse().unwrap();
        let pool = std::sync::Arc::new(crate::backends::Pool::new(authority, None));
        let request = http::Request::get("/")
            .header("host", "test")
            .body(crate::backends::Outgoing::Empty)
            .unwrap();
        let soon = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        pool.send(request, std::time::Duration::from_secs(5), soon)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_upstream_body_goes_out_in_bounded_frames_and_whole() {
        let bytes: Vec<u8> = (0..300_000).map(|i| (i % 251) as u8).collect();
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 300000\r\n\r\n";
        let response = raw_response(head, bytes.clone()).await;
        let mut body = Body::upstream(response.into_body());
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= MAX_FRAME, "a frame of {} bytes", data.len());
            seen.extend_from_slice(&data);
            assert_eq!(
                body.size_hint().exact(),
                Some((bytes.len() - seen.len()) as u64)
            );
        }
        assert_eq!(seen, bytes);
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn an_upstream_that_breaks_off_is_an_error() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
        let response = raw_response(head, b"only some".to_vec()).await;
        let body = Body::upstream(response.into_body());
        assert!(body.collect().await.is_err());
    }
}
