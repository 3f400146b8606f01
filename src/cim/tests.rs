use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Sample {
    session_id: u64,
    num_opens: Option<u32>,
    client_user_name: Option<String>,
    encrypted: Option<bool>,
    start_time: Option<Datetime>,
    #[serde(default)]
    roles: Vec<String>,
    offset: Option<i32>,
    antecedent: Option<Reference>,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn sample() -> Instance {
    Instance::new("Sample")
        .with("SessionId", text("18446744073709551615"))
        .with("NumOpens", text(" 3 "))
        .with("ClientUserName", text(""))
        .with("Encrypted", text("true"))
        .with(
            "StartTime",
            Value::Datetime(Datetime::parse("2026-11-20T08:15:00.5+01:00").unwrap()),
        )
        .with("Roles", text("only-one"))
        .with("Offset", text("-1"))
        .with(
            "Unknown",
            text("kept in the instance, ignored by the struct"),
        )
}

#[test]
fn uint64_max_is_exact() {
    let s: Sample = sample().deserialize().unwrap();
    assert_eq!(s.session_id, u64::MAX);
    assert_eq!(s.num_opens, Some(3));
    assert_eq!(s.offset, Some(-1));
}

#[test]
fn empty_string_is_not_nil() {
    let s: Sample = sample().deserialize().unwrap();
    assert_eq!(s.client_user_name.as_deref(), Some(""));
    let nil = Instance::new("Sample")
        .with("SessionId", text("1"))
        .with("ClientUserName", Value::Null);
    let s: Sample = nil.deserialize().unwrap();
    assert_eq!(s.client_user_name, None);
}

#[test]
fn one_element_array_reads_as_array_when_the_schema_says_so() {
    let s: Sample = sample().deserialize().unwrap();
    assert_eq!(s.roles, vec!["only-one"]);
    let two = Instance::new("X")
        .with("SessionId", text("1"))
        .with("Roles", text("only-one"))
        .with("Roles", text("second"));
    let s: Sample = two.deserialize().unwrap();
    assert_eq!(s.roles, vec!["only-one", "second"]);
}

#[test]
fn text_in_an_integer_names_class_and_property() {
    let bad = Instance::new("MSFT_SmbSession").with("SessionId", text("twelve"));
    let err = bad.deserialize::<Sample>().unwrap_err();
    assert_eq!(err.class(), Some("MSFT_SmbSession"));
    assert_eq!(err.property(), Some("SessionId"));
    assert_eq!(
        err.to_string(),
        r#"property MSFT_SmbSession.SessionId: expected uint64, found "twelve""#
    );
}

#[test]
fn overflow_is_reported_as_out_of_range() {
    let bad = Instance::new("X")
        .with("SessionId", text("1"))
        .with("NumOpens", text("4294967296"));
    let err = bad.deserialize::<Sample>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "property X.NumOpens: 4294967296 is out of range for uint32"
    );
}

#[test]
fn missing_required_property_is_an_error() {
    let err = Instance::new("X").deserialize::<Sample>().unwrap_err();
    assert!(err.to_string().contains("SessionId"), "{err}");
}

#[test]
fn nil_into_a_required_string_is_an_error_not_an_empty_string() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Strict {
        #[serde(rename = "Name")]
        name: String,
    }
    let err = Instance::new("X")
        .with("Name", Value::Null)
        .deserialize::<Strict>()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "property X.Name: expected string, found nil"
    );
}

#[test]
fn references_deserialize_with_selectors() {
    let reference = Reference::new(
        "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession",
    )
    .with_selector("ComputerName", "fe80::1")
    .with_selector("UserName", "Zoë");
    let inst = Instance::new("X")
        .with("SessionId", text("1"))
        .with("Antecedent", Value::Reference(Box::new(reference.clone())));
    let s: Sample = inst.deserialize().unwrap();
    assert_eq!(s.antecedent, Some(reference));
}

#[test]
fn booleans_follow_xml_schema() {
    for (raw, expected) in [("true", true), ("false", false), ("1", true), ("0", false)] {
        let s: Sample = Instance::new("X")
            .with("SessionId", text("1"))
            .with("Encrypted", text(raw))
            .deserialize()
            .unwrap();
        assert_eq!(s.encrypted, Some(expected));
    }
    let err = Instance::new("X")
        .with("SessionId", text("1"))
        .with("Encrypted", text("yes"))
        .deserialize::<Sample>()
        .unwrap_err();
    assert!(err.to_string().contains("expected boolean"), "{err}");
}

#[test]
fn dynamic_json_keeps_text_nil_and_arrays() {
    let json = serde_json::to_string(&sample().with("Nil", Value::Null)).unwrap();
    assert!(
        json.starts_with(r#"{"SessionId":"18446744073709551615","NumOpens":" 3 ""#),
        "{json}"
    );
    assert!(json.ends_with(r#""Nil":null}"#), "{json}");
}
