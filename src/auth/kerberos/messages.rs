//! The Kerberos messages of a client (RFC 4120), with no I/O: the AS exchange that turns a
//! password or a long-term key into a ticket-granting ticket, the TGS exchange that turns that
//! into a service ticket, and the AP exchange that presents it to the server. Encoding is
//! picky-krb's; which fields are filled, and what is checked in the answers, is decided here.

use picky_asn1::bit_string::BitString;
use picky_asn1::date::GeneralizedTime;
use picky_asn1::restricted_string::IA5String;
use picky_asn1::wrapper::GeneralizedTimeAsn1 as Asn1Time;
use picky_asn1::wrapper::{
    Asn1SequenceOf, ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2,
    ExplicitContextTag3, ExplicitContextTag4, ExplicitContextTag5, ExplicitContextTag7,
    ExplicitContextTag8, GeneralizedTimeAsn1, IntegerAsn1, OctetStringAsn1, Optional,
};
use picky_krb::data_types::{
    Authenticator, AuthenticatorInner, Checksum, EncApRepPart, EncryptedData, EncryptionKey,
    EtypeInfo2, KerbPaPacRequest, KerberosFlags, KerberosStringAsn1, PaData, PaEncTsEnc,
    PrincipalName, Ticket,
};
use picky_krb::messages::{
    ApRep, ApReq, ApReqInner, AsRep, AsReq, EncAsRepPart, EncKdcRepPart, EncTgsRepPart, KdcReq,
    KdcReqBody, KrbError, TgsRep, TgsReq,
};
use zeroize::{Zeroize, Zeroizing};

use super::KerberosError;
use super::ccache::{CachedTicket, Principal, SessionKey};
use super::crypto;
use super::gss::GSS_CHECKSUM_TYPE;

/// Key usages (RFC 4120 7.5.1).
const PA_ENC_TIMESTAMP: i32 = 1;
const AS_REP_PART: i32 = 3;
const TGS_REQ_CHECKSUM: i32 = 6;
const TGS_REQ_AUTHENTICATOR: i32 = 7;
const TGS_REP_SESSION_KEY: i32 = 8;
const AP_REQ_AUTHENTICATOR: i32 = 11;
const AP_REP_PART: i32 = 12;

/// Pre-authentication data types (RFC 4120 7.5.2, MS-KILE 2.2.3).
const PA_TGS_REQ: i64 = 1;
const PA_ENC_TIMESTAMP_TYPE: i64 = 2;
const PA_ETYPE_INFO2: i64 = 19;
const PA_PAC_REQUEST: i64 = 128;

/// KDC_ERR_PREAUTH_REQUIRED.
const PREAUTH_REQUIRED: u32 = 25;

/// KDC options of AS and TGS requests: forwardable, renewable, canonicalize, renewable-ok.
const KDC_OPTIONS: u32 = 0x4081_0010;

/// The encryption types this client asks for, strongest first.
pub(crate) const ETYPES: [i32; 2] = [18, 17];
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
    let sealed = crypto::encrypt(key, usage, plain)?;
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
    crypto::decrypt(key, usage, &data.cipher.0.0)
        .map_err(|_| KerberosError::token(format!("{what} does not decrypt with the expected key")))
}

pub(super) fn der<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, KerberosError> {
    picky_asn1_der::to_vec(value).map_err(|e| KerberosError::token(format!("encoding: {e}")))
}

/// A decoded message part that holds key material, wiped when dropped: picky-krb's types do
/// not zeroize, and a session key or subkey must not outlive its use in freed memory.
pub(super) struct Wiped<T: HoldsKeys> {
    inner: T,
}

impl<T: HoldsKeys> Wiped<T> {
    fn new(inner: T) -> Self {
        Self { inner }
    }
}

impl<T: HoldsKeys> std::ops::Deref for Wiped<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: HoldsKeys> Drop for Wiped<T> {
    fn drop(&mut self) {
        self.inner.wipe();
    }
}

/// Parts whose keys [`Wiped`] zeroes.
pub(super) trait HoldsKeys {
    fn wipe(&mut self);
}

impl HoldsKeys for EncKdcRepPart {
    fn wipe(&mut self) {
        self.key.0.key_value.0.0.zeroize();
    }
}

impl HoldsKeys for EncApRepPart {
    fn wipe(&mut self) {
        if let Some(key) = self.0.subkey.0.as_mut() {
            key.0.key_value.0.0.zeroize();
        }
    }
}

impl HoldsKeys for Authenticator {
    fn wipe(&mut self) {
        if let Some(key) = self.0.subkey.0.as_mut() {
            key.0.key_value.0.0.zeroize();
        }
    }
}

fn session_key(key: &EncryptionKey) -> Result<SessionKey, KerberosError> {
    let enctype = i32::try_from(integer_value(&key.key_type.0)?)
        .map_err(|_| KerberosError::token("bad key type"))?;
    SessionKey::new(enctype, key.key_value.0.0.clone())
}

fn encryption_key(key: &SessionKey) -> EncryptionKey {
    EncryptionKey {
        key_type: ExplicitContextTag0::from(integer(i64::from(key.enctype))),
        key_value: ExplicitContextTag1::from(OctetStringAsn1::from(key.bytes.to_vec())),
    }
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
) -> Result<Wiped<Authenticator>, KerberosError> {
    Ok(Wiped::new(Authenticator::from(AuthenticatorInner {
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
        subkey: Optional::from(
            parts
                .subkey
                .map(|key| picky_asn1::wrapper::ExplicitContextTag6::from(encryption_key(&key))),
        ),
        seq_number: Optional::from(
            parts
                .sequence_number
                .map(|n| ExplicitContextTag7::from(integer(i64::from(n)))),
        ),
        authorization_data: Optional::from(None),
    })))
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

/// A ticket with its session key: a ticket-granting ticket or a service ticket, from the AS or
/// TGS exchange or from a credential cache.
#[derive(Clone, Debug)]
pub(crate) struct Credential {
    /// The client.
    pub client: Principal,
    /// The service the ticket opens.
    pub server: Principal,
    /// The ticket, DER.
    pub ticket: Vec<u8>,
    /// The session key shared with the service.
    pub key: SessionKey,
    /// End of validity, seconds since 1970.
    pub end_time: i64,
}

impl Credential {
    /// True when the ticket has at least `margin` seconds of validity left at `now`.
    pub(crate) fn valid_for(&self, now: i64, margin: i64) -> bool {
        self.end_time - now > margin
    }
}

impl From<&CachedTicket> for Credential {
    fn from(t: &CachedTicket) -> Self {
        Self {
            client: t.client.clone(),
            server: t.server.clone(),
            ticket: t.ticket.clone(),
            key: t.key.clone(),
            end_time: i64::from(t.end_time),
        }
    }
}

fn request_body(
    client: Option<&Principal>,
    service: &Principal,
    till: KerberosTime,
    nonce: u32,
    etypes: &[i32],
) -> Result<KdcReqBody, KerberosError> {
    Ok(KdcReqBody {
        kdc_options: ExplicitContextTag0::from(flags(KDC_OPTIONS)),
        cname: Optional::from(match client {
            Some(client) => Some(picky_asn1::wrapper::ExplicitContextTag1::from(
                principal_name(client)?,
            )),
            None => None,
        }),
        realm: ExplicitContextTag2::from(string(&service.realm)?),
        sname: Optional::from(Some(ExplicitContextTag3::from(principal_name(service)?))),
        from: Optional::from(None),
        till: ExplicitContextTag5::from(till.asn1()?),
        rtime: Optional::from(None),
        nonce: ExplicitContextTag7::from(integer(i64::from(nonce))),
        etype: ExplicitContextTag8::from(Asn1SequenceOf::from(
            etypes
                .iter()
                .map(|e| integer(i64::from(*e)))
                .collect::<Vec<_>>(),
        )),
        addresses: Optional::from(None),
        enc_authorization_data: Optional::from(None),
        additional_tickets: Optional::from(None),
    })
}

fn pa_data(kind: i64, value: Vec<u8>) -> PaData {
    PaData {
        padata_type: ExplicitContextTag1::from(integer(kind)),
        padata_data: ExplicitContextTag2::from(OctetStringAsn1::from(value)),
    }
}

fn time_of(t: &Asn1Time) -> i64 {
    let t = &t.0;
    time::Date::from_calendar_date(
        i32::from(t.year()),
        time::Month::try_from(t.month()).unwrap_or(time::Month::January),
        t.day(),
    )
    .ok()
    .and_then(|d| d.with_hms(t.hour(), t.minute(), t.second()).ok())
    .map(|t| t.assume_utc().unix_timestamp())
    .unwrap_or(0)
}

fn principal_of(name: &PrincipalName, realm: &str) -> Result<Principal, KerberosError> {
    Ok(Principal {
        name_type: i32::try_from(integer_value(&name.name_type.0)?).unwrap_or(1),
        realm: realm.to_owned(),
        components: name.name_string.0.0.iter().map(|c| c.to_string()).collect(),
    })
}

/// Checks the encrypted part of a KDC reply: the nonce must be ours; gives the credential.
fn credential_from(
    part: &EncKdcRepPart,
    nonce: u32,
    client: Principal,
    ticket: &Ticket,
) -> Result<Credential, KerberosError> {
    if integer_value(&part.nonce.0)? != i64::from(nonce) {
        return Err(KerberosError::token(
            "the KDC's reply answers another request (nonce mismatch)",
        ));
    }
    Ok(Credential {
        client,
        server: principal_of(&part.sname.0, &part.srealm.0.to_string())?,
        ticket: der(ticket)?,
        key: session_key(&part.key.0)?,
        end_time: time_of(&part.end_time.0),
    })
}

/// A KRB-ERROR, if that is what the bytes are.
pub(crate) fn krb_error(reply: &[u8]) -> Option<KrbError> {
    picky_asn1_der::from_bytes::<KrbError>(reply).ok()
}

/// How a password becomes a key for one encryption type (PA-ETYPE-INFO2, RFC 4120 5.2.7.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EtypeInfo {
    pub etype: i32,
    /// The salt; the default (realm and name) when absent.
    pub salt: Option<Vec<u8>>,
    /// `s2kparams` as the KDC sent them (for AES, 4 bytes: the PBKDF2 iteration count); see
    /// [`iterations`] for what is accepted.
    pub s2kparams: Option<Vec<u8>>,
}

fn etype_info(padata: &[PaData]) -> Vec<EtypeInfo> {
    let Some(data) = padata
        .iter()
        .find(|p| integer_value(&p.padata_type.0).ok() == Some(PA_ETYPE_INFO2))
    else {
        return Vec::new();
    };
    let Ok(entries) = picky_asn1_der::from_bytes::<EtypeInfo2>(&data.padata_data.0.0) else {
        return Vec::new();
    };
    entries
        .0
        .iter()
        .filter_map(|e| {
            Some(EtypeInfo {
                etype: i32::try_from(integer_value(&e.etype.0).ok()?).ok()?,
                salt: e.salt.0.as_ref().map(|s| s.0.to_string().into_bytes()),
                s2kparams: e.s2kparams.0.as_ref().map(|p| p.0.0.clone()),
            })
        })
        .collect()
}

/// The PBKDF2 iteration count the AES string-to-key runs for, from the KDC's `s2kparams`
/// (4096 when absent), within MIT's bounds. The ETYPE-INFO2 that carries them is not
/// authenticated: a fake KDC that could lower the count would receive the encrypted timestamp
/// under a key that many times cheaper to guess, and one that raised it would stall the
/// client. Refused: anything but 4 bytes, 0 (which RFC 3962 reads as 2^32), fewer than 4,096
/// (the default, and the least MIT accepts) and 2^24 or more (MIT's ceiling).
pub(crate) fn iterations(s2kparams: Option<&[u8]>) -> Result<u32, KerberosError> {
    const LEAST: u32 = super::crypto::DEFAULT_ITERATIONS;
    const CEILING: u32 = 1 << 24;
    let Some(params) = s2kparams else {
        return Ok(LEAST);
    };
    let bytes = <[u8; 4]>::try_from(params).map_err(|_| {
        KerberosError::token(format!(
            "the KDC's s2kparams are {} bytes long; the AES string-to-key takes 4 (RFC 3962)",
            params.len()
        ))
    })?;
    match u32::from_be_bytes(bytes) {
        0 => Err(KerberosError::token(
            "the KDC asks for 0 key derivation iterations (2^32 by RFC 3962); refusing",
        )),
        n if n < LEAST => Err(KerberosError::token(format!(
            "the KDC asks for only {n} key derivation iterations (fewer than {LEAST} would make \
             the password's key cheaper to guess); refusing"
        ))),
        n if n >= CEILING => Err(KerberosError::token(format!(
            "the KDC asks for {n} key derivation iterations (2^24 or more); refusing"
        ))),
        n => Ok(n),
    }
}

/// The default salt of a principal: the realm, then the name components.
pub(crate) fn default_salt(client: &Principal) -> Vec<u8> {
    let mut salt = client.realm.clone().into_bytes();
    for c in &client.components {
        salt.extend_from_slice(c.as_bytes());
    }
    salt
}

/// An AS request and what is needed to read its answer.
pub(crate) struct AsRequest {
    /// The request, DER.
    pub bytes: Vec<u8>,
    nonce: u32,
    client: Principal,
}

/// Asks for a ticket-granting ticket for `client`, pre-authenticated with `preauth` (the
/// long-term key) when given.
pub(crate) fn as_request(
    client: &Principal,
    etypes: &[i32],
    preauth: Option<&SessionKey>,
    now: KerberosTime,
    nonce: u32,
) -> Result<AsRequest, KerberosError> {
    let nonce = nonce & 0x7fff_ffff;
    let till = KerberosTime {
        seconds: now.seconds + 24 * 3600,
        micros: 0,
    };
    let body = request_body(
        Some(client),
        &Principal::ticket_granting(&client.realm),
        till,
        nonce,
        etypes,
    )?;
    let mut padata = Vec::new();
    if let Some(key) = preauth {
        let timestamp = PaEncTsEnc {
            patimestamp: ExplicitContextTag0::from(now.asn1()?),
            pausec: Optional::from(Some(picky_asn1::wrapper::ExplicitContextTag1::from(
                integer(i64::from(now.micros)),
            ))),
        };
        let sealed = encrypted(key, PA_ENC_TIMESTAMP, &der(&timestamp)?)?;
        padata.push(pa_data(PA_ENC_TIMESTAMP_TYPE, der(&sealed)?));
    }
    let pac = KerbPaPacRequest {
        include_pac: ExplicitContextTag0::from(true),
    };
    padata.push(pa_data(PA_PAC_REQUEST, der(&pac)?));
    let request = AsReq::from(KdcReq {
        pvno: ExplicitContextTag1::from(integer(5)),
        msg_type: ExplicitContextTag2::from(integer(10)),
        padata: Optional::from(Some(ExplicitContextTag3::from(Asn1SequenceOf::from(
            padata,
        )))),
        req_body: ExplicitContextTag4::from(body),
    });
    Ok(AsRequest {
        bytes: der(&request)?,
        nonce,
        client: client.clone(),
    })
}

/// What the KDC said to an AS request.
pub(crate) enum AsReply {
    /// Pre-authentication is required, with these ways to turn the password into a key.
    PreauthRequired(Vec<EtypeInfo>),
    /// A ticket, still to be decrypted with the key its `etype_info` says how to make.
    Granted(Box<AsGrant>),
}

/// An AS-REP, before decryption.
pub(crate) struct AsGrant {
    reply: AsRep,
    /// The encryption type of the encrypted part.
    pub etype: i32,
    /// The salt and iterations the KDC gave, if any.
    pub etype_info: Vec<EtypeInfo>,
}

/// Reads the KDC's answer to an AS request; a refusal becomes an error in plain words.
pub(crate) fn read_as_reply(request: &AsRequest, reply: &[u8]) -> Result<AsReply, KerberosError> {
    if let Some(error) = krb_error(reply) {
        let code = error.0.error_code.0;
        if code == PREAUTH_REQUIRED {
            let methods = error
                .0
                .e_data
                .0
                .as_ref()
                .and_then(|d| picky_asn1_der::from_bytes::<Asn1SequenceOf<PaData>>(&d.0.0).ok())
                .map(|m| m.0)
                .unwrap_or_default();
            return Ok(AsReply::PreauthRequired(etype_info(&methods)));
        }
        return Err(KerberosError::from_krb_error(
            code,
            &Principal::ticket_granting(&request.client.realm),
        )
        .for_client(&request.client));
    }
    let reply: AsRep = picky_asn1_der::from_bytes(reply)
        .map_err(|e| KerberosError::token(format!("the KDC's answer is not an AS-REP: {e}")))?;
    let etype = i32::try_from(integer_value(&reply.0.enc_part.0.etype.0)?)
        .map_err(|_| KerberosError::token("bad encryption type"))?;
    let etype_info = reply
        .0
        .padata
        .0
        .as_ref()
        .map(|p| etype_info(&p.0.0))
        .unwrap_or_default();
    Ok(AsReply::Granted(Box::new(AsGrant {
        reply,
        etype,
        etype_info,
    })))
}

/// Decrypts an AS-REP with the client's long-term key and checks it answers `request`.
pub(crate) fn finish_as_reply(
    request: &AsRequest,
    grant: &AsGrant,
    key: &SessionKey,
) -> Result<Credential, KerberosError> {
    let part =
        decrypted(key, AS_REP_PART, &grant.reply.0.enc_part.0, "the AS-REP").map_err(|_| {
            KerberosError::rejected("the KDC's reply does not decrypt with this password or key")
        })?;
    // Some KDCs tag the AS reply's part as a TGS part; both carry the same fields.
    let part = Wiped::new(match picky_asn1_der::from_bytes::<EncAsRepPart>(&part) {
        Ok(p) => p.0,
        Err(_) => {
            picky_asn1_der::from_bytes::<EncTgsRepPart>(&part)
                .map_err(|e| KerberosError::token(format!("the AS-REP's encrypted part: {e}")))?
                .0
        }
    });
    let reply = &grant.reply.0;
    let client = principal_of(&reply.cname.0, &reply.crealm.0.to_string())?;
    // As MIT's verify_as_reply: the reply is for the client that asked, and its ticket is the
    // realm's ticket-granting ticket, inside and out.
    if !same_principal(&client, &request.client) {
        return Err(KerberosError::token(format!(
            "the KDC answered for {client}, not for {} who asked",
            request.client
        )));
    }
    let credential = credential_from(&part, request.nonce, client, &reply.ticket.0)?;
    let tgs = Principal::ticket_granting(&request.client.realm);
    if !same_principal(&credential.server, &tgs) {
        return Err(KerberosError::token(format!(
            "the KDC's AS reply is for {}, not the ticket-granting service {tgs}",
            credential.server
        )));
    }
    outer_ticket_is_for(&reply.ticket.0, &credential.server)?;
    Ok(credential)
}

/// Same principal: realms and name components compared without regard to ASCII case (AD
/// answers in the case it stores).
fn same_principal(a: &Principal, b: &Principal) -> bool {
    a.realm.eq_ignore_ascii_case(&b.realm)
        && a.components.len() == b.components.len()
        && a.components
            .iter()
            .zip(&b.components)
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The ticket's own (unencrypted) service name and realm agree with the encrypted part's.
fn outer_ticket_is_for(ticket: &Ticket, server: &Principal) -> Result<(), KerberosError> {
    let outer = principal_of(&ticket.0.sname.0, &ticket.0.realm.0.to_string())?;
    if same_principal(&outer, server) {
        Ok(())
    } else {
        Err(KerberosError::token(format!(
            "the KDC's ticket says it is for {outer}, its encrypted part for {server}"
        )))
    }
}

/// A TGS request and what is needed to check its answer.
pub(crate) struct TgsRequest {
    /// The request, DER, without the TCP length prefix.
    pub bytes: Vec<u8>,
    nonce: u32,
    service: Principal,
}

/// Asks for a ticket to `service` with the ticket-granting ticket `tgt`.
pub(crate) fn tgs_request(
    tgt: &Credential,
    service: &Principal,
    now: KerberosTime,
    nonce: u32,
) -> Result<TgsRequest, KerberosError> {
    let nonce = nonce & 0x7fff_ffff;
    let till = KerberosTime {
        seconds: tgt.end_time,
        micros: 0,
    };
    let body = request_body(None, service, till, nonce, &ETYPES)?;
    let checksum = crypto::checksum(&tgt.key, TGS_REQ_CHECKSUM, &der(&body)?)?;
    let authenticator = authenticator(
        &tgt.client,
        now,
        AuthenticatorParts {
            checksum: Some((crypto::checksum_type(tgt.key.enctype), checksum.to_vec())),
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
            pa_data(PA_TGS_REQ, der(&ap_req)?),
        ])))),
        req_body: ExplicitContextTag4::from(body),
    });
    Ok(TgsRequest {
        bytes: der(&request)?,
        nonce,
        service: service.clone(),
    })
}

/// Reads the KDC's answer to `request`: the service ticket, or the KDC's refusal in plain words.
pub(crate) fn read_tgs_reply(
    request: &TgsRequest,
    tgt: &Credential,
    reply: &[u8],
) -> Result<Credential, KerberosError> {
    if let Some(error) = krb_error(reply) {
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
    let part = Wiped::new(part.0);
    let credential = credential_from(&part, request.nonce, tgt.client.clone(), &reply.0.ticket.0)?;
    let sname = &credential.server.components;
    let same = sname.len() == request.service.components.len()
        && sname
            .iter()
            .zip(&request.service.components)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if same
        && !credential
            .server
            .realm
            .eq_ignore_ascii_case(&request.service.realm)
    {
        return Err(KerberosError::token(format!(
            "the KDC answered with a ticket of realm {} for {}",
            credential.server.realm, request.service
        )));
    }
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
    outer_ticket_is_for(&reply.0.ticket.0, &credential.server)?;
    Ok(credential)
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
    ticket: &Credential,
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
    ticket: &Credential,
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
    let part = Wiped::new(
        picky_asn1_der::from_bytes::<EncApRepPart>(&part)
            .map_err(|e| KerberosError::token(format!("the AP-REP's encrypted part: {e}")))?,
    );
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
        ticket_der_for(&Principal::ticket_granting("CORP.EXAMPLE"))
    }

    /// A ticket whose (unencrypted) service name and realm are `server`'s.
    pub(crate) fn ticket_der_for(server: &Principal) -> Vec<u8> {
        let ticket = Ticket::from(picky_krb::data_types::TicketInner {
            tkt_vno: ExplicitContextTag0::from(integer(5)),
            realm: ExplicitContextTag1::from(string(&server.realm).unwrap()),
            sname: ExplicitContextTag2::from(principal_name(server).unwrap()),
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
        let tgt = Credential::from(&sample(1_900_000_000).tickets[0]);
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
        let expected = crypto::checksum(&tgt.key, TGS_REQ_CHECKSUM, &der(body).unwrap()).unwrap();
        assert_eq!(
            checksum.checksum.0.0, expected,
            "keyed checksum of the body"
        );
    }

    /// A KDC's answer, issuing a ticket for `sname` (sealed with the TGT's key).
    fn tgs_reply(tgt: &Credential, sname: &Principal, nonce: i64) -> Vec<u8> {
        tgs_reply_with(tgt, sname, sname, nonce)
    }

    /// A TGS-REP whose encrypted part names `sname` and whose ticket says `outer`.
    fn tgs_reply_with(
        tgt: &Credential,
        sname: &Principal,
        outer: &Principal,
        nonce: i64,
    ) -> Vec<u8> {
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
                picky_asn1_der::from_bytes::<Ticket>(&ticket_der_for(outer)).unwrap(),
            ),
            enc_part: ExplicitContextTag6::from(
                encrypted(&tgt.key, TGS_REP_SESSION_KEY, &der(&part).unwrap()).unwrap(),
            ),
        });
        der(&reply).unwrap()
    }

    #[test]
    fn a_tgs_reply_gives_the_service_ticket_and_nothing_else_is_taken_for_it() {
        let tgt = Credential::from(&sample(1_900_000_000).tickets[0]);
        let service = Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE");
        let request = tgs_request(&tgt, &service, KerberosTime::now(), 77).unwrap();
        let canonical = Principal::service("http/FS01.corp.example", "CORP.EXAMPLE");
        let ticket = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &canonical, 77)).unwrap();
        assert_eq!(ticket.key.bytes.as_slice(), &[5; 32]);
        assert!(ticket.end_time > KerberosTime::now().seconds);

        let stale = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &service, 78));
        assert!(stale.unwrap_err().to_string().contains("nonce"));
        let referral = Principal::service("krbtgt/EMEA.CORP.EXAMPLE", "CORP.EXAMPLE");
        let e = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &referral, 77)).unwrap_err();
        assert!(e.to_string().contains("refers"), "{e}");
        // A ticket of another realm, or one whose own name is another service's.
        let elsewhere = Principal::service("HTTP/fs01.corp.example", "EVIL.EXAMPLE");
        let e = read_tgs_reply(&request, &tgt, &tgs_reply(&tgt, &elsewhere, 77)).unwrap_err();
        assert!(e.to_string().contains("of realm EVIL.EXAMPLE"), "{e}");
        let decoy = Principal::service("HTTP/evil.example", "CORP.EXAMPLE");
        let e = read_tgs_reply(&request, &tgt, &tgs_reply_with(&tgt, &service, &decoy, 77))
            .unwrap_err();
        assert!(e.to_string().contains("its encrypted part"), "{e}");
        let mut other_key = tgt.clone();
        other_key.key.bytes = Zeroizing::new(vec![2; 32]);
        assert!(
            read_tgs_reply(&request, &other_key, &tgs_reply(&tgt, &service, 77)).is_err(),
            "an answer not sealed with our TGT's key"
        );
    }

    /// The decoded parts that carry keys are wiped: the subkey of an authenticator we built,
    /// the session key of a KDC reply.
    #[test]
    fn decoded_key_material_is_wiped() {
        let subkey = SessionKey {
            enctype: 18,
            bytes: Zeroizing::new(vec![0x5a; 32]),
        };
        let mut built = authenticator(
            &user(),
            KerberosTime::now(),
            AuthenticatorParts {
                checksum: None,
                subkey: Some(subkey),
                sequence_number: Some(1),
            },
        )
        .unwrap();
        let key_of = |a: &Authenticator| a.0.subkey.0.as_ref().unwrap().0.key_value.0.0.clone();
        assert_eq!(key_of(&built), vec![0x5a; 32]);
        // zeroize writes zeros over the whole buffer, then empties the vector.
        built.inner.wipe();
        assert!(key_of(&built).is_empty());
        let tgt = Credential::from(&sample(1_900_000_000).tickets[0]);
        let service = Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE");
        let reply = tgs_reply(&tgt, &service, 77);
        let reply: TgsRep = picky_asn1_der::from_bytes(&reply).unwrap();
        let plain = decrypted(&tgt.key, TGS_REP_SESSION_KEY, &reply.0.enc_part.0, "x").unwrap();
        let mut part = picky_asn1_der::from_bytes::<EncTgsRepPart>(&plain)
            .unwrap()
            .0;
        assert_eq!(part.key.0.key_value.0.0, vec![5; 32]);
        part.wipe();
        assert!(part.key.0.key_value.0.0.is_empty());
    }

    proptest::proptest! {
        /// A TGS reply with any byte changed, or cut anywhere: never a panic; a cut one is
        /// always an error.
        #[test]
        fn hostile_tgs_replies_are_errors_not_panics(
            at in 0usize..4096,
            flip in 1u8..=255,
            cut in 0usize..4096,
        ) {
            let tgt = Credential::from(&sample(1_900_000_000).tickets[0]);
            let service = Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE");
            let request = tgs_request(&tgt, &service, KerberosTime::now(), 77).unwrap();
            let mut reply = tgs_reply(&tgt, &service, 77);
            let cut = cut % reply.len();
            proptest::prop_assert!(read_tgs_reply(&request, &tgt, &reply[..cut]).is_err());
            let at = at % reply.len();
            reply[at] ^= flip;
            let _ = read_tgs_reply(&request, &tgt, &reply);
        }
    }

    #[test]
    fn kdc_refusals_are_explained_and_garbage_is_an_error() {
        let tgt = Credential::from(&sample(1_900_000_000).tickets[0]);
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
