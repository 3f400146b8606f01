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
///
/// The fixture server reads every request it answers, so the common parts (addressing headers,
/// the Enumerate/Pull/Release body) are read in one pass without building a tree; only the rare
/// structured parts (selector sets, filters, method inputs) become a small tree.
pub fn parse_request(bytes: &[u8]) -> Result<RequestSummary, ParseError> {
    let mut x = XmlReader::from_bytes(bytes)?;
    let root = loop {
        match x.next()? {
            Ev::Start(e) => break e,
            Ev::Empty(e) if x.is(&e, ns::SOAP, "Envelope") => return Err(ParseError::MissingBody),
            Ev::Empty(e) => {
                return Err(ParseError::NotAnEnvelope(
                    e.local_name().into_inner().to_owned(),
                ));
            }
            Ev::Text(t) if t.trim().is_empty() => {}
            Ev::Eof => return Err(ParseError::Empty),
            _ => return Err(ParseError::NotAnEnvelope("text".into())),
        }
    };
    if !x.is(&root, ns::SOAP, "Envelope") {
        return Err(ParseError::NotAnEnvelope(
            root.local_name().into_inner().to_owned(),
        ));
    }
    let mut summary = RequestSummary::default();
    let (mut seen_header, mut seen_body) = (false, false);
    // The whole envelope is read, so that a truncated one fails as it would in a tree.
    while let Some((e, empty)) = x.next_child()? {
        if !seen_header && x.is(&e, ns::SOAP, "Header") {
            seen_header = true;
            if !empty {
                read_header(&mut x, &mut summary)?;
            }
        } else if !seen_body && x.is(&e, ns::SOAP, "Body") {
            seen_body = true;
            if !empty {
                read_body(&mut x, &mut summary)?;
            }
        } else if !empty {
            x.skip()?;
        }
    }
    if !seen_body {
        return Err(ParseError::MissingBody);
    }
    Ok(summary)
}

/// After the start of `s:Header`: the addressing headers, up to its end.
fn read_header(x: &mut XmlReader<'_>, summary: &mut RequestSummary) -> Result<(), ParseError> {
    while let Some((h, empty)) = x.next_child()? {
        match (x.ns(&h), h.local_name().into_inner()) {
            (Some(ns::ADDRESSING), "Action") => {
                summary.action = x.child_text(empty)?.trim().to_owned();
            }
            (Some(ns::ADDRESSING), "MessageID") => {
                summary.message_id = non_empty(x.child_text(empty)?.trim());
            }
            (Some(ns::WSMAN), "ResourceURI") => {
                summary.resource_uri = non_empty(x.child_text(empty)?.trim());
            }
            (Some(ns::WSMAN), "SelectorSet") => {
                summary.selectors = selectors_of(&Node::read(x, &h, empty)?);
            }
            _ if !empty => x.skip()?,
            _ => {}
        }
    }
    Ok(())
}

/// After the start of `s:Body`: its first element (the operation) and what it asks for, up to
/// the body's end.
fn read_body(x: &mut XmlReader<'_>, summary: &mut RequestSummary) -> Result<(), ParseError> {
    let Some((first, empty)) = x.next_child()? else {
        return Ok(());
    };
    let local = first.local_name().into_inner();
    summary.body_element = Some(local.to_owned());
    if local.ends_with("_INPUT") {
        let input = Node::read(x, &first, empty)?;
        let mut parts: Vec<String> = input
            .children
            .iter()
            .map(|c| format!("{}={}", c.local, c.all_text().trim()))
            .collect();
        parts.sort();
        summary.body_content = Some(parts.join(";"));
    } else if !empty {
        while let Some((c, empty)) = x.next_child()? {
            match (x.ns(&c), c.local_name().into_inner()) {
                (Some(ns::WSMAN | ns::ENUMERATION), "Filter") => {
                    let filter = Node::read(x, &c, empty)?;
                    let dialect = filter.attr("Dialect").unwrap_or(ns::DIALECT_WQL).to_owned();
                    summary.filter = Some((dialect, canonical_filter(&filter)));
                }
                (Some(ns::ENUMERATION), "EnumerationContext") => {
                    summary.enumeration_context = Some(x.child_text(empty)?.trim().to_owned());
                }
                (Some(ns::WSMAN | ns::ENUMERATION), "MaxElements") => {
                    summary.max_elements = x.child_text(empty)?.trim().parse().ok();
                }
                (Some(ns::WSMAN), "EnumerationMode") => {
                    summary.enumeration_mode = non_empty(x.child_text(empty)?.trim());
                }
                _ if !empty => x.skip()?,
                _ => {}
            }
        }
    }
    // Whatever follows the operation's element is not part of the request.
    while let Some((_, empty)) = x.next_child()? {
        if !empty {
            x.skip()?;
        }
    }
    Ok(())
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
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
