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

use crate::auth::context::{KerberosClient, NtlmClient, SecurityContext};
use crate::auth::kerberos::initiator::{TicketCacheClient, TicketStore};
use crate::auth::krb5_conf::{Krb5Config, kdc_url};
use crate::auth::{Auth, Credentials, basic_authorization};
use crate::client::Config;
use crate::error::{Error, ErrorKind, Result};
use http::{HttpSettings, content_type, is_soap, offered_schemes, unexpected_status};
use negotiate::{NegotiateSession, SendError};

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

/// One endpoint with its credentials.
#[derive(Clone)]
pub(crate) struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: url::Url,
    settings: HttpSettings,
    mechanism: Mechanism,
    /// The pool for stateless mechanisms, built on first use (building a client costs a few
    /// milliseconds of TLS setup, which adds up over a fleet that only needs sessions).
    shared: std::sync::OnceLock<reqwest::Client>,
    idle: Mutex<Vec<NegotiateSession>>,
    /// Sees every exchange in clear (the recorder).
    hook: Option<Arc<dyn crate::record::ExchangeHook>>,
    /// A keytab key for Kerberos instead of the password.
    keytab: Option<crate::auth::keytab::KeytabKey>,
    /// Negotiate found Kerberos unusable (no KDC, unknown SPN): later sessions go to NTLM.
    kerberos_unusable: std::sync::atomic::AtomicBool,
}

enum Mechanism {
    Anonymous,
    Basic(HeaderValue),
    /// TLS client certificate, announced by the WS-Management mutual-authentication header.
    Certificate,
    Sealed(Sealing),
}

/// A connection-bound mechanism, chosen when the client is built.
#[derive(Clone, Debug)]
enum Sealing {
    Ntlm(Credentials),
    /// Kerberos with a password or keytab key, through sspi.
    Kerberos {
        credentials: Credentials,
        kdc_url: String,
        spn: String,
        /// Negotiate: use NTLM when Kerberos fails for a reason other than the credentials.
        fallback_to_ntlm: bool,
    },
    /// Kerberos from the tickets of a credential cache, through [`crate::auth::kerberos`].
    TicketCache {
        store: Arc<TicketStore>,
        spn: String,
    },
}

impl Sealing {
    fn mechanism(&self) -> &'static str {
        match self {
            Sealing::Ntlm(_) => "NTLM",
            Sealing::Kerberos { .. } | Sealing::TicketCache { .. } => "Kerberos",
        }
    }
}

impl Mechanism {
    fn name(&self) -> &'static str {
        match self {
            Mechanism::Anonymous => "none",
            Mechanism::Basic(_) => "Basic",
            Mechanism::Certificate => "Certificate",
            Mechanism::Sealed(sealing) => sealing.mechanism(),
        }
    }
}

/// `Auth::Kerberos`: Kerberos, and a missing KDC is an error. `Auth::Negotiate`: Kerberos when
/// the user names a realm with a known KDC (or a KDC is given), falling back to NTLM if the KDC
/// cannot be used; NTLM for a bare (local) user name.
fn choose_sealing(config: &Config, credentials: &Credentials) -> Result<Sealing> {
    let credentials = credentials.clone();
    let krb5 = Krb5Config::load();
    let user = credentials.user();
    let realm = match config.auth {
        Auth::Kerberos => krb5.realm_of(user),
        _ => krb5.explicit_realm_of(user),
    };
    let kdc_url = config
        .kdc
        .as_deref()
        .map(kdc_url)
        .or_else(|| realm.as_deref().and_then(|r| krb5.kdc_url(r)));
    let spn = service_principal(config);
    match (config.auth, kdc_url) {
        (Auth::Ntlm, _) => Ok(Sealing::Ntlm(credentials)),
        (Auth::Kerberos, Some(kdc_url)) => Ok(Sealing::Kerberos {
            credentials,
            kdc_url,
            spn,
            fallback_to_ntlm: false,
        }),
        (Auth::Negotiate, Some(kdc_url)) => Ok(Sealing::Kerberos {
            credentials,
            kdc_url,
            spn,
            fallback_to_ntlm: true,
        }),
        (Auth::Kerberos, None) => Err(Error::config(match realm {
            Some(realm) => format!("no KDC known for realm {realm}: pass --kdc or add it to krb5.conf"),
            None => "no Kerberos realm: give the user as user@REALM or REALM\\user, or set default_realm in krb5.conf".into(),
        })),
        _ => Ok(Sealing::Ntlm(credentials)),
    }
}

/// The SPN of the endpoint: the configured one, or `HTTP/<host>`.
fn service_principal(config: &Config) -> String {
    let host = config
        .endpoint
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']']);
    config.spn.clone().unwrap_or_else(|| format!("HTTP/{host}"))
}

/// How long a KDC may take: the connect timeout, at least 5 seconds.
fn kdc_timeout(connect_timeout: std::time::Duration) -> std::time::Duration {
    connect_timeout.max(std::time::Duration::from_secs(5))
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
            (Auth::Certificate, _) => {
                if !https {
                    return Err(Error::config("certificate authentication needs HTTPS"));
                }
                if config.client_identity.is_none() {
                    return Err(Error::config(
                        "certificate authentication needs a client certificate and key",
                    ));
                }
                Mechanism::Certificate
            }
            (Auth::Kerberos | Auth::Negotiate, _) if let Some(path) = &config.ticket_cache => {
                Mechanism::Sealed(Sealing::TicketCache {
                    store: TicketStore::new(
                        path.clone(),
                        config.kdc.as_deref().map(kdc_url),
                        kdc_timeout(config.connect_timeout),
                    ),
                    spn: service_principal(config),
                })
            }
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
            (Auth::Negotiate | Auth::Ntlm | Auth::Kerberos, Some(credentials)) => {
                Mechanism::Sealed(choose_sealing(config, credentials)?)
            }
        };
        let settings = HttpSettings::new(config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint: config.endpoint.clone(),
                shared: std::sync::OnceLock::new(),
                settings,
                mechanism,
                idle: Mutex::new(Vec::new()),
                hook: config.hook.clone(),
                keytab: config.keytab.clone(),
                kerberos_unusable: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Sends one envelope and returns the SOAP body of a 200 or 500 response.
    pub(crate) async fn post(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        let Some(hook) = self.inner.hook.clone() else {
            return self.post_unobserved(envelope, resend).await;
        };
        let request = envelope.clone().into_bytes();
        let body = self.post_unobserved(envelope, resend).await?;
        hook.exchange(&request, &body);
        Ok(body)
    }

    async fn post_unobserved(&self, envelope: String, resend: Resend) -> Result<Bytes> {
        match &self.inner.mechanism {
            Mechanism::Anonymous => self.post_plain(envelope, None).await,
            Mechanism::Certificate => {
                let header = HeaderValue::from_static(CERTIFICATE_AUTHORIZATION);
                self.post_plain(envelope, Some(header)).await
            }
            Mechanism::Basic(header) => self.post_plain(envelope, Some(header.clone())).await,
            Mechanism::Sealed(sealing) => self.post_sealed(sealing, envelope, resend).await,
        }
    }

    async fn post_plain(
        &self,
        envelope: String,
        authorization: Option<HeaderValue>,
    ) -> Result<Bytes> {
        let settings = &self.inner.settings;
        let shared = match self.inner.shared.get() {
            Some(client) => client,
            None => {
                let client = settings.client(false)?;
                self.inner.shared.get_or_init(|| client)
            }
        };
        let mut request = shared
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

    fn new_context(&self, sealing: &Sealing) -> Result<Box<dyn SecurityContext>> {
        let host = self.inner.endpoint.host_str().unwrap_or_default();
        let failed = |e: crate::auth::context::ContextError| Error::config(e.message);
        Ok(match sealing {
            Sealing::Ntlm(credentials) => {
                Box::new(NtlmClient::new(credentials, host, None).map_err(failed)?)
            }
            Sealing::Kerberos {
                credentials,
                kdc_url,
                spn,
                ..
            } => Box::new(
                KerberosClient::new(
                    credentials,
                    self.inner.keytab.as_ref(),
                    spn,
                    kdc_url,
                    kdc_timeout(self.inner.settings.connect_timeout),
                )
                .map_err(failed)?,
            ),
            Sealing::TicketCache { store, spn } => {
                Box::new(TicketCacheClient::new(store.clone(), spn))
            }
        })
    }

    async fn new_session(&self, sealing: &Sealing) -> Result<NegotiateSession> {
        use std::sync::atomic::Ordering;
        let endpoint = &self.inner.endpoint;
        let ntlm = match sealing {
            Sealing::Kerberos {
                credentials,
                fallback_to_ntlm: true,
                ..
            } => Some(Sealing::Ntlm(credentials.clone())),
            _ => None,
        };
        let Some(ntlm) = ntlm else {
            return self.connect(sealing).await;
        };
        if self.inner.kerberos_unusable.load(Ordering::Relaxed) {
            return self.connect(&ntlm).await;
        }
        match self.connect(sealing).await {
            Err(e) if !e.is_authentication() => {
                tracing::debug!(endpoint = %endpoint, error = %e, "Kerberos unusable; Negotiate falls back to NTLM");
                self.inner.kerberos_unusable.store(true, Ordering::Relaxed);
                self.connect(&ntlm).await
            }
            other => other,
        }
    }

    async fn connect(&self, sealing: &Sealing) -> Result<NegotiateSession> {
        let context = self.new_context(sealing)?;
        NegotiateSession::connect(
            &self.inner.settings,
            &self.inner.endpoint,
            sealing.mechanism(),
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
        sealing: &Sealing,
        envelope: String,
        resend: Resend,
    ) -> Result<Bytes> {
        let (settings, endpoint) = (&self.inner.settings, &self.inner.endpoint);
        let mut session = match self.take_idle() {
            Some(session) => session,
            None => self.new_session(sealing).await?,
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
        let mut session = self.new_session(sealing).await?;
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
