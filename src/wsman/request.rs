//! Request envelopes: Identify, Enumerate, Pull, Release, Get. Plain string building: the shapes
//! are fixed, and every text and attribute value is escaped.

use std::fmt::Write;
use std::time::Duration;

use super::ns::{self, action};
use super::writer::{element, escape_into};
use crate::cim::{Reference, Selector, SelectorValue};

/// A WS-Addressing MessageID: `uuid:` and an upper-case GUID, as Windows writes them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// A fresh random MessageID.
    pub fn random() -> Self {
        // A version 4 UUID from the thread's generator (a CSPRNG seeded from the system once),
        // written upper case straight into the text.
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = String::with_capacity(41);
        text.push_str("uuid:");
        text.push_str(
            id.hyphenated()
                .encode_upper(&mut uuid::Uuid::encode_buffer()),
        );
        Self(text)
    }

    /// A MessageID with a given value (tests, replays).
    pub fn from_string(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The text, e.g. `uuid:5E6EE511-87B0-4C03-8084-15EEC39AD510`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Header values shared by every request to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressing {
    /// `a:To`: the endpoint URL.
    pub to: String,
    /// `w:MaxEnvelopeSize`: the largest response the server may send, in bytes.
    pub max_envelope_size: u32,
    /// `w:OperationTimeout`: how long the server may work on one request.
    pub operation_timeout: Duration,
    /// `w:Locale` / `p:DataLocale` (sent with mustUnderstand="false", as Windows clients do).
    pub locale: Option<String>,
}

impl Addressing {
    /// Defaults: 512000-byte envelopes (the Windows default MaxEnvelopeSizekb is 500), 60 s.
    pub fn new(to: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            max_envelope_size: 512_000,
            operation_timeout: Duration::from_secs(60),
            locale: Some("en-US".into()),
        }
    }
}

/// What an enumeration returns for each item (`w:EnumerationMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnumerationMode {
    /// The objects (no `w:EnumerationMode` element).
    #[default]
    Objects,
    /// Only endpoint references (`EnumerateEPR`).
    References,
    /// Objects with their endpoint references (`EnumerateObjectAndEPR`).
    ObjectsAndReferences,
}

/// A filter on an enumeration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// A WQL query; the resource URI must be `<namespace>/*`.
    Wql(String),
    /// Instances whose keys equal these values (`SelectorFilter` dialect).
    Selectors(Vec<Selector>),
    /// Instances associated with an object, or the association instances themselves (DMTF
    /// `associationFilter` dialect, DSP0227); the resource URI must be `<namespace>/*`.
    Association(AssociationFilter),
}

/// The two questions the association filter answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssociationKind {
    /// The instances at the other end of associations (`AssociatedInstances`, like
    /// `ASSOCIATORS OF`).
    Associated,
    /// The association instances themselves (`AssociationInstances`, like `REFERENCES OF`).
    Associations,
}

/// An association filter: which object, through which association, to which class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssociationFilter {
    /// Associated instances or association instances.
    pub kind: AssociationKind,
    /// The object at the near end.
    pub object: Reference,
    /// Only this association class (`AssociationClassName`; associated instances only).
    pub association_class: Option<String>,
    /// Only results of this class (`ResultClassName`).
    pub result_class: Option<String>,
    /// The role the object plays in the association (`Role`), e.g. `Antecedent`.
    pub role: Option<String>,
    /// The role the result plays (`ResultRole`; associated instances only).
    pub result_role: Option<String>,
}

/// The body of an Enumerate request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerate {
    /// The class (or `<namespace>/*` for WQL).
    pub resource_uri: String,
    /// The CIM namespace as the DSP0227 `__cimnamespace` selector, sent in the header of the
    /// Enumerate and of its Pulls and Release: how servers other than Windows (OMI, openwsman)
    /// learn the namespace, which they do not read from a WMI resource URI. `None` with a WMI
    /// resource URI, which names the namespace itself.
    pub cim_namespace: Option<String>,
    /// Optional filter.
    pub filter: Option<Filter>,
    /// Objects, references or both.
    pub mode: EnumerationMode,
    /// `w:MaxElements` for the first response (sent with `w:OptimizeEnumeration`).
    pub max_elements: u32,
}

fn header(
    out: &mut String,
    addressing: &Addressing,
    action: &str,
    resource_uri: &str,
    message_id: &MessageId,
    selectors: &[Selector],
) {
    out.push_str(concat!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope""#,
        r#" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing""#,
        r#" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration""#,
        r#" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd""#,
        r#" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">"#,
        "<s:Header>"
    ));
    element(out, "a:To", &addressing.to);
    out.push_str(r#"<w:ResourceURI s:mustUnderstand="true">"#);
    escape_into(out, resource_uri);
    out.push_str("</w:ResourceURI>");
    out.push_str(r#"<a:ReplyTo><a:Address s:mustUnderstand="true">"#);
    out.push_str(ns::ANONYMOUS);
    out.push_str("</a:Address></a:ReplyTo>");
    out.push_str(r#"<a:Action s:mustUnderstand="true">"#);
    escape_into(out, action);
    out.push_str("</a:Action>");
    let _ = write!(
        out,
        r#"<w:MaxEnvelopeSize s:mustUnderstand="true">{}</w:MaxEnvelopeSize>"#,
        addressing.max_envelope_size
    );
    element(out, "a:MessageID", message_id.as_str());
    if let Some(locale) = &addressing.locale {
        out.push_str(r#"<w:Locale xml:lang=""#);
        escape_into(out, locale);
        out.push_str(r#"" s:mustUnderstand="false"/><p:DataLocale xml:lang=""#);
        escape_into(out, locale);
        out.push_str(r#"" s:mustUnderstand="false"/>"#);
    }
    let timeout = addressing.operation_timeout;
    let _ = write!(
        out,
        "<w:OperationTimeout>PT{}.{:03}S</w:OperationTimeout>",
        timeout.as_secs(),
        timeout.subsec_millis()
    );
    if !selectors.is_empty() {
        write_selector_set(out, selectors);
    }
    out.push_str("</s:Header>");
}

/// `<w:SelectorSet>` with text or nested endpoint references.
pub(crate) fn write_selector_set(out: &mut String, selectors: &[Selector]) {
    out.push_str("<w:SelectorSet>");
    for selector in selectors {
        out.push_str(r#"<w:Selector Name=""#);
        escape_into(out, &selector.name);
        out.push_str(r#"">"#);
        match &selector.value {
            SelectorValue::Text(t) => escape_into(out, t),
            SelectorValue::Reference(r) => {
                out.push_str("<a:EndpointReference>");
                write_epr_content(out, r);
                out.push_str("</a:EndpointReference>");
            }
        }
        out.push_str("</w:Selector>");
    }
    out.push_str("</w:SelectorSet>");
}

/// `a:Address` and `a:ReferenceParameters` of an endpoint reference.
pub(crate) fn write_epr_content(out: &mut String, reference: &Reference) {
    element(
        out,
        "a:Address",
        reference.address().unwrap_or(ns::ANONYMOUS),
    );
    out.push_str("<a:ReferenceParameters>");
    element(out, "w:ResourceURI", reference.resource_uri());
    if !reference.selectors().is_empty() {
        write_selector_set(out, reference.selectors());
    }
    out.push_str("</a:ReferenceParameters>");
}

/// A whole envelope: the header for `action` and a body written by `content`.
fn envelope(
    addressing: &Addressing,
    action: &str,
    resource_uri: &str,
    message_id: &MessageId,
    selectors: &[Selector],
    content: impl FnOnce(&mut String),
) -> String {
    let mut out = String::with_capacity(1536);
    header(
        &mut out,
        addressing,
        action,
        resource_uri,
        message_id,
        selectors,
    );
    out.push_str("<s:Body>");
    content(&mut out);
    out.push_str("</s:Body></s:Envelope>");
    out
}

/// `wsmid:Identify`: answered without authentication by most servers.
pub fn identify() -> String {
    concat!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope""#,
        r#" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">"#,
        "<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
    )
    .to_owned()
}

/// An optimized Enumerate: the first page comes back in the response.
pub fn enumerate(addressing: &Addressing, request: &Enumerate, message_id: &MessageId) -> String {
    envelope(
        addressing,
        action::ENUMERATE,
        &request.resource_uri,
        message_id,
        &namespace_selector(request),
        |out| {
            out.push_str("<n:Enumerate><w:OptimizeEnumeration/>");
            let _ = write!(
                out,
                "<w:MaxElements>{}</w:MaxElements>",
                request.max_elements.max(1)
            );
            match request.mode {
                EnumerationMode::Objects => {}
                EnumerationMode::References => {
                    out.push_str("<w:EnumerationMode>EnumerateEPR</w:EnumerationMode>");
                }
                EnumerationMode::ObjectsAndReferences => {
                    out.push_str("<w:EnumerationMode>EnumerateObjectAndEPR</w:EnumerationMode>");
                }
            }
            match &request.filter {
                None => {}
                Some(Filter::Wql(query)) => {
                    let _ = write!(out, r#"<w:Filter Dialect="{}">"#, ns::DIALECT_WQL);
                    escape_into(out, query);
                    out.push_str("</w:Filter>");
                }
                Some(Filter::Selectors(selectors)) => {
                    let _ = write!(out, r#"<w:Filter Dialect="{}">"#, ns::DIALECT_SELECTOR);
                    write_selector_set(out, selectors);
                    out.push_str("</w:Filter>");
                }
                Some(Filter::Association(filter)) => write_association_filter(out, filter),
            }
            out.push_str("</n:Enumerate>");
        },
    )
}

fn write_association_filter(out: &mut String, filter: &AssociationFilter) {
    let _ = write!(
        out,
        r#"<w:Filter Dialect="{}" xmlns:b="{}">"#,
        ns::DIALECT_ASSOCIATION,
        ns::CIM_BINDING
    );
    let (element, fields): (&str, [(&str, &Option<String>); 4]) = match filter.kind {
        AssociationKind::Associated => (
            "b:AssociatedInstances",
            [
                ("b:AssociationClassName", &filter.association_class),
                ("b:Role", &filter.role),
                ("b:ResultClassName", &filter.result_class),
                ("b:ResultRole", &filter.result_role),
            ],
        ),
        AssociationKind::Associations => (
            "b:AssociationInstances",
            [
                ("b:ResultClassName", &filter.result_class),
                ("b:Role", &filter.role),
                ("", &None),
                ("", &None),
            ],
        ),
    };
    let _ = write!(out, "<{element}><b:Object>");
    write_epr_content(out, &filter.object);
    out.push_str("</b:Object>");
    for (tag, value) in fields {
        if let Some(value) = value {
            self::element(out, tag, value);
        }
    }
    let _ = write!(out, "</{element}></w:Filter>");
}

/// A method input parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Argument {
    /// Text (numbers in decimal, booleans as `true`/`false`).
    Text(String),
    /// A reference.
    Reference(Reference),
    /// An array: the element repeated.
    Array(Vec<Argument>),
    /// `xsi:nil`.
    Null,
}

/// A method or parameter name that cannot be written as an element name: the envelope would
/// not say what the caller asked for, so nothing is built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {name:?} is not a valid name: a letter or '_', then letters, digits, '_', '-' or '.'"
)]
pub struct InvalidName {
    /// `method` or `parameter`.
    pub what: &'static str,
    /// The name as given.
    pub name: String,
}

/// True for an XML name without a prefix (an NCName): what `<p:{name}>` needs.
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{B7}'))
}

fn check_name(what: &'static str, name: &str) -> Result<(), InvalidName> {
    if is_xml_name(name) {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

/// An Invoke of `method` on the instance `target` points to, with named input parameters.
///
/// # Errors
///
/// [`InvalidName`] when the method or a parameter name is not an XML name.
pub fn invoke(
    addressing: &Addressing,
    target: &Reference,
    method: &str,
    input: &[(String, Argument)],
    message_id: &MessageId,
) -> Result<String, InvalidName> {
    check_name("method", method)?;
    for (name, _) in input {
        check_name("parameter", name)?;
    }
    let action = format!("{}/{method}", target.resource_uri());
    Ok(envelope(
        addressing,
        &action,
        target.resource_uri(),
        message_id,
        target.selectors(),
        |out| {
            let _ = write!(out, "<p:{method}_INPUT xmlns:p=\"");
            escape_into(out, target.resource_uri());
            out.push_str(r#"" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#);
            for (name, value) in input {
                write_argument(out, name, value);
            }
            let _ = write!(out, "</p:{method}_INPUT>");
        },
    ))
}

fn write_argument(out: &mut String, name: &str, value: &Argument) {
    match value {
        Argument::Text(t) => {
            let _ = write!(out, "<p:{name}>");
            escape_into(out, t);
            let _ = write!(out, "</p:{name}>");
        }
        Argument::Reference(r) => {
            let _ = write!(out, "<p:{name}>");
            write_epr_content(out, r);
            let _ = write!(out, "</p:{name}>");
        }
        Argument::Array(items) => {
            for item in items {
                write_argument(out, name, item);
            }
        }
        Argument::Null => {
            let _ = write!(out, r#"<p:{name} xsi:nil="true"/>"#);
        }
    }
}

/// The header selectors of an enumeration's requests: its `__cimnamespace`, if any.
fn namespace_selector(request: &Enumerate) -> Vec<Selector> {
    request
        .cim_namespace
        .iter()
        .map(|namespace| Selector {
            name: CIM_NAMESPACE_SELECTOR.into(),
            value: SelectorValue::Text(namespace.clone()),
        })
        .collect()
}

/// The DSP0227 selector that names the CIM namespace of a DMTF-addressed request.
pub const CIM_NAMESPACE_SELECTOR: &str = "__cimnamespace";

/// A Pull of `request`'s enumeration (same resource URI and namespace), with the latest context.
pub fn pull(
    addressing: &Addressing,
    request: &Enumerate,
    context: &str,
    max_elements: u32,
    message_id: &MessageId,
) -> String {
    envelope(
        addressing,
        action::PULL,
        &request.resource_uri,
        message_id,
        &namespace_selector(request),
        |out| {
            out.push_str("<n:Pull>");
            element(out, "n:EnumerationContext", context);
            let _ = write!(
                out,
                "<n:MaxElements>{}</n:MaxElements></n:Pull>",
                max_elements.max(1)
            );
        },
    )
}

/// A Release of `request`'s enumeration, which will not be pulled to its end.
pub fn release(
    addressing: &Addressing,
    request: &Enumerate,
    context: &str,
    message_id: &MessageId,
) -> String {
    envelope(
        addressing,
        action::RELEASE,
        &request.resource_uri,
        message_id,
        &namespace_selector(request),
        |out| {
            out.push_str("<n:Release>");
            element(out, "n:EnumerationContext", context);
            out.push_str("</n:Release>");
        },
    )
}

/// A Get of the instance a reference points to.
pub fn get(addressing: &Addressing, reference: &Reference, message_id: &MessageId) -> String {
    envelope(
        addressing,
        action::GET,
        reference.resource_uri(),
        message_id,
        reference.selectors(),
        |_| {},
    )
}
