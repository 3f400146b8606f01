//! Entry points to private machinery for this crate's own benchmarks (feature `__internals`).
//! Not public API: no stability, no documentation promises.

#[cfg(feature = "__internals")]
use std::ops::Range;
use std::path::{Path, PathBuf};

#[cfg(feature = "__internals")]
use crate::auth::context::{SecurityContext, Step};
#[cfg(feature = "__internals")]
use crate::auth::kerberos::ccache::SessionKey;
#[cfg(feature = "__internals")]
use crate::auth::kerberos::gss::{Role, Sealer};
#[cfg(feature = "__internals")]
use crate::auth::ntlm::acceptor::NtlmAcceptor;
#[cfg(feature = "__internals")]
use crate::auth::ntlm::{NtlmClient, NtlmCredentials};
#[cfg(feature = "__internals")]
use crate::auth::{Credentials, rc4::Rc4};

#[cfg(feature = "__internals")]
enum Pair {
    Ntlm(Box<NtlmClient>, Box<NtlmAcceptor>),
    Kerberos(Box<Sealer>, Box<Sealer>),
}

#[cfg(feature = "__internals")]
/// An established client and server context, to seal responses and open them as the client.
pub struct SealPair(Pair);

#[cfg(feature = "__internals")]
impl SealPair {
    /// NTLM, after a real handshake between this crate's client and acceptor.
    pub fn ntlm() -> Self {
        let mut client = NtlmClient::new(
            NtlmCredentials::new(&Credentials::new("demo", "demo")),
            "HTTP/fs01",
        );
        let mut server = NtlmAcceptor::new("demo", "demo");
        let Ok(Step::Continue(negotiate)) = client.step(None) else {
            panic!("NEGOTIATE")
        };
        let Ok(Step::Continue(challenge)) = server.step(Some(&negotiate)) else {
            panic!("CHALLENGE")
        };
        let Ok(Step::Done(Some(authenticate))) = client.step(Some(&challenge)) else {
            panic!("AUTHENTICATE")
        };
        server.step(Some(&authenticate)).expect("authenticated");
        Self(Pair::Ntlm(Box::new(client), Box::new(server)))
    }

    /// Kerberos Wrap tokens with an AES-256 session key.
    pub fn kerberos() -> Self {
        let key = || SessionKey::new(18, vec![7u8; 32]).expect("AES-256 key");
        Self(Pair::Kerberos(
            Box::new(Sealer::new(Role::Initiator, key(), true, 1, 1).expect("sealer")),
            Box::new(Sealer::new(Role::Acceptor, key(), true, 1, 1).expect("sealer")),
        ))
    }

    /// The server seals a response: its security header and sealed data.
    pub fn seal_response(&mut self, page: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let part = match &mut self.0 {
            Pair::Ntlm(_, server) => server.seal(page).expect("sealed"),
            Pair::Kerberos(_, server) => server.wrap(page).expect("sealed"),
        };
        (part.header, part.data)
    }

    /// The client opens it in place.
    pub fn open_response(&mut self, header: &[u8], data: &mut [u8]) -> Range<usize> {
        match &mut self.0 {
            Pair::Ntlm(client, _) => client.open(header, data).expect("opened"),
            Pair::Kerberos(client, _) => client.unwrap(header, data).expect("opened"),
        }
    }
}

#[cfg(feature = "__internals")]
/// The primitives NTLM unsealing is made of, once over `data`: RC4, then HMAC-MD5.
pub fn raw_ntlm_pass(data: &mut [u8]) -> [u8; 16] {
    Rc4::new(&[7; 16]).apply(data);
    crate::auth::ntlm::keys::hmac_md5(&[9; 16], &[&[0, 0, 0, 0], data])
}

#[cfg(feature = "__internals")]
/// The primitives Kerberos AES-256 unsealing is made of, once over `data` (a multiple of 16
/// bytes): AES-256 block decryption, then HMAC-SHA1.
pub fn raw_aes_pass(data: &mut [u8]) -> [u8; 12] {
    crate::auth::kerberos::crypto::raw_decrypt_blocks(&[7; 32], data);
    crate::auth::kerberos::crypto::hmac_sha1_96(&[9; 32], &[data])
}

/// The folder of peer captures (real Windows output, the MS-NLMP vectors) that the interop
/// suite reads: `WINRM_SESSIONS_PEER_FIXTURES`, else `../shared/peer-fixtures` next to this
/// repository or next to the repository it was cloned from. Missing, it fails the calling test
/// with where it looked: the suite that reads them never skips.
pub fn peer_fixtures(sub: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("WINRM_SESSIONS_PEER_FIXTURES") {
        candidates.push(dir.into());
    } else {
        candidates.push(manifest.join("../shared/peer-fixtures"));
        let origin = std::process::Command::new("git")
            .args(["config", "--get", "remote.origin.url"])
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if let Some(origin) = origin.filter(|o| Path::new(o).is_absolute()) {
            candidates.push(Path::new(&origin).join("../shared/peer-fixtures"));
        }
    }
    if let Some(dir) = candidates.iter().map(|c| c.join(sub)).find(|d| d.is_dir()) {
        return dir;
    }
    panic!(
        "the peer captures are missing (looked in {}): set WINRM_SESSIONS_PEER_FIXTURES to their \
         folder; they are not on any registry, so the interop suite needs a checkout next to \
         the shared material",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(feature = "__internals")]
/// Parses a response with the event reader alone (no fast scan of simple items), to compare
/// the two ways of reading on real captures.
pub fn parse_response_event_by_event(
    body: &[u8],
) -> Result<crate::wsman::Response, crate::wsman::ParseError> {
    crate::wsman::xml::SLOW_ONLY.with(|slow| slow.set(true));
    let parsed = crate::wsman::parse_response(body);
    crate::wsman::xml::SLOW_ONLY.with(|slow| slow.set(false));
    parsed
}

#[cfg(feature = "__internals")]
/// This crate's NTLM client without its transport, for a benchmark's raw-read client: the
/// handshake's tokens, and requests sealed and responses opened as the transport does.
pub struct RawNtlm(Box<NtlmClient>);

#[cfg(feature = "__internals")]
impl RawNtlm {
    pub fn new(user: &str, password: &str) -> Self {
        Self(Box::new(NtlmClient::new(
            NtlmCredentials::new(&Credentials::new(user, password)),
            "HTTP/localhost",
        )))
    }

    /// The next token to send (NEGOTIATE first, then AUTHENTICATE for the server's CHALLENGE).
    pub fn step(&mut self, challenge: Option<&[u8]>) -> Vec<u8> {
        match self.0.step(challenge).expect("handshake step") {
            Step::Continue(token) | Step::Done(Some(token)) => token,
            Step::Done(None) => Vec::new(),
        }
    }

    /// The Content-Type of a sealed request.
    pub fn content_type(&self) -> String {
        crate::auth::framing::content_type(self.0.protocol())
    }

    /// A sealed request body.
    pub fn seal(&mut self, envelope: &[u8]) -> Vec<u8> {
        let part = self.0.seal(envelope).expect("sealed");
        crate::auth::framing::encode(self.0.protocol(), &part)
    }

    /// Opens a sealed response in place; where its plaintext lies.
    pub fn open(&mut self, content_type: &str, body: &mut [u8]) -> Range<usize> {
        let (_, boundary) =
            crate::auth::framing::parse_content_type(content_type).expect("multipart/encrypted");
        crate::auth::framing::open_in_place(self.0.as_mut(), &boundary, body).expect("opened")
    }
}
