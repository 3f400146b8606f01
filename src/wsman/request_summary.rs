//! Reading requests back: what a server (the fixture server, a recorder) needs to know about a
//! request to answer or match it.

use super::dom::Node;
use super::xml::{Ev, XmlReader};
use super::{ParseError, ns};
use crate::cim::{Reference, Selector, SelectorValue};

/// The parts of a request that identify what it asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestSummary {
    /// `a:Action` (empty for Identify, which has no addressing headers).
    pub action: String,
    /// `a:MessageID`.
    pub message_id: Option<String>,
    /// `w:ResourceURI`.
    pub resource_uri: Option<String>,
    /// `w:SelectorSet` of the header (Get, Invoke).
    pub selectors: Vec<Selector>,
    /// Filter dialect and a canonical form of its content.
    pub filter: Option<(String, String)>,
    /// `n:EnumerationContext` of a Pull or Release.
    pub enumeration_context: Option<String>,
    /// `w:MaxElements` / `n:MaxElements`.
    pub max_elements: Option<u32>,
    /// `w:EnumerationMode`.
    pub enumeration_mode: Option<String>,
    /// Local name of the first body element, e.g. `Enumerate`, `ForceClose_INPUT`, `Identify`.
    pub body_element: Option<String>,
    /// A canonical text of the body element's content for method inputs (`name=value;...`).
    pub body_content: Option<String>,
}

/// Parses a request envelope.
pub fn parse_request(bytes: &[u8]) -> Result<RequestSummary, ParseError> {
    let mut x = XmlReader::from_bytes(bytes)?;
    let root = loop {
        match x.next()? {
            Ev::Start(e) => break Node::read(&mut x, &e, false)?,
            Ev::Empty(e) => break Node::read(&mut x, &e, true)?,
            Ev::Text(t) if t.trim().is_empty() => {}
            Ev::Eof => return Err(ParseError::Empty),
            _ => return Err(ParseError::NotAnEnvelope("text".into())),
        }
    };
    if !root.is(ns::SOAP, "Envelope") {
        return Err(ParseError::NotAnEnvelope(root.local.clone()));
    }
    let mut summary = RequestSummary::default();
    if let Some(header) = root.child(ns::SOAP, "Header") {
        for h in &header.children {
            match (h.ns.as_deref(), h.local.as_str()) {
                (Some(ns::ADDRESSING), "Action") => summary.action = h.text.trim().to_owned(),
                (Some(ns::ADDRESSING), "MessageID") => summary.message_id = h.trimmed(),
                (Some(ns::WSMAN), "ResourceURI") => summary.resource_uri = h.trimmed(),
                (Some(ns::WSMAN), "SelectorSet") => summary.selectors = selectors_of(h),
                _ => {}
            }
        }
    }
    let body = root
        .child(ns::SOAP, "Body")
        .ok_or(ParseError::MissingBody)?;
    if let Some(first) = body.children.first() {
        summary.body_element = Some(first.local.clone());
        for c in &first.children {
            match (c.ns.as_deref(), c.local.as_str()) {
                (Some(ns::WSMAN | ns::ENUMERATION), "Filter") => {
                    let dialect = c.attr("Dialect").unwrap_or(ns::DIALECT_WQL).to_owned();
                    summary.filter = Some((dialect, canonical_filter(c)));
                }
                (Some(ns::ENUMERATION), "EnumerationContext") => {
                    summary.enumeration_context = Some(c.text.trim().to_owned());
                }
                (Some(ns::WSMAN | ns::ENUMERATION), "MaxElements") => {
                    summary.max_elements = c.text.trim().parse().ok();
                }
                (Some(ns::WSMAN), "EnumerationMode") => summary.enumeration_mode = c.trimmed(),
                _ => {}
            }
        }
        if first.local.ends_with("_INPUT") {
            let mut parts: Vec<String> = first
                .children
                .iter()
                .map(|c| format!("{}={}", c.local, c.all_text().trim()))
                .collect();
            parts.sort();
            summary.body_content = Some(parts.join(";"));
        }
    }
    Ok(summary)
}

fn selectors_of(set: &Node) -> Vec<Selector> {
    set.children
        .iter()
        .filter(|s| s.is(ns::WSMAN, "Selector"))
        .map(|s| Selector {
            name: s.attr("Name").unwrap_or_default().to_owned(),
            value: match s.child(ns::ADDRESSING, "EndpointReference") {
                Some(epr) => SelectorValue::Reference(Box::new(reference_of(epr))),
                None => SelectorValue::Text(s.text.clone()),
            },
        })
        .collect()
}

fn reference_of(epr: &Node) -> Reference {
    let params = epr.child(ns::ADDRESSING, "ReferenceParameters");
    let uri = params
        .and_then(|p| p.child(ns::WSMAN, "ResourceURI"))
        .and_then(Node::trimmed)
        .unwrap_or_default();
    let mut reference = Reference::new(uri);
    if let Some(set) = params.and_then(|p| p.child(ns::WSMAN, "SelectorSet")) {
        for s in selectors_of(set) {
            reference = match s.value {
                SelectorValue::Text(t) => reference.with_selector(s.name, t),
                SelectorValue::Reference(r) => reference.with_reference_selector(s.name, *r),
            };
        }
    }
    reference
}

/// WQL with runs of white space folded; structured filters as sorted `name=value` pairs.
fn canonical_filter(filter: &Node) -> String {
    if filter.children.is_empty() {
        return filter.text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let mut parts = Vec::new();
    flatten(filter, "", &mut parts);
    parts.sort();
    parts.join(";")
}

fn flatten(node: &Node, path: &str, out: &mut Vec<String>) {
    for c in &node.children {
        let name = match c.attr("Name") {
            Some(n) => format!("{path}{}[{n}]", c.local),
            None => format!("{path}{}", c.local),
        };
        if c.children.is_empty() {
            out.push(format!("{name}={}", c.text.trim()));
        } else {
            flatten(c, &format!("{name}/"), out);
        }
    }
}
