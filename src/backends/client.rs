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

/// A request body on its way upstream: none, or the caller's, streamed as it arrives.
#[derive(Debug, Default)]
pub enum Outgoing {
    #[default]
    Empty,
    Stream(Incoming),
}

impl From<Option<Incoming>> for Outgoing {
    fn from(body: Option<Incoming>) -> Outgoing {
        body.map_or(Outgoing::Empty, Outgoing::Stream)
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
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Empty => true,
            Outgoing::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Empty => SizeHint::with_exact(0),
            Outgoing::Stream(body) => body.size_hint(),
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
