//! NTLM message sealing with extended session security and key exchange (MS-NLMP 3.4.4.2,
//! 3.4.3): the data is RC4-encrypted, then an HMAC-MD5 checksum of the sequence number and the
//! plaintext is encrypted with the same continuing RC4 stream. Each direction has its own keys,
//! stream and sequence number; a message out of order or altered is refused.
//!
//! Opening works in place on the received bytes, so a large page is decrypted where it lies,
//! and hashed in the same pass (`auth::md5`).

use subtle::ConstantTimeEq;

use super::NtlmError;
use super::keys::{DirectionKeys, Key16};
use crate::auth::md5::HmacMd5;
use crate::auth::rc4::Rc4;

/// Length of an `NTLMSSP_MESSAGE_SIGNATURE`.
pub(crate) const SIGNATURE_LEN: usize = 16;

/// One direction of a sealed NTLM session.
pub(crate) struct Direction {
    signing: Key16,
    rc4: Rc4,
    sequence: u32,
}

impl Direction {
    pub(crate) fn new(keys: &DirectionKeys) -> Self {
        Self {
            signing: keys.signing.clone(),
            rc4: Rc4::new(keys.sealing.as_slice()),
            sequence: 0,
        }
    }

    /// HMAC-MD5 over the sequence number and what follows it.
    fn mac(&self) -> HmacMd5 {
        let mut mac = HmacMd5::new(&self.signing);
        mac.update(&self.sequence.to_le_bytes());
        mac
    }

    fn checksum(mac: HmacMd5) -> [u8; 8] {
        let full = mac.finalize();
        full[..8].try_into().expect("8 of 16 bytes")
    }

    /// Encrypts `data` in place and returns its signature.
    pub(crate) fn seal(&mut self, data: &mut [u8]) -> [u8; SIGNATURE_LEN] {
        let mut mac = self.mac();
        mac.update(data);
        let mut checksum = Self::checksum(mac);
        self.rc4.apply(data);
        self.rc4.apply(&mut checksum);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..4].copy_from_slice(&1u32.to_le_bytes());
        signature[4..12].copy_from_slice(&checksum);
        signature[12..].copy_from_slice(&self.sequence.to_le_bytes());
        self.sequence = self.sequence.wrapping_add(1);
        signature
    }

    /// Decrypts `data` in place and checks its signature and sequence number.
    pub(crate) fn open(&mut self, signature: &[u8], data: &mut [u8]) -> Result<(), NtlmError> {
        let signature: &[u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| NtlmError::malformed("the signature is not 16 bytes"))?;
        if signature[..4] != 1u32.to_le_bytes() {
            return Err(NtlmError::malformed("unknown signature version"));
        }
        // Decrypted and hashed in one pass (see `auth::md5`).
        let mut mac = self.mac();
        mac.update_decrypting(&mut self.rc4, data);
        let mut received = [0u8; 8];
        received.copy_from_slice(&signature[4..12]);
        self.rc4.apply(&mut received);
        let expected = Self::checksum(mac);
        let sequence = u32::from_le_bytes(signature[12..].try_into().expect("4 bytes"));
        if !bool::from(expected.ct_eq(&received)) {
            return Err(NtlmError::malformed(
                "bad signature (the message was altered, or the key is wrong)",
            ));
        }
        if sequence != self.sequence {
            return Err(NtlmError::malformed(format!(
                "sequence number {sequence}, expected {} (a replayed, lost or reordered message)",
                self.sequence
            )));
        }
        self.sequence = self.sequence.wrapping_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ntlm::keys::direction_keys;

    fn pair() -> (Direction, Direction) {
        let (client, _) = direction_keys(&[7; 16]);
        (Direction::new(&client), Direction::new(&client))
    }

    #[test]
    fn messages_open_in_order() {
        let (mut sender, mut receiver) = pair();
        for text in [&b"first"[..], b"second", b""] {
            let mut data = text.to_vec();
            let signature = sender.seal(&mut data);
            receiver.open(&signature, &mut data).unwrap();
            assert_eq!(data, text);
        }
    }

    /// The checksum covers the expected number, so only the explicit check notices a signature
    /// whose own sequence field was changed.
    #[test]
    fn a_signature_with_another_sequence_number_is_refused() {
        let (mut sender, mut receiver) = pair();
        let mut data = b"page".to_vec();
        let mut signature = sender.seal(&mut data);
        signature[12..].copy_from_slice(&7u32.to_le_bytes());
        let e = receiver.open(&signature, &mut data).unwrap_err();
        assert!(e.message.contains("sequence number 7, expected 0"), "{e:?}");
    }

    #[test]
    fn a_replayed_or_altered_message_is_refused() {
        let (mut sender, mut receiver) = pair();
        let mut first = b"first".to_vec();
        let signature = sender.seal(&mut first);
        let replay = (first.clone(), signature);
        receiver.open(&signature, &mut first).unwrap();
        let (mut again, signature) = replay;
        let e = receiver.open(&signature, &mut again).unwrap_err();
        assert!(e.message.contains("bad signature"), "{e:?}");

        let (mut sender, mut receiver) = pair();
        let mut data = b"page".to_vec();
        let signature = sender.seal(&mut data);
        data[0] ^= 1;
        let e = receiver.open(&signature, &mut data).unwrap_err();
        assert!(e.message.contains("bad signature"), "{e:?}");
    }
}
