//! The security context of one connection authenticated with Kerberos: the AP exchange with a
//! service ticket obtained beforehand (from the KDC or a cache), then sealing. Under the
//! `Kerberos` HTTP scheme the tokens are raw GSS-API tokens; under `Negotiate` they travel in
//! SPNEGO, with the acceptor's mechListMIC checked when it sends one.

use std::ops::Range;
use std::sync::Arc;

use super::KerberosError;
use super::ccache::{Principal, SessionKey};
use super::crypto::key_length;
use super::gss::{self, Role, Sealer};
use super::messages::{self, ApRequest, Credential, KerberosTime};
use super::store::KerberosCredentials;
use crate::auth::context::{ContextError, SecurityContext, Step};
use crate::auth::framing::{KERBEROS_PROTOCOL, SPNEGO_PROTOCOL, SealedPart};
use crate::auth::{random_bytes, spnego};

enum State {
    Start,
    AwaitingReply {
        request: ApRequest,
        subkey: SessionKey,
        sequence_number: u32,
    },
    /// Established; under SPNEGO, waiting to send our mechListMIC.
    Established(Sealer),
    Failed,
}

/// A Kerberos client context for one connection.
pub(crate) struct KerberosContext {
    ticket: Credential,
    service: Principal,
    store: Arc<KerberosCredentials>,
    spnego: bool,
    mech_list: Vec<u8>,
    channel_bindings: Option<Vec<u8>>,
    state: State,
}

pub(crate) fn context_error(e: KerberosError) -> ContextError {
    ContextError {
        message: format!("Kerberos: {}", e.message),
        credentials_rejected: e.credentials_rejected,
    }
}

fn random_u32() -> Result<u32, KerberosError> {
    let bytes = random_bytes(4).map_err(KerberosError::token)?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl KerberosContext {
    /// A context presenting `ticket` (for `service`) under the `Kerberos` scheme, or under
    /// `Negotiate` (SPNEGO) when `spnego`.
    pub(crate) fn new(
        ticket: Credential,
        service: Principal,
        store: Arc<KerberosCredentials>,
        spnego: bool,
    ) -> Self {
        Self {
            ticket,
            service,
            store,
            spnego,
            mech_list: spnego::mech_type_list(&[gss::KRB5_OID]),
            channel_bindings: None,
            state: State::Start,
        }
    }

    fn start(&mut self) -> Result<Vec<u8>, KerberosError> {
        let subkey = SessionKey::new(
            self.ticket.key.enctype,
            random_bytes(key_length(self.ticket.key.enctype)?)
                .map_err(KerberosError::token)?
                .to_vec(),
        )?;
        let sequence_number = random_u32()? & 0x3fff_ffff;
        let checksum =
            gss::authenticator_checksum(self.channel_bindings.as_deref(), gss::CONTEXT_FLAGS);
        let request = messages::ap_request(
            &self.ticket,
            KerberosTime::now(),
            subkey.clone(),
            sequence_number,
            checksum,
        )?;
        let token = gss::context_token(gss::TOK_AP_REQ, &request.bytes);
        self.state = State::AwaitingReply {
            request,
            subkey,
            sequence_number,
        };
        Ok(if self.spnego {
            spnego::neg_token_init(&self.mech_list, &token)
        } else {
            token
        })
    }

    /// Takes the acceptor's answer; returns our mechListMIC when SPNEGO asks for one.
    fn finish(&mut self, input: &[u8]) -> Result<Option<Vec<u8>>, KerberosError> {
        let State::AwaitingReply {
            request,
            subkey,
            sequence_number,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(KerberosError::token(
                "unexpected token: no handshake in progress",
            ));
        };
        let (token, negotiation) = if self.spnego {
            let resp = spnego::parse_neg_token_resp(input).ok_or_else(|| {
                KerberosError::token("the server's Negotiate token is not a SPNEGO answer")
            })?;
            if resp.state == Some(spnego::REJECT) {
                return Err(KerberosError::rejected(
                    "the server rejected Kerberos in the SPNEGO negotiation",
                ));
            }
            let token = resp.token.clone().ok_or_else(|| {
                KerberosError::token(
                    "the server did not prove its identity (no AP-REP: mutual authentication failed)",
                )
            })?;
            (token, Some(resp))
        } else {
            (input.to_vec(), None)
        };
        let (token_id, message) = gss::parse_context_token(&token)?;
        match token_id {
            gss::TOK_AP_REP => {}
            gss::TOK_KRB_ERROR => {
                let code = messages::krb_error_code(message).ok_or_else(|| {
                    KerberosError::token("the server refused the ticket with a malformed error")
                })?;
                self.store.forget_service_ticket(&self.service);
                return Err(KerberosError::from_krb_error(code, &self.service));
            }
            other => {
                return Err(KerberosError::token(format!(
                    "unexpected token type {other:02x?} from the server"
                )));
            }
        }
        let reply = messages::read_ap_reply(&request, &self.ticket, message)?;
        let acceptor_subkey = reply.subkey.is_some();
        let mut sealer = Sealer::new(
            Role::Initiator,
            reply.subkey.unwrap_or(subkey),
            acceptor_subkey,
            u64::from(sequence_number),
            u64::from(reply.sequence_number),
        )?;
        let mut our_mic = None;
        if let Some(resp) = negotiation {
            if let Some(mic) = &resp.mic {
                sealer.verify_mic(&self.mech_list, mic)?;
            }
            if resp.state == Some(spnego::ACCEPT_INCOMPLETE) {
                our_mic = Some(spnego::neg_token_resp(
                    None,
                    None,
                    Some(&sealer.get_mic(&self.mech_list)?),
                ));
            }
        }
        self.state = State::Established(sealer);
        Ok(our_mic)
    }
}

impl SecurityContext for KerberosContext {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        match (&self.state, input) {
            (State::Start, None) => self.start().map(Step::Continue).map_err(context_error),
            (State::AwaitingReply { .. }, Some(input)) => match self.finish(input) {
                Ok(Some(mic)) => Ok(Step::Done(Some(mic))),
                Ok(None) => Ok(Step::Done(None)),
                Err(e) => Err(context_error(e)),
            },
            (State::AwaitingReply { .. }, None) => Err(context_error(KerberosError::token(
                "the server did not prove its identity (no AP-REP: mutual authentication failed)",
            ))),
            (State::Established(_), None) => Ok(Step::Done(None)),
            // SPNEGO's closing answer after our mechListMIC: nothing more to check.
            (State::Established(_), Some(input))
                if self.spnego
                    && spnego::parse_neg_token_resp(input).is_some_and(|r| {
                        r.state == Some(spnego::ACCEPT_COMPLETED) && r.token.is_none()
                    }) =>
            {
                Ok(Step::Done(None))
            }
            _ => Err(context_error(KerberosError::token(
                "unexpected token after the handshake",
            ))),
        }
    }

    fn seal(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
        match &mut self.state {
            State::Established(sealer) => sealer.wrap(plaintext).map_err(context_error),
            _ => Err(context_error(KerberosError::token(
                "sealing before the context is established",
            ))),
        }
    }

    fn open(&mut self, header: &[u8], data: &mut [u8]) -> Result<Range<usize>, ContextError> {
        match &mut self.state {
            State::Established(sealer) => sealer.unwrap(header, data).map_err(context_error),
            _ => Err(context_error(KerberosError::token(
                "unsealing before the context is established",
            ))),
        }
    }

    fn http_scheme(&self) -> &'static str {
        if self.spnego { "Negotiate" } else { "Kerberos" }
    }

    fn protocol(&self) -> &'static str {
        if self.spnego {
            SPNEGO_PROTOCOL
        } else {
            KERBEROS_PROTOCOL
        }
    }

    fn mechanism(&self) -> &'static str {
        "Kerberos"
    }

    fn set_channel_bindings(&mut self, application_data: &[u8]) {
        self.channel_bindings = Some(application_data.to_vec());
    }

    fn needs_channel_bindings_first(&self) -> bool {
        true
    }
}
