//! One HTTP/1.1 connection, owned: the TCP stream (and TLS) opened here, hyper's
//! connection-level client on top, one request at a time.
//!
//! The transport holds these itself instead of asking a pool for "a connection to the host":
//! a security context (NTLM, Kerberos) belongs to the one TCP connection its handshake travelled
//! on, and a pool may quietly open another underneath, which then carries a sealed body the
//! server never authenticated. Here a request goes out on the connection its caller holds, or
//! not at all, and a request that provably never left (the connection was found closed before
//! a byte of it was written) says so, so that it can be sent again on a new connection.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderValue,
    USER_AGENT,
};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Peer;
use super::driver::{ConnectionFuture, Driver};
use super::http::{HttpSettings, Phase};
use super::tcp::{Idle, SharedTcp, Watch};
use crate::error::{Error, ErrorKind};

const AGENT: &str = concat!("winrm-sessions/", env!("CARGO_PKG_VERSION"));

/// The size of each read from a connection: what each connection keeps between reads, a
/// thousand times over in a fleet. Smaller reads cost more system calls, not more passes
/// through the runtime, since an answer's reads follow one another in one poll (`driver`).
const READ_BUFFER: usize = 16 << 10;

/// An open connection to one peer.
pub(super) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// hyper's reading and writing of the socket, polled by `post` itself.
    driver: Driver,
    socket: Watch,
    /// Requests answered on it.
    answered: u32,
    /// The server's certificate (DER) on HTTPS: what channel bindings are computed from.
    certificate: Option<Vec<u8>>,
    /// The server announced it will close the connection (`Connection: close`), or an answer was
    /// left unread: no further request may use it.
    spent: bool,
    /// When the last answer was read.
    pub(super) idle_since: Instant,
}

/// A complete answer: its head and its whole body.
pub(super) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BytesMut,
}

impl Answer {
    /// The `Content-Type`, empty when absent.
    pub(super) fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The schemes a 401 offers (`Negotiate`, `Kerberos`, `Basic`...).
    pub(super) fn offered_schemes(&self) -> Vec<String> {
        self.headers
            .get_all(hyper::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
            .collect()
    }
}

/// How an exchange failed.
pub(super) enum ExchangeError {
    /// Not a byte of the request was written: the connection was closed before it could be
    /// used. Sending the request again on another connection cannot make the server act twice.
    NotSent(Error),
    /// The request went out (or may have), and no complete answer came back.
    Lost(Error),
    /// The answer came back unusable (larger than the cap).
    Failed(Error),
}

impl ExchangeError {
    pub(super) fn into_error(self) -> Error {
        match self {
            ExchangeError::NotSent(e) | ExchangeError::Lost(e) | ExchangeError::Failed(e) => e,
        }
    }
}

impl Connection {
    /// Connects (TCP to each of the peer's addresses in turn, then TLS on HTTPS) within the
    /// connect timeout.
    pub(super) async fn open(settings: &HttpSettings, peer: &Peer) -> Result<Self, Error> {
        let timeout = settings.connect_timeout;
        match tokio::time::timeout(timeout, Self::open_unbounded(settings, peer)).await {
            Ok(result) => result,
            Err(_) => Err(ErrorKind::Timeout {
                phase: "connecting",
                after: timeout,
            }
            .into()),
        }
    }

    async fn open_unbounded(settings: &HttpSettings, peer: &Peer) -> Result<Self, Error> {
        let tcp = connect_tcp(peer).await?;
        // Small requests and answers one at a time: no waiting for a full segment.
        let _ = tcp.set_nodelay(true);
        let (tcp, socket) = SharedTcp::new(tcp);
        let mut builder = hyper::client::conn::http1::Builder::new();
        // Reads of one fixed size: an adaptive buffer grows to hundreds of kilobytes on a large
        // page and keeps them while the connection sits idle, which over a watched fleet of
        // thousands of hosts is most of the memory.
        builder.read_buf_exact_size(Some(READ_BUFFER));
        if peer.https {
            let name = ServerName::try_from(peer.host.clone())
                .map_err(|e| Error::config(format!("{}: not a TLS server name: {e}", peer.host)))?;
            let connector = tokio_rustls::TlsConnector::from(settings.tls_config()?);
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| super::http::connect_error(e, &peer.address))?;
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.as_ref().to_vec());
            let (sender, driver) = handshake(&builder, tls).await?;
            Ok(Self::new(sender, driver, socket, certificate))
        } else {
            let (sender, driver) = handshake(&builder, tcp).await?;
            Ok(Self::new(sender, driver, socket, None))
        }
    }

    fn new(
        sender: SendRequest<Full<Bytes>>,
        driver: Driver,
        socket: Watch,
        certificate: Option<Vec<u8>>,
    ) -> Self {
        Self {
            sender,
            driver,
            socket,
            answered: 0,
            certificate,
            spent: false,
            idle_since: Instant::now(),
        }
    }

    /// The server's certificate (DER), on HTTPS.
    pub(super) fn certificate(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }

    /// Whether another request may go out on this connection: the server has not closed it or
    /// announced that it will.
    pub(super) fn is_reusable(&self) -> bool {
        !self.spent && !self.sender.is_closed()
    }

    /// Whether the socket of a connection that sat idle after an answer is still open, as far
    /// as the server has said. Closed, it cannot carry a request; spoken to unasked, it is
    /// about to close (on TLS, the close_notify alert that precedes the end of the stream; on
    /// plain HTTP, an answer to no request, such as a 408).
    fn open_after_idle(&self) -> bool {
        self.socket.idle() == Idle::Open
    }

    /// Posts `body` and reads the whole answer, within the request timeout.
    pub(super) async fn post(
        &mut self,
        settings: &HttpSettings,
        peer: &Peer,
        content_type: &str,
        authorization: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<Answer, ExchangeError> {
        let deadline = Instant::now() + settings.request_timeout;
        let timed_out = |phase| {
            Error::from(ErrorKind::Timeout {
                phase,
                after: settings.request_timeout,
            })
        };
        // A connection that has answered nothing yet has had nothing to say: the peek (a
        // system call) is for connections that sat idle after an answer.
        if self.spent || (self.answered > 0 && !self.open_after_idle()) {
            self.spent = true;
            return Err(ExchangeError::NotSent(closed_before_sending()));
        }
        // A connection the server closed while it sat idle is found here too, before anything
        // of the request is written.
        match tokio::time::timeout_at(deadline, self.driver.run(self.sender.ready())).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(ExchangeError::NotSent(closed_before_sending())),
            Err(_) => {
                return Err(ExchangeError::NotSent(timed_out(
                    "waiting for the connection",
                )));
            }
        }
        let mut request = hyper::Request::post(peer.path.clone())
            .header(HOST, peer.authority.clone())
            .header(USER_AGENT, HeaderValue::from_static(AGENT))
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|e| ExchangeError::Failed(Error::protocol(format!("bad request: {e}"))))?;
        if let Some(authorization) = authorization {
            request.headers_mut().insert(AUTHORIZATION, authorization);
        }
        // Until the whole answer is read the connection is in use; any failure leaves it spent.
        self.spent = true;
        let sending = self.driver.run(self.sender.try_send_request(request));
        let response = match tokio::time::timeout_at(deadline, sending).await {
            Ok(Ok(response)) => response,
            Ok(Err(mut e)) => {
                let not_sent = e.take_message().is_some();
                let error = super::http::exchange_error(e.error(), Phase::Exchange);
                return Err(if not_sent {
                    ExchangeError::NotSent(error)
                } else {
                    ExchangeError::Lost(error)
                });
            }
            Err(_) => return Err(ExchangeError::Lost(timed_out("waiting for the response"))),
        };
        let (head, incoming) = response.into_parts();
        let reading = self.driver.run(read_body(settings, &head, incoming));
        let body = match tokio::time::timeout_at(deadline, reading).await {
            Ok(result) => result?,
            Err(_) => return Err(ExchangeError::Lost(timed_out("reading the response"))),
        };
        let closing = head
            .headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"));
        self.spent = closing || head.version < hyper::Version::HTTP_11;
        self.idle_since = Instant::now();
        self.answered += 1;
        Ok(Answer {
            status: head.status.as_u16(),
            headers: head.headers,
            body,
        })
    }
}

fn closed_before_sending() -> Error {
    ErrorKind::ConnectionClosed {
        during: "before the request was sent",
        source: None,
    }
    .into()
}

/// HTTP/1.1 over `io`: the sender, and the connection's I/O for `post` to drive.
async fn handshake<T>(
    builder: &hyper::client::conn::http1::Builder,
    io: T,
) -> Result<(SendRequest<Full<Bytes>>, Driver), Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = builder
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| super::http::exchange_error(&e, Phase::Exchange))?;
    let connection: ConnectionFuture = Box::pin(connection);
    Ok((sender, Driver::new(connection)))
}

/// TCP to the peer's addresses, one after the other: the first that accepts.
async fn connect_tcp(peer: &Peer) -> Result<TcpStream, Error> {
    let addresses: Vec<SocketAddr> = peer.addresses();
    if addresses.is_empty() {
        return Err(ErrorKind::Connect {
            address: peer.address.clone(),
            source: "no address to connect to".into(),
        }
        .into());
    }
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("at least one address was tried");
    Err(super::http::connect_error(e, &peer.address))
}

/// Reads a body to its end into one buffer sized from Content-Length, refusing more than the
/// cap.
async fn read_body(
    settings: &HttpSettings,
    head: &hyper::http::response::Parts,
    mut incoming: Incoming,
) -> Result<BytesMut, ExchangeError> {
    let limit = settings.max_response_size;
    let too_large = || ExchangeError::Failed(ErrorKind::ResponseTooLarge { limit }.into());
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(declared.map_or(16 << 10, |len| len as usize));
    while let Some(frame) = incoming.frame().await {
        let frame =
            frame.map_err(|e| ExchangeError::Lost(super::http::exchange_error(&e, Phase::Body)))?;
        if let Ok(chunk) = frame.into_data() {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::transport::HttpOptions;

    fn settings() -> HttpSettings {
        HttpSettings::new(&HttpOptions {
            max_response_size: 1 << 20,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            ..HttpOptions::default()
        })
        .unwrap()
    }

    fn peer(address: SocketAddr) -> Peer {
        Peer {
            address: address.to_string(),
            host: address.ip().to_string(),
            https: false,
            authority: HeaderValue::from_str(&address.to_string()).unwrap(),
            path: "/wsman".parse().unwrap(),
            resolved: Vec::new(),
            at: std::time::Instant::now(),
        }
    }

    /// A server on a thread of its own: answers one request, then waits for word to close the
    /// connection (or to send something unasked first).
    fn one_answer_then(close: std::sync::mpsc::Receiver<&'static [u8]>) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            reader.read_exact(&mut vec![0; length]).unwrap();
            let mut writer = stream;
            writer
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            let unasked = close.recv().unwrap();
            writer.write_all(unasked).unwrap();
            writer.shutdown(std::net::Shutdown::Both).unwrap();
            // Whatever arrives now is never read.
            std::thread::sleep(Duration::from_millis(200));
        });
        address
    }

    /// A runtime on this thread alone: nothing else runs until the test yields.
    fn one_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Posts a one-byte request.
    async fn post_one(
        connection: &mut Connection,
        settings: &HttpSettings,
        peer: &Peer,
    ) -> Result<Answer, ExchangeError> {
        connection
            .post(settings, peer, "text/plain", None, Bytes::from_static(b"1"))
            .await
    }

    /// A server that answers one request with `answer` and then keeps the socket open,
    /// reading nothing more.
    fn answers_then_keeps_open(answer: &'static [u8]) -> SocketAddr {
        answers_then(answer, false)
    }

    /// A server that answers one request with `answer` (any bytes), then closes the connection
    /// or keeps it open for ten seconds.
    fn answers_then(answer: &'static [u8], close: bool) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
            }
            reader.read_exact(&mut [0; 1]).unwrap();
            // In pieces, as a network delivers a large answer.
            for piece in answer.chunks(16 << 10) {
                (&stream).write_all(piece).unwrap();
            }
            if close {
                stream.shutdown(std::net::Shutdown::Both).unwrap();
            } else {
                std::thread::sleep(Duration::from_secs(10));
            }
        });
        address
    }

    /// An answer the server cuts short (closing the connection before its declared end, or
    /// before a chunked body's last chunk) is lost, never taken for a shorter answer; one that
    /// arrives whole in many pieces is read whole.
    #[test]
    fn an_answer_cut_short_is_lost_and_one_in_pieces_is_whole() {
        let declared = |size: usize, sent: usize| {
            let mut out = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n").into_bytes();
            out.extend(std::iter::repeat_n(b'x', sent));
            out
        };
        let mut chunked_unfinished =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        chunked_unfinished.extend_from_slice(b"5\r\nhello\r\n");
        for (answer, whole) in [
            (declared(100, 10), None),
            (declared(300_000, 150_000), None),
            (chunked_unfinished, None),
            (b"HTTP/1.1 200 OK\r\ncontent-len".to_vec(), None),
            (declared(300_000, 300_000), Some(300_000)),
        ] {
            let runtime = one_thread();
            runtime.block_on(async {
                let answer: &'static [u8] = Box::leak(answer.into_boxed_slice());
                let shown = String::from_utf8_lossy(&answer[..answer.len().min(50)]);
                let peer = peer(answers_then(answer, true));
                let settings = settings();
                let mut connection = Connection::open(&settings, &peer).await.unwrap();
                match (post_one(&mut connection, &settings, &peer).await, whole) {
                    (Ok(read), Some(size)) => assert_eq!(read.body.len(), size, "{shown}"),
                    (Err(ExchangeError::Lost(e)), None) => {
                        assert!(e.broke_in_flight(), "{shown}: {e:?}")
                    }
                    (Ok(read), None) => {
                        panic!("{shown}: taken for an answer of {} bytes", read.body.len())
                    }
                    (Err(e), _) => panic!("{shown}: {}", e.into_error()),
                }
            });
        }
    }

    /// An answer that says it is the connection's last (`Connection: close`, or HTTP/1.0
    /// without keep-alive) is believed at once, even when the server has not closed the socket
    /// yet: nothing more is sent on it.
    #[test]
    fn an_answer_that_ends_the_connection_is_its_last() {
        for (answer, last) in [
            (
                &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\ncontent-length: 2\r\n\r\nok",
                true,
            ),
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", true),
        ] {
            let runtime = one_thread();
            runtime.block_on(async {
                let peer = peer(answers_then_keeps_open(answer));
                let settings = settings();
                let mut connection = Connection::open(&settings, &peer).await.unwrap();
                let answer_read = post_one(&mut connection, &settings, &peer)
                    .await
                    .ok()
                    .unwrap();
                assert_eq!(answer_read.status, 200);
                assert_eq!(
                    connection.spent,
                    last,
                    "{}",
                    String::from_utf8_lossy(answer)
                );
            });
        }
    }

    /// The response size cap holds at its exact boundary, declared or not: a body of the cap
    /// is read, one byte more is refused, in one chunk or spread over several.
    #[test]
    fn the_response_cap_takes_the_cap_and_refuses_one_byte_more() {
        const CAP: usize = 100;
        let chunked = |sizes: &[usize]| {
            let mut out = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
            for &size in sizes {
                out.push_str(&format!("{size:x}\r\n{}\r\n", "x".repeat(size)));
            }
            out.push_str("0\r\n\r\n");
            out
        };
        let declared = |size: usize| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n{}",
                "x".repeat(size)
            )
        };
        for (answer, fits) in [
            (declared(CAP), true),
            (declared(CAP + 1), false),
            (chunked(&[CAP]), true),
            (chunked(&[CAP - 1, 2]), false),
            (chunked(&[60, 60]), false),
        ] {
            let runtime = one_thread();
            runtime.block_on(async {
                let answer: &'static [u8] = Box::leak(answer.into_bytes().into_boxed_slice());
                let peer = peer(answers_then_keeps_open(answer));
                let settings = HttpSettings::new(&HttpOptions {
                    max_response_size: CAP,
                    connect_timeout: Duration::from_secs(5),
                    operation_timeout: Duration::from_secs(5),
                    ..HttpOptions::default()
                })
                .unwrap();
                let mut connection = Connection::open(&settings, &peer).await.unwrap();
                let read = post_one(&mut connection, &settings, &peer).await;
                let shown = String::from_utf8_lossy(&answer[..answer.len().min(60)]);
                match read {
                    Ok(answer) => assert!(fits && answer.body.len() == CAP, "{shown}"),
                    Err(ExchangeError::Failed(e)) => {
                        assert!(!fits, "{shown}: {e}");
                        assert!(
                            matches!(e.kind(), ErrorKind::ResponseTooLarge { limit: CAP }),
                            "{e:?}"
                        );
                    }
                    Err(ExchangeError::NotSent(e) | ExchangeError::Lost(e)) => {
                        panic!("{shown}: {e}")
                    }
                }
            });
        }
    }

    /// The server's close arrived while the connection sat idle, where nothing reads it (hyper's
    /// side is polled only while a request is under way): the request is known never to have
    /// left, whatever it was, and may go out on another connection.
    #[test]
    fn a_request_on_a_connection_the_server_closed_is_known_not_sent() {
        for unasked in [
            &b""[..],
            b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n",
        ] {
            let runtime = one_thread();
            runtime.block_on(async {
                let (close, closing) = std::sync::mpsc::channel();
                let peer = peer(one_answer_then(closing));
                let settings = settings();
                let mut connection = Connection::open(&settings, &peer).await.unwrap();
                let answer = post_one(&mut connection, &settings, &peer)
                    .await
                    .ok()
                    .unwrap();
                assert_eq!((answer.status, &answer.body[..]), (200, &b"ok"[..]));
                assert!(connection.is_reusable());
                close.send(unasked).unwrap();
                // Until the close is in this side's socket buffer.
                while connection.socket.idle() == Idle::Open {
                    std::thread::sleep(Duration::from_millis(1));
                }
                match connection
                    .post(
                        &settings,
                        &peer,
                        "text/plain",
                        None,
                        Bytes::from_static(b"2"),
                    )
                    .await
                {
                    Err(ExchangeError::NotSent(e)) => {
                        assert!(e.to_string().contains("before the request was sent"), "{e}");
                    }
                    Err(ExchangeError::Lost(e) | ExchangeError::Failed(e)) => {
                        panic!("{unasked:?}: sent on a closed connection: {e}")
                    }
                    Ok(_) => panic!("{unasked:?}: an answer from a closed connection"),
                }
                assert!(!connection.is_reusable());
            });
        }
    }
}
