//! Recording conversations as fixtures: every request envelope and the response it got, after
//! decryption, as readable XML in the fixture format the replay server reads
//! (`testing::FixtureSet`, feature `testing`).
//!
//! Nothing secret is written: credentials travel in HTTP headers and security tokens, which are
//! never recorded, and bodies are recorded after unsealing. Host and user names can be replaced
//! consistently (in plain and XML-escaped form) so that recordings from production can be shared.
//! File names are deterministic: a sequence number, the operation and the class.
//!
//! Files are written by a thread of the recorder's own, so an exchange never waits on the disk
//! inside the async runtime; at most [`QUEUED`] exchanges wait for it (then the exchange does,
//! which is the right pressure when the disk is the slowest part).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::wsman::parse_request;
use crate::wsman::writer::escape_into;

/// Sees every exchange of a client: the request envelope and the response body, both in clear.
pub trait ExchangeHook: Send + Sync {
    /// Called after each exchange that produced a response (including faults).
    fn exchange(&self, request: &[u8], response: &[u8]);
}

/// Exchanges waiting for the writer thread at most.
pub const QUEUED: usize = 256;

/// Writes exchanges as fixture files into a directory.
pub struct Recorder {
    dir: PathBuf,
    replacements: Vec<(String, String)>,
    /// The sequence number of the next exchange.
    next: Mutex<usize>,
    queue: Option<SyncSender<File>>,
    written: Arc<Written>,
    writer: Option<JoinHandle<()>>,
}

/// One exchange to write: its file stem and both texts.
struct File {
    stem: String,
    request: String,
    response: String,
}

/// What the writer thread has done: exchanges still to write, and the first error.
#[derive(Default)]
struct Written {
    state: Mutex<(usize, Option<String>)>,
    idle: Condvar,
}

impl Written {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Option<String>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Recorder {
    /// Records into `dir` (created if needed), numbering after the files already there.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let next = next_free_number(&dir);
        let (queue, files) = mpsc::sync_channel::<File>(QUEUED);
        let written = Arc::new(Written::default());
        let writer = {
            let (dir, written) = (dir.clone(), written.clone());
            std::thread::Builder::new()
                .name("winrm-sessions-recorder".into())
                .spawn(move || {
                    for file in files {
                        let write = |suffix: &str, text: &str| {
                            std::fs::write(dir.join(format!("{}.{suffix}.xml", file.stem)), text)
                        };
                        let result = write("request", &file.request)
                            .and_then(|()| write("response", &file.response));
                        let mut state = written.lock();
                        state.0 -= 1;
                        if let Err(e) = result {
                            tracing::warn!(dir = %dir.display(), error = %e, "Cannot record an exchange");
                            state.1.get_or_insert_with(|| e.to_string());
                        }
                        written.idle.notify_all();
                    }
                })?
        };
        Ok(Self {
            dir,
            replacements: Vec::new(),
            next: Mutex::new(next),
            queue: Some(queue),
            written,
            writer: Some(writer),
        })
    }

    /// Replaces `from` by `to` everywhere in what is recorded (host names, user names...).
    /// Longer patterns are applied first, so `fs01.corp.example` wins over `fs01`.
    #[must_use]
    pub fn replace(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        let from = from.into();
        if !from.is_empty() {
            self.replacements.push((from, to.into()));
            self.replacements
                .sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
        }
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until every exchange seen so far is on disk.
    pub fn flush(&self) {
        let mut state = self.written.lock();
        while state.0 > 0 {
            state = self
                .written
                .idle
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The first write error, if any, once what was seen so far is written (recording never
    /// fails the exchange itself).
    pub fn error(&self) -> Option<String> {
        self.flush();
        self.written.lock().1.clone()
    }

    /// One pass over the text, longest pattern first at each position, so that a replacement is
    /// never itself replaced again.
    fn sanitize(&self, text: &str) -> String {
        if self.replacements.is_empty() {
            return text.to_owned();
        }
        let mut patterns: Vec<(String, String)> = Vec::new();
        for (from, to) in &self.replacements {
            patterns.push((from.clone(), to.clone()));
            let (mut from_escaped, mut to_escaped) = (String::new(), String::new());
            escape_into(&mut from_escaped, from);
            escape_into(&mut to_escaped, to);
            if from_escaped != *from {
                patterns.push((from_escaped, to_escaped));
            }
        }
        patterns.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for (from, to) in &patterns {
                if let Some(after) = rest.strip_prefix(from.as_str()) {
                    out.push_str(to);
                    rest = after;
                    continue 'scan;
                }
            }
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// `Enumerate-MSFT_SmbSession`, `Pull-WQL`, `Invoke-ForceClose-MSFT_SmbSession`...
fn label(request: &[u8]) -> String {
    let Ok(summary) = parse_request(request) else {
        return "Unknown".into();
    };
    let operation = if summary.action.is_empty() {
        "Identify".to_owned()
    } else if let Some(method) = summary
        .body_element
        .as_deref()
        .and_then(|b| b.strip_suffix("_INPUT"))
    {
        format!("Invoke-{method}")
    } else {
        summary
            .action
            .rsplit('/')
            .next()
            .unwrap_or("Request")
            .to_owned()
    };
    let class = summary
        .resource_uri
        .as_deref()
        .and_then(|u| u.rsplit('/').next())
        .map(|c| if c == "*" { "WQL" } else { c })
        .unwrap_or_default()
        .to_owned();
    let name = if class.is_empty() {
        operation
    } else {
        format!("{operation}-{class}")
    };
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn next_free_number(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .split('-')
                        .next()?
                        .parse::<usize>()
                        .ok()
                })
                .max()
                .map_or(1, |n| n + 1)
        })
        .unwrap_or(1)
}

impl ExchangeHook for Recorder {
    fn exchange(&self, request: &[u8], response: &[u8]) {
        let file = File {
            stem: String::new(),
            request: self.sanitize(&String::from_utf8_lossy(request)),
            response: self.sanitize(&String::from_utf8_lossy(response)),
        };
        // Numbered and queued under one lock, so files are numbered in the order they are
        // queued and written.
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let file = File {
            stem: format!("{:04}-{}", *next, label(request)),
            ..file
        };
        *next += 1;
        self.written.lock().0 += 1;
        let sent = self.queue.as_ref().is_some_and(|q| q.send(file).is_ok());
        if !sent {
            let mut state = self.written.lock();
            state.0 -= 1;
            state
                .1
                .get_or_insert_with(|| "the recorder's writer stopped".into());
        }
    }
}

impl Drop for Recorder {
    /// Writes what is queued before the recorder goes.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_plain_and_escaped_forms_longest_first() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::new(dir.path())
            .unwrap()
            .replace("fs01", "server")
            .replace("fs01.corp.example", "fs01.example.test")
            .replace("O'Brien & Co", "user1");
        let text = recorder
            .sanitize("http://fs01.corp.example:5985 fs01 O'Brien & Co O&apos;Brien &amp; Co");
        assert_eq!(text, "http://fs01.example.test:5985 server user1 user1");
    }
}
