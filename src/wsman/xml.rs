//! A thin layer over quick-xml's namespace-aware reader: text with entities resolved, no DTD,
//! a depth limit, and truncation detected. Every parser in this module reads through it.

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{QName, ResolveResult};
use quick_xml::reader::NsReader;

use super::ParseError;

/// Nesting deeper than this is refused: WS-Management documents are shallow, and the limit
/// keeps recursive descent (nested references, embedded objects) bounded.
pub(crate) const MAX_DEPTH: usize = 64;

/// What the parsers see.
pub(crate) enum Ev<'i> {
    Start(BytesStart<'i>),
    Empty(BytesStart<'i>),
    End,
    Text(Cow<'i, str>),
    Eof,
}

pub(crate) struct XmlReader<'i> {
    reader: NsReader<&'i [u8]>,
    depth: usize,
}

impl<'i> XmlReader<'i> {
    /// Reads from bytes that must be UTF-8 (a leading byte order mark is skipped).
    pub(crate) fn from_bytes(bytes: &'i [u8]) -> Result<Self, ParseError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(ParseError::InvalidUtf8 {
                position: e.valid_up_to(),
            });
        }
        let mut reader = NsReader::from_reader(bytes);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Self { reader, depth: 0 })
    }

    pub(crate) fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    /// The next event, with comments, processing instructions and the XML declaration skipped.
    pub(crate) fn next(&mut self) -> Result<Ev<'i>, ParseError> {
        loop {
            let event = self.reader.read_event().map_err(|e| self.malformed(e))?;
            return Ok(match event {
                Event::Start(e) => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(ParseError::TooDeep { limit: MAX_DEPTH });
                    }
                    Ev::Start(e)
                }
                Event::Empty(e) => Ev::Empty(e),
                Event::End(_) => {
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
        if self.position() as usize >= self.reader.get_ref().len() {
            return ParseError::Truncated;
        }
        ParseError::Malformed {
            position: self.position(),
            message,
        }
    }

    /// The namespace URI of an element (None when unqualified).
    pub(crate) fn ns(&self, e: &BytesStart<'_>) -> Option<&str> {
        match self.reader.resolver().resolve_element(e.name()).0 {
            ResolveResult::Bound(ns) => Some(ns.into_inner()),
            _ => None,
        }
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
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.malformed(err))?;
            let (resolved, name) = self.reader.resolver().resolve_attribute(attr.key);
            let attr_ns = match resolved {
                ResolveResult::Bound(n) => Some(n.into_inner()),
                _ => None,
            };
            if name.into_inner() == local && attr_ns == ns {
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
        e.attributes().has_nil(self.reader.resolver())
    }

    /// Resolves the prefix of a QName written as text, such as a fault subcode `w:TimedOut`.
    pub(crate) fn resolve_text_qname(&self, text: &str) -> Option<String> {
        match self.reader.resolver().resolve_element(QName(text)).0 {
            ResolveResult::Bound(ns) => Some(ns.into_inner().to_owned()),
            _ => None,
        }
    }

    /// After a Start event: the element's text up to its end. Child elements are skipped.
    pub(crate) fn read_text(&mut self) -> Result<String, ParseError> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Ev::Text(t) => text.push_str(&t),
                Ev::Start(_) => self.skip()?,
                Ev::Empty(_) => {}
                Ev::End => return Ok(text),
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
