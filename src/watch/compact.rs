//! A session as a watch remembers it between polls: the values of its properties in one small
//! byte string, its class, namespace and property names shared with the other sessions of its
//! host that have the same shape. A million sessions cost what their values cost, not a million
//! copies of `MSFT_SmbSession`, `ClientUserName` and a namespace URI, nor a second copy of the
//! key. Rebuilt into an [`Instance`] only when it must be reported (a closed session), equal to
//! the instance it was made from.

use std::sync::Arc;

use crate::cim::{Datetime, Instance, Interval, Value};

/// What sessions of one shape share: class, namespace and property names, in order.
#[derive(Debug, PartialEq)]
pub(crate) struct Shape {
    class: Arc<str>,
    namespace: Option<Arc<str>>,
    names: Box<[Arc<str>]>,
}

impl Shape {
    fn of(instance: &Instance) -> Self {
        Self {
            class: instance.class_name().into(),
            namespace: instance.namespace_uri().map(Arc::from),
            names: instance
                .properties()
                .iter()
                .map(|p| p.name.clone())
                .collect(),
        }
    }

    fn fits(&self, instance: &Instance) -> bool {
        *self.class == *instance.class_name()
            && self.namespace.as_deref() == instance.namespace_uri()
            && self.names.len() == instance.properties().len()
            && self
                .names
                .iter()
                .zip(instance.properties())
                .all(|(name, p)| *name == p.name)
    }
}

/// The shape the last sessions of a host had, reused while the next ones fit it.
#[derive(Debug, Default)]
pub(crate) struct Shapes(Option<Arc<Shape>>);

impl Shapes {
    /// `instance` as a compact session.
    pub(crate) fn compact(&mut self, instance: &Instance) -> CompactSession {
        let shape = match &self.0 {
            Some(shape) if shape.fits(instance) => shape.clone(),
            _ => self.0.insert(Arc::new(Shape::of(instance))).clone(),
        };
        let mut bytes = Vec::with_capacity(64);
        let mut rare = Vec::new();
        for (index, property) in instance.properties().iter().enumerate() {
            match &property.value {
                Value::Null => bytes.push(NULL),
                Value::Text(text) => put(&mut bytes, TEXT, text),
                Value::Datetime(d) => put(&mut bytes, DATETIME, d.as_str()),
                Value::Interval(i) => put(&mut bytes, INTERVAL, i.as_str()),
                other => {
                    bytes.push(RARE);
                    rare.push((index, other.clone()));
                }
            }
        }
        let rare = (!rare.is_empty() || instance.reference().is_some() || instance.is_projection())
            .then(|| {
                Box::new(Rare {
                    values: rare,
                    reference: instance.reference().cloned(),
                    projection: instance.is_projection(),
                })
            });
        CompactSession {
            shape,
            bytes: bytes.into_boxed_slice(),
            rare,
        }
    }
}

const NULL: u8 = 0;
const TEXT: u8 = 1;
const DATETIME: u8 = 2;
const INTERVAL: u8 = 3;
/// References, embedded objects and arrays: kept as they are, beside the bytes.
const RARE: u8 = 4;

fn put(bytes: &mut Vec<u8>, tag: u8, text: &str) {
    bytes.push(tag);
    let mut len = text.len();
    // LEB128 length: one byte for the usual short value.
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(low);
            break;
        }
        bytes.push(low | 0x80);
    }
    bytes.extend_from_slice(text.as_bytes());
}

/// What few sessions have: values that are not text, the instance's own reference.
#[derive(Debug)]
struct Rare {
    values: Vec<(usize, Value)>,
    reference: Option<crate::cim::Reference>,
    projection: bool,
}

/// One remembered session; see the module documentation.
#[derive(Debug)]
pub(crate) struct CompactSession {
    shape: Arc<Shape>,
    bytes: Box<[u8]>,
    rare: Option<Box<Rare>>,
}

impl CompactSession {
    /// The instance this was made from.
    pub(crate) fn to_instance(&self) -> Instance {
        let shape = &self.shape;
        let mut instance = Instance::new(shape.class.clone());
        if let Some(namespace) = &shape.namespace {
            instance.set_namespace_uri(namespace.clone());
        }
        let mut rare = self
            .rare
            .as_deref()
            .map(|r| r.values.iter())
            .into_iter()
            .flatten();
        let mut at = 0;
        for name in shape.names.iter() {
            let tag = self.bytes[at];
            at += 1;
            let value = if tag == NULL {
                Value::Null
            } else if tag == RARE {
                rare.next().map_or(Value::Null, |(_, v)| v.clone())
            } else {
                let mut len = 0usize;
                let mut shift = 0;
                loop {
                    let byte = self.bytes[at];
                    at += 1;
                    len |= usize::from(byte & 0x7f) << shift;
                    shift += 7;
                    if byte & 0x80 == 0 {
                        break;
                    }
                }
                // Written from a `&str` by `put`: always UTF-8.
                let text = String::from_utf8_lossy(&self.bytes[at..at + len]).into_owned();
                at += len;
                match tag {
                    // A Datetime or Interval keeps the text it was parsed from, so it parses
                    // again; should it not, the text is kept rather than lost.
                    DATETIME => Datetime::parse(&text).map_or(Value::Text(text), Value::Datetime),
                    INTERVAL => Interval::parse(&text).map_or(Value::Text(text), Value::Interval),
                    _ => Value::Text(text),
                }
            };
            instance.push_property(name.clone(), value);
        }
        if let Some(rare) = &self.rare {
            if let Some(reference) = &rare.reference {
                instance.set_reference(reference.clone());
            }
            instance.set_projection(rare.projection);
        }
        instance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cim::Reference;

    fn smb(id: u64, user: &str) -> Instance {
        Instance::new("MSFT_SmbSession")
            .with_namespace_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession")
            .with("SessionId", Value::Text(id.to_string()))
            .with("ClientUserName", Value::Text(user.into()))
            .with("TransportName", Value::Null)
            .with("Long", Value::Text("x".repeat(300)))
    }

    #[test]
    fn every_kind_of_value_comes_back_as_it_was() {
        let mut shapes = Shapes::default();
        let mut rich = Instance::new("Win32_LogonSession")
            .with(
                "StartTime",
                Value::Datetime(Datetime::parse("20241105093012.123456+060").unwrap()),
            )
            .with(
                "Idle",
                Value::Interval(Interval::parse("00000001020304.000000:000").unwrap()),
            )
            .with("Empty", Value::Text(String::new()))
            .with("Nil", Value::Null)
            .with(
                "Names",
                Value::Array(vec![Value::Text("a".into()), Value::Null]),
            )
            .with("Inner", Value::Object(Box::new(smb(1, "u"))))
            .with("Unicode", Value::Text("Zoë Ångström 日本".into()));
        rich.set_reference(Reference::new(
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_LogonSession",
        ));
        rich.set_projection(true);
        for instance in [
            smb(8813272891621, r"CONTOSO\o'brien & co"),
            rich.clone(),
            Instance::new("Empty"),
        ] {
            let compact = shapes.compact(&instance);
            assert_eq!(compact.to_instance(), instance);
        }
        // Repeated names stay separate properties, as they were.
        let mut twice = Instance::new("X");
        twice.push_property("A".into(), Value::Text("1".into()));
        twice.push_property("A".into(), Value::Text("2".into()));
        assert_eq!(shapes.compact(&twice).to_instance(), twice);
    }

    #[test]
    fn sessions_of_one_shape_share_it_and_another_shape_gets_its_own() {
        let mut shapes = Shapes::default();
        let a = shapes.compact(&smb(1, "a"));
        let b = shapes.compact(&smb(2, "b"));
        assert!(Arc::ptr_eq(&a.shape, &b.shape));
        let other = shapes
            .compact(&Instance::new("MSFT_SmbSession").with("SessionId", Value::Text("3".into())));
        assert!(!Arc::ptr_eq(&a.shape, &other.shape));
        assert_eq!(a.to_instance(), smb(1, "a"));
        // Text only: no side allocation.
        assert!(a.rare.is_none());
    }
}
