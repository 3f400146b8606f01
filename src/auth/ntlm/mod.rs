//! NTLMv2 (MS-NLMP), sans-IO: the client context a WinRM session authenticates with, and the
//! acceptor the fixture server uses. Tokens in, tokens out; sealing in place.
//!
//! The client sends what current Windows clients send: NTLMv2 with extended session security,
//! 128-bit keys, key exchange (a random session key, RC4-encrypted under the key exchange key),
//! a MIC over the three messages, the SPN as `MsvAvTargetName`, and the channel bindings
//! (`MsvAvChannelBindings`, MD5 of the RFC 2744 structure; zeros without TLS).
//!
//! - [`messages`]: the three messages and the AV pairs.
//! - [`keys`]: NTOWFv2, the responses, the session key and the signing and sealing keys.
//! - [`seal`]: RC4 and HMAC-MD5 sealing, one stream and sequence number per direction.
//! - `acceptor` (tests and the `testing` feature only): the server side, for the fixture server.

#[cfg(any(test, feature = "testing", feature = "__internals"))]
pub(crate) mod acceptor;
pub(crate) mod keys;
pub(crate) mod messages;
pub(crate) mod seal;
#[cfg(test)]
mod tests;

use std::ops::Range;

use zeroize::Zeroizing;

use super::channel_binding::gss_bindings_md5;
use super::context::{ContextError, SecurityContext, Step};
use super::framing::{SPNEGO_PROTOCOL, SealedPart};
use super::rc4::Rc4;
use super::{Credentials, random_bytes};
use keys::Key16;
use messages::{Authenticate, AvPairs, Challenge, av, flags, utf16};
use seal::Direction;

/// What this client asks for: Unicode, NTLM with extended session security, signing and
/// sealing with 128-bit keys and key exchange, the target's name and info, and versions.
const CLIENT_FLAGS: u32 = flags::UNICODE
    | flags::OEM
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::SEAL
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSION_SECURITY
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH
    | flags::N56;

/// A failed NTLM step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NtlmError {
    pub message: String,
    pub credentials_rejected: bool,
}

impl NtlmError {
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            credentials_rejected: false,
        }
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            credentials_rejected: true,
        }
    }
}

impl From<NtlmError> for ContextError {
    fn from(e: NtlmError) -> Self {
        ContextError {
            message: format!("NTLM: {}", e.message),
            credentials_rejected: e.credentials_rejected,
        }
    }
}

/// A user's NTLM identity, prepared once per client: the user and domain as NTLM sends them
/// and the NT hash of the password (the password itself is not kept).
#[derive(Clone)]
pub(crate) struct NtlmCredentials {
    user: String,
    domain: String,
    nt_hash: Key16,
}

impl std::fmt::Debug for NtlmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmCredentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl NtlmCredentials {
    /// `DOMAIN\user` becomes user and domain; `user@domain` (a UPN) and a bare local `user` go
    /// as the user name with an empty domain, as Windows sends them.
    pub(crate) fn new(credentials: &Credentials) -> Self {
        let (user, domain) = split_user(credentials.user());
        Self {
            user: user.to_owned(),
            domain: domain.to_owned(),
            nt_hash: keys::nt_hash(credentials.password().expose()),
        }
    }

    fn response_key(&self) -> Key16 {
        keys::ntowf_v2(&self.nt_hash, &self.user, &self.domain)
    }
}

/// `DOMAIN\user` → (`user`, `DOMAIN`); anything else → (as given, ``).
pub(crate) fn split_user(user: &str) -> (&str, &str) {
    match user.split_once('\\') {
        Some((domain, name)) => (name, domain),
        None => (user, ""),
    }
}

/// The name this machine gives as its workstation (Windows logs it with the logon).
fn workstation() -> String {
    workstation_name(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .as_deref(),
    )
}

/// The workstation name for a host name: upper case, as Windows writes it; `WORKSTATION` when
/// there is none.
fn workstation_name(hostname: Option<&str>) -> String {
    hostname
        .map(|h| h.trim().to_ascii_uppercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "WORKSTATION".into())
}

/// The random inputs of one AUTHENTICATE message (fixed in the known-answer tests).
pub(crate) struct Randomness {
    pub client_challenge: [u8; 8],
    pub exported_session_key: Key16,
    /// Used when the server sends no timestamp.
    pub now: [u8; 8],
}

impl Randomness {
    fn fresh() -> Result<Self, NtlmError> {
        let bytes = random_bytes(24).map_err(NtlmError::malformed)?;
        let mut key = Zeroizing::new([0u8; 16]);
        key.copy_from_slice(&bytes[8..24]);
        Ok(Self {
            client_challenge: bytes[..8].try_into().expect("8 bytes"),
            exported_session_key: key,
            now: keys::filetime_now(),
        })
    }
}

enum State {
    Start,
    AwaitingChallenge {
        negotiate: Vec<u8>,
    },
    /// Outgoing and incoming directions.
    Established(Box<(Direction, Direction)>),
    Failed,
}

impl State {
    /// The sealing keys, once established.
    fn keys(&mut self) -> Option<&mut (Direction, Direction)> {
        match self {
            State::Established(pair) => Some(pair),
            _ => None,
        }
    }
}

/// An NTLM client context: NEGOTIATE, then AUTHENTICATE for the server's CHALLENGE, then
/// sealing. Raw NTLMSSP tokens under the `Negotiate` HTTP scheme, as Windows clients send them.
pub(crate) struct NtlmClient {
    credentials: NtlmCredentials,
    workstation: String,
    target_name: String,
    channel_bindings: Option<Vec<u8>>,
    state: State,
}

impl NtlmClient {
    /// A context for the service `HTTP/<host>` (named in the AUTHENTICATE message).
    pub(crate) fn new(credentials: NtlmCredentials, target_name: impl Into<String>) -> Self {
        Self {
            credentials,
            workstation: workstation(),
            target_name: target_name.into(),
            channel_bindings: None,
            state: State::Start,
        }
    }

    /// The AUTHENTICATE message for `challenge` after `negotiate`, with these random inputs;
    /// returns it and the exported session key.
    pub(crate) fn authenticate(
        &self,
        negotiate: &[u8],
        challenge_bytes: &[u8],
        random: &Randomness,
    ) -> Result<(Vec<u8>, u32, Key16), NtlmError> {
        let challenge = messages::parse_challenge(challenge_bytes)?;
        let flags = negotiated_flags(&challenge)?;
        let server_pairs = AvPairs::parse(&challenge.target_info)?;
        let timestamp = server_pairs
            .get(av::TIMESTAMP)
            .and_then(|t| <[u8; 8]>::try_from(t).ok());
        let mut pairs = server_pairs.clone();
        let av_flags = pairs
            .get(av::FLAGS)
            .and_then(|f| <[u8; 4]>::try_from(f).ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        pairs.set(
            av::FLAGS,
            (av_flags | av::FLAG_MIC_PRESENT).to_le_bytes().to_vec(),
        );
        let bindings = match &self.channel_bindings {
            Some(application_data) => gss_bindings_md5(application_data),
            None => [0; 16],
        };
        pairs.set(av::CHANNEL_BINDINGS, bindings.to_vec());
        pairs.set(av::TARGET_NAME, utf16(&self.target_name));
        let response_key = self.credentials.response_key();
        let blob = keys::client_blob(
            timestamp.unwrap_or(random.now),
            random.client_challenge,
            &pairs.encode(),
        );
        let proof = keys::nt_proof(&response_key, &challenge.server_challenge, &blob);
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&blob);
        let lm_response = if timestamp.is_some() {
            vec![0; 24]
        } else {
            keys::lm_v2(
                &response_key,
                &challenge.server_challenge,
                &random.client_challenge,
            )
        };
        let key_exchange_key = keys::session_base_key(&response_key, &proof);
        // Key exchange is always negotiated (`negotiated_flags` refuses a CHALLENGE without
        // it): the session key is our random one, sent encrypted with the key-exchange key.
        let exported = random.exported_session_key.clone();
        let encrypted_session_key = Rc4::once(key_exchange_key.as_slice(), exported.as_slice());
        let message = Authenticate {
            lm_response,
            nt_response,
            domain: utf16(&self.credentials.domain),
            user: utf16(&self.credentials.user),
            workstation: utf16(&self.workstation),
            encrypted_session_key,
            flags,
            version: Some(messages::VERSION),
            mic: Some([0; 16]),
        };
        let mut bytes = message.encode();
        let mic = keys::hmac_md5(exported.as_slice(), &[negotiate, challenge_bytes, &bytes]);
        bytes[messages::MIC_OFFSET..messages::MIC_OFFSET + 16].copy_from_slice(&mic);
        Ok((bytes, flags, exported))
    }
}

/// The flags both sides agreed on; sealing needs extended session security, signing, sealing,
/// 128-bit keys and key exchange: a CHALLENGE without one of them is refused, never downgraded.
fn negotiated_flags(challenge: &Challenge) -> Result<u32, NtlmError> {
    let flags = challenge.flags & CLIENT_FLAGS | flags::NTLM | flags::UNICODE;
    let needed = [
        (
            flags::EXTENDED_SESSION_SECURITY,
            "extended session security",
        ),
        (flags::SIGN, "signing"),
        (flags::SEAL, "sealing"),
        (flags::N128, "128-bit keys"),
        // The sealing always RC4-encrypts the signature's checksum, which MS-NLMP 3.4.4.2 does
        // only with key exchange; Windows always offers it.
        (flags::KEY_EXCH, "key exchange"),
    ];
    for (flag, what) in needed {
        if flags & flag == 0 {
            return Err(NtlmError::malformed(format!(
                "the server does not offer {what}, which this client requires"
            )));
        }
    }
    Ok(flags & !flags::OEM)
}

/// Sealing state of an established context, for the client or the server side.
pub(crate) fn directions(exported: &[u8; 16], client_side: bool) -> (Direction, Direction) {
    let (client, server) = keys::direction_keys(exported);
    let (client, server) = (Direction::new(&client), Direction::new(&server));
    if client_side {
        (client, server)
    } else {
        (server, client)
    }
}

pub(crate) fn seal_with(outgoing: &mut Direction, plaintext: &[u8]) -> SealedPart {
    let mut data = plaintext.to_vec();
    let signature = outgoing.seal(&mut data);
    SealedPart {
        original_length: plaintext.len(),
        header: signature.to_vec(),
        data,
    }
}

/// [`SecurityContext::seal`] for either side: with the keys of an established context.
pub(crate) fn seal_established(
    keys: Option<&mut (Direction, Direction)>,
    plaintext: &[u8],
) -> Result<SealedPart, ContextError> {
    match keys {
        Some(pair) => Ok(seal_with(&mut pair.0, plaintext)),
        None => Err(NtlmError::malformed("sealing before authenticating").into()),
    }
}

/// [`SecurityContext::open`] for either side: with the keys of an established context.
pub(crate) fn open_established(
    keys: Option<&mut (Direction, Direction)>,
    header: &[u8],
    data: &mut [u8],
) -> Result<Range<usize>, ContextError> {
    match keys {
        Some(pair) => {
            pair.1.open(header, data)?;
            Ok(0..data.len())
        }
        None => Err(NtlmError::malformed("unsealing before authenticating").into()),
    }
}

impl SecurityContext for NtlmClient {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        match (std::mem::replace(&mut self.state, State::Failed), input) {
            (State::Start, None) => {
                let negotiate = messages::negotiate(CLIENT_FLAGS);
                self.state = State::AwaitingChallenge {
                    negotiate: negotiate.clone(),
                };
                Ok(Step::Continue(negotiate))
            }
            (State::AwaitingChallenge { negotiate }, Some(challenge)) => {
                let random = Randomness::fresh()?;
                let (token, _, exported) = self.authenticate(&negotiate, challenge, &random)?;
                let (outgoing, incoming) = directions(&exported, true);
                self.state = State::Established(Box::new((outgoing, incoming)));
                Ok(Step::Done(Some(token)))
            }
            (State::Established(pair), None) => {
                self.state = State::Established(pair);
                Ok(Step::Done(None))
            }
            (State::AwaitingChallenge { .. }, None) => Err(NtlmError::refused(
                "the server answered the NEGOTIATE message without a CHALLENGE",
            )
            .into()),
            _ => Err(NtlmError::malformed("unexpected token for the NTLM handshake").into()),
        }
    }

    fn seal(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
        seal_established(self.state.keys(), plaintext)
    }

    fn open(&mut self, header: &[u8], data: &mut [u8]) -> Result<Range<usize>, ContextError> {
        open_established(self.state.keys(), header, data)
    }

    fn http_scheme(&self) -> &'static str {
        "Negotiate"
    }

    fn protocol(&self) -> &'static str {
        SPNEGO_PROTOCOL
    }

    fn mechanism(&self) -> &'static str {
        "NTLM"
    }

    fn set_channel_bindings(&mut self, application_data: &[u8]) {
        self.channel_bindings = Some(application_data.to_vec());
    }
}
