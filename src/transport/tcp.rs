//! A TCP stream that hyper drives while the transport keeps a look at it.
//!
//! Between two requests a connection sits idle, and the server may close it (HTTP.sys after
//! its idle timeout, a restart). The only proof that a request never reached the server is
//! that the server's close had arrived before the request was written; so before reusing a
//! connection the transport peeks at the socket, without reading or disturbing what hyper
//! waits for.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The most one read asks of the socket.
const READ_CHUNK: usize = 64 << 10;
/// The least: a WS-Management answer's head and a small body.
const FIRST_READ: usize = 4 << 10;

/// The stream hyper reads and writes; [`Watch`] sees the same socket.
pub(super) struct SharedTcp {
    stream: Arc<TcpStream>,
    /// How much the next read asks for (and so zeroes first): doubled after a read that
    /// filled it, down to what the last read brought otherwise.
    next_read: usize,
}

/// A view of a [`SharedTcp`]'s socket that only asks whether the server closed it.
pub(super) struct Watch(Arc<TcpStream>);

/// What an idle connection's socket shows.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Idle {
    /// Open, nothing received: a request may go out.
    Open,
    /// Open, with bytes the server sent unasked after its last answer (a TLS close_notify, an
    /// HTTP 408 before closing).
    Unasked,
    /// The server closed it (end of stream or reset): a request written now would never be
    /// read.
    Closed,
}

impl SharedTcp {
    pub(super) fn new(stream: TcpStream) -> (Self, Watch) {
        let stream = Arc::new(stream);
        let shared = Self {
            stream: stream.clone(),
            next_read: FIRST_READ,
        };
        (shared, Watch(stream))
    }
}

impl Watch {
    /// Peeks at the socket without waiting (it is non-blocking) and without taking anything
    /// from it.
    pub(super) fn idle(&self) -> Idle {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        match socket2::SockRef::from(&*self.0).peek(&mut byte) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Idle::Open,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Idle::Open,
            Ok(n) if n > 0 => Idle::Unasked,
            _ => Idle::Closed,
        }
    }
}

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            // Safe code reads into initialized bytes only, and each call's buffer comes
            // uninitialized (hyper's spare capacity): zero about what the socket holds, as the
            // last reads tell, not the whole buffer every time. A fleet's answers are a few
            // kilobytes; a large page's reads grow to `READ_CHUNK` within a few calls.
            let want = buf.remaining().min(this.next_read);
            // `try_read` clears the readiness when the socket has nothing after all.
            match this.stream.try_read(buf.initialize_unfilled_to(want)) {
                Ok(n) => {
                    buf.advance(n);
                    this.next_read = if n == want {
                        this.next_read.max(want * 2).min(READ_CHUNK)
                    } else {
                        n.next_power_of_two().clamp(FIRST_READ, READ_CHUNK)
                    };
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match socket2::SockRef::from(&*self.stream).shutdown(std::net::Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}
