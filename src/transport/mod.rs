//! The HTTP shell around the sans-IO core: post an envelope, get the SOAP response back.
//!
//! It owns everything that touches the network: TLS (rustls, verification on), timeouts, the
//! cap on response size, the KDC, and the authenticated sessions. What it knows of the client
//! is an endpoint, [`HttpSettings`] and an [`Authenticator`], both prepared once per client
//! and shared ([`Shared`]) by every host of a fleet.
//!
//! Every request travels on a [`connection::Connection`] the transport opened and holds itself
//! (no pool choosing one underneath), so it knows which connection carries which security
//! context.
//!
//! - **Basic** and **certificate**: stateless; a few idle connections kept for reuse.
//! - **NTLM / Kerberos**: connection-bound. Each [`session::Session`] is one HTTP/1.1
//!   connection with its own security context, authenticated with empty-body POSTs, then used
//!   for sealed requests, one at a time. Idle sessions are kept for reuse; concurrency to one
//!   host means several sessions. A request known not to have left (its connection was found
//!   closed by the server first) goes out on a new connection, after a new handshake; a 401 on
//!   a sealed request (the context is gone, the request was not processed) or, where the caller
//!   allows it, a lost connection, re-authenticates a new session and resends once.

mod connection;
mod driver;
mod http;
mod kdc;
mod kerberos;
mod session;
mod tcp;
#[cfg(test)]
mod tests;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;

pub(crate) use http::{HttpOptions, HttpSettings};

use crate::auth::context::SecurityContext;
use crate::auth::kerberos::context::KerberosContext;
use crate::auth::ntlm::{NtlmClient, NtlmCredentials};
use crate::auth::{Authenticator, KerberosAuth};
use crate::error::{Error, ErrorKind, Result};
use crate::record::ExchangeHook;
use connection::{Connection, ExchangeError};
use session::{HandshakeError, SendError, Session, context_failure};

/// The `Authorization` value WinRM expects with a client certificate (DSP0226 security profile
/// `https/mutual`).
pub(crate) const CERTIFICATE_AUTHORIZATION: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

/// Idle connections (authenticated or plain) kept per client.
const MAX_IDLE: usize = 8;

/// How long an idle connection is kept: long enough to outlast a watch's default minute
/// between polls, below the 120 s after which HTTP.sys closes idle connections, so that we
/// close first.
pub(crate) const IDLE_FOR: Duration = Duration::from_secs(90);

/// How long a host name's addresses are used before it is looked up again.
const RESOLVED_FOR: Duration = Duration::from_secs(60);

/// Where a transport connects: its endpoint, `host:port` for messages, and the addresses its
/// host name resolved to (looked up by the transport itself, so that a name that does not
/// resolve is an error of its own, not a failed connection).
pub(crate) struct Peer {
    pub address: String,
    /// The host as TLS verifies it: a name, or an IP address without brackets.
    host: String,
    https: bool,
    /// `Host:` of each request.
    authority: HeaderValue,
    /// The request target: the endpoint's path and query.
    path: hyper::Uri,
    resolved: Vec<SocketAddr>,
    at: Instant,
}

impl Peer {
    /// Where to connect: the addresses the name resolved to, or the IP address itself.
    fn addresses(&self) -> Vec<SocketAddr> {
        if !self.resolved.is_empty() {
            return self.resolved.clone();
        }
        self.address.parse().into_iter().collect()
    }
}

/// Whether a request whose answer was lost may be sent again after re-authenticating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Reads and Enumerate starts: sending again cannot lose or duplicate data.
    Allowed,
    /// A Pull (the server may have moved past the lost page) or a method call.
    Forbidden,
}

/// What every client built from one configuration shares: prepared once, cheap to clone.
pub(crate) struct Shared {
    pub http: HttpSettings,
    pub auth: Authenticator,
    /// Sees every exchange in clear (the recorder).
    pub hook: Option<Arc<dyn ExchangeHook>>,
    /// One AS exchange at a time for the whole configuration.
    as_lock: tokio::sync::Mutex<()>,
    /// Enumerations that are open, or whose Release is on its way.
    releases: Releases,
}

/// Counts the enumerations that are open or being released, so that a program about to exit
/// can wait for their Releases (the server would otherwise keep them until they time out).
#[derive(Default)]
struct Releases {
    pending: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

/// An open enumeration, or its Release on the way; done when this is dropped.
pub(crate) struct ReleaseGuard(Arc<Shared>);

impl Drop for ReleaseGuard {
    fn drop(&mut self) {
        let releases = &self.0.releases;
        releases
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        releases.done.notify_waiters();
    }
}

impl Shared {
    pub(crate) fn new(
        http: HttpSettings,
        auth: Authenticator,
        hook: Option<Arc<dyn ExchangeHook>>,
    ) -> Self {
        Self {
            http,
            auth,
            hook,
            as_lock: tokio::sync::Mutex::new(()),
            releases: Releases::default(),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("auth", &self.auth.name())
            .field("recording", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

/// One endpoint with the shared configuration.
#[derive(Clone)]
pub(crate) struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: url::Url,
    shared: Arc<Shared>,
    /// Idle connections of the stateless mechanisms.
    plain: Mutex<Vec<Connection>>,
    /// Idle authenticated connections.
    idle: Mutex<Vec<Session>>,
    peer: Mutex<Option<Arc<Peer>>>,
    /// The last problem met and got past (a connection lost and the request sent again, a
    /// Pull timed out on the server): what a deadline reports if the host never recovers.
    problem: Mutex<Option<Error>>,
}

/// How long a KDC may take: the connect timeout, at least 5 seconds.
fn kdc_timeout(connect_timeout: Duration) -> Duration {
    connect_timeout.max(Duration::from_secs(5))
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("auth", &self.inner.shared.auth)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    pub(crate) fn new(endpoint: url::Url, shared: Arc<Shared>) -> Self {
        Self {
            inner: Arc::new(Inner {
                endpoint,
                shared,
                plain: Mutex::new(Vec::new()),
                idle: Mutex::new(Vec::new()),
                peer: Mutex::new(None),
                problem: Mutex::new(None),
            }),
        }
    }

    /// The same configuration for another endpoint (no sessions shared: they are bound to
    /// their host).
    pub(crate) fn retarget(&self, endpoint: url::Url) -> Self {
        Self::new(endpoint, self.inner.shared.clone())
    }

    fn settings(&self) -> &HttpSettings {
        &self.inner.shared.http
    }

    fn host(&self) -> &str {
        self.inner.endpoint.host_str().unwrap_or_default()
    }

    /// Counts an enumeration as open (then being released) until the guard is dropped.
    pub(crate) fn release_started(&self) -> ReleaseGuard {
        self.inner
            .shared
            .releases
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ReleaseGuard(self.inner.shared.clone())
    }

    /// Waits until every enumeration of this configuration's clients has ended or been
    /// released, or `timeout` passes; true when none is left.
    pub(crate) async fn releases_done(&self, timeout: Duration) -> bool {
        let releases = &self.inner.shared.releases;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done = releases.done.notified();
            if releases.pending.load(std::sync::atomic::Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                return releases.pending.load(std::sync::atomic::Ordering::Acquire) == 0;
            }
        }
    }

    /// Keeps `problem` as the last one met on this target (see [`HttpTransport::take_problem`]).
    pub(crate) fn note_problem(&self, problem: Error) {
        *lock(&self.inner.problem) = Some(problem);
    }

    /// The last problem met and got past, if any, taken.
    pub(crate) fn take_problem(&self) -> Option<Error> {
        lock(&self.inner.problem).take()
    }

    /// The peer: its host name looked up (again after [`RESOLVED_FOR`]); an IP address needs no
    /// lookup.
    async fn peer(&self) -> Result<Arc<Peer>> {
        if let Some(peer) = lock(&self.inner.peer).as_ref()
            && peer.at.elapsed() < RESOLVED_FOR
        {
            return Ok(peer.clone());
        }
        let endpoint = self.inner.endpoint.clone();
        let host = self.host().trim_matches(['[', ']']).to_owned();
        let port = endpoint.port_or_known_default().unwrap_or(5985);
        let address = match endpoint.host() {
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let resolved = match endpoint.host() {
            Some(url::Host::Domain(name)) => {
                let lookup = tokio::net::lookup_host((name, port));
                let timeout = self.settings().connect_timeout;
                match tokio::time::timeout(timeout, lookup).await {
                    Ok(Ok(found)) => found.collect(),
                    Ok(Err(e)) => {
                        return Err(ErrorKind::NameNotResolved {
                            host,
                            source: Box::new(e),
                        }
                        .into());
                    }
                    Err(_) => {
                        return Err(ErrorKind::Timeout {
                            phase: "looking up the host name",
                            after: timeout,
                        }
                        .into());
                    }
                }
            }
            _ => Vec::new(),
        };
        let authority =
            HeaderValue::from_str(&endpoint[url::Position::BeforeHost..url::Position::AfterPort])
                .map_err(|_| Error::config(format!("{endpoint}: the host is not a valid header")))?;
        let path = endpoint[url::Position::BeforePath..url::Position::AfterQuery]
            .parse::<hyper::Uri>()
            .map_err(|e| Error::config(format!("{endpoint}: the path is not usable: {e}")))?;
        let peer = Arc::new(Peer {
            address,
            host,
            https: endpoint.scheme() == "https",
            authority,
            path,
            resolved,
            at: Instant::now(),
        });
        *lock(&self.inner.peer) = Some(peer.clone());
        Ok(peer)
    }

    /// Sends one envelope and returns the SOAP body of a 200 or 500 response. With
    /// [`Resend::Allowed`], a request whose connection failed is sent once more, whatever the
    /// authentication.
    ///
    /// At trace level the request and response bodies are logged as XML (decrypted); headers,
    /// tokens and keys never are.
    pub(crate) async fn post(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        tracing::trace!(bytes = envelope.len(), body = %envelope, "Request");
        let Some(hook) = self.inner.shared.hook.clone() else {
            let body = self.post_unobserved(envelope, resend).await?;
            trace_response(&body);
            return Ok(body);
        };
        let request = envelope.clone().into_bytes();
        let body = self.post_unobserved(envelope, resend).await?;
        trace_response(&body);
        hook.exchange(&request, &body);
        Ok(body)
    }

    async fn post_unobserved(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        match &self.inner.shared.auth {
            Authenticator::Anonymous => self.post_plain(envelope, None, resend).await,
            Authenticator::Certificate => {
                let header = HeaderValue::from_static(CERTIFICATE_AUTHORIZATION);
                self.post_plain(envelope, Some(header), resend).await
            }
            Authenticator::Basic(value) => {
                let mut header = HeaderValue::from_str(value)
                    .map_err(|_| Error::config("the Basic header is not valid"))?;
                header.set_sensitive(true);
                self.post_plain(envelope, Some(header), resend).await
            }
            Authenticator::Ntlm(_) | Authenticator::Kerberos { .. } => {
                self.post_sealed(envelope, resend).await
            }
        }
    }

    /// An idle plain connection to the current peer that is still open, or a new one.
    async fn plain_connection(&self, peer: &Peer) -> Result<Connection> {
        if let Some(connection) =
            take_open(&self.inner.plain, Connection::is_reusable, |c| c.idle_since)
        {
            return Ok(connection);
        }
        // Boxed: opening is once a connection, and inline its future (TCP, TLS, hyper's
        // handshake) would make every request's future, and so every fetch task, 3.7 KB larger.
        Box::pin(Connection::open(self.settings(), peer)).await
    }

    async fn post_plain(
        &self,
        envelope: String,
        authorization: Option<HeaderValue>,
        resend: Resend,
    ) -> Result<Bytes> {
        let peer = self.peer().await?;
        let body = Bytes::from(envelope);
        let mut fresh = false;
        loop {
            let mut connection = self.plain_connection(&peer).await?;
            let answer = connection
                .post(
                    self.settings(),
                    &peer,
                    SOAP,
                    authorization.clone(),
                    body.clone(),
                )
                .await;
            match answer {
                Ok(answer) => {
                    if connection.is_reusable() {
                        put_idle(&self.inner.plain, connection);
                    }
                    return self.plain_answer(answer, authorization.is_some());
                }
                // Never written: another connection may carry it, whatever the request (a
                // connection found closed by the server is not a problem worth reporting).
                Err(ExchangeError::NotSent(e)) if !fresh => {
                    tracing::debug!(error = %e.report(), "Connection closed by the server; using a new one");
                    fresh = true;
                    self.drop_idle_plain();
                }
                Err(ExchangeError::Lost(e)) if resend == Resend::Allowed && !fresh && lost(&e) => {
                    tracing::info!(error = %e.report(), "Connection lost; sending the request again");
                    self.note_problem(e);
                    fresh = true;
                    self.drop_idle_plain();
                }
                Err(e) => return Err(e.into_error()),
            }
        }
    }

    /// Idle connections opened before one was found closed are likely closed too.
    fn drop_idle_plain(&self) {
        lock(&self.inner.plain).clear();
    }

    fn plain_answer(&self, answer: connection::Answer, had_authorization: bool) -> Result<Bytes> {
        let ctype = answer.content_type();
        if answer.status == 401 {
            let offered = answer.offered_schemes();
            let mechanism = self.inner.shared.auth.name();
            let reason = if !had_authorization {
                "the server requires credentials and none were given".to_owned()
            } else if !offered.is_empty()
                && !offered.iter().any(|o| o.eq_ignore_ascii_case(mechanism))
            {
                format!(
                    "the server does not accept {mechanism} (it offers {})",
                    offered.join(", ")
                )
            } else {
                "the server refused the user name or password".to_owned()
            };
            return Err(ErrorKind::Authentication { mechanism, reason }.into());
        }
        http::soap_answer(answer.status, ctype, answer.body)
    }

    fn ntlm_context(&self, credentials: &NtlmCredentials) -> Box<dyn SecurityContext> {
        Box::new(NtlmClient::new(
            credentials.clone(),
            format!("HTTP/{}", self.host().trim_matches(['[', ']'])),
        ))
    }

    /// A Kerberos session: the service ticket first (from the KDC if need be), then the
    /// handshake, switching to SPNEGO when the server offers only `Negotiate`.
    async fn kerberos_session(
        &self,
        kerberos: &KerberosAuth,
        peer: &Peer,
    ) -> Result<Session, KerberosFailure> {
        let shared = &self.inner.shared;
        let settings = self.settings();
        let (ticket, service) = kerberos::service_ticket(
            kerberos,
            &shared.as_lock,
            self.host(),
            kdc_timeout(settings.connect_timeout),
        )
        .await
        .map_err(|e| KerberosFailure {
            error: if e.kdc_unreachable {
                ErrorKind::KdcUnreachable {
                    realm: kerberos.credentials.client().realm.clone(),
                    origin: kerberos.realm_origin.map(str::to_owned),
                    reason: e.message,
                }
                .into()
            } else {
                context_failure("Kerberos", crate::auth::kerberos::context::context_error(e))
            },
            after_ap_req: false,
        })?;
        let context = |spnego: bool| -> Box<dyn SecurityContext> {
            Box::new(KerberosContext::new(
                ticket.clone(),
                service.clone(),
                kerberos.credentials.clone(),
                spnego,
            ))
        };
        match Session::connect(settings, peer, context(kerberos.spnego)).await {
            Ok(session) => Ok(session),
            Err(e) => {
                let after = e.after_first_token();
                if !kerberos.spnego
                    && e.offered_instead()
                        .is_some_and(|o| o.iter().any(|o| o.eq_ignore_ascii_case("Negotiate")))
                {
                    // Still Kerberos, in the wrapping the server asks for.
                    tracing::debug!("The server offers Negotiate only: Kerberos in SPNEGO");
                    return Session::connect(settings, peer, context(true))
                        .await
                        .map_err(|e| KerberosFailure {
                            after_ap_req: after || e.after_first_token(),
                            error: handshake_error("Kerberos", e),
                        });
                }
                Err(KerberosFailure {
                    after_ap_req: after,
                    error: handshake_error("Kerberos", e),
                })
            }
        }
    }

    async fn new_session(&self) -> Result<Session> {
        let settings = self.settings();
        let peer = self.peer().await?;
        let started = Instant::now();
        let session = match &self.inner.shared.auth {
            Authenticator::Ntlm(credentials) => {
                Session::connect(settings, &peer, self.ntlm_context(credentials))
                    .await
                    .map_err(|e| handshake_error("NTLM", e))
            }
            Authenticator::Kerberos { kerberos, fallback } => {
                match (self.kerberos_session(kerberos, &peer).await, fallback) {
                    (Ok(session), _) => Ok(session),
                    // Negotiate: NTLM when Kerberos could not start, for this attempt only.
                    // Never after the AP-REQ went out (whoever answered it may want an NTLM
                    // response to crack or relay), never for a refused password, and a server
                    // that cannot be reached is not tried twice.
                    (Err(failure), Some(ntlm)) if failure.allows_fallback() => {
                        tracing::warn!(
                            error = %failure.error.report(),
                            "Kerberos could not start; Negotiate falls back to NTLM for this \
                             connection (ClientBuilder::ntlm_fallback(false) or \
                             --no-ntlm-fallback forbids it)"
                        );
                        Session::connect(settings, &peer, self.ntlm_context(ntlm))
                            .await
                            .map_err(|e| handshake_error("NTLM", e))
                    }
                    (Err(failure), _) => Err(failure.error),
                }
            }
            _ => Err(Error::config("this mechanism has no sessions")),
        }?;
        tracing::debug!(
            mechanism = session.mechanism(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Authenticated a new connection"
        );
        Ok(session)
    }

    /// A new authenticated connection; a handshake whose connection was lost is started once
    /// more (nothing was asked of the server yet, whatever the request).
    async fn authenticate(&self) -> Result<Session> {
        match self.new_session().await {
            Err(e) if lost(&e) => {
                tracing::info!(error = %e.report(), "Connection lost while authenticating; authenticating again");
                self.note_problem(e);
                self.new_session().await
            }
            result => result,
        }
    }

    fn take_idle(&self) -> Option<Session> {
        take_open(&self.inner.idle, Session::is_reusable, Session::idle_since)
    }

    fn put_idle(&self, session: Session) {
        if session.is_reusable() {
            put_idle(&self.inner.idle, session);
        }
    }

    async fn post_sealed(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        let settings = self.settings();
        let mut session = match self.take_idle() {
            Some(session) => {
                tracing::debug!("Reusing an authenticated connection");
                session
            }
            // Boxed, as opening a plain connection is: authenticating is once a connection.
            None => Box::pin(self.authenticate()).await?,
        };
        let peer = self.peer().await?;
        match session.send(settings, &peer, envelope.as_bytes()).await {
            Ok(body) => {
                self.put_idle(session);
                return Ok(body);
            }
            Err(SendError::Unauthorized) => {
                tracing::info!(
                    "The server no longer knows the connection's authentication; authenticating again"
                );
            }
            Err(SendError::NotSent(e)) => {
                // The server closed the connection while it sat idle (its idle timeout, a
                // restart): its context went with it. Nothing of the request left, so it goes out
                // on a new authenticated connection, Pull or not.
                tracing::debug!(error = %e.report(), "The authenticated connection was closed by the server; authenticating a new one");
            }
            Err(SendError::Lost(e)) if resend == Resend::Allowed => {
                tracing::info!(error = %e.report(), "Connection lost; authenticating again and sending the request again");
                self.note_problem(e);
            }
            Err(SendError::Lost(e) | SendError::Failed(e)) => return Err(e),
        }
        drop(session);
        let mut session = Box::pin(self.authenticate()).await?;
        match session.send(settings, &peer, envelope.as_bytes()).await {
            Ok(body) => {
                self.put_idle(session);
                Ok(body)
            }
            Err(SendError::Unauthorized) => Err(ErrorKind::Authentication {
                mechanism: session.mechanism(),
                reason: "the server refused sealed messages right after authenticating".into(),
            }
            .into()),
            Err(SendError::NotSent(e) | SendError::Lost(e) | SendError::Failed(e)) => Err(e),
        }
    }
}

fn trace_response(body: &[u8]) {
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(bytes = body.len(), body = %String::from_utf8_lossy(body), "Response");
    }
}

/// The most recently used idle connection that is still open and not idle for too long; the
/// others found closed or stale are dropped.
fn take_open<T>(
    idle: &Mutex<Vec<T>>,
    reusable: impl Fn(&T) -> bool,
    since: impl Fn(&T) -> tokio::time::Instant,
) -> Option<T> {
    let mut idle = lock(idle);
    while let Some(candidate) = idle.pop() {
        if reusable(&candidate) && since(&candidate).elapsed() < IDLE_FOR {
            return Some(candidate);
        }
    }
    None
}

fn put_idle<T>(idle: &Mutex<Vec<T>>, connection: T) {
    let mut idle = lock(idle);
    if idle.len() < MAX_IDLE {
        idle.push(connection);
    }
}

/// The content type of a SOAP request in clear.
const SOAP: &str = "application/soap+xml;charset=UTF-8";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The connection broke under the request (a timeout is not resent on a plain connection: the
/// server may still be working on it).
fn lost(e: &Error) -> bool {
    e.broke_in_flight() && !matches!(e.kind(), ErrorKind::Timeout { .. })
}

/// Why a Kerberos session could not be had, and whether the AP-REQ had gone out.
struct KerberosFailure {
    error: Error,
    after_ap_req: bool,
}

impl KerberosFailure {
    /// Kerberos could not start (no KDC answered, the KDC does not know the service, no
    /// ticket could be had): the only failures Negotiate may answer with NTLM. A refused
    /// password and an unreachable server are never tried again with NTLM either.
    fn allows_fallback(&self) -> bool {
        !self.after_ap_req && !self.error.is_authentication() && !self.error.is_connect()
    }
}

fn handshake_error(mechanism: &'static str, e: HandshakeError) -> Error {
    match e {
        HandshakeError::Failed(e) => e,
        HandshakeError::AfterFirstToken(e) => handshake_error(mechanism, *e),
        HandshakeError::SchemeNotOffered(offered) => ErrorKind::Authentication {
            mechanism,
            reason: if offered.is_empty() {
                "the server offers no authentication scheme".into()
            } else {
                format!(
                    "the server does not accept {mechanism} (it offers {})",
                    offered.join(", ")
                )
            },
        }
        .into(),
    }
}
