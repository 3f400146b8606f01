//! Credentials, mechanisms, and the authentication engines.
//!
//! The public part is what users configure: [`Credentials`], [`Password`] and [`Auth`].
//! Beneath it, sans-IO and private: NTLMv2 and Kerberos engines on RustCrypto primitives and
//! picky-krb's message types, SPNEGO, the WinRM encryption framing, channel bindings,
//! krb5.conf, keytabs and credential caches. What a client prepares once from its settings
//! (files read, hashes computed) is shared with every session, host and fleet; the transport
//! asks it for a security context per connection.
//!
//! Passwords live in [`Password`], which zeroizes its memory on drop and never prints itself.

pub(crate) mod channel_binding;
pub(crate) mod context;
pub(crate) mod der;
pub(crate) mod framing;
pub(crate) mod kerberos;
pub(crate) mod keytab;
pub(crate) mod krb5_conf;
pub(crate) mod md5;
pub(crate) mod ntlm;
pub(crate) mod rc4;
pub(crate) mod spnego;
mod ticket_cache;
mod wire;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use kerberos::ccache::Principal;
use kerberos::exchange::LongTermKey;
use kerberos::store::KerberosCredentials;
use krb5_conf::Krb5Config;
use ntlm::NtlmCredentials;
pub use ticket_cache::{default_ticket_cache, usable_ticket_cache};

/// A password: zeroized on drop, `<redacted>` in Debug, not Display at all.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// The secret, for the code that must send it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// A user and a password. `DOMAIN\user`, `user@REALM` and a bare `user` are all accepted.
#[derive(Clone)]
pub struct Credentials {
    user: String,
    password: Password,
}

impl Credentials {
    /// A user and a password.
    pub fn new(user: impl Into<String>, password: impl Into<Password>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user name as given.
    pub fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn password(&self) -> &Password {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

/// How to authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// What Windows clients do: Kerberos when the user's realm has a known KDC (krb5.conf or
    /// `ClientBuilder::kdc`), NTLM otherwise; WinRM message encryption on HTTP. Works against a
    /// default-configured server.
    #[default]
    Negotiate,
    /// NTLM under the `Negotiate` scheme, with message encryption on HTTP and channel bindings on
    /// HTTPS.
    Ntlm,
    /// Kerberos with a password (no kinit needed), a keytab or a ticket cache: the KDC from
    /// `ClientBuilder::kdc`, or krb5.conf (`KRB5_CONFIG`, then `/etc/krb5.conf`); the SPN
    /// `HTTP/<host>` unless `ClientBuilder::spn` says otherwise. Message encryption on HTTP,
    /// channel bindings on HTTPS.
    Kerberos,
    /// A client certificate over HTTPS (`ClientBuilder::client_certificate`), mapped to a local
    /// account on the server (`winrm create winrm/config/service/certmapping ...`).
    Certificate,
    /// HTTP Basic: a local account on the server; the WinRM service must allow Basic
    /// (`winrm set winrm/config/service/auth @{Basic="true"}`). Over HTTPS, or over HTTP only
    /// when explicitly allowed, because the password travels in clear.
    Basic,
}

impl Auth {
    /// The name used in messages and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Auth::Negotiate => "Negotiate",
            Auth::Ntlm => "NTLM",
            Auth::Kerberos => "Kerberos",
            Auth::Certificate => "Certificate",
            Auth::Basic => "Basic",
        }
    }
}

/// The value of an `Authorization: Basic` header.
pub(crate) fn basic_authorization(credentials: &Credentials) -> Zeroizing<String> {
    use base64::Engine;
    let raw = Zeroizing::new(format!(
        "{}:{}",
        credentials.user(),
        credentials.password().expose()
    ));
    Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ))
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random_bytes(n: usize) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut bytes).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(bytes)
}

/// Which credential cache to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TicketCacheChoice {
    /// `KRB5CCNAME`, krb5.conf's `default_ccache_name`, or `/tmp/krb5cc_<uid>`.
    Default,
    /// This `FILE:` cache.
    File(PathBuf),
}

/// Everything the builder knows about authentication.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthSettings {
    /// Set explicitly with `ClientBuilder::auth`.
    pub auth: Option<Auth>,
    pub credentials: Option<Credentials>,
    /// Principal and file.
    pub keytab: Option<(String, PathBuf)>,
    pub ticket_cache: Option<TicketCacheChoice>,
    pub client_certificate: bool,
    pub kdc: Option<String>,
    pub spn: Option<String>,
    pub https: bool,
    pub allow_basic_over_http: bool,
    /// Under Negotiate, NTLM is never tried when Kerberos cannot start.
    pub no_ntlm_fallback: bool,
}

/// Kerberos as prepared for one client.
#[derive(Debug)]
pub(crate) struct KerberosAuth {
    pub credentials: Arc<KerberosCredentials>,
    /// The SPN when configured; `HTTP/<host>` otherwise.
    pub spn: Option<String>,
    /// SPNEGO under `Negotiate` rather than raw tokens under the `Kerberos` scheme.
    pub spnego: bool,
    /// Where the realm came from when the user did not name it, for the errors that follow
    /// from it (an unreachable KDC of a realm the user never typed).
    pub realm_origin: Option<&'static str>,
}

impl KerberosAuth {
    /// The service principal for a host, in the client's realm unless the SPN names one.
    pub(crate) fn service(&self, host: &str) -> Principal {
        let spn = self
            .spn
            .clone()
            .unwrap_or_else(|| format!("HTTP/{}", host.trim_matches(['[', ']'])));
        Principal::service(&spn, &self.credentials.client().realm)
    }
}

/// How a client authenticates, prepared once by `ClientBuilder::build` and shared by every
/// session of every host of the client (and of a fleet built from it).
pub(crate) enum Authenticator {
    /// No credentials: anonymous requests (a server answers 401).
    Anonymous,
    /// HTTP Basic; the header value.
    Basic(Zeroizing<String>),
    /// A TLS client certificate.
    Certificate,
    /// NTLM.
    Ntlm(NtlmCredentials),
    /// Kerberos; with NTLM to fall back on for Negotiate (when a password is at hand and the
    /// fallback is allowed), used only when Kerberos could not start: never once the AP-REQ
    /// went out.
    Kerberos {
        kerberos: KerberosAuth,
        fallback: Option<NtlmCredentials>,
    },
}

fn config(message: impl Into<String>) -> Error {
    Error::config(message)
}

fn conflict(a: &str, b: &str) -> Error {
    config(format!("{a} and {b} cannot be used together: choose one"))
}

impl Authenticator {
    /// Checks the settings for conflicts, reads the files they name (keytab, credential cache,
    /// krb5.conf) and derives what can be derived once (the NT hash).
    pub(crate) fn prepare(settings: AuthSettings) -> Result<Self> {
        let AuthSettings {
            auth,
            credentials,
            keytab,
            ticket_cache,
            client_certificate,
            kdc,
            spn,
            https,
            allow_basic_over_http,
            no_ntlm_fallback,
        } = settings;
        // What the key material implies, and what was asked for explicitly.
        let implied = match (&keytab, &ticket_cache, client_certificate) {
            (Some(_), Some(_), _) => return Err(conflict("a keytab", "a ticket cache")),
            (Some(_), _, true) | (_, Some(_), true) => {
                return Err(conflict("Kerberos", "a client certificate"));
            }
            (Some(_), None, false) | (None, Some(_), false) => Some(Auth::Kerberos),
            (None, None, true) => Some(Auth::Certificate),
            (None, None, false) => None,
        };
        if credentials.is_some() {
            if keytab.is_some() {
                return Err(conflict("a keytab", "a password"));
            }
            if ticket_cache.is_some() {
                return Err(conflict("a ticket cache", "a user and password"));
            }
            if client_certificate {
                return Err(conflict("a client certificate", "a user and password"));
            }
        }
        let auth = match (auth, implied) {
            (Some(Auth::Negotiate), Some(Auth::Kerberos)) => Auth::Kerberos,
            (Some(asked), Some(implied)) if asked != implied => {
                return Err(conflict(
                    &format!("--auth {}", asked.name().to_lowercase()),
                    match implied {
                        Auth::Certificate => "a client certificate",
                        _ => "Kerberos key material (a keytab or a ticket cache)",
                    },
                ));
            }
            (asked, implied) => asked.or(implied).unwrap_or_default(),
        };
        let krb5 = Krb5Config::load();
        let kdcs_for = |realm: &str| -> Vec<String> {
            match &kdc {
                Some(kdc) => vec![krb5_conf::kdc_url(kdc)],
                None => krb5.kdc_urls(realm),
            }
        };
        match auth {
            Auth::Certificate => {
                if !https {
                    return Err(config(
                        "certificate authentication needs HTTPS (an https:// target or https(true))",
                    ));
                }
                if !client_certificate {
                    return Err(config(
                        "certificate authentication needs a client certificate and key",
                    ));
                }
                Ok(Authenticator::Certificate)
            }
            Auth::Basic => {
                let Some(credentials) = credentials else {
                    return Ok(Authenticator::Anonymous);
                };
                if !https && !allow_basic_over_http {
                    return Err(ErrorKind::PlaintextBasicRefused.into());
                }
                let header = basic_authorization(&credentials);
                if header.chars().any(char::is_control) {
                    return Err(config("user name or password contains a control character"));
                }
                Ok(Authenticator::Basic(header))
            }
            Auth::Ntlm => match credentials {
                Some(credentials) => Ok(Authenticator::Ntlm(NtlmCredentials::new(&credentials))),
                None => Ok(Authenticator::Anonymous),
            },
            Auth::Kerberos | Auth::Negotiate => {
                if let Some(choice) = ticket_cache {
                    let path = match choice {
                        TicketCacheChoice::File(path) => path,
                        TicketCacheChoice::Default => {
                            default_ticket_cache().map_err(|e| config(e.to_string()))?
                        }
                    };
                    let store = KerberosCredentials::from_cache(path, kdcs_for)
                        .map_err(|e| config(e.message))?;
                    return Ok(Authenticator::Kerberos {
                        kerberos: KerberosAuth {
                            credentials: Arc::new(store),
                            spn,
                            spnego: auth == Auth::Negotiate,
                            realm_origin: None,
                        },
                        fallback: None,
                    });
                }
                if let Some((principal, path)) = keytab {
                    let data = std::fs::read(&path).map_err(|e| {
                        config(format!("cannot read keytab {}: {e}", path.display()))
                    })?;
                    let keys = keytab::parse(&data).map_err(|e| config(e.to_string()))?;
                    let key = keytab::key_for(&keys, &principal).ok_or_else(|| {
                        config(format!(
                            "no AES key for {principal} in keytab {}",
                            path.display()
                        ))
                    })?;
                    let client = client_principal(&principal, &krb5)?;
                    let kdcs = kdcs_for(&client.realm);
                    if kdcs.is_empty() {
                        return Err(no_kdc(&client.realm));
                    }
                    let key =
                        kerberos::ccache::SessionKey::new(i32::from(key.enctype), key.key.to_vec())
                            .map_err(|e| config(e.message))?;
                    return Ok(Authenticator::Kerberos {
                        kerberos: KerberosAuth {
                            credentials: Arc::new(KerberosCredentials::from_key(
                                client,
                                LongTermKey::Key(key),
                                kdcs,
                            )),
                            spn,
                            spnego: false,
                            realm_origin: None,
                        },
                        fallback: None,
                    });
                }
                let Some(credentials) = credentials else {
                    return Ok(Authenticator::Anonymous);
                };
                // Negotiate takes Kerberos only when the user names a realm whose KDC is
                // known; a bare name is a local account (NTLM).
                let realm = match auth {
                    Auth::Kerberos => krb5.realm_of(credentials.user()),
                    _ => krb5.explicit_realm_of(credentials.user()),
                };
                let kdcs = realm.as_deref().map(kdcs_for).unwrap_or_default();
                match (auth, realm, kdcs.is_empty()) {
                    (Auth::Kerberos, None, _) => Err(config(
                        "no Kerberos realm: give the user as user@REALM or REALM\\user, or set \
                         default_realm in krb5.conf",
                    )),
                    (Auth::Kerberos, Some(realm), true) => Err(no_kdc(&realm)),
                    (_, Some(realm), false) => {
                        let client = client_principal_in(credentials.user(), &realm);
                        Ok(Authenticator::Kerberos {
                            kerberos: KerberosAuth {
                                credentials: Arc::new(KerberosCredentials::from_key(
                                    client,
                                    LongTermKey::Password(credentials.password().clone()),
                                    kdcs,
                                )),
                                // Negotiate sends Kerberos in SPNEGO, as Windows clients do.
                                spnego: auth == Auth::Negotiate,
                                realm_origin: krb5
                                    .explicit_realm_of(credentials.user())
                                    .is_none()
                                    .then_some(
                                        "the default_realm of krb5.conf ($KRB5_CONFIG or \
                                         /etc/krb5.conf), as the user names no realm",
                                    ),
                                spn,
                            },
                            fallback: (auth == Auth::Negotiate && !no_ntlm_fallback)
                                .then(|| NtlmCredentials::new(&credentials)),
                        })
                    }
                    _ => Ok(Authenticator::Ntlm(NtlmCredentials::new(&credentials))),
                }
            }
        }
    }

    /// The mechanism's name, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Authenticator::Anonymous => "none",
            Authenticator::Basic(_) => "Basic",
            Authenticator::Certificate => "Certificate",
            Authenticator::Ntlm(_) => "NTLM",
            Authenticator::Kerberos { .. } => "Kerberos",
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authenticator::Anonymous => f.write_str("Anonymous"),
            Authenticator::Basic(_) => f.write_str("Basic(<redacted>)"),
            Authenticator::Certificate => f.write_str("Certificate"),
            Authenticator::Ntlm(credentials) => f.debug_tuple("Ntlm").field(credentials).finish(),
            Authenticator::Kerberos { kerberos, fallback } => f
                .debug_struct("Kerberos")
                .field("credentials", &kerberos.credentials)
                .field("spn", &kerberos.spn)
                .field("spnego", &kerberos.spnego)
                .field("ntlm_fallback", fallback)
                .finish(),
        }
    }
}

fn no_kdc(realm: &str) -> Error {
    config(format!(
        "no KDC known for realm {realm}: pass --kdc (ClientBuilder::kdc) or add it to krb5.conf"
    ))
}

/// `user@REALM`, `REALM\user` or `user` (in the default realm) as a principal.
fn client_principal(user: &str, krb5: &Krb5Config) -> Result<Principal> {
    let realm = krb5.realm_of(user).ok_or_else(|| {
        config(format!(
            "no realm for {user}: give it as user@REALM, or set default_realm in krb5.conf"
        ))
    })?;
    Ok(client_principal_in(user, &realm))
}

fn client_principal_in(user: &str, realm: &str) -> Principal {
    let name = match (user.rsplit_once('@'), user.split_once('\\')) {
        (Some((name, _)), _) => name,
        (None, Some((_, name))) => name,
        (None, None) => user,
    };
    Principal {
        name_type: 1,
        realm: realm.to_ascii_uppercase(),
        components: name.split('/').map(str::to_owned).collect(),
    }
}

/// Where the peer captures are, for the interop suite's unit tests (see
/// [`crate::internals::peer_fixtures`]).
#[cfg(all(test, feature = "interop"))]
pub(crate) fn peer_fixtures(sub: &str) -> PathBuf {
    crate::internals::peer_fixtures(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::new(r"CORP\auditor", "hunter2-secret");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains(r"CORP\\auditor"), "{debug}");
        let prepared = Authenticator::prepare(AuthSettings {
            credentials: Some(c),
            auth: Some(Auth::Ntlm),
            ..AuthSettings::default()
        })
        .unwrap();
        assert!(!format!("{prepared:?}").contains("hunter2"));
    }

    #[test]
    fn basic_header_is_rfc7617() {
        let c = Credentials::new("demo", "p@ss:word");
        assert_eq!(
            basic_authorization(&c).as_str(),
            "Basic ZGVtbzpwQHNzOndvcmQ="
        );
    }

    #[test]
    fn conflicting_settings_are_refused_not_overridden() {
        let with = |f: fn(&mut AuthSettings)| {
            let mut s = AuthSettings::default();
            f(&mut s);
            Authenticator::prepare(s)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let e = with(|s| {
            s.credentials = Some(Credentials::new("a", "b"));
            s.ticket_cache = Some(TicketCacheChoice::File("/nonexistent".into()));
        });
        assert!(e.contains("cannot be used together"), "{e}");
        let e = with(|s| {
            s.credentials = Some(Credentials::new("a", "b"));
            s.keytab = Some(("a@R".into(), "/nonexistent".into()));
        });
        assert!(e.contains("keytab") && e.contains("password"), "{e}");
        let e = with(|s| {
            s.client_certificate = true;
        });
        assert!(e.contains("HTTPS"), "{e}");
        let e = with(|s| {
            s.auth = Some(Auth::Ntlm);
            s.keytab = Some(("a@R".into(), "/nonexistent".into()));
        });
        assert!(e.contains("--auth ntlm"), "{e}");
        let e = with(|s| {
            s.auth = Some(Auth::Basic);
            s.credentials = Some(Credentials::new("a", "b"));
        });
        assert!(e.contains("plain HTTP"), "{e}");
    }

    #[test]
    fn principals_from_user_names() {
        let krb5 = Krb5Config::parse("[libdefaults]\n default_realm = CORP.EXAMPLE\n");
        for (user, expected) in [
            ("alice@lab.test", "alice@LAB.TEST"),
            (r"LAB.TEST\alice", "alice@LAB.TEST"),
            ("alice", "alice@CORP.EXAMPLE"),
            ("HTTP/fs01@CORP.EXAMPLE", "HTTP/fs01@CORP.EXAMPLE"),
        ] {
            assert_eq!(client_principal(user, &krb5).unwrap().to_string(), expected);
        }
    }
}
