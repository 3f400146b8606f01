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

#[cfg(test)]
mod tests {
    use picky_asn1::wrapper::{
        ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2, ExplicitContextTag3,
        OctetStringAsn1, Optional,
    };
    use picky_krb::data_types::{Authenticator, EncApRepPart, EncApRepPartInner, EncryptionKey};
    use picky_krb::messages::{ApRep, ApRepInner, ApReq};

    use super::*;
    use crate::auth::kerberos::ccache::tests::{sample, write};
    use crate::auth::kerberos::messages::tests::krb_error;
    use crate::auth::kerberos::messages::{decrypted, der, encrypted, integer, integer_value};

    fn now() -> u32 {
        u32::try_from(KerberosTime::now().seconds).unwrap()
    }

    /// A cache file with `tickets` of the sample cache (0: the TGT, 1: HTTP/fs01), ending at
    /// `end`.
    fn cache_file(tickets: &[usize], end: u32) -> (tempfile::TempDir, Arc<TicketStore>) {
        let mut cache = sample(now());
        cache.tickets = tickets.iter().map(|i| cache.tickets[*i].clone()).collect();
        for t in &mut cache.tickets {
            t.end_time = end;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("krb5cc");
        std::fs::write(&path, write(&cache)).unwrap();
        // A KDC that cannot be reached: these tests must not need one.
        let store = TicketStore::new(
            path,
            Some("tcp://127.0.0.1:1".into()),
            Duration::from_millis(200),
        );
        (dir, store)
    }

    /// Plays the server: reads the AP-REQ with the ticket's session key and answers with an
    /// AP-REP, as an acceptor does. Returns the AP-REP token and the acceptor's sealer.
    fn accept(token: &[u8], session: &SessionKey, echo: bool) -> (Vec<u8>, Sealer) {
        let (id, message) = gss::parse_context_token(token).unwrap();
        assert_eq!(id, gss::TOK_AP_REQ);
        let request: ApReq = picky_asn1_der::from_bytes(message).unwrap();
        let plain = decrypted(session, 11, &request.0.authenticator.0, "authenticator").unwrap();
        let authenticator: Authenticator = picky_asn1_der::from_bytes(&plain).unwrap();
        let a = authenticator.0;
        let checksum = &a.cksum.0.as_ref().unwrap().0;
        assert_eq!(integer_value(&checksum.cksumtype.0).unwrap(), 0x8003);
        assert_eq!(
            checksum.checksum.0.0[20..],
            gss::CONTEXT_FLAGS.to_le_bytes(),
            "mutual, replay, sequence, confidentiality, integrity"
        );
        let initiator_seq = integer_value(&a.seq_number.0.as_ref().unwrap().0).unwrap();
        let acceptor_key = SessionKey {
            enctype: 18,
            value: Zeroizing::new(vec![9; 32]),
        };
        let cusec = if echo {
            a.cusec.0.clone()
        } else {
            integer(integer_value(&a.cusec.0).unwrap() + 1)
        };
        let part = EncApRepPart::from(EncApRepPartInner {
            ctime: ExplicitContextTag0::from(a.ctime.0.clone()),
            cusec: ExplicitContextTag1::from(cusec),
            subkey: Optional::from(Some(ExplicitContextTag2::from(EncryptionKey {
                key_type: ExplicitContextTag0::from(integer(18)),
                key_value: ExplicitContextTag1::from(OctetStringAsn1::from(
                    acceptor_key.value.to_vec(),
                )),
            }))),
            seq_number: Optional::from(Some(ExplicitContextTag3::from(integer(4242)))),
        });
        let reply = ApRep::from(ApRepInner {
            pvno: ExplicitContextTag0::from(integer(5)),
            msg_type: ExplicitContextTag1::from(integer(15)),
            enc_part: ExplicitContextTag2::from(
                encrypted(session, 12, &der(&part).unwrap()).unwrap(),
            ),
        });
        let token = gss::context_token(gss::TOK_AP_REP, &der(&reply).unwrap());
        let sealer = Sealer::new(
            Role::Acceptor,
            acceptor_key,
            true,
            4242,
            u64::try_from(initiator_seq).unwrap(),
        )
        .unwrap();
        (token, sealer)
    }

    #[test]
    fn a_cached_service_ticket_authenticates_and_seals_without_a_kdc() {
        let (_dir, store) = cache_file(&[0, 1], now() + 3600);
        let session = sample(now()).tickets[1].key.clone();
        let mut client = TicketCacheClient::new(store, "HTTP/fs01.corp.example");
        client.set_channel_bindings(b"tls-server-end-point:abc");
        let Step::Continue(token) = client.step(None).unwrap() else {
            panic!("an AP-REQ first")
        };
        let (reply, mut server) = accept(&token, &session, true);
        assert_eq!(client.step(Some(&reply)).unwrap(), Step::Done(None));
        for message in [&b"<s:Envelope/>"[..], b"", b"page 2"] {
            let sealed = client.wrap(message).unwrap();
            assert_eq!(server.unwrap(&sealed).unwrap(), message);
            let answer = server.wrap(b"<s:Envelope>answer</s:Envelope>").unwrap();
            assert_eq!(
                client.unwrap(&answer).unwrap(),
                b"<s:Envelope>answer</s:Envelope>"
            );
        }
        assert!(
            client.step(Some(&reply)).is_err(),
            "a second AP-REP is refused"
        );
    }

    #[test]
    fn a_server_that_cannot_prove_itself_is_refused() {
        let session = sample(now()).tickets[1].key.clone();
        let start = || {
            let (dir, store) = cache_file(&[0, 1], now() + 3600);
            let mut client = TicketCacheClient::new(store, "HTTP/fs01.corp.example");
            let Step::Continue(token) = client.step(None).unwrap() else {
                panic!()
            };
            (dir, client, token)
        };
        let (_d, mut client, token) = start();
        let (wrong_echo, _) = accept(&token, &session, false);
        let e = client.step(Some(&wrong_echo)).unwrap_err();
        assert!(e.message.contains("mutual authentication"), "{e}");
        assert!(client.wrap(b"x").is_err(), "no sealing after a failure");

        let (_d, mut client, token) = start();
        let other_key = SessionKey {
            enctype: 18,
            value: Zeroizing::new(vec![3; 32]),
        };
        // An AP-REP sealed with another key than the ticket's: not the real server.
        let (reply, _) = accept(&token, &session, true);
        let (_, message) = gss::parse_context_token(&reply).unwrap();
        let mut forged: ApRep = picky_asn1_der::from_bytes(message).unwrap();
        forged.0.enc_part.0 = encrypted(&other_key, 12, b"\x30\x00").unwrap();
        let forged = gss::context_token(gss::TOK_AP_REP, &der(&forged).unwrap());
        assert!(client.step(Some(&forged)).is_err());

        let (_d, mut client, token) = start();
        let (reply, _) = accept(&token, &session, true);
        for cut in (0..reply.len()).step_by(5) {
            let mut c = TicketCacheClient::new(client.store.clone(), "HTTP/fs01.corp.example");
            c.step(None).unwrap();
            assert!(c.step(Some(&reply[..cut])).is_err(), "cut at {cut}");
        }
        let e = client.step(None).unwrap_err();
        assert!(e.message.contains("mutual authentication"), "{e}");
    }

    #[test]
    fn a_krb_error_from_the_server_is_explained() {
        let (_dir, store) = cache_file(&[0, 1], now() + 3600);
        let mut client = TicketCacheClient::new(store, "HTTP/fs01.corp.example");
        client.step(None).unwrap();
        // KRB_AP_ERR_SKEW (37), as a server whose clock is off sends it.
        let error = krb_error(
            37,
            &Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE"),
        );
        let token = gss::context_token(gss::TOK_KRB_ERROR, &error);
        let e = client.step(Some(&token)).unwrap_err();
        assert!(e.message.contains("clocks"), "{e}");
    }

    #[test]
    fn expired_or_missing_tickets_say_run_kinit() {
        let (_dir, store) = cache_file(&[0], now() - 10);
        let e = TicketCacheClient::new(store, "HTTP/fs01.corp.example")
            .step(None)
            .unwrap_err();
        assert!(
            e.credentials_rejected && e.message.contains("expired"),
            "{e}"
        );

        let (_dir, store) = cache_file(&[], now() + 3600);
        let e = TicketCacheClient::new(store, "HTTP/fs01.corp.example")
            .step(None)
            .unwrap_err();
        assert!(e.message.contains("no ticket-granting ticket"), "{e}");

        // A valid TGT but no service ticket: the KDC is asked, and here it cannot be reached.
        let (_dir, store) = cache_file(&[0], now() + 3600);
        let e = TicketCacheClient::new(store, "HTTP/fs01.corp.example")
            .step(None)
            .unwrap_err();
        assert!(e.message.contains("cannot reach the KDC"), "{e}");
        assert!(!e.credentials_rejected, "unreachable is not a refusal");
    }
}
