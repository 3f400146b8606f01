//! XML namespace URIs of WS-Management as Windows uses them. Elements are always matched by
//! these URIs, never by prefix: Windows rebinds `p:` per class and other servers use other
//! prefixes altogether.

pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
pub const ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
pub const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
pub const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft extensions (`p:` on the envelope, `wsmv:` in MS-WSMV).
pub const MS_WSMAN: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
pub const WSMAN_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
pub const CIM_COMMON: &str = "http://schemas.dmtf.org/wbem/wscim/1/common";
pub const CIM_BINDING: &str = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const IDENTITY: &str = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd";

/// `a:To` of responses and the address of anonymous endpoint references.
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";

/// Filter dialects.
pub const DIALECT_WQL: &str = "http://schemas.microsoft.com/wbem/wsman/1/WQL";
pub const DIALECT_SELECTOR: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter";
pub const DIALECT_ASSOCIATION: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/cimbinding/associationFilter";

/// Actions.
pub mod action {
    pub const ENUMERATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
    pub const ENUMERATE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse";
    pub const PULL: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull";
    pub const PULL_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse";
    pub const RELEASE: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release";
    pub const RELEASE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse";
    pub const GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
    pub const GET_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
    pub const FAULT: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";
}
