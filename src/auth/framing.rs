//! WinRM message encryption framing over HTTP (MS-WSMV 2.2.9.1), with no I/O and no crypto:
//! the sealed bytes come from the security context; this module only builds and splits the
//! `multipart/encrypted` body around them.
//!
//! ```text
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//! \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plaintext bytes>\r\n
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/octet-stream\r\n
//! <u32 LE header length><header (signature / wrap token)><sealed data>--Encrypted Boundary--\r\n
//! ```
//!
//! Parsing is lenient where implementations differ (boundary taken from the Content-Type, tabs
//! optional, a line break before a boundary optional, several part pairs) and strict where safety
//! depends on it (the declared lengths must add up exactly).

use std::fmt;
use std::ops::Range;

use super::context::{ContextError, SecurityContext};

/// The protocol of a connection authenticated with the `Negotiate` HTTP scheme (NTLM or SPNEGO).
pub const SPNEGO_PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";
/// The protocol of a connection authenticated with the `Kerberos` HTTP scheme.
pub const KERBEROS_PROTOCOL: &str = "application/HTTP-Kerberos-session-encrypted";

const BOUNDARY: &str = "Encrypted Boundary";

/// The Content-Type of an encrypted request.
pub fn content_type(protocol: &str) -> String {
    format!("multipart/encrypted;protocol=\"{protocol}\";boundary=\"{BOUNDARY}\"")
}

/// One sealed message: the security header (NTLM signature or Kerberos wrap token header) and
/// the sealed data, with the plaintext length it declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedPart {
    /// `Length=` of OriginalContent: the plaintext length (plus padding for RC4/DES Kerberos).
    pub original_length: usize,
    /// The security header.
    pub header: Vec<u8>,
    /// The sealed data.
    pub data: Vec<u8>,
}

/// Builds the body of an encrypted request or response.
pub fn encode(protocol: &str, part: &SealedPart) -> Vec<u8> {
    let mut out = Vec::with_capacity(part.header.len() + part.data.len() + 256);
    out.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\n\tContent-Type: {protocol}\r\n\tOriginalContent: \
             type=application/soap+xml;charset=UTF-8;Length={}\r\n--{BOUNDARY}\r\n\t\
             Content-Type: application/octet-stream\r\n",
            part.original_length
        )
        .as_bytes(),
    );
    let header_len = u32::try_from(part.header.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&part.header);
    out.extend_from_slice(&part.data);
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// A body that is not valid encrypted framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramingError(pub String);

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid encrypted message: {}", self.0)
    }
}

impl std::error::Error for FramingError {}

fn err(message: impl Into<String>) -> FramingError {
    FramingError(message.into())
}

/// The `protocol` and `boundary` parameters of a `multipart/encrypted` (or
/// `multipart/x-multi-encrypted`) Content-Type; `None` if it is not one.
pub fn parse_content_type(content_type: &str) -> Option<(String, String)> {
    let mut params = content_type.split(';').map(str::trim);
    let kind = params.next()?.to_ascii_lowercase();
    if kind != "multipart/encrypted" && kind != "multipart/x-multi-encrypted" {
        return None;
    }
    let mut protocol = None;
    let mut boundary = None;
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            "protocol" => protocol = Some(value),
            "boundary" => boundary = Some(value),
            _ => {}
        }
    }
    Some((protocol?, boundary.unwrap_or_else(|| BOUNDARY.to_owned())))
}

/// Where one sealed part lies in a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartLayout {
    /// `Length=` of OriginalContent.
    pub original_length: usize,
    /// The security header.
    pub header: Range<usize>,
    /// The sealed data.
    pub data: Range<usize>,
}

/// Splits an encrypted body into its sealed parts, as positions in `body`, so that they can be
/// opened where they lie. `boundary` comes from the Content-Type.
pub fn decode(boundary: &str, body: &[u8]) -> Result<Vec<PartLayout>, FramingError> {
    let mut parts = Vec::new();
    let offset = |rest: &[u8]| body.len() - rest.len();
    let mut rest = body;
    loop {
        rest = skip_line_breaks(rest);
        rest = expect_boundary(rest, boundary)?;
        if rest.starts_with(b"--") {
            break; // the closing boundary
        }
        // First part: headers naming the protocol and the original length.
        let (headers, after) = read_headers(rest)?;
        let original_length = headers
            .iter()
            .find_map(|h| original_length(h))
            .ok_or_else(|| err("no OriginalContent Length"))?;
        rest = skip_line_breaks(after);
        rest = expect_boundary(rest, boundary)?;
        // Second part: an octet-stream header line, then the binary.
        let (_, after) = read_headers(rest)?;
        rest = after;
        if rest.len() < 4 {
            return Err(err("truncated before the header length"));
        }
        let header_len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        let needed = header_len
            .checked_add(original_length)
            .ok_or_else(|| err("lengths overflow"))?;
        if rest.len() < needed {
            return Err(err(format!(
                "declares {header_len} + {original_length} bytes, has {}",
                rest.len()
            )));
        }
        let start = offset(rest);
        parts.push(PartLayout {
            original_length,
            header: start..start + header_len,
            data: start + header_len..start + needed,
        });
        rest = &rest[needed..];
        if parts.len() > 1024 {
            return Err(err("too many parts"));
        }
    }
    if parts.is_empty() {
        return Err(err("no encrypted part"));
    }
    Ok(parts)
}

/// Opens every sealed part of `body` in place with `context` and returns where the whole
/// plaintext lies: where the one part's plaintext is, or, with several parts, their plaintexts
/// moved together to the front. Each part must unseal to exactly its declared length.
pub(crate) fn open_in_place(
    context: &mut dyn SecurityContext,
    boundary: &str,
    body: &mut [u8],
) -> Result<Range<usize>, ContextError> {
    let malformed = |message: String| ContextError {
        message,
        credentials_rejected: false,
    };
    let parts = decode(boundary, body).map_err(|e| malformed(e.to_string()))?;
    let mut written = 0;
    let mut only = None;
    for part in &parts {
        let (head, tail) = body.split_at_mut(part.data.start);
        let header = &head[part.header.clone()];
        let data = &mut tail[..part.data.len()];
        let plain = context.open(header, data)?;
        if plain.len() != part.original_length {
            return Err(malformed(format!(
                "unsealed {} bytes but the message declares Length={}",
                plain.len(),
                part.original_length
            )));
        }
        let absolute = part.data.start + plain.start..part.data.start + plain.end;
        if parts.len() == 1 {
            only = Some(absolute);
        } else {
            body.copy_within(absolute.clone(), written);
            written += absolute.len();
        }
    }
    Ok(only.unwrap_or(0..written))
}

fn skip_line_breaks(mut s: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    s
}

/// `--` then the boundary, allowing one space between them (seen from Exchange).
fn expect_boundary<'a>(s: &'a [u8], boundary: &str) -> Result<&'a [u8], FramingError> {
    let s = s
        .strip_prefix(b"--")
        .ok_or_else(|| err("expected a boundary"))?;
    let s = s.strip_prefix(b" ").unwrap_or(s);
    let s = s
        .strip_prefix(boundary.as_bytes())
        .ok_or_else(|| err("expected the boundary from the Content-Type"))?;
    Ok(s)
}

/// Header lines up to and including the line ending of the last one. The headers of the binary
/// part end at its first line; the binary follows at once.
fn read_headers(s: &[u8]) -> Result<(Vec<String>, &[u8]), FramingError> {
    let s = skip_line_breaks(s);
    let mut headers = Vec::new();
    let mut rest = s;
    loop {
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| err("truncated header"))?;
        let line = String::from_utf8_lossy(&rest[..line_end]).trim().to_owned();
        rest = &rest[line_end + 1..];
        let is_octet_stream = line
            .to_ascii_lowercase()
            .contains("application/octet-stream");
        headers.push(line);
        if is_octet_stream || rest.starts_with(b"--") || headers.len() > 16 {
            return Ok((headers, rest));
        }
    }
}

/// The `charset` the first part's `OriginalContent` declares (`type=application/soap+xml;
/// charset=UTF-16;Length=…`), read before the body is opened in place.
pub(crate) fn declared_charset(body: &[u8]) -> Option<String> {
    // Only the headers are text: what follows them is ciphertext, so the lines are looked at
    // as bytes and only the one that names the original content is read as text.
    const NAME: &[u8] = b"OriginalContent:";
    let head = &body[..body.len().min(1024)];
    let line = head.split(|&b| b == b'\n').find_map(|line| {
        let line = line.trim_ascii_start();
        let name = line.get(..NAME.len())?;
        name.eq_ignore_ascii_case(NAME).then(|| &line[NAME.len()..])
    })?;
    // `type=application/soap+xml;charset=…;Length=…`: the first parameter stands where a
    // content type's media type does.
    let value = std::str::from_utf8(line).ok()?;
    crate::wsman::charset::charset_of(value).map(str::to_owned)
}

fn original_length(header: &str) -> Option<usize> {
    let (name, value) = header.split_once(':')?;
    if !name.trim().eq_ignore_ascii_case("OriginalContent") {
        return None;
    }
    value
        .split(';')
        .find_map(|p| {
            p.trim()
                .strip_prefix("Length=")
                .or_else(|| p.trim().strip_prefix("length="))
        })
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_charset_is_read_from_the_first_part() {
        let body = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-16;Length=5\r\n--Encrypted Boundary\r\n";
        assert_eq!(declared_charset(body).as_deref(), Some("UTF-16"));
        let plain =
            b"--Encrypted Boundary\r\nOriginalContent: type=application/soap+xml;Length=5\r\n";
        assert_eq!(declared_charset(plain), None);
        assert_eq!(declared_charset(b""), None);
        // Ciphertext after the headers is not read as text, however it looks.
        let mut sealed = body.to_vec();
        sealed.extend_from_slice(&[0xff; 2048]);
        assert_eq!(declared_charset(&sealed).as_deref(), Some("UTF-16"));
        let invalid = b"\tOriginalContent: type=application/soap+xml;charset=\xff;Length=5\r\n";
        assert_eq!(declared_charset(invalid), None);
    }

    fn part(n: u8) -> SealedPart {
        SealedPart {
            original_length: 5,
            header: vec![n; 16],
            data: vec![b'-', b'-', n, 0, 255],
        }
    }

    /// The parts of a body as `SealedPart`s again.
    fn parts(boundary: &str, body: &[u8]) -> Result<Vec<SealedPart>, FramingError> {
        Ok(decode(boundary, body)?
            .into_iter()
            .map(|p| SealedPart {
                original_length: p.original_length,
                header: body[p.header].to_vec(),
                data: body[p.data].to_vec(),
            })
            .collect())
    }

    #[test]
    fn round_trips() {
        let body = encode(SPNEGO_PROTOCOL, &part(1));
        assert_eq!(parts(BOUNDARY, &body).unwrap(), vec![part(1)]);
        let (protocol, boundary) = parse_content_type(&content_type(SPNEGO_PROTOCOL)).unwrap();
        assert_eq!(
            (protocol.as_str(), boundary.as_str()),
            (SPNEGO_PROTOCOL, BOUNDARY)
        );
    }

    #[test]
    fn accepts_what_other_implementations_write() {
        // No tabs, a CRLF before the closing boundary, and a space after the dashes.
        let mut body = b"--Encrypted Boundary\r\nContent-Type: application/HTTP-SPNEGO-session-encrypted\r\nOriginalContent: type=application/soap+xml;charset=UTF-8;Length=5\r\n-- Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n".to_vec();
        body.extend_from_slice(&16u32.to_le_bytes());
        body.extend_from_slice(&[1; 16]);
        body.extend_from_slice(&[b'-', b'-', 1, 0, 255]);
        body.extend_from_slice(b"\r\n--Encrypted Boundary--\r\n");
        assert_eq!(parts(BOUNDARY, &body).unwrap(), vec![part(1)]);
    }

    #[test]
    fn several_part_pairs() {
        let mut body = encode(SPNEGO_PROTOCOL, &part(1));
        body.truncate(body.len() - "--Encrypted Boundary--\r\n".len());
        body.extend_from_slice(&encode(SPNEGO_PROTOCOL, &part(2)));
        assert_eq!(parts(BOUNDARY, &body).unwrap(), vec![part(1), part(2)]);
    }

    #[test]
    fn wrong_lengths_and_truncation_are_errors() {
        let body = encode(SPNEGO_PROTOCOL, &part(1));
        for cut in [0, 10, 60, body.len() - 30, body.len() - 26] {
            assert!(decode(BOUNDARY, &body[..cut]).is_err(), "cut at {cut}");
        }
        let lying = String::from_utf8_lossy(&body).replace("Length=5", "Length=50");
        assert!(decode(BOUNDARY, lying.as_bytes()).is_err());
        let text = String::from_utf8_lossy(&body).into_owned();
        let huge = body
            .iter()
            .copied()
            .take(text.find("application/octet-stream").unwrap() + 26)
            .chain(u32::MAX.to_le_bytes())
            .collect::<Vec<u8>>();
        assert!(decode(BOUNDARY, &huge).is_err());
        assert!(decode("Other Boundary", &body).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The multipart/encrypted parser never panics on arbitrary or mutated bodies.
        #[test]
        fn the_parser_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
            header in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            flip in proptest::prelude::any::<proptest::sample::Index>(),
            text in ".{0,120}",
        ) {
            let _ = decode("Encrypted Boundary", &bytes);
            let _ = parse_content_type(&text);
            let part = SealedPart { original_length: data.len(), header, data };
            let body = encode(SPNEGO_PROTOCOL, &part);
            proptest::prop_assert_eq!(parts("Encrypted Boundary", &body).unwrap(), vec![part]);
            let _ = decode("Encrypted Boundary", &body[..cut.index(body.len() + 1)]);
            let mut flipped = body.clone();
            let at = flip.index(flipped.len());
            flipped[at] ^= 0x5a;
            let _ = decode("Encrypted Boundary", &flipped);
        }
    }
}
