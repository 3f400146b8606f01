//! Property tests: the parsers never panic, whatever the bytes; escaping always round-trips.

use proptest::prelude::*;
use winrm_sessions::cim::{Datetime, Interval};
use winrm_sessions::wsman::request::{self, Enumerate};
use winrm_sessions::wsman::{
    Addressing, EnumerationMode, Filter, MessageId, parse_request, parse_response,
};

fn demo_responses() -> Vec<Vec<u8>> {
    let dir = crate::support::demo_fixtures();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".response.xml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn response_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_response(&bytes);
        let _ = parse_request(&bytes);
    }

    #[test]
    fn response_parser_never_panics_on_mutated_windows_responses(
        which in 0usize..1000,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let samples = demo_responses();
        let mut bytes = samples[which % samples.len()].clone();
        for (index, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = index.index(bytes.len());
            match op {
                0 => bytes[at] = byte,
                1 => { bytes.remove(at); }
                2 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        let _ = parse_response(&bytes);
    }

    #[test]
    fn datetime_and_interval_parsers_never_panic(text in ".{0,40}") {
        let _ = Datetime::parse(&text);
        let _ = Interval::parse(&text);
    }

    #[test]
    fn valid_datetimes_round_trip_with_their_offset(
        year in 1601i32..9999, month in 1u8..=12, day in 1u8..=28,
        hour in 0u8..24, minute in 0u8..60, second in 0u8..60,
        micros in 0u32..1_000_000, offset in -720i32..=840,
    ) {
        let sign = if offset < 0 { '-' } else { '+' };
        let frac = format!("{micros:06}");
        let frac = frac.trim_end_matches('0');
        let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{sign}{:02}:{:02}",
            offset.abs() / 60, offset.abs() % 60
        );
        let parsed = Datetime::parse(&text).unwrap();
        prop_assert_eq!(parsed.as_str(), text.as_str());
        prop_assert_eq!(parsed.to_offset_datetime().offset().whole_minutes() as i32, offset);
        prop_assert_eq!(parsed.to_offset_datetime().microsecond(), micros);
    }

    /// No WQL text, however hostile, can break out of the filter element.
    #[test]
    fn wql_is_escaped_and_read_back_exactly(wql in "[ -~\u{a0}-\u{2ff}\u{4e00}-\u{4e10}]{0,80}") {
        let envelope = request::enumerate(
            &Addressing::new("http://h/wsman"),
            &Enumerate {
                resource_uri: "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*".into(),
                cim_namespace: None,
                filter: Some(Filter::Wql(wql.clone())),
                mode: EnumerationMode::Objects,
                max_elements: 1,
            },
            &MessageId::random(),
        );
        let summary = parse_request(envelope.as_bytes()).unwrap();
        let folded = wql.split_whitespace().collect::<Vec<_>>().join(" ");
        prop_assert_eq!(summary.filter.unwrap().1, folded);
        prop_assert_eq!(summary.body_element.as_deref(), Some("Enumerate"));
    }
}
