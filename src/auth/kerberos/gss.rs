//! The Kerberos GSS-API mechanism (RFC 4121) around the Kerberos messages, with no I/O: token
//! framing, the authenticator checksum that carries the context flags and channel bindings,
//! and Wrap tokens for WinRM message encryption, laid out as Windows lays them out
//! (MS-KILE 3.4.5.4.1: EC 0, RRC 28, so the data part lines up with the plaintext).

use md5::{Digest, Md5};
use picky_krb::crypto::CipherSuite;

use super::KerberosError;
use crate::auth::framing::SealedPart;
use crate::auth::kerberos::ccache::SessionKey;

/// `1.2.840.113554.1.2.2`, the Kerberos 5 GSS-API mechanism, DER-encoded.
const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// `1.2.840.48018.1.2.2`, the same mechanism under the OID older Windows versions answer with.
const MS_KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

/// Token identifiers of the initial context tokens (RFC 4121 4.1).
pub const TOK_AP_REQ: [u8; 2] = [0x01, 0x00];
/// The acceptor's answer.
pub const TOK_AP_REP: [u8; 2] = [0x02, 0x00];
/// The acceptor's refusal.
pub const TOK_KRB_ERROR: [u8; 2] = [0x03, 0x00];

/// Context flags of the authenticator checksum (RFC 4121 4.1.1.1): mutual authentication,
/// replay and sequence detection, confidentiality and integrity.
pub const CONTEXT_FLAGS: u32 = 0x02 | 0x04 | 0x08 | 0x10 | 0x20;

/// The authenticator checksum type that carries GSS-API data.
pub const GSS_CHECKSUM_TYPE: i32 = 0x8003;

/// Key usages of Wrap tokens (RFC 4121 2).
const ACCEPTOR_SEAL: i32 = 22;
const INITIATOR_SEAL: i32 = 24;

/// Wrap token flags (RFC 4121 4.2.2).
const SENT_BY_ACCEPTOR: u8 = 0x01;
const SEALED: u8 = 0x02;
const ACCEPTOR_SUBKEY: u8 = 0x04;

/// The right rotation count Windows uses with confidentiality (MS-KILE 3.4.5.4.1).
const RRC: u16 = 28;
const HEADER_LEN: usize = 16;

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// `InitialContextToken` (RFC 2743 3.1): `[APPLICATION 0]` around the mechanism OID, the token
/// identifier and the Kerberos message.
pub fn context_token(token_id: [u8; 2], message: &[u8]) -> Vec<u8> {
    let inner_len = 2 + KRB5_OID.len() + 2 + message.len();
    let mut out = Vec::with_capacity(inner_len + 6);
    out.push(0x60);
    der_length(inner_len, &mut out);
    out.push(0x06);
    out.push(KRB5_OID.len() as u8);
    out.extend_from_slice(KRB5_OID);
    out.extend_from_slice(&token_id);
    out.extend_from_slice(message);
    out
}

/// Splits a context token into its token identifier and Kerberos message.
pub fn parse_context_token(token: &[u8]) -> Result<([u8; 2], &[u8]), KerberosError> {
    let malformed = |what: &str| KerberosError::token(format!("malformed context token: {what}"));
    let (&tag, rest) = token.split_first().ok_or_else(|| malformed("empty"))?;
    if tag != 0x60 {
        return Err(malformed("not an InitialContextToken"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(|| malformed("no length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(malformed("bad length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() != len {
        return Err(malformed("length does not match"));
    }
    let oid = match rest {
        [0x06, n, tail @ ..] if tail.len() >= usize::from(*n) => &tail[..usize::from(*n)],
        _ => return Err(malformed("no mechanism")),
    };
    if oid != KRB5_OID && oid != MS_KRB5_OID {
        return Err(malformed("not the Kerberos mechanism"));
    }
    let rest = &rest[2 + oid.len()..];
    if rest.len() < 2 {
        return Err(malformed("no token identifier"));
    }
    Ok(([rest[0], rest[1]], &rest[2..]))
}

/// The 24-byte authenticator checksum value (RFC 4121 4.1.1): the MD5 of the channel bindings
/// (zeros without them) and the context flags.
pub fn authenticator_checksum(channel_bindings: Option<&[u8]>, flags: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&16u32.to_le_bytes());
    match channel_bindings {
        None => out.extend_from_slice(&[0; 16]),
        Some(application_data) => {
            // gss_channel_bindings_struct, flattened: no initiator or acceptor address.
            let mut flat = vec![0u8; 16];
            flat.extend_from_slice(&(application_data.len() as u32).to_le_bytes());
            flat.extend_from_slice(application_data);
            out.extend_from_slice(&Md5::digest(&flat));
        }
    }
    out.extend_from_slice(&flags.to_le_bytes());
    out
}

/// The AES suite of an encryption type; anything else is refused (RC4 and DES use other token
/// formats, and Active Directory uses AES by default).
pub fn cipher_suite(enctype: i32) -> Result<CipherSuite, KerberosError> {
    match enctype {
        17 => Ok(CipherSuite::Aes128CtsHmacSha196),
        18 => Ok(CipherSuite::Aes256CtsHmacSha196),
        other => Err(KerberosError::token(format!(
            "encryption type {other} is not supported (only AES: 17, 18); ask for AES tickets \
             (kinit -e aes256-cts) or use a password"
        ))),
    }
}

/// Which side of the context this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The client.
    Initiator,
    /// The server.
    Acceptor,
}

/// Seals and unseals WinRM messages with an established context's key, checking sequence
/// numbers strictly: a message out of order or replayed is refused.
pub struct Sealer {
    role: Role,
    suite: CipherSuite,
    key: SessionKey,
    /// True when the key is the acceptor's subkey (then the flag says so).
    acceptor_subkey: bool,
    send_seq: u64,
    receive_seq: u64,
}

impl Sealer {
    /// A sealer for `role`, with the first sequence numbers each side announced.
    pub fn new(
        role: Role,
        key: SessionKey,
        acceptor_subkey: bool,
        send_seq: u64,
        receive_seq: u64,
    ) -> Result<Self, KerberosError> {
        Ok(Self {
            role,
            suite: cipher_suite(key.enctype)?,
            key,
            acceptor_subkey,
            send_seq,
            receive_seq,
        })
    }

    fn flags(&self, sender: Role) -> u8 {
        let mut flags = SEALED;
        if sender == Role::Acceptor {
            flags |= SENT_BY_ACCEPTOR;
        }
        if self.acceptor_subkey {
            flags |= ACCEPTOR_SUBKEY;
        }
        flags
    }

    fn usage(sender: Role) -> i32 {
        match sender {
            Role::Initiator => INITIATOR_SEAL,
            Role::Acceptor => ACCEPTOR_SEAL,
        }
    }

    /// A Wrap token with confidentiality, split where the plaintext begins.
    pub fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, KerberosError> {
        let cipher = self.suite.cipher();
        let mut header = [0u8; HEADER_LEN];
        header[0..2].copy_from_slice(&[0x05, 0x04]);
        header[2] = self.flags(self.role);
        header[3] = 0xff;
        // EC 0, RRC 0 in the encrypted copy.
        header[8..16].copy_from_slice(&self.send_seq.to_be_bytes());
        let mut payload = Vec::with_capacity(plaintext.len() + HEADER_LEN);
        payload.extend_from_slice(plaintext);
        payload.extend_from_slice(&header);
        let mut sealed = cipher
            .encrypt(&self.key.value, Self::usage(self.role), &payload)
            .map_err(|e| KerberosError::token(format!("sealing: {e}")))?;
        // confounder | data | header copy | checksum  ->  header copy | checksum | confounder | data
        let rotation = usize::from(RRC) % sealed.len();
        sealed.rotate_right(rotation);
        header[6..8].copy_from_slice(&RRC.to_be_bytes());
        self.send_seq += 1;
        let split = sealed.len() - plaintext.len();
        let mut token = header.to_vec();
        token.extend_from_slice(&sealed[..split]);
        Ok(SealedPart {
            original_length: plaintext.len(),
            header: token,
            data: sealed[split..].to_vec(),
        })
    }

    /// Checks and unseals the peer's Wrap token.
    pub fn unwrap(&mut self, part: &SealedPart) -> Result<Vec<u8>, KerberosError> {
        let bad = |what: &str| KerberosError::token(format!("unsealing: {what}"));
        if part.header.len() < HEADER_LEN {
            return Err(bad("the token is shorter than its header"));
        }
        let header = &part.header[..HEADER_LEN];
        let peer = match self.role {
            Role::Initiator => Role::Acceptor,
            Role::Acceptor => Role::Initiator,
        };
        if header[0..2] != [0x05, 0x04] || header[3] != 0xff {
            return Err(bad("not a Wrap token"));
        }
        let flags = header[2];
        if flags & SEALED == 0 {
            return Err(bad("the message is not encrypted"));
        }
        if (flags & SENT_BY_ACCEPTOR != 0) != (peer == Role::Acceptor) {
            return Err(bad("the token claims to come from the wrong side"));
        }
        let ec = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let rrc = usize::from(u16::from_be_bytes([header[6], header[7]]));
        let seq = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
        let mut sealed = Vec::with_capacity(part.header.len() - HEADER_LEN + part.data.len());
        sealed.extend_from_slice(&part.header[HEADER_LEN..]);
        sealed.extend_from_slice(&part.data);
        if sealed.is_empty() {
            return Err(bad("no data"));
        }
        // Windows rotates by RRC + EC (MS-KILE 3.4.5.4.1); with EC 0 that is RRC.
        let rotation = (rrc + ec) % sealed.len();
        sealed.rotate_left(rotation);
        let cipher = self.suite.cipher();
        let decrypted = cipher
            .decrypt(&self.key.value, Self::usage(peer), &sealed)
            .map_err(|_| bad("bad signature (the message was altered, or the key is wrong)"))?;
        if decrypted.len() < ec + HEADER_LEN {
            return Err(bad("too short"));
        }
        let plain_len = decrypted.len() - ec - HEADER_LEN;
        let (plaintext, rest) = decrypted.split_at(plain_len);
        let inner = &rest[ec..];
        // The encrypted copy carries RRC 0; everything else must match the clear header.
        if inner[..6] != header[..6] || inner[6..8] != [0, 0] || inner[8..] != header[8..] {
            return Err(bad("the header was altered"));
        }
        if seq != self.receive_seq {
            return Err(bad(&format!(
                "sequence number {seq}, expected {} (a replayed, lost or reordered message)",
                self.receive_seq
            )));
        }
        self.receive_seq += 1;
        if plaintext.len() != part.original_length {
            return Err(bad(&format!(
                "unsealed {} bytes but the message declares Length={}",
                plaintext.len(),
                part.original_length
            )));
        }
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn key(enctype: i32) -> SessionKey {
        let len = if enctype == 17 { 16 } else { 32 };
        SessionKey {
            enctype,
            value: Zeroizing::new((0..len as u8).collect()),
        }
    }

    fn pair(enctype: i32) -> (Sealer, Sealer) {
        (
            Sealer::new(Role::Initiator, key(enctype), true, 1000, 77).unwrap(),
            Sealer::new(Role::Acceptor, key(enctype), true, 77, 1000).unwrap(),
        )
    }

    #[test]
    fn both_sides_seal_and_unseal_in_order() {
        for enctype in [17, 18] {
            let (mut client, mut server) = pair(enctype);
            for message in [&b"<s:Envelope/>"[..], b"", &[0x42; 5000]] {
                let sealed = client.wrap(message).unwrap();
                assert_eq!(sealed.header.len(), 60, "header, trailer and confounder");
                assert_eq!(sealed.data.len(), message.len());
                assert_eq!(&sealed.header[..4], &[0x05, 0x04, 0x06, 0xff]);
                assert_eq!(&sealed.header[6..8], &[0, 28]);
                if message.len() > 4 {
                    assert_ne!(sealed.data, message);
                }
                assert_eq!(server.unwrap(&sealed).unwrap(), message);
                let answer = server.wrap(b"answer").unwrap();
                assert_eq!(answer.header[2], 0x07, "sent by the acceptor");
                assert_eq!(client.unwrap(&answer).unwrap(), b"answer");
            }
        }
    }

    #[test]
    fn tampering_replay_reordering_and_reflection_are_refused() {
        let (mut client, mut server) = pair(18);
        let first = client.wrap(b"one").unwrap();
        let second = client.wrap(b"two").unwrap();
        let mut altered = first.clone();
        altered.data[0] ^= 1;
        assert!(server.unwrap(&altered).is_err());
        let mut altered_seq = first.clone();
        altered_seq.header[15] ^= 1;
        assert!(server.unwrap(&altered_seq).is_err(), "header checked");
        assert!(server.unwrap(&second).is_err(), "out of order");
        server.unwrap(&first).unwrap();
        assert!(server.unwrap(&first).is_err(), "replayed");
        let reflected = client.wrap(b"mine").unwrap();
        assert!(
            client.unwrap(&reflected).is_err(),
            "our own token sent back"
        );
        let mut wrong_length = client.wrap(b"x").unwrap();
        wrong_length.original_length = 2;
        server.unwrap(&second).unwrap();
        server.unwrap(&reflected).unwrap();
        assert!(server.unwrap(&wrong_length).is_err());
        for header in [vec![], vec![5, 4], vec![0xff; 16], vec![0; 100]] {
            let part = SealedPart {
                original_length: 0,
                header,
                data: vec![],
            };
            assert!(server.unwrap(&part).is_err());
        }
    }

    #[test]
    fn rc4_and_des_are_refused_with_a_reason() {
        let e = Sealer::new(Role::Initiator, key(23), false, 0, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("only AES"), "{e}");
    }

    #[test]
    fn context_tokens_round_trip_and_reject_garbage() {
        let token = context_token(TOK_AP_REQ, &[0x30; 300]);
        assert_eq!(&token[..4], &[0x60, 0x82, 0x01, 0x39]);
        let (id, message) = parse_context_token(&token).unwrap();
        assert_eq!(id, TOK_AP_REQ);
        assert_eq!(message, &[0x30; 300][..]);
        for cut in 0..token.len() {
            assert!(parse_context_token(&token[..cut]).is_err());
        }
        let mut other_mech = token.clone();
        other_mech[6] ^= 1;
        assert!(parse_context_token(&other_mech).is_err());
    }

    #[test]
    fn the_checksum_carries_flags_and_bindings() {
        let plain = authenticator_checksum(None, CONTEXT_FLAGS);
        assert_eq!(plain.len(), 24);
        assert_eq!(&plain[..4], &[16, 0, 0, 0]);
        assert_eq!(&plain[4..20], &[0; 16]);
        assert_eq!(&plain[20..], &[0x3e, 0, 0, 0]);
        let bound = authenticator_checksum(Some(b"tls-server-end-point:abc"), CONTEXT_FLAGS);
        assert_ne!(&bound[4..20], &[0; 16]);
    }
}
