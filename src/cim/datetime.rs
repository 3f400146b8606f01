//! CIM `datetime` timestamps as WS-Management renders them.
//!
//! WMI over WinRM writes a timestamp as an `xs:dateTime` inside `<cim:Datetime>`, with 0 to 6
//! fraction digits (trailing zeros dropped) and either `Z` or the server's local offset
//! (`2013-04-29T11:43:11.203125-07:00`). WQL and some providers use the DMTF form
//! `yyyymmddHHMMSS.mmmmmmsUUU` instead. [`Datetime`] accepts both, keeps the offset the server
//! sent, and renders back the exact text it received (RFC 3339 for the DMTF form).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::ValueError;

/// A point in time with the UTC offset the server reported.
///
/// Equality compares the text as received, so that a value survives a round trip unchanged;
/// compare [`Datetime::to_offset_datetime`] values to compare instants.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Datetime {
    text: Box<str>,
    value: OffsetDateTime,
}

impl Datetime {
    /// Parses an `xs:dateTime` (as in `<cim:Datetime>`) or a DMTF datetime string.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        let value = if looks_like_dmtf(trimmed) {
            let value = parse_dmtf(trimmed).ok_or_else(|| invalid(trimmed))?;
            return Ok(Self::from_offset_datetime(value));
        } else {
            parse_xs_datetime(trimmed).ok_or_else(|| invalid(trimmed))?
        };
        Ok(Self {
            text: trimmed.into(),
            value,
        })
    }

    /// Wraps an instant; its text is RFC 3339 with only the fraction digits it needs.
    pub fn from_offset_datetime(value: OffsetDateTime) -> Self {
        Self {
            text: format_rfc3339(value).into_boxed_str(),
            value,
        }
    }

    /// The instant, with the server's offset.
    pub fn to_offset_datetime(&self) -> OffsetDateTime {
        self.value
    }

    /// The text exactly as received (RFC 3339 / `xs:dateTime`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn invalid(text: &str) -> ValueError {
    ValueError::new(format!("invalid datetime {text:?}"))
}

impl fmt::Display for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Datetime({})", self.text)
    }
}

impl FromStr for Datetime {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Datetime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Datetime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Datetime::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Digits at fixed positions of an ASCII string, or `None`.
fn digits(s: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    let part = s.get(range)?;
    if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    part.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn parse_xs_datetime(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    // YYYY-MM-DDTHH:MM:SS
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = i32::try_from(digits(b, 0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(b, 5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(b, 8..10)?).ok()?;
    let hour = u8::try_from(digits(b, 11..13)?).ok()?;
    let minute = u8::try_from(digits(b, 14..16)?).ok()?;
    let second = u8::try_from(digits(b, 17..19)?).ok()?;
    let mut pos = 19;
    let mut nanos = 0u32;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let count = end - start;
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(b, start..end)? * 10u32.pow(u32::try_from(9 - count).ok()?);
        pos = end;
    }
    let offset = match &b[pos..] {
        [] | [b'Z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let hours = i8::try_from(digits(rest, 0..2)?).ok()?;
            let minutes = i8::try_from(digits(rest, 3..5)?).ok()?;
            let (h, m) = if *sign == b'-' {
                (-hours, -minutes)
            } else {
                (hours, minutes)
            };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        _ => return None,
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// `yyyymmddHHMMSS.mmmmmmsUUU`: 14 digits, a dot, 6 digits, a sign and the offset in minutes.
fn looks_like_dmtf(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 25 && b[14] == b'.' && matches!(b[21], b'+' | b'-')
}

fn parse_dmtf(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let year = i32::try_from(digits(b, 0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(b, 4..6)?).ok()?).ok()?;
    let day = u8::try_from(digits(b, 6..8)?).ok()?;
    let hour = u8::try_from(digits(b, 8..10)?).ok()?;
    let minute = u8::try_from(digits(b, 10..12)?).ok()?;
    let second = u8::try_from(digits(b, 12..14)?).ok()?;
    let micros = digits(b, 15..21)?;
    let offset_minutes = i32::try_from(digits(b, 22..25)?).ok()?;
    let offset_minutes = if b[21] == b'-' {
        -offset_minutes
    } else {
        offset_minutes
    };
    let offset = UtcOffset::from_whole_seconds(offset_minutes.checked_mul(60)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_micro(hour, minute, second, micros).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn format_rfc3339(value: OffsetDateTime) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        value.year(),
        u8::from(value.month()),
        value.day(),
        value.hour(),
        value.minute(),
        value.second()
    );
    let nanos = value.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = value.offset();
    if offset.is_utc() {
        out.push('Z');
    } else {
        let total = offset.whole_minutes();
        let sign = if total < 0 { '-' } else { '+' };
        let total = total.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", total / 60, total % 60));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_and_offset_as_received() {
        let d = Datetime::parse("2013-04-29T11:43:11.203125-07:00").unwrap();
        assert_eq!(d.as_str(), "2013-04-29T11:43:11.203125-07:00");
        assert_eq!(d.to_offset_datetime().offset().whole_hours(), -7);
        assert_eq!(d.to_offset_datetime().microsecond(), 203_125);
    }

    #[test]
    fn accepts_zero_to_six_fraction_digits() {
        for text in [
            "2013-03-09T02:57:32Z",
            "2013-04-15T18:12:38.8Z",
            "2013-04-15T18:12:38.4124Z",
            "2013-04-15T18:12:38.866781Z",
        ] {
            assert_eq!(Datetime::parse(text).unwrap().as_str(), text);
        }
        let d = Datetime::parse("2013-04-15T18:12:38.913Z").unwrap();
        assert_eq!(d.to_offset_datetime().millisecond(), 913);
    }

    #[test]
    fn converts_dmtf_form_to_rfc3339() {
        let d = Datetime::parse("20240102030405.123456+060").unwrap();
        assert_eq!(d.as_str(), "2024-01-02T03:04:05.123456+01:00");
        let d = Datetime::parse("20240102030405.000000-300").unwrap();
        assert_eq!(d.as_str(), "2024-01-02T03:04:05-05:00");
    }

    #[test]
    fn rejects_garbage_and_impossible_dates() {
        for text in [
            "",
            "yesterday",
            "2013-02-30T00:00:00Z",
            "2013-04-15T25:00:00Z",
            "2013-04-15T18:12:38.Z",
            "2013-04-15T18:12:38.1234567890Z",
            "2013-04-15T18:12:38+1:00",
            "2013-04-15T18:12:38ZZ",
            "２０１３-04-15T18:12:38Z",
        ] {
            assert!(
                Datetime::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }
}
