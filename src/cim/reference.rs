//! References to CIM instances: WS-Addressing endpoint references (EPRs) with a resource URI and
//! a selector set, as WS-Management uses them for association properties, EPR enumeration and
//! as the address of Get and Invoke.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ClassPath;

/// Prefix of the resource URIs under which WinRM exposes WMI classes.
pub const WMI_RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/wbem/wsman/1/wmi/";

/// A typed pointer to one instance: pass it to `Client::get` or use it as a method target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    address: Option<String>,
    resource_uri: String,
    selectors: Vec<Selector>,
}

/// One key of a reference. Its value is text or, for association keys, another reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    /// The key property name, e.g. `SessionId`.
    pub name: String,
    /// The key value.
    pub value: SelectorValue,
}

/// The value of a [`Selector`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SelectorValue {
    /// A key as text (numbers are written in decimal, as WMI does).
    Text(String),
    /// A key that is itself a reference (key properties of association classes).
    Reference(Box<Reference>),
}

impl Reference {
    /// A reference to the instances of a resource URI; add keys with [`Reference::with_selector`].
    pub fn new(resource_uri: impl Into<String>) -> Self {
        Self {
            address: None,
            resource_uri: resource_uri.into(),
            selectors: Vec::new(),
        }
    }

    /// A reference to an instance of a WMI class.
    pub fn for_class(class: &ClassPath) -> Self {
        Self::new(class.resource_uri())
    }

    /// Adds a text key.
    #[must_use]
    pub fn with_selector(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.selectors.push(Selector {
            name: name.into(),
            value: SelectorValue::Text(value.into()),
        });
        self
    }

    /// Adds a key whose value is another reference.
    #[must_use]
    pub fn with_reference_selector(mut self, name: impl Into<String>, value: Reference) -> Self {
        self.selectors.push(Selector {
            name: name.into(),
            value: SelectorValue::Reference(Box::new(value)),
        });
        self
    }

    /// Replaces the resource URI (a parser reads it wherever it comes among the selectors).
    pub(crate) fn set_resource_uri(&mut self, resource_uri: &str) {
        resource_uri.clone_into(&mut self.resource_uri);
    }

    /// Sets the WS-Addressing address (normally the anonymous role URI).
    #[must_use]
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The WS-Addressing address, when the server sent one.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The resource URI, e.g. `http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Process`.
    pub fn resource_uri(&self) -> &str {
        &self.resource_uri
    }

    /// The keys, in the order the server sent them.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// The value of a key, by case-insensitive name.
    pub fn selector(&self, name: &str) -> Option<&SelectorValue> {
        self.selectors
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .map(|s| &s.value)
    }

    /// The WMI class and namespace this reference points into, when its resource URI is a WMI one.
    pub fn class_path(&self) -> Option<ClassPath> {
        ClassPath::from_resource_uri(&self.resource_uri)
    }
}

impl SelectorValue {
    /// The text of a text key.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            SelectorValue::Text(t) => Some(t),
            SelectorValue::Reference(_) => None,
        }
    }

    /// The reference of a reference key.
    pub fn as_reference(&self) -> Option<&Reference> {
        match self {
            SelectorValue::Reference(r) => Some(r),
            SelectorValue::Text(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    /// `Win32_ServerSession.ComputerName="10.0.0.7",UserName="alice"` when the URI is a WMI one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class_path() {
            Some(path) => f.write_str(path.class_name())?,
            None => f.write_str(&self.resource_uri)?,
        }
        for (i, selector) in self.selectors.iter().enumerate() {
            f.write_str(if i == 0 { "." } else { "," })?;
            match &selector.value {
                SelectorValue::Text(t) => write!(f, "{}={:?}", selector.name, t)?,
                SelectorValue::Reference(r) => write!(f, "{}=({})", selector.name, r)?,
            }
        }
        Ok(())
    }
}

// JSON contract: {"ResourceURI": "...", "Selectors": {"Name": "value" | {nested reference}}}.
impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("ResourceURI", &self.resource_uri)?;
        map.serialize_entry("Selectors", &SelectorsAsMap(&self.selectors))?;
        map.end()
    }
}

struct SelectorsAsMap<'a>(&'a [Selector]);

impl Serialize for SelectorsAsMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for selector in self.0 {
            match &selector.value {
                SelectorValue::Text(t) => map.serialize_entry(&selector.name, t)?,
                SelectorValue::Reference(r) => map.serialize_entry(&selector.name, r)?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ReferenceVisitor)
    }
}

struct ReferenceVisitor;

impl<'de> Visitor<'de> for ReferenceVisitor {
    type Value = Reference;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reference (ResourceURI and Selectors)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Reference, A::Error> {
        let mut reference = Reference::new(String::new());
        let mut has_uri = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "ResourceURI" => {
                    reference.resource_uri = map.next_value()?;
                    has_uri = true;
                }
                "Address" => reference.address = Some(map.next_value()?),
                "Selectors" => reference.selectors = map.next_value::<SelectorList>()?.0,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if !has_uri {
            return Err(de::Error::missing_field("ResourceURI"));
        }
        Ok(reference)
    }
}

struct SelectorList(Vec<Selector>);

impl<'de> Deserialize<'de> for SelectorList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SelectorList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of selector names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SelectorList, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value = map.next_value::<SelectorValue>()?;
                    out.push(Selector { name, value });
                }
                Ok(SelectorList(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for SelectorValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SelectorValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a selector value (text or reference)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SelectorValue, E> {
                Ok(SelectorValue::Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SelectorValue, E> {
                Ok(SelectorValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SelectorValue, E> {
                Ok(SelectorValue::Text(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SelectorValue, A::Error> {
                let reference = ReferenceVisitor.visit_map(map)?;
                Ok(SelectorValue::Reference(Box::new(reference)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_ref() -> Reference {
        Reference::new(format!(
            "{WMI_RESOURCE_PREFIX}root/cimv2/Win32_ServerSession"
        ))
        .with_selector("ComputerName", "10.0.0.7")
        .with_selector("UserName", "alice")
    }

    #[test]
    fn json_shape_matches_cli_contract() {
        let json = serde_json::to_string(&session_ref()).unwrap();
        assert_eq!(
            json,
            r#"{"ResourceURI":"http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession","Selectors":{"ComputerName":"10.0.0.7","UserName":"alice"}}"#
        );
    }

    #[test]
    fn nested_references_round_trip_through_json() {
        let assoc = Reference::new(format!(
            "{WMI_RESOURCE_PREFIX}root/cimv2/Win32_SessionConnection"
        ))
        .with_reference_selector("Antecedent", session_ref());
        let json = serde_json::to_string(&assoc).unwrap();
        let back: Reference = serde_json::from_str(&json).unwrap();
        assert_eq!(back, assoc);
    }

    #[test]
    fn displays_like_a_wmi_path() {
        assert_eq!(
            session_ref().to_string(),
            r#"Win32_ServerSession.ComputerName="10.0.0.7",UserName="alice""#
        );
    }
}
