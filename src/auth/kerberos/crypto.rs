//! Kerberos encryption for the AES types (RFC 3961 simplified profile, RFC 3962):
//! aes128-cts-hmac-sha1-96 (17) and aes256-cts-hmac-sha1-96 (18). String-to-key, key
//! derivation, encryption with a confounder and an HMAC-SHA1-96 integrity check, keyed
//! checksums, and the CBC ciphertext-stealing mode underneath. Plain functions over RustCrypto's
//! AES, HMAC and PBKDF2, checked against the RFC 3961 and RFC 3962 vectors.

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes256};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::KerberosError;

/// AES block size.
pub(crate) const BLOCK: usize = 16;
/// Truncated HMAC-SHA1 length.
pub(crate) const MAC_LEN: usize = 12;
/// The default PBKDF2 iteration count of the AES string-to-key (RFC 3962 4).
pub(crate) const DEFAULT_ITERATIONS: u32 = 4096;

/// A key of one of the AES encryption types.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// 17 (AES-128) or 18 (AES-256).
    pub enctype: i32,
    /// The key bytes.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("enctype", &self.enctype)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

/// The key length of an encryption type, or an error naming it for anything but AES.
pub(crate) fn key_length(enctype: i32) -> Result<usize, KerberosError> {
    match enctype {
        17 => Ok(16),
        18 => Ok(32),
        23 => Err(KerberosError::token(
            "the KDC or server uses RC4-HMAC (type 23), which this client does not support: \
             enable AES for the account (Active Directory's default since Windows Server 2008)",
        )),
        other => Err(KerberosError::token(format!(
            "encryption type {other} is not supported (only AES: 17, 18)"
        ))),
    }
}

impl Key {
    pub(crate) fn new(enctype: i32, bytes: impl Into<Vec<u8>>) -> Result<Self, KerberosError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.len() != key_length(enctype)? {
            return Err(KerberosError::token(format!(
                "a key of type {enctype} must be {} bytes",
                key_length(enctype)?
            )));
        }
        Ok(Self { enctype, bytes })
    }
}

/// An AES block cipher of either size.
pub(crate) enum Aes {
    A128(Box<Aes128>),
    A256(Box<Aes256>),
}

impl Aes {
    /// The cipher for a 16- or 32-byte key; any other length is an error, never a panic or a
    /// key silently cut to size (a hostile cache or reply may carry any length).
    pub(crate) fn new(key: &[u8]) -> Result<Self, KerberosError> {
        if let Ok(key) = Array::try_from(key) {
            return Ok(Aes::A128(Box::new(Aes128::new(&key))));
        }
        if let Ok(key) = Array::try_from(key) {
            return Ok(Aes::A256(Box::new(Aes256::new(&key))));
        }
        Err(KerberosError::token(format!(
            "an AES key of {} bytes (16 or 32 expected)",
            key.len()
        )))
    }

    fn encrypt(&self, block: &mut [u8; BLOCK]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            Aes::A128(c) => c.encrypt_block(block),
            Aes::A256(c) => c.encrypt_block(block),
        }
    }

    fn decrypt(&self, block: &mut [u8; BLOCK]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            Aes::A128(c) => c.decrypt_block(block),
            Aes::A256(c) => c.decrypt_block(block),
        }
    }

    /// Decrypts whole blocks in place (several at once where the CPU allows).
    fn decrypt_blocks(&self, data: &mut [u8]) {
        let (blocks, rest) = Array::slice_as_chunks_mut(data);
        debug_assert!(rest.is_empty());
        match self {
            Aes::A128(c) => c.decrypt_blocks(blocks),
            Aes::A256(c) => c.decrypt_blocks(blocks),
        }
    }
}

fn xor(a: &mut [u8], b: &[u8]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

/// n-fold (RFC 3961 5.1): the input repeated to the least common multiple of both lengths,
/// each repetition rotated right by 13 more bits, the `out_len`-byte chunks added with
/// end-around carry.
pub(crate) fn nfold(input: &[u8], out_len: usize) -> Vec<u8> {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let in_len = input.len();
    let lcm = in_len / gcd(in_len, out_len) * out_len;
    let bits = in_len * 8;
    let mut stream = vec![0u8; lcm];
    for repetition in 0..lcm / in_len {
        let rotation = (13 * repetition) % bits;
        for bit in 0..bits {
            // Bit `bit` of the rotated copy is bit `bit - rotation` of the input (MSB first).
            let source = (bit + bits - rotation) % bits;
            if input[source / 8] & (0x80 >> (source % 8)) != 0 {
                let at = repetition * bits + bit;
                stream[at / 8] |= 0x80 >> (at % 8);
            }
        }
    }
    let mut sum = vec![0u8; out_len];
    for chunk in stream.chunks(out_len) {
        let mut carry = 0u32;
        for i in (0..out_len).rev() {
            let total = u32::from(sum[i]) + u32::from(chunk[i]) + carry;
            sum[i] = total as u8;
            carry = total >> 8;
        }
        // One's-complement addition: a carry out of the top comes back in at the bottom.
        while carry != 0 {
            for byte in sum.iter_mut().rev() {
                let total = u32::from(*byte) + carry;
                *byte = total as u8;
                carry = total >> 8;
                if carry == 0 {
                    break;
                }
            }
        }
    }
    sum
}

/// DK(key, constant) (RFC 3961 5.1): AES-encrypt the n-folded constant, then each output
/// again, until there are enough bytes for a key (random-to-key is the identity for AES).
pub(crate) fn derive(key: &[u8], constant: &[u8]) -> Result<Zeroizing<Vec<u8>>, KerberosError> {
    let aes = Aes::new(key)?;
    let mut block: [u8; BLOCK] = nfold(constant, BLOCK).try_into().expect("16 bytes");
    let mut out = Zeroizing::new(Vec::with_capacity(key.len()));
    while out.len() < key.len() {
        aes.encrypt(&mut block);
        out.extend_from_slice(&block);
    }
    out.truncate(key.len());
    Ok(out)
}

/// String-to-key (RFC 3962 4): PBKDF2-HMAC-SHA1 of the password and salt, then DK with
/// "kerberos".
pub(crate) fn string_to_key(
    password: &str,
    salt: &[u8],
    iterations: u32,
    enctype: i32,
) -> Result<Key, KerberosError> {
    let mut seed = Zeroizing::new(vec![0u8; key_length(enctype)?]);
    pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut seed);
    Key::new(enctype, derive(&seed, b"kerberos")?.to_vec())
}

/// The keys one key usage derives: encryption (Ke) and integrity (Ki).
pub(crate) struct UsageKeys {
    pub aes: Aes,
    pub integrity: Zeroizing<Vec<u8>>,
}

impl UsageKeys {
    pub(crate) fn new(key: &Key, usage: i32) -> Result<Self, KerberosError> {
        if key.bytes.len() != key_length(key.enctype)? {
            return Err(KerberosError::token(format!(
                "a key of type {} has {} bytes",
                key.enctype,
                key.bytes.len()
            )));
        }
        let usage = usage.to_be_bytes();
        let mut ke = usage.to_vec();
        ke.push(0xaa);
        let mut ki = usage.to_vec();
        ki.push(0x55);
        Ok(Self {
            aes: Aes::new(&derive(&key.bytes, &ke)?)?,
            integrity: derive(&key.bytes, &ki)?,
        })
    }

    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        hmac_sha1_96(&self.integrity, parts)
    }
}

pub(crate) fn hmac_sha1_96(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut mac =
        <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    let full = mac.finalize().into_bytes();
    full[..MAC_LEN].try_into().expect("12 of 20 bytes")
}

/// CBC with ciphertext stealing, IV zero, in place (RFC 3962 5; the last two blocks are
/// swapped even when the length is a multiple of the block size). `data` is at least one block.
pub(crate) fn cts_encrypt(aes: &Aes, data: &mut [u8]) {
    let len = data.len();
    debug_assert!(len >= BLOCK);
    if len == BLOCK {
        aes.encrypt(data.try_into().expect("one block"));
        return;
    }
    let tail = (len - 1) % BLOCK + 1; // bytes in the last (possibly partial) block
    let full = len - tail; // bytes before it
    let mut previous = [0u8; BLOCK];
    for block in data[..full].chunks_exact_mut(BLOCK) {
        xor(block, &previous);
        let block: &mut [u8; BLOCK] = block.try_into().expect("one block");
        aes.encrypt(block);
        previous = *block;
    }
    // `previous` is E(P[n-1]); encrypt the zero-padded last block chained on it.
    let mut last = [0u8; BLOCK];
    last[..tail].copy_from_slice(&data[full..]);
    xor(&mut last, &previous);
    aes.encrypt(&mut last);
    // Output: ..., E(last), then the first `tail` bytes of E(P[n-1]).
    data[full - BLOCK..full].copy_from_slice(&last);
    data[full..].copy_from_slice(&previous[..tail]);
}

/// CBC decryption of whole blocks in place, chained on `previous` (the ciphertext block before
/// them); returns the last ciphertext block.
fn cbc_decrypt_blocks(aes: &Aes, mut previous: [u8; BLOCK], data: &mut [u8]) -> [u8; BLOCK] {
    const CHUNK: usize = 8 * BLOCK;
    let mut saved = [0u8; CHUNK];
    for chunk in data.chunks_mut(CHUNK) {
        let n = chunk.len();
        saved[..n].copy_from_slice(chunk);
        aes.decrypt_blocks(chunk);
        xor(&mut chunk[..BLOCK], &previous);
        for i in 1..n / BLOCK {
            let (done, rest) = saved.split_at(i * BLOCK);
            let _ = rest;
            xor(
                &mut chunk[i * BLOCK..(i + 1) * BLOCK],
                &done[(i - 1) * BLOCK..],
            );
        }
        previous.copy_from_slice(&saved[n - BLOCK..n]);
    }
    previous
}

/// Inverse of [`cts_encrypt`], in place.
pub(crate) fn cts_decrypt(aes: &Aes, data: &mut [u8]) {
    let len = data.len();
    debug_assert!(len >= BLOCK);
    if len == BLOCK {
        aes.decrypt(data.try_into().expect("one block"));
        return;
    }
    let tail = (len - 1) % BLOCK + 1;
    let full = len - tail;
    let before = cbc_decrypt_blocks(aes, [0; BLOCK], &mut data[..full - BLOCK]);
    let (head, end) = data.split_at_mut(full);
    let swapped = &mut head[full - BLOCK..];
    finish_cts(aes, before, swapped, end);
}

/// The last two blocks of CTS decryption: `swapped` is the full block E(last), `end` the
/// `tail` bytes of E(P[n-1]); both are replaced by their plaintext.
fn finish_cts(aes: &Aes, before: [u8; BLOCK], swapped: &mut [u8], end: &mut [u8]) {
    let tail = end.len();
    let mut d: [u8; BLOCK] = swapped.try_into().expect("one block");
    aes.decrypt(&mut d); // = (P_last padded) XOR E(P[n-1])
    let mut penultimate = [0u8; BLOCK];
    penultimate[..tail].copy_from_slice(end);
    penultimate[tail..].copy_from_slice(&d[tail..]);
    for i in 0..tail {
        end[i] ^= d[i]; // P_last
    }
    let mut plain = penultimate;
    aes.decrypt(&mut plain);
    xor(&mut plain, &before);
    swapped.copy_from_slice(&plain);
}

/// Encrypts with a random confounder and appends the HMAC (RFC 3961 5.3).
pub(crate) fn encrypt(key: &Key, usage: i32, plaintext: &[u8]) -> Result<Vec<u8>, KerberosError> {
    let keys = UsageKeys::new(key, usage)?;
    let confounder = crate::auth::random_bytes(BLOCK).map_err(KerberosError::token)?;
    let mut out = Vec::with_capacity(BLOCK + plaintext.len() + MAC_LEN);
    out.extend_from_slice(&confounder);
    out.extend_from_slice(plaintext);
    let mac = keys.mac(&[&out]);
    cts_encrypt(&keys.aes, &mut out);
    out.extend_from_slice(&mac);
    Ok(out)
}

/// Checks the HMAC and decrypts; the confounder is dropped.
pub(crate) fn decrypt(
    key: &Key,
    usage: i32,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KerberosError> {
    if ciphertext.len() < BLOCK + MAC_LEN {
        return Err(KerberosError::token("encrypted data too short"));
    }
    let keys = UsageKeys::new(key, usage)?;
    let (sealed, mac) = ciphertext.split_at(ciphertext.len() - MAC_LEN);
    let mut plain = Zeroizing::new(sealed.to_vec());
    cts_decrypt(&keys.aes, &mut plain);
    let expected = keys.mac(&[&plain]);
    if !bool::from(expected.ct_eq(mac)) {
        return Err(KerberosError::token(
            "integrity check failed (wrong key, or the data was altered)",
        ));
    }
    plain.drain(..BLOCK);
    Ok(plain)
}

/// The keyed checksum hmac-sha1-96-aes128/256 (RFC 3962 7): HMAC with Kc = DK(key, usage|0x99).
pub(crate) fn checksum(key: &Key, usage: i32, data: &[u8]) -> Result<[u8; MAC_LEN], KerberosError> {
    if key.bytes.len() != key_length(key.enctype)? {
        return Err(KerberosError::token(format!(
            "a key of type {} has {} bytes",
            key.enctype,
            key.bytes.len()
        )));
    }
    let mut constant = usage.to_be_bytes().to_vec();
    constant.push(0x99);
    Ok(hmac_sha1_96(&derive(&key.bytes, &constant)?, &[data]))
}

/// The checksum type that goes with a key's encryption type.
pub(crate) fn checksum_type(enctype: i32) -> i32 {
    if enctype == 17 { 15 } else { 16 }
}

/// AES block decryption of whole blocks, for the benchmark's raw floor.
#[cfg(feature = "__internals")]
pub(crate) fn raw_decrypt_blocks(key: &[u8], data: &mut [u8]) {
    Aes::new(key)
        .expect("the benchmark's fixed 32-byte key")
        .decrypt_blocks(data);
}

/// Opens a Wrap token's sealed bytes in place, in the layout Windows sends (MS-KILE 3.4.5.4.1,
/// EC 0, RRC 28): `header` holds, after the 16-byte token header, the last cipher block, the
/// HMAC and the first (confounder) block; `data` holds the rest of the ciphertext, in the order
/// of the plaintext. Returns the decrypted copy of the token header (checked by the caller)
/// after verifying the HMAC; `data` is left as plaintext.
pub(crate) fn open_rotated_in_place(
    keys: &UsageKeys,
    header: &[u8],
    data: &mut [u8],
) -> Result<[u8; BLOCK], KerberosError> {
    // Ciphertext stream: confounder (16) | data (n) | tail (16); total n + 32.
    let tail_ct: [u8; BLOCK] = header[16..32].try_into().expect("one block");
    let mac: [u8; MAC_LEN] = header[32..44].try_into().expect("12 bytes");
    let confounder_ct: [u8; BLOCK] = header[44..60].try_into().expect("one block");
    let n = data.len();
    let len = n + 2 * BLOCK;
    let last = (len - 1) % BLOCK + 1; // bytes of the final (stolen) block
    // Blocks before the last two: the confounder and data[..n - last].
    let mut confounder = confounder_ct;
    let mut previous = [0u8; BLOCK];
    let data_blocks_end = (n + BLOCK).saturating_sub(last).saturating_sub(BLOCK);
    let swapped_in_confounder = n + BLOCK < last + BLOCK; // only when n == 0
    let mut before = [0u8; BLOCK];
    if !swapped_in_confounder {
        keys.aes.decrypt(&mut confounder);
        xor(&mut confounder, &previous);
        previous = confounder_ct;
        before = cbc_decrypt_blocks(&keys.aes, previous, &mut data[..data_blocks_end]);
    }
    // The last two blocks span the end of `data` and the tail: assemble them.
    let mut last_two = [0u8; 2 * BLOCK];
    let from_data = n - data_blocks_end;
    let span = BLOCK + last;
    if swapped_in_confounder {
        last_two[..BLOCK].copy_from_slice(&confounder_ct);
        last_two[BLOCK..].copy_from_slice(&tail_ct);
    } else {
        last_two[..from_data].copy_from_slice(&data[data_blocks_end..]);
        last_two[from_data..span].copy_from_slice(&tail_ct[..span - from_data]);
    }
    let (swapped, end) = last_two[..span].split_at_mut(BLOCK);
    finish_cts(&keys.aes, before, swapped, end);
    let plain_header: [u8; BLOCK] = if swapped_in_confounder {
        confounder.copy_from_slice(&last_two[..BLOCK]);
        last_two[BLOCK..].try_into().expect("one block")
    } else {
        data[data_blocks_end..].copy_from_slice(&last_two[..from_data]);
        last_two[from_data..span].try_into().expect("one block")
    };
    let expected = keys.mac(&[&confounder, data, &plain_header]);
    if !bool::from(expected.ct_eq(&mac)) {
        return Err(KerberosError::token(
            "unsealing: bad signature (the message was altered, or the key is wrong)",
        ));
    }
    Ok(plain_header)
}

#[cfg(test)]
mod tests;
