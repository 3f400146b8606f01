//! Property values as they arrive on the wire, before a class schema gives them a type.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{Datetime, Instance, Interval, Reference};

/// One property value of an [`Instance`].
///
/// WS-Management carries no scalar types: `42`, `true` and `alice` are all text, and a
/// one-element array looks like a scalar. The typed classes (through serde) decide what the text
/// means; this enum keeps what the XML itself says.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `xsi:nil="true"`: the property has no value. Distinct from the empty string.
    Null,
    /// Element text (strings, numbers, booleans), entity references resolved.
    Text(String),
    /// `<cim:Datetime>`.
    Datetime(Datetime),
    /// `<cim:Interval>`.
    Interval(Interval),
    /// An endpoint reference (a `REF` property), boxed: references are rarer and larger than
    /// text, and every property carries a `Value`.
    Reference(Box<Reference>),
    /// An embedded object.
    Object(Box<Instance>),
    /// A property element repeated more than once.
    Array(Vec<Value>),
}

impl Value {
    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text of a scalar (text, datetime or interval).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            Value::Datetime(d) => Some(d.as_str()),
            Value::Interval(i) => Some(i.as_str()),
            _ => None,
        }
    }

    /// The reference of a `REF` property.
    pub fn as_reference(&self) -> Option<&Reference> {
        match self {
            Value::Reference(r) => Some(r),
            _ => None,
        }
    }

    /// A short name of the kind of value, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nil",
            Value::Text(_) => "text",
            Value::Datetime(_) => "datetime",
            Value::Interval(_) => "interval",
            Value::Reference(_) => "reference",
            Value::Object(_) => "embedded object",
            Value::Array(_) => "array",
        }
    }
}

/// Renders what is known without a schema: text stays text, nil is null, arrays are arrays,
/// references follow the JSON contract.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_none(),
            Value::Text(t) => serializer.serialize_str(t),
            Value::Datetime(d) => d.serialize(serializer),
            Value::Interval(i) => i.serialize(serializer),
            Value::Reference(r) => r.serialize(serializer),
            Value::Object(o) => o.serialize(serializer),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl Serialize for Instance {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.properties().len()))?;
        for property in self.properties() {
            map.serialize_entry(&*property.name, &property.value)?;
        }
        map.end()
    }
}
