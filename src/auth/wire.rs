//! Big-endian reading for the MIT binary files (keytabs, credential caches): every read checks
//! what is left first, so a count larger than the file allocates nothing and fails.

/// The input ended before a field did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Truncated;

/// A cursor over big-endian fields.
pub(crate) struct BigEndian<'a> {
    /// What is left to read.
    pub data: &'a [u8],
}

impl<'a> BigEndian<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.data.len() < n {
            return Err(Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}
