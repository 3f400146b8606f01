//! What the fixture server does with its connections and tells about them: closing them after
//! some requests as real servers do (announced or not), and counting the connections opened,
//! the handshakes completed and the requests refused because their connection never
//! authenticated.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How the fixture server's connections have been used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// TCP connections accepted.
    pub opened: usize,
    /// Negotiate handshakes completed (each binds a security context to its connection).
    pub handshakes: usize,
    /// Requests without credentials of their own that came on a connection that had not
    /// authenticated (a sealed body on a new connection, say): each was answered 401. A client
    /// that knows which connection carries its context sends none.
    pub unauthenticated: usize,
    /// Connections the server closed after [`FixtureServerBuilder::close_connections_after`]
    /// or [`FixtureServerBuilder::drop_connections_after`] requests.
    ///
    /// [`FixtureServerBuilder::close_connections_after`]: super::FixtureServerBuilder::close_connections_after
    /// [`FixtureServerBuilder::drop_connections_after`]: super::FixtureServerBuilder::drop_connections_after
    pub closed_by_server: usize,
}

/// The counters behind [`ConnectionStats`], shared by the server's connections.
#[derive(Default)]
pub(super) struct Counters {
    opened: AtomicUsize,
    handshakes: AtomicUsize,
    unauthenticated: AtomicUsize,
    closed: AtomicUsize,
}

impl Counters {
    pub(super) fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn handshake(&self) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn unauthenticated(&self) {
        self.unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn closed(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> ConnectionStats {
        ConnectionStats {
            opened: self.opened.load(Ordering::Relaxed),
            handshakes: self.handshakes.load(Ordering::Relaxed),
            unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
            closed_by_server: self.closed.load(Ordering::Relaxed),
        }
    }
}

/// When the server ends a connection of its own accord.
#[derive(Clone, Copy, Debug)]
pub(super) struct Closing {
    /// Requests answered on a connection before it is closed (handshake rounds included).
    pub after: u32,
    /// With `Connection: close` on the last answer (as HTTP.sys does), or silently once the
    /// answer is written (as an idle timeout, a restart or a middlebox does).
    pub announced: bool,
}

/// A server-side stream that can be told to close once the answer being written has gone out:
/// it then shuts its write side (the client sees the end of the stream right after the last
/// byte of the answer) and reads nothing more.
pub(super) struct ClosingStream<S> {
    inner: S,
    close: Arc<AtomicBool>,
    closed: bool,
}

impl<S> ClosingStream<S> {
    /// The stream, and the switch that closes it after the next answer.
    pub(super) fn new(inner: S) -> (Self, Arc<AtomicBool>) {
        let close = Arc::new(AtomicBool::new(false));
        (
            Self {
                inner,
                close: close.clone(),
                closed: false,
            },
            close,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClosingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClosingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        if !self.closed && self.close.load(Ordering::Acquire) {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.closed = true;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
