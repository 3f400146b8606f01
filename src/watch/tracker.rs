//! What changed on a host between two successful polls (sans-IO): the sessions it had, keyed by
//! identity, compared with what a new poll found.

use std::collections::HashMap;

use super::snapshot::Snapshot;
use crate::cim::{Instance, SelectorValue, Value};
use crate::classes::key_properties;

/// A session's identity on its target: its class and its key properties' values, as a WMI
/// object path (`MSFT_SmbSession.SessionId="8813272891621"`). For a class whose keys this crate
/// does not know, every property is the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    /// The key of `instance`.
    pub fn of(instance: &Instance) -> Self {
        let class = instance.class_name();
        let keys = key_properties(class);
        let mut path = String::new();
        if keys.is_empty() {
            let every = instance.properties().iter();
            let every = every.map(|p| (&*p.name, PathValue::Value(&p.value)));
            write_path(&mut path, class, every);
        } else {
            let value = |key| instance.get(key).map_or(PathValue::Null, PathValue::Value);
            write_path(&mut path, class, keys.iter().map(|&key| (key, value(key))));
        }
        Self(path)
    }

    /// A key as stored (see [`SessionKey::as_str`]).
    pub fn from_stored(path: impl Into<String>) -> Self {
        Self(path.into())
    }

    /// The object path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value in an object path, as [`write_path`] takes it.
pub(super) enum PathValue<'a> {
    /// Absent or nil: `null`.
    Null,
    /// Text, or a Datetime or an Interval as its text: quoted.
    Text(std::borrow::Cow<'a, str>),
    /// Any value, as [`push_value`] writes it.
    Value(&'a Value),
}

/// Appends `Class.Name=value,...` to `out`: the key properties and their values (or, for a
/// class whose keys are not known, every property). Sessions as instances and as a snapshot's
/// records are keyed by this one writer, so that their digests agree.
pub(super) fn write_path<'a>(
    out: &mut String,
    class: &str,
    entries: impl Iterator<Item = (&'a str, PathValue<'a>)>,
) {
    out.push_str(class);
    for (i, (name, value)) in entries.enumerate() {
        out.push(if i == 0 { '.' } else { ',' });
        out.push_str(name);
        out.push('=');
        match value {
            PathValue::Null => out.push_str("null"),
            PathValue::Text(text) => push_quoted(out, &text),
            PathValue::Value(value) => push_value(out, value),
        }
    }
}

/// Appends `text` quoted, as an object path writes text (`"` and `\\` escaped).
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// A value in an object path: quoted text, a reference as its class and selectors, an array
/// in braces.
fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Reference(reference) => {
            out.push_str(
                reference
                    .resource_uri()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default(),
            );
            let mut selectors: Vec<_> = reference.selectors().iter().collect();
            selectors.sort_by(|a, b| a.name.cmp(&b.name));
            for (i, selector) in selectors.into_iter().enumerate() {
                out.push(if i == 0 { '.' } else { ',' });
                out.push_str(&selector.name);
                out.push('=');
                match &selector.value {
                    SelectorValue::Text(text) => push_quoted(out, text),
                    SelectorValue::Reference(inner) => {
                        push_value(out, &Value::Reference(Box::new((**inner).clone())))
                    }
                }
            }
        }
        Value::Array(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push('}');
        }
        Value::Object(object) => push_quoted(out, SessionKey::of(object).as_str()),
        other => push_quoted(out, other.as_text().unwrap_or_default()),
    }
}

/// What a poll found that the previous successful one did not, or the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// There at this host's first successful poll.
    Present,
    /// Not there at the previous successful poll.
    Opened,
    /// There at the previous successful poll, gone now.
    Closed,
    /// There at the previous successful poll and still there (reported only when asked for, as
    /// a store does to keep each session's record as last seen).
    Unchanged,
}

/// The sessions of every host at its last successful poll, each as a [`Snapshot`]: a digest of
/// its key and its values, which is all it takes to tell opened from closed and to report a
/// closed session as last seen.
#[derive(Debug, Default)]
pub struct Tracker {
    hosts: HashMap<String, Host>,
}

#[derive(Debug)]
struct Host {
    snapshot: Snapshot,
    /// No successful poll in this run yet: what is still there is `Present`.
    first: bool,
    /// Its sessions come from an earlier run's last successful poll: at the first poll, what is
    /// new is `Opened`, not `Present`.
    resumed: bool,
}

impl Tracker {
    /// Starts from what an earlier run last saw open on `target` (a store): at the first poll,
    /// what is gone since is `Closed`, what is new is `Opened`, what is still there `Present`.
    pub fn resume(&mut self, target: &str, sessions: impl IntoIterator<Item = Instance>) {
        let mut snapshot = Snapshot::default();
        for instance in sessions {
            snapshot.push(&instance);
        }
        self.hosts.insert(
            target.to_owned(),
            Host {
                snapshot: snapshot.finish(),
                first: true,
                resumed: true,
            },
        );
    }

    /// The sessions a successful poll of `target` found; returns the changes since its previous
    /// successful poll, each session typed by `decode`: `Present` or `Opened` in the order
    /// found, then `Closed` (with the session as last seen) in key order. A failed poll is
    /// simply not observed: nothing closes because a host did not answer. When `decode` fails
    /// for a session to report, the poll is not taken in (the next one is compared with the
    /// last that was) and the error is returned.
    ///
    /// With `unchanged`, sessions still there are reported too ([`Change::Unchanged`]).
    pub(crate) fn observe<T, E>(
        &mut self,
        target: &str,
        found: Snapshot,
        unchanged: bool,
        mut decode: impl FnMut(Instance) -> Result<T, E>,
    ) -> Result<Vec<(Change, SessionKey, T)>, E> {
        let host = self.hosts.entry(target.to_owned()).or_insert_with(|| Host {
            snapshot: Snapshot::default(),
            first: true,
            resumed: false,
        });
        let previous = &host.snapshot;
        // The usual poll of a watched host: the same sessions as the last one. Nothing to
        // report then, and no need to look each one up.
        if !host.first && !unchanged && previous.same_sessions(&found) {
            host.snapshot = found;
            return Ok(Vec::new());
        }
        let mut changes = Vec::new();
        for (digest, offset) in found.in_order() {
            let change = match previous.contains(&digest) {
                true if host.first => Some(Change::Present),
                true if unchanged => Some(Change::Unchanged),
                true => None,
                false if host.first && !host.resumed => Some(Change::Present),
                false => Some(Change::Opened),
            };
            if let Some(change) = change {
                let instance = found.instance(offset);
                changes.push((change, SessionKey::of(&instance), decode(instance)?));
            }
        }
        let mut gone: Vec<(SessionKey, Instance)> = previous
            .by_digest()
            .filter(|(digest, _)| !found.contains(digest))
            .map(|(_, offset)| {
                let instance = previous.instance(offset);
                (SessionKey::of(&instance), instance)
            })
            .collect();
        gone.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, instance) in gone {
            changes.push((Change::Closed, key, decode(instance)?));
        }
        host.snapshot = found;
        host.first = false;
        host.resumed = false;
        Ok(changes)
    }

    /// How many sessions `target` had at its last successful poll.
    pub fn open(&self, target: &str) -> usize {
        self.hosts.get(target).map_or(0, |h| h.snapshot.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smb(id: u64) -> Instance {
        let mut i = Instance::new("MSFT_SmbSession");
        i.push("SessionId", Value::Text(id.to_string()));
        i.push("NumOpens", Value::Text("1".into()));
        i
    }

    fn found(ids: &[u64]) -> Snapshot {
        snapshot(ids.iter().map(|&id| smb(id)).collect())
    }

    fn snapshot(instances: Vec<Instance>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for instance in &instances {
            snapshot.push(instance);
        }
        snapshot.finish()
    }

    /// The session id of an instance: the typed value of these tests.
    fn id(instance: Instance) -> Result<u64, String> {
        instance
            .get("SessionId")
            .and_then(Value::as_text)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("no SessionId in {instance:?}"))
    }

    fn kinds(changes: Result<Vec<(Change, SessionKey, u64)>, String>) -> Vec<(Change, u64)> {
        changes
            .unwrap()
            .iter()
            .map(|(c, _, id)| (*c, *id))
            .collect()
    }

    #[test]
    fn keys_are_object_paths() {
        assert_eq!(
            SessionKey::of(&smb(8813272891621)).as_str(),
            r#"MSFT_SmbSession.SessionId="8813272891621""#
        );
        let mut s = Instance::new("Win32_ServerSession");
        s.push("ComputerName", Value::Text("10.0.0.1".into()));
        s.push("UserName", Value::Text(r#"o"brien\x"#.into()));
        s.push("ActiveTime", Value::Text("5".into()));
        assert_eq!(
            SessionKey::of(&s).as_str(),
            r#"Win32_ServerSession.ComputerName="10.0.0.1",UserName="o\"brien\\x""#
        );
    }

    #[test]
    fn references_and_arrays_in_keys_are_written_out_whole() {
        use crate::cim::Reference;
        let session = |computer: &str, user: &str| {
            Value::Reference(Box::new(
                Reference::new(
                    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession",
                )
                .with_selector("UserName", user)
                .with_selector("ComputerName", computer),
            ))
        };
        let mut association = Instance::new("Win32_SessionConnection");
        association.push("Antecedent", session("10.0.0.1", "bob"));
        association.push("Dependent", session("10.0.0.2", "amy"));
        assert_eq!(
            SessionKey::of(&association).as_str(),
            r#"Win32_SessionConnection.Antecedent=Win32_ServerSession.ComputerName="10.0.0.1",UserName="bob",Dependent=Win32_ServerSession.ComputerName="10.0.0.2",UserName="amy""#
        );
        // A class this crate does not know: every property is the key, arrays in braces.
        let mut unknown = Instance::new("X_Thing");
        unknown.push(
            "Roles",
            Value::Array(vec![
                Value::Text("a".into()),
                Value::Text("b".into()),
                Value::Text("c".into()),
            ]),
        );
        assert_eq!(
            SessionKey::of(&unknown).as_str(),
            r#"X_Thing.Roles={"a","b","c"}"#
        );
    }

    #[test]
    fn present_then_opened_and_closed_and_a_failure_closes_nothing() {
        let mut tracker = Tracker::default();
        assert_eq!(
            kinds(tracker.observe("fs01", found(&[1, 2]), false, id)),
            [(Change::Present, 1), (Change::Present, 2)]
        );
        assert_eq!(
            kinds(tracker.observe("fs01", found(&[1, 2]), false, id)),
            []
        );
        // A failed poll is not observed; the next success is compared with the last success.
        assert_eq!(
            kinds(tracker.observe("fs01", found(&[2, 3]), false, id)),
            [(Change::Opened, 3), (Change::Closed, 1)]
        );
        assert_eq!(tracker.open("fs01"), 2);
        // Another host has its own first poll.
        assert_eq!(
            kinds(tracker.observe("fs02", found(&[1]), false, id)),
            [(Change::Present, 1)]
        );
        // A host that went empty and came back.
        assert_eq!(
            kinds(tracker.observe("fs02", found(&[]), false, id)),
            [(Change::Closed, 1)]
        );
        assert_eq!(
            kinds(tracker.observe("fs02", found(&[1]), false, id)),
            [(Change::Opened, 1)]
        );
    }

    #[test]
    fn a_poll_with_the_same_sessions_reports_nothing_and_is_still_taken_in() {
        let mut tracker = Tracker::default();
        let with_opens = |id: u64, opens: &str| {
            let mut session = Instance::new("MSFT_SmbSession");
            session.push("SessionId", Value::Text(id.to_string()));
            session.push("NumOpens", Value::Text(opens.into()));
            session
        };
        let poll = |opens: &str| snapshot(vec![with_opens(1, opens), with_opens(2, opens)]);
        tracker
            .observe("fs01", poll("1"), false, Ok::<_, ()>)
            .unwrap();
        assert_eq!(
            tracker.observe("fs01", poll("2"), false, Ok::<_, ()>),
            Ok(Vec::new())
        );
        let mut only_two = |unchanged: bool| {
            let found = snapshot(vec![with_opens(2, "3")]);
            let changes = tracker.observe("fs01", found, unchanged, Ok::<_, ()>);
            let changes = changes.unwrap();
            assert_eq!(changes.len(), 1);
            (changes[0].0, changes[0].2.clone())
        };
        // The same sessions with other values: the poll was taken in, so a session that closes
        // now is reported as that poll saw it.
        assert_eq!(only_two(false), (Change::Closed, with_opens(1, "2")));
        // Asked for the sessions still there, it reports them even when nothing changed.
        assert_eq!(only_two(true), (Change::Unchanged, with_opens(2, "3")));
    }

    #[test]
    fn a_resumed_host_reports_what_changed_while_nobody_watched() {
        let mut tracker = Tracker::default();
        tracker.resume("fs01", [smb(1), smb(2)]);
        assert_eq!(
            kinds(tracker.observe("fs01", found(&[2, 3]), false, id)),
            [
                (Change::Present, 2),
                (Change::Opened, 3),
                (Change::Closed, 1)
            ]
        );
        assert_eq!(
            kinds(tracker.observe("fs01", found(&[2, 3]), true, id)),
            [(Change::Unchanged, 2), (Change::Unchanged, 3)]
        );
        // Resumed with nothing open (the earlier run polled it and found none): new is opened.
        tracker.resume("fs02", Vec::new());
        assert_eq!(
            kinds(tracker.observe("fs02", found(&[7]), false, id)),
            [(Change::Opened, 7)]
        );
    }

    #[test]
    fn a_closed_session_comes_back_as_last_seen_and_a_failed_decode_takes_nothing_in() {
        let mut tracker = Tracker::default();
        let mut rich = smb(5);
        rich.push("ClientUserName", Value::Text(r"CONTOSO\Zoë".into()));
        tracker
            .observe("fs01", snapshot(vec![rich.clone()]), false, Ok::<_, ()>)
            .unwrap();
        let refuse = |_: Instance| Err::<Instance, _>("no");
        assert_eq!(
            tracker.observe("fs01", found(&[6]), false, refuse),
            Err("no")
        );
        // The refused poll was not taken in: 5 is still what the last good poll saw.
        let changes = tracker
            .observe("fs01", found(&[6]), false, Ok::<_, ()>)
            .unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].0, Change::Closed);
        assert_eq!(changes[1].1, SessionKey::of(&rich));
        assert_eq!(changes[1].2, rich, "the whole record as last seen");
    }
}
