//! An [`Instance`] as JSON and back, losing nothing: text stays text, nil stays nil, datetimes,
//! intervals, references, embedded objects and arrays keep their kind. What a store keeps, so
//! that a session read back is the session that was seen.
//!
//! `{"class": "MSFT_SmbSession", "ns": "http://…/MSFT_SmbSession", "props": [["SessionId",
//! "8813272891621"], ["ClusterNodeName", null], ["Start", {"datetime": "…"}]]}`

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;

use crate::cim::{
    Datetime, Instance, Interval, Property, Reference, Selector, SelectorValue, Value,
};

/// The JSON text of an instance, written straight from it (a store writes one for every
/// session at every poll: building a `serde_json::Value` tree first cost as much again).
pub(crate) fn encode(instance: &Instance) -> serde_json::Result<String> {
    serde_json::to_string(&Record(instance))
}

/// An instance as its record: `{"class", "ns"?, "props": [[name, value], ...]}`.
struct Record<'a>(&'a Instance);

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let instance = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("class", instance.class_name())?;
        if let Some(ns) = instance.namespace_uri() {
            map.serialize_entry("ns", ns)?;
        }
        map.serialize_entry("props", &Properties(instance.properties()))?;
        map.end()
    }
}

struct Properties<'a>(&'a [Property]);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|p| (&*p.name, Kept(&p.value))))
    }
}

/// A value: text or null as itself, an array as an array, anything else as an object that
/// names its kind (`datetime`, `interval`, `ref`, `object`).
struct Kept<'a>(&'a Value);

impl Serialize for Kept<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Text(text) => serializer.serialize_str(text),
            Value::Datetime(d) => tagged(serializer, "datetime", d.as_str()),
            Value::Interval(i) => tagged(serializer, "interval", i.as_str()),
            Value::Reference(r) => tagged(serializer, "ref", &Ref(r)),
            Value::Object(o) => tagged(serializer, "object", &Record(o)),
            Value::Array(items) => serializer.collect_seq(items.iter().map(Kept)),
        }
    }
}

/// `{kind: value}`.
fn tagged<S: Serializer, T: Serialize + ?Sized>(
    serializer: S,
    kind: &str,
    value: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(kind, value)?;
    map.end()
}

/// A reference: `{"uri", "address"?, "selectors": [[name, text or {"ref": ...}], ...]}`.
struct Ref<'a>(&'a Reference);

impl Serialize for Ref<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let reference = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("uri", reference.resource_uri())?;
        if let Some(address) = reference.address() {
            map.serialize_entry("address", address)?;
        }
        map.serialize_entry("selectors", &Selectors(reference.selectors()))?;
        map.end()
    }
}

struct Selectors<'a>(&'a [Selector]);

impl Serialize for Selectors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|s| (&s.name, SelectorKept(&s.value))))
    }
}

struct SelectorKept<'a>(&'a SelectorValue);

impl Serialize for SelectorKept<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            SelectorValue::Text(text) => serializer.serialize_str(text),
            SelectorValue::Reference(inner) => tagged(serializer, "ref", &Ref(inner)),
        }
    }
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
    use serde_json::json;

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
        let text = encode(&instance).unwrap();
        let back = decode(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, instance);
    }

    #[test]
    fn records_are_written_as_stores_have_always_kept_them() {
        // The text earlier versions wrote (through a `serde_json::Value`), so that a store
        // holds one format whichever version wrote a row.
        let inner = Reference::new("urn:inner").with_selector("LogonId", "999");
        let reference = Reference::new("urn:outer")
            .with_address("urn:address")
            .with_reference_selector("Antecedent", inner)
            .with_selector("Dependent", "4");
        let instance = Instance::new("Win32_Example")
            .with_namespace_uri("urn:ns")
            .with(
                "Text",
                Value::Text("o'brien & \"sons\" <ops> 李雷\n".into()),
            )
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
                Value::Array(vec![
                    Value::Text("a".into()),
                    Value::Null,
                    Value::Array(vec![]),
                ]),
            );
        assert_eq!(
            encode(&instance).unwrap(),
            r#"{"class":"Win32_Example","ns":"urn:ns","props":[["Text","o'brien & \"sons\" <ops> 李雷\n"],["Nil",null],["Start",{"datetime":"2026-11-20T08:15:42.866781-08:00"}],["Idle",{"interval":"P1DT2H"}],["Ref",{"ref":{"uri":"urn:outer","address":"urn:address","selectors":[["Antecedent",{"ref":{"uri":"urn:inner","selectors":[["LogonId","999"]]}}],["Dependent","4"]]}}],["Object",{"object":{"class":"Inner","props":[["A","1"]]}}],["Array",["a",null,[]]]]}"#
        );
        assert_eq!(
            encode(&Instance::new("Bare")).unwrap(),
            r#"{"class":"Bare","props":[]}"#
        );
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
