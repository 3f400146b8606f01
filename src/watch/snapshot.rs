//! A host's sessions at one poll, as a watch remembers them (sans-IO): per session a digest of
//! its key and the values of its properties, in one byte arena per host; the class, namespace
//! and property names once per shape. A million sessions cost about what their values cost,
//! not a million copies of `MSFT_SmbSession`, `ClientUserName` and a namespace URI, nor a
//! second copy of each key. A session is rebuilt into an [`Instance`], equal to the one it was
//! made from, only when it must be reported.
//!
//! Built as each page of the poll is parsed ([`ItemSink`]): an item one scan read goes from the
//! page's text into the arena with no instance built for it, so a host in flight holds a page
//! and its snapshot, never its whole answer as instances.

use std::sync::Arc;

#[cfg(test)]
use super::tracker::SessionKey;
use super::tracker::{PathValue, write_path};
use crate::cim::{Datetime, Instance, Interval, Reference, Value};
use crate::classes::key_properties;
use crate::client::PageSink;
use crate::wsman::xml::Scanned;
use crate::wsman::{ItemSink, ParseError, ScannedItem, scanned_value};

/// A key as remembered: 128 bits of two SipHash passes over the object path (the path is
/// rebuilt from the session when it must be reported). Two keys of one host sharing a digest
/// (about 2^-64 for a million sessions) is not a concern.
///
/// Four `u32`s rather than two `u64`s: an index entry (digest and offset) then takes 20 bytes,
/// not 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Digest([u32; 4]);

impl Digest {
    #[cfg(test)]
    fn of(key: &SessionKey) -> Self {
        Self::of_path(key.as_str())
    }

    /// The digest of the key whose object path is `path`.
    fn of_path(path: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let pass = |salt: u8| {
            let mut hasher = std::hash::DefaultHasher::new();
            salt.hash(&mut hasher);
            path.hash(&mut hasher);
            hasher.finish()
        };
        let (a, b) = (pass(0x5a), pass(0xa5));
        Self([(a >> 32) as u32, a as u32, (b >> 32) as u32, b as u32])
    }
}

/// What sessions of one shape share: class, namespace and property names, in order, and so
/// which of them make the key.
#[derive(Debug)]
struct Shape {
    class: Arc<str>,
    namespace: Option<Arc<str>>,
    names: Box<[Arc<str>]>,
    /// The class's key properties, each with its position among `names` (none: written as
    /// null); none at all for a class this crate does not know, whose every property is its
    /// key.
    keys: Box<[(&'static str, Option<usize>)]>,
}

impl Shape {
    fn new<'n>(class: &str, namespace: Option<&str>, names: impl Iterator<Item = &'n str>) -> Self {
        let names: Box<[Arc<str>]> = names.map(Arc::from).collect();
        let position = |key: &str| {
            names
                .iter()
                .position(|name| &**name == key)
                .or_else(|| names.iter().position(|name| name.eq_ignore_ascii_case(key)))
        };
        let keys = key_properties(class)
            .iter()
            .map(|&key| (key, position(key)))
            .collect();
        Self {
            class: class.into(),
            namespace: namespace.map(Arc::from),
            names,
            keys,
        }
    }

    fn fits<'n>(
        &self,
        class: &str,
        namespace: Option<&str>,
        mut names: impl ExactSizeIterator<Item = &'n str>,
    ) -> bool {
        *self.class == *class
            && self.namespace.as_deref() == namespace
            && self.names.len() == names.len()
            && self.names.iter().all(|name| Some(&**name) == names.next())
    }
}

// A record in the arena: shape index, flags, [extra index], then each property's value: a tag,
// and for text a length and the UTF-8 bytes. Its digest is in the index only.
const NULL: u8 = 0;
const TEXT: u8 = 1;
const DATETIME: u8 = 2;
const INTERVAL: u8 = 3;
/// References, embedded objects and arrays: kept as they are, in `rare`.
const RARE: u8 = 4;
/// The instance has its own reference or is a projection: an index into `extras` follows.
const HAS_EXTRA: u8 = 1;

/// What few instances have besides their properties.
#[derive(Debug)]
struct Extra {
    reference: Option<Reference>,
    projection: bool,
}

/// A host's sessions at one successful poll; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    shapes: Vec<Shape>,
    arena: Vec<u8>,
    rare: Vec<Value>,
    extras: Vec<Extra>,
    /// (digest, offset of its record), sorted by digest once built; for a digest that came
    /// twice, the last record.
    index: Vec<(Digest, u32)>,
    /// Where a session's object path is written to be digested, reused from one to the next.
    path: String,
}

impl Snapshot {
    /// Adds a session, as the poll found it.
    pub(crate) fn push(&mut self, instance: &Instance) {
        let names = instance.properties().iter().map(|p| &*p.name);
        let shape = self.shape(instance.class_name(), instance.namespace_uri(), names);
        let extra = (instance.reference().is_some() || instance.is_projection()).then(|| Extra {
            reference: instance.reference().cloned(),
            projection: instance.is_projection(),
        });
        let offset = self.start_record(shape, extra);
        for property in instance.properties() {
            self.put_value(&property.value);
        }
        self.end_record(offset);
    }

    /// The shape of sessions with this class, namespace and property names, added if new.
    fn shape<'n>(
        &mut self,
        class: &str,
        namespace: Option<&str>,
        names: impl ExactSizeIterator<Item = &'n str> + Clone,
    ) -> usize {
        // The last few shapes are looked at: a host's sessions have one or two, and a class
        // whose every instance differs costs a shape each, never a search of them all.
        let recent = self.shapes.len().saturating_sub(4);
        match self.shapes[recent..]
            .iter()
            .rposition(|s| s.fits(class, namespace, names.clone()))
        {
            Some(at) => recent + at,
            None => {
                self.shapes.push(Shape::new(class, namespace, names));
                self.shapes.len() - 1
            }
        }
    }

    /// Writes a record's head; returns where it starts.
    fn start_record(&mut self, shape: usize, extra: Option<Extra>) -> u32 {
        // 32-bit offsets: one host's sessions would need 4 GiB of values (some 40 million
        // sessions) to outgrow them, far past what a response cap lets a poll bring.
        let offset = u32::try_from(self.arena.len()).unwrap_or(u32::MAX);
        put_len(&mut self.arena, shape);
        match extra {
            Some(extra) => {
                self.arena.push(HAS_EXTRA);
                put_len(&mut self.arena, self.extras.len());
                self.extras.push(extra);
            }
            None => self.arena.push(0),
        }
        offset
    }

    fn put_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.arena.push(NULL),
            Value::Text(text) => put_text(&mut self.arena, TEXT, text),
            Value::Datetime(d) => put_text(&mut self.arena, DATETIME, d.as_str()),
            Value::Interval(i) => put_text(&mut self.arena, INTERVAL, i.as_str()),
            other => {
                self.arena.push(RARE);
                put_len(&mut self.arena, self.rare.len());
                self.rare.push(other.clone());
            }
        }
    }

    /// Indexes the record written from `offset` by the digest of its key.
    fn end_record(&mut self, offset: u32) {
        let mut path = std::mem::take(&mut self.path);
        path.clear();
        self.write_key(offset, &mut path);
        self.index.push((Digest::of_path(&path), offset));
        self.path = path;
    }

    /// Appends the object path of the record at `offset` to `out`: by the writer
    /// [`SessionKey::of`](super::tracker::SessionKey::of) uses, from the record's values.
    fn write_key(&self, offset: u32, out: &mut String) {
        let mut reader = self.reader(offset);
        let shape = &self.shapes[reader.len()];
        if reader.byte() == HAS_EXTRA {
            reader.len();
        }
        if shape.keys.is_empty() {
            let every = shape
                .names
                .iter()
                .map(|name| (&**name, reader.path_value(&self.rare)));
            write_path(out, &shape.class, every);
            return;
        }
        let values = reader.at as u32;
        let value_at = |at: usize| {
            let mut reader = self.reader(values);
            for _ in 0..at {
                reader.path_value(&self.rare);
            }
            reader.path_value(&self.rare)
        };
        let keys = shape.keys.iter().map(|&(key, at)| {
            let value = at.map_or(PathValue::Null, value_at);
            (key, value)
        });
        write_path(out, &shape.class, keys);
    }

    fn reader(&self, offset: u32) -> Reader<'_> {
        Reader {
            bytes: &self.arena,
            at: offset as usize,
        }
    }

    /// Done adding: the index sorted for look-ups, spare capacity returned.
    pub(crate) fn finish(mut self) -> Self {
        // Stable: of two records with one digest, the later stays last, and wins.
        self.index.sort_by_key(|(digest, _)| *digest);
        self.index.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                *earlier = *later;
                true
            } else {
                false
            }
        });
        self.path = String::new();
        self.arena.shrink_to_fit();
        self.index.shrink_to_fit();
        self.rare.shrink_to_fit();
        self
    }

    /// Sessions in it.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// True when `other` holds the sessions this one holds (by key; their values may differ).
    pub(crate) fn same_sessions(&self, other: &Snapshot) -> bool {
        self.index.len() == other.index.len()
            && self.index.iter().zip(&other.index).all(|(a, b)| a.0 == b.0)
    }

    pub(crate) fn contains(&self, digest: &Digest) -> bool {
        self.index.binary_search_by_key(digest, |(d, _)| *d).is_ok()
    }

    /// Each session's digest and record offset, in the order the poll found them (a digest
    /// that came twice once, where its last record is).
    pub(crate) fn in_order(&self) -> impl Iterator<Item = (Digest, u32)> + use<> {
        let mut order = self.index.clone();
        order.sort_unstable_by_key(|(_, offset)| *offset);
        order.into_iter()
    }

    /// Each session's digest and record offset, in digest order.
    pub(crate) fn by_digest(&self) -> impl Iterator<Item = (Digest, u32)> + '_ {
        self.index.iter().copied()
    }

    /// The session whose record starts at `offset`, as it was pushed.
    pub(crate) fn instance(&self, offset: u32) -> Instance {
        let mut reader = self.reader(offset);
        let shape = &self.shapes[reader.len()];
        let mut instance = Instance::with_capacity(shape.class.clone(), shape.names.len());
        if let Some(namespace) = &shape.namespace {
            instance.set_namespace_uri(namespace.clone());
        }
        if reader.byte() == HAS_EXTRA {
            let extra = &self.extras[reader.len()];
            if let Some(reference) = &extra.reference {
                instance.set_reference(reference.clone());
            }
            instance.set_projection(extra.projection);
        }
        for name in shape.names.iter() {
            let value = match reader.byte() {
                NULL => Value::Null,
                RARE => self.rare[reader.len()].clone(),
                tag => {
                    // Written from a `&str`: always UTF-8.
                    let text = String::from_utf8_lossy(reader.text()).into_owned();
                    match tag {
                        // A Datetime or Interval keeps the text it was parsed from, so it
                        // parses again; should it not, the text is kept rather than lost.
                        DATETIME => {
                            Datetime::parse(&text).map_or(Value::Text(text), Value::Datetime)
                        }
                        INTERVAL => {
                            Interval::parse(&text).map_or(Value::Text(text), Value::Interval)
                        }
                        _ => Value::Text(text),
                    }
                }
            };
            instance.push_property(name.clone(), value);
        }
        instance
    }
}

fn put_len(arena: &mut Vec<u8>, mut len: usize) {
    // LEB128: one byte for the usual short value.
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            arena.push(low);
            return;
        }
        arena.push(low | 0x80);
    }
}

fn put_text(arena: &mut Vec<u8>, tag: u8, text: &str) {
    arena.push(tag);
    put_len(arena, text.len());
    arena.extend_from_slice(text.as_bytes());
}

/// Reads what `push` wrote (the arena is this module's own: never hostile input).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let byte = self.bytes[self.at];
        self.at += 1;
        byte
    }

    fn len(&mut self) -> usize {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let byte = self.byte();
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return len;
            }
        }
    }

    fn text(&mut self) -> &'a [u8] {
        let len = self.len();
        let text = &self.bytes[self.at..self.at + len];
        self.at += len;
        text
    }

    /// The next value, as an object path takes it.
    fn path_value(&mut self, rare: &'a [Value]) -> PathValue<'a> {
        match self.byte() {
            NULL => PathValue::Null,
            RARE => PathValue::Value(&rare[self.len()]),
            // Written from a `&str`: always UTF-8, so borrowed.
            _ => PathValue::Text(String::from_utf8_lossy(self.text())),
        }
    }
}

/// A poll's items go straight into the snapshot as each page is parsed: an item read in one
/// scan has its texts copied into the arena from the page, no instance built for it.
impl ItemSink for Snapshot {
    fn scanned(&mut self, item: ScannedItem<'_, '_>) -> Result<(), ParseError> {
        // A name repeated is an array: built as an instance builds it.
        if item.properties.windows(2).any(|two| two[0].0 == two[1].0) {
            self.push(&item.into_instance()?);
            return Ok(());
        }
        let names = item.properties.iter().map(|(name, _)| *name);
        let shape = self.shape(item.class, item.namespace, names);
        let offset = self.start_record(shape, None);
        for (name, scanned) in item.properties.drain(..) {
            match scanned {
                Scanned::Nil => self.arena.push(NULL),
                Scanned::Text(text) => put_text(&mut self.arena, TEXT, &text),
                other => match scanned_value(other, name) {
                    Ok(value) => self.put_value(&value),
                    Err(e) => {
                        // The poll fails; leave no half record behind all the same.
                        self.arena.truncate(offset as usize);
                        return Err(e);
                    }
                },
            }
        }
        self.end_record(offset);
        Ok(())
    }

    fn instance(&mut self, instance: Instance) {
        self.push(&instance);
    }
}

impl PageSink for Snapshot {
    /// Nothing: the snapshot gathers the whole answer.
    type Page = ();

    fn take_page(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smb(id: u64, user: &str) -> Instance {
        Instance::new("MSFT_SmbSession")
            .with_namespace_uri(
                "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession",
            )
            .with("SessionId", Value::Text(id.to_string()))
            .with("ClientUserName", Value::Text(user.into()))
            .with("TransportName", Value::Null)
            .with("Long", Value::Text("x".repeat(300)))
    }

    fn rich() -> Instance {
        let mut rich = Instance::new("Win32_LogonSession")
            .with(
                "StartTime",
                Value::Datetime(Datetime::parse("20241105093012.123456+060").unwrap()),
            )
            .with(
                "Idle",
                Value::Interval(Interval::parse("00000001020304.000000:000").unwrap()),
            )
            .with("Empty", Value::Text(String::new()))
            .with("Nil", Value::Null)
            .with(
                "Names",
                Value::Array(vec![Value::Text("a".into()), Value::Null]),
            )
            .with("Inner", Value::Object(Box::new(smb(1, "u"))))
            .with("Unicode", Value::Text("Zoë Ångström 日本".into()));
        rich.set_reference(Reference::new(
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_LogonSession",
        ));
        rich.set_projection(true);
        rich
    }

    #[test]
    fn every_kind_of_value_comes_back_as_it_was_in_the_order_found() {
        let mut twice = Instance::new("X");
        twice.push_property("A".into(), Value::Text("1".into()));
        twice.push_property("A".into(), Value::Text("2".into()));
        let found = [
            smb(8813272891621, r"CONTOSO\o'brien & co"),
            rich(),
            Instance::new("Empty"),
            twice,
            smb(2, "b"),
        ];
        let mut snapshot = Snapshot::default();
        for instance in &found {
            snapshot.push(instance);
        }
        let snapshot = snapshot.finish();
        assert_eq!(snapshot.len(), found.len());
        let back: Vec<Instance> = snapshot
            .in_order()
            .map(|(_, offset)| snapshot.instance(offset))
            .collect();
        assert_eq!(back, found);
        for instance in &found {
            assert!(snapshot.contains(&Digest::of(&SessionKey::of(instance))));
        }
        assert!(!snapshot.contains(&Digest::of(&SessionKey::of(&smb(3, "c")))));
        // One shape per class here; text-only sessions need no side values.
        assert_eq!(snapshot.shapes.len(), 4);
        assert_eq!(snapshot.rare.len(), 2);
    }

    #[test]
    fn keys_are_the_object_paths_whatever_the_shape() {
        // A known class with its key first, last, missing, or named in another case; an
        // association (references in its key); a class whose every property is its key.
        let mut late_key =
            Instance::new("MSFT_SmbSession").with("NumOpens", Value::Text("1".into()));
        late_key.push("SessionId", Value::Text("7".into()));
        let other_case =
            Instance::new("MSFT_SmbSession").with("sessionid", Value::Text("8".into()));
        let missing = Instance::new("MSFT_SmbSession").with("NumOpens", Value::Text("2".into()));
        let reference = |user: &str| {
            Value::Reference(Box::new(
                Reference::new(
                    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession",
                )
                .with_selector("UserName", user)
                .with_selector("ComputerName", "10.0.0.1"),
            ))
        };
        let association = Instance::new("Win32_SessionConnection")
            .with("Dependent", reference("b"))
            .with("Antecedent", reference("a"));
        let found = [
            smb(1, "a"),
            late_key,
            other_case,
            missing,
            association,
            rich(),
            Instance::new("X_Unknown")
                .with("B", Value::Text("2".into()))
                .with("A", Value::Null),
        ];
        let mut snapshot = Snapshot::default();
        for instance in &found {
            snapshot.push(instance);
        }
        let snapshot = snapshot.finish();
        // The digest of each session's object path, as `SessionKey::of` writes it, is found.
        assert_eq!(snapshot.len(), found.len());
        for instance in &found {
            assert!(snapshot.contains(&Digest::of(&SessionKey::of(instance))));
        }
        let path = |instance: &Instance| SessionKey::of(instance).as_str().to_owned();
        assert_eq!(path(&found[1]), r#"MSFT_SmbSession.SessionId="7""#);
        assert_eq!(path(&found[2]), r#"MSFT_SmbSession.SessionId="8""#);
        assert_eq!(path(&found[3]), "MSFT_SmbSession.SessionId=null");
    }

    #[test]
    fn shapes_are_told_apart_and_found_again_among_many() {
        // Each with values of its own: one session each (a key that comes twice is one).
        let serial = std::cell::Cell::new(0);
        let item = |class: &str, namespace: Option<&str>, names: &[&str]| {
            serial.set(serial.get() + 1);
            let mut instance = Instance::new(class);
            if let Some(namespace) = namespace {
                instance = instance.with_namespace_uri(namespace);
            }
            for name in names {
                instance = instance.with(
                    *name,
                    Value::Text(format!("{class}.{name}.{}", serial.get())),
                );
            }
            instance
        };
        let mut by_reference = item("R", None, &["A"]);
        by_reference.set_reference(Reference::new("urn:r").with_selector("A", "1"));
        let mut projected = item("P", None, &["A"]);
        projected.set_projection(true);
        let found = [
            item("X", None, &["A", "B"]),
            // The same class with other names, another count, another namespace.
            item("X", None, &["A", "C"]),
            item("X", None, &["A"]),
            item("X", Some("urn:other"), &["A", "B"]),
            // More shapes than the few looked at, then one of the recent ones again.
            item("C1", None, &["A"]),
            item("C2", None, &["A"]),
            item("C3", None, &["A"]),
            item("C4", None, &["A"]),
            item("C5", None, &["A"]),
            item("C4", None, &["A"]),
            by_reference,
            projected,
        ];
        let mut snapshot = Snapshot::default();
        for instance in &found {
            snapshot.push(instance);
        }
        let snapshot = snapshot.finish();
        let back: Vec<Instance> = snapshot
            .in_order()
            .map(|(_, offset)| snapshot.instance(offset))
            .collect();
        assert_eq!(back, found);
    }

    #[test]
    fn every_word_of_a_digest_varies_with_the_key() {
        let digests: Vec<Digest> = (0..64)
            .map(|id| Digest::of(&SessionKey::of(&smb(id, "u"))))
            .collect();
        for word in 0..4 {
            let first = digests[0].0[word];
            assert!(
                digests.iter().any(|d| d.0[word] != first),
                "word {word} is the same for every key"
            );
        }
        let mut distinct = digests.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), digests.len());
    }

    #[test]
    fn an_index_entry_takes_twenty_bytes() {
        assert_eq!(std::mem::size_of::<(Digest, u32)>(), 20);
    }

    #[test]
    fn a_key_that_comes_twice_is_one_session_as_last_seen() {
        let mut snapshot = Snapshot::default();
        snapshot.push(&smb(1, "first"));
        snapshot.push(&smb(2, "other"));
        snapshot.push(&smb(1, "second"));
        let snapshot = snapshot.finish();
        assert_eq!(snapshot.len(), 2);
        let users: Vec<String> = snapshot
            .in_order()
            .map(|(_, o)| {
                snapshot
                    .instance(o)
                    .get("ClientUserName")
                    .unwrap()
                    .as_text()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(users, ["other", "second"]);
    }

    /// A Pull page as Windows writes it: text with entities, empty and nil values, a repeated
    /// property (an array), CIM-typed values, references, a class this crate does not know,
    /// and an embedded object (which one scan does not read).
    fn page(start_time: &str) -> Vec<u8> {
        let smb = |id: u32, user: &str| {
            format!(
                r#"<p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:ClientComputerName>[fe80::1%12]</p:ClientComputerName><p:ClientUserName>{user}</p:ClientUserName><p:ClusterNodeName></p:ClusterNodeName><p:Dialect xsi:nil="true"/><p:SessionId>{id}</p:SessionId></p:MSFT_SmbSession>"#
            )
        };
        let session = |computer: &str, user: &str| {
            format!(
                r#"<a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession</w:ResourceURI><w:SelectorSet><w:Selector Name="ComputerName">{computer}</w:Selector><w:Selector Name="UserName">{user}</w:Selector></w:SelectorSet></a:ReferenceParameters>"#
            )
        };
        let items = [
            smb(1, r"CORP\j&#xF6;rg &amp; &lt;co&gt;"),
            r#"<p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:SessionId>2</p:SessionId><p:Roles>a</p:Roles><p:Roles>b</p:Roles></p:MSFT_SmbSession>"#.into(),
            format!(
                r#"<p:Win32_LogonSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_LogonSession"><p:LogonId>999</p:LogonId><p:StartTime><cim:Datetime>{start_time}</cim:Datetime></p:StartTime><p:Idle><cim:Interval>P1DT2H3M4S</cim:Interval></p:Idle></p:Win32_LogonSession>"#
            ),
            format!(
                r#"<p:Win32_SessionConnection xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_SessionConnection"><p:Antecedent>{}</p:Antecedent><p:Dependent>{}</p:Dependent></p:Win32_SessionConnection>"#,
                session("10.0.0.1", "bob"),
                session("10.0.0.2", "amy")
            ),
            r#"<q:X_Thing xmlns:q="urn:x"><q:B>2</q:B><q:A xsi:nil="true"/></q:X_Thing>"#.into(),
            r#"<q:X_Outer xmlns:q="urn:x"><q:Inner><r:Y xmlns:r="urn:y"><r:C>3</r:C></r:Y></q:Inner></q:X_Outer>"#.into(),
            smb(3, "amy"),
        ];
        format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"><s:Header><a:RelatesTo>uuid:R</a:RelatesTo></s:Header><s:Body><n:PullResponse><n:Items>{}</n:Items><n:EndOfSequence/></n:PullResponse></s:Body></s:Envelope>"#,
            items.concat()
        )
        .into_bytes()
    }

    /// Counts the items that reach the snapshot as one scan read them.
    #[derive(Default)]
    struct Spy {
        snapshot: Snapshot,
        scanned: usize,
    }

    impl ItemSink for Spy {
        fn scanned(&mut self, item: ScannedItem<'_, '_>) -> Result<(), ParseError> {
            self.scanned += 1;
            self.snapshot.scanned(item)
        }

        fn instance(&mut self, instance: Instance) {
            ItemSink::instance(&mut self.snapshot, instance);
        }
    }

    #[test]
    fn a_page_parsed_straight_into_a_snapshot_is_the_snapshot_of_its_instances() {
        use crate::wsman::{ResponseBody, parse_response, parse_response_into};
        let body = page("2024-11-05T09:30:12.123456+01:00");
        let mut spy = Spy::default();
        parse_response_into(&body, Some(&mut spy)).unwrap();
        assert_eq!(spy.scanned, 6, "all but the embedded object in one scan");
        let ResponseBody::Pull(page) = parse_response(&body).unwrap().body else {
            panic!("not a page")
        };
        let mut built = Snapshot::default();
        for instance in &page.items {
            built.push(instance);
        }
        let (direct, built) = (spy.snapshot.finish(), built.finish());
        // The same records, indexed by the same digests: the digests of `SessionKey::of`.
        assert_eq!(direct.arena, built.arena);
        assert_eq!(direct.index, built.index);
        assert_eq!(direct.rare, built.rare);
        for instance in &page.items {
            assert!(direct.contains(&Digest::of(&SessionKey::of(instance))));
        }
        let back: Vec<Instance> = direct
            .in_order()
            .map(|(_, offset)| direct.instance(offset))
            .collect();
        assert_eq!(back, page.items);
        assert_eq!(
            back[1].get("Roles"),
            Some(&Value::Array(vec![
                Value::Text("a".into()),
                Value::Text("b".into())
            ]))
        );
    }

    #[test]
    fn a_value_that_does_not_parse_fails_the_page_and_leaves_no_half_record() {
        use crate::wsman::parse_response_into;
        let mut snapshot = Snapshot::default();
        let error = parse_response_into(&page("yesterday"), Some(&mut snapshot)).unwrap_err();
        assert!(
            matches!(&error, ParseError::InvalidValue { property, .. } if property == "StartTime"),
            "{error:?}"
        );
        // The two sessions before it are whole; nothing of the third.
        assert_eq!(snapshot.index.len(), 2);
        let end = snapshot.arena.len();
        let last = snapshot.index[1].1 as usize;
        let mut reader = snapshot.reader(last as u32);
        reader.len();
        reader.byte();
        for _ in 0..snapshot.shapes[1].names.len() {
            reader.path_value(&snapshot.rare);
        }
        assert_eq!(reader.at, end);
    }
}
