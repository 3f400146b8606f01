//! A watch's history in SQLite: every session seen (target, class, key, first and last seen,
//! whether it is still open, the record as last seen) and every poll's outcome.
//!
//! One transaction per host poll, in WAL mode: a killed watch leaves the store as it was after
//! the last complete poll, and `history` can read while a watch writes. Only one watch writes
//! to a store at a time (a lock file next to it says so). The schema is versioned
//! (`PRAGMA user_version`) and migrated forward when a newer version opens an older store; a
//! store written by a newer version is refused rather than misread.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::codec;
use super::{Change, Poll, SessionEvent, SessionKey};
use crate::cim::{Instance, Value};
use crate::error::{Error, ErrorKind, Result};

/// `PRAGMA application_id` of a winrm-sessions store ("WSMS").
const APPLICATION_ID: i32 = 0x5753_4D53;

/// The schema, one step per version: `MIGRATIONS[n]` takes a store from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: sessions and polls.
    "CREATE TABLE sessions (
         id          INTEGER PRIMARY KEY,
         target      TEXT    NOT NULL,
         class       TEXT    NOT NULL,  -- the class watched (a session's own is in its record)
         key         TEXT    NOT NULL,  -- SessionKey: the object path of its key properties
         first_seen  INTEGER NOT NULL,  -- microseconds since 1970, UTC
         last_seen   INTEGER NOT NULL,
         open        INTEGER NOT NULL,
         closed_seen INTEGER,           -- the poll that found it gone
         user        TEXT,              -- ClientUserName or UserName, for filtering
         client      TEXT,              -- ClientComputerName or ComputerName
         record      TEXT    NOT NULL   -- the instance as last seen, losslessly (codec.rs)
     );
     CREATE UNIQUE INDEX sessions_open ON sessions (target, class, key) WHERE open = 1;
     CREATE INDEX sessions_last_seen ON sessions (last_seen);
     CREATE INDEX sessions_user ON sessions (lower(user));
     CREATE TABLE polls (
         id          INTEGER PRIMARY KEY,
         target      TEXT    NOT NULL,
         class       TEXT    NOT NULL,
         at          INTEGER NOT NULL,
         duration_ms INTEGER NOT NULL,
         ok          INTEGER NOT NULL,
         sessions    INTEGER,           -- open sessions, when ok
         error       TEXT               -- why not, otherwise
     );
     CREATE INDEX polls_target ON polls (target, class, ok, at);",
    // 2: a run of polls with one outcome is one row (first `at`, last `until`, how many), so
    // that a watch of a fleet where nothing changes does not grow its store.
    "ALTER TABLE polls ADD COLUMN until INTEGER;
     ALTER TABLE polls ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;",
];

/// The schema version this crate writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// A store, open for a watch (writing) or for reading its history.
pub struct Store {
    conn: Connection,
    path: String,
    /// Held while a watch writes: a second watch on the same store is refused.
    _lock: Option<File>,
}

/// Which sessions [`Store::history`] returns; every given condition must hold.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct HistoryFilter {
    /// The user as typed: `alice`, `CORP\alice` or `alice@corp.example` (see
    /// [`crate::names::user_matches`]).
    pub user: Option<String>,
    /// The client computer, case-insensitively, with or without brackets.
    pub client: Option<String>,
    /// The target however written: host, host:port or URL (see
    /// [`crate::names::target_matches`]).
    pub target: Option<String>,
    /// Seen at or after this time.
    pub since: Option<SystemTime>,
}

impl HistoryFilter {
    /// Every session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only sessions of this user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only sessions from this client computer.
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(client.into());
        self
    }

    /// Only sessions on this target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Only sessions seen at or after `since`.
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }
}

/// One session of the history.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The target, as given to the watch.
    pub target: String,
    /// The class watched.
    pub class: String,
    /// The session's identity on the target.
    pub key: SessionKey,
    /// The first poll that saw it.
    pub first_seen: SystemTime,
    /// The last poll that saw it.
    pub last_seen: SystemTime,
    /// Still there at the last successful poll of its host.
    pub open: bool,
    /// The session as last seen.
    pub session: Instance,
}

impl Store {
    /// Opens (or creates) a store for a watch: migrated to this version's schema, and locked
    /// for writing until dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`]: the file is not a store, was written by a newer version, another
    /// watch writes to it, or it cannot be created or written.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let lock = lock(path)?;
        let conn = Connection::open(path).map_err(|e| store_error(path, e))?;
        let mut store = Store {
            conn,
            path: path.display().to_string(),
            _lock: Some(lock),
        };
        store.prepare()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store to read its history (while a watch may be writing to it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`]: there is no store there, it is not one, or it has a schema this
    /// version does not know.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(error(
                path,
                "there is no store there (a watch with --store creates one)",
            ));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| store_error(path, e))?;
        let store = Store {
            conn,
            path: path.display().to_string(),
            _lock: None,
        };
        store
            .conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| store.fail(e))?;
        let version = store.identify()?;
        if version != SCHEMA_VERSION {
            return Err(store.error(format!(
                "schema version {version}; this winrm-sessions reads version {SCHEMA_VERSION} (a watch with this version migrates it)"
            )));
        }
        Ok(store)
    }

    /// WAL (readers never block the writer, a kill loses at most the poll in progress),
    /// synchronous NORMAL (a commit is durable once the WAL is checkpointed), and a wait instead
    /// of an immediate failure when a reader holds a lock.
    fn prepare(&mut self) -> Result<()> {
        self.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| self.fail(e))?;
        self.identify()?;
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| self.conn.pragma_update(None, "synchronous", "NORMAL"))
            .map_err(|e| self.fail(e))
    }

    /// The schema version, after checking the file is a store (or empty).
    fn identify(&self) -> Result<usize> {
        let read = |pragma: &str| -> rusqlite::Result<i64> {
            self.conn
                .query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
        };
        // A file that is not SQLite fails here, and `fail` says so.
        let (application, version) = read("application_id")
            .and_then(|a| Ok((a, read("user_version")?)))
            .map_err(|e| self.fail(e))?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|e| self.fail(e))?;
        if application != i64::from(APPLICATION_ID) && (tables > 0 || version != 0) {
            return Err(self.error("an SQLite database, but not a winrm-sessions store"));
        }
        if version < 0 || version as usize > SCHEMA_VERSION {
            return Err(self.error(format!(
                "written by a newer winrm-sessions (schema version {version}; this one knows up to {SCHEMA_VERSION})"
            )));
        }
        Ok(version as usize)
    }

    /// Brings the schema to [`SCHEMA_VERSION`], one transaction per step.
    fn migrate(&mut self) -> Result<()> {
        let from = self.identify()?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(from) {
            let tx = self
                .conn
                .transaction()
                .map_err(|e| store_error_at(&self.path, e))?;
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
                .and_then(|()| tx.pragma_update(None, "user_version", version as i64 + 1))
                .and_then(|()| tx.commit())
                .map_err(|e| store_error_at(&self.path, e))?;
            tracing::info!(store = %self.path, version = version + 1, "Store schema migrated");
        }
        Ok(())
    }

    /// What the last watch saw open on `target` for `class`, to resume from; `None` when no
    /// poll of it ever succeeded.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the store cannot be read or holds a record that is not one.
    pub fn resume(&self, class: &str, target: &str) -> Result<Option<Vec<Instance>>> {
        let polled: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 FROM polls WHERE target = ?1 AND class = ?2 AND ok = 1 LIMIT 1",
                params![target, class],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        if polled.is_none() {
            return Ok(None);
        }
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT record FROM sessions WHERE target = ?1 AND class = ?2 AND open = 1 ORDER BY id",
            )
            .map_err(|e| self.fail(e))?;
        let records = statement
            .query_map(params![target, class], |row| row.get::<_, String>(0))
            .map_err(|e| self.fail(e))?;
        let mut sessions = Vec::new();
        for record in records {
            sessions.push(self.decode(&record.map_err(|e| self.fail(e))?)?);
        }
        Ok(Some(sessions))
    }

    /// Writes one host's poll: its sessions as it found them and the poll's outcome, in one
    /// transaction (all of it is kept, or none).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the write fails (a full disk...); the store is unchanged.
    pub fn record(
        &mut self,
        class: &str,
        poll: &Poll,
        sessions: &[SessionEvent<Instance>],
    ) -> Result<()> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| store_error_at(&path, e);
        let tx = self.conn.transaction().map_err(fail)?;
        {
            // Most polls find a session as it was but for its values: its user and client as
            // before, so their index is left alone.
            let mut seen = tx
                .prepare_cached(
                    "UPDATE sessions SET last_seen = ?4, record = ?5
                     WHERE target = ?1 AND class = ?2 AND key = ?3 AND open = 1
                       AND user IS ?6 AND client IS ?7",
                )
                .map_err(fail)?;
            let mut renamed = tx
                .prepare_cached(
                    "UPDATE sessions SET last_seen = ?4, record = ?5, user = ?6, client = ?7
                     WHERE target = ?1 AND class = ?2 AND key = ?3 AND open = 1",
                )
                .map_err(fail)?;
            let mut opened = tx
                .prepare_cached(
                    "INSERT INTO sessions (target, class, key, first_seen, last_seen, open, user, client, record)
                     VALUES (?1, ?2, ?3, ?4, ?4, 1, ?6, ?7, ?5)",
                )
                .map_err(fail)?;
            let mut closed = tx
                .prepare_cached(
                    "UPDATE sessions SET open = 0, closed_seen = ?4, record = ?5
                     WHERE target = ?1 AND class = ?2 AND key = ?3 AND open = 1",
                )
                .map_err(fail)?;
            for event in sessions {
                let record =
                    codec::encode(&event.session).map_err(|e| error_at(&path, e.to_string()))?;
                let at = micros(event.at);
                let key = event.key.as_str();
                let target = event.target.as_str();
                match event.change {
                    Change::Closed => {
                        closed
                            .execute(params![target, class, key, at, record])
                            .map_err(fail)?;
                    }
                    Change::Present | Change::Opened | Change::Unchanged => {
                        let (user, client) = names(&event.session);
                        let values = params![target, class, key, at, record, user, client];
                        let mut updated = seen.execute(values).map_err(fail)?;
                        if updated == 0 {
                            updated = renamed.execute(values).map_err(fail)?;
                        }
                        if updated == 0 {
                            opened.execute(values).map_err(fail)?;
                        }
                    }
                }
            }
            let (ok, count, error) = match &poll.outcome {
                Ok(count) => (true, Some(*count as i64), None),
                Err(e) => (false, None, Some(e.report().without_target().to_string())),
            };
            // The same outcome as the host's last poll (answered with as many sessions, or
            // failed for the same reason) extends that poll's row instead of adding one.
            let at = micros(poll.at);
            let duration = poll.duration.as_millis() as i64;
            let extended = tx
                .prepare_cached(
                    "UPDATE polls SET until = ?3, duration_ms = ?4, repeats = repeats + 1
                     WHERE id = (SELECT max(id) FROM polls WHERE target = ?1 AND class = ?2)
                       AND ok = ?5 AND sessions IS ?6 AND error IS ?7",
                )
                .and_then(|mut update| {
                    update.execute(params![poll.target, class, at, duration, ok, count, error])
                })
                .map_err(fail)?;
            if extended == 0 {
                tx.prepare_cached(
                    "INSERT INTO polls (target, class, at, duration_ms, ok, sessions, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut insert| {
                    insert.execute(params![poll.target, class, at, duration, ok, count, error])
                })
                .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }

    /// The sessions that match `filter`, most recently seen first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] when the store cannot be read or holds a record that is not one.
    pub fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryEntry>> {
        let mut statement = self
            .conn
            .prepare(
                // Users and targets as typed match by crate::names' rules, below; SQL only
                // narrows to the rows that contain the name or host.
                "SELECT target, class, key, first_seen, last_seen, open, record, user FROM sessions
                 WHERE (?1 IS NULL OR lower(trim(client, '[]')) = lower(trim(?1, '[]')))
                   AND (?2 IS NULL OR last_seen >= ?2)
                   AND (?3 IS NULL OR instr(lower(user), ?3) > 0)
                   AND (?4 IS NULL OR instr(lower(target), ?4) > 0)
                 ORDER BY last_seen DESC, id DESC",
            )
            .map_err(|e| self.fail(e))?;
        let user_hint = filter.user.as_deref().and_then(crate::names::user_hint);
        let target_hint = filter.target.as_deref().and_then(crate::names::target_hint);
        let rows = statement
            .query_map(
                params![
                    filter.client,
                    filter.since.map(micros),
                    user_hint,
                    target_hint
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, bool>(5)?,
                        row.get::<_, String>(6)?,
                        row.get::<_, Option<String>>(7)?,
                    ))
                },
            )
            .map_err(|e| self.fail(e))?;
        let mut entries = Vec::new();
        for row in rows {
            let (target, class, key, first, last, open, record, user) =
                row.map_err(|e| self.fail(e))?;
            // Users and targets as typed, by the rules of `crate::names`.
            if let Some(wanted) = &filter.user
                && !user
                    .as_deref()
                    .is_some_and(|u| crate::names::user_matches(wanted, u))
            {
                continue;
            }
            if let Some(wanted) = &filter.target
                && !crate::names::target_matches(wanted, &target)
            {
                continue;
            }
            entries.push(HistoryEntry {
                target,
                class,
                key: SessionKey::from_stored(key),
                first_seen: time(first),
                last_seen: time(last),
                open,
                session: self.decode(&record)?,
            });
        }
        Ok(entries)
    }

    fn decode(&self, record: &str) -> Result<Instance> {
        codec::decode(record)
            .map_err(|e| self.error(format!("a session record is not readable: {e}")))
    }

    fn fail(&self, e: rusqlite::Error) -> Error {
        store_error_at(&self.path, e)
    }

    fn error(&self, message: impl Into<String>) -> Error {
        error_at(&self.path, message)
    }
}

/// The lock file that keeps a second watch off a store: `<store>.lock`, held while open.
fn lock(path: &Path) -> Result<File> {
    let mut lock_path = PathBuf::from(path).into_os_string();
    lock_path.push(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| error(path, format!("cannot create its lock file: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(error(
            path,
            "another watch is writing to it (one watch per store)",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(error(path, format!("cannot lock it: {e}"))),
    }
}

/// The user and client computer of a session, for filtering: the first of the properties
/// that name them in the session classes.
fn names(session: &Instance) -> (Option<&str>, Option<&str>) {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| session.get(n).and_then(Value::as_text))
            .filter(|t| !t.is_empty())
    };
    (
        first(&["ClientUserName", "UserName"]),
        first(&["ClientComputerName", "ComputerName"]),
    )
}

fn micros(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn time(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros.max(0) as u64)
}

fn error(path: &Path, message: impl Into<String>) -> Error {
    error_at(&path.display().to_string(), message)
}

fn error_at(path: &str, message: impl Into<String>) -> Error {
    ErrorKind::Store {
        path: path.to_owned(),
        message: message.into(),
    }
    .into()
}

fn store_error(path: &Path, e: rusqlite::Error) -> Error {
    store_error_at(&path.display().to_string(), e)
}

fn store_error_at(path: &str, e: rusqlite::Error) -> Error {
    let message = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            rusqlite::ErrorCode::DiskFull => {
                "the disk is full; the last poll was not recorded".to_owned()
            }
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                "it is locked by another process".to_owned()
            }
            rusqlite::ErrorCode::ReadOnly => "it cannot be written".to_owned(),
            rusqlite::ErrorCode::NotADatabase => {
                "not a winrm-sessions store (not an SQLite database)".to_owned()
            }
            _ => e.to_string(),
        },
        _ => e.to_string(),
    };
    error_at(path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cim::Value;

    fn smb(id: u64, user: &str, client: &str) -> Instance {
        Instance::new("MSFT_SmbSession")
            .with("ClientComputerName", Value::Text(client.into()))
            .with("ClientUserName", Value::Text(user.into()))
            .with("NumOpens", Value::Text("1".into()))
            .with("SessionId", Value::Text(id.to_string()))
    }

    fn event(
        change: Change,
        target: &str,
        session: Instance,
        at: SystemTime,
    ) -> SessionEvent<Instance> {
        SessionEvent {
            change,
            target: target.into(),
            key: SessionKey::of(&session),
            poll: 1,
            at,
            session,
        }
    }

    fn poll(target: &str, at: SystemTime, outcome: Result<usize>) -> Poll {
        Poll {
            target: target.into(),
            number: 1,
            at,
            duration: Duration::from_millis(20),
            outcome,
        }
    }

    const CLASS: &str = "MSFT_SmbSession";

    #[test]
    fn sessions_polls_resume_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch.db");
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t1 = t0 + Duration::from_secs(60);
        let t2 = t1 + Duration::from_secs(60);
        {
            let mut store = Store::open(&path).unwrap();
            assert_eq!(store.resume(CLASS, "fs01").unwrap(), None, "never polled");
            let alice = smb(1, r"CORP\alice", "10.0.0.1");
            let bob = smb(2, r"CORP\bob", "[fe80::1]");
            store
                .record(
                    CLASS,
                    &poll("fs01", t0, Ok(2)),
                    &[
                        event(Change::Present, "fs01", alice.clone(), t0),
                        event(Change::Present, "fs01", bob.clone(), t0),
                    ],
                )
                .unwrap();
            // Unreachable: nothing changes but the poll is kept.
            store
                .record(CLASS, &poll("fs01", t1, Err(Error::protocol("down"))), &[])
                .unwrap();
            let mut busier = alice.clone();
            busier.push("SecondsIdle", Value::Text("99".into()));
            store
                .record(
                    CLASS,
                    &poll("fs01", t2, Ok(1)),
                    &[
                        event(Change::Unchanged, "fs01", busier.clone(), t2),
                        event(Change::Closed, "fs01", bob.clone(), t2),
                    ],
                )
                .unwrap();
            // A second watch on the same store is refused while this one writes.
            let e = Store::open(&path).err().unwrap();
            assert!(e.to_string().contains("another watch"), "{e}");
            // History can be read meanwhile.
            let history = Store::open_read_only(&path)
                .unwrap()
                .history(&HistoryFilter::new())
                .unwrap();
            assert_eq!(history.len(), 2);
        }
        // Restarted: what was open is resumed, with its record as last seen.
        let store = Store::open(&path).unwrap();
        let open = store.resume(CLASS, "fs01").unwrap().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].get("SecondsIdle"), Some(&Value::Text("99".into())));
        let history = store.history(&HistoryFilter::new()).unwrap();
        let alice = history.iter().find(|h| h.open).unwrap();
        assert_eq!((alice.first_seen, alice.last_seen), (t0, t2));
        let bob = history.iter().find(|h| !h.open).unwrap();
        assert_eq!(
            (bob.first_seen, bob.last_seen),
            (t0, t0),
            "last seen before it closed"
        );
        // Filters: a user with or without its domain, a client with or without brackets.
        let only = |filter: HistoryFilter| store.history(&filter).unwrap().len();
        assert_eq!(only(HistoryFilter::new().user("ALICE")), 1);
        assert_eq!(only(HistoryFilter::new().user(r"corp\alice")), 1);
        assert_eq!(only(HistoryFilter::new().user("alice@corp.example")), 1);
        assert_eq!(only(HistoryFilter::new().user(r"other\alice")), 0);
        assert_eq!(only(HistoryFilter::new().user("corp")), 0);
        assert_eq!(only(HistoryFilter::new().client("fe80::1")), 1);
        assert_eq!(only(HistoryFilter::new().target("fs02")), 0);
        let all = only(HistoryFilter::new());
        for written in ["fs01", "FS01", "fs01:5985", "http://fs01:5985/wsman"] {
            assert_eq!(only(HistoryFilter::new().target(written)), all, "{written}");
        }
        assert_eq!(
            only(HistoryFilter::new().since(t1)),
            1,
            "bob was last seen at t0"
        );
        let polls: i64 = store
            .conn
            .query_row("SELECT count(*) FROM polls WHERE ok = 0", [], |r| r.get(0))
            .unwrap();
        assert_eq!(polls, 1);
    }

    #[test]
    fn a_session_keeps_one_row_when_its_user_or_client_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("watch.db")).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |n: u64| t0 + Duration::from_secs(60 * n);
        // The same session (its key is its SessionId) as each poll found it: the user filled in
        // later, then the client, then both as before.
        let unnamed = smb(7, "", "10.0.0.1");
        let polls = [
            (Change::Present, unnamed),
            (Change::Unchanged, smb(7, r"CORP\alice", "10.0.0.1")),
            (Change::Unchanged, smb(7, r"CORP\alice", "10.0.0.2")),
            (Change::Unchanged, smb(7, r"CORP\alice", "10.0.0.2")),
        ];
        for (n, (change, session)) in polls.into_iter().enumerate() {
            let when = at(n as u64);
            store
                .record(
                    CLASS,
                    &poll("fs01", when, Ok(1)),
                    &[event(change, "fs01", session, when)],
                )
                .unwrap();
        }
        let rows: Vec<(Option<String>, Option<String>, i64)> = store
            .conn
            .prepare("SELECT user, client, last_seen FROM sessions")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [(
                Some(r"CORP\alice".to_owned()),
                Some("10.0.0.2".to_owned()),
                micros(at(3))
            )]
        );
        assert_eq!(
            store
                .history(&HistoryFilter::new().user("alice").client("10.0.0.2"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_full_disk_loses_that_poll_only_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("full.db")).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        store
            .record(
                CLASS,
                &poll("fs01", t0, Ok(1)),
                &[event(Change::Present, "fs01", smb(1, "a", "b"), t0)],
            )
            .unwrap();
        // No room for more pages: as a full disk looks to SQLite.
        let pages: i64 = store
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        store
            .conn
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let big: Vec<_> = (2..2000)
            .map(|id| event(Change::Opened, "fs01", smb(id, &"u".repeat(500), "c"), t0))
            .collect();
        let e = store
            .record(CLASS, &poll("fs01", t0, Ok(2000)), &big)
            .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("the disk is full; the last poll was not recorded"),
            "{e}"
        );
        // What was there before is intact; the failed poll left nothing behind.
        let history = store.history(&HistoryFilter::new()).unwrap();
        assert_eq!(history.len(), 1);
        let polls: i64 = store
            .conn
            .query_row("SELECT count(*) FROM polls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(polls, 1);
    }

    /// A store locked by another process (past the wait) and one that cannot be written say so.
    #[test]
    fn a_locked_or_read_only_store_says_why_it_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch.db");
        let mut store = Store::open(&path).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let sessions = [event(Change::Present, "fs01", smb(1, "a", "b"), t0)];
        store.conn.busy_timeout(Duration::from_millis(10)).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let e = store
            .record(CLASS, &poll("fs01", t0, Ok(1)), &sessions)
            .unwrap_err();
        assert!(
            e.to_string().ends_with("it is locked by another process"),
            "{e}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        drop(store);

        let mut reader = Store::open_read_only(&path).unwrap();
        let e = reader
            .record(CLASS, &poll("fs01", t0, Ok(1)), &sessions)
            .unwrap_err();
        assert!(e.to_string().ends_with("it cannot be written"), "{e}");
    }

    /// Polls that find what the last one found add no row: a watch of a quiet fleet keeps a
    /// store of constant size; a change of outcome starts a new row.
    #[test]
    fn polls_with_the_same_outcome_add_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("w.db")).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let rows = |store: &Store| -> (i64, i64) {
            store
                .conn
                .query_row("SELECT count(*), sum(repeats) FROM polls", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
        };
        let session = [event(Change::Present, "fs01", smb(1, "u", "c"), t0)];
        store
            .record(CLASS, &poll("fs01", t0, Ok(1)), &session)
            .unwrap();
        for i in 1..=5 {
            let at = t0 + Duration::from_secs(60 * i);
            let unchanged = [event(Change::Unchanged, "fs01", smb(1, "u", "c"), at)];
            store
                .record(CLASS, &poll("fs01", at, Ok(1)), &unchanged)
                .unwrap();
        }
        assert_eq!(rows(&store), (1, 6));
        let sessions: i64 = store
            .conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sessions, 1);
        // Another host, and another outcome, each start a row.
        store.record(CLASS, &poll("fs02", t0, Ok(0)), &[]).unwrap();
        let at = t0 + Duration::from_secs(600);
        store.record(CLASS, &poll("fs01", at, Ok(0)), &[]).unwrap();
        assert_eq!(rows(&store), (3, 8));
    }

    /// A store is written in WAL mode (readers never block the watch), synchronous NORMAL, and
    /// waits for a lock instead of failing at once.
    #[test]
    fn a_store_is_opened_for_a_writer_that_readers_do_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("watch.db")).unwrap();
        let pragma = |name: &str| -> String {
            store
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "1", "NORMAL");
        assert_eq!(pragma("busy_timeout"), "5000");
    }

    #[test]
    fn what_is_not_a_store_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "x".repeat(4096)).unwrap();
        let e = Store::open(&text).err().unwrap();
        assert!(e.to_string().contains("not an SQLite database"), "{e}");
        assert_eq!(std::fs::read(&text).unwrap(), "x".repeat(4096).into_bytes());

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let e = Store::open(&other).err().unwrap();
        assert!(e.to_string().contains("not a winrm-sessions store"), "{e}");

        let newer = dir.path().join("newer.db");
        drop(Store::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = Store::open(&newer).err().unwrap();
        assert!(e.to_string().contains("newer winrm-sessions"), "{e}");
        let e = Store::open_read_only(&newer).err().unwrap();
        assert!(e.to_string().contains("newer winrm-sessions"), "{e}");

        let e = Store::open_read_only(dir.path().join("missing.db"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("no store there"), "{e}");
    }
}
