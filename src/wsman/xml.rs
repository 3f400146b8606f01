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

use super::{ParseError, ns};

/// Nesting deeper than this is refused: WS-Management documents are shallow, and the limit
/// keeps recursive descent (nested references, embedded objects) bounded.
pub(crate) const MAX_DEPTH: usize = 64;

/// Namespace declarations in scope beyond this are refused (a hostile document could
/// otherwise declare millions).
const MAX_BINDINGS: usize = 256;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Text up to the next `<` (entities resolved; a carriage return, which XML folds, refused):
/// the text and where it ends.
fn scan_text(input: &str, at: usize) -> Option<(Cow<'_, str>, usize)> {
    let end = at + memchr_lt(input.as_bytes().get(at..)?)?;
    let raw = input.get(at..end)?;
    let text = match memchr::memchr2(b'&', b'\r', raw.as_bytes()) {
        None => Cow::Borrowed(raw),
        Some(_) if raw.contains('\r') => return None,
        Some(_) => Cow::Owned(unescape(raw)?),
    };
    Some((text, end))
}

/// At a `<`: the end tag of `name` (`</name>`, spaces before `>` allowed); the position after
/// it.
fn scan_end_tag(input: &str, at: usize, name: &str) -> Option<usize> {
    let bytes = input.as_bytes();
    if bytes.get(at) != Some(&b'<')
        || bytes.get(at + 1) != Some(&b'/')
        || input.get(at + 2..at + 2 + name.len()) != Some(name)
    {
        return None;
    }
    let at = skip_space(bytes, at + 2 + name.len());
    (bytes.get(at) == Some(&b'>')).then_some(at + 1)
}

/// A quick-xml reader over `bytes` with this module's settings. End tags are checked by
/// [`XmlReader`] itself, so that a reader can be restarted mid-document.
fn reader_at(bytes: &[u8]) -> Reader<&[u8]> {
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.expand_empty_elements = false;
    config.trim_text(false);
    reader
}

/// The offset of the first `<` in `bytes`.
fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'<', bytes)
}

/// Text with the predefined entities and character references resolved; `None` for anything
/// else (an unknown entity is the event reader's error to report).
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';')?;
        let entity = &after[..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    entity.strip_prefix('#')?.parse::<u32>().ok()?
                };
                // What quick-xml refuses as a character reference, it reports itself.
                char::from_u32(code)
                    .filter(|c| *c != '\0' && (!c.is_control() || matches!(c, '\t' | '\n')))?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

thread_local! {
    /// Set by tests on their thread to parse without the fast scan, for comparison.
    pub(crate) static SLOW_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

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
    /// Where `reader` started in `input` (it is restarted after a fast scan).
    base: usize,
    depth: usize,
    /// The names of the open elements, to check end tags (quick-xml's own check would not
    /// survive a restart).
    open: Vec<&'i str>,
    bindings: Vec<Binding<'i>>,
    /// The depth whose bindings go when the next event is read (after an empty element).
    pop_after_empty: Option<usize>,
    /// Reused by [`XmlReader::simple_children`].
    scratch: Vec<SimpleChild<'i>>,
    /// False to read everything event by event (tests compare both ways).
    fast_scan: bool,
    /// The attributes of the last element that declared namespaces, and what it declared:
    /// the items of a page repeat the same declarations, which are then not parsed again.
    last_declarations: Option<Declarations<'i>>,
}

/// The raw attributes of an element and the namespaces they declare (prefix, URI).
type Declarations<'i> = (&'i str, Vec<(Cow<'i, str>, Cow<'i, str>)>);

/// A property as the fast scan found it: its element's local name and its content.
pub(crate) type SimpleChild<'i> = (&'i str, Scanned<'i>);

/// The content of a property the fast scan read.
#[derive(Debug)]
pub(crate) enum Scanned<'i> {
    /// `xsi:nil="true"`.
    Nil,
    /// Text (entities resolved).
    Text(Cow<'i, str>),
    /// The text of one CIM-typed element inside the property (`<p:When><cim:Datetime>...
    /// </cim:Datetime></p:When>`), with that element's local name (`Datetime`, `Interval`,
    /// `Date`, `CIM_DateTime`).
    Typed(&'i str, Cow<'i, str>),
    /// An endpoint reference as Windows writes one: `a:Address`, then `a:ReferenceParameters`
    /// with `w:ResourceURI` and a `w:SelectorSet` of text selectors.
    Reference(ScannedReference<'i>),
}

/// An endpoint reference's parts, as written (address and resource URI untrimmed).
#[derive(Debug)]
pub(crate) struct ScannedReference<'i> {
    pub address: Cow<'i, str>,
    pub resource_uri: Cow<'i, str>,
    /// Each selector, in order.
    pub selectors: Vec<ScannedSelector<'i>>,
}

/// A selector's `Name` and text (entities resolved).
pub(crate) type ScannedSelector<'i> = (Cow<'i, str>, Cow<'i, str>);

/// The CIM elements whose text a property may be wrapped in (DSP0230's typed values).
pub(crate) const CIM_TYPED: [&str; 4] = ["Datetime", "Interval", "Date", "CIM_DateTime"];

/// `prefix:local` split at its first colon, or `None` for an unprefixed name. A byte search:
/// `str::split_once(char)` compares each match through `memcmp`, a visible cost on every
/// property of a page.
fn split_qname(name: &str) -> Option<(&str, &str)> {
    let at = name.bytes().position(|b| b == b':')?;
    Some((&name[..at], &name[at + 1..]))
}

/// Skips the whitespace the scan accepts between elements.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n')) {
        at += 1;
    }
    at
}

impl<'i> XmlReader<'i> {
    /// Reads from bytes that must be UTF-8 (a leading byte order mark is skipped).
    pub(crate) fn from_bytes(bytes: &'i [u8]) -> Result<Self, ParseError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let input = std::str::from_utf8(bytes).map_err(|e| ParseError::InvalidUtf8 {
            position: e.valid_up_to(),
        })?;
        Ok(Self {
            reader: reader_at(bytes),
            input,
            input_len: bytes.len(),
            base: 0,
            depth: 0,
            open: Vec::new(),
            bindings: Vec::new(),
            pop_after_empty: None,
            scratch: Vec::new(),
            fast_scan: !SLOW_ONLY.with(std::cell::Cell::get),
            last_declarations: None,
        })
    }

    pub(crate) fn position(&self) -> u64 {
        self.base as u64 + self.reader.buffer_position()
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
        if let Some((last, declared)) = &self.last_declarations
            && *last == raw
        {
            if self.bindings.len() + declared.len() > MAX_BINDINGS {
                return Err(ParseError::Unexpected(
                    "too many namespace declarations".into(),
                ));
            }
            for (prefix, uri) in declared {
                self.bindings.push(Binding {
                    prefix: prefix.clone(),
                    uri: uri.clone(),
                    depth,
                });
            }
            return Ok(());
        }
        let first = self.bindings.len();
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
        if let Cow::Borrowed(raw) = self.in_input(raw) {
            let declared = self.bindings[first..]
                .iter()
                .map(|b| (b.prefix.clone(), b.uri.clone()))
                .collect();
            self.last_declarations = Some((raw, declared));
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
                    let name = self.in_input(e.name().into_inner());
                    match name {
                        Cow::Borrowed(name) => self.open.push(name),
                        Cow::Owned(_) => {
                            return Err(self.malformed("an element name outside the document"));
                        }
                    }
                    Ev::Start(e)
                }
                Event::Empty(e) => {
                    self.push_bindings(&e, self.depth + 1)?;
                    self.pop_after_empty = Some(self.depth + 1);
                    Ev::Empty(e)
                }
                Event::End(e) => {
                    let name = e.name().into_inner();
                    match self.open.pop() {
                        Some(open) if open == name => {}
                        Some(open) => {
                            return Err(self
                                .malformed(format!("end tag </{name}> does not close <{open}>")));
                        }
                        None => {
                            return Err(
                                self.malformed(format!("end tag </{name}> without a start"))
                            );
                        }
                    }
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
        let prefix = split_qname(name).map_or("", |(p, _)| p);
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
            let (attr_ns, name) = match split_qname(key) {
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
        let prefix = split_qname(text).map_or("", |(p, _)| p);
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

    /// After a child from [`Self::next_child`]: its text as [`Self::read_text_cow`] reads it,
    /// or nothing for an empty element (which has no end to read to).
    pub(crate) fn child_text(&mut self, empty: bool) -> Result<Cow<'i, str>, ParseError> {
        if empty {
            Ok(Cow::Borrowed(""))
        } else {
            self.read_text_cow()
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

    /// After the Start of an element whose children are all simple properties (`<p:Name>text
    /// </p:Name>`, `<p:Name/>`, `<p:Name xsi:nil="true"/>`, whitespace between them, text with
    /// the predefined entities and character references only): those children, read by a
    /// direct scan of the input instead of event by event, and the element consumed to its
    /// end. `None`, with nothing consumed, when anything else is there (a nested element,
    /// another attribute, CDATA, a comment, a carriage return...): the caller reads the element
    /// event by event then, with the same result. Give the list back with
    /// [`XmlReader::recycle`].
    pub(crate) fn simple_children(&mut self) -> Result<Option<Vec<SimpleChild<'i>>>, ParseError> {
        let Some(&parent) = self.open.last() else {
            return Ok(None);
        };
        if !self.fast_scan {
            return Ok(None);
        }
        if self.pop_after_empty.is_some() {
            return Ok(None);
        }
        let start = self.position() as usize;
        let mut children = std::mem::take(&mut self.scratch);
        children.clear();
        match self.scan_simple(start, parent, &mut children) {
            Some(end) => {
                // Consumed: the parent's end tag too.
                self.continue_at(end);
                self.open.pop();
                self.pop_bindings(self.depth);
                self.depth = self.depth.saturating_sub(1);
                Ok(Some(children))
            }
            None => {
                self.scratch = children;
                Ok(None)
            }
        }
    }

    /// Goes on reading at `end`, just after the end tag of an element whose start tag the
    /// reader read and whose content and end tag a scan consumed. The same reader goes on (a
    /// new one per item cost two allocations and two frees each): it first reads an end tag
    /// from a stand-in, so that its own list of open elements loses the element as it would
    /// have, then the input from `end`.
    fn continue_at(&mut self, end: usize) {
        *self.reader.get_mut() = b"</x>";
        let closed = matches!(self.reader.read_event(), Ok(Event::End(_)));
        *self.reader.get_mut() = &self.input.as_bytes()[end..];
        let read = self.reader.buffer_position() as usize;
        match end.checked_sub(read) {
            Some(base) if closed => self.base = base,
            // Not as expected: a reader of its own from `end`, as before.
            _ => {
                self.reader = reader_at(&self.input.as_bytes()[end..]);
                self.base = end;
            }
        }
    }

    /// Hands back a list [`XmlReader::simple_children`] gave, to be reused.
    pub(crate) fn recycle(&mut self, mut children: Vec<SimpleChild<'i>>) {
        children.clear();
        self.scratch = children;
    }

    /// The scan of [`XmlReader::simple_children`]: the position after `</parent>`, or `None`.
    fn scan_simple(
        &self,
        mut at: usize,
        parent: &str,
        children: &mut Vec<SimpleChild<'i>>,
    ) -> Option<usize> {
        let input: &'i str = self.input;
        let bytes = input.as_bytes();
        loop {
            // Whitespace only between elements.
            at = skip_space(bytes, at);
            if bytes.get(at) != Some(&b'<') {
                return None;
            }
            if bytes.get(at + 1) == Some(&b'/') {
                // The parent's end.
                return scan_end_tag(input, at, parent);
            }
            at += 1;
            let name_start = at;
            let mut local_start = at;
            while at < bytes.len()
                && !matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>')
            {
                match bytes[at] {
                    b'<' | b'!' | b'?' | b'&' | b'"' | b'\'' | b'=' => return None,
                    b':' => local_start = at + 1,
                    _ => {}
                }
                at += 1;
            }
            let name = input.get(name_start..at).filter(|n| !n.is_empty())?;
            let local = input.get(local_start..at)?;
            let mut nil = false;
            if matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n')) {
                // One attribute at most: PREFIX:nil="true" with PREFIX bound to XSI.
                at = skip_space(bytes, at);
                if !matches!(bytes.get(at), Some(b'/' | b'>')) {
                    let key_start = at;
                    while at < bytes.len() && bytes[at] != b'=' {
                        if matches!(
                            bytes[at],
                            b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>' | b'<' | b'&'
                        ) {
                            return None;
                        }
                        at += 1;
                    }
                    let key = input.get(key_start..at)?;
                    let (prefix, local) = split_qname(key)?;
                    if local != "nil" || self.resolve(prefix) != Some(XSI_NS) {
                        return None;
                    }
                    let quote = *bytes.get(at + 1)?;
                    if quote != b'"' && quote != b'\'' {
                        return None;
                    }
                    let value_start = at + 2;
                    let value_end =
                        value_start + bytes.get(value_start..)?.iter().position(|&b| b == quote)?;
                    if !matches!(input.get(value_start..value_end), Some("true" | "1")) {
                        return None;
                    }
                    nil = true;
                    at = skip_space(bytes, value_end + 1);
                }
            }
            match bytes.get(at) {
                Some(b'/') if bytes.get(at + 1) == Some(&b'>') => {
                    at += 2;
                    let value = match nil {
                        true => Scanned::Nil,
                        false => Scanned::Text(Cow::Borrowed("")),
                    };
                    children.push((local, value));
                }
                Some(b'>') if !nil => {
                    at += 1;
                    let value;
                    (value, at) = if let Some((text, typed, end)) = self.scan_typed(at) {
                        (Scanned::Typed(typed, text), end)
                    } else if let Some((reference, end)) = self.scan_reference(at) {
                        (Scanned::Reference(reference), end)
                    } else {
                        let (text, end) = scan_text(input, at)?;
                        (Scanned::Text(text), end)
                    };
                    at = scan_end_tag(input, at, name)?;
                    children.push((local, value));
                }
                _ => return None,
            }
        }
    }

    /// At a `<`: an element's qualified name (ASCII letters, digits and `:_-.`; any other
    /// name is left to the event reader), its prefix and local part, and where it ends.
    fn scan_name(&self, at: usize) -> Option<(&'i str, &'i str, &'i str, usize)> {
        let input: &'i str = self.input;
        let bytes = input.as_bytes();
        if bytes.get(at) != Some(&b'<') {
            return None;
        }
        let start = at + 1;
        let mut end = start;
        while bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.'))
        {
            end += 1;
        }
        let name = input.get(start..end).filter(|n| !n.is_empty())?;
        let (prefix, local) = split_qname(name).unwrap_or(("", name));
        Some((name, prefix, local, end))
    }

    /// After whitespace: a start tag with no attribute (`<p:Name>`); its qualified name,
    /// prefix and local part, and the position after it.
    fn scan_start(&self, at: usize) -> Option<(&'i str, &'i str, &'i str, usize)> {
        let at = skip_space(self.input.as_bytes(), at);
        let (name, prefix, local, end) = self.scan_name(at)?;
        (self.input.as_bytes().get(end) == Some(&b'>')).then_some((name, prefix, local, end + 1))
    }

    /// After whitespace: the start tag of `local` in namespace `uri`, with no attribute; its
    /// qualified name and the position after it.
    fn scan_open(&self, at: usize, uri: &str, local: &str) -> Option<(&'i str, usize)> {
        let (name, prefix, found, end) = self.scan_start(at)?;
        (found == local && self.resolve(prefix) == Some(uri)).then_some((name, end))
    }

    /// At the start of a property's content: an endpoint reference as Windows writes it (see
    /// [`Scanned::Reference`]), whitespace between its elements; its parts and the position
    /// after `</a:ReferenceParameters>`. `None` for anything else (a nested reference as a
    /// selector, another element, attributes other than a selector's `Name`).
    fn scan_reference(&self, at: usize) -> Option<(ScannedReference<'i>, usize)> {
        let input: &'i str = self.input;
        let bytes = input.as_bytes();
        let (name, at) = self.scan_open(at, ns::ADDRESSING, "Address")?;
        let (address, end) = scan_text(input, at)?;
        let at = scan_end_tag(input, end, name)?;
        let (parameters, at) = self.scan_open(at, ns::ADDRESSING, "ReferenceParameters")?;
        let (name, at) = self.scan_open(at, ns::WSMAN, "ResourceURI")?;
        let (resource_uri, end) = scan_text(input, at)?;
        let at = scan_end_tag(input, end, name)?;
        let (set, mut at) = self.scan_open(at, ns::WSMAN, "SelectorSet")?;
        let mut selectors = Vec::new();
        loop {
            at = skip_space(bytes, at);
            if let Some(end) = scan_end_tag(input, at, set) {
                at = end;
                break;
            }
            let (selector, after) = self.scan_selector(at)?;
            selectors.push(selector);
            at = after;
        }
        let at = scan_end_tag(input, skip_space(bytes, at), parameters)?;
        let reference = ScannedReference {
            address,
            resource_uri,
            selectors,
        };
        Some((reference, skip_space(bytes, at)))
    }

    /// `<w:Selector Name="...">text</w:Selector>` or `<w:Selector Name="..."/>`: its name and
    /// text, and the position after it.
    fn scan_selector(&self, at: usize) -> Option<(ScannedSelector<'i>, usize)> {
        let input: &'i str = self.input;
        let bytes = input.as_bytes();
        let (name, prefix, local, end) = self.scan_name(at)?;
        if local != "Selector" || self.resolve(prefix) != Some(ns::WSMAN) {
            return None;
        }
        // At least one space before the attribute.
        let at = skip_space(bytes, end);
        if at == end {
            return None;
        }
        if input.get(at..at + 5) != Some("Name=") {
            return None;
        }
        let quote = *bytes.get(at + 5)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let value_start = at + 6;
        let value_end = value_start + memchr::memchr(quote, bytes.get(value_start..)?)?;
        let raw = input.get(value_start..value_end)?;
        // Attribute values are normalised by XML parsers (tabs and line ends become spaces):
        // left to the event reader.
        if raw
            .bytes()
            .any(|b| matches!(b, b'<' | b'\t' | b'\n' | b'\r'))
        {
            return None;
        }
        let key = match raw.contains('&') {
            false => Cow::Borrowed(raw),
            true => Cow::Owned(unescape(raw)?),
        };
        let at = skip_space(bytes, value_end + 1);
        match bytes.get(at) {
            Some(b'/') if bytes.get(at + 1) == Some(&b'>') => {
                Some(((key, Cow::Borrowed("")), at + 2))
            }
            Some(b'>') => {
                let (text, end) = scan_text(input, at + 1)?;
                Some(((key, text), scan_end_tag(input, end, name)?))
            }
            _ => None,
        }
    }

    /// At the start of a property's content: one CIM-typed element with text only
    /// (`<cim:Datetime>...</cim:Datetime>`, its prefix bound to the CIM namespace or none in
    /// scope, no attribute), whitespace around it. Its text, its local name and the position
    /// after its end tag; `None` when the content is anything else.
    fn scan_typed(&self, at: usize) -> Option<(Cow<'i, str>, &'i str, usize)> {
        let input: &'i str = self.input;
        let bytes = input.as_bytes();
        let (name, prefix, local, at) = self.scan_start(at)?;
        let local = CIM_TYPED.into_iter().find(|typed| *typed == local)?;
        // As the event reader decides: the CIM namespace, or no namespace at all.
        match self.resolve(prefix) {
            Some(ns::CIM_COMMON) => {}
            None if prefix.is_empty() => {}
            _ => return None,
        }
        let (text, end) = scan_text(input, at)?;
        let end = skip_space(bytes, scan_end_tag(input, end, name)?);
        Some((text, local, end))
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
