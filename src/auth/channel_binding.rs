//! `tls-server-end-point` channel bindings (RFC 5929 §4.1), computed from the DER certificate the
//! server presented on the same connection. The hash follows the certificate's signature
//! algorithm; MD5, SHA-1 and anything unknown use SHA-256.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// The application data of the channel bindings: `tls-server-end-point:` and the hash.
pub(crate) fn tls_server_end_point(certificate_der: &[u8]) -> Vec<u8> {
    let hash = match signature_hash(certificate_der) {
        Hash::Sha384 => Sha384::digest(certificate_der).to_vec(),
        Hash::Sha512 => Sha512::digest(certificate_der).to_vec(),
        Hash::Sha256 => Sha256::digest(certificate_der).to_vec(),
    };
    let mut out = b"tls-server-end-point:".to_vec();
    out.extend_from_slice(&hash);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// Reads `Certificate.signatureAlgorithm.algorithm` with a minimal DER walk.
fn signature_hash(der: &[u8]) -> Hash {
    signature_oid(der)
        .map(|oid| match oid {
            // sha384WithRSAEncryption, ecdsa-with-SHA384
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c]
            | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03] => Hash::Sha384,
            // sha512WithRSAEncryption, ecdsa-with-SHA512
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d]
            | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04] => Hash::Sha512,
            _ => Hash::Sha256,
        })
        .unwrap_or(Hash::Sha256)
}

use super::der::read as tlv;

/// The MD5 of the RFC 2744 channel bindings structure with no addresses and this application
/// data: what NTLM puts in `MsvAvChannelBindings` and Kerberos in the authenticator checksum.
pub(crate) fn gss_bindings_md5(application_data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    let mut md5 = md5::Md5::new();
    md5.update([0u8; 16]); // initiator and acceptor address types and lengths
    md5.update((application_data.len() as u32).to_le_bytes());
    md5.update(application_data);
    md5.finalize().into()
}

fn signature_oid(der: &[u8]) -> Option<&[u8]> {
    let (0x30, certificate, _) = tlv(der)? else {
        return None;
    };
    let (0x30, _tbs, rest) = tlv(certificate)? else {
        return None;
    };
    let (0x30, algorithm, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(algorithm)? else {
        return None;
    };
    Some(oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_with(oid: &[u8]) -> Vec<u8> {
        let algorithm = [&[0x06, oid.len() as u8][..], oid].concat();
        let algorithm = [&[0x30, algorithm.len() as u8][..], &algorithm].concat();
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x05];
        let signature = [0x03, 0x02, 0x00, 0xff];
        let body = [&tbs[..], &algorithm, &signature].concat();
        [&[0x30, body.len() as u8][..], &body].concat()
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        let sha384_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
        let sha512_ecdsa = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
        let sha1_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        assert_eq!(signature_hash(&certificate_with(&sha384_rsa)), Hash::Sha384);
        assert_eq!(
            signature_hash(&certificate_with(&sha512_ecdsa)),
            Hash::Sha512
        );
        assert_eq!(
            signature_hash(&certificate_with(&sha1_rsa)),
            Hash::Sha256,
            "SHA-1 upgrades to SHA-256"
        );
        assert_eq!(signature_hash(b"garbage"), Hash::Sha256);
        let token = tls_server_end_point(&certificate_with(&sha384_rsa));
        assert_eq!(token.len(), "tls-server-end-point:".len() + 48);
    }
}
