//! CIM values and instances, with no I/O.
//!
//! Everything here is plain data and pure functions: the WS-Management layer turns XML into
//! [`Instance`] values, and serde turns an [`Instance`] into a typed struct whose fields decide
//! how the text is read (see [`CimClass`] and [`FromInstance`]). Datetimes keep the offset and
//! the text the server sent; `uint64` stays exact; `xsi:nil` is [`Value::Null`], distinct from
//! the empty string; references keep their selector sets so they can be passed back to `get`.

mod class;
pub(crate) use class::{normalize_namespace, strip_prefix_ignore_case};
mod datetime;
mod de;
mod flatten;
mod instance;
mod interval;
mod reference;
mod value;

use std::fmt;

pub use class::{CimClass, ClassPath, FromInstance, wql_resource_uri};
pub use datetime::Datetime;
pub(crate) use de::{Ignored, struct_fields};
pub(crate) use flatten::EntriesInto;
pub use flatten::flatten_into;
pub use instance::{Instance, Property};
pub use interval::Interval;
pub use reference::{Reference, Selector, SelectorValue, WMI_RESOURCE_PREFIX};
pub use value::Value;

/// A scalar that is not what its type says it must be (a datetime that is not one, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    message: String,
}

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// An instance that does not fit the type it was decoded into: names the class, the property
/// and what was wrong (`text in a uint32`, `out of range for uint32`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    class: Option<String>,
    property: Option<String>,
    message: String,
}

impl DecodeError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            class: None,
            property: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_property(mut self, property: &str) -> Self {
        // The innermost property is the precise one; keep it.
        if self.property.is_none() {
            self.property = Some(property.to_owned());
        }
        self
    }

    pub(crate) fn in_class(mut self, class: &str) -> Self {
        if self.class.is_none() && !class.is_empty() {
            self.class = Some(class.to_owned());
        }
        self
    }

    /// The class being decoded.
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// The property that did not fit.
    pub fn property(&self) -> Option<&str> {
        self.property.as_deref()
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.class, &self.property) {
            (Some(c), Some(p)) => write!(f, "property {c}.{p}: {}", self.message),
            (None, Some(p)) => write!(f, "property {p}: {}", self.message),
            (Some(c), None) => write!(f, "class {c}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests;
