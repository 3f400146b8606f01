//! MIT keytab files (the format `ktutil` and `kadmin ktadd` write): Kerberos without a password
//! in the environment, for service accounts that audit on a schedule.
//!
//! Format (version 0x0502): entries of `i32 size` (negative: a hole to skip), then `u16`
//! component count, the realm and components as `u16`-counted strings, `u32` name type,
//! `u32` timestamp, `u8` key version, `u16` encryption type, the `u16`-counted key, and an
//! optional `u32` key version.

use std::fmt;

use super::wire::{BigEndian, Truncated};

/// A long-term key from a keytab.
#[derive(Clone, PartialEq, Eq)]
pub struct KeytabKey {
    /// `user@REALM` or `service/host@REALM`.
    pub principal: String,
    /// Kerberos encryption type: 17 (aes128-cts-hmac-sha1-96) or 18 (aes256-cts-hmac-sha1-96).
    pub enctype: u16,
    /// Key version number.
    pub kvno: u32,
    /// The key.
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeytabKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeytabKey")
            .field("principal", &self.principal)
            .field("enctype", &self.enctype)
            .field("kvno", &self.kvno)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A keytab that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("keytab: {0}")]
pub struct KeytabError(pub String);

impl From<Truncated> for KeytabError {
    fn from(_: Truncated) -> Self {
        KeytabError("truncated entry".into())
    }
}

impl BigEndian<'_> {
    /// A `u16`-counted UTF-8 name.
    fn u16_string(&mut self) -> Result<String, KeytabError> {
        let len = usize::from(self.u16()?);
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| KeytabError("a name is not UTF-8".into()))
    }
}

/// Every AES key in a keytab.
pub fn parse(data: &[u8]) -> Result<Vec<KeytabKey>, KeytabError> {
    let mut reader = BigEndian { data };
    if reader.u16()? != 0x0502 {
        return Err(KeytabError("not a version 2 (0x0502) MIT keytab".into()));
    }
    let mut keys = Vec::new();
    while !reader.data.is_empty() {
        let size = reader.u32()? as i32;
        if size < 0 {
            reader.take(size.unsigned_abs() as usize)?;
            continue;
        }
        let mut entry = BigEndian {
            data: reader.take(size as usize)?,
        };
        let components = entry.u16()?;
        let realm = entry.u16_string()?;
        let names = (0..components)
            .map(|_| entry.u16_string())
            .collect::<Result<Vec<_>, _>>()?;
        let _name_type = entry.u32()?;
        let _timestamp = entry.u32()?;
        let kvno8 = entry.u8()?;
        let enctype = entry.u16()?;
        let key_len = usize::from(entry.u16()?);
        let key = entry.take(key_len)?.to_vec();
        let kvno = if entry.data.len() >= 4 {
            entry.u32()?
        } else {
            u32::from(kvno8)
        };
        if matches!(enctype, 17 | 18) {
            let expected = if enctype == 17 { 16 } else { 32 };
            if key.len() != expected {
                return Err(KeytabError(format!(
                    "the key of {}@{realm} has {} bytes for encryption type {enctype} ({expected} \
                     expected)",
                    names.join("/"),
                    key.len()
                )));
            }
            keys.push(KeytabKey {
                principal: format!("{}@{realm}", names.join("/")),
                enctype,
                kvno,
                key: zeroize::Zeroizing::new(key),
            });
        }
    }
    Ok(keys)
}

/// The key to use for a principal: AES-256 before AES-128, the highest key version first.
pub fn key_for(keys: &[KeytabKey], principal: &str) -> Option<KeytabKey> {
    keys.iter()
        .filter(|k| k.principal.eq_ignore_ascii_case(principal))
        .max_by_key(|k| (k.enctype == 18, k.kvno))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(principal: &[&str], realm: &str, enctype: u16, kvno: u32, key: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(principal.len() as u16).to_be_bytes());
        body.extend_from_slice(&(realm.len() as u16).to_be_bytes());
        body.extend_from_slice(realm.as_bytes());
        for c in principal {
            body.extend_from_slice(&(c.len() as u16).to_be_bytes());
            body.extend_from_slice(c.as_bytes());
        }
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        body.push(kvno as u8);
        body.extend_from_slice(&enctype.to_be_bytes());
        body.extend_from_slice(&(key.len() as u16).to_be_bytes());
        body.extend_from_slice(key);
        body.extend_from_slice(&kvno.to_be_bytes());
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn picks_the_strongest_newest_key_of_the_principal() {
        let mut file = vec![0x05, 0x02];
        file.extend(entry(&["alice"], "WINRM.TEST", 17, 3, &[1; 16]));
        file.extend(entry(&["alice"], "WINRM.TEST", 18, 2, &[2; 32]));
        file.extend(entry(&["alice"], "WINRM.TEST", 18, 3, &[3; 32]));
        file.extend((-8i32).to_be_bytes());
        file.extend([0; 8]);
        file.extend(entry(&["HTTP", "fs01"], "WINRM.TEST", 18, 1, &[4; 32]));
        file.extend(entry(&["bob"], "WINRM.TEST", 23, 1, &[5; 16]));
        let keys = parse(&file).unwrap();
        assert_eq!(keys.len(), 4, "RC4 (23) is skipped");
        let key = key_for(&keys, "alice@winrm.test").unwrap();
        assert_eq!((key.enctype, key.kvno, key.key[0]), (18, 3, 3));
        assert_eq!(key_for(&keys, "HTTP/fs01@WINRM.TEST").unwrap().key[0], 4);
        assert!(!format!("{key:?}").contains("3, 3"), "keys never print");
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(parse(b"").is_err());
        assert!(parse(&[0x05, 0x01]).is_err());
        let mut file = vec![0x05, 0x02];
        file.extend(entry(&["alice"], "R", 18, 1, &[1; 32]));
        for cut in 3..file.len() {
            let _ = parse(&file[..cut]);
        }
        assert!(parse(&file[..file.len() - 3]).is_err());
        // An AES key of the wrong length is refused by name, as in a ticket cache.
        for (enctype, len) in [(18u16, 20usize), (17, 32), (18, 0)] {
            let mut file = vec![0x05, 0x02];
            file.extend(entry(&["alice"], "R", enctype, 1, &vec![1; len]));
            let e = parse(&file).unwrap_err().to_string();
            assert!(e.contains(&format!("alice@R has {len} bytes")), "{e}");
        }
    }
}
