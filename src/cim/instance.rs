//! [`Instance`]: one CIM object as received, class-agnostic.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::de::{Ignored, InstanceDeserializer};
use super::{ClassPath, DecodeError, Reference, Value};

/// One CIM instance: its class, its properties in the order the server sent them, and its
/// reference when the server sent one (EPR enumeration modes).
///
/// This is the dynamic form that serves any class; typed structs are made from it with
/// [`Instance::deserialize`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Instance {
    class_name: Arc<str>,
    namespace_uri: Option<Arc<str>>,
    properties: Vec<Property>,
    reference: Option<Box<Reference>>,
    projection: bool,
}

/// A named property value.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    /// The property name as the server wrote it, e.g. `ClientUserName`. Shared: the instances
    /// of a page name their properties with the same few strings.
    pub name: Arc<str>,
    /// Its value.
    pub value: Value,
}

impl Instance {
    /// An empty instance of a class.
    pub fn new(class_name: impl Into<Arc<str>>) -> Self {
        Self {
            class_name: class_name.into(),
            ..Self::default()
        }
    }

    /// An instance with room for `properties` properties (what a parser knows from the previous
    /// instance of a page).
    pub(crate) fn with_capacity(class_name: Arc<str>, properties: usize) -> Self {
        Self {
            class_name,
            properties: Vec::with_capacity(properties),
            ..Self::default()
        }
    }

    /// The concrete class name, from the element name (a subclass when a base class was
    /// enumerated). For WQL projections (`w:XmlFragment`) the server does not say; the class
    /// named in the query is used.
    pub fn class_name(&self) -> &str {
        &self.class_name
    }

    /// The XML namespace of the instance element: the class resource URI on Windows.
    pub fn namespace_uri(&self) -> Option<&str> {
        self.namespace_uri.as_deref()
    }

    pub(crate) fn set_namespace_uri(&mut self, uri: Arc<str>) {
        self.namespace_uri = Some(uri);
    }

    /// The class path, when the element namespace is a WMI resource URI.
    pub fn class_path(&self) -> Option<ClassPath> {
        self.namespace_uri
            .as_deref()
            .and_then(ClassPath::from_resource_uri)
            .or_else(|| self.reference.as_deref().and_then(Reference::class_path))
    }

    /// The properties, in the order received.
    pub fn properties(&self) -> &[Property] {
        &self.properties
    }

    /// A property value by name: exact match first, then case-insensitive (WMI names are
    /// case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|at| &self.properties[at].value)
    }

    /// Where [`Instance::get`] finds `name` among the properties.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.properties
            .iter()
            .position(|p| &*p.name == name)
            .or_else(|| {
                self.properties
                    .iter()
                    .position(|p| p.name.eq_ignore_ascii_case(name))
            })
    }

    /// The reference the server sent with the instance, if any.
    pub fn reference(&self) -> Option<&Reference> {
        self.reference.as_deref()
    }

    /// True for a WQL projection (`SELECT a, b FROM ...`, a `w:XmlFragment` on the wire): it holds
    /// only the selected properties, so a typed struct with required keys cannot be made from it.
    pub fn is_projection(&self) -> bool {
        self.projection
    }

    pub(crate) fn set_projection(&mut self, projection: bool) {
        self.projection = projection;
    }

    /// Like [`Instance::deserialize`] (or the partial form for a projection), and also says which
    /// properties the type has no field for.
    pub(crate) fn deserialize_tracked<T: DeserializeOwned>(
        &self,
    ) -> Result<(T, Ignored), DecodeError> {
        let mut ignored = Ignored::default();
        let value = T::deserialize(
            InstanceDeserializer::new(self)
                .filling_missing(self.projection)
                .tracking(&mut ignored),
        )
        .map_err(|e| e.in_class(&self.class_name))?;
        Ok((value, ignored))
    }

    /// Converts into a typed value through serde: property names are the keys, and the target
    /// type decides how text is read (integers exactly, booleans, datetimes, arrays).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        T::deserialize(InstanceDeserializer::new(self)).map_err(|e| e.in_class(&self.class_name))
    }

    /// Adds a property. A property with the same name as the last one becomes an array, as a
    /// repeated element does on the wire.
    pub fn push(&mut self, name: impl Into<Arc<str>>, value: Value) {
        let name = name.into();
        if let Some(last) = self.properties.last_mut()
            && last.name == name
        {
            match &mut last.value {
                Value::Array(items) => items.push(value),
                other => {
                    let first = std::mem::replace(other, Value::Null);
                    *other = Value::Array(vec![first, value]);
                }
            }
            return;
        }
        self.properties.push(Property { name, value });
    }

    /// Adds a property as it is, never merged into an array with the one before (for rebuilding
    /// an instance from a copy of its properties).
    pub(crate) fn push_property(&mut self, name: Arc<str>, value: Value) {
        self.properties.push(Property { name, value });
    }

    /// Builder form of [`Instance::push`].
    #[must_use]
    pub fn with(mut self, name: impl Into<Arc<str>>, value: Value) -> Self {
        self.push(name, value);
        self
    }

    /// Sets the element namespace URI.
    #[must_use]
    pub fn with_namespace_uri(mut self, uri: impl Into<Arc<str>>) -> Self {
        self.namespace_uri = Some(uri.into());
        self
    }

    /// Sets the reference.
    pub fn set_reference(&mut self, reference: Reference) {
        self.reference = Some(Box::new(reference));
    }

    pub(crate) fn set_class_name(&mut self, class_name: impl Into<Arc<str>>) {
        self.class_name = class_name.into();
    }
}
