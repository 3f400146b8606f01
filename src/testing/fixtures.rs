//! The fixture format: a directory of recorded exchanges, one request file and one response
//! file each, stored as readable, decrypted XML.
//!
//! ```text
//! fixtures/demo/
//!   0001-Enumerate-MSFT_SmbSession.request.xml
//!   0001-Enumerate-MSFT_SmbSession.response.xml
//!   0002-Pull-MSFT_SmbSession.request.xml
//!   0002-Pull-MSFT_SmbSession.response.xml
//! ```
//!
//! Files are paired by name and served in name order. A response holding a fault is served
//! with HTTP 500, anything else with 200. Every file is parsed when the set is loaded, so a
//! hand-edited file that is no longer XML is reported at start, by name.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::body::Pieces;
use crate::wsman::{RequestSummary, ResponseBody, parse_request, parse_response};

/// One recorded request and the response it got.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub(crate) name: String,
    pub(crate) request: RequestSummary,
    /// Shared with every answer that replays it (see [`Exchange::render`]).
    pub(crate) response: Bytes,
    pub(crate) status: u16,
    /// The enumeration context the response hands out (to be remapped on replay).
    pub(crate) response_context: Option<String>,
    /// Where the recorded MessageID (as RelatesTo) and context stand in `response`, in order:
    /// a replay writes the response once with the live ones in their place.
    marks: Vec<(std::ops::Range<usize>, Mark)>,
}

/// What a replay puts in place of a recorded value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// The request's MessageID.
    MessageId,
    /// The live enumeration context.
    Context,
}

impl Exchange {
    /// Parses a recorded pair; `name` is used in errors and logs.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Fixture`](crate::ErrorKind::Fixture) when either is not a valid envelope.
    pub fn parse(
        name: impl Into<String>,
        request: &str,
        response: impl Into<String>,
    ) -> crate::Result<Self> {
        Ok(Self::parse_pair(name.into(), request, response.into())?)
    }

    fn parse_pair(name: String, request: &str, response: String) -> Result<Self, FixtureError> {
        let summary = parse_request(request.as_bytes()).map_err(|e| FixtureError::Invalid {
            file: format!("{name}.request.xml"),
            message: e.to_string(),
        })?;
        let parsed = parse_response(response.as_bytes()).map_err(|e| FixtureError::Invalid {
            file: format!("{name}.response.xml"),
            message: e.to_string(),
        })?;
        let (status, response_context) = match &parsed.body {
            ResponseBody::Fault(_) => (500, None),
            ResponseBody::Enumerate(page) | ResponseBody::Pull(page) if !page.end_of_sequence => {
                (200, page.context.clone().filter(|c| !c.is_empty()))
            }
            _ => (200, None),
        };
        let marks = marks(
            &response,
            summary.message_id.as_deref(),
            response_context.as_deref(),
        );
        Ok(Self {
            name,
            request: summary,
            response: Bytes::from(response),
            status,
            response_context,
            marks,
        })
    }

    /// The response with the live MessageID and context in place of the recorded ones (each
    /// left as recorded when there is no live one): the recorded stretches between them are
    /// shared, not copied.
    pub(crate) fn render(&self, message_id: Option<&str>, context: Option<&str>) -> Pieces {
        let mut out = Pieces::default();
        let mut at = 0;
        for (range, mark) in &self.marks {
            let live = match mark {
                Mark::MessageId => message_id,
                Mark::Context => context,
            };
            if let Some(live) = live {
                out.push(self.response.slice(at..range.start));
                out.push(Bytes::copy_from_slice(live.as_bytes()));
                at = range.end;
            }
        }
        out.push(self.response.slice(at..));
        out
    }

    /// The exchange's name (the file name without `.request.xml`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Every occurrence of the recorded MessageID and context in `response`, in order; where two
/// overlap, the MessageID's (as replacing the MessageID first, then the context, would).
fn marks(
    response: &str,
    message_id: Option<&str>,
    context: Option<&str>,
) -> Vec<(std::ops::Range<usize>, Mark)> {
    let find = |pattern: Option<&str>, mark: Mark| -> Vec<(std::ops::Range<usize>, Mark)> {
        pattern
            .filter(|p| !p.is_empty())
            .map(|p| {
                response
                    .match_indices(p)
                    .map(|(at, _)| (at..at + p.len(), mark))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ids = find(message_id, Mark::MessageId);
    let contexts = find(context, Mark::Context)
        .into_iter()
        .filter(|(c, _)| !ids.iter().any(|(i, _)| c.start < i.end && i.start < c.end));
    let mut marks: Vec<_> = ids.iter().cloned().chain(contexts).collect();
    marks.sort_by_key(|(range, _)| range.start);
    marks
}

/// A set of recorded exchanges.
#[derive(Clone, Debug, Default)]
pub struct FixtureSet {
    pub(crate) exchanges: Vec<Exchange>,
}

impl FixtureSet {
    /// Loads every `*.request.xml` / `*.response.xml` pair of a directory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Fixture`](crate::ErrorKind::Fixture): the directory or a file cannot be
    /// read, a request has no response, a file is not a valid envelope, there is no pair.
    pub fn from_dir(dir: impl AsRef<Path>) -> crate::Result<Self> {
        Ok(Self::load(dir.as_ref())?)
    }

    fn load(dir: &Path) -> Result<Self, FixtureError> {
        let entries = std::fs::read_dir(dir).map_err(|e| FixtureError::Io {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| FixtureError::Io {
                path: dir.to_owned(),
                message: e.to_string(),
            })?;
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = file_name.strip_suffix(".request.xml") {
                names.push(stem.to_owned());
            } else if let Some(stem) = file_name.strip_suffix(".response.xml")
                && !dir.join(format!("{stem}.request.xml")).exists()
            {
                return Err(FixtureError::Unpaired(dir.join(file_name)));
            }
        }
        names.sort();
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|e| FixtureError::Io {
                path,
                message: e.to_string(),
            })
        };
        let mut set = FixtureSet::default();
        for name in names {
            let request = read(dir.join(format!("{name}.request.xml")))?;
            let response_path = dir.join(format!("{name}.response.xml"));
            if !response_path.exists() {
                return Err(FixtureError::Unpaired(
                    dir.join(format!("{name}.request.xml")),
                ));
            }
            let response = read(response_path)?;
            let exchange = Exchange::parse_pair(name, &request, response).map_err(|e| match e {
                FixtureError::Invalid { file, message } => FixtureError::Invalid {
                    file: dir.join(file).display().to_string(),
                    message,
                },
                other => other,
            })?;
            set.exchanges.push(exchange);
        }
        if set.exchanges.is_empty() {
            return Err(FixtureError::Empty(dir.to_owned()));
        }
        Ok(set)
    }

    /// A set from exchanges already in memory (generated or embedded).
    pub fn from_exchanges(exchanges: impl IntoIterator<Item = Exchange>) -> Self {
        Self {
            exchanges: exchanges.into_iter().collect(),
        }
    }

    /// Number of exchanges.
    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty()
    }

    /// What a server of this set can answer, one line per question in the order recorded
    /// (each once): the enumerations (by class, or by WQL query), Gets and method calls with
    /// their selectors. Pulls and Releases, which follow an Enumerate, are not listed.
    pub fn answers(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        for exchange in &self.exchanges {
            let r = &exchange.request;
            let operation = r.action.rsplit('/').next().unwrap_or_default();
            if matches!(operation, "Pull" | "Release") {
                continue;
            }
            let class = r
                .resource_uri
                .as_deref()
                .map(|uri| uri.rsplit('/').next().unwrap_or(uri))
                .unwrap_or_default();
            let selectors: Vec<String> = r
                .selectors
                .iter()
                .map(|s| match &s.value {
                    crate::cim::SelectorValue::Text(text) => format!("{}={text}", s.name),
                    crate::cim::SelectorValue::Reference(_) => format!("{}=(reference)", s.name),
                })
                .collect();
            let line = match (operation, &r.filter) {
                ("", _) => "Identify".to_owned(),
                ("Enumerate", Some((dialect, text))) if dialect.ends_with("/WQL") => {
                    format!("Enumerate WQL: {text}")
                }
                ("Enumerate", Some((_, text))) => format!("Enumerate {class} filtered: {text}"),
                ("Enumerate", None) => format!("Enumerate {class}"),
                ("Get", _) => format!("Get {class} {}", selectors.join(",")),
                (method, _) => format!("Invoke {method} on {class} {}", selectors.join(",")),
            };
            let line = line.trim_end().to_owned();
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        lines
    }
}

/// A fixture directory that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FixtureError {
    /// Not readable.
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        message: String,
    },
    /// No exchange in it.
    Empty(PathBuf),
    /// A request without its response, or the reverse.
    Unpaired(PathBuf),
    /// A file that is not a valid envelope.
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixtureError::Io { path, message } => {
                write!(f, "cannot read {}: {message}", path.display())
            }
            FixtureError::Empty(path) => write!(
                f,
                "no fixtures in {} (expected NNNN-name.request.xml / .response.xml pairs)",
                path.display()
            ),
            FixtureError::Unpaired(path) => write!(
                f,
                "{} has no matching request/response file",
                path.display()
            ),
            FixtureError::Invalid { file, message } => write!(f, "{file}: {message}"),
        }
    }
}

impl std::error::Error for FixtureError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_puts_the_live_message_id_and_context_where_the_recorded_ones_were() {
        let response = "<R>uuid:M</R><C>ctx-1</C><C>ctx-1</C><X>uuid:Mctx-1</X>";
        let marks = marks(response, Some("uuid:M"), Some("ctx-1"));
        assert_eq!(marks.len(), 5);
        let exchange = Exchange {
            name: "t".into(),
            request: RequestSummary::default(),
            response: response.into(),
            status: 200,
            response_context: Some("ctx-1".into()),
            marks,
        };
        assert_eq!(
            exchange.render(Some("uuid:live"), Some("L")).to_vec(),
            b"<R>uuid:live</R><C>L</C><C>L</C><X>uuid:liveL</X>"
        );
        // Without a live MessageID, the recorded one stays.
        assert_eq!(
            exchange.render(None, Some("L")).to_vec(),
            b"<R>uuid:M</R><C>L</C><C>L</C><X>uuid:ML</X>"
        );
        // A context inside the MessageID is the MessageID's.
        assert_eq!(
            marks_of("<R>a-b-a</R>", "a-b-a", "b"),
            [(3..8, Mark::MessageId)]
        );
    }

    fn marks_of(response: &str, id: &str, context: &str) -> Vec<(std::ops::Range<usize>, Mark)> {
        marks(response, Some(id), Some(context))
    }
}
