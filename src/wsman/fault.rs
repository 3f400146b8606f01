//! SOAP / WS-Management faults, as Windows writes them (MS-WSMV 2.2.4.x, DSP0226 §14).
//!
//! A Windows fault carries up to three layers of codes: the SOAP code and subcode
//! (`s:Receiver` / `w:TimedOut`), the `f:WSManFault` numeric code (`2150858793`), and, from the
//! WMI provider, a nested WSManFault, an `__ExtendedStatus` or an `MSFT_WmiError` instance.
//! [`Fault`] keeps all of them and answers the questions callers ask: may I retry, was I denied.

use std::fmt;

use super::dom::Node;
use super::ns;

/// A namespace-qualified name written as text (`w:TimedOut`), with its prefix resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QualifiedName {
    /// The namespace URI the prefix was bound to, if it was bound.
    pub namespace: Option<String>,
    /// The local part, e.g. `TimedOut`.
    pub local: String,
}

impl QualifiedName {
    fn from_node(node: &Node) -> Option<Self> {
        let text = node.text.trim();
        if text.is_empty() {
            return None;
        }
        let local = text.rsplit(':').next().unwrap_or(text).to_owned();
        Some(Self {
            namespace: node.text_ns.clone(),
            local,
        })
    }

    /// True when this is `local` in namespace `ns`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.namespace.as_deref() == Some(ns)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.local)
    }
}

/// A WS-Management fault.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Fault {
    /// SOAP code: `Sender` (the request was wrong) or `Receiver` (the server failed).
    pub code: Option<QualifiedName>,
    /// SOAP subcode, e.g. `w:TimedOut`, `n:CannotProcessFilter`, `a:DestinationUnreachable`.
    pub subcode: Option<QualifiedName>,
    /// `s:Reason/s:Text`, trimmed.
    pub reason: String,
    /// `w:FaultDetail` URI, e.g. `.../faultDetail/InvalidResourceURI`.
    pub detail: Option<String>,
    /// `f:WSManFault/@Code`, e.g. 2150858793 (0x80338029, operation timeout).
    pub wsman_code: Option<u32>,
    /// `f:WSManFault/@Machine`.
    pub machine: Option<String>,
    /// The most specific human-readable message.
    pub message: Option<String>,
    /// `f:ProviderFault/@provider`, e.g. `WMI Provider`.
    pub provider: Option<String>,
    /// `f:ProviderFault/@path`.
    pub provider_path: Option<String>,
    /// The provider's own code: a nested WSManFault code, `MSFT_WmiError.error_Code` or
    /// `__ExtendedStatus.StatusCode`.
    pub wmi_error_code: Option<u32>,
    /// `MSFT_WmiError.CIMStatusCode`.
    pub cim_status_code: Option<u32>,
    /// `__ExtendedStatus.Operation` (e.g. `ExecQuery`) or `__ExtendedStatus.ProviderName`.
    pub operation: Option<String>,
    /// The namespace the faulted request addressed (said by the client, not by the server),
    /// so that "the target namespace does not exist" says which.
    pub namespace: Option<String>,
}

/// WSManFault codes worth naming.
pub mod codes {
    /// 0x80338029: the operation timeout elapsed.
    pub const TIMED_OUT: u32 = 2_150_858_793;
    /// 0x803381A6: too many concurrent operations for this user.
    pub const CONCURRENT_OPERATIONS_QUOTA: u32 = 2_150_859_174;
    /// 0x803381A5: shells-per-user quota.
    pub const SHELL_QUOTA: u32 = 2_150_859_173;
    /// 0x80070005: access denied (Win32 through HRESULT).
    pub const E_ACCESSDENIED: u32 = 2_147_942_405;
    /// 0x80041003: WBEM_E_ACCESS_DENIED.
    pub const WBEM_E_ACCESS_DENIED: u32 = 2_147_749_891;
    /// 0x80041002: WBEM_E_NOT_FOUND.
    pub const WBEM_E_NOT_FOUND: u32 = 2_147_749_890;
    /// 0x80338000: the resource URI or instance does not exist.
    pub const DESTINATION_UNREACHABLE: u32 = 2_150_858_752;
    /// 0x8033801A: the filter could not be processed (WQL syntax, unknown class).
    pub const CANNOT_PROCESS_FILTER: u32 = 2_150_858_778;
}

impl Fault {
    pub(crate) fn from_node(fault: &Node) -> Fault {
        let mut out = Fault::default();
        if let Some(code) = fault.child(ns::SOAP, "Code") {
            out.code = code
                .child(ns::SOAP, "Value")
                .and_then(QualifiedName::from_node);
            out.subcode = code
                .child(ns::SOAP, "Subcode")
                .and_then(|s| s.child(ns::SOAP, "Value"))
                .and_then(QualifiedName::from_node);
        }
        out.reason = fault
            .child(ns::SOAP, "Reason")
            .and_then(|r| r.child(ns::SOAP, "Text"))
            .map(|t| t.text.trim().to_owned())
            .unwrap_or_default();
        if let Some(detail) = fault.child(ns::SOAP, "Detail") {
            out.read_detail(detail);
        }
        out
    }

    fn read_detail(&mut self, detail: &Node) {
        self.detail = detail
            .child(ns::WSMAN, "FaultDetail")
            .and_then(Node::trimmed);
        if let Some(wsman) = detail.child(ns::WSMAN_FAULT, "WSManFault") {
            self.wsman_code = wsman.attr("Code").and_then(parse_code);
            self.machine = wsman.attr("Machine").map(str::to_owned);
            if let Some(message) = wsman.child(ns::WSMAN_FAULT, "Message") {
                self.read_message(message);
            }
        }
        let wmi_error = detail.find(&|n| n.local == "MSFT_WmiError");
        if let Some(err) = wmi_error {
            let field = |name: &str| {
                err.children
                    .iter()
                    .find(|c| c.local == name && !c.nil)
                    .and_then(Node::trimmed)
            };
            self.cim_status_code = field("CIMStatusCode").and_then(|c| parse_code(&c));
            self.wmi_error_code = self
                .wmi_error_code
                .or_else(|| field("error_Code").and_then(|c| parse_code(&c)));
            if self.message.is_none() {
                self.message = field("Message");
            }
        }
        if self.message.is_none() {
            self.message = Some(self.reason.clone()).filter(|m| !m.is_empty());
        }
    }

    fn read_message(&mut self, message: &Node) {
        match message.child(ns::WSMAN_FAULT, "ProviderFault") {
            Some(provider) => {
                self.provider = provider.attr("provider").map(str::to_owned);
                self.provider_path = provider.attr("path").map(str::to_owned);
                if let Some(nested) = provider.child(ns::WSMAN_FAULT, "WSManFault") {
                    self.wmi_error_code = nested.attr("Code").and_then(parse_code);
                    self.message = nested
                        .child(ns::WSMAN_FAULT, "Message")
                        .map(|m| m.all_text().trim().to_owned());
                } else {
                    self.message = provider.trimmed();
                }
                if let Some(status) = provider.find(&|n| n.local == "__ExtendedStatus") {
                    let field = |name: &str| {
                        status
                            .children
                            .iter()
                            .find(|c| c.local == name && !c.nil)
                            .and_then(Node::trimmed)
                    };
                    self.operation = field("Operation").or_else(|| field("ProviderName"));
                    if self.wmi_error_code.is_none() {
                        self.wmi_error_code = field("StatusCode").and_then(|c| parse_code(&c));
                    }
                }
            }
            None => self.message = Some(message.all_text().trim().to_owned()),
        }
        if self.message.as_deref() == Some("") {
            self.message = None;
        }
    }

    fn subcode_is(&self, ns: &str, local: &str) -> bool {
        self.subcode.as_ref().is_some_and(|s| s.is(ns, local))
    }

    fn any_code(&self, code: u32) -> bool {
        self.wsman_code == Some(code) || self.wmi_error_code == Some(code)
    }

    /// The operation timeout elapsed on the server (`w:TimedOut`); the same request may succeed.
    pub fn is_timeout(&self) -> bool {
        self.subcode_is(ns::WSMAN, "TimedOut") || self.any_code(codes::TIMED_OUT)
    }

    /// The server refused for lack of rights.
    pub fn is_access_denied(&self) -> bool {
        self.subcode_is(ns::WSMAN, "AccessDenied")
            || self.any_code(codes::E_ACCESSDENIED)
            || self.any_code(codes::WBEM_E_ACCESS_DENIED)
            || self.any_code(5)
    }

    /// A per-user quota was exceeded (concurrent operations, shells); retry later.
    pub fn is_quota_exceeded(&self) -> bool {
        self.subcode_is(ns::WSMAN, "QuotaLimit")
            || self.any_code(codes::CONCURRENT_OPERATIONS_QUOTA)
            || self.any_code(codes::SHELL_QUOTA)
    }

    /// Worth retrying the same request after a pause.
    pub fn is_retryable(&self) -> bool {
        self.is_timeout() || self.is_quota_exceeded()
    }

    /// The enumeration context expired or is unknown: restart the enumeration.
    pub fn is_invalid_enumeration_context(&self) -> bool {
        self.subcode_is(ns::ENUMERATION, "InvalidEnumerationContext")
    }

    /// The class, namespace or instance does not exist.
    pub fn is_not_found(&self) -> bool {
        self.subcode_is(ns::ADDRESSING, "DestinationUnreachable")
            || self.any_code(codes::WBEM_E_NOT_FOUND)
            || self.wsman_code == Some(codes::DESTINATION_UNREACHABLE)
    }

    /// The filter (WQL) was rejected: syntax error, unknown class or property.
    pub fn is_invalid_filter(&self) -> bool {
        self.subcode_is(ns::ENUMERATION, "CannotProcessFilter")
            || self.wsman_code == Some(codes::CANNOT_PROCESS_FILTER)
    }
}

fn parse_code(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    text.parse::<u32>()
        .ok()
        .or_else(|| text.parse::<i32>().ok().map(|v| v as u32))
}

impl fmt::Display for Fault {
    /// `TimedOut: the WS-Management service cannot complete the operation within the time
    /// specified in OperationTimeout (WSManFault 0x80338029)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.subcode, &self.code) {
            (Some(s), _) => write!(f, "{s}")?,
            (None, Some(c)) => write!(f, "{c}")?,
            (None, None) => f.write_str("fault")?,
        }
        let message = self.message.as_deref().unwrap_or(&self.reason);
        if !message.is_empty() {
            write!(f, ": {}", message.trim_end_matches(['.', ' ']))?;
        }
        let mut extras = Vec::new();
        if let Some(code) = self.wsman_code {
            extras.push(format!("WSManFault 0x{code:08X}"));
        }
        if let Some(code) = self.wmi_error_code.filter(|c| Some(*c) != self.wsman_code) {
            extras.push(format!("provider error 0x{code:08X}"));
        }
        if let Some(provider) = &self.provider {
            extras.push(format!("provider {provider}"));
        }
        if let Some(op) = &self.operation {
            extras.push(format!("operation {op}"));
        }
        if let Some(namespace) = &self.namespace {
            extras.push(format!("namespace {namespace}"));
        }
        if !extras.is_empty() {
            write!(f, " ({})", extras.join(", "))?;
        }
        Ok(())
    }
}
