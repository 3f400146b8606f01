//! The Kerberos messages a client with a ticket cache sends and reads (RFC 4120), with no I/O:
//! the TGS exchange that turns the ticket-granting ticket into a service ticket, and the
//! AP exchange that presents that ticket to the server. Encoding is picky-krb's; which fields
//! are filled, and what is checked in the answers, is decided here.

use picky_asn1::bit_string::BitString;
use picky_asn1::date::GeneralizedTime;
use picky_asn1::restricted_string::IA5String;
use picky_asn1::wrapper::{
    Asn1SequenceOf, ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2,
    ExplicitContextTag3, ExplicitContextTag4, ExplicitContextTag5, ExplicitContextTag7,
    ExplicitContextTag8, GeneralizedTimeAsn1, IntegerAsn1, OctetStringAsn1, Optional,
};
use picky_krb::data_types::{
    Authenticator, AuthenticatorInner, Checksum, EncApRepPart, EncryptedData, EncryptionKey,
    KerberosFlags, KerberosStringAsn1, PaData, PrincipalName, Ticket,
};
use picky_krb::messages::{
    ApRep, ApReq, ApReqInner, EncTgsRepPart, KdcReq, KdcReqBody, KrbError, TgsRep, TgsReq,
};
use zeroize::Zeroizing;

use super::KerberosError;
use super::ccache::{CachedTicket, Principal, SessionKey};
use super::gss::{GSS_CHECKSUM_TYPE, cipher_suite};

/// Key usages (RFC 4120 7.5.1).
const TGS_REQ_CHECKSUM: i32 = 6;
const TGS_REQ_AUTHENTICATOR: i32 = 7;
const TGS_REP_SESSION_KEY: i32 = 8;
const AP_REQ_AUTHENTICATOR: i32 = 11;
const AP_REP_PART: i32 = 12;

/// Keyed checksum types of the AES suites (RFC 3962).
const HMAC_SHA1_96_AES128: i32 = 15;
const HMAC_SHA1_96_AES256: i32 = 16;

/// KDC options of the TGS request: forwardable, renewable, canonicalize, renewable-ok.
const TGS_OPTIONS: u32 = 0x4081_0010;
/// AP options: mutual-required (the server proves it holds the service key).
const AP_OPTIONS: u32 = 0x2000_0000;

/// A point in time as Kerberos carries it: whole seconds and microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KerberosTime {
    /// Seconds since 1970.
    pub seconds: i64,
    /// Microseconds within the second.
    pub micros: u32,
}

impl KerberosTime {
    /// Now, from the system clock.
    pub fn now() -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self {
            seconds: now.unix_timestamp(),
            micros: now.microsecond(),
        }
    }

    pub(super) fn asn1(self) -> Result<GeneralizedTimeAsn1, KerberosError> {
        let t = time::OffsetDateTime::from_unix_timestamp(self.seconds)
            .map_err(|_| KerberosError::token("time out of range"))?;
        GeneralizedTime::new(
            u16::try_from(t.year()).unwrap_or(1970),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        )
        .map(GeneralizedTimeAsn1::from)
        .ok_or_else(|| KerberosError::token("time out of range"))
    }
}

pub(super) fn integer(value: i64) -> IntegerAsn1 {
    IntegerAsn1::from_bytes_be_signed(value.to_be_bytes().to_vec())
}

pub(super) fn integer_value(value: &IntegerAsn1) -> Result<i64, KerberosError> {
    let bytes = value.as_signed_bytes_be();
    if bytes.is_empty() || bytes.len() > 8 {
        return Err(KerberosError::token("integer out of range"));
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 8];
    full[8 - bytes.len()..].copy_from_slice(bytes);
    Ok(i64::from_be_bytes(full))
}

fn string(s: &str) -> Result<KerberosStringAsn1, KerberosError> {
    IA5String::from_string(s.to_owned())
        .map(KerberosStringAsn1::from)
        .map_err(|_| KerberosError::token(format!("{s:?} is not an ASCII name")))
}

fn principal_name(p: &Principal) -> Result<PrincipalName, KerberosError> {
    Ok(PrincipalName {
        name_type: ExplicitContextTag0::from(integer(i64::from(p.name_type))),
        name_string: ExplicitContextTag1::from(Asn1SequenceOf::from(
            p.components
                .iter()
                .map(|c| string(c))
                .collect::<Result<Vec<_>, _>>()?,
        )),
    })
}

fn flags(bits: u32) -> KerberosFlags {
    KerberosFlags::from(BitString::with_bytes(bits.to_be_bytes().to_vec()))
}

pub(super) fn encrypted(
    key: &SessionKey,
    usage: i32,
    plain: &[u8],
) -> Result<EncryptedData, KerberosError> {
    let cipher = cipher_suite(key.enctype)?.cipher();
    let sealed = cipher
        .encrypt(&key.value, usage, plain)
        .map_err(|e| KerberosError::token(format!("encrypting: {e}")))?;
    Ok(EncryptedData {
        etype: ExplicitContextTag0::from(integer(i64::from(key.enctype))),
        kvno: Optional::from(None),
        cipher: ExplicitContextTag2::from(OctetStringAsn1::from(sealed)),
    })
}

pub(super) fn decrypted(
    key: &SessionKey,
    usage: i32,
    data: &EncryptedData,
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, KerberosError> {
    let etype = integer_value(&data.etype.0)?;
    if etype != i64::from(key.enctype) {
        return Err(KerberosError::token(format!(
            "{what} is encrypted with type {etype}, the key is type {}",
            key.enctype
        )));
    }
    let cipher = cipher_suite(key.enctype)?.cipher();
    cipher
        .decrypt(&key.value, usage, &data.cipher.0.0)
        .map(Zeroizing::new)
        .map_err(|_| KerberosError::token(format!("{what} does not decrypt with the session key")))
}

pub(super) fn der<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, KerberosError> {
    picky_asn1_der::to_vec(value).map_err(|e| KerberosError::token(format!("encoding: {e}")))
}

fn session_key(key: &EncryptionKey) -> Result<SessionKey, KerberosError> {
    Ok(SessionKey {
        enctype: i32::try_from(integer_value(&key.key_type.0)?)
            .map_err(|_| KerberosError::token("bad key type"))?,
        value: Zeroizing::new(key.key_value.0.0.clone()),
    })
}

/// What goes into an authenticator besides the client's name and the time.
struct AuthenticatorParts {
    checksum: Option<(i32, Vec<u8>)>,
    subkey: Option<SessionKey>,
    sequence_number: Option<u32>,
}

fn authenticator(
    client: &Principal,
    now: KerberosTime,
    parts: AuthenticatorParts,
) -> Result<Authenticator, KerberosError> {
    Ok(Authenticator::from(AuthenticatorInner {
        authenticator_vno: ExplicitContextTag0::from(integer(5)),
        crealm: ExplicitContextTag1::from(string(&client.realm)?),
        cname: ExplicitContextTag2::from(principal_name(client)?),
        cksum: Optional::from(parts.checksum.map(|(kind, value)| {
            ExplicitContextTag3::from(Checksum {
                cksumtype: ExplicitContextTag0::from(integer(i64::from(kind))),
                checksum: ExplicitContextTag1::from(OctetStringAsn1::from(value)),
            })
        })),
        cusec: ExplicitContextTag4::from(integer(i64::from(now.micros))),
        ctime: ExplicitContextTag5::from(now.asn1()?),
        subkey: Optional::from(parts.subkey.map(|key| {
            picky_asn1::wrapper::ExplicitContextTag6::from(EncryptionKey {
                key_type: ExplicitContextTag0::from(integer(i64::from(key.enctype))),
                key_value: ExplicitContextTag1::from(OctetStringAsn1::from(key.value.to_vec())),
            })
        })),
        seq_number: Optional::from(
            parts
                .sequence_number
                .map(|n| ExplicitContextTag7::from(integer(i64::from(n)))),
        ),
        authorization_data: Optional::from(None),
    }))
}

fn ap_req(
    ticket: &[u8],
    key: &SessionKey,
    usage: i32,
    options: u32,
    authenticator: &Authenticator,
) -> Result<ApReq, KerberosError> {
    let ticket: Ticket = picky_asn1_der::from_bytes(ticket)
        .map_err(|e| KerberosError::token(format!("the cached ticket is not valid DER: {e}")))?;
    Ok(ApReq::from(ApReqInner {
        pvno: ExplicitContextTag0::from(integer(5)),
        msg_type: ExplicitContextTag1::from(integer(14)),
        ap_options: ExplicitContextTag2::from(flags(options)),
        ticket: ExplicitContextTag3::from(ticket),
        authenticator: ExplicitContextTag4::from(encrypted(
            key,
            usage,
            &Zeroizing::new(der(authenticator)?),
        )?),
    }))
}

/// A TGS request and what is needed to check its answer.
pub struct TgsRequest {
    /// The request, DER, without the TCP length prefix.
    pub bytes: Vec<u8>,
    nonce: u32,
    service: Principal,
}

/// Asks for a ticket to `service` with the ticket-granting ticket `tgt`.
pub fn tgs_request(
    tgt: &CachedTicket,
    service: &Principal,
    now: KerberosTime,
    nonce: u32,
) -> Result<TgsRequest, KerberosError> {
    let nonce = nonce & 0x7fff_ffff;
    let body = KdcReqBody {
        kdc_options: ExplicitContextTag0::from(flags(TGS_OPTIONS)),
        cname: Optional::from(None),
        realm: ExplicitContextTag2::from(string(&service.realm)?),
        sname: Optional::from(Some(ExplicitContextTag3::from(principal_name(service)?))),
        from: Optional::from(None),
        till: ExplicitContextTag5::from(
            KerberosTime {
                seconds: i64::from(tgt.end_time),
                micros: 0,
            }
            .asn1()?,
        ),
        rtime: Optional::from(None),
        nonce: ExplicitContextTag7::from(integer(i64::from(nonce))),
        etype: ExplicitContextTag8::from(Asn1SequenceOf::from(vec![integer(18), integer(17)])),
        addresses: Optional::from(None),
        enc_authorization_data: Optional::from(None),
        additional_tickets: Optional::from(None),
    };
    let checksum_type = match tgt.key.enctype {
        17 => HMAC_SHA1_96_AES128,
        _ => HMAC_SHA1_96_AES256,
    };
    let suite = cipher_suite(tgt.key.enctype)?.cipher().checksum_type();
    let checksum = suite
        .hasher()
        .checksum(&tgt.key.value, TGS_REQ_CHECKSUM, &der(&body)?)
        .map_err(|e| KerberosError::token(format!("checksum: {e}")))?;
    let authenticator = authenticator(
        &tgt.client,
        now,
        AuthenticatorParts {
            checksum: Some((checksum_type, checksum)),
            subkey: None,
            sequence_number: None,
        },
    )?;
    let ap_req = ap_req(
        &tgt.ticket,
        &tgt.key,
        TGS_REQ_AUTHENTICATOR,
        0,
        &authenticator,
    )?;
    let request = TgsReq::from(KdcReq {
        pvno: ExplicitContextTag1::from(integer(5)),
        msg_type: ExplicitContextTag2::from(integer(12)),
        padata: Optional::from(Some(ExplicitContextTag3::from(Asn1SequenceOf::from(vec![
            PaData {
                padata_type: ExplicitContextTag1::from(integer(1)),
                padata_data: ExplicitContextTag2::from(OctetStringAsn1::from(der(&ap_req)?)),
            },
        ])))),
        req_body: ExplicitContextTag4::from(body),
    });
    Ok(TgsRequest {
        bytes: der(&request)?,
        nonce,
        service: service.clone(),
    })
}

/// A ticket for the service, from the TGS exchange or the cache.
#[derive(Clone, Debug)]
pub struct ServiceTicket {
    /// The client.
    pub client: Principal,
    /// The ticket, DER.
    pub ticket: Vec<u8>,
    /// The session key shared with the service.
    pub key: SessionKey,
    /// End of validity, seconds since 1970.
    pub end_time: i64,
}

impl From<&CachedTicket> for ServiceTicket {
    fn from(t: &CachedTicket) -> Self {
        Self {
            client: t.client.clone(),
            ticket: t.ticket.clone(),
            key: t.key.clone(),
            end_time: i64::from(t.end_time),
        }
    }
}

/// Reads the KDC's answer to `request`: the service ticket, or the KDC's refusal in plain words.
pub fn read_tgs_reply(
    request: &TgsRequest,
    tgt: &CachedTicket,
    reply: &[u8],
) -> Result<ServiceTicket, KerberosError> {
    if let Ok(error) = picky_asn1_der::from_bytes::<KrbError>(reply) {
        return Err(KerberosError::from_krb_error(
            error.0.error_code.0,
            &request.service,
        ));
    }
    let reply: TgsRep = picky_asn1_der::from_bytes(reply)
        .map_err(|e| KerberosError::token(format!("the KDC's answer is not a TGS-REP: {e}")))?;
    let part = decrypted(
        &tgt.key,
        TGS_REP_SESSION_KEY,
        &reply.0.enc_part.0,
        "the TGS-REP",
    )?;
    let part: EncTgsRepPart = picky_asn1_der::from_bytes(&part)
        .map_err(|e| KerberosError::token(format!("the TGS-REP's encrypted part: {e}")))?;
    if integer_value(&part.0.nonce.0)? != i64::from(request.nonce) {
        return Err(KerberosError::token(
            "the TGS-REP answers another request (nonce mismatch)",
        ));
    }
    let sname: Vec<String> = part
        .0
        .sname
        .0
        .name_string
        .0
        .0
        .iter()
        .map(|c| c.to_string())
        .collect();
    let same = sname.len() == request.service.components.len()
        && sname
            .iter()
            .zip(&request.service.components)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !same {
        return Err(match sname.as_slice() {
            [tgs, realm] if tgs == "krbtgt" => KerberosError::token(format!(
                "the KDC refers {} to realm {realm}; following referrals across realms is not \
                 supported: kinit in that realm, or give the SPN as HTTP/host@{realm}",
                request.service
            )),
            _ => KerberosError::token(format!(
                "the KDC answered with a ticket for {} instead of {}",
                sname.join("/"),
                request.service
            )),
        });
    }
    let end = &part.0.end_time.0.0;
    let end_time = time::Date::from_calendar_date(
        i32::from(end.year()),
        time::Month::try_from(end.month()).unwrap_or(time::Month::January),
        end.day(),
    )
    .ok()
    .and_then(|d| d.with_hms(end.hour(), end.minute(), end.second()).ok())
    .map(|t| t.assume_utc().unix_timestamp())
    .unwrap_or(0);
    Ok(ServiceTicket {
        client: tgt.client.clone(),
        ticket: der(&reply.0.ticket.0)?,
        key: session_key(&part.0.key.0)?,
        end_time,
    })
}

/// An AP-REQ for the service and what is needed to check the AP-REP.
pub struct ApRequest {
    /// The AP-REQ, DER.
    pub bytes: Vec<u8>,
    now: KerberosTime,
}

/// Presents `ticket` to the service with a fresh subkey and initial sequence number, and the
/// GSS-API checksum (flags and channel bindings).
pub fn ap_request(
    ticket: &ServiceTicket,
    now: KerberosTime,
    subkey: SessionKey,
    sequence_number: u32,
    gss_checksum: Vec<u8>,
) -> Result<ApRequest, KerberosError> {
    let authenticator = authenticator(
        &ticket.client,
        now,
        AuthenticatorParts {
            checksum: Some((GSS_CHECKSUM_TYPE, gss_checksum)),
            subkey: Some(subkey),
            sequence_number: Some(sequence_number),
        },
    )?;
    let request = ap_req(
        &ticket.ticket,
        &ticket.key,
        AP_REQ_AUTHENTICATOR,
        AP_OPTIONS,
        &authenticator,
    )?;
    Ok(ApRequest {
        bytes: der(&request)?,
        now,
    })
}

/// What the server's AP-REP establishes.
#[derive(Debug)]
pub struct ApReply {
    /// The acceptor's subkey, when it chose one.
    pub subkey: Option<SessionKey>,
    /// The acceptor's first sequence number.
    pub sequence_number: u32,
}

/// Checks the server's AP-REP: it must decrypt with the ticket's session key and echo our
/// authenticator's time (mutual authentication).
pub fn read_ap_reply(
    request: &ApRequest,
    ticket: &ServiceTicket,
    reply: &[u8],
) -> Result<ApReply, KerberosError> {
    let reply: ApRep = picky_asn1_der::from_bytes(reply)
        .map_err(|e| KerberosError::token(format!("the server's answer is not an AP-REP: {e}")))?;
    let part = decrypted(
        &ticket.key,
        AP_REP_PART,
        &reply.0.enc_part.0,
        "the server's AP-REP",
    )?;
    let part: EncApRepPart = picky_asn1_der::from_bytes(&part)
        .map_err(|e| KerberosError::token(format!("the AP-REP's encrypted part: {e}")))?;
    let expected = request.now.asn1()?;
    if part.0.ctime.0 != expected
        || integer_value(&part.0.cusec.0)? != i64::from(request.now.micros)
    {
        return Err(KerberosError::token(
            "the server's AP-REP does not echo our authenticator (mutual authentication failed)",
        ));
    }
    let subkey = match &part.0.subkey.0 {
        Some(key) => Some(session_key(&key.0)?),
        None => None,
    };
    let sequence_number = match &part.0.seq_number.0 {
        Some(n) => u32::try_from(integer_value(&n.0)? & 0xffff_ffff)
            .map_err(|_| KerberosError::token("bad sequence number"))?,
        None => 0,
    };
    Ok(ApReply {
        subkey,
        sequence_number,
    })
}

/// The error code of a KRB-ERROR a server sent instead of an AP-REP.
pub fn krb_error_code(message: &[u8]) -> Option<u32> {
    picky_asn1_der::from_bytes::<KrbError>(message)
        .ok()
        .map(|e| e.0.error_code.0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::kerberos::ccache::tests::{sample, user};

    /// A ticket as a KDC issues it (its encrypted part is opaque to the client).
    pub(crate) fn ticket_der() -> Vec<u8> {
        let ticket = Ticket::from(picky_krb::data_types::TicketInner {
            tkt_vno: ExplicitContextTag0::from(integer(5)),
            realm: ExplicitContextTag1::from(string("CORP.EXAMPLE").unwrap()),
            sname: ExplicitContextTag2::from(
                principal_name(&Principal::ticket_granting("CORP.EXAMPLE")).unwrap(),
            ),
            enc_part: ExplicitContextTag3::from(EncryptedData {
                etype: ExplicitContextTag0::from(integer(18)),
                kvno: Optional::from(Some(ExplicitContextTag1::from(integer(2)))),
                cipher: ExplicitContextTag2::from(OctetStringAsn1::from(vec![7; 64])),
            }),
        });
        der(&ticket).unwrap()
    }

    /// A KRB-ERROR, DER, as a KDC or a server sends it about `service`.
    pub(crate) fn krb_error(code: u32, service: &Principal) -> Vec<u8> {
        use picky_asn1::wrapper::{ExplicitContextTag6, ExplicitContextTag9, ExplicitContextTag10};
        let error = picky_krb::messages::KrbErrorInner {
            pvno: ExplicitContextTag0::from(integer(5)),
            msg_type: ExplicitContextTag1::from(integer(30)),
            ctime: Optional::from(None),
            cusec: Optional::from(None),
            stime: ExplicitContextTag4::from(KerberosTime::now().asn1().unwrap()),
            susec: ExplicitContextTag5::from(integer(0)),
            error_code: ExplicitContextTag6::from(code),
            crealm: Optional::from(None),
            cname: Optional::from(None),
            realm: ExplicitContextTag9::from(string(&service.realm).unwrap()),
            sname: ExplicitContextTag10::from(principal_name(service).unwrap()),
            e_text: Optional::from(None),
            e_data: Optional::from(None),
        };
        der(&KrbError::from(error)).unwrap()
    }

    #[test]
    fn integers_round_trip_including_the_sign_bit() {
        for v in [0, 5, 127, 128, 0x7fff_ffff, 0xffff_ffff, -1] {
            assert_eq!(integer_value(&integer(v)).unwrap(), v);
        }
    }

    #[test]
    fn a_tgs_request_carries_an_authenticator_the_kdc_can_decrypt() {
        let tgt = sample(1_900_000_000).tickets[0].clone();
        let service = Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE");
        let now = KerberosTime {
            seconds: 1_900_000_000,
            micros: 123_456,
        };
        let request = tgs_request(&tgt, &service, now, 0xdead_beef).unwrap();
        let parsed: TgsReq = picky_asn1_der::from_bytes(&request.bytes).unwrap();
        let body = &parsed.0.req_body.0;
        assert_eq!(integer_value(&body.nonce.0).unwrap(), 0x5ead_beef);
        let padata = &parsed.0.padata.0.as_ref().unwrap().0.0[0];
        let ap: ApReq = picky_asn1_der::from_bytes(&padata.padata_data.0.0).unwrap();
        let plain = decrypted(
            &tgt.key,
            TGS_REQ_AUTHENTICATOR,
            &ap.0.authenticator.0,
            "authenticator",
        )
        .unwrap();
        let authenticator: Authenticator = picky_asn1_der::from_bytes(&plain).unwrap();
        assert_eq!(
            authenticator.0.cname.0.name_string.0.0[0].to_string(),
            "alice"
        );
        let checksum = &authenticator.0.cksum.0.as_ref().unwrap().0;
        assert_eq!(integer_value(&checksum.cksumtype.0).unwrap(), 16);
        let expected = picky_krb::crypto::ChecksumSuite::HmacSha196Aes256
            .hasher()
            .checksum(&tgt.key.value, TGS_REQ_CHECKSUM, &der(body).unwrap())
            .unwrap();
        assert_eq!(
            checksum.checksum.0.0, expected,
            "keyed checksum of the body"
        );
    }

    /// A KDC's answer, issuing a ticket for `sname` (sealed with the TGT's key).
    fn tgs_reply(tgt: &CachedTicket, sname: &Principal, nonce: i64) -> Vec<u8> {
        use picky_asn1::wrapper::{ExplicitContextTag6, ExplicitContextTag9, ExplicitContextTag10};
        let now = KerberosTime::now();
        let part = EncTgsRepPart::from(picky_krb::messages::EncKdcRepPart {
            key: ExplicitContextTag0::from(EncryptionKey {
                key_type: ExplicitContextTag0::from(integer(18)),
                key_value: ExplicitContextTag1::from(OctetStringAsn1::from(vec![5; 32])),
            }),
            last_req: ExplicitContextTag1::from(Asn1SequenceOf::from(vec![])),
            nonce: ExplicitContextTag2::from(integer(nonce)),
            key_expiration: Optional::from(None),
            flags: ExplicitContextTag4::from(flags(0x40e1_0000)),
            auth_time: ExplicitContextTag5::from(now.asn1().unwrap()),
            start_time: Optional::from(None),
            end_time: ExplicitContextTag7::from(
                KerberosTime {
                    seconds: now.seconds + 3600,
                    micros: 0,
                }
                .asn1()
                .unwrap(),
            ),
            renew_till: Optional::from(None),
            srealm: ExplicitContextTag9::from(string(&sname.realm).unwrap()),
            sname: ExplicitContextTag10::from(principal_name(sname).unwrap()),
            caddr: Optional::from(None),
            encrypted_pa_data: Optional::from(None),
        });
        let reply = TgsRep::from(picky_krb::messages::KdcRep {
            pvno: ExplicitContextTag0::from(integer(5)),
            msg_type: ExplicitContextTag1::from(integer(13)),
            padata: Optional::from(None),
            crealm: ExplicitContextTag3::from(string("CORP.EXAMPLE").unwrap()),
            cname: ExplicitContextTag4::from(principal_name(&user()).unwrap()),
            ticket: picky_asn1::wrapper::ExplicitContextTag5::from(
                picky_asn1_der::from_bytes::<Ticket>(&ticket_der()).unwrap(),
            ),
            enc_part: ExplicitContextTag6::from(
                encrypted(&tgt.key, TGS_REP_SESSION_KEY, &der(&part).unwrap()).unwrap(),
            ),
        });
        der(&reply).unwrap()
    }

    #[test]
    fn a_tgs_reply_gives_the_service_ticket_and_nothing_else_is_taken_for_it() {
        let tgt = sample(1_900_000_000).tickets[0].clone();
        let service = Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE");
        let request = tgs_request(&tgt, &service, KerberosTime::now(), 77).unwrap();
        let canonical = Principal::service("http/FS01.corp.example", "CORP.EXAMPLE");
        let ticket = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &canonical, 77)).unwrap();
        assert_eq!(ticket.key.value.as_slice(), &[5; 32]);
        assert!(ticket.end_time > KerberosTime::now().seconds);

        let stale = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &service, 78));
        assert!(stale.unwrap_err().to_string().contains("nonce"));
        let referral = Principal::service("krbtgt/EMEA.CORP.EXAMPLE", "CORP.EXAMPLE");
        let e = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &referral, 77)).unwrap_err();
        assert!(e.to_string().contains("refers"), "{e}");
        let mut other_key = tgt.clone();
        other_key.key.value = Zeroizing::new(vec![2; 32]);
        assert!(
            read_tgs_reply(&request, &other_key, &tgs_reply(&tgt, &service, 77)).is_err(),
            "an answer not sealed with our TGT's key"
        );
    }

    #[test]
    fn kdc_refusals_are_explained_and_garbage_is_an_error() {
        let tgt = sample(1_900_000_000).tickets[0].clone();
        let service = Principal::service("HTTP/nowhere", "CORP.EXAMPLE");
        let request = tgs_request(&tgt, &service, KerberosTime::now(), 1).unwrap();
        let bytes = krb_error(7, &service);
        let e = read_tgs_reply(&request, &tgt, &bytes).unwrap_err();
        assert!(e.to_string().contains("service principal"), "{e}");
        assert_eq!(krb_error_code(&bytes), Some(7));
        for garbage in [&b""[..], b"\x6d\x03\x02\x01", &[0x30; 40]] {
            assert!(read_tgs_reply(&request, &tgt, garbage).is_err());
        }
    }
}
