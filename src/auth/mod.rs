//! Credentials and authentication mechanisms.
//!
//! Passwords live in [`Password`], which zeroizes its memory on drop and never prints itself.

pub mod channel_binding;
pub mod context;
pub mod framing;
mod kdc;
pub mod kerberos;
pub mod keytab;
pub mod krb5_conf;
mod wire;

use std::fmt;

use zeroize::Zeroizing;

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
    /// Kerberos with a password (no kinit needed): the KDC from `ClientBuilder::kdc`, or
    /// krb5.conf (`KRB5_CONFIG`, then `/etc/krb5.conf`); the SPN `HTTP/<host>` unless
    /// `ClientBuilder::spn` says otherwise. Message encryption on HTTP.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::new(r"CORP\auditor", "hunter2-secret");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains(r"CORP\\auditor"), "{debug}");
    }

    #[test]
    fn basic_header_is_rfc7617() {
        let c = Credentials::new("demo", "p@ss:word");
        assert_eq!(
            basic_authorization(&c).as_str(),
            "Basic ZGVtbzpwQHNzOndvcmQ="
        );
    }
}
