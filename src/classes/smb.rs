//! `MSFT_SmbSession` (namespace `root/Microsoft/Windows/SMB`): what `Get-SmbSession` shows.

use serde::{Deserialize, Serialize};

use crate::cim::{CimClass, ClassPath, Reference};

/// An SMB session on the server, from the server's point of view (class version 30).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SmbSession {
    /// Client computer name or address (IPv6 addresses appear as Windows writes them).
    pub client_computer_name: Option<String>,
    /// The user that established the session, e.g. `CORP\alice`.
    pub client_user_name: Option<String>,
    /// The cluster node actually serving the session.
    pub cluster_node_name: Option<String>,
    /// SMB dialect, e.g. `3.1.1`.
    pub dialect: Option<String>,
    /// Files and other handles open in the session.
    pub num_opens: Option<u64>,
    /// The scope (server name) the client connected to.
    pub scope_name: Option<String>,
    /// Seconds since the session was established.
    pub seconds_exists: Option<u32>,
    /// Seconds since the last activity.
    pub seconds_idle: Option<u32>,
    /// The key: a 64-bit identifier, exact.
    pub session_id: u64,
    /// The SMB server instance (0 default, 1 cluster, 2 SMB over QUIC...).
    pub smb_instance: Option<u32>,
    /// Transport, e.g. `TCP`.
    pub transport_name: Option<String>,
}

impl CimClass for SmbSession {
    const NAMESPACE: &'static str = "root/Microsoft/Windows/SMB";
    const CLASS_NAME: &'static str = "MSFT_SmbSession";
    const KEYS: &'static [&'static str] = &["SessionId"];
}

impl SmbSession {
    /// The reference of this session (key `SessionId`), e.g. to close it.
    pub fn reference(&self) -> Reference {
        Reference::for_class(&Self::class_path())
            .with_selector("SessionId", self.session_id.to_string())
    }

    /// A reference to a session by id.
    pub fn reference_for(session_id: u64) -> Reference {
        Reference::for_class(&ClassPath::new(Self::NAMESPACE, Self::CLASS_NAME))
            .with_selector("SessionId", session_id.to_string())
    }
}

/// The output parameters of `MSFT_SmbSession.ForceClose` (`uint32 ForceClose()`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ForceCloseOutput {
    /// 0 when the session was closed; otherwise a Win32 error code.
    pub return_value: Option<u32>,
}

/// The meaning of a `ForceClose` return value: the SMB provider returns Win32 error codes.
pub fn force_close_meaning(return_value: u32) -> &'static str {
    match return_value {
        0 => "the session was closed",
        2 => "no such session (it may have ended already)",
        5 => "access denied: closing sessions needs administrator rights on the server",
        50 => "not supported by this server",
        87 => "invalid parameter",
        2312 => "no session with that client computer name",
        _ => "Win32 error (see net helpmsg on the server)",
    }
}

impl crate::cim::FromInstance for ForceCloseOutput {
    fn from_instance(instance: crate::cim::Instance) -> Result<Self, crate::cim::DecodeError> {
        instance.deserialize()
    }
}
