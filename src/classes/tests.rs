use super::*;
use crate::cim::{FromInstance, Value};

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// What an output gets from the typed view.
fn typed_record(
    instance: &Instance,
) -> Result<serde_json::Map<String, serde_json::Value>, crate::cim::DecodeError> {
    let typed = TypedInstance::new(instance)?;
    match serde_json::to_value(&typed).unwrap() {
        serde_json::Value::Object(map) => Ok(map),
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn smb_session_keeps_uint64_and_unknown_properties_in_the_record() {
    let instance = Instance::new("MSFT_SmbSession")
        .with("ClientComputerName", text("[2001:db8::7]"))
        .with("ClientUserName", text("CORP\\Zoë"))
        .with("NumOpens", text("18446744073709551615"))
        .with("SessionId", text("1152921504606847001"))
        .with("FutureProperty", text("from a newer Windows"));
    let typed: SmbSession = instance.deserialize().unwrap();
    assert_eq!(typed.num_opens, Some(u64::MAX));
    let record = typed_record(&instance).unwrap();
    assert_eq!(record["NumOpens"], serde_json::json!(u64::MAX));
    assert_eq!(
        record["SessionId"],
        serde_json::json!(1_152_921_504_606_847_001u64)
    );
    assert_eq!(record["Dialect"], serde_json::Value::Null);
    assert_eq!(record["FutureProperty"], "from a newer Windows");
    let keys: Vec<&String> = record.keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("ClientComputerName"));
    assert_eq!(
        keys.last().map(|k| k.as_str()),
        Some("FutureProperty"),
        "unknown ones last"
    );
    assert_eq!(
        keys.iter().filter(|k| k.as_str() == "SessionId").count(),
        1,
        "a typed property is not repeated as an unknown one"
    );
    assert_eq!(
        typed.reference().to_string(),
        r#"MSFT_SmbSession.SessionId="1152921504606847001""#
    );
}

#[test]
fn session_dispatches_on_the_concrete_class_and_keeps_unknown_subclasses() {
    let logon = Instance::new("Win32_LogonSession")
        .with("LogonId", text("999"))
        .with("LogonType", text("3"));
    let server = Instance::new("Win32_ServerSession")
        .with("ComputerName", text("10.0.0.7"))
        .with("UserName", text("alice"));
    let other = Instance::new("Win32_FutureSession").with("Name", text("x"));
    let Session::Logon(l) = Session::from_instance(logon).unwrap() else {
        panic!()
    };
    assert_eq!(l.logon_type_name(), Some("Network"));
    assert!(matches!(
        Session::from_instance(server).unwrap(),
        Session::Server(_)
    ));
    let Session::Other(o) = Session::from_instance(other.clone()).unwrap() else {
        panic!()
    };
    assert_eq!(o, other);
}

#[test]
fn text_in_a_uint32_is_a_decode_error_naming_the_property() {
    let bad = Instance::new("Win32_ServerSession")
        .with("ActiveTime", text("long"))
        .with("ComputerName", text("h"))
        .with("UserName", text("u"));
    let err = typed_record(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"property Win32_ServerSession.ActiveTime: expected uint32, found "long""#
    );
}

#[test]
fn projections_are_typed_without_inventing_unselected_properties() {
    let mut projection = Instance::new("Win32_Process")
        .with("Name", text("explorer.exe"))
        .with("ProcessId", text("6220"));
    projection.set_projection(true);
    let record = typed_record(&projection).unwrap();
    assert_eq!(
        serde_json::Value::Object(record),
        serde_json::json!({"Name": "explorer.exe", "ProcessId": 6220})
    );
    let mut links = Instance::new("Win32_SessionProcess").with(
        "Antecedent",
        Value::Reference(Box::new(
            crate::cim::Reference::new("urn:x").with_selector("LogonId", "999"),
        )),
    );
    links.set_projection(true);
    let record = typed_record(&links).unwrap();
    assert_eq!(record.len(), 1);
}

#[test]
fn schemas_and_keys_of_the_known_classes() {
    let smb = class_properties("msft_smbsession");
    assert_eq!(smb.first(), Some(&"ClientComputerName"));
    assert!(smb.contains(&"SessionId") && smb.len() == 11, "{smb:?}");
    assert_eq!(
        key_properties("Win32_ServerSession"),
        &["ComputerName", "UserName"]
    );
    assert!(class_properties("Win32_Share").is_empty());
    assert!(key_properties("Win32_Share").is_empty());
}
