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
use super::crypto;
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
                let iterations = messages::iterations(info.and_then(|i| i.s2kparams.as_deref()))?;
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
                    s2kparams: None,
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

#[cfg(test)]
mod tests {
    use picky_asn1::wrapper::{
        Asn1SequenceOf, ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2,
        ExplicitContextTag3, ExplicitContextTag4, ExplicitContextTag5, ExplicitContextTag6,
        ExplicitContextTag7, ExplicitContextTag9, ExplicitContextTag10, ExplicitContextTag12,
        OctetStringAsn1, Optional,
    };
    use picky_krb::data_types::{
        EncryptionKey, EtypeInfo2Entry, KerberosStringAsn1, PaData, PaEncTsEnc, Ticket,
    };
    use picky_krb::messages::{AsRep, AsReq, EncAsRepPart, EncKdcRepPart, KdcRep, KrbError};

    use super::*;
    use crate::auth::kerberos::ccache::tests::user;
    use crate::auth::kerberos::messages::tests::ticket_der;
    use crate::auth::kerberos::messages::{decrypted, der, encrypted, integer, integer_value};

    fn kstring(s: &str) -> KerberosStringAsn1 {
        picky_asn1::restricted_string::IA5String::from_string(s.to_owned())
            .unwrap()
            .into()
    }

    fn now() -> KerberosTime {
        KerberosTime::now()
    }

    fn etype_info(etype: i64, salt: &str) -> PaData {
        etype_info_with(etype, salt, None)
    }

    /// ETYPE-INFO2 with these `s2kparams`.
    fn etype_info_with(etype: i64, salt: &str, s2kparams: Option<&[u8]>) -> PaData {
        let entries = Asn1SequenceOf::from(vec![EtypeInfo2Entry {
            etype: ExplicitContextTag0::from(integer(etype)),
            salt: Optional::from(Some(ExplicitContextTag1::from(kstring(salt)))),
            s2kparams: Optional::from(
                s2kparams.map(|p| ExplicitContextTag2::from(OctetStringAsn1::from(p.to_vec()))),
            ),
        }]);
        PaData {
            padata_type: ExplicitContextTag1::from(integer(19)),
            padata_data: ExplicitContextTag2::from(OctetStringAsn1::from(der(&entries).unwrap())),
        }
    }

    /// A KRB-ERROR of `code`, with METHOD-DATA carrying `padata` when given.
    fn kdc_error(code: u32, padata: Option<PaData>) -> Vec<u8> {
        let mut error = picky_asn1_der::from_bytes::<KrbError>(
            &crate::auth::kerberos::messages::tests::krb_error(
                code,
                &Principal::ticket_granting("CORP.EXAMPLE"),
            ),
        )
        .unwrap();
        if let Some(padata) = padata {
            let methods = Asn1SequenceOf::from(vec![padata]);
            error.0.e_data = Optional::from(Some(ExplicitContextTag12::from(
                OctetStringAsn1::from(der(&methods).unwrap()),
            )));
        }
        der(&error).unwrap()
    }

    /// The nonce of an AS-REQ, and its PA-ENC-TIMESTAMP decrypted with `key` when present.
    fn read_request(bytes: &[u8], key: Option<&SessionKey>) -> (i64, Option<PaEncTsEnc>) {
        let request: AsReq = picky_asn1_der::from_bytes(bytes).unwrap();
        let nonce = integer_value(&request.0.req_body.0.nonce.0).unwrap();
        let timestamp = request.0.padata.0.as_ref().and_then(|p| {
            p.0.0
                .iter()
                .find(|d| integer_value(&d.padata_type.0).unwrap() == 2)
                .map(|d| {
                    let sealed: picky_krb::data_types::EncryptedData =
                        picky_asn1_der::from_bytes(&d.padata_data.0.0).unwrap();
                    let plain = decrypted(key.unwrap(), 1, &sealed, "timestamp").unwrap();
                    picky_asn1_der::from_bytes(&plain).unwrap()
                })
        });
        (nonce, timestamp)
    }

    /// An AS-REP sealed with `key`, answering `nonce`, optionally carrying ETYPE-INFO2.
    fn as_rep(key: &SessionKey, nonce: i64, padata: Option<PaData>) -> Vec<u8> {
        as_rep_for(key, nonce, padata, "alice", tgs_name())
    }

    /// krbtgt/CORP.EXAMPLE, as the sample ticket names it.
    fn tgs_name() -> picky_krb::data_types::PrincipalName {
        picky_asn1_der::from_bytes::<Ticket>(&ticket_der())
            .unwrap()
            .0
            .sname
            .0
    }

    /// An AS-REP for client `cname` whose encrypted part names `sname`.
    fn as_rep_for(
        key: &SessionKey,
        nonce: i64,
        padata: Option<PaData>,
        cname: &str,
        sname: picky_krb::data_types::PrincipalName,
    ) -> Vec<u8> {
        let end = KerberosTime {
            seconds: now().seconds + 3600,
            micros: 0,
        };
        let part = EncAsRepPart::from(EncKdcRepPart {
            key: ExplicitContextTag0::from(EncryptionKey {
                key_type: ExplicitContextTag0::from(integer(18)),
                key_value: ExplicitContextTag1::from(OctetStringAsn1::from(vec![4; 32])),
            }),
            last_req: ExplicitContextTag1::from(Asn1SequenceOf::from(vec![])),
            nonce: ExplicitContextTag2::from(integer(nonce)),
            key_expiration: Optional::from(None),
            flags: ExplicitContextTag4::from(picky_krb::data_types::KerberosFlags::from(
                picky_asn1::bit_string::BitString::with_bytes(vec![0x40, 0xe1, 0, 0]),
            )),
            auth_time: ExplicitContextTag5::from(now().asn1().unwrap()),
            start_time: Optional::from(None),
            end_time: ExplicitContextTag7::from(end.asn1().unwrap()),
            renew_till: Optional::from(None),
            srealm: ExplicitContextTag9::from(kstring("CORP.EXAMPLE")),
            sname: ExplicitContextTag10::from(sname),
            caddr: Optional::from(None),
            encrypted_pa_data: Optional::from(None),
        });
        let reply = AsRep::from(KdcRep {
            pvno: ExplicitContextTag0::from(integer(5)),
            msg_type: ExplicitContextTag1::from(integer(11)),
            padata: Optional::from(
                padata.map(|p| ExplicitContextTag2::from(Asn1SequenceOf::from(vec![p]))),
            ),
            crealm: ExplicitContextTag3::from(kstring("CORP.EXAMPLE")),
            cname: ExplicitContextTag4::from(picky_krb::data_types::PrincipalName {
                name_type: ExplicitContextTag0::from(integer(1)),
                name_string: ExplicitContextTag1::from(Asn1SequenceOf::from(vec![kstring(cname)])),
            }),
            ticket: ExplicitContextTag5::from(
                picky_asn1_der::from_bytes::<Ticket>(&ticket_der()).unwrap(),
            ),
            enc_part: ExplicitContextTag6::from(encrypted(key, 3, &der(&part).unwrap()).unwrap()),
        });
        der(&reply).unwrap()
    }

    fn password() -> LongTermKey {
        LongTermKey::Password(Password::new("Alice-Passw0rd!"))
    }

    fn password_key(salt: &str) -> SessionKey {
        crypto::string_to_key(
            "Alice-Passw0rd!",
            salt.as_bytes(),
            crypto::DEFAULT_ITERATIONS,
            18,
        )
        .unwrap()
    }

    #[test]
    fn a_kdc_that_demands_preauthentication_gets_it_with_its_salt() {
        let (mut exchange, first) = AsExchange::start(user(), password(), now(), 11).unwrap();
        let (_, timestamp) = read_request(&first, None);
        assert!(
            timestamp.is_none(),
            "no guess at the salt: no pre-authentication yet"
        );
        let salt = "CORP.EXAMPLEalice-custom";
        let preauth_required = kdc_error(25, Some(etype_info(18, salt)));
        let Next::Send(second) = exchange.handle_reply(&preauth_required, now(), 12).unwrap()
        else {
            panic!("a pre-authenticated request")
        };
        let key = password_key(salt);
        let (nonce, timestamp) = read_request(&second, Some(&key));
        assert!(
            timestamp.is_some(),
            "the timestamp decrypts with the salted key"
        );
        let reply = as_rep(&key, nonce, None);
        let Next::Done(tgt) = exchange.handle_reply(&reply, now(), 13).unwrap() else {
            panic!("a ticket")
        };
        assert_eq!(tgt.key.bytes.as_slice(), &[4; 32]);
        assert_eq!(tgt.client.to_string(), "alice@CORP.EXAMPLE");
        assert!(tgt.valid_for(now().seconds, 60));
    }

    #[test]
    fn a_kdc_that_does_not_demand_it_answers_at_once() {
        for (padata, salt) in [
            (Some(etype_info(18, "OTHERsalt")), "OTHERsalt"),
            (None, "CORP.EXAMPLEalice"),
        ] {
            let (mut exchange, first) = AsExchange::start(user(), password(), now(), 21).unwrap();
            let (nonce, _) = read_request(&first, None);
            let reply = as_rep(&password_key(salt), nonce, padata);
            let Next::Done(tgt) = exchange.handle_reply(&reply, now(), 22).unwrap() else {
                panic!("a ticket")
            };
            assert_eq!(tgt.key.enctype, 18);
        }
    }

    #[test]
    fn a_wrong_password_is_one_refusal_never_a_second_guess() {
        let (mut exchange, _) = AsExchange::start(user(), password(), now(), 31).unwrap();
        let Next::Send(_) = exchange
            .handle_reply(
                &kdc_error(25, Some(etype_info(18, "CORP.EXAMPLEalice"))),
                now(),
                32,
            )
            .unwrap()
        else {
            panic!()
        };
        let e = exchange
            .handle_reply(&kdc_error(24, None), now(), 33)
            .unwrap_err();
        assert!(
            e.credentials_rejected && e.message.contains("refused the password"),
            "{e}"
        );

        let (mut exchange, first) = AsExchange::start(user(), password(), now(), 41).unwrap();
        let (nonce, _) = read_request(&first, None);
        let wrong = as_rep(&password_key("not the salt"), nonce, None);
        let e = exchange.handle_reply(&wrong, now(), 42).unwrap_err();
        assert!(e.credentials_rejected, "{e}");

        let (mut exchange, _) = AsExchange::start(user(), password(), now(), 51).unwrap();
        let again = kdc_error(25, Some(etype_info(18, "s")));
        exchange.handle_reply(&again, now(), 52).unwrap();
        assert!(exchange.handle_reply(&again, now(), 53).is_err(), "no loop");
    }

    /// A fake KDC cannot choose a cheaper (or an endless) password key: iteration counts
    /// outside MIT's bounds, and s2kparams that are not 4 bytes, are refused by name before
    /// any key is derived or any timestamp encrypted.
    #[test]
    fn absurd_s2kparams_from_the_kdc_are_refused() {
        let refused: [(&[u8], &str); 6] = [
            (&[0, 0, 0, 0], "0 key derivation iterations"),
            (&[0, 0, 0, 1], "only 1 key derivation"),
            (&[0, 0, 0x0f, 0xff], "only 4095"),
            (&[1, 0, 0, 0], "16777216"),
            (&[0, 0x10, 0], "3 bytes long"),
            (&[0, 0, 0x10, 0, 0], "5 bytes long"),
        ];
        for (params, says) in refused {
            let (mut exchange, _) = AsExchange::start(user(), password(), now(), 91).unwrap();
            let reply = kdc_error(25, Some(etype_info_with(18, "s", Some(params))));
            let e = exchange.handle_reply(&reply, now(), 92).unwrap_err();
            assert!(e.message.contains(says), "{params:?}: {e}");
        }
        for accepted in [4096u32, 100_000, (1 << 24) - 1] {
            assert_eq!(
                messages::iterations(Some(&accepted.to_be_bytes())).unwrap(),
                accepted
            );
        }
        assert_eq!(messages::iterations(None).unwrap(), 4096);
    }

    #[test]
    fn rc4_only_skew_and_unknown_users_are_explained() {
        let (mut exchange, _) = AsExchange::start(user(), password(), now(), 61).unwrap();
        let e = exchange
            .handle_reply(&kdc_error(25, Some(etype_info(23, "s"))), now(), 62)
            .unwrap_err();
        assert!(e.message.contains("AES"), "{e}");
        for (code, words) in [(37, "clocks"), (6, "alice@CORP.EXAMPLE"), (18, "locked")] {
            let (mut exchange, _) = AsExchange::start(user(), password(), now(), 71).unwrap();
            let e = exchange
                .handle_reply(&kdc_error(code, None), now(), 72)
                .unwrap_err();
            assert!(e.message.contains(words), "{code}: {e}");
        }
        let (mut exchange, _) = AsExchange::start(user(), password(), now(), 81).unwrap();
        for garbage in [&b""[..], b"\x6b\x03\x02\x01", &[0x30; 50]] {
            assert!(exchange.handle_reply(garbage, now(), 82).is_err());
        }
    }

    #[test]
    fn a_keytab_key_preauthenticates_in_the_first_request() {
        let key = password_key("CORP.EXAMPLEalice");
        let (mut exchange, first) =
            AsExchange::start(user(), LongTermKey::Key(key.clone()), now(), 91).unwrap();
        let (nonce, timestamp) = read_request(&first, Some(&key));
        assert!(timestamp.is_some());
        let Next::Done(_) = exchange
            .handle_reply(&as_rep(&key, nonce, None), now(), 92)
            .unwrap()
        else {
            panic!()
        };
    }

    /// As MIT's verify_as_reply: an AS reply for another client, or whose ticket is not the
    /// realm's ticket-granting ticket, is refused even when it decrypts with our key.
    #[test]
    fn an_as_reply_for_another_client_or_service_is_refused() {
        let key = password_key("CORP.EXAMPLEalice");
        let other_service = || picky_krb::data_types::PrincipalName {
            name_type: ExplicitContextTag0::from(integer(2)),
            name_string: ExplicitContextTag1::from(Asn1SequenceOf::from(vec![
                kstring("HTTP"),
                kstring("fs01"),
            ])),
        };
        for (cname, sname, says) in [
            ("mallory", tgs_name(), "not for alice@CORP.EXAMPLE"),
            ("alice", other_service(), "not the ticket-granting service"),
        ] {
            let (mut exchange, first) =
                AsExchange::start(user(), LongTermKey::Key(key.clone()), now(), 93).unwrap();
            let (nonce, _) = read_request(&first, Some(&key));
            let reply = as_rep_for(&key, nonce, None, cname, sname);
            let e = exchange.handle_reply(&reply, now(), 94).err().unwrap();
            assert!(e.message.contains(says), "{cname}: {e}");
        }
        // The name in another case is the same client (AD answers in the case it stores).
        let (mut exchange, first) =
            AsExchange::start(user(), LongTermKey::Key(key.clone()), now(), 95).unwrap();
        let (nonce, _) = read_request(&first, Some(&key));
        assert!(
            exchange
                .handle_reply(
                    &as_rep_for(&key, nonce, None, "Alice", tgs_name()),
                    now(),
                    96
                )
                .is_ok()
        );
    }

    proptest::proptest! {
        /// A KDC reply with any byte changed, or cut anywhere: a typed error or (where the
        /// change falls in what we do not read, such as the ticket's ciphertext) a ticket,
        /// never a panic; a cut reply is always an error.
        #[test]
        fn hostile_as_replies_are_errors_not_panics(
            at in 0usize..4096,
            flip in 1u8..=255,
            cut in 0usize..4096,
        ) {
            let key = password_key("CORP.EXAMPLEalice");
            let fresh = || {
                let (exchange, first) =
                    AsExchange::start(user(), LongTermKey::Key(key.clone()), now(), 97).unwrap();
                let (nonce, _) = read_request(&first, Some(&key));
                (exchange, as_rep(&key, nonce, None))
            };
            let (mut exchange, mut reply) = fresh();
            let at = at % reply.len();
            reply[at] ^= flip;
            let _ = exchange.handle_reply(&reply, now(), 98);
            let (mut exchange, reply) = fresh();
            let cut = cut % reply.len();
            proptest::prop_assert!(exchange.handle_reply(&reply[..cut], now(), 99).is_err());
        }
    }

    #[test]
    fn a_refused_password_is_remembered_by_the_store() {
        let store = super::super::store::KerberosCredentials::from_key(
            user(),
            password(),
            vec!["tcp://127.0.0.1:1".into()],
        );
        assert!(store.as_exchange(now(), 1).is_ok());
        store.refuse(KerberosError::rejected("the KDC refused the password"));
        let e = store.as_exchange(now(), 2).err().unwrap();
        assert!(e.message.contains("refused"), "{e}");
    }
}
