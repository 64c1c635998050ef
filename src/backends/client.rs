//! What proxied requests carry and what their failures mean: the request body sent
//! upstream ([`Outgoing`], streamed, never buffered), the classification of a failure for
//! the target's health and the caller's answer ([`Failure`]), and an error's causes for the
//! logs ([`Chain`]). The connections themselves are `pool`'s.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

/// A request body on its way upstream: none, the caller's, streamed as it arrives, or the
/// caller's read whole before (to check it against the endpoint's schema).
#[derive(Debug, Default)]
pub enum Outgoing {
    #[default]
    Empty,
    Stream(Incoming),
    Whole(Bytes),
}

impl From<Option<crate::handlers::Inbound>> for Outgoing {
    fn from(body: Option<crate::handlers::Inbound>) -> Outgoing {
        match body {
            None => Outgoing::Empty,
            Some(crate::handlers::Inbound::Stream(body)) => Outgoing::Stream(body),
            Some(crate::handlers::Inbound::Read(bytes)) if bytes.is_empty() => Outgoing::Empty,
            Some(crate::handlers::Inbound::Read(bytes)) => Outgoing::Whole(bytes),
        }
    }
}

impl Outgoing {
    /// Whether there is nothing to send (so that the request can be sent twice).
    pub fn is_empty(&self) -> bool {
        match self {
            Outgoing::Empty => true,
            Outgoing::Stream(body) => http_body::Body::is_end_stream(body),
            Outgoing::Whole(_) => false,
        }
    }
}

impl http_body::Body for Outgoing {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Outgoing::Empty => Poll::Ready(None),
            Outgoing::Stream(body) => Pin::new(body).poll_frame(cx),
            Outgoing::Whole(bytes) => {
                let bytes = std::mem::take(bytes);
                Poll::Ready((!bytes.is_empty()).then(|| Ok(Frame::data(bytes))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Empty => true,
            Outgoing::Stream(body) => body.is_end_stream(),
            Outgoing::Whole(bytes) => bytes.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Empty => SizeHint::with_exact(0),
            Outgoing::Stream(body) => body.size_hint(),
            Outgoing::Whole(bytes) => SizeHint::with_exact(bytes.len() as u64),
        }
    }
}

/// What went wrong with a request sent to a target, as far as the target's health and the
/// answer to the caller are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The target cannot be reached: it refused the connection, no route leads to it, or its
    /// name does not resolve. The target is marked down.
    Unreachable,
    /// Connecting took longer than the backend's connect timeout. The target is marked down.
    ConnectTimeout,
    /// Connecting failed on this side (out of sockets, say): not the target's fault.
    Connect,
    /// The exchange failed once connected: reset, closed early, or not valid HTTP.
    Exchange,
}

impl Failure {
    /// What a failed connect means, from the OS's error.
    pub fn of_connect(error: &io::Error) -> Failure {
        match error.kind() {
            io::ErrorKind::TimedOut => Failure::ConnectTimeout,
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::NotConnected => Failure::Unreachable,
            _ => Failure::Connect,
        }
    }

    /// Whether the target is to blame, and so is marked down (and another one may be tried).
    pub fn marks_down(self) -> bool {
        matches!(self, Failure::Unreachable | Failure::ConnectTimeout)
    }
}

/// Formats an error with its causes, `a: b: c`, for the logs.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_are_told_apart() {
        use io::ErrorKind::*;
        for (kind, failure) in [
            (ConnectionRefused, Failure::Unreachable),
            (HostUnreachable, Failure::Unreachable),
            (NetworkUnreachable, Failure::Unreachable),
            (NotConnected, Failure::Unreachable),
            (TimedOut, Failure::ConnectTimeout),
            (Other, Failure::Connect),
            (AddrNotAvailable, Failure::Connect),
        ] {
            assert_eq!(
                Failure::of_connect(&io::Error::from(kind)),
                failure,
                "{kind:?}"
            );
        }
        assert!(Failure::Unreachable.marks_down() && Failure::ConnectTimeout.marks_down());
        assert!(!Failure::Connect.marks_down() && !Failure::Exchange.marks_down());
    }

    #[test]
    fn a_chain_names_every_cause() {
        #[derive(Debug)]
        struct Step(io::Error);
        impl std::fmt::Display for Step {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl StdError for Step {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let error = Step(io::Error::other("refused"));
        assert_eq!(Chain(&error).to_string(), "tcp connect error: refused");
    }
}
