//! XML namespace URIs of WS-Management as Windows uses them. Elements are always matched by
//! these URIs, never by prefix: Windows rebinds `p:` per class and other servers use other
//! prefixes altogether.

/// SOAP 1.2 envelope (`s:`).
pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing (`a:`).
pub const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Enumeration (`n:`).
pub const ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
/// WS-Transfer (`x:`).
pub const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// DMTF WS-Management (`w:`).
pub const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft extensions (`p:` on the envelope, `wsmv:` in MS-WSMV).
pub const MS_WSMAN: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// Microsoft WSManFault detail (`f:`).
pub const WSMAN_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
/// DMTF CIM common types: `cim:Datetime`, `cim:Interval`.
pub const CIM_COMMON: &str = "http://schemas.dmtf.org/wbem/wscim/1/common";
/// DMTF CIM binding: association filters (`b:`).
pub const CIM_BINDING: &str = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd";
/// XML Schema instance: `xsi:nil`, `xsi:type`.
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// WS-Management Identify (`wsmid:`).
pub const IDENTITY: &str = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd";

/// The anonymous role URI: `a:To` of responses, the address of endpoint references.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// WQL filter dialect.
pub const DIALECT_WQL: &str = "http://schemas.microsoft.com/wbem/wsman/1/WQL";
/// Selector filter dialect.
pub const DIALECT_SELECTOR: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter";
/// Association filter dialect.
pub const DIALECT_ASSOCIATION: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/cimbinding/associationFilter";

/// Actions.
pub mod action {
    /// Enumerate.
    pub const ENUMERATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
    /// EnumerateResponse.
    pub const ENUMERATE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse";
    /// Pull.
    pub const PULL: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";
    /// PullResponse.
    pub const PULL_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse";
    /// Release.
    pub const RELEASE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release";
    /// ReleaseResponse.
    pub const RELEASE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse";
    /// Get.
    pub const GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
    /// GetResponse.
    pub const GET_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
    /// WS-Management fault.
    pub const FAULT: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";
}
