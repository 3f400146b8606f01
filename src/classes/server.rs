//! The LanmanServer view of remote users, from the `SessionProvider` in `root/cimv2`:
//! `Win32_ServerSession`, `Win32_ServerConnection`, and the association between them,
//! `Win32_SessionConnection`.

use serde::{Deserialize, Serialize};

use crate::cim::{CimClass, Datetime, Reference};

/// A session established with this server by a user on a remote computer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ServerSession {
    /// Seconds since the session was established.
    pub active_time: Option<u32>,
    /// Short description.
    pub caption: Option<String>,
    /// Type of client, e.g. `DOS LM 1.0`.
    pub client_type: Option<String>,
    /// Key: the computer (name or address) the session comes from.
    pub computer_name: String,
    /// Description.
    pub description: Option<String>,
    /// Seconds the session has been idle.
    pub idle_time: Option<u32>,
    /// When installed (normally nil).
    pub install_date: Option<Datetime>,
    /// Label.
    pub name: Option<String>,
    /// Files, devices and pipes opened.
    pub resources_opened: Option<u32>,
    /// How the user established the session: 0 guest, 1 no encryption.
    pub session_type: Option<u32>,
    /// When the session started (inherited from `Win32_Session`).
    pub start_time: Option<Datetime>,
    /// Status, e.g. `OK`.
    pub status: Option<String>,
    /// Transport, e.g. `\Device\NetbiosSmb`.
    pub transport_name: Option<String>,
    /// Key: the user who established the session.
    pub user_name: String,
}

impl CimClass for ServerSession {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_ServerSession";
    const KEYS: &'static [&'static str] = &["ComputerName", "UserName"];
}

impl ServerSession {
    /// The reference of this session (keys `ComputerName`, `UserName`).
    pub fn reference(&self) -> Reference {
        Self::reference_for(&self.computer_name, &self.user_name)
    }

    /// A reference to the session of `user_name` from `computer_name` (as Win32_ServerSession
    /// names them: the user without its domain, the client without brackets).
    pub fn reference_for(computer_name: &str, user_name: &str) -> Reference {
        Reference::for_class(&Self::class_path())
            .with_selector("ComputerName", computer_name)
            .with_selector("UserName", user_name)
    }
}

/// A connection from a remote computer to a share on this server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ServerConnection {
    /// Seconds since the connection was established.
    pub active_time: Option<u32>,
    /// Short description.
    pub caption: Option<String>,
    /// Key: the computer the connection comes from.
    pub computer_name: String,
    /// Connection identifier.
    #[serde(rename = "ConnectionID")]
    pub connection_id: Option<u32>,
    /// Description.
    pub description: Option<String>,
    /// When installed (normally nil).
    pub install_date: Option<Datetime>,
    /// Label.
    pub name: Option<String>,
    /// Files open through the connection.
    pub number_of_files: Option<u32>,
    /// Users on the connection.
    pub number_of_users: Option<u32>,
    /// Key: the share.
    pub share_name: String,
    /// Status.
    pub status: Option<String>,
    /// Key: the user.
    pub user_name: String,
}

impl CimClass for ServerConnection {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_ServerConnection";
    const KEYS: &'static [&'static str] = &["ComputerName", "ShareName", "UserName"];
}

impl ServerConnection {
    /// The reference of this connection (keys `ComputerName`, `ShareName`, `UserName`).
    pub fn reference(&self) -> Reference {
        Reference::for_class(&Self::class_path())
            .with_selector("ComputerName", &self.computer_name)
            .with_selector("ShareName", &self.share_name)
            .with_selector("UserName", &self.user_name)
    }
}

/// Association: a server session (`Antecedent`) and one of its connections (`Dependent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SessionConnection {
    /// The `Win32_ServerSession`.
    pub antecedent: Reference,
    /// The `Win32_ServerConnection`.
    pub dependent: Reference,
}

impl CimClass for SessionConnection {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_SessionConnection";
    const KEYS: &'static [&'static str] = &["Antecedent", "Dependent"];
}
