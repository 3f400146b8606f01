//! An [`Instance`] as JSON and back, losing nothing: text stays text, nil stays nil, datetimes,
//! intervals, references, embedded objects and arrays keep their kind. What a store keeps, so
//! that a session read back is the session that was seen.
//!
//! `{"class": "MSFT_SmbSession", "ns": "http://…/MSFT_SmbSession", "props": [["SessionId",
//! "8813272891621"], ["ClusterNodeName", null], ["Start", {"datetime": "…"}]]}`

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};

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
        write_entries(
            serializer,
            ("class", instance.class_name()),
            instance.namespace_uri().map(|ns| ("ns", ns)),
            ("props", &Properties(instance.properties())),
        )
    }
}

/// `{name: text, optional?: text, list: [...]}`: the shape of a record (class, namespace,
/// properties) and of a reference (URI, address, selectors).
fn write_entries<S: Serializer>(
    serializer: S,
    first: (&str, &str),
    optional: Option<(&str, &str)>,
    list: (&str, &impl Serialize),
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    map.serialize_entry(first.0, first.1)?;
    if let Some((key, text)) = optional {
        map.serialize_entry(key, text)?;
    }
    map.serialize_entry(list.0, list.1)?;
    map.end()
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
        write_entries(
            serializer,
            ("uri", reference.resource_uri()),
            reference.address().map(|address| ("address", address)),
            ("selectors", &Selectors(reference.selectors())),
        )
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

/// The instance a record written by [`encode`] describes; a message when it is not one. Read
/// straight into the instance, as `encode` writes (a watch restarted on a store reads every
/// open session back).
pub(crate) fn decode(record: &str) -> Result<Instance, String> {
    serde_json::from_str::<RecordIn>(record)
        .map(|record| record.0)
        .map_err(|e| e.to_string())
}

/// The names a record's objects use.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Class,
    Ns,
    Props,
    Uri,
    Address,
    Selectors,
    Datetime,
    Interval,
    Ref,
    Object,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl Visitor<'_> for Names {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
                Ok(match name {
                    "class" => Key::Class,
                    "ns" => Key::Ns,
                    "props" => Key::Props,
                    "uri" => Key::Uri,
                    "address" => Key::Address,
                    "selectors" => Key::Selectors,
                    "datetime" => Key::Datetime,
                    "interval" => Key::Interval,
                    "ref" => Key::Ref,
                    "object" => Key::Object,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(Names)
    }
}

/// An instance read from its record.
struct RecordIn(Instance);

impl<'de> Deserialize<'de> for RecordIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Records;
        impl<'de> Visitor<'de> for Records {
            type Value = RecordIn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session record")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RecordIn, A::Error> {
                let (class, ns, props) =
                    read_entries::<_, KeptIn>(map, [Key::Class, Key::Ns, Key::Props])?;
                let mut instance =
                    Instance::new(class.ok_or_else(|| de::Error::custom("no class"))?);
                if let Some(ns) = ns {
                    instance = instance.with_namespace_uri(ns);
                }
                for (name, value) in props.ok_or_else(|| de::Error::custom("no properties"))? {
                    instance.push(name, value.0);
                }
                Ok(RecordIn(instance))
            }
        }
        deserializer.deserialize_map(Records)
    }
}

/// What [`write_entries`] wrote, by the three keys given: the first text, the optional text
/// (`null` taken as absent) and the list, each `None` when missing; other keys are skipped.
type Entries<L> = (Option<String>, Option<String>, Option<Vec<(String, L)>>);

fn read_entries<'de, A: MapAccess<'de>, L: Deserialize<'de>>(
    mut map: A,
    [first, optional, list]: [Key; 3],
) -> Result<Entries<L>, A::Error> {
    let mut entries: Entries<L> = (None, None, None);
    while let Some(key) = map.next_key::<Key>()? {
        if key == first {
            entries.0 = Some(map.next_value()?);
        } else if key == optional {
            entries.1 = map.next_value()?;
        } else if key == list {
            entries.2 = Some(map.next_value()?);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(entries)
}

/// A value read from its record (see [`Kept`]).
struct KeptIn(Value);

impl<'de> Deserialize<'de> for KeptIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Values;
        impl<'de> Visitor<'de> for Values {
            type Value = KeptIn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("text, null, an array or a tagged value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeptIn, E> {
                Ok(KeptIn(Value::Null))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<KeptIn, E> {
                Ok(KeptIn(Value::Text(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<KeptIn, E> {
                Ok(KeptIn(Value::Text(text)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeptIn, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<KeptIn>()? {
                    items.push(item.0);
                }
                Ok(KeptIn(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeptIn, A::Error> {
                let value = match map.next_key::<Key>()? {
                    Some(Key::Datetime) => Datetime::parse(&map.next_value::<String>()?)
                        .map(Value::Datetime)
                        .map_err(de::Error::custom)?,
                    Some(Key::Interval) => Interval::parse(&map.next_value::<String>()?)
                        .map(Value::Interval)
                        .map_err(de::Error::custom)?,
                    Some(Key::Ref) => Value::Reference(Box::new(map.next_value::<RefIn>()?.0)),
                    Some(Key::Object) => Value::Object(Box::new(map.next_value::<RecordIn>()?.0)),
                    _ => return Err(de::Error::custom("an unknown kind of value")),
                };
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(KeptIn(value))
            }
        }
        deserializer.deserialize_any(Values)
    }
}

/// A reference read from its record (see [`Ref`]).
struct RefIn(Reference);

impl<'de> Deserialize<'de> for RefIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct References;
        impl<'de> Visitor<'de> for References {
            type Value = RefIn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a reference")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RefIn, A::Error> {
                let (uri, address, selectors) =
                    read_entries::<_, SelectorIn>(map, [Key::Uri, Key::Address, Key::Selectors])?;
                let uri = uri.ok_or_else(|| de::Error::custom("a reference without URI"))?;
                let mut reference = Reference::new(uri);
                if let Some(address) = address {
                    reference = reference.with_address(address);
                }
                for (name, value) in selectors.ok_or_else(|| de::Error::custom("no selectors"))? {
                    reference = match value.0 {
                        SelectorValue::Text(text) => reference.with_selector(name, text),
                        SelectorValue::Reference(inner) => {
                            reference.with_reference_selector(name, *inner)
                        }
                    };
                }
                Ok(RefIn(reference))
            }
        }
        deserializer.deserialize_map(References)
    }
}

/// A selector's value read from its record: text, or `{"ref": ...}` (read as a value is, and
/// refused as anything else).
struct SelectorIn(SelectorValue);

impl<'de> Deserialize<'de> for SelectorIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match KeptIn::deserialize(deserializer)?.0 {
            Value::Text(text) => Ok(SelectorIn(SelectorValue::Text(text))),
            Value::Reference(inner) => Ok(SelectorIn(SelectorValue::Reference(inner))),
            _ => Err(de::Error::custom("an unknown selector value")),
        }
    }
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
        let back = decode(&text).unwrap();
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
        assert_eq!(decode(&encode(&instance).unwrap()).unwrap(), instance);
        assert_eq!(
            encode(&Instance::new("Bare")).unwrap(),
            r#"{"class":"Bare","props":[]}"#
        );
    }

    #[test]
    fn a_record_is_read_whatever_the_order_of_its_names_and_what_else_it_holds() {
        let record = r#"{"props": [["B", {"ref": {"selectors": [["K", "1"]], "later": true, "uri": "urn:r"}}], ["A", "x"], ["A", "y"]], "version": 2, "class": "X", "ns": null}"#;
        let expected = Instance::new("X")
            .with(
                "B",
                Value::Reference(Box::new(Reference::new("urn:r").with_selector("K", "1"))),
            )
            // A name twice in a row is one array, as when the instance was read from XML.
            .with("A", Value::Text("x".into()))
            .with("A", Value::Text("y".into()));
        assert_eq!(decode(record).unwrap(), expected);
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
            json!({"class": "X", "props": [["A", {}]]}),
            json!({"class": "X", "props": [["A"]]}),
            json!({"class": 1, "props": []}),
            json!({"class": "X", "props": {"A": "1"}}),
            json!({"class": "X", "props": [["A", {"interval": "a while"}]]}),
            json!({"class": "X", "props": [["A", {"ref": {"selectors": []}}]]}),
            json!({"class": "X", "props": [["A", {"ref": {"uri": "u"}}]]}),
            json!({"class": "X", "props": [["A", {"ref": {"uri": "u", "selectors": [["K", {"x": 1}]]}}]]}),
            json!({"class": "X", "props": [["A", {"object": {"props": []}}]]}),
            json!([]),
            json!("text"),
        ] {
            assert!(decode(&bad.to_string()).is_err(), "{bad}");
        }
        for bad in [
            "",
            "{",
            r#"{"class": "X", "props": [["A", "1"]"#,
            "not json",
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
