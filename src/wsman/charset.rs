//! The character encoding of a response: SOAP messages may be UTF-8 or UTF-16 (WS-I Basic
//! Profile R1012), and WinRM answers in UTF-16 when asked to (PowerShell's
//! `New-WSManSessionOption -UseUTF16`), as may a proxy. The parser reads UTF-8; a UTF-16 body is
//! decoded to UTF-8 first. UTF-8 stays the fast path: a look at the first bytes and the
//! declared charset, nothing copied.
//!
//! What decides: a byte order mark, else the `charset` the HTTP `Content-Type` (or an encrypted
//! body's `OriginalContent`) declares, else UTF-8. A declared charset that the bytes contradict
//! (UTF-8 declared, a UTF-16 mark found; UTF-16 declared, 8-bit bytes) is an error that says so,
//! never a guess.

use bytes::Bytes;

/// How a body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
        }
    }
}

/// What a charset declares: an encoding, or UTF-16 of either byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    Exactly(Encoding),
    Utf16,
}

/// Why a body's encoding could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodingError(String);

/// The `charset` parameter of a content type (`application/soap+xml;charset=UTF-16`), if any.
pub fn charset_of(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

fn declared(charset: &str) -> Result<Declared, EncodingError> {
    match charset.to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" => Ok(Declared::Exactly(Encoding::Utf8)),
        "utf-16" | "utf16" => Ok(Declared::Utf16),
        "utf-16le" => Ok(Declared::Exactly(Encoding::Utf16Le)),
        "utf-16be" => Ok(Declared::Exactly(Encoding::Utf16Be)),
        other => Err(EncodingError(format!(
            "the response is in charset {other:?}; SOAP allows UTF-8 and UTF-16 only"
        ))),
    }
}

/// The byte order mark at the start of `body`, and its length.
fn mark(body: &[u8]) -> Option<(Encoding, usize)> {
    match body {
        [0xef, 0xbb, 0xbf, ..] => Some((Encoding::Utf8, 3)),
        [0xff, 0xfe, ..] => Some((Encoding::Utf16Le, 2)),
        [0xfe, 0xff, ..] => Some((Encoding::Utf16Be, 2)),
        _ => None,
    }
}

/// UTF-16 without a mark, told by its first character (`<` or whitespace, as XML starts):
/// a zero byte after it is little-endian, before it big-endian.
fn unmarked_utf16(body: &[u8]) -> Option<Encoding> {
    match body {
        [c, 0, ..] if c.is_ascii() && *c != 0 => Some(Encoding::Utf16Le),
        [0, c, ..] if c.is_ascii() && *c != 0 => Some(Encoding::Utf16Be),
        _ => None,
    }
}

/// The body as UTF-8: as it is when it is UTF-8 (without its mark, if it has one), decoded when
/// it is UTF-16. `charset` is what the message declared, if it declared anything.
pub fn to_utf8(charset: Option<&str>, body: Bytes) -> Result<Bytes, EncodingError> {
    let declared = charset.map(declared).transpose()?;
    let found = mark(&body);
    let encoding = match (declared, found) {
        (None, None) | (Some(Declared::Exactly(Encoding::Utf8)), None) => return Ok(body),
        (None, Some((encoding, _))) => encoding,
        (Some(Declared::Utf16), Some((encoding, _))) if encoding != Encoding::Utf8 => encoding,
        (Some(Declared::Exactly(wanted)), Some((encoding, _))) if wanted == encoding => encoding,
        (Some(declared), Some((encoding, _))) => {
            return Err(EncodingError(format!(
                "the response declares {} but starts with a {} byte order mark",
                charset.unwrap_or(match declared {
                    Declared::Utf16 => "UTF-16",
                    Declared::Exactly(e) => e.name(),
                }),
                encoding.name()
            )));
        }
        (Some(Declared::Utf16), None) => unmarked_utf16(&body).ok_or_else(|| {
            EncodingError(format!(
                "the response declares {} but its bytes are not UTF-16",
                charset.unwrap_or("UTF-16")
            ))
        })?,
        (Some(Declared::Exactly(encoding)), None) => {
            if unmarked_utf16(&body) != Some(encoding) && !body.is_empty() {
                return Err(EncodingError(format!(
                    "the response declares {} but its bytes are not {}",
                    charset.unwrap_or(encoding.name()),
                    encoding.name()
                )));
            }
            encoding
        }
    };
    let skip = found.map_or(0, |(_, len)| len);
    if encoding == Encoding::Utf8 {
        return Ok(body.slice(skip..));
    }
    decode_utf16(&body[skip..], encoding).map(Bytes::from)
}

fn decode_utf16(bytes: &[u8], encoding: Encoding) -> Result<String, EncodingError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(EncodingError(format!(
            "the {} response has an odd number of bytes ({}): it was cut",
            encoding.name(),
            bytes.len()
        )));
    }
    let units = bytes.chunks_exact(2).map(|pair| match encoding {
        Encoding::Utf16Be => u16::from_be_bytes([pair[0], pair[1]]),
        _ => u16::from_le_bytes([pair[0], pair[1]]),
    });
    let mut text = String::with_capacity(bytes.len() / 2 + bytes.len() / 8);
    for (index, unit) in char::decode_utf16(units).enumerate() {
        match unit {
            Ok(c) => text.push(c),
            Err(e) => {
                return Err(EncodingError(format!(
                    "the {} response has an unpaired surrogate 0x{:04X} at byte {}",
                    encoding.name(),
                    e.unpaired_surrogate(),
                    index * 2
                )));
            }
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-16"?><s:Envelope>é€𝄞</s:Envelope>"#;

    fn utf16(text: &str, big_endian: bool, mark: bool) -> Bytes {
        let mut out = Vec::new();
        if mark {
            out.extend_from_slice(if big_endian {
                &[0xfe, 0xff]
            } else {
                &[0xff, 0xfe]
            });
        }
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        Bytes::from(out)
    }

    #[test]
    fn utf8_passes_through_without_a_copy() {
        let body = Bytes::from_static(b"<s:Envelope/>");
        for charset in [None, Some("UTF-8"), Some("utf8")] {
            let out = to_utf8(charset, body.clone()).unwrap();
            assert_eq!(out.as_ptr(), body.as_ptr(), "{charset:?}");
        }
        let marked = Bytes::from_static(b"\xef\xbb\xbf<s:Envelope/>");
        assert_eq!(
            &to_utf8(Some("utf-8"), marked).unwrap()[..],
            b"<s:Envelope/>"
        );
    }

    #[test]
    fn utf16_of_either_order_is_decoded() {
        for (big_endian, mark, charset) in [
            (false, true, None),
            (true, true, None),
            (false, true, Some("UTF-16")),
            (true, true, Some("utf-16")),
            (false, false, Some("UTF-16")),
            (true, false, Some("UTF-16")),
            (false, false, Some("UTF-16LE")),
            (true, false, Some("utf-16be")),
            (false, true, Some("UTF-16LE")),
        ] {
            let out = to_utf8(charset, utf16(XML, big_endian, mark)).unwrap();
            assert_eq!(
                std::str::from_utf8(&out).unwrap(),
                XML,
                "{big_endian} {mark} {charset:?}"
            );
        }
        assert_eq!(
            charset_of("application/soap+xml; charset=\"UTF-16\""),
            Some("UTF-16")
        );
        assert_eq!(charset_of("application/soap+xml"), None);
    }

    #[test]
    fn declared_and_actual_encodings_that_disagree_are_refused() {
        let cases = [
            (
                Some("UTF-8"),
                utf16(XML, false, true),
                "declares UTF-8 but starts with a UTF-16LE",
            ),
            (
                Some("UTF-16LE"),
                utf16(XML, true, true),
                "declares UTF-16LE but starts with a UTF-16BE",
            ),
            (
                Some("UTF-16"),
                Bytes::from_static(b"<s:Envelope/>"),
                "declares UTF-16 but its bytes are not UTF-16",
            ),
            (
                Some("UTF-16"),
                Bytes::from_static(b"\xef\xbb\xbf<s/>"),
                "declares UTF-16 but starts with a UTF-8",
            ),
            (
                Some("UTF-16BE"),
                utf16(XML, false, false),
                "declares UTF-16BE but its bytes are not UTF-16BE",
            ),
            (
                Some("ISO-8859-1"),
                Bytes::from_static(b"<s/>"),
                "charset \"iso-8859-1\"",
            ),
        ];
        for (charset, body, expected) in cases {
            let e = to_utf8(charset, body).unwrap_err();
            assert!(e.to_string().contains(expected), "{charset:?}: {e}");
        }
    }

    #[test]
    fn cut_or_broken_utf16_is_an_error_not_a_panic() {
        let mut odd = utf16(XML, false, true).to_vec();
        odd.pop();
        let e = to_utf8(None, Bytes::from(odd)).unwrap_err();
        assert!(e.to_string().contains("odd number of bytes"), "{e}");
        let mut lone = vec![0xff, 0xfe, b'<', 0];
        lone.extend_from_slice(&0xd800u16.to_le_bytes());
        lone.extend_from_slice(&[b'>', 0]);
        let e = to_utf8(None, Bytes::from(lone)).unwrap_err();
        assert!(e.to_string().contains("unpaired surrogate 0xD800"), "{e}");
        for n in 0..8 {
            let _ = to_utf8(Some("UTF-16"), Bytes::from(vec![0u8; n]));
            let _ = to_utf8(None, Bytes::from(vec![0xff; n]));
        }
    }
}
