//! The server side of NTLMv2, for the fixture server and the tests: it admits exactly one user
//! (name compared case-insensitively, domain too when one is configured) with one password,
//! verifies the NTLMv2 proof, the MIC and, when it is given the TLS channel's bindings, the
//! client's `MsvAvChannelBindings`.

use std::ops::Range;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::keys::{self, Key16};
use super::messages::{self, Authenticate, AvPairs, Challenge, av, flags, from_utf16, utf16};
use super::{
    NtlmError, directions, open_established, seal::Direction, seal_established, split_user,
};
use crate::auth::channel_binding::gss_bindings_md5;
use crate::auth::context::{ContextError, SecurityContext, Step};
use crate::auth::framing::{SPNEGO_PROTOCOL, SealedPart};
use crate::auth::random_bytes;
use crate::auth::rc4::Rc4;

/// What the acceptor offers: everything the client side needs.
const SERVER_FLAGS: u32 = flags::UNICODE
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::SEAL
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::TARGET_TYPE_SERVER
    | flags::EXTENDED_SESSION_SECURITY
    | flags::TARGET_INFO
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH
    | flags::N56;

/// The NetBIOS name the acceptor gives itself.
const SERVER_NAME: &str = "FS01";

enum State {
    Start,
    AwaitingAuthenticate {
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
        server_challenge: [u8; 8],
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

/// An NTLM acceptor for one user.
pub(crate) struct NtlmAcceptor {
    user: String,
    domain: Option<String>,
    nt_hash: Key16,
    channel_bindings: Option<Vec<u8>>,
    state: State,
}

impl NtlmAcceptor {
    /// Admits `user` (`DOMAIN\user` also checks the domain) with `password`.
    pub(crate) fn new(user: &str, password: &str) -> Self {
        let (name, domain) = split_user(user);
        Self {
            user: name.to_owned(),
            domain: (!domain.is_empty()).then(|| domain.to_owned()),
            nt_hash: keys::nt_hash(password),
            channel_bindings: None,
            state: State::Start,
        }
    }

    /// True once the client is authenticated.
    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    fn challenge(&mut self, negotiate: &[u8]) -> Result<Vec<u8>, NtlmError> {
        let client_flags = messages::parse_negotiate(negotiate)?;
        let random = random_bytes(8).map_err(NtlmError::malformed)?;
        let server_challenge: [u8; 8] = random[..8].try_into().expect("8 bytes");
        let info = AvPairs(vec![
            (av::NB_DOMAIN_NAME, utf16(SERVER_NAME)),
            (av::NB_COMPUTER_NAME, utf16(SERVER_NAME)),
            (av::DNS_DOMAIN_NAME, utf16("fs01.example.test")),
            (av::DNS_COMPUTER_NAME, utf16("fs01.example.test")),
            (av::TIMESTAMP, keys::filetime_now().to_vec()),
        ]);
        let challenge = Challenge {
            flags: (client_flags & SERVER_FLAGS)
                | flags::TARGET_INFO
                | flags::TARGET_TYPE_SERVER
                | flags::VERSION,
            server_challenge,
            target_name: utf16(SERVER_NAME),
            target_info: info.encode(),
            version: Some(messages::VERSION),
        }
        .encode();
        self.state = State::AwaitingAuthenticate {
            negotiate: negotiate.to_vec(),
            challenge: challenge.clone(),
            server_challenge,
        };
        Ok(challenge)
    }

    fn verify(
        &self,
        negotiate: &[u8],
        challenge: &[u8],
        server_challenge: &[u8; 8],
        bytes: &[u8],
    ) -> Result<Key16, NtlmError> {
        let message = Authenticate::parse(bytes)?;
        let user = from_utf16(&message.user)?;
        let domain = from_utf16(&message.domain)?;
        let wanted_domain = self.domain.as_deref().unwrap_or(&domain);
        if user.to_lowercase() != self.user.to_lowercase()
            || domain.to_lowercase() != wanted_domain.to_lowercase()
        {
            return Err(NtlmError::refused("unknown user"));
        }
        if message.nt_response.len() < 16 + 28 {
            return Err(NtlmError::refused("not an NTLMv2 response"));
        }
        let (proof, blob) = message.nt_response.split_at(16);
        let response_key = keys::ntowf_v2(&self.nt_hash, &user, &domain);
        let expected = keys::nt_proof(&response_key, server_challenge, blob);
        if !bool::from(expected.ct_eq(proof)) {
            return Err(NtlmError::refused("wrong password"));
        }
        let key_exchange_key = keys::session_base_key(&response_key, &expected);
        let exported = if message.flags & flags::KEY_EXCH != 0 {
            let encrypted: [u8; 16] = message
                .encrypted_session_key
                .as_slice()
                .try_into()
                .map_err(|_| NtlmError::malformed("the encrypted session key is not 16 bytes"))?;
            let mut key = Zeroizing::new(encrypted);
            Rc4::new(key_exchange_key.as_slice()).apply(key.as_mut_slice());
            key
        } else {
            key_exchange_key
        };
        // The client's AV pairs follow the 28 fixed bytes of its blob.
        let pairs = AvPairs::parse(&blob[28..])?;
        let mic_present = pairs
            .get(av::FLAGS)
            .and_then(|f| <[u8; 4]>::try_from(f).ok())
            .is_some_and(|f| u32::from_le_bytes(f) & av::FLAG_MIC_PRESENT != 0);
        if mic_present {
            let received = message
                .mic
                .ok_or_else(|| NtlmError::refused("the MIC announced is missing"))?;
            let mut zeroed = bytes.to_vec();
            zeroed[messages::MIC_OFFSET..messages::MIC_OFFSET + 16].fill(0);
            let mic = keys::hmac_md5(exported.as_slice(), &[negotiate, challenge, &zeroed]);
            if !bool::from(mic.ct_eq(&received)) {
                return Err(NtlmError::refused(
                    "the MIC does not match (the messages were altered)",
                ));
            }
        }
        if let Some(application_data) = &self.channel_bindings {
            let expected = gss_bindings_md5(application_data);
            let presented = pairs.get(av::CHANNEL_BINDINGS).unwrap_or(&[]);
            if !bool::from(expected.as_slice().ct_eq(presented)) {
                return Err(NtlmError::refused(
                    "the channel bindings do not match this TLS channel",
                ));
            }
        }
        Ok(exported)
    }
}

impl SecurityContext for NtlmAcceptor {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        let Some(input) = input else {
            return Err(NtlmError::malformed("the acceptor needs the client's token").into());
        };
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => Ok(Step::Continue(self.challenge(input)?)),
            State::AwaitingAuthenticate {
                negotiate,
                challenge,
                server_challenge,
            } => {
                let exported = self.verify(&negotiate, &challenge, &server_challenge, input)?;
                let (outgoing, incoming) = directions(&exported, false);
                self.state = State::Established(Box::new((outgoing, incoming)));
                Ok(Step::Done(None))
            }
            _ => Err(NtlmError::malformed("unexpected token after the handshake").into()),
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
