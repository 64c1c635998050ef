//! The response body type every answer uses, on both the project path and the platform path.
//!
//! A closed enum rather than a boxed body: a mock answer is a `Bytes` handed to hyper as is,
//! with no allocation for the body wrapper. Platform answers (axum) keep axum's own body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The largest piece of a whole body handed to hyper at once. hyper copies what it sends
/// into the connection's write buffer (`server`), which keeps its size: sending a large
/// body in pieces bounds that buffer. Splitting shares the bytes, it does not copy them.
pub const MAX_FRAME: usize = 16 * 1024;

/// A response body: whole bytes (the hot path), nothing, or a platform (axum) body.
pub enum Body {
    /// The whole body in one buffer; `None` once it has been sent.
    Full(Option<Bytes>),
    /// A body from the platform API.
    Axum(axum::body::Body),
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
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = axum::Error;

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
            Body::Axum(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(bytes) => bytes.is_none(),
            Body::Axum(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Axum(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
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
}
