//! The client side of a Kerberos context started from a ticket cache: the one place where the
//! sans-IO pieces meet the cache file and the KDC.
//!
//! A [`TicketStore`] is shared by all connections of one client: it reads the cache when a
//! service ticket is needed (so a ticket renewed by `kinit -R` or k5start is picked up) and
//! keeps the service ticket for the next connections, as a Windows client's ticket cache does.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use super::KerberosError;
use super::ccache::{self, Principal, SessionKey};
use super::gss::{self, Role, Sealer};
use super::messages::{self, ApRequest, KerberosTime, ServiceTicket};
use crate::auth::context::{ContextError, SecurityContext, Step};
use crate::auth::framing::{KERBEROS_PROTOCOL, SealedPart};

/// Seconds of validity a cached service ticket must have left to be used again.
const MIN_REMAINING: i64 = 60;

/// Where the tickets come from, shared by the connections of one client.
pub struct TicketStore {
    path: PathBuf,
    kdc_url: Option<String>,
    timeout: Duration,
    service_ticket: Mutex<Option<ServiceTicket>>,
}

impl std::fmt::Debug for TicketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketStore")
            .field("path", &self.path)
            .field("kdc_url", &self.kdc_url)
            .finish_non_exhaustive()
    }
}

impl TicketStore {
    /// Tickets from the cache at `path`; new service tickets from `kdc_url` (`tcp://host:88`),
    /// found from the cache's realm when `None`.
    pub fn new(path: PathBuf, kdc_url: Option<String>, timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            path,
            kdc_url,
            timeout,
            service_ticket: Mutex::new(None),
        })
    }

    /// The cache file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The client principal of the cache, read now: a missing or unreadable cache is reported
    /// when the client is built rather than on the first request.
    pub fn principal(&self) -> Result<Principal, KerberosError> {
        ccache::read(&self.path)
            .map(|c| c.default_principal)
            .map_err(|e| KerberosError::rejected(e.to_string()))
    }

    /// A ticket for `spn`: remembered, in the cache, or from the KDC with the cache's
    /// ticket-granting ticket.
    pub fn service_ticket(&self, spn: &str) -> Result<ServiceTicket, KerberosError> {
        let now = KerberosTime::now();
        let mut remembered = self
            .service_ticket
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(ticket) = remembered.as_ref()
            && ticket.end_time - now.seconds > MIN_REMAINING
        {
            return Ok(ticket.clone());
        }
        let cache = ccache::read(&self.path).map_err(|e| KerberosError::rejected(e.to_string()))?;
        let realm = cache.default_principal.realm.clone();
        let service = Principal::service(spn, &realm);
        let unix_now = u64::try_from(now.seconds).unwrap_or_default();
        let ticket = match cache.ticket_for(&service, unix_now) {
            Some(cached) => ServiceTicket::from(cached),
            None => {
                let tgt = cache.ticket_granting_ticket().ok_or_else(|| {
                    KerberosError::rejected(format!(
                        "{} holds no ticket-granting ticket for {realm}: run kinit {}",
                        self.path.display(),
                        cache.default_principal
                    ))
                })?;
                if !tgt.is_valid_at(unix_now) {
                    return Err(KerberosError::rejected(format!(
                        "the ticket-granting ticket of {} in {} has expired: run kinit again",
                        cache.default_principal,
                        self.path.display()
                    )));
                }
                let kdc_url = match &self.kdc_url {
                    Some(url) => url.clone(),
                    None => crate::auth::krb5_conf::Krb5Config::load()
                        .kdc_url(&realm)
                        .ok_or_else(|| {
                            KerberosError::token(format!(
                                "no KDC known for realm {realm}: pass --kdc or add it to krb5.conf"
                            ))
                        })?,
                };
                let request = messages::tgs_request(tgt, &service, now, random_u32()?)?;
                let reply = crate::auth::kdc::send(&kdc_url, &request.bytes, self.timeout)
                    .map_err(KerberosError::token)?;
                messages::read_tgs_reply(&request, tgt, &reply)?
            }
        };
        *remembered = Some(ticket.clone());
        Ok(ticket)
    }

    /// Forgets the remembered service ticket (the server refused it).
    fn forget(&self) {
        *self
            .service_ticket
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, KerberosError> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut bytes)
        .map_err(|e| KerberosError::token(format!("no random numbers: {e}")))?;
    Ok(bytes)
}

fn random_u32() -> Result<u32, KerberosError> {
    let bytes = random_bytes(4)?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

enum State {
    Start,
    AwaitingReply {
        request: ApRequest,
        ticket: ServiceTicket,
        subkey: SessionKey,
        sequence_number: u32,
    },
    Established(Sealer),
    Failed,
}

/// A Kerberos client context from the ticket cache, under the `Kerberos` HTTP scheme with
/// `HTTP-Kerberos-session-encrypted` sealing.
pub struct TicketCacheClient {
    store: Arc<TicketStore>,
    spn: String,
    channel_bindings: Option<Vec<u8>>,
    state: State,
}

impl TicketCacheClient {
    /// A context for `spn` (`HTTP/host` or `HTTP/host@REALM`).
    pub fn new(store: Arc<TicketStore>, spn: &str) -> Self {
        Self {
            store,
            spn: spn.to_owned(),
            channel_bindings: None,
            state: State::Start,
        }
    }

    fn start(&mut self) -> Result<Vec<u8>, KerberosError> {
        let ticket = self.store.service_ticket(&self.spn)?;
        let key_length = match gss::cipher_suite(ticket.key.enctype)? {
            picky_krb::crypto::CipherSuite::Aes128CtsHmacSha196 => 16,
            _ => 32,
        };
        let subkey = SessionKey {
            enctype: ticket.key.enctype,
            value: random_bytes(key_length)?,
        };
        let sequence_number = random_u32()? & 0x3fff_ffff;
        let checksum =
            gss::authenticator_checksum(self.channel_bindings.as_deref(), gss::CONTEXT_FLAGS);
        let request = messages::ap_request(
            &ticket,
            KerberosTime::now(),
            subkey.clone(),
            sequence_number,
            checksum,
        )?;
        let token = gss::context_token(gss::TOK_AP_REQ, &request.bytes);
        self.state = State::AwaitingReply {
            request,
            ticket,
            subkey,
            sequence_number,
        };
        Ok(token)
    }

    fn finish(&mut self, input: &[u8]) -> Result<(), KerberosError> {
        let State::AwaitingReply {
            request,
            ticket,
            subkey,
            sequence_number,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(KerberosError::token(
                "unexpected token: no handshake in progress",
            ));
        };
        let (token_id, message) = gss::parse_context_token(input)?;
        match token_id {
            gss::TOK_AP_REP => {}
            gss::TOK_KRB_ERROR => {
                let code = messages::krb_error_code(message).ok_or_else(|| {
                    KerberosError::token("the server refused the ticket with a malformed error")
                })?;
                self.store.forget();
                let service = Principal::service(&self.spn, &ticket.client.realm);
                return Err(KerberosError::from_krb_error(code, &service));
            }
            other => {
                return Err(KerberosError::token(format!(
                    "unexpected token type {other:02x?} from the server"
                )));
            }
        }
        let reply = messages::read_ap_reply(&request, &ticket, message)?;
        let acceptor_subkey = reply.subkey.is_some();
        let sealer = Sealer::new(
            Role::Initiator,
            reply.subkey.unwrap_or(subkey),
            acceptor_subkey,
            u64::from(sequence_number),
            u64::from(reply.sequence_number),
        )?;
        self.state = State::Established(sealer);
        Ok(())
    }
}

fn context_error(e: KerberosError) -> ContextError {
    ContextError {
        message: format!("Kerberos: {}", e.message),
        credentials_rejected: e.credentials_rejected,
    }
}

impl SecurityContext for TicketCacheClient {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        match (&self.state, input) {
            (State::Start, None) => self.start().map(Step::Continue).map_err(context_error),
            (State::AwaitingReply { .. }, Some(input)) => {
                self.finish(input).map_err(context_error)?;
                Ok(Step::Done(None))
            }
            (State::AwaitingReply { .. }, None) => Err(context_error(KerberosError::token(
                "the server did not prove its identity (no AP-REP: mutual authentication failed)",
            ))),
            (State::Established(_), None) => Ok(Step::Done(None)),
            _ => Err(context_error(KerberosError::token(
                "unexpected token after the handshake",
            ))),
        }
    }

    fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
        match &mut self.state {
            State::Established(sealer) => sealer.wrap(plaintext).map_err(context_error),
            _ => Err(context_error(KerberosError::token(
                "sealing before the context is established",
            ))),
        }
    }

    fn unwrap(&mut self, part: &SealedPart) -> Result<Vec<u8>, ContextError> {
        match &mut self.state {
            State::Established(sealer) => sealer.unwrap(part).map_err(context_error),
            _ => Err(context_error(KerberosError::token(
                "unsealing before the context is established",
            ))),
        }
    }

    fn http_scheme(&self) -> &'static str {
        "Kerberos"
    }

    fn protocol(&self) -> &'static str {
        KERBEROS_PROTOCOL
    }

    fn set_channel_bindings(&mut self, application_data: &[u8]) {
        self.channel_bindings = Some(application_data.to_vec());
    }

    fn is_blocking(&self) -> bool {
        true
    }

    fn needs_channel_bindings_first(&self) -> bool {
        true
    }
}
