//! The Kerberos GSS-API mechanism (RFC 4121) around the Kerberos messages, with no I/O: token
//! framing, the authenticator checksum that carries the context flags and channel bindings,
//! Wrap tokens for WinRM message encryption, laid out as Windows lays them out (MS-KILE
//! 3.4.5.4.1: EC 0, RRC 28, so the data part lines up with the plaintext), and MIC tokens.
//!
//! Received Wrap tokens are opened in place where the layout is Windows's (the fast path every
//! large page takes) and through a copy otherwise; both check the HMAC, the header and the
//! sequence number strictly: a replayed, reordered, reflected or altered message is refused.

use std::ops::Range;

use subtle::ConstantTimeEq;

use super::KerberosError;
use super::ccache::SessionKey;
use super::crypto::{self, BLOCK, MAC_LEN, UsageKeys};
use crate::auth::channel_binding::gss_bindings_md5;
use crate::auth::der;
use crate::auth::framing::SealedPart;

/// `1.2.840.113554.1.2.2`, the Kerberos 5 GSS-API mechanism, DER content of the OID.
pub(crate) const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// `1.2.840.48018.1.2.2`, the same mechanism under the OID older Windows versions answer with.
pub(crate) const MS_KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

/// Token identifiers of the initial context tokens (RFC 4121 4.1).
pub(crate) const TOK_AP_REQ: [u8; 2] = [0x01, 0x00];
/// The acceptor's answer.
pub(crate) const TOK_AP_REP: [u8; 2] = [0x02, 0x00];
/// The acceptor's refusal.
pub(crate) const TOK_KRB_ERROR: [u8; 2] = [0x03, 0x00];

/// Context flags of the authenticator checksum (RFC 4121 4.1.1.1): mutual authentication,
/// replay and sequence detection, confidentiality and integrity.
pub(crate) const CONTEXT_FLAGS: u32 = 0x02 | 0x04 | 0x08 | 0x10 | 0x20;

/// The authenticator checksum type that carries GSS-API data.
pub(crate) const GSS_CHECKSUM_TYPE: i32 = 0x8003;

/// Key usages of Wrap and MIC tokens (RFC 4121 2).
const ACCEPTOR_SEAL: i32 = 22;
const ACCEPTOR_SIGN: i32 = 23;
const INITIATOR_SEAL: i32 = 24;
const INITIATOR_SIGN: i32 = 25;

/// Token flags (RFC 4121 4.2.2).
const SENT_BY_ACCEPTOR: u8 = 0x01;
const SEALED: u8 = 0x02;
const ACCEPTOR_SUBKEY: u8 = 0x04;

/// The right rotation count Windows uses with confidentiality (MS-KILE 3.4.5.4.1).
const RRC: u16 = 28;
const HEADER_LEN: usize = 16;
/// The security header of a Wrap token in Windows's layout: token header, the rotated trailer
/// (last cipher block and HMAC) and the confounder.
pub(crate) const WINDOWS_HEADER_LEN: usize = HEADER_LEN + RRC as usize + BLOCK;

/// `InitialContextToken` (RFC 2743 3.1): `[APPLICATION 0]` around the mechanism OID, the token
/// identifier and the Kerberos message.
pub(crate) fn context_token(token_id: [u8; 2], message: &[u8]) -> Vec<u8> {
    let mut inner = der::tlv(0x06, KRB5_OID);
    inner.extend_from_slice(&token_id);
    inner.extend_from_slice(message);
    der::tlv(0x60, &inner)
}

/// Splits a context token into its token identifier and Kerberos message.
pub(crate) fn parse_context_token(token: &[u8]) -> Result<([u8; 2], &[u8]), KerberosError> {
    let malformed = |what: &str| KerberosError::token(format!("malformed context token: {what}"));
    let (tag, content, rest) = der::read(token).ok_or_else(|| malformed("bad length"))?;
    if tag != 0x60 {
        return Err(malformed("not an InitialContextToken"));
    }
    if !rest.is_empty() {
        return Err(malformed("length does not match"));
    }
    let (tag, oid, rest) = der::read(content).ok_or_else(|| malformed("no mechanism"))?;
    if tag != 0x06 || (oid != KRB5_OID && oid != MS_KRB5_OID) {
        return Err(malformed("not the Kerberos mechanism"));
    }
    match rest {
        [a, b, message @ ..] => Ok(([*a, *b], message)),
        _ => Err(malformed("no token identifier")),
    }
}

/// The 24-byte authenticator checksum value (RFC 4121 4.1.1): the MD5 of the channel bindings
/// (zeros without them) and the context flags.
pub(crate) fn authenticator_checksum(channel_bindings: Option<&[u8]>, flags: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&16u32.to_le_bytes());
    match channel_bindings {
        None => out.extend_from_slice(&[0; 16]),
        Some(application_data) => out.extend_from_slice(&gss_bindings_md5(application_data)),
    }
    out.extend_from_slice(&flags.to_le_bytes());
    out
}

/// Which side of the context this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The client.
    Initiator,
    /// The server.
    Acceptor,
}

impl Role {
    fn peer(self) -> Role {
        match self {
            Role::Initiator => Role::Acceptor,
            Role::Acceptor => Role::Initiator,
        }
    }

    fn seal_usage(self) -> i32 {
        match self {
            Role::Initiator => INITIATOR_SEAL,
            Role::Acceptor => ACCEPTOR_SEAL,
        }
    }

    fn sign_usage(self) -> i32 {
        match self {
            Role::Initiator => INITIATOR_SIGN,
            Role::Acceptor => ACCEPTOR_SIGN,
        }
    }
}

fn bad(what: &str) -> KerberosError {
    KerberosError::token(format!("unsealing: {what}"))
}

/// Seals and unseals messages with an established context's key, checking sequence numbers
/// strictly. The derived keys are computed once, when the context is established.
pub(crate) struct Sealer {
    role: Role,
    key: SessionKey,
    outgoing: UsageKeys,
    incoming: UsageKeys,
    /// True when the key is the acceptor's subkey (then the flag says so).
    acceptor_subkey: bool,
    send_seq: u64,
    receive_seq: u64,
}

impl Sealer {
    /// A sealer for `role`, with the first sequence numbers each side announced.
    pub(crate) fn new(
        role: Role,
        key: SessionKey,
        acceptor_subkey: bool,
        send_seq: u64,
        receive_seq: u64,
    ) -> Result<Self, KerberosError> {
        Ok(Self {
            outgoing: UsageKeys::new(&key, role.seal_usage())?,
            incoming: UsageKeys::new(&key, role.peer().seal_usage())?,
            role,
            key,
            acceptor_subkey,
            send_seq,
            receive_seq,
        })
    }

    fn flags(&self, sender: Role, sealed: bool) -> u8 {
        let mut flags = if sealed { SEALED } else { 0 };
        if sender == Role::Acceptor {
            flags |= SENT_BY_ACCEPTOR;
        }
        if self.acceptor_subkey {
            flags |= ACCEPTOR_SUBKEY;
        }
        flags
    }

    /// A Wrap token with confidentiality, split where the plaintext begins.
    pub(crate) fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, KerberosError> {
        let mut header = [0u8; HEADER_LEN];
        header[0..2].copy_from_slice(&[0x05, 0x04]);
        header[2] = self.flags(self.role, true);
        header[3] = 0xff;
        // EC 0; RRC 0 in the encrypted copy.
        header[8..16].copy_from_slice(&self.send_seq.to_be_bytes());
        let confounder = crate::auth::random_bytes(BLOCK).map_err(KerberosError::token)?;
        let mut stream = Vec::with_capacity(2 * BLOCK + plaintext.len() + MAC_LEN);
        stream.extend_from_slice(&confounder);
        stream.extend_from_slice(plaintext);
        stream.extend_from_slice(&header);
        let mac = self.outgoing.mac(&[&stream]);
        crypto::cts_encrypt(&self.outgoing.aes, &mut stream);
        stream.extend_from_slice(&mac);
        // confounder | data | header copy | checksum  ->  header copy | checksum | confounder | data
        stream.rotate_right(usize::from(RRC));
        header[6..8].copy_from_slice(&RRC.to_be_bytes());
        self.send_seq += 1;
        let split = stream.len() - plaintext.len();
        let mut token = header.to_vec();
        token.extend_from_slice(&stream[..split]);
        Ok(SealedPart {
            original_length: plaintext.len(),
            header: token,
            data: stream.split_off(split),
        })
    }

    /// Checks and unseals the peer's Wrap token: `header` is the security header of the
    /// framing, `data` the rest; returns where the plaintext lies in `data`.
    pub(crate) fn unwrap(
        &mut self,
        header: &[u8],
        data: &mut [u8],
    ) -> Result<Range<usize>, KerberosError> {
        if header.len() < HEADER_LEN {
            return Err(bad("the token is shorter than its header"));
        }
        let token: [u8; HEADER_LEN] = header[..HEADER_LEN].try_into().expect("16 bytes");
        if token[0..2] != [0x05, 0x04] || token[3] != 0xff {
            return Err(bad("not a Wrap token"));
        }
        let flags = token[2];
        if flags & SEALED == 0 {
            return Err(bad("the message is not encrypted"));
        }
        if (flags & SENT_BY_ACCEPTOR != 0) != (self.role.peer() == Role::Acceptor) {
            return Err(bad("the token claims to come from the wrong side"));
        }
        let ec = usize::from(u16::from_be_bytes([token[4], token[5]]));
        let rrc = usize::from(u16::from_be_bytes([token[6], token[7]]));
        let seq = u64::from_be_bytes(token[8..16].try_into().expect("8 bytes"));
        let (copy, plain) =
            if ec == 0 && rrc == usize::from(RRC) && header.len() == WINDOWS_HEADER_LEN {
                let copy = crypto::open_rotated_in_place(&self.incoming, header, data)?;
                (copy, 0..data.len())
            } else {
                self.unwrap_copying(header, data, ec, rrc)?
            };
        // The encrypted copy carries RRC 0; everything else must match the clear header.
        if copy[..6] != token[..6] || copy[6..8] != [0, 0] || copy[8..] != token[8..] {
            return Err(bad("the header was altered"));
        }
        if seq != self.receive_seq {
            return Err(bad(&format!(
                "sequence number {seq}, expected {} (a replayed, lost or reordered message)",
                self.receive_seq
            )));
        }
        self.receive_seq += 1;
        Ok(plain)
    }

    /// Any other layout: undo the rotation on a copy, decrypt, and put the plaintext back.
    fn unwrap_copying(
        &self,
        header: &[u8],
        data: &mut [u8],
        ec: usize,
        rrc: usize,
    ) -> Result<([u8; HEADER_LEN], Range<usize>), KerberosError> {
        let mut sealed = Vec::with_capacity(header.len() - HEADER_LEN + data.len());
        sealed.extend_from_slice(&header[HEADER_LEN..]);
        sealed.extend_from_slice(data);
        if sealed.len() < 2 * BLOCK + MAC_LEN + ec {
            return Err(bad("too short"));
        }
        // Windows rotates by RRC + EC (MS-KILE 3.4.5.4.1); with EC 0 that is RRC.
        let rotation = (rrc + ec) % sealed.len();
        sealed.rotate_left(rotation);
        let split = sealed.len() - MAC_LEN;
        let (ciphertext, mac) = sealed.split_at_mut(split);
        crypto::cts_decrypt(&self.incoming.aes, ciphertext);
        let expected = self.incoming.mac(&[ciphertext]);
        if !bool::from(expected.ct_eq(mac)) {
            return Err(bad(
                "bad signature (the message was altered, or the key is wrong)",
            ));
        }
        let plain = &ciphertext[BLOCK..ciphertext.len() - ec - HEADER_LEN];
        let copy: [u8; HEADER_LEN] = ciphertext[ciphertext.len() - HEADER_LEN..]
            .try_into()
            .expect("16 bytes");
        if plain.len() > data.len() {
            return Err(bad("the plaintext is longer than the message"));
        }
        data[..plain.len()].copy_from_slice(plain);
        Ok((copy, 0..plain.len()))
    }

    /// A MIC token over `message` (RFC 4121 4.2.6.1), as SPNEGO's mechListMIC needs.
    pub(crate) fn get_mic(&mut self, message: &[u8]) -> Result<Vec<u8>, KerberosError> {
        let mut header = [0xffu8; HEADER_LEN];
        header[0..2].copy_from_slice(&[0x04, 0x04]);
        header[2] = self.flags(self.role, false);
        header[8..16].copy_from_slice(&self.send_seq.to_be_bytes());
        let checksum = crypto::checksum(
            &self.key,
            self.role.sign_usage(),
            &[message, &header].concat(),
        )?;
        self.send_seq += 1;
        let mut token = header.to_vec();
        token.extend_from_slice(&checksum);
        Ok(token)
    }

    /// Checks the peer's MIC token over `message`.
    pub(crate) fn verify_mic(&mut self, message: &[u8], token: &[u8]) -> Result<(), KerberosError> {
        let invalid = |what: &str| KerberosError::token(format!("the server's MIC: {what}"));
        if token.len() != HEADER_LEN + MAC_LEN {
            return Err(invalid("wrong length"));
        }
        let (header, checksum) = token.split_at(HEADER_LEN);
        if header[0..2] != [0x04, 0x04] || header[3..8] != [0xff; 5] {
            return Err(invalid("not a MIC token"));
        }
        if (header[2] & SENT_BY_ACCEPTOR != 0) != (self.role.peer() == Role::Acceptor) {
            return Err(invalid("it claims to come from the wrong side"));
        }
        let expected = crypto::checksum(
            &self.key,
            self.role.peer().sign_usage(),
            &[message, header].concat(),
        )?;
        if !bool::from(expected.ct_eq(checksum)) {
            return Err(invalid("bad checksum"));
        }
        let seq = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        if seq != self.receive_seq {
            return Err(invalid("unexpected sequence number"));
        }
        self.receive_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(enctype: i32) -> SessionKey {
        let len = if enctype == 17 { 16 } else { 32 };
        SessionKey::new(enctype, (0..len as u8).collect::<Vec<u8>>()).unwrap()
    }

    fn pair(enctype: i32) -> (Sealer, Sealer) {
        (
            Sealer::new(Role::Initiator, key(enctype), true, 1000, 77).unwrap(),
            Sealer::new(Role::Acceptor, key(enctype), true, 77, 1000).unwrap(),
        )
    }

    fn open(sealer: &mut Sealer, part: &SealedPart) -> Result<Vec<u8>, KerberosError> {
        let mut data = part.data.clone();
        let range = sealer.unwrap(&part.header, &mut data)?;
        Ok(data[range].to_vec())
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
                assert_eq!(open(&mut server, &sealed).unwrap(), message);
                let answer = server.wrap(b"answer").unwrap();
                assert_eq!(answer.header[2], 0x07, "sent by the acceptor");
                assert_eq!(open(&mut client, &answer).unwrap(), b"answer");
            }
        }
    }

    /// How a Wrap token made by hand is laid out.
    #[derive(Clone, Copy)]
    struct Layout {
        ec: u16,
        rrc: u16,
        /// Changes the encrypted copy of the header (a forgery).
        alter_copy: fn(&mut [u8; HEADER_LEN]),
    }

    const WINDOWS: Layout = Layout {
        ec: 0,
        rrc: RRC,
        alter_copy: |_| {},
    };

    /// A Wrap token made by hand from `keys` (not by a [`Sealer`]): `flags`, sequence number
    /// `seq`, EC bytes of filler, rotated by RRC + EC as Windows does; split where the
    /// plaintext begins.
    fn wrap_by_hand(
        keys: &UsageKeys,
        flags: u8,
        seq: u64,
        layout: Layout,
        plain: &[u8],
    ) -> SealedPart {
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&[0x05, 0x04, flags, 0xff]);
        header[4..6].copy_from_slice(&layout.ec.to_be_bytes());
        header[8..16].copy_from_slice(&seq.to_be_bytes());
        let mut copy = header;
        (layout.alter_copy)(&mut copy);
        let mut stream = vec![3u8; BLOCK];
        stream.extend_from_slice(plain);
        stream.extend_from_slice(&vec![0xaa; usize::from(layout.ec)]);
        stream.extend_from_slice(&copy);
        let mac = keys.mac(&[&stream]);
        crypto::cts_encrypt(&keys.aes, &mut stream);
        stream.extend_from_slice(&mac);
        stream.rotate_right(usize::from(layout.rrc + layout.ec));
        header[6..8].copy_from_slice(&layout.rrc.to_be_bytes());
        let split = stream.len() - plain.len();
        let mut token = header.to_vec();
        token.extend_from_slice(&stream[..split]);
        SealedPart {
            original_length: plain.len(),
            header: token,
            data: stream[split..].to_vec(),
        }
    }

    /// The same token with the framing's split between security header and data elsewhere.
    fn split_at(part: &SealedPart, header_len: usize) -> SealedPart {
        let whole = [&part.header[..], &part.data].concat();
        SealedPart {
            original_length: part.original_length,
            header: whole[..header_len].to_vec(),
            data: whole[header_len..].to_vec(),
        }
    }

    /// Any EC and RRC (sspi and some MIT builds use EC 16; RRC 0 is no rotation), and any split
    /// between the framing's header and data after the token header: the in-place path takes
    /// only Windows's layout, the copy everything else.
    #[test]
    fn other_layouts_and_splits_open_through_a_copy() {
        let (client, mut server) = pair(18);
        let plain = b"<s:Envelope>other layout</s:Envelope>";
        let mut seq = 1000;
        for (ec, rrc) in [(0, RRC), (0, 0), (0, 12), (16, RRC), (16, 0)] {
            let layout = Layout { ec, rrc, ..WINDOWS };
            let natural = wrap_by_hand(&client.outgoing, 0x06, seq, layout, plain)
                .header
                .len();
            for header_len in [natural, HEADER_LEN, WINDOWS_HEADER_LEN] {
                let part = wrap_by_hand(&client.outgoing, 0x06, seq, layout, plain);
                let part = split_at(&part, header_len);
                assert_eq!(
                    open(&mut server, &part).unwrap(),
                    plain,
                    "EC {ec}, RRC {rrc}, header {header_len} of {natural}"
                );
                seq += 1;
            }
        }
    }

    /// The shortest token the copy takes holds a confounder, the header's copy, the checksum
    /// and EC bytes of filler, with an empty message; one byte less is "too short", before any
    /// decryption.
    #[test]
    fn the_shortest_token_opens_and_one_byte_less_is_too_short() {
        let (client, mut server) = pair(18);
        for (seq, ec) in [(1000, 0), (1001, 16)] {
            let layout = Layout {
                ec,
                rrc: 0,
                ..WINDOWS
            };
            let part = split_at(
                &wrap_by_hand(&client.outgoing, 0x06, seq, layout, b""),
                HEADER_LEN,
            );
            assert_eq!(part.data.len(), 2 * BLOCK + MAC_LEN + usize::from(ec));
            let mut short = part.clone();
            short.data.pop();
            let e = open(&mut server, &short).unwrap_err().to_string();
            assert!(e.contains("too short"), "EC {ec}: {e}");
            assert_eq!(open(&mut server, &part).unwrap(), b"", "EC {ec}");
        }
    }

    /// A token whose clear header is not a sealed Wrap token's, or whose encrypted copy of the
    /// header differs from the clear one in any field, is refused, and says why.
    #[test]
    fn the_header_of_a_wrap_token_is_checked_field_by_field() {
        let (client, mut server) = pair(18);
        let said =
            |part: &SealedPart, server: &mut Sealer| open(server, part).unwrap_err().to_string();
        let mut wrong_filler = wrap_by_hand(&client.outgoing, 0x06, 1000, WINDOWS, b"x");
        wrong_filler.header[3] = 0;
        assert!(said(&wrong_filler, &mut server).contains("not a Wrap token"));
        let unsealed = wrap_by_hand(&client.outgoing, 0x04, 1000, WINDOWS, b"x");
        assert!(said(&unsealed, &mut server).contains("the message is not encrypted"));
        let forgeries: [fn(&mut [u8; HEADER_LEN]); 3] = [
            |copy| copy[2] ^= SEALED,
            |copy| copy[6..8].copy_from_slice(&RRC.to_be_bytes()),
            |copy| copy[15] ^= 1,
        ];
        for alter_copy in forgeries {
            let layout = Layout {
                alter_copy,
                ..WINDOWS
            };
            let forged = wrap_by_hand(&client.outgoing, 0x06, 1000, layout, b"x");
            assert!(said(&forged, &mut server).contains("the header was altered"));
        }
        let sound = wrap_by_hand(&client.outgoing, 0x06, 1000, WINDOWS, b"x");
        assert_eq!(open(&mut server, &sound).unwrap(), b"x");
    }

    /// A MIC token over `mechTypes` made by hand with key usage `usage`; `alter` changes its
    /// header before the checksum is computed.
    fn mic_by_hand(usage: i32, flags: u8, seq: u64, alter: fn(&mut [u8; HEADER_LEN])) -> Vec<u8> {
        let mut header = [0xffu8; HEADER_LEN];
        header[..3].copy_from_slice(&[0x04, 0x04, flags]);
        header[8..].copy_from_slice(&seq.to_be_bytes());
        alter(&mut header);
        let checksum =
            crypto::checksum(&key(18), usage, &[&b"mechTypes"[..], &header].concat()).unwrap();
        [&header[..], &checksum].concat()
    }

    /// A MIC token with a sound checksum but a header that is not a MIC's, or that claims to
    /// come from the wrong side, is refused, and says why.
    #[test]
    fn the_header_of_a_mic_token_is_checked_field_by_field() {
        let (mut client, _) = pair(18);
        let refused = |token: Vec<u8>, client: &mut Sealer| {
            client
                .verify_mic(b"mechTypes", &token)
                .unwrap_err()
                .to_string()
        };
        let filler = mic_by_hand(23, 0x05, 77, |h| h[5] = 0);
        assert!(refused(filler, &mut client).contains("not a MIC token"));
        let not_mic = mic_by_hand(23, 0x05, 77, |h| h[0] = 0x05);
        assert!(refused(not_mic, &mut client).contains("not a MIC token"));
        let from_initiator = mic_by_hand(23, 0x04, 77, |_| {});
        assert!(refused(from_initiator, &mut client).contains("wrong side"));
        client
            .verify_mic(b"mechTypes", &mic_by_hand(23, 0x05, 77, |_| {}))
            .unwrap();
    }

    /// The key usages are RFC 4121's (section 2): the initiator seals with 24 and signs with
    /// 25, the acceptor seals with 22 and signs with 23. Tokens made here with those numbers,
    /// not through a sealer, open on the other side.
    #[test]
    fn the_key_usages_are_those_of_rfc_4121() {
        let (mut client, mut server) = pair(18);
        let usage = |n| UsageKeys::new(&key(18), n).unwrap();
        let from_client = wrap_by_hand(&usage(24), 0x06, 1000, WINDOWS, b"from the client");
        assert_eq!(open(&mut server, &from_client).unwrap(), b"from the client");
        let from_server = wrap_by_hand(&usage(22), 0x07, 77, WINDOWS, b"from the server");
        assert_eq!(open(&mut client, &from_server).unwrap(), b"from the server");
        let mic = |usage, flags, seq| mic_by_hand(usage, flags, seq, |_| {});
        client.verify_mic(b"mechTypes", &mic(23, 0x05, 78)).unwrap();
        server
            .verify_mic(b"mechTypes", &mic(25, 0x04, 1001))
            .unwrap();
    }

    #[test]
    fn tampering_replay_reordering_and_reflection_are_refused() {
        let (mut client, mut server) = pair(18);
        let first = client.wrap(b"one").unwrap();
        let second = client.wrap(b"two").unwrap();
        let mut altered = first.clone();
        altered.data[0] ^= 1;
        assert!(open(&mut server, &altered).is_err());
        let mut altered_seq = first.clone();
        altered_seq.header[15] ^= 1;
        assert!(open(&mut server, &altered_seq).is_err(), "header checked");
        // Each token is sound on its own: only the sequence number tells the order.
        let e = open(&mut server, &second).unwrap_err();
        assert!(
            e.to_string()
                .contains("sequence number 1001, expected 1000"),
            "out of order: {e}"
        );
        open(&mut server, &first).unwrap();
        let e = open(&mut server, &first).unwrap_err();
        assert!(
            e.to_string()
                .contains("sequence number 1000, expected 1001"),
            "replayed: {e}"
        );
        let reflected = client.wrap(b"mine").unwrap();
        assert!(
            open(&mut client, &reflected).is_err(),
            "our own token sent back"
        );
        for header in [vec![], vec![5, 4], vec![0xff; 16], vec![0; 100]] {
            let part = SealedPart {
                original_length: 0,
                header,
                data: vec![],
            };
            assert!(open(&mut server, &part).is_err());
        }
    }

    #[test]
    fn mic_tokens_verify_and_advance_the_sequence() {
        let (mut client, mut server) = pair(17);
        let mic = server.get_mic(b"mechTypes").unwrap();
        client.verify_mic(b"mechTypes", &mic).unwrap();
        assert!(client.verify_mic(b"mechTypes", &mic).is_err(), "replayed");
        let mine = client.get_mic(b"mechTypes").unwrap();
        assert!(server.verify_mic(b"other", &mine).is_err());
        let sealed = client.wrap(b"after the MIC").unwrap();
        assert!(
            open(&mut server, &sealed).is_err(),
            "the MIC used sequence 1000"
        );
    }

    #[test]
    fn rc4_and_des_are_refused_with_a_reason() {
        let rc4 = SessionKey {
            enctype: 23,
            bytes: zeroize::Zeroizing::new(vec![0; 16]),
        };
        let e = Sealer::new(Role::Initiator, rc4, false, 0, 0)
            .err()
            .unwrap();
        assert!(e.to_string().contains("RC4"), "{e}");
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
