//! A tiny bounded tree for the small, irregular parts of a message (faults, Identify, the
//! selectors, filters and method inputs of a request), where a tree is clearer than a stream
//! and size is no concern.

use super::ParseError;
use super::xml::{Ev, XmlReader};

/// Nodes beyond this make the document "too large" for a tree: faults have a few dozen.
const MAX_NODES: usize = 4096;

#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub ns: Option<String>,
    pub local: String,
    pub attrs: Vec<(Option<String>, String, String)>,
    pub text: String,
    /// Namespace of a `prefix:local` QName written as the text, resolved where it stood.
    pub text_ns: Option<String>,
    pub children: Vec<Node>,
    pub nil: bool,
}

impl Node {
    /// Reads the element just started (or empty) into a tree.
    pub(crate) fn read(
        x: &mut XmlReader<'_>,
        start: &quick_xml::events::BytesStart<'_>,
        empty: bool,
    ) -> Result<Node, ParseError> {
        let mut budget = MAX_NODES;
        Self::read_inner(x, start, empty, &mut budget)
    }

    fn read_inner(
        x: &mut XmlReader<'_>,
        start: &quick_xml::events::BytesStart<'_>,
        empty: bool,
        budget: &mut usize,
    ) -> Result<Node, ParseError> {
        *budget = budget.checked_sub(1).ok_or(ParseError::Unexpected(
            "too many elements in a fault or request".into(),
        ))?;
        let mut node = Node {
            ns: x.ns(start).map(str::to_owned),
            local: start.local_name().into_inner().to_owned(),
            nil: x.is_nil(start),
            ..Node::default()
        };
        for attr in start.attributes().flatten() {
            let key = attr.key.into_inner();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let local = attr.key.local_name().into_inner().to_owned();
            let ns = attr
                .key
                .prefix()
                .and_then(|p| x.resolve_text_qname(&format!("{}:x", p.into_inner())));
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_default();
            node.attrs.push((ns, local, value));
        }
        if empty {
            return Ok(node);
        }
        loop {
            match x.next()? {
                Ev::Text(t) => node.text.push_str(&t),
                Ev::Start(e) => {
                    let child = Self::read_inner(x, &e, false, budget)?;
                    node.children.push(child);
                }
                Ev::Empty(e) => {
                    let child = Self::read_inner(x, &e, true, budget)?;
                    node.children.push(child);
                }
                Ev::End => break,
                Ev::Eof => return Err(ParseError::Truncated),
            }
            if node.text.len() > 1 << 20 {
                return Err(ParseError::Unexpected(
                    "text too long in a fault or request".into(),
                ));
            }
        }
        let trimmed = node.text.trim();
        if node.children.is_empty() && trimmed.contains(':') && !trimmed.contains(' ') {
            node.text_ns = x.resolve_text_qname(trimmed);
        }
        Ok(node)
    }

    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// First child with that namespace and local name.
    pub(crate) fn child(&self, ns: &str, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// First descendant (depth-first) matching the predicate.
    pub(crate) fn find(&self, pred: &dyn Fn(&Node) -> bool) -> Option<&Node> {
        for c in &self.children {
            if pred(c) {
                return Some(c);
            }
            if let Some(found) = c.find(pred) {
                return Some(found);
            }
        }
        None
    }

    pub(crate) fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, l, _)| ns.is_none() && l == local)
            .map(|(_, _, v)| v.as_str())
    }

    /// Text of this element and all descendants, in document order.
    pub(crate) fn all_text(&self) -> String {
        let mut out = self.text.clone();
        for c in &self.children {
            out.push_str(&c.all_text());
        }
        out
    }

    /// Trimmed own text, None when empty.
    pub(crate) fn trimmed(&self) -> Option<String> {
        let t = self.text.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }
}
