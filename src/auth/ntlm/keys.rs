//! NTLMv2 computations (MS-NLMP 3.3.2, 3.4.5): the response key, the responses, the session
//! key, and the signing and sealing keys. Plain functions of their inputs, checked against the
//! MS-NLMP 4.2.4 vectors.

use hmac::{Hmac, KeyInit, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::messages::utf16;

/// A 16-byte secret (a hash or key), wiped when dropped.
pub(crate) type Key16 = Zeroizing<[u8; 16]>;

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv1: MD4 of the UTF-16LE password (the NT hash).
pub(crate) fn nt_hash(password: &str) -> Key16 {
    let unicode = Zeroizing::new(utf16(password));
    Zeroizing::new(Md4::digest(unicode.as_slice()).into())
}

/// NTOWFv2: HMAC-MD5 of the upper-cased user and the domain, keyed with the NT hash.
pub(crate) fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> Key16 {
    let identity = utf16(&(user.to_uppercase() + domain));
    Zeroizing::new(hmac_md5(nt_hash, &[&identity]))
}

/// The NTLMv2 client challenge structure as it is hashed (`temp` of MS-NLMP 3.3.2): version,
/// time, client challenge, the AV pairs (EOL included), and four zero bytes.
pub(crate) fn client_blob(
    timestamp: [u8; 8],
    client_challenge: [u8; 8],
    av_pairs: &[u8],
) -> Vec<u8> {
    let mut temp = Vec::with_capacity(32 + av_pairs.len());
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&timestamp);
    temp.extend_from_slice(&client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(av_pairs);
    temp.extend_from_slice(&[0; 4]);
    temp
}

/// `NTProofStr`.
pub(crate) fn nt_proof(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    blob: &[u8],
) -> [u8; 16] {
    hmac_md5(response_key, &[server_challenge, blob])
}

/// The LMv2 response (sent only when the server gave no timestamp).
pub(crate) fn lm_v2(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> Vec<u8> {
    let mut out = hmac_md5(response_key, &[server_challenge, client_challenge]).to_vec();
    out.extend_from_slice(client_challenge);
    out
}

/// The session base key, which for NTLMv2 is also the key exchange key.
pub(crate) fn session_base_key(response_key: &[u8; 16], nt_proof: &[u8; 16]) -> Key16 {
    Zeroizing::new(hmac_md5(response_key, &[nt_proof]))
}

fn magic_key(exported_session_key: &[u8; 16], magic: &[u8]) -> Key16 {
    let mut md5 = Md5::new();
    md5.update(exported_session_key);
    md5.update(magic);
    Zeroizing::new(md5.finalize().into())
}

/// The signing and sealing keys of one direction (MS-NLMP 3.4.5.2, 3.4.5.3; 128-bit, with
/// extended session security).
pub(crate) struct DirectionKeys {
    pub signing: Key16,
    pub sealing: Key16,
}

/// The keys for what the client sends and for what the server sends.
pub(crate) fn direction_keys(exported_session_key: &[u8; 16]) -> (DirectionKeys, DirectionKeys) {
    let client = DirectionKeys {
        signing: magic_key(
            exported_session_key,
            b"session key to client-to-server signing key magic constant\0",
        ),
        sealing: magic_key(
            exported_session_key,
            b"session key to client-to-server sealing key magic constant\0",
        ),
    };
    let server = DirectionKeys {
        signing: magic_key(
            exported_session_key,
            b"session key to server-to-client signing key magic constant\0",
        ),
        sealing: magic_key(
            exported_session_key,
            b"session key to server-to-client sealing key magic constant\0",
        ),
    };
    (client, server)
}

/// The time as a Windows FILETIME (100 ns since 1601), little-endian.
pub(crate) fn filetime_now() -> [u8; 8] {
    filetime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// A time since 1970 as a FILETIME.
fn filetime(since_unix: std::time::Duration) -> [u8; 8] {
    const EPOCH_DIFFERENCE: u64 = 11_644_473_600; // seconds from 1601 to 1970
    let ticks = (since_unix.as_secs() + EPOCH_DIFFERENCE) * 10_000_000
        + u64::from(since_unix.subsec_nanos() / 100);
    ticks.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;

    #[test]
    fn filetimes_count_100_ns_since_1601() {
        let at = |d| u64::from_le_bytes(filetime(d));
        assert_eq!(at(Duration::ZERO), 116_444_736_000_000_000);
        assert_eq!(
            at(Duration::new(1, 234_567_899)),
            116_444_736_000_000_000 + 12_345_678
        );
        let before = at(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
        let now = u64::from_le_bytes(filetime_now());
        let after = at(SystemTime::now().duration_since(UNIX_EPOCH).unwrap());
        assert!(before <= now && now <= after, "{before} {now} {after}");
    }
}
