//! An [`Instance`] as JSON and back, losing nothing: text stays text, nil stays nil, datetimes,
//! intervals, references, embedded objects and arrays keep their kind. What a store keeps, so
//! that a session read back is the session that was seen.
//!
//! `{"class": "MSFT_SmbSession", "ns": "http://…/MSFT_SmbSession", "props": [["SessionId",
//! "8813272891621"], ["ClusterNodeName", null], ["Start", {"datetime": "…"}]]}`

use serde_json::{Map, Value as Json, json};

use crate::cim::{Datetime, Instance, Interval, Reference, SelectorValue, Value};

/// The JSON of an instance.
pub(crate) fn encode(instance: &Instance) -> Json {
    let mut object = Map::new();
    object.insert("class".into(), instance.class_name().into());
    if let Some(ns) = instance.namespace_uri() {
        object.insert("ns".into(), ns.into());
    }
    let props: Vec<Json> = instance
        .properties()
        .iter()
        .map(|p| json!([&*p.name, encode_value(&p.value)]))
        .collect();
    object.insert("props".into(), props.into());
    Json::Object(object)
}

fn encode_value(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Text(text) => text.as_str().into(),
        Value::Datetime(d) => json!({ "datetime": d.as_str() }),
        Value::Interval(i) => json!({ "interval": i.as_str() }),
        Value::Reference(r) => json!({ "ref": encode_reference(r) }),
        Value::Object(o) => json!({ "object": encode(o) }),
        Value::Array(items) => items.iter().map(encode_value).collect(),
    }
}

fn encode_reference(reference: &Reference) -> Json {
    let selectors: Vec<Json> = reference
        .selectors()
        .iter()
        .map(|s| match &s.value {
            SelectorValue::Text(text) => json!([s.name, text]),
            SelectorValue::Reference(inner) => json!([s.name, { "ref": encode_reference(inner) }]),
        })
        .collect();
    let mut object = Map::new();
    object.insert("uri".into(), reference.resource_uri().into());
    if let Some(address) = reference.address() {
        object.insert("address".into(), address.into());
    }
    object.insert("selectors".into(), selectors.into());
    Json::Object(object)
}

/// The instance a JSON document written by [`encode`] describes; a message when it is not one.
pub(crate) fn decode(json: &Json) -> Result<Instance, String> {
    let class = json["class"].as_str().ok_or("no class")?;
    let mut instance = Instance::new(class);
    if let Some(ns) = json["ns"].as_str() {
        instance = instance.with_namespace_uri(ns);
    }
    for prop in json["props"].as_array().ok_or("no properties")? {
        let name = prop[0].as_str().ok_or("a property without a name")?;
        instance.push(name, decode_value(&prop[1])?);
    }
    Ok(instance)
}

fn decode_value(json: &Json) -> Result<Value, String> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::String(text) => Value::Text(text.clone()),
        Json::Array(items) => {
            Value::Array(items.iter().map(decode_value).collect::<Result<_, _>>()?)
        }
        Json::Object(object) => {
            if let Some(text) = object.get("datetime").and_then(Json::as_str) {
                Value::Datetime(Datetime::parse(text).map_err(|e| e.to_string())?)
            } else if let Some(text) = object.get("interval").and_then(Json::as_str) {
                Value::Interval(Interval::parse(text).map_err(|e| e.to_string())?)
            } else if let Some(reference) = object.get("ref") {
                Value::Reference(Box::new(decode_reference(reference)?))
            } else if let Some(inner) = object.get("object") {
                Value::Object(Box::new(decode(inner)?))
            } else {
                return Err("an unknown kind of value".into());
            }
        }
        other => return Err(format!("an unexpected value {other}")),
    })
}

fn decode_reference(json: &Json) -> Result<Reference, String> {
    let mut reference = Reference::new(json["uri"].as_str().ok_or("a reference without URI")?);
    if let Some(address) = json["address"].as_str() {
        reference = reference.with_address(address);
    }
    for selector in json["selectors"].as_array().ok_or("no selectors")? {
        let name = selector[0].as_str().ok_or("a selector without a name")?;
        reference = match &selector[1] {
            Json::String(text) => reference.with_selector(name, text.as_str()),
            other => reference.with_reference_selector(
                name,
                decode_reference(other.get("ref").ok_or("an unknown selector value")?)?,
            ),
        };
    }
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_comes_back_as_it_was() {
        let inner = Reference::new(
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_LogonSession",
        )
        .with_selector("LogonId", "999");
        let reference = Reference::new(
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_SessionProcess",
        )
        .with_address("http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous")
        .with_reference_selector("Antecedent", inner)
        .with_selector("Dependent", "4");
        let instance = Instance::new("Win32_Example")
            .with_namespace_uri(
                "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Example",
            )
            .with(
                "Text",
                Value::Text("CONTOSO\\o'brien & \"sons\" <ops> 李雷".into()),
            )
            .with("Empty", Value::Text(String::new()))
            .with("Nil", Value::Null)
            .with(
                "Start",
                Value::Datetime(Datetime::parse("2026-11-20T08:15:42.866781-08:00").unwrap()),
            )
            .with("Idle", Value::Interval(Interval::parse("P1DT2H").unwrap()))
            .with("Ref", Value::Reference(Box::new(reference)))
            .with(
                "Object",
                Value::Object(Box::new(
                    Instance::new("Inner").with("A", Value::Text("1".into())),
                )),
            )
            .with(
                "Array",
                Value::Array(vec![Value::Text("a".into()), Value::Null]),
            );
        let json = encode(&instance);
        let text = serde_json::to_string(&json).unwrap();
        let back = decode(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, instance);
    }

    #[test]
    fn what_is_not_an_instance_is_said() {
        for bad in [
            json!({}),
            json!({"class": "X"}),
            json!({"class": "X", "props": [[1, "a"]]}),
            json!({"class": "X", "props": [["A", {"what": 1}]]}),
            json!({"class": "X", "props": [["A", {"datetime": "soon"}]]}),
            json!({"class": "X", "props": [["A", 42]]}),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
    }
}
