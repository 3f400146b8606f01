//! `tls-server-end-point` channel bindings (RFC 5929 §4.1), computed from the DER certificate the
//! server presented on the same connection. The hash follows the certificate's signature
//! algorithm; MD5, SHA-1 and anything unknown use SHA-256.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// The application data of the channel bindings: `tls-server-end-point:` and the hash.
pub(crate) fn tls_server_end_point(certificate_der: &[u8]) -> Vec<u8> {
    let hash = match signature_hash(certificate_der) {
        Hash::Sha224 => Sha224::digest(certificate_der).to_vec(),
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
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// The hash RFC 5929 4.1 binds with: the one the certificate's signature algorithm uses (for
/// RSASSA-PSS, the one its parameters name), SHA-256 in place of MD5 and SHA-1, and SHA-256
/// for algorithms that use none (Ed25519) or that this reader does not know. Windows takes the
/// same hash, so a PSS or SHA-224 certificate binds under Extended Protection.
fn signature_hash(der: &[u8]) -> Hash {
    let by_signature = |oid: &[u8]| match oid {
        // sha224WithRSAEncryption, ecdsa-with-SHA224
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01] => Hash::Sha224,
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03] => Hash::Sha384,
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04] => Hash::Sha512,
        _ => Hash::Sha256,
    };
    let by_digest = |oid: &[u8]| match oid {
        // id-sha224, id-sha384, id-sha512 (2.16.840.1.101.3.4.2.x)
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04] => Hash::Sha224,
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02] => Hash::Sha384,
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03] => Hash::Sha512,
        _ => Hash::Sha256,
    };
    match signature_algorithm(der) {
        Some((RSASSA_PSS, parameters)) => pss_hash(parameters).map_or(Hash::Sha256, by_digest),
        Some((oid, _)) => by_signature(oid),
        None => Hash::Sha256,
    }
}

/// id-RSASSA-PSS, 1.2.840.113549.1.1.10.
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];

/// `RSASSA-PSS-params.hashAlgorithm.algorithm` (RFC 4055): `None` when absent (SHA-1, the
/// default) or unreadable.
fn pss_hash(parameters: &[u8]) -> Option<&[u8]> {
    let (0x30, fields, _) = tlv(parameters)? else {
        return None;
    };
    let (0xa0, hash_algorithm, _) = tlv(fields)? else {
        return None;
    };
    let (0x30, algorithm, _) = tlv(hash_algorithm)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(algorithm)? else {
        return None;
    };
    Some(oid)
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

/// `Certificate.signatureAlgorithm`: its OID and what follows it (the parameters), by a
/// minimal DER walk.
fn signature_algorithm(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, certificate, _) = tlv(der)? else {
        return None;
    };
    let (0x30, _tbs, rest) = tlv(certificate)? else {
        return None;
    };
    let (0x30, algorithm, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, parameters) = tlv(algorithm)? else {
        return None;
    };
    Some((oid, parameters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_with(oid: &[u8]) -> Vec<u8> {
        certificate_with_parameters(oid, &[])
    }

    fn certificate_with_parameters(oid: &[u8], parameters: &[u8]) -> Vec<u8> {
        let algorithm = [&[0x06, oid.len() as u8][..], oid, parameters].concat();
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
        let sha224_ecdsa = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
        assert_eq!(
            signature_hash(&certificate_with(&sha224_ecdsa)),
            Hash::Sha224
        );
        let token = tls_server_end_point(&certificate_with(&sha224_ecdsa));
        assert_eq!(token.len(), "tls-server-end-point:".len() + 28);
        let token = tls_server_end_point(&certificate_with(&sha384_rsa));
        assert_eq!(token.len(), "tls-server-end-point:".len() + 48);
    }

    /// RSASSA-PSS names its hash in its parameters; absent, it is SHA-1, which binds as
    /// SHA-256.
    #[test]
    fn pss_binds_with_the_hash_in_its_parameters() {
        let pss_with = |hash: &[u8]| {
            let oid = [&[0x06, hash.len() as u8][..], hash].concat();
            let algorithm = [&[0x30, oid.len() as u8][..], &oid].concat();
            let tagged = [&[0xa0, algorithm.len() as u8][..], &algorithm].concat();
            let params = [&[0x30, tagged.len() as u8][..], &tagged].concat();
            certificate_with_parameters(RSASSA_PSS, &params)
        };
        let sha384 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
        let sha512 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
        assert_eq!(signature_hash(&pss_with(&sha384)), Hash::Sha384);
        assert_eq!(signature_hash(&pss_with(&sha512)), Hash::Sha512);
        let default_sha1 = certificate_with_parameters(RSASSA_PSS, &[0x30, 0x00]);
        assert_eq!(signature_hash(&default_sha1), Hash::Sha256);
    }
}
