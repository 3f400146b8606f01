//! MIT credential caches (`FILE:` caches as `kinit` writes them, versions 3 and 4): the
//! tickets of a user who already ran `kinit`, so no password is needed here.
//!
//! Format: `u16` version (0x0503 or 0x0504), a version-4 header (`u16` length and tags, skipped),
//! the default principal, then credentials until the end of the file: client and server
//! principals, the session key (`u16` enctype, `u32`-counted value), four `u32` times, a `u8`
//! "is session-key ticket", `u32` ticket flags, addresses and authorization data (skipped), and
//! the ticket and second ticket as `u32`-counted DER. Everything is big-endian. A principal is
//! `u32` name type, `u32` component count, then the realm and components as counted strings.
//! Entries whose server realm is `X-CACHECONF:` are configuration, not tickets.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::auth::wire::{BigEndian, Truncated};

/// A principal: `components[0]/components[1]@realm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The name type (1 for a user, 2 for a service instance).
    pub name_type: i32,
    /// The realm.
    pub realm: String,
    /// The name components.
    pub components: Vec<String>,
}

impl Principal {
    /// `HTTP/host@REALM` from a service principal name (`HTTP/host`) and the realm to ask in.
    pub fn service(spn: &str, realm: &str) -> Self {
        let (name, realm) = match spn.rsplit_once('@') {
            Some((name, realm)) => (name, realm),
            None => (spn, realm),
        };
        Self {
            name_type: 2,
            realm: realm.to_owned(),
            components: name.split('/').map(str::to_owned).collect(),
        }
    }

    /// `krbtgt/REALM@REALM`.
    pub fn ticket_granting(realm: &str) -> Self {
        Self {
            name_type: 2,
            realm: realm.to_owned(),
            components: vec!["krbtgt".into(), realm.to_owned()],
        }
    }

    /// Same name and realm (the realm compared without case, as KDCs do).
    pub fn same_as(&self, other: &Principal) -> bool {
        self.components == other.components && self.realm.eq_ignore_ascii_case(&other.realm)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.components.join("/"), self.realm)
    }
}

/// A session key (its encryption type and bytes, zeroized on drop).
pub(crate) use super::crypto::Key as SessionKey;

/// One ticket of the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedTicket {
    /// Whom the ticket is for.
    pub client: Principal,
    /// The service it opens (`krbtgt/REALM@REALM` for a ticket-granting ticket).
    pub server: Principal,
    /// The session key shared with that service.
    pub key: SessionKey,
    /// Start of validity, seconds since 1970 (the authentication time when absent).
    pub start_time: u32,
    /// End of validity, seconds since 1970.
    pub end_time: u32,
    /// The ticket, DER (`Ticket ::= [APPLICATION 1] ...`).
    pub ticket: Vec<u8>,
}

impl CachedTicket {
    /// True when the ticket is valid at `now` (seconds since 1970).
    pub fn is_valid_at(&self, now: u64) -> bool {
        u64::from(self.start_time) <= now + 300 && now < u64::from(self.end_time)
    }
}

/// A credential cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialCache {
    /// Whose cache this is.
    pub default_principal: Principal,
    /// Its tickets, in file order.
    pub tickets: Vec<CachedTicket>,
}

impl CredentialCache {
    /// The ticket-granting ticket of the default principal's realm.
    pub fn ticket_granting_ticket(&self) -> Option<&CachedTicket> {
        let tgs = Principal::ticket_granting(&self.default_principal.realm);
        self.tickets.iter().find(|t| t.server.same_as(&tgs))
    }

    /// A ticket for `server`, valid at `now`, if `kinit`/`kvno` already got one.
    pub fn ticket_for(&self, server: &Principal, now: u64) -> Option<&CachedTicket> {
        self.tickets
            .iter()
            .find(|t| t.server.same_as(server) && t.is_valid_at(now))
    }
}

/// A credential cache that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Kerberos credential cache: {0}")]
pub struct CcacheError(pub String);

fn err(message: impl Into<String>) -> CcacheError {
    CcacheError(message.into())
}

/// Most entries read from one cache (a user's cache holds a handful).
const MAX_TICKETS: usize = 10_000;
/// Most components in a principal.
const MAX_COMPONENTS: u32 = 16;

impl From<Truncated> for CcacheError {
    fn from(_: Truncated) -> Self {
        err("truncated")
    }
}

impl<'a> BigEndian<'a> {
    /// `u32`-counted bytes; the count is checked against what is left before anything is
    /// allocated.
    fn counted(&mut self) -> Result<&'a [u8], CcacheError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?)
    }
    fn u32_string(&mut self) -> Result<String, CcacheError> {
        String::from_utf8(self.counted()?.to_vec()).map_err(|_| err("a name is not UTF-8"))
    }
    fn principal(&mut self) -> Result<Principal, CcacheError> {
        let name_type = self.u32()? as i32;
        let count = self.u32()?;
        if count > MAX_COMPONENTS {
            return Err(err(format!("a principal with {count} components")));
        }
        let realm = self.u32_string()?;
        let components = (0..count)
            .map(|_| self.u32_string())
            .collect::<Result<_, _>>()?;
        Ok(Principal {
            name_type,
            realm,
            components,
        })
    }
    /// Addresses or authorization data: a `u32` count of (`u16` type, counted value).
    fn skip_typed_list(&mut self) -> Result<(), CcacheError> {
        let count = self.u32()?;
        for _ in 0..count {
            self.u16()?;
            self.counted()?;
        }
        Ok(())
    }
}

/// Parses a version 3 or 4 `FILE:` cache.
pub fn parse(data: &[u8]) -> Result<CredentialCache, CcacheError> {
    let mut r = BigEndian { data };
    match r.u16()? {
        0x0504 => {
            let header_len = r.u16()? as usize;
            r.take(header_len)?;
        }
        0x0503 => {}
        v @ (0x0501 | 0x0502) => {
            return Err(err(format!(
                "version {v:#06x} (native byte order) is not supported; kinit writes version 4"
            )));
        }
        v => return Err(err(format!("not a credential cache (version {v:#06x})"))),
    }
    let default_principal = r.principal()?;
    let mut tickets = Vec::new();
    while !r.data.is_empty() {
        if tickets.len() >= MAX_TICKETS {
            return Err(err("more than 10000 entries"));
        }
        let client = r.principal()?;
        let server = r.principal()?;
        let enctype = i32::from(r.u16()? as i16);
        let value = Zeroizing::new(r.counted()?.to_vec());
        // An AES key of the wrong length would be cut or padded into another key (or stop the
        // cipher): the entry is refused by name. Other types are kept, and refused with their
        // reason if a connection ever needs them.
        let expected = match enctype {
            17 => Some(16),
            18 => Some(32),
            _ => None,
        };
        if let Some(expected) = expected
            && value.len() != expected
        {
            return Err(err(format!(
                "the ticket for {server} has a key of {} bytes for encryption type {enctype} \
                 ({expected} expected)",
                value.len()
            )));
        }
        let auth_time = r.u32()?;
        let start_time = r.u32()?;
        let end_time = r.u32()?;
        let _renew_till = r.u32()?;
        let _is_skey = r.u8()?;
        let _flags = r.u32()?;
        r.skip_typed_list()?;
        r.skip_typed_list()?;
        let ticket = r.counted()?.to_vec();
        let _second_ticket = r.counted()?;
        if server.realm == "X-CACHECONF:" {
            continue;
        }
        tickets.push(CachedTicket {
            client,
            server,
            key: SessionKey {
                enctype,
                bytes: value,
            },
            start_time: if start_time == 0 {
                auth_time
            } else {
                start_time
            },
            end_time,
            ticket,
        });
    }
    Ok(CredentialCache {
        default_principal,
        tickets,
    })
}

/// Where the cache is: `KRB5CCNAME` (`FILE:path`, a plain path, or `DIR:dir` whose `primary`
/// file names the current cache), else krb5.conf's `default_ccache_name`, else
/// `/tmp/krb5cc_<uid>`. Kernel keyrings, KCM and in-memory caches cannot be read from a file.
pub fn default_location(default_ccache_name: Option<&str>) -> Result<PathBuf, CcacheError> {
    let name = match std::env::var("KRB5CCNAME") {
        Ok(name) if !name.is_empty() => name,
        _ => match default_ccache_name {
            Some(name) => name.to_owned(),
            None => format!("FILE:/tmp/krb5cc_{}", uid()?),
        },
    };
    resolve(&name)
}

/// A cache name (`TYPE:residual`) as a file path.
pub fn resolve(name: &str) -> Result<PathBuf, CcacheError> {
    let name = if name.contains("%{uid}") {
        name.replace("%{uid}", &uid()?.to_string())
    } else {
        name.to_owned()
    };
    let (kind, residual) = match name.split_once(':') {
        Some((kind, residual)) if !kind.contains('/') => (kind.to_ascii_uppercase(), residual),
        _ => ("FILE".to_owned(), name.as_str()),
    };
    match kind.as_str() {
        "FILE" => Ok(PathBuf::from(residual)),
        "DIR" => {
            if let Some(file) = residual.strip_prefix(':') {
                return Ok(PathBuf::from(file));
            }
            let dir = Path::new(residual);
            let primary = std::fs::read_to_string(dir.join("primary")).map_err(|e| {
                err(format!(
                    "cannot read {}: {e}",
                    dir.join("primary").display()
                ))
            })?;
            Ok(dir.join(primary.trim()))
        }
        other => Err(err(format!(
            "{other}: caches cannot be read by this tool; point KRB5CCNAME at a file \
             (e.g. KRB5CCNAME=FILE:/tmp/krb5cc_winrm kinit user@REALM)"
        ))),
    }
}

/// The real user id, from `/proc/self/status` (no libc binding needed).
fn uid() -> Result<u32, CcacheError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|_| err("cannot find the user id: set KRB5CCNAME"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .ok_or_else(|| err("cannot find the user id: set KRB5CCNAME"))
}

/// Reads and parses the cache at `path`.
pub fn read(path: &Path) -> Result<CredentialCache, CcacheError> {
    // The file holds session keys: its bytes are wiped once parsed.
    let data = std::fs::read(path).map(Zeroizing::new).map_err(|e| {
        err(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no ticket cache at {} (run kinit first, or set KRB5CCNAME)",
                path.display()
            )
        } else {
            format!("cannot read {}: {e}", path.display())
        })
    })?;
    parse(&data).map_err(|e| err(format!("{}: {}", path.display(), e.0)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a version-4 cache, as kinit does.
    pub(crate) fn write(cache: &CredentialCache) -> Vec<u8> {
        fn counted(out: &mut Vec<u8>, b: &[u8]) {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        fn principal(out: &mut Vec<u8>, p: &Principal) {
            out.extend_from_slice(&(p.name_type as u32).to_be_bytes());
            out.extend_from_slice(&(p.components.len() as u32).to_be_bytes());
            counted(out, p.realm.as_bytes());
            for c in &p.components {
                counted(out, c.as_bytes());
            }
        }
        let mut out = vec![0x05, 0x04, 0, 12, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        principal(&mut out, &cache.default_principal);
        for t in &cache.tickets {
            principal(&mut out, &t.client);
            principal(&mut out, &t.server);
            out.extend_from_slice(&(t.key.enctype as u16).to_be_bytes());
            counted(&mut out, &t.key.bytes);
            for time in [t.start_time, t.start_time, t.end_time, t.end_time] {
                out.extend_from_slice(&time.to_be_bytes());
            }
            out.push(0);
            out.extend_from_slice(&0x40e1_0000u32.to_be_bytes());
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            counted(&mut out, b"auth-data");
            counted(&mut out, &t.ticket);
            counted(&mut out, b"");
        }
        out
    }

    pub(crate) fn user() -> Principal {
        Principal {
            name_type: 1,
            realm: "CORP.EXAMPLE".into(),
            components: vec!["alice".into()],
        }
    }

    pub(crate) fn sample(now: u32) -> CredentialCache {
        let ticket = |server: Principal, key: u8| CachedTicket {
            client: user(),
            server,
            key: SessionKey {
                enctype: 18,
                bytes: Zeroizing::new(vec![key; 32]),
            },
            start_time: now - 60,
            end_time: now + 3600,
            ticket: crate::auth::kerberos::messages::tests::ticket_der(),
        };
        CredentialCache {
            default_principal: user(),
            tickets: vec![
                ticket(Principal::ticket_granting("CORP.EXAMPLE"), 1),
                ticket(
                    Principal::service("HTTP/fs01.corp.example", "CORP.EXAMPLE"),
                    2,
                ),
            ],
        }
    }

    #[test]
    fn reads_what_kinit_writes() {
        let cache = sample(1_900_000_000);
        let parsed = parse(&write(&cache)).unwrap();
        assert_eq!(parsed, cache);
        assert_eq!(
            parsed.ticket_granting_ticket().unwrap().server.to_string(),
            "krbtgt/CORP.EXAMPLE@CORP.EXAMPLE"
        );
        let http = Principal::service("HTTP/fs01.corp.example", "corp.example");
        assert!(parsed.ticket_for(&http, 1_900_000_000).is_some());
        assert!(parsed.ticket_for(&http, 1_900_003_600).is_none(), "expired");
        assert!(format!("{:?}", parsed.tickets[0].key).contains("redacted"));
    }

    #[test]
    fn configuration_entries_are_not_tickets() {
        let mut cache = sample(1_900_000_000);
        cache.tickets[1].server.realm = "X-CACHECONF:".into();
        assert_eq!(parse(&write(&cache)).unwrap().tickets.len(), 1);
    }

    #[test]
    fn truncated_or_hostile_caches_are_errors() {
        let bytes = write(&sample(1_900_000_000));
        for cut in 0..bytes.len() - 1 {
            if let Ok(c) = parse(&bytes[..cut]) {
                // A cut exactly between entries is a shorter, valid cache.
                assert!(c.tickets.len() < 2, "cut at {cut}");
            }
        }
        assert!(parse(b"\x05\x02").is_err());
        assert!(parse(b"garbage").is_err());
        // A count far larger than the file allocates nothing.
        let mut huge = vec![0x05, 0x03, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        huge.extend_from_slice(&[0; 8]);
        assert!(parse(&huge).is_err());
        let mut many = vec![0x05, 0x03, 0, 0, 0, 1, 0, 0, 0, 1];
        many.extend_from_slice(&[0, 0, 0, 1, b'R']);
        assert!(parse(&many).is_err(), "one component announced, none given");
    }

    /// A key whose length does not match its type is refused when the cache is read, never a
    /// panic later nor a 32-byte key run as AES-128.
    #[test]
    fn keys_of_the_wrong_length_are_refused_by_name() {
        for (enctype, length) in [(18, 20), (18, 16), (17, 32), (17, 0), (18, 33)] {
            let mut cache = sample(1_900_000_000);
            cache.tickets[0].key = SessionKey {
                enctype,
                bytes: Zeroizing::new(vec![7; length]),
            };
            let e = parse(&write(&cache)).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "key of {length} bytes for encryption type {enctype}"
                )),
                "{enctype}/{length}: {e}"
            );
        }
        // Nor does a wrong-length key reach the ciphers any other way.
        let key = SessionKey {
            enctype: 18,
            bytes: Zeroizing::new(vec![7; 20]),
        };
        assert!(crate::auth::kerberos::crypto::checksum(&key, 7, b"x").is_err());
        assert!(crate::auth::kerberos::crypto::UsageKeys::new(&key, 7).is_err());
        assert!(crate::auth::kerberos::crypto::Aes::new(&[0; 20]).is_err());
    }

    #[test]
    fn cache_names() {
        assert_eq!(
            resolve("FILE:/tmp/krb5cc_1000").unwrap(),
            Path::new("/tmp/krb5cc_1000")
        );
        assert_eq!(resolve("/tmp/cc").unwrap(), Path::new("/tmp/cc"));
        assert_eq!(
            resolve("DIR::/run/cc/tkt").unwrap(),
            Path::new("/run/cc/tkt")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("primary"), "tkt7\n").unwrap();
        assert_eq!(
            resolve(&format!("DIR:{}", dir.path().display())).unwrap(),
            dir.path().join("tkt7")
        );
        let e = resolve("KEYRING:persistent:1000").unwrap_err();
        assert!(e.to_string().contains("KRB5CCNAME=FILE:"), "{e}");
        assert!(
            resolve("FILE:/tmp/krb5cc_%{uid}")
                .unwrap()
                .to_string_lossy()
                .starts_with("/tmp/krb5cc_")
        );
        let missing = read(Path::new("/nonexistent/krb5cc")).unwrap_err();
        assert!(missing.to_string().contains("run kinit"), "{missing}");
    }
}
