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
//! [`Instance`]); [`typed_record`] keeps them for output.

mod logon;
mod server;
mod session;
mod smb;

pub use logon::{LogonSession, Process, SessionProcess};
pub use server::{ServerConnection, ServerSession, SessionConnection};
pub use session::Session;
pub use smb::{ForceCloseOutput, SmbSession, force_close_meaning};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cim::{CimClass, DecodeError, Instance};

/// A JSON object for an instance: typed through its class struct when the class is one of
/// the session classes (exact integers, `null` for nil, arrays), then every property the struct
/// does not know, as received. Keys are the WMI property names. For a projection (`SELECT a, b`)
/// only the selected properties appear, still typed.
pub fn typed_record(
    instance: &Instance,
) -> Result<serde_json::Map<String, serde_json::Value>, DecodeError> {
    let class = instance.class_name();
    let typed = if class.eq_ignore_ascii_case(SmbSession::CLASS_NAME) {
        typed::<SmbSession>(instance)?
    } else if class.eq_ignore_ascii_case(ServerSession::CLASS_NAME) {
        typed::<ServerSession>(instance)?
    } else if class.eq_ignore_ascii_case(ServerConnection::CLASS_NAME) {
        typed::<ServerConnection>(instance)?
    } else if class.eq_ignore_ascii_case(SessionConnection::CLASS_NAME) {
        typed::<SessionConnection>(instance)?
    } else if class.eq_ignore_ascii_case(LogonSession::CLASS_NAME) {
        typed::<LogonSession>(instance)?
    } else if class.eq_ignore_ascii_case(SessionProcess::CLASS_NAME) {
        typed::<SessionProcess>(instance)?
    } else if class.eq_ignore_ascii_case(Process::CLASS_NAME) {
        typed::<Process>(instance)?
    } else {
        serde_json::Map::new()
    };
    let mut record = typed;
    for property in instance.properties() {
        if !record.contains_key(&property.name) {
            let value = serde_json::to_value(&property.value)
                .map_err(|e| DecodeError::new(e.to_string()).in_property(&property.name))?;
            record.insert(property.name.clone(), value);
        }
    }
    Ok(record)
}

/// The typed fields of a full instance; for a projection only the selected properties, typed.
fn typed<T: DeserializeOwned + Serialize>(
    instance: &Instance,
) -> Result<serde_json::Map<String, serde_json::Value>, DecodeError> {
    let value: T = if instance.is_projection() {
        instance.deserialize_partial()?
    } else {
        instance.deserialize()?
    };
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(mut map)) => {
            if instance.is_projection() {
                map.retain(|key, _| instance.get(key).is_some());
            }
            Ok(map)
        }
        Ok(_) => Err(DecodeError::new(
            "typed class did not serialize to an object",
        )),
        Err(e) => Err(DecodeError::new(e.to_string())),
    }
}

#[cfg(test)]
mod tests;
