//! `Win32_Session`, the abstract base class: enumerating it yields its concrete subclasses.

use serde::{Serialize, Serializer};

use super::{LogonSession, ServerSession};
use crate::cim::{CimClass, DecodeError, FromInstance, Instance};

/// An instance of a concrete subclass of `Win32_Session`, chosen by the element's class name.
/// A subclass this crate does not know is kept whole as an [`Instance`], never dropped.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Session {
    /// `Win32_LogonSession`.
    Logon(LogonSession),
    /// `Win32_ServerSession`.
    Server(ServerSession),
    /// Any other subclass.
    Other(Instance),
}

impl Session {
    /// The concrete class name.
    pub fn class_name(&self) -> &str {
        match self {
            Session::Logon(_) => LogonSession::CLASS_NAME,
            Session::Server(_) => ServerSession::CLASS_NAME,
            Session::Other(i) => i.class_name(),
        }
    }
}

impl CimClass for Session {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_Session";
}

impl FromInstance for Session {
    fn from_instance(instance: Instance) -> Result<Self, DecodeError> {
        let class = instance.class_name();
        if class.eq_ignore_ascii_case(LogonSession::CLASS_NAME) {
            Ok(Session::Logon(instance.deserialize()?))
        } else if class.eq_ignore_ascii_case(ServerSession::CLASS_NAME) {
            Ok(Session::Server(instance.deserialize()?))
        } else {
            Ok(Session::Other(instance))
        }
    }
}

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Session::Logon(s) => s.serialize(serializer),
            Session::Server(s) => s.serialize(serializer),
            Session::Other(i) => i.serialize(serializer),
        }
    }
}
