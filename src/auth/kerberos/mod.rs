//! Kerberos (RFC 4120, RFC 4121), sans-IO: the AS exchange from a password or a keytab key,
//! the TGS exchange, the AP exchange with mutual authentication, and RFC 4121 Wrap tokens for
//! message encryption in the layout Windows uses. One engine whatever the key came from: a
//! password, an MIT keytab, or the tickets `kinit` left in a credential cache. Requests to the
//! KDC are outputs here; the transport sends them under the host's deadline.
//!
//! - [`crypto`]: the AES encryption types (RFC 3961, RFC 3962).
//! - [`ccache`]: MIT `FILE:` credential caches and where to find them.
//! - [`messages`]: AS, TGS and AP messages.
//! - [`exchange`]: the AS exchange as a state machine (pre-authentication, salts).
//! - [`store`]: the tickets one client shares across its sessions and hosts.
//! - [`gss`]: GSS-API token framing, the authenticator checksum, Wrap and MIC tokens.
//! - [`context`]: the security context of one connection.

pub(crate) mod ccache;
pub(crate) mod context;
pub(crate) mod crypto;
pub(crate) mod exchange;
pub(crate) mod gss;
pub(crate) mod messages;
pub(crate) mod store;

use std::fmt;

use ccache::Principal;

/// Why a Kerberos step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KerberosError {
    /// What failed, in plain words.
    pub message: String,
    /// True when the credentials themselves were refused (an expired or revoked ticket, an
    /// unknown user): retrying cannot help.
    pub credentials_rejected: bool,
    /// No KDC could be reached (refused, unreachable, silent): a connection problem, which a
    /// later attempt may get past, not a malformed message.
    pub kdc_unreachable: bool,
}

impl KerberosError {
    /// A malformed, unexpected or unverifiable token or message.
    pub fn token(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            credentials_rejected: false,
            kdc_unreachable: false,
        }
    }

    /// A problem with the credentials that retrying cannot fix.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            credentials_rejected: true,
            kdc_unreachable: false,
        }
    }

    /// A KRB-ERROR from the KDC or the server, in plain words.
    pub fn from_krb_error(code: u32, service: &Principal) -> Self {
        let plain = |m: String| format!("{m} (Kerberos error {code})");
        match code {
            6 => Self::rejected(plain("the KDC does not know this user".into())),
            23 => Self::rejected(plain(
                "the password has expired: change it before authenticating".into(),
            )),
            24 => Self::rejected(plain("the KDC refused the password".into())),
            7 => Self::token(plain(format!(
                "the KDC does not know the service principal {service} (the SPN, HTTP/<host> \
                 by default; set it with --spn)"
            ))),
            12 => Self::rejected(plain("the KDC's policy refuses this ticket".into())),
            14 => Self::token(plain(
                "the KDC and this client share no encryption type (this client needs AES)".into(),
            )),
            18 => Self::rejected(plain("the account is disabled, locked or expired".into())),
            32 => Self::rejected(plain(
                "the ticket in the cache has expired: run kinit again".into(),
            )),
            34 => Self::token(plain(
                "the server saw this authenticator before (replay)".into(),
            )),
            37 => Self::token(plain(
                "the clocks of this machine and the KDC or server differ by more than the \
                 allowed skew (usually 5 minutes): synchronise them"
                    .into(),
            )),
            31 | 41 => Self::token(plain(format!(
                "the server cannot decrypt the ticket for {service}: its key differs from the \
                 KDC's (a wrong SPN, or a stale keytab on the server)"
            ))),
            68 => Self::token(plain(format!(
                "{service} belongs to another realm; set --spn HTTP/host@REALM"
            ))),
            _ => Self::token(format!("Kerberos error {code}")),
        }
    }

    /// Names the client in an error about it.
    pub fn for_client(mut self, client: &Principal) -> Self {
        if self.message.contains("this user") {
            self.message = self
                .message
                .replace("this user", &format!("the user {client}"));
        }
        self
    }
}

impl fmt::Display for KerberosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KerberosError {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use zeroize::Zeroizing;

    use super::ccache::{self, SessionKey};
    use super::gss::{self, Role, Sealer};

    proptest! {
        /// Whatever a cache file, a server or a KDC sends: an error or a value, never a panic.
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = ccache::parse(&bytes);
            let mut v4 = vec![0x05, 0x04];
            v4.extend_from_slice(&bytes);
            let _ = ccache::parse(&v4);
            let _ = gss::parse_context_token(&bytes);
            let mut token = vec![0x60];
            token.extend_from_slice(&bytes);
            let _ = gss::parse_context_token(&token);
            let _ = super::messages::krb_error_code(&bytes);
            let key = SessionKey { enctype: 18, bytes: Zeroizing::new(vec![1; 32]) };
            let mut sealer = Sealer::new(Role::Initiator, key, true, 0, 0).unwrap();
            let split = bytes.len().min(56);
            let mut header = vec![0x05, 0x04, 0x07, 0xff];
            header.extend_from_slice(&bytes[..split]);
            let mut data = bytes[split..].to_vec();
            prop_assert!(sealer.unwrap(&header, &mut data).is_err());
            let _ = crate::auth::ntlm::messages::parse_challenge(&bytes);
            let _ = crate::auth::ntlm::messages::Authenticate::parse(&bytes);
            let _ = crate::auth::spnego::parse_neg_token_resp(&bytes);
            let _ = super::messages::krb_error(&bytes);
        }
    }
}
