//! Logon sessions and their processes (`root/cimv2`): `Win32_LogonSession`,
//! `Win32_SessionProcess` and `Win32_Process`.

use serde::{Deserialize, Serialize};

use crate::cim::{CimClass, Datetime, Reference};

/// A logon session of a user on the server (interactive, network, service, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LogonSession {
    /// The package that authenticated the session: `Kerberos`, `NTLM`, `Negotiate`, ...
    pub authentication_package: Option<String>,
    /// Short description.
    pub caption: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// When installed (normally nil).
    pub install_date: Option<Datetime>,
    /// Key: the logon identifier, decimal text.
    pub logon_id: String,
    /// 0 system, 2 interactive, 3 network, 4 batch, 5 service, 7 unlock, 8 network cleartext,
    /// 9 new credentials, 10 remote interactive, 11 cached interactive, ...
    pub logon_type: Option<u32>,
    /// Label.
    pub name: Option<String>,
    /// When the session started, with the server's offset.
    pub start_time: Option<Datetime>,
    /// Status.
    pub status: Option<String>,
}

impl CimClass for LogonSession {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_LogonSession";
    const KEYS: &'static [&'static str] = &["LogonId"];
}

impl LogonSession {
    /// The reference of this session (key `LogonId`).
    pub fn reference(&self) -> Reference {
        Reference::for_class(&Self::class_path()).with_selector("LogonId", &self.logon_id)
    }

    /// The documented name of [`LogonSession::logon_type`].
    pub fn logon_type_name(&self) -> Option<&'static str> {
        Some(match self.logon_type? {
            0 => "System",
            2 => "Interactive",
            3 => "Network",
            4 => "Batch",
            5 => "Service",
            6 => "Proxy",
            7 => "Unlock",
            8 => "NetworkCleartext",
            9 => "NewCredentials",
            10 => "RemoteInteractive",
            11 => "CachedInteractive",
            12 => "CachedRemoteInteractive",
            13 => "CachedUnlock",
            _ => return None,
        })
    }
}

/// Association: a logon session (`Antecedent`) and a process running in it (`Dependent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct SessionProcess {
    /// The `Win32_LogonSession`.
    pub antecedent: Reference,
    /// The `Win32_Process`.
    pub dependent: Reference,
}

impl CimClass for SessionProcess {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_SessionProcess";
    const KEYS: &'static [&'static str] = &["Antecedent", "Dependent"];
}

/// A process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
#[allow(missing_docs)]
pub struct Process {
    pub caption: Option<String>,
    /// Command line; nil for processes the caller may not inspect.
    pub command_line: Option<String>,
    pub creation_class_name: Option<String>,
    pub creation_date: Option<Datetime>,
    #[serde(rename = "CSCreationClassName")]
    pub cs_creation_class_name: Option<String>,
    #[serde(rename = "CSName")]
    pub cs_name: Option<String>,
    pub description: Option<String>,
    pub executable_path: Option<String>,
    pub execution_state: Option<u16>,
    /// Key: the process identifier as text.
    pub handle: String,
    pub handle_count: Option<u32>,
    pub install_date: Option<Datetime>,
    /// 100-nanosecond units.
    pub kernel_mode_time: Option<u64>,
    pub maximum_working_set_size: Option<u64>,
    pub minimum_working_set_size: Option<u64>,
    pub name: Option<String>,
    #[serde(rename = "OSCreationClassName")]
    pub os_creation_class_name: Option<String>,
    #[serde(rename = "OSName")]
    pub os_name: Option<String>,
    pub other_operation_count: Option<u64>,
    pub other_transfer_count: Option<u64>,
    pub page_faults: Option<u32>,
    pub page_file_usage: Option<u32>,
    pub parent_process_id: Option<u32>,
    pub peak_page_file_usage: Option<u32>,
    pub peak_virtual_size: Option<u64>,
    pub peak_working_set_size: Option<u32>,
    pub priority: Option<u32>,
    pub private_page_count: Option<u64>,
    pub process_id: Option<u32>,
    pub quota_non_paged_pool_usage: Option<u32>,
    pub quota_paged_pool_usage: Option<u32>,
    pub quota_peak_non_paged_pool_usage: Option<u32>,
    pub quota_peak_paged_pool_usage: Option<u32>,
    pub read_operation_count: Option<u64>,
    pub read_transfer_count: Option<u64>,
    /// Terminal Services session, not logon session.
    pub session_id: Option<u32>,
    pub status: Option<String>,
    pub termination_date: Option<Datetime>,
    pub thread_count: Option<u32>,
    /// 100-nanosecond units.
    pub user_mode_time: Option<u64>,
    pub virtual_size: Option<u64>,
    pub windows_version: Option<String>,
    pub working_set_size: Option<u64>,
    pub write_operation_count: Option<u64>,
    pub write_transfer_count: Option<u64>,
}

impl CimClass for Process {
    const NAMESPACE: &'static str = "root/cimv2";
    const CLASS_NAME: &'static str = "Win32_Process";
    const KEYS: &'static [&'static str] = &["Handle"];
}

impl Process {
    /// The reference of this process (key `Handle`).
    pub fn reference(&self) -> Reference {
        Reference::for_class(&Self::class_path()).with_selector("Handle", &self.handle)
    }
}
