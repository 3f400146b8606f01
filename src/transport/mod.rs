//! The HTTP shell around the sans-IO core: post an envelope, get the SOAP response back.
//!
//! It owns everything that touches the network: TLS (rustls, verification on), timeouts, the
//! cap on response size, the KDC, and the authenticated sessions. What it knows of the client
//! is an endpoint, [`HttpSettings`] and an [`Authenticator`], both prepared once per client
//! and shared ([`Shared`]) by every host of a fleet.
//!
//! - **Basic** and **certificate**: stateless; a shared pool.
//! - **NTLM / Kerberos**: connection-bound. Each [`session::Session`] is one HTTP/1.1
//!   connection with its own security context, authenticated with empty-body POSTs, then used
//!   for sealed requests, one at a time. Idle sessions are kept for reuse; concurrency to one
//!   host means several sessions. One recovery path: a 401 on a sealed request (the context is
//!   gone, the request was not processed) or, where the caller allows it, a lost connection,
//!   re-authenticates a new session and resends once.

mod http;
mod kdc;
mod kerberos;
mod session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

pub(crate) use http::{HttpOptions, HttpSettings};

use crate::auth::context::SecurityContext;
use crate::auth::kerberos::context::KerberosContext;
use crate::auth::ntlm::{NtlmClient, NtlmCredentials};
use crate::auth::{Authenticator, KerberosAuth};
use crate::error::{Error, ErrorKind, Result};
use crate::record::ExchangeHook;
use http::{content_type, is_soap, offered_schemes, unexpected_status};
use session::{HandshakeError, SendError, Session, context_failure};

/// The `Authorization` value WinRM expects with a client certificate (DSP0226 security profile
/// `https/mutual`).
pub(crate) const CERTIFICATE_AUTHORIZATION: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

/// Idle authenticated sessions kept per client.
const MAX_IDLE_SESSIONS: usize = 8;

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
    /// The pool for stateless mechanisms, built on first use (building a client costs a few
    /// milliseconds of TLS setup, which adds up over a fleet that only needs sessions).
    pool: std::sync::OnceLock<reqwest::Client>,
    idle: Mutex<Vec<Session>>,
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
                pool: std::sync::OnceLock::new(),
                idle: Mutex::new(Vec::new()),
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

    /// Sends one envelope and returns the SOAP body of a 200 or 500 response.
    pub(crate) async fn post(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        let Some(hook) = self.inner.shared.hook.clone() else {
            return self.post_unobserved(envelope, resend).await;
        };
        let request = envelope.clone().into_bytes();
        let body = self.post_unobserved(envelope, resend).await?;
        hook.exchange(&request, &body);
        Ok(body)
    }

    async fn post_unobserved(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        match &self.inner.shared.auth {
            Authenticator::Anonymous => self.post_plain(envelope, None).await,
            Authenticator::Certificate => {
                let header = HeaderValue::from_static(CERTIFICATE_AUTHORIZATION);
                self.post_plain(envelope, Some(header)).await
            }
            Authenticator::Basic(value) => {
                let mut header = HeaderValue::from_str(value)
                    .map_err(|_| Error::config("the Basic header is not valid"))?;
                header.set_sensitive(true);
                self.post_plain(envelope, Some(header)).await
            }
            Authenticator::Ntlm(_) | Authenticator::Kerberos { .. } => {
                self.post_sealed(envelope, resend).await
            }
        }
    }

    async fn post_plain(
        &self,
        envelope: String,
        authorization: Option<HeaderValue>,
    ) -> Result<Bytes> {
        let settings = self.settings();
        let pool = match self.inner.pool.get() {
            Some(client) => client,
            None => {
                let client = settings.client(false)?;
                self.inner.pool.get_or_init(|| client)
            }
        };
        let mut request = pool
            .post(self.inner.endpoint.clone())
            .header(CONTENT_TYPE, "application/soap+xml;charset=UTF-8")
            .body(envelope);
        if let Some(authorization) = &authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = request.send().await.map_err(|e| settings.classify(e))?;
        let status = response.status().as_u16();
        let ctype = content_type(&response);
        if status == 401 {
            let offered = offered_schemes(&response);
            let _ = settings.read_body(response).await;
            let mechanism = self.inner.shared.auth.name();
            let reason = if authorization.is_none() {
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
        let body = settings.read_body(response).await?;
        match status {
            200 | 500 if is_soap(&ctype) => Ok(body.freeze()),
            _ => Err(unexpected_status(status, ctype, &body)),
        }
    }

    fn ntlm_context(&self, credentials: &NtlmCredentials) -> Box<dyn SecurityContext> {
        Box::new(NtlmClient::new(
            credentials.clone(),
            format!("HTTP/{}", self.host().trim_matches(['[', ']'])),
        ))
    }

    /// A Kerberos session: the service ticket first (from the KDC if need be), then the
    /// handshake, switching to SPNEGO when the server offers only `Negotiate`.
    async fn kerberos_session(&self, kerberos: &KerberosAuth) -> Result<Session> {
        let shared = &self.inner.shared;
        let settings = self.settings();
        let (ticket, service) = kerberos::service_ticket(
            kerberos,
            &shared.as_lock,
            self.host(),
            kdc_timeout(settings.connect_timeout),
        )
        .await
        .map_err(|e| {
            context_failure("Kerberos", crate::auth::kerberos::context::context_error(e))
        })?;
        let context = |spnego: bool| -> Box<dyn SecurityContext> {
            Box::new(KerberosContext::new(
                ticket.clone(),
                service.clone(),
                kerberos.credentials.clone(),
                spnego,
            ))
        };
        match Session::connect(settings, &self.inner.endpoint, context(kerberos.spnego)).await {
            Ok(session) => Ok(session),
            Err(HandshakeError::SchemeNotOffered(offered))
                if offered.iter().any(|o| o.eq_ignore_ascii_case("Negotiate"))
                    && !kerberos.spnego =>
            {
                tracing::debug!(endpoint = %self.inner.endpoint, "The server offers Negotiate only: Kerberos in SPNEGO");
                Session::connect(settings, &self.inner.endpoint, context(true))
                    .await
                    .map_err(|e| handshake_error("Kerberos", e))
            }
            Err(e) => Err(handshake_error("Kerberos", e)),
        }
    }

    async fn new_session(&self) -> Result<Session> {
        let settings = self.settings();
        let endpoint = &self.inner.endpoint;
        match &self.inner.shared.auth {
            Authenticator::Ntlm(credentials) => {
                Session::connect(settings, endpoint, self.ntlm_context(credentials))
                    .await
                    .map_err(|e| handshake_error("NTLM", e))
            }
            Authenticator::Kerberos { kerberos, fallback } => {
                match (self.kerberos_session(kerberos).await, fallback) {
                    // Negotiate: NTLM when Kerberos cannot be used, for this attempt only; a
                    // refused password is never tried again with another mechanism.
                    (Err(e), Some(ntlm)) if !e.is_authentication() => {
                        tracing::debug!(%endpoint, error = %e, "Kerberos unusable; Negotiate falls back to NTLM");
                        Session::connect(settings, endpoint, self.ntlm_context(ntlm))
                            .await
                            .map_err(|e| handshake_error("NTLM", e))
                    }
                    (result, _) => result,
                }
            }
            _ => Err(Error::config("this mechanism has no sessions")),
        }
    }

    fn take_idle(&self) -> Option<Session> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
    }

    fn put_idle(&self, session: Session) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
    }

    async fn post_sealed(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        let (settings, endpoint) = (self.settings(), &self.inner.endpoint);
        let mut session = match self.take_idle() {
            Some(session) => session,
            None => self.new_session().await?,
        };
        match session.send(settings, endpoint, envelope.as_bytes()).await {
            Ok(body) => {
                self.put_idle(session);
                return Ok(body);
            }
            Err(SendError::Unauthorized) => {
                tracing::debug!(endpoint = %endpoint, "Session lost its context; authenticating again");
            }
            Err(SendError::Lost(e)) if resend == Resend::Allowed => {
                tracing::debug!(endpoint = %endpoint, error = %e, "Connection lost; authenticating again");
            }
            Err(SendError::Lost(e) | SendError::Failed(e)) => return Err(e),
        }
        drop(session);
        let mut session = self.new_session().await?;
        match session.send(settings, endpoint, envelope.as_bytes()).await {
            Ok(body) => {
                self.put_idle(session);
                Ok(body)
            }
            Err(SendError::Unauthorized) => Err(ErrorKind::Authentication {
                mechanism: session.mechanism(),
                reason: "the server refused sealed messages right after authenticating".into(),
            }
            .into()),
            Err(SendError::Lost(e) | SendError::Failed(e)) => Err(e),
        }
    }
}

fn handshake_error(mechanism: &'static str, e: HandshakeError) -> Error {
    match e {
        HandshakeError::Failed(e) => e,
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
