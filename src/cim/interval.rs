//! CIM `datetime` intervals, rendered by WS-Management as `xs:duration` inside `<cim:Interval>`
//! (DSP0230), for example `P0DT0H1M40S`, or in the DMTF form `ddddddddHHMMSS.mmmmmm:000`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValueError;

/// A length of time, as the server wrote it.
///
/// CIM intervals are days, hours, minutes, seconds and microseconds; year and month components
/// have no fixed length and are rejected unless zero.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Interval {
    text: Box<str>,
    value: Duration,
}

impl Interval {
    /// Parses an `xs:duration` or a DMTF interval string.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let trimmed = text.trim();
        let value = if trimmed.starts_with('P') {
            parse_xs_duration(trimmed)
        } else {
            parse_dmtf_interval(trimmed)
        }
        .ok_or_else(|| ValueError::new(format!("invalid interval {trimmed:?}")))?;
        Ok(Self {
            text: trimmed.into(),
            value,
        })
    }

    /// The length of time.
    pub fn as_duration(&self) -> Duration {
        self.value
    }

    /// The text exactly as received.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<Duration> for Interval {
    fn from(value: Duration) -> Self {
        let secs = value.as_secs();
        let micros = value.subsec_micros();
        let mut text = format!(
            "P{}DT{}H{}M{}",
            secs / 86_400,
            secs % 86_400 / 3_600,
            secs % 3_600 / 60,
            secs % 60
        );
        if micros != 0 {
            text.push_str(format!(".{micros:06}").trim_end_matches('0'));
        }
        text.push('S');
        Self {
            text: text.into_boxed_str(),
            value: Duration::new(secs, micros * 1_000),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Interval({})", self.text)
    }
}

impl FromStr for Interval {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Interval::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `PnYnMnDTnHnMn.fS` with Y and M only when zero; at least one component.
fn parse_xs_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date_part, time_part) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    let mut components = 0;
    for (number, unit) in components_of(date_part)? {
        let whole = whole_number(number)?;
        let seconds = match unit {
            'Y' | 'M' if whole == 0 => 0,
            'D' => whole.checked_mul(86_400)?,
            _ => return None,
        };
        total = total.checked_add(Duration::from_secs(seconds))?;
        components += 1;
    }
    if let Some(time_part) = time_part {
        for (number, unit) in components_of(time_part)? {
            let part = match unit {
                'H' => Duration::from_secs(whole_number(number)?.checked_mul(3_600)?),
                'M' => Duration::from_secs(whole_number(number)?.checked_mul(60)?),
                'S' => seconds_with_fraction(number)?,
                _ => return None,
            };
            total = total.checked_add(part)?;
            components += 1;
        }
    }
    (components > 0).then_some(total)
}

/// Splits `1D2H` into `[("1", 'D'), ("2", 'H')]`; units must not repeat.
fn components_of(s: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            if i == start || out.iter().any(|&(_, u)| u == c) {
                return None;
            }
            out.push((&s[start..i], c));
            start = i + 1;
        }
    }
    (start == s.len()).then_some(out)
}

fn whole_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn seconds_with_fraction(s: &str) -> Option<Duration> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs = whole_number(whole)?;
    if s.contains('.') && (frac.is_empty() || frac.len() > 9) {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        u32::try_from(whole_number(frac)?).ok()? * 10u32.pow(u32::try_from(9 - frac.len()).ok()?)
    };
    Some(Duration::new(secs, nanos))
}

/// `ddddddddHHMMSS.mmmmmm:000`
fn parse_dmtf_interval(s: &str) -> Option<Duration> {
    let b = s.as_bytes();
    if b.len() != 25 || b[14] != b'.' || &b[21..] != b":000" {
        return None;
    }
    let days = whole_number(&s[0..8])?;
    let hours = whole_number(&s[8..10])?;
    let minutes = whole_number(&s[10..12])?;
    let seconds = whole_number(&s[12..14])?;
    let micros = u32::try_from(whole_number(&s[15..21])?).ok()?;
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(Duration::new(
        days * 86_400 + hours * 3_600 + minutes * 60 + seconds,
        micros * 1_000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dsp0230_example() {
        let i = Interval::parse("P0DT0H1M40S").unwrap();
        assert_eq!(i.as_duration(), Duration::from_secs(100));
        assert_eq!(i.as_str(), "P0DT0H1M40S");
    }

    #[test]
    fn parses_fractions_and_short_forms() {
        assert_eq!(
            Interval::parse("PT0.5S").unwrap().as_duration(),
            Duration::from_millis(500)
        );
        assert_eq!(
            Interval::parse("P2D").unwrap().as_duration(),
            Duration::from_secs(172_800)
        );
        assert_eq!(
            Interval::parse("00000001020304.000005:000")
                .unwrap()
                .as_duration(),
            Duration::new(86_400 + 2 * 3_600 + 3 * 60 + 4, 5_000)
        );
    }

    #[test]
    fn round_trips_from_duration() {
        let i = Interval::from(Duration::new(90_061, 250_000_000));
        assert_eq!(i.as_str(), "P1DT1H1M1.25S");
        assert_eq!(Interval::parse(i.as_str()).unwrap(), i);
    }

    #[test]
    fn rejects_malformed_durations() {
        for text in [
            "",
            "P",
            "PT",
            "P1Y",
            "P1M",
            "PT1.S",
            "P1DT",
            "PDT1S",
            "P1D1D",
            "-P1D",
            "PT1X",
            "P99999999999999999999D",
        ] {
            assert!(
                Interval::parse(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }
}
