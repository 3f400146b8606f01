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
            // Kerberos is the only mechanism offered: an answer that picks another one is not
            // an answer to this negotiation (RFC 4178 4.2.2).
            if let Some(mech) = &resp.mech
                && mech.as_slice() != gss::KRB5_OID
                && mech.as_slice() != gss::MS_KRB5_OID
            {
                return Err(KerberosError::token(format!(
                    "the server's SPNEGO answer picks mechanism {mech:02x?}, not the Kerberos \
                     offered"
                )));
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
            // SPNEGO's closing answer after our mechListMIC: accept-completed, no token, and
            // a mechListMIC only if it verifies.
            (State::Established(_), Some(input)) if self.spnego => {
                let closing = spnego::parse_neg_token_resp(input)
                    .filter(|r| r.state == Some(spnego::ACCEPT_COMPLETED) && r.token.is_none())
                    .ok_or_else(|| {
                        context_error(KerberosError::token(
                            "unexpected SPNEGO answer after the handshake",
                        ))
                    })?;
                if let (Some(mic), State::Established(sealer)) = (&closing.mic, &mut self.state) {
                    sealer
                        .verify_mic(&self.mech_list, mic)
                        .map_err(context_error)?;
                }
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
}

#[cfg(test)]
mod tests {
    use picky_asn1::wrapper::{
        ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2, ExplicitContextTag3,
        OctetStringAsn1, Optional,
    };
    use picky_krb::data_types::{Authenticator, EncApRepPart, EncApRepPartInner, EncryptionKey};
    use picky_krb::messages::{ApRep, ApRepInner, ApReq};
    use zeroize::Zeroizing;

    use super::*;
    use crate::auth::kerberos::ccache::tests::{sample, write};
    use crate::auth::kerberos::messages::tests::krb_error;
    use crate::auth::kerberos::messages::{decrypted, der, encrypted, integer, integer_value};

    fn now() -> u32 {
        u32::try_from(KerberosTime::now().seconds).unwrap()
    }

    fn service() -> Principal {
        Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE")
    }

    /// A store reading a cache file with `tickets` of the sample cache (0: the TGT, 1:
    /// HTTP/fs01), ending at `end`; its KDC cannot be reached.
    fn store(tickets: &[usize], end: u32) -> (tempfile::TempDir, Arc<KerberosCredentials>) {
        let mut cache = sample(now());
        cache.tickets = tickets.iter().map(|i| cache.tickets[*i].clone()).collect();
        for t in &mut cache.tickets {
            t.end_time = end;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("krb5cc");
        std::fs::write(&path, write(&cache)).unwrap();
        let store =
            KerberosCredentials::from_cache(path, |_| vec!["tcp://127.0.0.1:1".into()]).unwrap();
        (dir, Arc::new(store))
    }

    fn context(store: &Arc<KerberosCredentials>, spnego: bool) -> KerberosContext {
        let ticket = store
            .service_ticket(&service(), i64::from(now()))
            .unwrap()
            .expect("the cache holds the service ticket");
        KerberosContext::new(ticket, service(), store.clone(), spnego)
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
            bytes: Zeroizing::new(vec![9; 32]),
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
                    acceptor_key.bytes.to_vec(),
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

    /// The AP-REQ inside a NegTokenInit (its mechToken): the Kerberos InitialContextToken.
    fn ap_req_in(init: &[u8]) -> &[u8] {
        let start = (1..init.len())
            .find(|&i| init[i] == 0x60 && gss::parse_context_token(&init[i..]).is_ok())
            .expect("a Kerberos token inside the NegTokenInit");
        &init[start..]
    }

    fn open(context: &mut dyn SecurityContext, part: &SealedPart) -> Vec<u8> {
        let mut data = part.data.clone();
        let range = context.open(&part.header, &mut data).unwrap();
        data[range].to_vec()
    }

    #[test]
    fn a_cached_service_ticket_authenticates_and_seals_without_a_kdc() {
        let (_dir, store) = store(&[0, 1], now() + 3600);
        let session = sample(now()).tickets[1].key.clone();
        let mut client = context(&store, false);
        client.set_channel_bindings(b"tls-server-end-point:abc");
        let Step::Continue(token) = client.step(None).unwrap() else {
            panic!("an AP-REQ first")
        };
        let (reply, mut server) = accept(&token, &session, true);
        assert_eq!(client.step(Some(&reply)).unwrap(), Step::Done(None));
        for message in [&b"<s:Envelope/>"[..], b"", b"page 2"] {
            let sealed = client.seal(message).unwrap();
            let mut data = sealed.data.clone();
            let range = server.unwrap(&sealed.header, &mut data).unwrap();
            assert_eq!(&data[range], message);
            let answer = server.wrap(b"<s:Envelope>answer</s:Envelope>").unwrap();
            assert_eq!(
                open(&mut client, &answer),
                b"<s:Envelope>answer</s:Envelope>"
            );
        }
        assert!(
            client.step(Some(&reply)).is_err(),
            "a second AP-REP is refused"
        );
    }

    #[test]
    fn spnego_wraps_the_tokens_and_checks_the_acceptors_mic() {
        let (_dir, store) = store(&[0, 1], now() + 3600);
        let session = sample(now()).tickets[1].key.clone();
        let mut client = context(&store, true);
        assert_eq!(client.http_scheme(), "Negotiate");
        let Step::Continue(init) = client.step(None).unwrap() else {
            panic!()
        };
        assert_eq!(init[0], 0x60, "NegTokenInit");
        let (ap_rep, mut server) = accept(ap_req_in(&init), &session, true);
        let list = spnego::mech_type_list(&[gss::KRB5_OID]);
        let mic = server.get_mic(&list).unwrap();
        let resp =
            spnego::neg_token_resp(Some(spnego::ACCEPT_COMPLETED), Some(&ap_rep), Some(&mic));
        assert_eq!(client.step(Some(&resp)).unwrap(), Step::Done(None));
        let sealed = server.wrap(b"after the MIC").unwrap();
        assert_eq!(open(&mut client, &sealed), b"after the MIC");

        let mut client = context(&store, true);
        let Step::Continue(init) = client.step(None).unwrap() else {
            panic!()
        };
        let (ap_rep, _) = accept(ap_req_in(&init), &session, true);
        let forged = spnego::neg_token_resp(Some(0), Some(&ap_rep), Some(&[0u8; 28]));
        assert!(client.step(Some(&forged)).is_err(), "a bad MIC is refused");

        // An answer that picks another mechanism than the Kerberos offered is refused.
        let mut client = context(&store, true);
        let Step::Continue(init) = client.step(None).unwrap() else {
            panic!()
        };
        let (ap_rep, _) = accept(ap_req_in(&init), &session, true);
        let ntlm_oid = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
        let mut fields = Vec::new();
        crate::auth::der::write(&mut fields, 0xa0, &[0x0a, 0x01, spnego::ACCEPT_COMPLETED]);
        crate::auth::der::write(&mut fields, 0xa1, &crate::auth::der::tlv(0x06, &ntlm_oid));
        crate::auth::der::write(&mut fields, 0xa2, &crate::auth::der::tlv(0x04, &ap_rep));
        let other_mech = crate::auth::der::tlv(0xa1, &crate::auth::der::tlv(0x30, &fields));
        let e = client.step(Some(&other_mech)).unwrap_err();
        assert!(e.message.contains("not the Kerberos offered"), "{e:?}");

        // Request-mic: we send our MIC; a closing answer's MIC must verify too.
        for (good, expect_ok) in [(true, true), (false, false)] {
            let mut client = context(&store, true);
            let Step::Continue(init) = client.step(None).unwrap() else {
                panic!()
            };
            let (ap_rep, mut server) = accept(ap_req_in(&init), &session, true);
            let incomplete =
                spnego::neg_token_resp(Some(spnego::ACCEPT_INCOMPLETE), Some(&ap_rep), None);
            let Step::Done(Some(_our_mic)) = client.step(Some(&incomplete)).unwrap() else {
                panic!("our mechListMIC")
            };
            let mic = if good {
                server.get_mic(&list).unwrap()
            } else {
                vec![0u8; 28]
            };
            let closing = spnego::neg_token_resp(Some(spnego::ACCEPT_COMPLETED), None, Some(&mic));
            assert_eq!(
                client.step(Some(&closing)).is_ok(),
                expect_ok,
                "good MIC: {good}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// A SPNEGO answer with any byte changed or cut: an error or (a change the checks do
        /// not read) an established context, never a panic; a cut answer is always an error.
        #[test]
        fn hostile_spnego_answers_are_errors_not_panics(
            at in 0usize..4096,
            flip in 1u8..=255,
            cut in 0usize..4096,
        ) {
            let session = sample(now()).tickets[1].key.clone();
            let (_d, store) = store(&[0, 1], now() + 3600);
            let answer = |client: &mut KerberosContext| {
                let Step::Continue(init) = client.step(None).unwrap() else {
                    panic!()
                };
                let (ap_rep, mut server) = accept(ap_req_in(&init), &session, true);
                let list = spnego::mech_type_list(&[gss::KRB5_OID]);
                let mic = server.get_mic(&list).unwrap();
                spnego::neg_token_resp(Some(spnego::ACCEPT_COMPLETED), Some(&ap_rep), Some(&mic))
            };
            let mut client = context(&store, true);
            let mut resp = answer(&mut client);
            let cut = cut % resp.len();
            proptest::prop_assert!(client.step(Some(&resp[..cut])).is_err());
            let mut client = context(&store, true);
            resp = answer(&mut client);
            let at = at % resp.len();
            resp[at] ^= flip;
            let _ = client.step(Some(&resp));
        }
    }

    #[test]
    fn a_server_that_cannot_prove_itself_is_refused() {
        let session = sample(now()).tickets[1].key.clone();
        let (_d, store) = store(&[0, 1], now() + 3600);
        let start = || {
            let mut client = context(&store, false);
            let Step::Continue(token) = client.step(None).unwrap() else {
                panic!()
            };
            (client, token)
        };
        let (mut client, token) = start();
        let (wrong_echo, _) = accept(&token, &session, false);
        let e = client.step(Some(&wrong_echo)).unwrap_err();
        assert!(e.message.contains("mutual authentication"), "{e}");
        assert!(client.seal(b"x").is_err(), "no sealing after a failure");

        let (mut client, token) = start();
        let other_key = SessionKey {
            enctype: 18,
            bytes: Zeroizing::new(vec![3; 32]),
        };
        let (reply, _) = accept(&token, &session, true);
        let (_, message) = gss::parse_context_token(&reply).unwrap();
        let mut forged: ApRep = picky_asn1_der::from_bytes(message).unwrap();
        forged.0.enc_part.0 = encrypted(&other_key, 12, b"\x30\x00").unwrap();
        let forged = gss::context_token(gss::TOK_AP_REP, &der(&forged).unwrap());
        assert!(client.step(Some(&forged)).is_err());

        let (_, token) = start();
        let (reply, _) = accept(&token, &session, true);
        for cut in (0..reply.len()).step_by(5) {
            let mut c = context(&store, false);
            c.step(None).unwrap();
            assert!(c.step(Some(&reply[..cut])).is_err(), "cut at {cut}");
        }
        let (mut client, _) = start();
        let e = client.step(None).unwrap_err();
        assert!(e.message.contains("mutual authentication"), "{e}");
    }

    #[test]
    fn a_krb_error_from_the_server_is_explained_and_the_ticket_forgotten() {
        let (_dir, store) = store(&[0, 1], now() + 3600);
        let mut client = context(&store, false);
        client.step(None).unwrap();
        // KRB_AP_ERR_SKEW (37), as a server whose clock is off sends it.
        let token = gss::context_token(gss::TOK_KRB_ERROR, &krb_error(37, &service()));
        let e = client.step(Some(&token)).unwrap_err();
        assert!(e.message.contains("clocks"), "{e}");
    }

    #[test]
    fn expired_or_missing_tickets_say_run_kinit() {
        let (_dir, cached) = store(&[0], now() - 10);
        let e = cached.tgt(i64::from(now())).unwrap_err();
        assert!(
            e.credentials_rejected && e.message.contains("expired"),
            "{e}"
        );
        let (_dir, cached) = store(&[], now() + 3600);
        let e = cached.tgt(i64::from(now())).unwrap_err();
        assert!(e.message.contains("no ticket-granting ticket"), "{e}");
        let e = cached.as_exchange(KerberosTime::now(), 1).err().unwrap();
        assert!(e.message.contains("kinit"), "{e}");
        let (_dir, cached) = store(&[0], now() + 3600);
        assert!(cached.tgt(i64::from(now())).unwrap().is_some());
        assert!(
            cached
                .service_ticket(&service(), i64::from(now()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_renewed_cache_is_read_again() {
        let (dir, cached) = store(&[0], now() - 10);
        assert!(cached.tgt(i64::from(now())).is_err());
        let mut cache = sample(now());
        cache.tickets.truncate(1);
        cache.tickets[0].end_time = now() + 7200;
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.path().join("krb5cc"), write(&cache)).unwrap();
        assert!(
            cached.tgt(i64::from(now())).unwrap().is_some(),
            "kinit -R was seen"
        );
    }
}
