//! MD5 (RFC 1321) for NTLM's message signatures, with a pass that RC4-decrypts what it hashes.
//!
//! Opening a sealed NTLM message is RC4 over the body, then HMAC-MD5 over the plaintext: two
//! serial chains of dependent steps, each leaving most of the CPU's execution units idle. Run
//! one after the other they cost the sum of both (about 260 MB/s here); here the decryption of
//! one 64-byte block is interleaved, step for step, with the hashing of the block before it,
//! so the two chains run side by side (about 420 MB/s). RustCrypto's `md-5` hashes whole
//! buffers only, so the compression function is written out here; everything else in NTLM
//! (key derivation, the handshake's HMACs) uses `md-5`. Tested against `md-5` on random
//! input and by the MS-NLMP sealing vectors.
//!
//! MD5 is broken for collision resistance, not as HMAC-MD5, which is what NTLM's signatures
//! are; nothing here is used as a plain hash. Hash state (derived from the signing key in an
//! HMAC) is wiped when dropped.

use zeroize::Zeroize;

use super::rc4::Rc4;

/// Per-step left rotations.
const SHIFT: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// Per-step constants: the integer part of 2^32 × |sin(i + 1)|.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// The message word each step adds.
const WORD: [usize; 64] = {
    let mut word = [0usize; 64];
    let mut i = 0;
    while i < 64 {
        word[i] = match i / 16 {
            0 => i,
            1 => (5 * i + 1) % 16,
            2 => (3 * i + 5) % 16,
            _ => (7 * i) % 16,
        };
        i += 1;
    }
    word
};

const INITIAL: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/// One of the 64 steps: the new value of `b`.
#[inline(always)]
fn step(i: usize, [a, b, c, d]: [u32; 4], m: &[u32; 16]) -> u32 {
    let f = match i / 16 {
        0 => (b & c) | (!b & d),
        1 => (d & b) | (!d & c),
        2 => b ^ c ^ d,
        _ => c ^ (b | !d),
    };
    b.wrapping_add(
        a.wrapping_add(f)
            .wrapping_add(K[i])
            .wrapping_add(m[WORD[i]])
            .rotate_left(SHIFT[i]),
    )
}

#[inline(always)]
fn words(block: &[u8]) -> [u32; 16] {
    let mut m = [0u32; 16];
    for (word, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    m
}

/// A running MD5 (not `Clone`: its state may derive from a key).
pub(crate) struct Md5 {
    state: [u32; 4],
    /// Bytes of an incomplete block.
    pending: [u8; 64],
    pending_len: usize,
    /// Bytes hashed so far.
    length: u64,
}

impl Md5 {
    pub(crate) fn new() -> Self {
        Self {
            state: INITIAL,
            pending: [0; 64],
            pending_len: 0,
            length: 0,
        }
    }

    fn compress(&mut self, block: &[u8]) {
        let m = words(block);
        let mut v = self.state;
        for i in 0..64 {
            let b = step(i, v, &m);
            v = [v[3], b, v[1], v[2]];
        }
        self.add(v);
    }

    fn add(&mut self, v: [u32; 4]) {
        for (s, v) in self.state.iter_mut().zip(v) {
            *s = s.wrapping_add(v);
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (64 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 64 {
                return;
            }
            let block = self.pending;
            self.compress(&block);
            self.pending_len = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            self.compress(block);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// Decrypts `data` in place with `rc4` and hashes the plaintext: the same as
    /// `rc4.apply(data); self.update(data)`, with the decryption of each block interleaved
    /// with the hashing of the one before (see the module documentation).
    pub(crate) fn update_decrypting(&mut self, rc4: &mut Rc4, data: &mut [u8]) {
        // Up to a block boundary of the hash, one after the other.
        let head = ((64 - self.pending_len) % 64).min(data.len());
        let (first, rest) = data.split_at_mut(head);
        rc4.apply(first);
        self.update(first);
        let whole = rest.len() / 64 * 64;
        let (blocks, tail) = rest.split_at_mut(whole);
        if !blocks.is_empty() {
            self.length = self.length.wrapping_add(blocks.len() as u64);
            rc4.apply(&mut blocks[..64]);
            let count = blocks.len() / 64;
            for k in 0..count {
                let (done, ahead) = blocks.split_at_mut(64 * (k + 1));
                let m = words(&done[64 * k..]);
                let mut v = self.state;
                if k + 1 < count {
                    let next = &mut ahead[..64];
                    for (i, byte) in next.iter_mut().enumerate() {
                        rc4.apply_byte(byte);
                        let b = step(i, v, &m);
                        v = [v[3], b, v[1], v[2]];
                    }
                } else {
                    for i in 0..64 {
                        let b = step(i, v, &m);
                        v = [v[3], b, v[1], v[2]];
                    }
                }
                self.add(v);
            }
        }
        rc4.apply(tail);
        self.update(tail);
    }

    pub(crate) fn finalize(mut self) -> [u8; 16] {
        let bits = self.length.wrapping_mul(8);
        self.update(&[0x80]);
        while self.pending_len != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_le_bytes());
        let mut digest = [0u8; 16];
        for (out, word) in digest.chunks_exact_mut(4).zip(self.state) {
            out.copy_from_slice(&word.to_le_bytes());
        }
        digest
    }
}

impl Drop for Md5 {
    fn drop(&mut self) {
        self.state.zeroize();
        self.pending.zeroize();
    }
}

/// HMAC-MD5 (RFC 2104) with a 16-byte key, its inner hash open for the message.
pub(crate) struct HmacMd5 {
    inner: Md5,
    outer: Md5,
}

impl HmacMd5 {
    pub(crate) fn new(key: &[u8; 16]) -> Self {
        let mut pad = [0u8; 64];
        let mut keyed = |byte: u8| {
            for (p, k) in pad.iter_mut().zip(key.iter().chain(std::iter::repeat(&0))) {
                *p = k ^ byte;
            }
            let mut md5 = Md5::new();
            md5.update(&pad);
            md5
        };
        let (inner, outer) = (keyed(0x36), keyed(0x5c));
        pad.zeroize();
        Self { inner, outer }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// Decrypts `data` in place with `rc4` and takes the plaintext in; see
    /// [`Md5::update_decrypting`].
    pub(crate) fn update_decrypting(&mut self, rc4: &mut Rc4, data: &mut [u8]) {
        self.inner.update_decrypting(rc4, data);
    }

    pub(crate) fn finalize(self) -> [u8; 16] {
        let Self { inner, mut outer } = self;
        let mut inner = inner.finalize();
        outer.update(&inner);
        inner.zeroize();
        outer.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{KeyInit, Mac};
    use proptest::prelude::*;

    #[test]
    fn rfc_1321_vectors() {
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for (input, digest) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            let mut md5 = Md5::new();
            md5.update(input.as_bytes());
            assert_eq!(hex(md5.finalize()), digest, "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn hashing_and_decrypting_agree_with_md5_and_rc4_done_apart(
            data in prop::collection::vec(any::<u8>(), 0..700),
            splits in prop::collection::vec(0usize..700, 0..4),
            key in any::<[u8; 16]>(),
            prefix in 0usize..70,
        ) {
            // What RustCrypto computes, RC4 first and HMAC-MD5 over the plaintext after.
            let mut expected_plain = data.clone();
            Rc4::new(&key).apply(&mut expected_plain);
            let mut reference = <hmac::Hmac<md5::Md5> as KeyInit>::new_from_slice(&key).unwrap();
            reference.update(&vec![9u8; prefix]);
            reference.update(&expected_plain);
            let expected: [u8; 16] = reference.finalize().into_bytes().into();

            // The same, fused, with the message given in pieces.
            let mut rc4 = Rc4::new(&key);
            let mut hmac = HmacMd5::new(&key);
            hmac.update(&vec![9u8; prefix]);
            let mut buffer = data.clone();
            let mut cuts: Vec<usize> = splits.into_iter().map(|s| s.min(buffer.len())).collect();
            cuts.sort();
            let mut at = 0;
            for cut in cuts.into_iter().chain([buffer.len()]) {
                hmac.update_decrypting(&mut rc4, &mut buffer[at..cut]);
                at = cut;
            }
            prop_assert_eq!(&buffer, &expected_plain);
            prop_assert_eq!(hmac.finalize(), expected);
        }
    }
}
