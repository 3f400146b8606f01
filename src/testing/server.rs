//! [`FixtureServer`]: the replay engine behind an HTTP/1.1 listener on loopback.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::body::Pieces;
use super::connections::{Closing, ClosingStream, ConnectionStats, Counters};
use super::fixtures::{FixtureError, FixtureSet};
use super::in_flight::InFlight;
use super::replay::{ReplayStats, Replayer};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::auth::context::{SecurityContext, Step};
use crate::auth::ntlm::acceptor::NtlmAcceptor;
use crate::auth::{Credentials, basic_authorization, framing};

/// The user the fixture server accepts unless told otherwise.
pub const DEFAULT_USER: &str = "demo";
/// The password the fixture server accepts unless told otherwise.
pub const DEFAULT_PASSWORD: &str = "demo";

/// Largest request body accepted (requests are a few kilobytes).
const MAX_REQUEST: usize = 1 << 20;

/// A WinRM server on loopback that answers from recorded fixtures, with Negotiate (NTLM with
/// WinRM message encryption, as a stock Windows server) and Basic authentication.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use winrm_sessions::testing::FixtureServer;
/// use winrm_sessions::{Client, Credentials};
///
/// let server = FixtureServer::start("fixtures/demo").await?;
/// let client = Client::builder(server.url())
///     .credentials(Credentials::new("demo", "demo"))
///     .danger_allow_basic_over_http(true) // loopback only
///     .build()?;
/// # Ok(()) }
/// ```
///
/// The server stops when dropped.
pub struct FixtureServer {
    url: String,
    addr: SocketAddr,
    replayer: Arc<Replayer>,
    in_flight: InFlight,
    connections: Arc<Counters>,
    task: JoinHandle<()>,
}

/// Configures a [`FixtureServer`].
#[must_use]
pub struct FixtureServerBuilder {
    set: FixtureSet,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    client_ca: Option<Vec<u8>>,
    user: String,
    password: String,
    latency: Duration,
    in_flight: InFlight,
    ip: IpAddr,
    port: u16,
    basic: bool,
    negotiate: bool,
    closing: Option<Closing>,
    expire_authentication_after: Option<u32>,
}

impl FixtureServer {
    /// Serves a fixture directory on `127.0.0.1` with an ephemeral port and the default
    /// credentials ([`DEFAULT_USER`] / [`DEFAULT_PASSWORD`]).
    ///
    /// # Errors
    ///
    /// The directory is unreadable, empty, or holds a file that is not a valid envelope (named
    /// in the error); or the port cannot be bound.
    pub async fn start(dir: impl AsRef<std::path::Path>) -> crate::Result<Self> {
        Self::builder(FixtureSet::from_dir(dir)?).start().await
    }

    /// Configures a server for a fixture set.
    pub fn builder(set: FixtureSet) -> FixtureServerBuilder {
        FixtureServerBuilder {
            set,
            tls: None,
            client_ca: None,
            user: DEFAULT_USER.into(),
            password: DEFAULT_PASSWORD.into(),
            latency: Duration::ZERO,
            in_flight: InFlight::default(),
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            basic: true,
            negotiate: true,
            closing: None,
            expire_authentication_after: None,
        }
    }

    /// The endpoint URL, `http://127.0.0.1:PORT/wsman`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server has answered so far.
    pub fn stats(&self) -> ReplayStats {
        self.replayer.stats()
    }

    /// The requests this server is answering now, and the most it answered at once (shared
    /// with other servers when [`FixtureServerBuilder::in_flight`] said so).
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    /// The connections clients opened and how they used them.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.connections.snapshot()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FixtureServerBuilder {
    /// The user and password to accept.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = user.into();
        self.password = password.into();
        self
    }

    /// Accepts Basic authentication (on by default). A stock Windows server does not.
    pub fn basic(mut self, accept: bool) -> Self {
        self.basic = accept;
        self
    }

    /// Accepts Negotiate (NTLM) with WinRM message encryption (on by default), as a stock
    /// Windows server does on HTTP.
    pub fn negotiate(mut self, accept: bool) -> Self {
        self.negotiate = accept;
        self
    }

    /// Waits this long before each answer, handshake rounds included: a server across a
    /// network, so that a test sees how an application behaves when answers take time (its
    /// concurrency, its timeouts). 50 ms is a file server at the other end of a WAN.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Counts this server's requests in `probe` (instead of a probe of its own): several
    /// servers sharing one probe tell how many requests a fleet had in flight at once.
    pub fn in_flight(mut self, probe: &InFlight) -> Self {
        self.in_flight = probe.clone();
        self
    }

    /// Closes each connection after it answered `requests` requests (handshake rounds
    /// included), saying so with `Connection: close` on the last answer, as HTTP.sys does.
    pub fn close_connections_after(mut self, requests: u32) -> Self {
        self.closing = Some(Closing {
            after: requests.max(1),
            announced: true,
        });
        self
    }

    /// Closes each connection right after its answer to the `requests`-th request has gone
    /// out, without a word (as an idle timeout, a restart or a middlebox does): the client finds
    /// the connection closed when it next uses it.
    pub fn drop_connections_after(mut self, requests: u32) -> Self {
        self.closing = Some(Closing {
            after: requests.max(1),
            announced: false,
        });
        self
    }

    /// Forgets a connection's Negotiate authentication once it has carried `requests` requests
    /// after its handshake: the next one is answered 401 and the connection must authenticate
    /// again, as when a server lost the context or its lifetime ended (an expired Kerberos
    /// ticket). With 0, every request after a handshake is refused: a server that takes the
    /// handshake and then none of the messages.
    pub fn expire_authentication_after(mut self, requests: u32) -> Self {
        self.expire_authentication_after = Some(requests);
        self
    }

    /// Serves HTTPS with this certificate chain and private key (both PEM), as a WinRM HTTPS
    /// listener does; the URL then starts with `https://`.
    pub fn tls(
        mut self,
        certificate_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls = Some((certificate_chain_pem.into(), private_key_pem.into()));
        self
    }

    /// With [`Self::tls`]: requires a client certificate issued by this CA (PEM) and accepts
    /// WinRM certificate authentication from it.
    pub fn require_client_certificate(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some(ca_pem.into());
        self
    }

    /// The loopback address and port to bind (port 0: any free port).
    pub fn bind(mut self, ip: IpAddr, port: u16) -> Self {
        self.ip = ip;
        self.port = port;
        self
    }

    /// Binds and starts serving in the background.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Fixture`](crate::ErrorKind::Fixture): the address cannot be bound, or the
    /// TLS certificate and key are not usable.
    pub async fn start(self) -> crate::Result<FixtureServer> {
        Ok(self.bind_and_serve().await?)
    }

    async fn bind_and_serve(self) -> Result<FixtureServer, FixtureError> {
        let tls = match &self.tls {
            Some((chain, key)) => Some(tls_acceptor(chain, key, self.client_ca.as_deref())?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener =
            listen(SocketAddr::new(self.ip, self.port)).map_err(|e| FixtureError::Io {
                path: format!("{}:{}", self.ip, self.port).into(),
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| FixtureError::Io {
            path: "listener".into(),
            message: e.to_string(),
        })?;
        // What a client's NTLM must carry on this TLS channel (Extended Protection, as
        // Windows checks it when it is required).
        let channel_bindings = match &self.tls {
            Some((chain, _)) => Some(channel_bindings(chain)?),
            None => None,
        };
        let replayer = Arc::new(Replayer::new(self.set));
        let expected =
            basic_authorization(&Credentials::new(self.user.clone(), self.password.as_str()));
        let shared = Arc::new(Shared {
            replayer: replayer.clone(),
            expected_authorization: expected.as_str().to_owned(),
            password: zeroize::Zeroizing::new(self.password),
            user: self.user,
            basic: self.basic,
            negotiate: self.negotiate,
            tls: tls.is_some(),
            client_certificates: self.client_ca.is_some(),
            latency: self.latency,
            in_flight: self.in_flight.clone(),
            load: Arc::default(),
            closing: self.closing,
            expire_authentication_after: self.expire_authentication_after,
            connections: Arc::default(),
            channel_bindings,
        });
        let connections = shared.connections.clone();
        let task = tokio::spawn(accept_loop(listener, shared, tls));
        let url = match addr.ip() {
            IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}/wsman", addr.port()),
            IpAddr::V4(ip) => format!("{scheme}://{ip}:{}/wsman", addr.port()),
        };
        Ok(FixtureServer {
            url,
            addr,
            replayer,
            in_flight: self.in_flight,
            connections,
            task,
        })
    }
}

/// Connections the kernel may hold for the accept loop. One fixture server often stands in for
/// a whole fleet (`URL?host=N` targets): a thousand hosts connecting at once overflowed the
/// usual 1,024 and the kernel dropped their SYNs, which cost those hosts a second of
/// retransmission. The kernel caps it at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 16_384;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

struct Shared {
    replayer: Arc<Replayer>,
    expected_authorization: String,
    user: String,
    password: zeroize::Zeroizing<String>,
    basic: bool,
    negotiate: bool,
    tls: bool,
    client_certificates: bool,
    latency: Duration,
    in_flight: InFlight,
    /// This server's requests in flight (`in_flight` may count other servers too).
    load: Arc<std::sync::atomic::AtomicUsize>,
    closing: Option<Closing>,
    /// See [`FixtureServerBuilder::expire_authentication_after`].
    expire_authentication_after: Option<u32>,
    connections: Arc<Counters>,
    /// On HTTPS, the `tls-server-end-point` bindings of the server's certificate.
    channel_bindings: Option<Vec<u8>>,
}

/// The security context of one connection (Negotiate is connection-bound).
#[derive(Default)]
struct Connection {
    acceptor: Option<NtlmAcceptor>,
    authenticated: bool,
    /// Requests answered since its last handshake.
    authenticated_requests: u32,
    /// Requests received on it.
    requests: u32,
    /// Closes the connection once the answer being written has gone out.
    close: Arc<std::sync::atomic::AtomicBool>,
}

/// The `tls-server-end-point` channel bindings of the first certificate of a PEM chain.
fn channel_bindings(chain: &[u8]) -> Result<Vec<u8>, FixtureError> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let leaf = CertificateDer::pem_slice_iter(chain)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| FixtureError::Invalid {
            file: "TLS certificate".into(),
            message: "no certificate in the chain".into(),
        })?;
    Ok(crate::auth::channel_binding::tls_server_end_point(&leaf))
}

fn tls_acceptor(
    chain: &[u8],
    key: &[u8],
    client_ca: Option<&[u8]>,
) -> Result<TlsAcceptor, FixtureError> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |message: String| FixtureError::Invalid {
        file: "TLS certificate".into(),
        message,
    };
    let certs = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(e.to_string()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let builder = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots
                    .add(cert.map_err(|e| invalid(e.to_string()))?)
                    .map_err(|e| invalid(e.to_string()))?;
            }
            let verifier =
                tokio_rustls::rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve<S>(stream: S, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    shared.connections.opened();
    let (stream, close) = ClosingStream::new(stream);
    let connection = Arc::new(tokio::sync::Mutex::new(Connection {
        close,
        ..Connection::default()
    }));
    let service =
        hyper::service::service_fn(move |req| handle(req, shared.clone(), connection.clone()));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    // Connections live in the set: aborting this task drops it and ends them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        None => serve(stream, shared).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, shared).await;
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Pieces>) -> Response<Pieces> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

fn unauthorized(shared: &Shared, token: Option<&[u8]>) -> Response<Pieces> {
    let mut response = reply(StatusCode::UNAUTHORIZED, "text/plain", "");
    let headers = response.headers_mut();
    if shared.negotiate {
        let value = match token {
            Some(token) => format!("Negotiate {}", B64.encode(token)),
            None => "Negotiate".to_owned(),
        };
        if let Ok(value) = value.parse() {
            headers.append(WWW_AUTHENTICATE, value);
        }
    }
    if shared.basic && token.is_none() {
        headers.append(
            WWW_AUTHENTICATE,
            "Basic realm=\"WSMAN\"".parse().expect("static header"),
        );
    }
    response
}

fn soap_reply(status: u16, envelope: Pieces) -> Response<Pieces> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, "application/soap+xml;charset=UTF-8", envelope)
}

/// Answers one request, counted in flight from its arrival until its answer leaves, which is
/// [`FixtureServerBuilder::latency`] after it is ready (handshake rounds included, as on a
/// distant network).
async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    connection: Arc<tokio::sync::Mutex<Connection>>,
) -> Result<Response<Pieces>, Infallible> {
    let _in_flight = shared.in_flight.enter(&shared.load);
    let mut response = answer(request, &shared, connection.clone()).await;
    if let (Some(closing), Ok(response)) = (shared.closing, response.as_mut()) {
        let connection = connection.lock().await;
        if connection.requests >= closing.after {
            shared.connections.closed();
            if closing.announced {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            } else {
                connection
                    .close
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
    }
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    response
}

async fn answer(
    request: Request<Incoming>,
    shared: &Shared,
    connection: Arc<tokio::sync::Mutex<Connection>>,
) -> Result<Response<Pieces>, Infallible> {
    if request.uri().path() != "/wsman" {
        // As HTTP.sys answers for a URL no listener is registered for.
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: the WinRM endpoint is /wsman",
        ));
    }
    if request.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "POST only",
        ));
    }
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match Limited::new(request.into_body(), MAX_REQUEST)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Ok(reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                "request too large",
            ));
        }
    };
    let mut connection = connection.lock().await;
    connection.requests += 1;
    // WinRM certificate authentication: the TLS layer has verified the client certificate.
    let certificate_auth = shared.client_certificates
        && authorization.as_deref() == Some(crate::transport::CERTIFICATE_AUTHORIZATION);
    let scheme_and_token = if certificate_auth {
        // Falls through to the plain exchange below.
        Some(("Certificate", ""))
    } else {
        authorization.as_deref().and_then(|a| a.split_once(' '))
    };
    match scheme_and_token {
        Some(("Certificate", _)) if certificate_auth => {}
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("Basic") => {
            if !shared.basic
                || authorization.as_deref() != Some(shared.expected_authorization.as_str())
            {
                return Ok(unauthorized(shared, None));
            }
        }
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("Negotiate") && shared.negotiate => {
            let Ok(token) = B64.decode(token.trim()) else {
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "token is not base64",
                ));
            };
            // A new handshake on this connection starts a new context.
            if connection.authenticated || connection.acceptor.is_none() {
                connection.authenticated = false;
                let mut acceptor = NtlmAcceptor::new(&shared.user, &shared.password);
                if let Some(bindings) = &shared.channel_bindings {
                    acceptor.set_channel_bindings(bindings);
                }
                connection.acceptor = Some(acceptor);
            }
            let Some(acceptor) = connection.acceptor.as_mut() else {
                return Ok(unauthorized(shared, None));
            };
            return Ok(match acceptor.step(Some(&token)) {
                Ok(Step::Continue(answer)) => unauthorized(shared, Some(&answer)),
                Ok(Step::Done(_)) => {
                    connection.authenticated = true;
                    connection.authenticated_requests = 0;
                    shared.connections.handshake();
                    if body.is_empty() {
                        reply(StatusCode::OK, "application/soap+xml;charset=UTF-8", "")
                    } else {
                        // Windows clients never send a body with the last token; refuse it,
                        // as a server with AllowUnencrypted=false does.
                        reply(
                            StatusCode::BAD_REQUEST,
                            "text/plain",
                            "unencrypted request refused",
                        )
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "Negotiate authentication refused");
                    connection.acceptor = None;
                    unauthorized(shared, None)
                }
            });
        }
        Some(_) => return Ok(unauthorized(shared, None)),
        None => {
            if !connection.authenticated {
                if shared.negotiate {
                    shared.connections.unauthenticated();
                }
                return Ok(unauthorized(shared, None));
            }
            if shared
                .expire_authentication_after
                .is_some_and(|after| connection.authenticated_requests >= after)
            {
                connection.authenticated = false;
                connection.acceptor = None;
                return Ok(unauthorized(shared, None));
            }
            connection.authenticated_requests += 1;
            let Some(acceptor) = connection.acceptor.as_mut() else {
                return Ok(unauthorized(shared, None));
            };
            let Some((_, boundary)) = framing::parse_content_type(&content_type) else {
                if shared.tls
                    && content_type
                        .to_ascii_lowercase()
                        .starts_with("application/soap+xml")
                {
                    // On HTTPS, TLS protects the body; the connection is authenticated.
                    drop(connection);
                    let (status, envelope) = shared.replayer.answer(&body);
                    return Ok(soap_reply(status, envelope));
                }
                return Ok(reply(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "unencrypted request refused",
                ));
            };
            let mut body = body.to_vec();
            let plaintext = match framing::open_in_place(acceptor, &boundary, &mut body) {
                Ok(range) => &body[range],
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot unseal a request");
                    connection.authenticated = false;
                    return Ok(unauthorized(shared, None));
                }
            };
            let (status, envelope) = shared.replayer.answer(plaintext);
            let sealed = match acceptor.seal(&envelope.to_vec()) {
                Ok(sealed) => sealed,
                Err(e) => {
                    return Ok(reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        e.message,
                    ));
                }
            };
            let protocol = acceptor.protocol();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(reply(
                status,
                &framing::content_type(protocol),
                framing::encode(protocol, &sealed),
            ));
        }
    }
    // Basic: plain SOAP.
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/soap+xml")
    {
        return Ok(reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/plain",
            "expected application/soap+xml",
        ));
    }
    drop(connection);
    let (status, envelope) = shared.replayer.answer(&body);
    Ok(soap_reply(status, envelope))
}
