//! The HTTP shell around the sans-IO core: post an envelope, get the SOAP response back.
//!
//! It owns everything that touches the network: TLS (rustls, verification on), timeouts, the
//! cap on response size, authentication, and WinRM message encryption.
//!
//! - **Basic**: stateless; an `Authorization` header on every request, over a shared pool.
//! - **Negotiate / NTLM**: connection-bound. Each [`negotiate::NegotiateSession`] is one HTTP/1.1
//!   connection with its own security context, authenticated with empty-body POSTs, then used for
//!   sealed requests, one at a time. Idle sessions are kept for reuse; concurrency to one host
//!   means several sessions. One recovery path: a 401 on a sealed request (the context is gone,
//!   the request was not processed) or, where the caller allows it, a lost connection,
//!   re-authenticates a new session and resends once.

mod http;
mod negotiate;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::auth::context::{NtlmClient, SecurityContext};
use crate::auth::{Auth, Credentials, basic_authorization};
use crate::client::Config;
use crate::error::{Error, ErrorKind, Result};
use http::{HttpSettings, content_type, is_soap, offered_schemes, unexpected_status};
use negotiate::{NegotiateSession, SendError};

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

/// One endpoint with its credentials.
#[derive(Clone)]
pub(crate) struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: url::Url,
    settings: HttpSettings,
    mechanism: Mechanism,
    shared: reqwest::Client,
    idle: Mutex<Vec<NegotiateSession>>,
}

enum Mechanism {
    Anonymous,
    Basic(HeaderValue),
    Ntlm(Credentials),
}

impl Mechanism {
    fn name(&self) -> &'static str {
        match self {
            Mechanism::Anonymous => "none",
            Mechanism::Basic(_) => "Basic",
            Mechanism::Ntlm(_) => "NTLM",
        }
    }
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("mechanism", &self.inner.mechanism.name())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let https = config.endpoint.scheme() == "https";
        let mechanism = match (config.auth, &config.credentials) {
            (_, None) => Mechanism::Anonymous,
            (Auth::Basic, Some(credentials)) => {
                if !https && !config.allow_basic_over_http {
                    return Err(ErrorKind::PlaintextBasicRefused.into());
                }
                let mut value =
                    HeaderValue::from_str(&basic_authorization(credentials)).map_err(|_| {
                        Error::config("user name or password contains a control character")
                    })?;
                value.set_sensitive(true);
                Mechanism::Basic(value)
            }
            (Auth::Negotiate | Auth::Ntlm, Some(credentials)) => {
                Mechanism::Ntlm(credentials.clone())
            }
        };
        let settings = HttpSettings::new(config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint: config.endpoint.clone(),
                shared: settings.client(false)?,
                settings,
                mechanism,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Sends one envelope and returns the SOAP body of a 200 or 500 response.
    pub(crate) async fn post(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        match &self.inner.mechanism {
            Mechanism::Anonymous => self.post_plain(envelope, None).await,
            Mechanism::Basic(header) => self.post_plain(envelope, Some(header.clone())).await,
            Mechanism::Ntlm(credentials) => self.post_sealed(credentials, envelope, resend).await,
        }
    }

    async fn post_plain(
        &self,
        envelope: String,
        authorization: Option<HeaderValue>,
    ) -> Result<Bytes> {
        let settings = &self.inner.settings;
        let mut request = self
            .inner
            .shared
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
            let mechanism = self.inner.mechanism.name();
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
            200 | 500 if is_soap(&ctype) => Ok(body),
            _ => Err(unexpected_status(status, ctype, &body)),
        }
    }

    fn new_context(&self, credentials: &Credentials) -> Result<Box<dyn SecurityContext>> {
        let host = self.inner.endpoint.host_str().unwrap_or_default();
        let context =
            NtlmClient::new(credentials, host, None).map_err(|e| Error::config(e.message))?;
        Ok(Box::new(context))
    }

    async fn new_session(&self, credentials: &Credentials) -> Result<NegotiateSession> {
        let context = self.new_context(credentials)?;
        NegotiateSession::connect(
            &self.inner.settings,
            &self.inner.endpoint,
            self.inner.mechanism.name(),
            context,
        )
        .await
    }

    fn take_idle(&self) -> Option<NegotiateSession> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
    }

    fn put_idle(&self, session: NegotiateSession) {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
    }

    async fn post_sealed(
        &self,
        credentials: &Credentials,
        envelope: String,
        resend: Resend,
    ) -> Result<Bytes> {
        let (settings, endpoint) = (&self.inner.settings, &self.inner.endpoint);
        let mut session = match self.take_idle() {
            Some(session) => session,
            None => self.new_session(credentials).await?,
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
        let mut session = self.new_session(credentials).await?;
        match session.send(settings, endpoint, envelope.as_bytes()).await {
            Ok(body) => {
                self.put_idle(session);
                Ok(body)
            }
            Err(SendError::Unauthorized) => Err(ErrorKind::Authentication {
                mechanism: self.inner.mechanism.name(),
                reason: "the server refused sealed messages right after authenticating".into(),
            }
            .into()),
            Err(SendError::Lost(e) | SendError::Failed(e)) => Err(e),
        }
    }
}
