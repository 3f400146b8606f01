//! The session classes as typed structs, every documented property with its documented type.
//!
//! | class | namespace | type |
//! |---|---|---|
//! | `MSFT_SmbSession` | `root/Microsoft/Windows/SMB` | [`SmbSession`] |
//! | `Win32_ServerSession` | `root/cimv2` | [`ServerSession`] |
//! | `Win32_ServerConnection` | `root/cimv2` | [`ServerConnection`] |
//! | `Win32_SessionConnection` | `root/cimv2` | [`SessionConnection`] (association) |
//! | `Win32_LogonSession` | `root/cimv2` | [`LogonSession`] |
//! | `Win32_SessionProcess` | `root/cimv2` | [`SessionProcess`] (association) |
//! | `Win32_Process` | `root/cimv2` | [`Process`] |
//! | `Win32_Session` (abstract) | `root/cimv2` | [`Session`] (enum over subclasses) |
//!
//! Properties a newer Windows adds are ignored by the structs (they stay in the dynamic
//! [`Instance`]); [`TypedInstance`] keeps them for output.

mod logon;
mod server;
mod session;
mod smb;

pub use logon::{LogonSession, Process, SessionProcess};
pub use server::{ServerConnection, ServerSession, SessionConnection};
pub use session::Session;
pub use smb::{ForceCloseOutput, SmbSession, force_close_meaning};

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::cim::{CimClass, DecodeError, EntriesInto, Ignored, Instance};

/// An instance typed through its class's struct when this crate knows the class, ready to be
/// serialized straight into an output (JSON, a table row, a CSV line) with nothing in between.
///
/// It serializes as a map: the typed fields in the struct's order (exact integers, `null` for
/// nil, arrays, references as `{ResourceURI, Selectors}`), then every property the struct has no
/// field for, as received, so nothing a newer server adds is lost. For a projection
/// (`SELECT a, b`) only the selected properties appear, still typed. Instances of classes this
/// crate does not know serialize as received.
pub struct TypedInstance<'a> {
    instance: &'a Instance,
    typed: Known,
    ignored: Ignored,
}

macro_rules! known_classes {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// The typed form of an instance of a known class. It lives on the stack for one record
        /// on its way to the output: boxing the large variants would cost an allocation each.
        #[allow(clippy::large_enum_variant)]
        enum Known {
            $($variant($ty),)*
            Unknown,
        }

        impl Known {
            fn decode(instance: &Instance) -> Result<(Known, Ignored), DecodeError> {
                let class = instance.class_name();
                $(
                    if class.eq_ignore_ascii_case(<$ty>::CLASS_NAME) {
                        let (value, ignored) = instance.deserialize_tracked::<$ty>()?;
                        return Ok((Known::$variant(value), ignored));
                    }
                )*
                Ok((Known::Unknown, Ignored::default()))
            }

            fn serialize_fields<M: SerializeMap>(
                &self,
                map: &mut M,
                keep: impl FnMut(&str) -> bool,
            ) -> Result<(), M::Error> {
                match self {
                    $(Known::$variant(value) => value.serialize(EntriesInto { map, keep }),)*
                    Known::Unknown => Ok(()),
                }
            }

            fn is_known(&self) -> bool {
                !matches!(self, Known::Unknown)
            }
        }

        /// The key properties of a class this crate knows (what identifies an instance on its
        /// server), or none.
        pub fn key_properties(class_name: &str) -> &'static [&'static str] {
            $(
                if class_name.eq_ignore_ascii_case(<$ty>::CLASS_NAME) {
                    return <$ty>::KEYS;
                }
            )*
            &[]
        }

        /// The properties of a class this crate knows, in its struct's order, or none.
        pub fn class_properties(class_name: &str) -> Vec<&'static str> {
            $(
                if class_name.eq_ignore_ascii_case(<$ty>::CLASS_NAME) {
                    return crate::cim::struct_fields::<$ty>();
                }
            )*
            Vec::new()
        }
    };
}

known_classes! {
    SmbSession(SmbSession),
    ServerSession(ServerSession),
    ServerConnection(ServerConnection),
    SessionConnection(SessionConnection),
    LogonSession(LogonSession),
    SessionProcess(SessionProcess),
    Process(Process),
}

impl<'a> TypedInstance<'a> {
    /// Types an instance; an instance that does not fit its class's struct is an error naming
    /// the class and the property.
    pub fn new(instance: &'a Instance) -> Result<Self, DecodeError> {
        let (typed, ignored) = Known::decode(instance)?;
        Ok(Self {
            instance,
            typed,
            ignored,
        })
    }

    /// The instance.
    pub fn instance(&self) -> &'a Instance {
        self.instance
    }

    /// The concrete class name.
    pub fn class_name(&self) -> &'a str {
        self.instance.class_name()
    }
}

impl Serialize for TypedInstance<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let instance = self.instance;
        if instance.is_projection() {
            self.typed
                .serialize_fields(&mut map, |key| instance.get(key).is_some())?;
        } else {
            self.typed.serialize_fields(&mut map, |_| true)?;
        }
        let known = self.typed.is_known();
        for (i, property) in instance.properties().iter().enumerate() {
            if !known || self.ignored.contains(i) {
                map.serialize_entry(&*property.name, &property.value)?;
            }
        }
        map.end()
    }
}

impl std::fmt::Debug for TypedInstance<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedInstance")
            .field("class", &self.class_name())
            .field("typed", &self.typed.is_known())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
