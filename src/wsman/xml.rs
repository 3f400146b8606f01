//! A thin layer over quick-xml's reader: namespaces resolved only where a parser asks, text
//! with entities resolved, no DTD, a depth limit, and truncation detected. Every parser in this
//! module reads through it.
//!
//! Namespace declarations are tracked here rather than by quick-xml's `NsReader`, which scans
//! and records the attributes of every element: in a page of items almost no element declares
//! anything (the property elements carry no attributes at all), so only elements whose
//! attributes mention `xmlns` are looked at.

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::ParseError;

/// Nesting deeper than this is refused: WS-Management documents are shallow, and the limit
/// keeps recursive descent (nested references, embedded objects) bounded.
pub(crate) const MAX_DEPTH: usize = 64;

/// Namespace declarations in scope beyond this are refused (a hostile document could
/// otherwise declare millions).
const MAX_BINDINGS: usize = 256;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// What the parsers see.
pub(crate) enum Ev<'i> {
    Start(BytesStart<'i>),
    Empty(BytesStart<'i>),
    End,
    Text(Cow<'i, str>),
    Eof,
}

/// One namespace declaration: the prefix (empty for the default namespace), the URI (empty to
/// undeclare the default), and the depth of the element that declared it.
struct Binding<'i> {
    prefix: Cow<'i, str>,
    uri: Cow<'i, str>,
    depth: usize,
}

pub(crate) struct XmlReader<'i> {
    reader: Reader<&'i [u8]>,
    input: &'i str,
    input_len: usize,
    depth: usize,
    bindings: Vec<Binding<'i>>,
    /// The depth whose bindings go when the next event is read (after an empty element).
    pop_after_empty: Option<usize>,
}

impl<'i> XmlReader<'i> {
    /// Reads from bytes that must be UTF-8 (a leading byte order mark is skipped).
    pub(crate) fn from_bytes(bytes: &'i [u8]) -> Result<Self, ParseError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let input = std::str::from_utf8(bytes).map_err(|e| ParseError::InvalidUtf8 {
            position: e.valid_up_to(),
        })?;
        let mut reader = Reader::from_reader(bytes);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Self {
            reader,
            input,
            input_len: bytes.len(),
            depth: 0,
            bindings: Vec::new(),
            pop_after_empty: None,
        })
    }

    pub(crate) fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn pop_bindings(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|b| b.depth >= depth) {
            self.bindings.pop();
        }
    }

    /// `s` as a slice of the input with the input's lifetime, when it lies in the input (an
    /// element read from a borrowed document always does); a copy otherwise.
    fn in_input(&self, s: &str) -> Cow<'i, str> {
        let start = (s.as_ptr() as usize).wrapping_sub(self.input.as_ptr() as usize);
        match self.input.get(start..start.wrapping_add(s.len())) {
            Some(slice) if slice.as_ptr() == s.as_ptr() => Cow::Borrowed(slice),
            _ => Cow::Owned(s.to_owned()),
        }
    }

    fn in_input_cow(&self, s: Cow<'_, str>) -> Cow<'i, str> {
        match s {
            Cow::Borrowed(b) => self.in_input(b),
            Cow::Owned(o) => Cow::Owned(o),
        }
    }

    /// Records the namespace declarations of an element at `depth`.
    fn push_bindings(&mut self, e: &BytesStart<'i>, depth: usize) -> Result<(), ParseError> {
        let raw = e.attributes_raw();
        if !raw.contains("xmlns") {
            return Ok(());
        }
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.malformed(err))?;
            let key = attr.key.into_inner();
            let prefix = if key == "xmlns" {
                ""
            } else if let Some(prefix) = key.strip_prefix("xmlns:") {
                prefix
            } else {
                continue;
            };
            let uri = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| self.malformed(err))?;
            if self.bindings.len() >= MAX_BINDINGS {
                return Err(ParseError::Unexpected(
                    "too many namespace declarations".into(),
                ));
            }
            let (prefix, uri) = (self.in_input(prefix), self.in_input_cow(uri));
            self.bindings.push(Binding { prefix, uri, depth });
        }
        Ok(())
    }

    /// The next event, with comments, processing instructions and the XML declaration skipped.
    pub(crate) fn next(&mut self) -> Result<Ev<'i>, ParseError> {
        if let Some(depth) = self.pop_after_empty.take() {
            self.pop_bindings(depth);
        }
        loop {
            let event = self.reader.read_event().map_err(|e| match e {
                // Every syntax error of quick-xml is markup the input ended inside of.
                quick_xml::Error::Syntax(_) => ParseError::Truncated,
                e => self.malformed(e),
            })?;
            return Ok(match event {
                Event::Start(e) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(ParseError::TooDeep { limit: MAX_DEPTH });
                    }
                    self.push_bindings(&e, self.depth)?;
                    Ev::Start(e)
                }
                Event::Empty(e) => {
                    self.push_bindings(&e, self.depth + 1)?;
                    self.pop_after_empty = Some(self.depth + 1);
                    Ev::Empty(e)
                }
                Event::End(_) => {
                    self.pop_bindings(self.depth);
                    self.depth = self.depth.saturating_sub(1);
                    Ev::End
                }
                Event::Text(t) => Ev::Text(t.xml10_content()),
                Event::CData(t) => Ev::Text(t.xml10_content()),
                Event::GeneralRef(r) => {
                    if let Some(c) = r.resolve_char_ref().map_err(|e| self.malformed(e))? {
                        Ev::Text(Cow::Owned(c.to_string()))
                    } else {
                        let name = r.into_inner();
                        match resolve_predefined_entity(&name) {
                            Some(s) => Ev::Text(Cow::Borrowed(s)),
                            None => return Err(ParseError::UnknownEntity(name.into_owned())),
                        }
                    }
                }
                Event::DocType(_) => return Err(ParseError::Dtd),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => continue,
                Event::Eof => {
                    if self.depth > 0 {
                        return Err(ParseError::Truncated);
                    }
                    Ev::Eof
                }
            });
        }
    }

    fn malformed(&self, e: impl std::fmt::Display) -> ParseError {
        let message = e.to_string();
        // quick-xml reports an unclosed tag or an unterminated markup at the end of input.
        if self.position() as usize >= self.input_len {
            return ParseError::Truncated;
        }
        ParseError::Malformed {
            position: self.position(),
            message,
        }
    }

    /// The namespace bound to a prefix (`""`: the default namespace) where the reader stands.
    fn resolve(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        self.bindings
            .iter()
            .rev()
            .find(|b| b.prefix == prefix)
            .map(|b| &*b.uri)
            .filter(|uri| !uri.is_empty())
    }

    /// The namespace URI of an element (None when unqualified).
    pub(crate) fn ns(&self, e: &BytesStart<'_>) -> Option<&str> {
        let name = e.name().into_inner();
        let prefix = name.split_once(':').map_or("", |(p, _)| p);
        self.resolve(prefix)
    }

    /// True when the element is `local` in namespace `ns`.
    pub(crate) fn is(&self, e: &BytesStart<'_>, ns: &str, local: &str) -> bool {
        e.local_name().into_inner() == local && self.ns(e) == Some(ns)
    }

    /// An attribute value by namespace (None for unqualified) and local name.
    pub(crate) fn attr(
        &self,
        e: &BytesStart<'_>,
        ns: Option<&str>,
        local: &str,
    ) -> Result<Option<String>, ParseError> {
        if e.attributes_raw().is_empty() {
            return Ok(None);
        }
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.malformed(err))?;
            let key = attr.key.into_inner();
            let (attr_ns, name) = match key.split_once(':') {
                // Unprefixed attributes are in no namespace; xmlns declarations are not values.
                Some(("xmlns", _)) => continue,
                Some((prefix, name)) => (self.resolve(prefix), name),
                None => (None, key),
            };
            if name == local && attr_ns == ns {
                let value = attr
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|err| self.malformed(err))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    /// True when the element carries `xsi:nil="true"` (prefix-independent).
    pub(crate) fn is_nil(&self, e: &BytesStart<'_>) -> bool {
        if !e.attributes_raw().contains("nil") {
            return false;
        }
        matches!(
            self.attr(e, Some(XSI_NS), "nil")
                .ok()
                .flatten()
                .as_deref()
                .map(str::trim),
            Some("true" | "1")
        )
    }

    /// Resolves the prefix of a QName written as text, such as a fault subcode `w:TimedOut`.
    pub(crate) fn resolve_text_qname(&self, text: &str) -> Option<String> {
        let prefix = text.split_once(':').map_or("", |(p, _)| p);
        self.resolve(prefix).map(str::to_owned)
    }

    /// After a Start event: the element's text up to its end. Child elements are skipped.
    pub(crate) fn read_text(&mut self) -> Result<String, ParseError> {
        Ok(self.read_text_cow()?.into_owned())
    }

    /// Like [`Self::read_text`], borrowing the input when the text is one piece (the common
    /// case: no entity, no child).
    pub(crate) fn read_text_cow(&mut self) -> Result<Cow<'i, str>, ParseError> {
        let mut text: Option<Cow<'i, str>> = None;
        loop {
            match self.next()? {
                Ev::Text(t) => {
                    text = Some(match text {
                        None => t,
                        Some(mut whole) => {
                            whole.to_mut().push_str(&t);
                            whole
                        }
                    })
                }
                Ev::Start(_) => self.skip()?,
                Ev::Empty(_) => {}
                Ev::End => return Ok(text.unwrap_or(Cow::Borrowed(""))),
                Ev::Eof => return Err(ParseError::Truncated),
            }
        }
    }

    /// After a Start event: skips to the matching end.
    pub(crate) fn skip(&mut self) -> Result<(), ParseError> {
        let mut open = 1usize;
        while open > 0 {
            match self.next()? {
                Ev::Start(_) => open += 1,
                Ev::End => open -= 1,
                Ev::Eof => return Err(ParseError::Truncated),
                Ev::Empty(_) | Ev::Text(_) => {}
            }
        }
        Ok(())
    }

    /// The next element start (Start or Empty) among whitespace; `None` at the parent's end.
    pub(crate) fn next_child(&mut self) -> Result<Option<(BytesStart<'i>, bool)>, ParseError> {
        loop {
            match self.next()? {
                Ev::Start(e) => return Ok(Some((e, false))),
                Ev::Empty(e) => return Ok(Some((e, true))),
                Ev::End => return Ok(None),
                Ev::Text(_) => {}
                Ev::Eof => return Err(ParseError::Truncated),
            }
        }
    }
}
