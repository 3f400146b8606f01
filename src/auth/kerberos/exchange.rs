//! The AS exchange as a state machine, with no I/O: it yields requests for the KDC and takes
//! the replies, and ends with a ticket-granting ticket or an error.
//!
//! With a password the first request goes without pre-authentication, so that the KDC says
//! which salt and encryption type to derive the key with (PA-ETYPE-INFO2); a KDC that does not
//! require pre-authentication answers at once, and its reply is decrypted with the key its own
//! ETYPE-INFO2 (or the default salt) gives. With a long-term key (a keytab), the first request
//! is already pre-authenticated. The password is tried once: a refusal is an error, never a
//! second guess that could count against the account's lockout threshold.

use super::KerberosError;
use super::ccache::{Principal, SessionKey};
use super::crypto::{self, DEFAULT_ITERATIONS};
use super::messages::{
    self, AsGrant, AsReply, AsRequest, Credential, ETYPES, EtypeInfo, KerberosTime,
};
use crate::auth::Password;

/// Where the client's long-term key comes from.
#[derive(Clone)]
pub(crate) enum LongTermKey {
    /// Derived from the password with the salt the KDC names.
    Password(Password),
    /// A key as it is (from a keytab).
    Key(SessionKey),
}

impl std::fmt::Debug for LongTermKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LongTermKey::Password(_) => f.write_str("Password(<redacted>)"),
            LongTermKey::Key(key) => write!(f, "Key(enctype {})", key.enctype),
        }
    }
}

/// What to do next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Send these bytes to the KDC and feed its reply back.
    Send(Vec<u8>),
    /// The ticket-granting ticket.
    Done(Credential),
}

/// One AS exchange for one client.
pub(crate) struct AsExchange {
    client: Principal,
    key: LongTermKey,
    request: AsRequest,
    preauthenticated: bool,
    /// The key the pre-authentication was made with (a reply need not repeat the salt).
    derived: Option<SessionKey>,
}

/// Picks the strongest entry of ETYPE-INFO2 that this client supports.
fn choose(info: &[EtypeInfo]) -> Option<&EtypeInfo> {
    ETYPES
        .iter()
        .find_map(|etype| info.iter().find(|e| e.etype == *etype))
}

impl AsExchange {
    /// Starts: the first request to send.
    pub(crate) fn start(
        client: Principal,
        key: LongTermKey,
        now: KerberosTime,
        nonce: u32,
    ) -> Result<(Self, Vec<u8>), KerberosError> {
        let (request, preauthenticated) = match &key {
            LongTermKey::Password(_) => (
                messages::as_request(&client, &ETYPES, None, now, nonce)?,
                false,
            ),
            LongTermKey::Key(key) => (
                messages::as_request(&client, &[key.enctype], Some(key), now, nonce)?,
                true,
            ),
        };
        let bytes = request.bytes.clone();
        Ok((
            Self {
                client,
                key,
                request,
                preauthenticated,
                derived: None,
            },
            bytes,
        ))
    }

    /// The key for an encryption type, with the salt and iterations the KDC gave.
    fn key_for(&self, etype: i32, info: Option<&EtypeInfo>) -> Result<SessionKey, KerberosError> {
        match &self.key {
            LongTermKey::Key(key) if key.enctype == etype => Ok(key.clone()),
            LongTermKey::Key(key) => Err(KerberosError::token(format!(
                "the KDC answered with encryption type {etype}, the keytab holds type {}",
                key.enctype
            ))),
            LongTermKey::Password(password) => {
                let salt = info
                    .and_then(|i| i.salt.clone())
                    .unwrap_or_else(|| messages::default_salt(&self.client));
                let iterations = info
                    .and_then(|i| i.iterations)
                    .unwrap_or(DEFAULT_ITERATIONS);
                if iterations > 1 << 24 {
                    return Err(KerberosError::token(format!(
                        "the KDC asks for {iterations} key derivation iterations; refusing"
                    )));
                }
                crypto::string_to_key(password.expose(), &salt, iterations, etype)
            }
        }
    }

    fn finish(&self, grant: &AsGrant) -> Result<Credential, KerberosError> {
        let key = match &self.derived {
            Some(key) if key.enctype == grant.etype => key.clone(),
            _ => {
                let info = grant.etype_info.iter().find(|i| i.etype == grant.etype);
                self.key_for(grant.etype, info)?
            }
        };
        messages::finish_as_reply(&self.request, grant, &key)
    }

    /// Takes the KDC's reply to the last request.
    pub(crate) fn handle_reply(
        &mut self,
        reply: &[u8],
        now: KerberosTime,
        nonce: u32,
    ) -> Result<Next, KerberosError> {
        match messages::read_as_reply(&self.request, reply)? {
            AsReply::Granted(grant) => Ok(Next::Done(self.finish(&grant)?)),
            AsReply::PreauthRequired(_) if self.preauthenticated => Err(KerberosError::rejected(
                "the KDC asked for pre-authentication again after receiving it",
            )),
            AsReply::PreauthRequired(info) => {
                let chosen = choose(&info).cloned().unwrap_or(EtypeInfo {
                    etype: ETYPES[0],
                    salt: None,
                    iterations: None,
                });
                if !info.is_empty() && choose(&info).is_none() {
                    return Err(KerberosError::token(format!(
                        "the KDC offers only encryption types {:?}; this client needs AES (17, 18)",
                        info.iter().map(|i| i.etype).collect::<Vec<_>>()
                    )));
                }
                let key = self.key_for(chosen.etype, Some(&chosen))?;
                self.request =
                    messages::as_request(&self.client, &[chosen.etype], Some(&key), now, nonce)?;
                self.preauthenticated = true;
                self.derived = Some(key);
                Ok(Next::Send(self.request.bytes.clone()))
            }
        }
    }
}
