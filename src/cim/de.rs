//! A serde `Deserializer` over [`Instance`] and [`Value`]: the class schema is the target type.
//!
//! Text is read according to what the target asks for: `u64` parses decimal exactly, `bool`
//! accepts `true`/`false` (and `1`/`0`, as `xs:boolean` does), `Option` maps `xsi:nil` to `None`,
//! and a sequence accepts a single element as a one-element array, because Windows writes a
//! one-element array exactly like a scalar.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::{DecodeError, Instance, Property, Reference, SelectorValue, Value};

pub(crate) struct InstanceDeserializer<'a> {
    instance: &'a Instance,
    fill_missing: bool,
    ignored: Option<&'a mut Ignored>,
}

/// The properties of an instance that a typed struct did not take (it has no field for them),
/// by position: the first 128 exactly; any beyond count as not taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ignored(u128);

impl Ignored {
    fn mark(&mut self, index: usize) {
        if index < 128 {
            self.0 |= 1 << index;
        }
    }

    /// True when the property at `index` was not taken.
    pub(crate) fn contains(&self, index: usize) -> bool {
        index >= 128 || self.0 & (1 << index) != 0
    }
}

impl<'a> InstanceDeserializer<'a> {
    pub(crate) fn new(instance: &'a Instance) -> Self {
        Self {
            instance,
            fill_missing: false,
            ignored: None,
        }
    }

    /// Offers the struct's fields the instance lacks as [`MissingValue`]s.
    pub(crate) fn filling_missing(mut self, fill: bool) -> Self {
        self.fill_missing = fill;
        self
    }

    /// Records which properties the target type ignores.
    pub(crate) fn tracking(mut self, ignored: &'a mut Ignored) -> Self {
        self.ignored = Some(ignored);
        self
    }
}

impl<'de> Deserializer<'de> for InstanceDeserializer<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_map(PropertiesAccess {
            iter: self.instance.properties().iter().enumerate(),
            current: None,
            missing: Vec::new().into_iter(),
            in_missing: false,
            ignored: self.ignored,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let missing: Vec<&'static str> = if self.fill_missing {
            fields
                .iter()
                .copied()
                .filter(|f| self.instance.get(f).is_none())
                .collect()
        } else {
            Vec::new()
        };
        visitor.visit_map(PropertiesAccess {
            iter: self.instance.properties().iter().enumerate(),
            current: None,
            missing: missing.into_iter(),
            in_missing: false,
            ignored: self.ignored,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct PropertiesAccess<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Property>>,
    current: Option<(usize, &'a Property)>,
    missing: std::vec::IntoIter<&'static str>,
    in_missing: bool,
    ignored: Option<&'a mut Ignored>,
}

impl<'de> MapAccess<'de> for PropertiesAccess<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        match self.iter.next() {
            Some((index, property)) => {
                self.current = Some((index, property));
                let key: StrDeserializer<'_, DecodeError> = (&*property.name).into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => match self.missing.next() {
                Some(name) => {
                    self.in_missing = true;
                    let key: StrDeserializer<'_, DecodeError> = name.into_deserializer();
                    seed.deserialize(key).map(Some)
                }
                None => Ok(None),
            },
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        if std::mem::take(&mut self.in_missing) {
            return seed.deserialize(MissingValue);
        }
        let (index, property) = self
            .current
            .take()
            .ok_or_else(|| DecodeError::new("value requested before key"))?;
        let ignored = std::cell::Cell::new(false);
        let value = seed
            .deserialize(ValueDeserializer(&property.value, Some(&ignored)))
            .map_err(|e| e.in_property(&property.name))?;
        if ignored.get()
            && let Some(set) = self.ignored.as_deref_mut()
        {
            set.mark(index);
        }
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Deserializes one [`Value`]; tells `.1`, when given, that the target ignored it.
pub(crate) struct ValueDeserializer<'a>(
    pub(crate) &'a Value,
    pub(crate) Option<&'a std::cell::Cell<bool>>,
);

impl ValueDeserializer<'_> {
    fn text(&self, expected: &str) -> Result<&str, DecodeError> {
        match self.0 {
            Value::Text(t) => Ok(t),
            Value::Datetime(d) => Ok(d.as_str()),
            Value::Interval(i) => Ok(i.as_str()),
            other => Err(DecodeError::new(format!(
                "expected {expected}, found {}",
                other.kind()
            ))),
        }
    }

    /// Reads a number: XML Schema numeric types collapse surrounding whitespace.
    fn number<T>(&self, cim_type: &str) -> Result<T, DecodeError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let text = self.text(cim_type)?.trim();
        text.parse::<T>().map_err(|_| {
            let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                DecodeError::new(format!("{text} is out of range for {cim_type}"))
            } else {
                DecodeError::new(format!("expected {cim_type}, found {text:?}"))
            }
        })
    }
}

macro_rules! deserialize_number {
    ($($method:ident => $visit:ident, $ty:ty, $cim:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.$visit(self.number::<$ty>($cim)?)
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::Text(t) => visitor.visit_str(t),
            Value::Datetime(d) => visitor.visit_str(d.as_str()),
            Value::Interval(i) => visitor.visit_str(i.as_str()),
            Value::Reference(r) => visitor.visit_map(ReferenceAccess::new(r)),
            Value::Object(o) => InstanceDeserializer::new(o).deserialize_any(visitor),
            Value::Array(items) => visitor.visit_seq(ElementsAccess(items.iter())),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.text("boolean")?.trim() {
            "true" | "1" => visitor.visit_bool(true),
            "false" | "0" => visitor.visit_bool(false),
            other => Err(DecodeError::new(format!(
                "expected boolean, found {other:?}"
            ))),
        }
    }

    deserialize_number! {
        deserialize_u8 => visit_u8, u8, "uint8";
        deserialize_u16 => visit_u16, u16, "uint16";
        deserialize_u32 => visit_u32, u32, "uint32";
        deserialize_u64 => visit_u64, u64, "uint64";
        deserialize_u128 => visit_u128, u128, "uint128";
        deserialize_i8 => visit_i8, i8, "sint8";
        deserialize_i16 => visit_i16, i16, "sint16";
        deserialize_i32 => visit_i32, i32, "sint32";
        deserialize_i64 => visit_i64, i64, "sint64";
        deserialize_i128 => visit_i128, i128, "sint128";
        deserialize_f32 => visit_f32, f32, "real32";
        deserialize_f64 => visit_f64, f64, "real64";
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let text = self.text("char16")?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => {
                // WMI renders char16 as its numeric code.
                let code: u32 = self.number("char16")?;
                let c = char::from_u32(code)
                    .ok_or_else(|| DecodeError::new(format!("{code} is not a character")))?;
                visitor.visit_char(c)
            }
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_str(self.text("string")?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_bytes(self.text("string")?.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(ElementsAccess(items.iter())),
            // A nil array is no elements; an Option<Vec<_>> sees None before reaching here.
            Value::Null => visitor.visit_seq(ElementsAccess([].iter())),
            single => visitor.visit_seq(ElementsAccess(std::slice::from_ref(single).iter())),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Reference(r) => visitor.visit_map(ReferenceAccess::new(r)),
            Value::Object(o) => InstanceDeserializer::new(o).deserialize_any(visitor),
            other => Err(DecodeError::new(format!(
                "expected an object or reference, found {}",
                other.kind()
            ))),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let text: StrDeserializer<'_, DecodeError> =
            self.text("enumeration value")?.into_deserializer();
        text.deserialize_enum(_name, _variants, visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if let Some(ignored) = self.1 {
            ignored.set(true);
        }
        visitor.visit_unit()
    }
}

/// Methods that answer with one fixed visit.
macro_rules! neutral {
    ($($method:ident => $visit:ident($($value:expr)?);)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.$visit($($value)?)
        }
    )*};
}

/// A property the instance does not have, read as the neutral value of whatever type is asked
/// for: nil for options, 0, false, "", no elements, a reference with an empty URI.
struct MissingValue;

impl<'de> Deserializer<'de> for MissingValue {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_none()
    }

    neutral! {
        deserialize_bool => visit_bool(false);
        deserialize_u8 => visit_u8(0);
        deserialize_u16 => visit_u16(0);
        deserialize_u32 => visit_u32(0);
        deserialize_u64 => visit_u64(0);
        deserialize_u128 => visit_u128(0);
        deserialize_i8 => visit_i8(0);
        deserialize_i16 => visit_i16(0);
        deserialize_i32 => visit_i32(0);
        deserialize_i64 => visit_i64(0);
        deserialize_i128 => visit_i128(0);
        deserialize_f32 => visit_f32(0.0);
        deserialize_f64 => visit_f64(0.0);
        deserialize_str => visit_str("");
        deserialize_string => visit_str("");
        deserialize_option => visit_none();
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(ElementsAccess([].iter()))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_map(ReferenceAccess::new(&EMPTY_REFERENCE))
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct tuple tuple_struct enum identifier ignored_any
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DecodeError> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(v)
    }
}

static EMPTY_REFERENCE: std::sync::LazyLock<Reference> =
    std::sync::LazyLock::new(|| Reference::new(""));

struct ElementsAccess<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for ElementsAccess<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.0.next() {
            Some(value) => seed.deserialize(ValueDeserializer(value, None)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Presents a reference as the map `{ResourceURI, Selectors}` (and `Address` when present).
struct ReferenceAccess<'a> {
    reference: &'a Reference,
    step: u8,
}

impl<'a> ReferenceAccess<'a> {
    fn new(reference: &'a Reference) -> Self {
        Self { reference, step: 0 }
    }
}

impl<'de> MapAccess<'de> for ReferenceAccess<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if self.step == 0 && self.reference.address().is_none() {
            self.step = 1;
        }
        let key = match self.step {
            0 => "Address",
            1 => "ResourceURI",
            2 => "Selectors",
            _ => return Ok(None),
        };
        let key: StrDeserializer<'_, DecodeError> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize(
                self.reference
                    .address()
                    .unwrap_or_default()
                    .into_deserializer(),
            ),
            1 => seed.deserialize(self.reference.resource_uri().into_deserializer()),
            _ => seed.deserialize(SelectorsDeserializer(self.reference.selectors())),
        }
    }
}

struct SelectorsDeserializer<'a>(&'a [super::Selector]);

impl<'de> Deserializer<'de> for SelectorsDeserializer<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_map(SelectorsAccess {
            iter: self.0.iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SelectorsAccess<'a> {
    iter: std::slice::Iter<'a, super::Selector>,
    current: Option<&'a super::Selector>,
}

impl<'de> MapAccess<'de> for SelectorsAccess<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        match self.iter.next() {
            Some(selector) => {
                self.current = Some(selector);
                let key: StrDeserializer<'_, DecodeError> =
                    selector.name.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let selector = self
            .current
            .take()
            .ok_or_else(|| DecodeError::new("value requested before key"))?;
        match &selector.value {
            SelectorValue::Text(t) => seed.deserialize(t.as_str().into_deserializer()),
            SelectorValue::Reference(r) => seed.deserialize(ReferenceDeserializer(r)),
        }
    }
}

struct ReferenceDeserializer<'a>(&'a Reference);

impl<'de> Deserializer<'de> for ReferenceDeserializer<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_map(ReferenceAccess::new(self.0))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl de::Error for DecodeError {
    fn custom<T: Display>(msg: T) -> Self {
        DecodeError::new(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        DecodeError::new(format!("required property {field} is missing"))
    }
}

/// The field names a struct's `Deserialize` asks for, in order: its properties, for a class
/// schema that is the struct.
pub(crate) fn struct_fields<T: de::DeserializeOwned>() -> Vec<&'static str> {
    struct Capture<'a>(&'a mut Vec<&'static str>);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = DecodeError;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DecodeError> {
            Err(DecodeError::new("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, DecodeError> {
            self.0.extend_from_slice(fields);
            Err(DecodeError::new("fields captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Vec::new();
    let _ = T::deserialize(Capture(&mut fields));
    fields
}
