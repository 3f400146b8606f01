//! The three NTLM messages (MS-NLMP 2.2.1) and the AV pairs of the target information
//! (2.2.2.1), encoded and parsed with every offset checked: a hostile or truncated token is an
//! error, never a panic or an allocation of its claimed size.
//!
//! Both directions are here; a build without the fixture server (feature `testing`) uses only
//! the client's half.
#![cfg_attr(
    not(any(test, feature = "testing", feature = "__internals")),
    allow(dead_code)
)]

use super::NtlmError;

/// `NTLMSSP\0`.
pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// Negotiate flags (MS-NLMP 2.2.2.5) this implementation uses.
pub(crate) mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// AV pair identifiers (MS-NLMP 2.2.2.1).
pub(crate) mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    pub const TARGET_NAME: u16 = 9;
    pub const CHANNEL_BINDINGS: u16 = 10;
    /// `MsvAvFlags` bit: the AUTHENTICATE message carries a MIC.
    pub const FLAG_MIC_PRESENT: u32 = 0x2;
}

/// Type numbers of the three messages.
const NEGOTIATE: u32 = 1;
const CHALLENGE: u32 = 2;
const AUTHENTICATE: u32 = 3;

/// The `Version` structure this implementation announces: Windows 10.0 build 20348, NTLM
/// revision 15.
pub(crate) const VERSION: [u8; 8] = [10, 0, 0x4c, 0x4f, 0, 0, 0, 15];

/// Where the MIC sits in an AUTHENTICATE message that carries a Version.
pub(crate) const MIC_OFFSET: usize = 72;

pub(crate) fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

pub(crate) fn from_utf16(bytes: &[u8]) -> Result<String, NtlmError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(NtlmError::malformed("a UTF-16 name has an odd length"));
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| NtlmError::malformed("a name is not valid UTF-16"))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, NtlmError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| NtlmError::malformed("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, NtlmError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| NtlmError::malformed("truncated"))
}

/// The payload a `(len, maxlen, offset)` field at `at` points to.
fn field(b: &[u8], at: usize) -> Result<&[u8], NtlmError> {
    let len = usize::from(u16_at(b, at)?);
    let offset = u32_at(b, at + 4)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(len)
        .and_then(|end| b.get(offset..end))
        .ok_or_else(|| NtlmError::malformed("a field points outside the message"))
}

fn header(b: &[u8], kind: u32) -> Result<(), NtlmError> {
    if b.get(..8) != Some(SIGNATURE.as_slice()) {
        return Err(NtlmError::malformed("not an NTLM message"));
    }
    let found = u32_at(b, 8)?;
    if found != kind {
        return Err(NtlmError::malformed(format!(
            "expected NTLM message type {kind}, got {found}"
        )));
    }
    Ok(())
}

/// A NEGOTIATE_MESSAGE announcing `flags`, with no domain or workstation (as Windows sends it
/// when it does not want to disclose them) and our Version.
pub(crate) fn negotiate(flags: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&NEGOTIATE.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&[0; 16]); // domain and workstation fields, empty
    out.extend_from_slice(&VERSION);
    out
}

/// The flags of a NEGOTIATE_MESSAGE (what an acceptor needs of it).
pub(crate) fn parse_negotiate(b: &[u8]) -> Result<u32, NtlmError> {
    header(b, NEGOTIATE)?;
    u32_at(b, 12)
}

/// What a CHALLENGE_MESSAGE says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_name: Vec<u8>,
    /// The raw AV pairs (`TargetInfo`).
    pub target_info: Vec<u8>,
    pub version: Option<[u8; 8]>,
}

pub(crate) fn parse_challenge(b: &[u8]) -> Result<Challenge, NtlmError> {
    header(b, CHALLENGE)?;
    let target_name = field(b, 12)?.to_vec();
    let flags = u32_at(b, 20)?;
    let server_challenge: [u8; 8] = b
        .get(24..32)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| NtlmError::malformed("truncated"))?;
    let target_info = if flags & flags::TARGET_INFO != 0 {
        field(b, 40)?.to_vec()
    } else {
        Vec::new()
    };
    // The Version follows the fixed fields when the flag says so and the payload starts after it.
    let version = (flags & flags::VERSION != 0)
        .then(|| b.get(48..56).and_then(|s| s.try_into().ok()))
        .flatten();
    AvPairs::parse(&target_info)?;
    Ok(Challenge {
        flags,
        server_challenge,
        target_name,
        target_info,
        version,
    })
}

impl Challenge {
    /// Encodes the message (the acceptor's side, and tests).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(56 + self.target_name.len() + self.target_info.len());
        out.extend_from_slice(SIGNATURE);
        out.extend_from_slice(&CHALLENGE.to_le_bytes());
        let name_offset = 56u32;
        let info_offset = name_offset + self.target_name.len() as u32;
        push_field(&mut out, self.target_name.len(), name_offset);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.server_challenge);
        out.extend_from_slice(&[0; 8]);
        push_field(&mut out, self.target_info.len(), info_offset);
        out.extend_from_slice(&self.version.unwrap_or([0; 8]));
        out.extend_from_slice(&self.target_name);
        out.extend_from_slice(&self.target_info);
        out
    }
}

fn push_field(out: &mut Vec<u8>, len: usize, offset: u32) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
}

/// The AV pairs of a target information field, in order, without the terminating `MsvAvEOL`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AvPairs(pub Vec<(u16, Vec<u8>)>);

impl AvPairs {
    pub(crate) fn parse(mut b: &[u8]) -> Result<Self, NtlmError> {
        let mut pairs = Vec::new();
        while !b.is_empty() {
            let id = u16_at(b, 0)?;
            let len = usize::from(u16_at(b, 2)?);
            if id == av::EOL {
                return Ok(Self(pairs));
            }
            let value = b
                .get(4..4 + len)
                .ok_or_else(|| NtlmError::malformed("an AV pair is truncated"))?;
            pairs.push((id, value.to_vec()));
            b = &b[4 + len..];
            if pairs.len() > 64 {
                return Err(NtlmError::malformed("too many AV pairs"));
            }
        }
        // Some servers end the list without MsvAvEOL; accept it.
        Ok(Self(pairs))
    }

    pub(crate) fn get(&self, id: u16) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets a pair, replacing one with the same identifier.
    pub(crate) fn set(&mut self, id: u16, value: Vec<u8>) {
        match self.0.iter_mut().find(|(i, _)| *i == id) {
            Some(pair) => pair.1 = value,
            None => self.0.push((id, value)),
        }
    }

    /// The encoded pairs, `MsvAvEOL` included.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, value) in &self.0 {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&[0; 4]);
        out
    }
}

/// The fields of an AUTHENTICATE_MESSAGE (names as UTF-16LE bytes, as on the wire).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Authenticate {
    pub lm_response: Vec<u8>,
    pub nt_response: Vec<u8>,
    pub domain: Vec<u8>,
    pub user: Vec<u8>,
    pub workstation: Vec<u8>,
    pub encrypted_session_key: Vec<u8>,
    pub flags: u32,
    pub version: Option<[u8; 8]>,
    /// `Some` reserves the MIC field (filled in afterwards: it covers this very message).
    pub mic: Option<[u8; 16]>,
}

impl Authenticate {
    /// Encodes the message in the order Windows lays out its payload: domain, user,
    /// workstation, responses, session key.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let fixed = 64
            + if self.version.is_some() { 8 } else { 0 }
            + if self.mic.is_some() { 16 } else { 0 };
        let payload: [&[u8]; 6] = [
            &self.domain,
            &self.user,
            &self.workstation,
            &self.lm_response,
            &self.nt_response,
            &self.encrypted_session_key,
        ];
        let mut offsets = [0u32; 6];
        let mut at = fixed as u32;
        for (i, part) in payload.iter().enumerate() {
            offsets[i] = at;
            at += part.len() as u32;
        }
        let mut out = Vec::with_capacity(at as usize);
        out.extend_from_slice(SIGNATURE);
        out.extend_from_slice(&AUTHENTICATE.to_le_bytes());
        push_field(&mut out, self.lm_response.len(), offsets[3]);
        push_field(&mut out, self.nt_response.len(), offsets[4]);
        push_field(&mut out, self.domain.len(), offsets[0]);
        push_field(&mut out, self.user.len(), offsets[1]);
        push_field(&mut out, self.workstation.len(), offsets[2]);
        push_field(&mut out, self.encrypted_session_key.len(), offsets[5]);
        out.extend_from_slice(&self.flags.to_le_bytes());
        if let Some(version) = self.version {
            out.extend_from_slice(&version);
        }
        if let Some(mic) = self.mic {
            out.extend_from_slice(&mic);
        }
        for part in payload {
            out.extend_from_slice(part);
        }
        out
    }

    /// Parses the message; `mic` is read when the payload starts after a MIC field.
    pub(crate) fn parse(b: &[u8]) -> Result<Self, NtlmError> {
        header(b, AUTHENTICATE)?;
        let flags = u32_at(b, 60)?;
        let lowest_offset = [12, 20, 28, 36, 44, 52]
            .iter()
            .filter(|&&at| u16_at(b, at).is_ok_and(|len| len > 0))
            .filter_map(|&at| u32_at(b, at + 4).ok())
            .min()
            .unwrap_or(64) as usize;
        let version = (flags & flags::VERSION != 0 && lowest_offset >= 72)
            .then(|| b.get(64..72).and_then(|s| s.try_into().ok()))
            .flatten();
        let mic = (lowest_offset >= MIC_OFFSET + 16)
            .then(|| {
                b.get(MIC_OFFSET..MIC_OFFSET + 16)
                    .and_then(|s| s.try_into().ok())
            })
            .flatten();
        Ok(Self {
            lm_response: field(b, 12)?.to_vec(),
            nt_response: field(b, 20)?.to_vec(),
            domain: field(b, 28)?.to_vec(),
            user: field(b, 36)?.to_vec(),
            workstation: field(b, 44)?.to_vec(),
            encrypted_session_key: field(b, 52)?.to_vec(),
            flags,
            version,
            mic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn av_pairs_round_trip_and_replace() {
        let mut pairs = AvPairs(vec![(av::NB_DOMAIN_NAME, utf16("Domain"))]);
        pairs.set(av::FLAGS, 2u32.to_le_bytes().to_vec());
        pairs.set(av::FLAGS, 6u32.to_le_bytes().to_vec());
        let encoded = pairs.encode();
        assert_eq!(AvPairs::parse(&encoded).unwrap(), pairs);
        assert_eq!(pairs.get(av::FLAGS), Some(&6u32.to_le_bytes()[..]));
    }

    #[test]
    fn truncated_and_lying_messages_are_errors() {
        let challenge = Challenge {
            flags: flags::TARGET_INFO | flags::VERSION | flags::UNICODE,
            server_challenge: [1; 8],
            target_name: utf16("FS01"),
            target_info: AvPairs(vec![(av::NB_COMPUTER_NAME, utf16("FS01"))]).encode(),
            version: Some(VERSION),
        }
        .encode();
        assert_eq!(
            parse_challenge(&challenge).unwrap().target_name,
            utf16("FS01")
        );
        for cut in 0..challenge.len() {
            let _ = parse_challenge(&challenge[..cut]);
        }
        let mut lying = challenge.clone();
        lying[40] = 0xff; // target info length beyond the message
        assert!(parse_challenge(&lying).is_err());
        let mut offset = challenge.clone();
        offset[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_challenge(&offset).is_err());
        assert!(parse_challenge(&negotiate(0)).is_err(), "wrong type");
        assert!(AvPairs::parse(&[2, 0, 200, 0, 1]).is_err());
    }
}
