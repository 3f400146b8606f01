//! [`ClientBuilder`]: sentences that configure a [`Client`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CaSource, Config, endpoint_url};
use super::{ClassAddressing, Client, ClientInner};
use crate::auth::{Auth, AuthSettings, Authenticator, Credentials, TicketCacheChoice};
use crate::error::{Error, Result};
use crate::transport::{HttpOptions, HttpSettings, HttpTransport, Shared};

/// Builds a [`Client`]. Defaults: HTTP on 5985 (HTTPS on 5986 with [`ClientBuilder::https`]),
/// TLS verified against the system roots, Basic refused over plain HTTP, connect timeout 10 s,
/// operation timeout 60 s, responses capped at 16 MiB, 500 items per page.
///
/// Settings that contradict each other (a password and a ticket cache, a keytab and a
/// password, a client certificate on plain HTTP, `auth(Ntlm)` with a keytab) are reported by
/// [`ClientBuilder::build`]; no setter silently overrides another.
#[must_use]
pub struct ClientBuilder {
    target: String,
    auth: AuthSettings,
    ca: Vec<CaSource>,
    danger_accept_invalid_certs: bool,
    connect_timeout: Duration,
    operation_timeout: Duration,
    max_envelope_size: u32,
    max_response_size: usize,
    max_elements: u32,
    locale: Option<String>,
    client_identity: Option<zeroize::Zeroizing<Vec<u8>>>,
    hook: Option<Arc<dyn crate::record::ExchangeHook>>,
    class_addressing: ClassAddressing,
    /// What [`Self::https`] was told, if anything: a URL whose scheme says otherwise is a
    /// contradiction [`Self::build`] reports.
    https_said: Option<bool>,
}

impl ClientBuilder {
    pub(crate) fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            auth: AuthSettings::default(),
            ca: Vec::new(),
            danger_accept_invalid_certs: false,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(60),
            max_envelope_size: 512_000,
            max_response_size: 16 << 20,
            max_elements: 500,
            locale: Some("en-US".into()),
            client_identity: None,
            hook: None,
            class_addressing: ClassAddressing::Auto,
            https_said: None,
        }
    }

    /// The user and password to authenticate with.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.auth.credentials = Some(credentials);
        self
    }

    /// The authentication mechanism (default [`Auth::Negotiate`]).
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth.auth = Some(auth);
        self
    }

    /// Uses HTTPS (port 5986) when the target is a host name rather than a URL. A URL's scheme
    /// decides by itself; a URL whose scheme says the opposite is reported by [`Self::build`].
    pub fn https(mut self, https: bool) -> Self {
        self.auth.https = https;
        self.https_said = Some(https);
        self
    }

    /// Trusts the CA certificates of a PEM file, in addition to the system roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca.push(CaSource::File(path.into()));
        self
    }

    /// Trusts the CA certificates of a PEM bundle in memory.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(CaSource::Pem(pem.into()));
        self
    }

    /// Accepts any server certificate. Anyone on the path can then read and change the
    /// traffic, passwords included: only for throwaway lab servers.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// Allows Basic authentication over plain HTTP, which sends the password in clear. Only for
    /// loopback or lab networks.
    pub fn danger_allow_basic_over_http(mut self, allow: bool) -> Self {
        self.auth.allow_basic_over_http = allow;
        self
    }

    /// Under [`Auth::Negotiate`] with a password, whether NTLM may stand in when Kerberos
    /// cannot start: no KDC answers, the KDC does not know the service principal, or the user
    /// has no realm with a KDC. On by default, as Windows' Negotiate does, so that a host
    /// outside the realm (or a KDC down for the night) still answers; the fallback is logged
    /// at WARN with its cause. Off, such a host fails with the Kerberos error instead: for
    /// environments where NTLM must never be sent (an attacker who can block the KDC could
    /// otherwise collect an NTLMv2 response). Whatever this says, once the Kerberos AP-REQ
    /// went out, any failure (a forged or missing AP-REP, a bad mechListMIC, a KRB-ERROR) is
    /// final and NTLM is not tried.
    pub fn ntlm_fallback(mut self, allow: bool) -> Self {
        self.auth.no_ntlm_fallback = !allow;
        self
    }

    /// How long to wait for the TCP and TLS connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `w:OperationTimeout`: how long the server may work on one request. The HTTP exchange is
    /// given as long again (at most 15 s more) before it times out.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// `w:MaxEnvelopeSize`: the largest response envelope the server may send, in bytes.
    pub fn max_envelope_size(mut self, bytes: u32) -> Self {
        self.max_envelope_size = bytes;
        self
    }

    /// The largest response body accepted; a larger one is an error, never read into memory.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response_size = bytes;
        self
    }

    /// `w:MaxElements`: items asked for per page (the server may send fewer).
    pub fn max_elements(mut self, items: u32) -> Self {
        self.max_elements = items;
        self
    }

    /// The KDC for Kerberos (`host`, `host:port` or `tcp://host:port`), instead of krb5.conf.
    pub fn kdc(mut self, kdc: impl Into<String>) -> Self {
        self.auth.kdc = Some(kdc.into());
        self
    }

    /// The service principal name for Kerberos, instead of `HTTP/<host>` (some sites use
    /// `WSMAN/<host>` or `host/<host>`).
    pub fn spn(mut self, spn: impl Into<String>) -> Self {
        self.auth.spn = Some(spn.into());
        self
    }

    /// Authenticates with a client certificate (PEM certificate, then its PEM private key) over
    /// HTTPS, as WinRM's certificate authentication expects; implies [`Auth::Certificate`].
    pub fn client_certificate(
        mut self,
        certificate_pem: impl AsRef<[u8]>,
        private_key_pem: impl AsRef<[u8]>,
    ) -> Self {
        let mut identity = certificate_pem.as_ref().to_vec();
        identity.push(b'\n');
        identity.extend_from_slice(private_key_pem.as_ref());
        self.client_identity = Some(zeroize::Zeroizing::new(identity));
        self.auth.client_certificate = true;
        self
    }

    /// Shows every exchange, in clear, to a hook: a [`crate::record::Recorder`] writes them as
    /// fixtures to replay in tests.
    pub fn exchange_hook(mut self, hook: Arc<dyn crate::record::ExchangeHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Kerberos with the key of `principal` (`user@REALM`) from an MIT keytab instead of a
    /// password, for accounts that audit on a schedule; implies [`Auth::Kerberos`].
    pub fn kerberos_keytab(
        mut self,
        principal: impl Into<String>,
        keytab: impl Into<PathBuf>,
    ) -> Self {
        self.auth.keytab = Some((principal.into(), keytab.into()));
        self
    }

    /// Kerberos with the tickets of a user who already ran `kinit`: the credential cache named
    /// by `KRB5CCNAME` (a `FILE:` or `DIR:` cache), else krb5.conf's `default_ccache_name`,
    /// else `/tmp/krb5cc_<uid>`. No password is needed; the cache's default principal is the
    /// user. Implies [`Auth::Kerberos`].
    pub fn kerberos_ticket_cache(mut self) -> Self {
        self.auth.ticket_cache = Some(TicketCacheChoice::Default);
        self
    }

    /// Like [`Self::kerberos_ticket_cache`], with the cache file given.
    pub fn kerberos_ticket_cache_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth.ticket_cache = Some(TicketCacheChoice::File(path.into()));
        self
    }

    /// How requests name a class and its namespace: [`ClassAddressing::Auto`] (the default)
    /// asks a server who it is before a query or a class given by name, and addresses Windows
    /// the WMI way and other WS-Management servers (OMI) the DMTF way; the others force one form.
    pub fn class_addressing(mut self, addressing: ClassAddressing) -> Self {
        self.class_addressing = addressing;
        self
    }

    /// `w:Locale`, e.g. `de-DE`, or `None` to send none.
    pub fn locale(mut self, locale: Option<String>) -> Self {
        self.locale = locale;
        self
    }

    /// Builds the client: checks the settings, reads the files they name (CA bundle, client
    /// key, keytab, credential cache, krb5.conf) once. Clients made from it with
    /// [`Client::with_target`], and a [`crate::fleet::Fleet`], share all of that.
    ///
    /// # Errors
    ///
    /// A config error for a bad target, an unreadable or invalid file, a zero limit, or
    /// settings that contradict each other; a refusal when Basic credentials would cross plain
    /// HTTP without [`Self::danger_allow_basic_over_http`].
    pub fn build(self) -> Result<Client> {
        let target = self.target.clone();
        self.build_inner().map_err(|e| e.with_target(target))
    }

    fn build_inner(mut self) -> Result<Client> {
        let endpoint = endpoint_url(&self.target, self.auth.https)?;
        if let Some(https) = self.https_said
            && self.target.contains("://")
            && https != (endpoint.scheme() == "https")
        {
            return Err(Error::config(format!(
                "the URL says {} but HTTPS was {}; drop one of them",
                endpoint.scheme(),
                if https { "asked for" } else { "turned off" }
            )));
        }
        if self.max_elements == 0 || self.max_envelope_size < 8192 || self.max_response_size == 0 {
            return Err(Error::config(
                "max_elements must be at least 1 and max_envelope_size at least 8192",
            ));
        }
        let mut root_certificates = Vec::new();
        for source in self.ca {
            root_certificates.push(match source {
                CaSource::Pem(pem) => pem,
                CaSource::File(path) => std::fs::read(&path).map_err(|e| {
                    Error::config(format!("cannot read CA file {}: {e}", path.display()))
                })?,
            });
        }
        let http = HttpSettings::new(&HttpOptions {
            max_response_size: self.max_response_size,
            connect_timeout: self.connect_timeout,
            operation_timeout: self.operation_timeout,
            root_certificates,
            danger_accept_invalid_certs: self.danger_accept_invalid_certs,
            client_identity: self.client_identity,
        })?;
        let https = self.auth.https;
        self.auth.https = endpoint.scheme() == "https";
        let allow_basic_over_http = self.auth.allow_basic_over_http;
        let auth = Authenticator::prepare(self.auth)?;
        let basic_needs_https = matches!(auth, Authenticator::Basic(_)) && !allow_basic_over_http;
        let shared = Arc::new(Shared::new(http, auth, self.hook));
        let config = Config {
            target: self.target,
            endpoint: endpoint.clone(),
            https,
            operation_timeout: self.operation_timeout,
            max_envelope_size: self.max_envelope_size,
            max_elements: self.max_elements,
            locale: self.locale,
            basic_needs_https,
            class_addressing: self.class_addressing,
        };
        Ok(Client {
            inner: Arc::new(ClientInner {
                transport: HttpTransport::new(endpoint, shared),
                config,
                style: std::sync::OnceLock::new(),
            }),
        })
    }
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("target", &self.target)
            .field("auth", &self.auth)
            .field("recording", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}
