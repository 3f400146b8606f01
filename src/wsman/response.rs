//! Parsing of WS-Management responses into [`Response`]: one streaming pass, elements matched by
//! namespace URI, items turned into [`Instance`] values as they are read, or handed to an
//! [`ItemSink`] as one scan read them, for a caller that keeps them in a form of its own.

use std::sync::Arc;

use quick_xml::events::BytesStart;

use super::dom::Node;
use super::xml::{CIM_TYPED, Ev, Scanned, SimpleChild, XmlReader};
use super::{Fault, ParseError, ns};
use crate::cim::{Datetime, Instance, Interval, Reference, Value};

/// The addressing headers of a response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHeader {
    /// `a:Action`, trimmed.
    pub action: Option<String>,
    /// `a:MessageID`.
    pub message_id: Option<String>,
    /// `a:RelatesTo`: the MessageID of the request this answers.
    pub relates_to: Option<String>,
}

/// A parsed response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// Addressing headers.
    pub header: ResponseHeader,
    /// What the body holds.
    pub body: ResponseBody,
}

/// The body of a response.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResponseBody {
    /// `n:EnumerateResponse` (with `w:Items` when the enumeration was optimized).
    Enumerate(Page),
    /// `n:PullResponse`.
    Pull(Page),
    /// `n:ReleaseResponse`.
    Release,
    /// A resource element directly in the body (Get).
    Resource(Instance),
    /// `<Method>_OUTPUT` (Invoke).
    MethodOutput(Instance),
    /// `wsmid:IdentifyResponse`.
    Identify(Identity),
    /// `s:Fault`.
    Fault(Box<Fault>),
    /// An empty `s:Body`.
    Empty,
}

/// One page of an enumeration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// `n:EnumerationContext`: `None` when absent, `Some("")` when present but empty (Windows
    /// writes it empty when everything fit in the first response).
    pub context: Option<String>,
    /// The items, in order.
    pub items: Vec<Instance>,
    /// `w:EndOfSequence` / `n:EndOfSequence` was present.
    pub end_of_sequence: bool,
}

/// What `wsmid:IdentifyResponse` says about the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// e.g. `http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd`.
    pub protocol_version: Option<String>,
    /// e.g. `Microsoft Corporation`.
    pub product_vendor: Option<String>,
    /// e.g. `OS: 10.0.20348 SP: 0.0 Stack: 3.0`.
    pub product_version: Option<String>,
}

/// Parses a response envelope.
pub fn parse_response(body: &[u8]) -> Result<Response, ParseError> {
    parse_response_into(body, None)
}

/// Parses a response envelope; a page's items go to `sink` when one is given (the page's
/// `items` are then left empty), else into the page.
pub(crate) fn parse_response_into(
    body: &[u8],
    mut sink: Option<&mut dyn ItemSink>,
) -> Result<Response, ParseError> {
    let mut x = XmlReader::from_bytes(body)?;
    let root = loop {
        match x.next()? {
            Ev::Start(e) => break e,
            Ev::Empty(e) => {
                return Err(ParseError::NotAnEnvelope(
                    e.local_name().into_inner().to_owned(),
                ));
            }
            Ev::Text(t) if t.trim().is_empty() => {}
            Ev::Text(_) => return Err(ParseError::NotAnEnvelope("text".into())),
            Ev::End => return Err(ParseError::NotAnEnvelope("end tag".into())),
            Ev::Eof => return Err(ParseError::Empty),
        }
    };
    if !x.is(&root, ns::SOAP, "Envelope") {
        return Err(ParseError::NotAnEnvelope(
            root.local_name().into_inner().to_owned(),
        ));
    }
    let mut header = ResponseHeader::default();
    let mut body = None;
    while let Some((e, empty)) = x.next_child()? {
        if x.is(&e, ns::SOAP, "Header") && !empty {
            header = parse_header(&mut x)?;
        } else if x.is(&e, ns::SOAP, "Body") {
            body = Some(if empty {
                ResponseBody::Empty
            } else {
                parse_body(&mut x, sink.take())?
            });
        } else if !empty {
            x.skip()?;
        }
    }
    loop {
        match x.next()? {
            Ev::Eof => break,
            Ev::Text(t) if t.trim().is_empty() => {}
            _ => {
                return Err(ParseError::Malformed {
                    position: x.position(),
                    message: "content after the envelope".into(),
                });
            }
        }
    }
    let body = body.ok_or(ParseError::MissingBody)?;
    Ok(Response { header, body })
}

fn parse_header(x: &mut XmlReader<'_>) -> Result<ResponseHeader, ParseError> {
    let mut header = ResponseHeader::default();
    while let Some((e, empty)) = x.next_child()? {
        if empty {
            continue;
        }
        let slot = if x.ns(&e) == Some(ns::ADDRESSING) {
            match e.local_name().into_inner() {
                "Action" => Some(&mut header.action),
                "MessageID" => Some(&mut header.message_id),
                "RelatesTo" => Some(&mut header.relates_to),
                _ => None,
            }
        } else {
            None
        };
        match slot {
            Some(slot) => *slot = Some(x.read_text()?.trim().to_owned()),
            None => x.skip()?,
        }
    }
    Ok(header)
}

fn parse_body(
    x: &mut XmlReader<'_>,
    sink: Option<&mut dyn ItemSink>,
) -> Result<ResponseBody, ParseError> {
    let Some((e, empty)) = x.next_child()? else {
        return Ok(ResponseBody::Empty);
    };
    let body = if x.is(&e, ns::SOAP, "Fault") {
        let node = Node::read(x, &e, empty)?;
        ResponseBody::Fault(Box::new(Fault::from_node(&node)))
    } else if x.is(&e, ns::ENUMERATION, "EnumerateResponse") {
        ResponseBody::Enumerate(if empty {
            Page::default()
        } else {
            parse_page(x, sink)?
        })
    } else if x.is(&e, ns::ENUMERATION, "PullResponse") {
        ResponseBody::Pull(if empty {
            Page::default()
        } else {
            parse_page(x, sink)?
        })
    } else if x.is(&e, ns::ENUMERATION, "ReleaseResponse") {
        if !empty {
            x.skip()?;
        }
        ResponseBody::Release
    } else if x.is(&e, ns::IDENTITY, "IdentifyResponse")
        // OMI puts the element itself in the SOAP namespace (its children are in wsmid's).
        || x.is(&e, ns::SOAP, "IdentifyResponse")
    {
        let node = Node::read(x, &e, empty)?;
        let field = |name: &str| node.child(ns::IDENTITY, name).and_then(Node::trimmed);
        ResponseBody::Identify(Identity {
            protocol_version: field("ProtocolVersion"),
            product_vendor: field("ProductVendor"),
            product_version: field("ProductVersion"),
        })
    } else {
        let is_output = e.local_name().into_inner().ends_with("_OUTPUT");
        let instance = parse_instance(x, &e, empty, &mut Shared::default())?;
        if is_output {
            ResponseBody::MethodOutput(instance)
        } else {
            ResponseBody::Resource(instance)
        }
    };
    // Anything after the first body element is not WS-Management; skip it.
    while let Some((_, empty)) = x.next_child()? {
        if !empty {
            x.skip()?;
        }
    }
    Ok(body)
}

/// The strings every item of a page repeats (class names, namespace URIs, property names),
/// kept once and shared: an instance costs its values, not its names again.
#[derive(Default)]
pub(crate) struct Shared {
    /// The names of the last instance's properties, by position: the next instance of the
    /// same class names them alike.
    last_names: Vec<Arc<str>>,
    /// Other names seen (a short list: classes have a few dozen properties at most).
    names: Vec<Arc<str>>,
    last_class: Option<Arc<str>>,
    last_namespace: Option<Arc<str>>,
    last_len: usize,
}

impl Shared {
    fn name_at(&mut self, index: usize, name: &str) -> Arc<str> {
        if let Some(last) = self.last_names.get(index)
            && &**last == name
        {
            return last.clone();
        }
        let shared = match self.names.iter().find(|n| &***n == name) {
            Some(known) => known.clone(),
            None => {
                let new: Arc<str> = name.into();
                if self.names.len() < 256 {
                    self.names.push(new.clone());
                }
                new
            }
        };
        if index < self.last_names.len() {
            self.last_names[index] = shared.clone();
        } else if index == self.last_names.len() && index < 256 {
            self.last_names.push(shared.clone());
        }
        shared
    }

    fn class(&mut self, name: &str) -> Arc<str> {
        match &self.last_class {
            Some(last) if &**last == name => last.clone(),
            _ => {
                let new: Arc<str> = name.into();
                self.last_class = Some(new.clone());
                new
            }
        }
    }

    fn namespace(&mut self, uri: &str) -> Arc<str> {
        match &self.last_namespace {
            Some(last) if &**last == uri => last.clone(),
            _ => {
                let new: Arc<str> = uri.into();
                self.last_namespace = Some(new.clone());
                new
            }
        }
    }
}

fn parse_page(
    x: &mut XmlReader<'_>,
    mut sink: Option<&mut dyn ItemSink>,
) -> Result<Page, ParseError> {
    let mut page = Page::default();
    let mut instances = Instances::default();
    while let Some((e, empty)) = x.next_child()? {
        let local = e.local_name().into_inner();
        let in_enum_or_wsman = matches!(x.ns(&e), Some(ns::ENUMERATION | ns::WSMAN));
        match (local, in_enum_or_wsman) {
            ("EnumerationContext", true) => {
                page.context = Some(x.child_text(empty)?.trim().to_owned());
            }
            ("Items", true) => {
                if !empty {
                    match sink.as_deref_mut() {
                        Some(sink) => parse_items(x, sink)?,
                        None => parse_items(x, &mut instances)?,
                    }
                }
            }
            ("EndOfSequence", true) => {
                page.end_of_sequence = true;
                if !empty {
                    x.skip()?;
                }
            }
            _ => {
                if !empty {
                    x.skip()?;
                }
            }
        }
    }
    page.items = instances.items;
    Ok(page)
}

fn parse_items(x: &mut XmlReader<'_>, sink: &mut dyn ItemSink) -> Result<(), ParseError> {
    let shared = &mut Shared::default();
    let mut namespace = String::new();
    while let Some((e, empty)) = x.next_child()? {
        let item = if x.is(&e, ns::WSMAN, "Item") {
            if empty {
                continue;
            }
            parse_item_wrapper(x, shared)?
        } else if x.is(&e, ns::ADDRESSING, "EndpointReference") {
            let reference = if empty {
                Reference::new("")
            } else {
                parse_epr(x)?
            };
            instance_from_reference(reference)
        } else if x.is(&e, ns::WSMAN, "XmlFragment") {
            // A WQL projection: the class is not named; the caller knows it.
            let mut instance = parse_instance(x, &e, empty, shared)?;
            instance.set_class_name("");
            instance.set_projection(true);
            instance
        } else {
            // Most items hold only text properties: read in one scan, they go to the sink as
            // scanned, with no instance built unless the sink builds one.
            // The namespace is copied out first: the scan leaves the element's scope.
            let qualified = match x.ns(&e) {
                Some(uri) => {
                    namespace.clear();
                    namespace.push_str(uri);
                    true
                }
                None => false,
            };
            if !empty && let Some(mut properties) = x.simple_children()? {
                sink.scanned(ScannedItem {
                    class: e.local_name().into_inner(),
                    namespace: qualified.then_some(namespace.as_str()),
                    properties: &mut properties,
                })?;
                x.recycle(properties);
                continue;
            }
            parse_instance(x, &e, empty, shared)?
        };
        sink.instance(item);
    }
    Ok(())
}

/// Where the items of a page go as they are read: into instances, as a [`Page`] holds them,
/// or straight into a caller's own form (a watch's snapshot), no instance built for each.
pub(crate) trait ItemSink {
    /// An item read in one scan: every property text, nil, one CIM-typed value or a
    /// reference. The sink may take the properties' texts out of the list.
    fn scanned(&mut self, item: ScannedItem<'_, '_>) -> Result<(), ParseError>;

    /// Any other item, built.
    fn instance(&mut self, instance: Instance);
}

/// An item of a page as one scan read it (see [`ItemSink::scanned`]).
pub(crate) struct ScannedItem<'a, 'i> {
    /// The element's local name: the class.
    pub class: &'a str,
    /// The element's namespace URI.
    pub namespace: Option<&'a str>,
    /// Each property's element name and content, in order.
    pub properties: &'a mut Vec<SimpleChild<'i>>,
}

impl ScannedItem<'_, '_> {
    /// The item as an instance (its names not shared with other items').
    pub(crate) fn into_instance(self) -> Result<Instance, ParseError> {
        instance_from_scanned(&mut Shared::default(), self)
    }
}

/// The sink of a [`Page`]: instances, their names shared.
#[derive(Default)]
pub(crate) struct Instances {
    pub(crate) items: Vec<Instance>,
    shared: Shared,
}

impl ItemSink for Instances {
    fn scanned(&mut self, item: ScannedItem<'_, '_>) -> Result<(), ParseError> {
        let instance = instance_from_scanned(&mut self.shared, item)?;
        self.items.push(instance);
        Ok(())
    }

    fn instance(&mut self, instance: Instance) {
        self.items.push(instance);
    }
}

/// An instance of what one scan read.
fn instance_from_scanned(
    shared: &mut Shared,
    item: ScannedItem<'_, '_>,
) -> Result<Instance, ParseError> {
    let class = shared.class(item.class);
    let mut instance = Instance::with_capacity(class, item.properties.len());
    if let Some(uri) = item.namespace {
        instance.set_namespace_uri(shared.namespace(uri));
    }
    push_scanned(shared, &mut instance, item.properties)?;
    Ok(instance)
}

/// Adds the properties one scan read to `instance`, their names shared.
fn push_scanned(
    shared: &mut Shared,
    instance: &mut Instance,
    properties: &mut Vec<SimpleChild<'_>>,
) -> Result<(), ParseError> {
    for (index, (local, scanned)) in properties.drain(..).enumerate() {
        let name = shared.name_at(index, local);
        let value = scanned_value(scanned, &name)?;
        instance.push(name, value);
    }
    Ok(())
}

/// The value of a property one scan read; `name` is for errors.
pub(crate) fn scanned_value(scanned: Scanned<'_>, name: &str) -> Result<Value, ParseError> {
    Ok(match scanned {
        Scanned::Nil => Value::Null,
        Scanned::Text(text) => Value::Text(text.into_owned()),
        Scanned::Typed(typed, text) => typed_value(typed, &text, name)?,
        Scanned::Reference(scanned) => {
            let mut reference = Reference::new(scanned.resource_uri.trim());
            for (key, value) in scanned.selectors {
                reference = reference.with_selector(key, value);
            }
            Value::Reference(Box::new(reference.with_address(scanned.address.trim())))
        }
    })
}

/// `w:Item` of EnumerateObjectAndEPR: the object and its `a:EndpointReference`.
fn parse_item_wrapper(x: &mut XmlReader<'_>, shared: &mut Shared) -> Result<Instance, ParseError> {
    let mut instance = None;
    let mut reference = None;
    while let Some((e, empty)) = x.next_child()? {
        if x.is(&e, ns::ADDRESSING, "EndpointReference") {
            reference = Some(if empty {
                Reference::new("")
            } else {
                parse_epr(x)?
            });
        } else if instance.is_none() {
            instance = Some(parse_instance(x, &e, empty, shared)?);
        } else if !empty {
            x.skip()?;
        }
    }
    Ok(match (instance, reference) {
        (Some(mut instance), Some(reference)) => {
            instance.set_reference(reference);
            instance
        }
        (Some(instance), None) => instance,
        (None, Some(reference)) => instance_from_reference(reference),
        (None, None) => Instance::default(),
    })
}

fn instance_from_reference(reference: Reference) -> Instance {
    let class = reference
        .resource_uri()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut instance = Instance::new(class);
    instance.set_reference(reference);
    instance
}

/// An instance element: one child per property, repeated children for arrays.
fn parse_instance(
    x: &mut XmlReader<'_>,
    start: &BytesStart<'_>,
    empty: bool,
    shared: &mut Shared,
) -> Result<Instance, ParseError> {
    let class = shared.class(start.local_name().into_inner());
    let mut instance = Instance::with_capacity(class, shared.last_len);
    if let Some(uri) = x.ns(start) {
        let uri = shared.namespace(uri);
        instance.set_namespace_uri(uri);
    }
    if empty {
        return Ok(instance);
    }
    // Most items hold only text properties: read them in one scan.
    if let Some(mut properties) = x.simple_children()? {
        push_scanned(shared, &mut instance, &mut properties)?;
        x.recycle(properties);
        shared.last_len = instance.properties().len();
        return Ok(instance);
    }
    let mut index = 0;
    while let Some((e, empty)) = x.next_child()? {
        let local = e.local_name();
        let name = shared.name_at(index, local.into_inner());
        index += 1;
        let nil = x.is_nil(&e);
        let value = if empty {
            if nil {
                Value::Null
            } else {
                Value::Text(String::new())
            }
        } else {
            parse_property_value(x, nil, &name)?
        };
        instance.push(name, value);
    }
    shared.last_len = instance.properties().len();
    Ok(instance)
}

/// The content of a property element: text, a typed CIM element, a reference or an object.
fn parse_property_value(x: &mut XmlReader<'_>, nil: bool, name: &str) -> Result<Value, ParseError> {
    let mut text: Option<std::borrow::Cow<'_, str>> = None;
    let mut value = None;
    let mut epr: Option<Reference> = None;
    loop {
        match x.next()? {
            Ev::Text(t) => {
                if value.is_none() && epr.is_none() {
                    text = Some(match text {
                        None => t,
                        Some(mut whole) => {
                            whole.to_mut().push_str(&t);
                            whole
                        }
                    });
                }
            }
            Ev::End => break,
            Ev::Eof => return Err(ParseError::Truncated),
            Ev::Start(e) => {
                let ns = x.ns(&e);
                let local = e.local_name().into_inner();
                let in_cim = ns.is_none() || ns == Some(ns::CIM_COMMON);
                match (local, in_cim, ns) {
                    (typed, true, _) if CIM_TYPED.contains(&typed) => {
                        let raw = x.read_text_cow()?;
                        value = Some(typed_value(local, &raw, name)?);
                    }
                    ("Address", _, Some(ns::ADDRESSING)) => {
                        let address = x.read_text()?.trim().to_owned();
                        let current = epr.take().unwrap_or_else(|| Reference::new(""));
                        epr = Some(current.with_address(address));
                    }
                    ("ReferenceParameters", _, Some(ns::ADDRESSING)) => {
                        let address = epr.as_ref().and_then(|r| r.address().map(str::to_owned));
                        let mut parsed = parse_reference_parameters(x)?;
                        if let Some(address) = address {
                            parsed = parsed.with_address(address);
                        }
                        epr = Some(parsed);
                    }
                    ("EndpointReference", _, Some(ns::ADDRESSING)) => {
                        value = Some(Value::Reference(Box::new(parse_epr(x)?)));
                    }
                    _ => {
                        let object = parse_instance(x, &e, false, &mut Shared::default())?;
                        value = Some(Value::Object(Box::new(object)));
                    }
                }
            }
            Ev::Empty(e) => {
                let local = e.local_name().into_inner();
                if value.is_none() && epr.is_none() && local != "Address" {
                    value = Some(Value::Object(Box::new(Instance::new(local))));
                }
            }
        }
    }
    Ok(if nil {
        Value::Null
    } else if let Some(reference) = epr {
        Value::Reference(Box::new(reference))
    } else if let Some(value) = value {
        value
    } else {
        Value::Text(text.map(std::borrow::Cow::into_owned).unwrap_or_default())
    })
}

/// The text of a CIM-typed element (`cim:Datetime`, `cim:Interval`, `cim:Date`,
/// `cim:CIM_DateTime`) as its value: what both ways of reading an item use.
fn typed_value(element: &str, raw: &str, name: &str) -> Result<Value, ParseError> {
    Ok(match element {
        "Interval" => Value::Interval(Interval::parse(raw).map_err(|e| invalid(name, e))?),
        // A CIM_DateTime in the interval format (`ddddddddhhmmss.mmmmmm:000`).
        "CIM_DateTime" if raw.trim().ends_with(":000") => {
            Value::Interval(Interval::parse(raw).map_err(|e| invalid(name, e))?)
        }
        _ => Value::Datetime(Datetime::parse(raw).map_err(|e| invalid(name, e))?),
    })
}

fn invalid(name: &str, source: crate::cim::ValueError) -> ParseError {
    ParseError::InvalidValue {
        property: name.to_owned(),
        source,
    }
}

/// After `a:EndpointReference` (or any element holding an EPR's children).
pub(crate) fn parse_epr(x: &mut XmlReader<'_>) -> Result<Reference, ParseError> {
    let mut address = None;
    let mut reference = None;
    while let Some((e, empty)) = x.next_child()? {
        if empty {
            continue;
        }
        if x.is(&e, ns::ADDRESSING, "Address") {
            address = Some(x.read_text()?.trim().to_owned());
        } else if x.is(&e, ns::ADDRESSING, "ReferenceParameters") {
            reference = Some(parse_reference_parameters(x)?);
        } else {
            x.skip()?;
        }
    }
    let mut reference = reference.unwrap_or_else(|| Reference::new(""));
    if let Some(address) = address {
        reference = reference.with_address(address);
    }
    Ok(reference)
}

/// After `a:ReferenceParameters`: `w:ResourceURI` and `w:SelectorSet`.
fn parse_reference_parameters(x: &mut XmlReader<'_>) -> Result<Reference, ParseError> {
    let mut reference = Reference::new("");
    while let Some((e, empty)) = x.next_child()? {
        if empty {
            continue;
        }
        if x.is(&e, ns::WSMAN, "ResourceURI") {
            reference.set_resource_uri(x.read_text()?.trim());
        } else if x.is(&e, ns::WSMAN, "SelectorSet") {
            reference = parse_selector_set(x, reference)?;
        } else {
            x.skip()?;
        }
    }
    Ok(reference)
}

/// After `w:SelectorSet`: each `w:Selector Name="..."` holds text or a nested EPR.
pub(crate) fn parse_selector_set(
    x: &mut XmlReader<'_>,
    mut reference: Reference,
) -> Result<Reference, ParseError> {
    while let Some((e, empty)) = x.next_child()? {
        if !x.is(&e, ns::WSMAN, "Selector") {
            if !empty {
                x.skip()?;
            }
            continue;
        }
        let name = x.attr(&e, None, "Name")?.unwrap_or_default();
        if empty {
            reference = reference.with_selector(name, "");
            continue;
        }
        let mut text = String::new();
        let mut nested = None;
        loop {
            match x.next()? {
                Ev::Text(t) => text.push_str(&t),
                Ev::Start(c) => {
                    if x.is(&c, ns::ADDRESSING, "EndpointReference") {
                        nested = Some(parse_epr(x)?);
                    } else {
                        x.skip()?;
                    }
                }
                Ev::Empty(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(ParseError::Truncated),
            }
        }
        reference = match nested {
            Some(r) => reference.with_reference_selector(name, r),
            None => reference.with_selector(name, text),
        };
    }
    Ok(reference)
}
