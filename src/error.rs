//! The one error type of the crate.
//!
//! [`Error`] says where (the target) and [`ErrorKind`] says what. Predicates answer the questions
//! callers act on: [`Error::is_retryable`], [`Error::is_timeout`], [`Error::is_access_denied`],
//! [`Error::is_authentication`]. No variant ever holds a password, a token or an Authorization
//! header.

use std::fmt;
use std::time::Duration;

use crate::cim::DecodeError;
use crate::wsman::{Fault, ParseError, ResponseError};

/// A boxed source error from a lower library (I/O, TLS, HTTP).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error, with the target it concerns.
pub struct Error {
    kind: ErrorKind,
    target: Option<String>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration cannot work: a bad URL, an unreadable CA file, a missing user.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Basic authentication would send the password in clear over HTTP; refused unless
    /// explicitly allowed.
    #[error(
        "refusing Basic authentication over plain HTTP: the password would cross the network in \
         clear (use HTTPS, or allow it explicitly with --allow-plaintext / \
         ClientBuilder::danger_allow_basic_over_http)"
    )]
    PlaintextBasicRefused,
    /// The TCP or TLS connection could not be established.
    #[error("cannot connect: {0}")]
    Connect(#[source] BoxError),
    /// No answer in time.
    #[error("timed out {phase} after {after:?}")]
    Timeout {
        /// `connecting` or `waiting for the response`.
        phase: &'static str,
        /// The limit that elapsed.
        after: Duration,
    },
    /// The connection broke while sending or receiving.
    #[error("connection failed: {0}")]
    Transport(#[source] BoxError),
    /// The server refused the credentials (HTTP 401).
    #[error("authentication failed ({mechanism}): {reason}")]
    Authentication {
        /// The mechanism tried, e.g. `Basic`.
        mechanism: &'static str,
        /// What the server said or what it offers instead.
        reason: String,
    },
    /// An HTTP status that is neither success nor a SOAP fault.
    #[error("HTTP {status}{}", excerpt_suffix(.excerpt))]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The beginning of the body, printable characters only.
        excerpt: String,
    },
    /// The response is not `application/soap+xml`.
    #[error("unexpected content type {0:?} (expected application/soap+xml)")]
    UnexpectedContentType(String),
    /// The response body exceeded the configured cap.
    #[error("response larger than the {limit}-byte limit")]
    ResponseTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The response is not well-formed WS-Management.
    #[error("invalid response: {0}")]
    Parse(#[from] ParseError),
    /// Well-formed, but breaks the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server answered with a WS-Management fault.
    #[error("fault {0}")]
    Fault(Box<Fault>),
    /// The connection failed while a Pull was in flight. The server may already have moved past
    /// that page, so the enumeration cannot go on without risking silently skipped items:
    /// start it again.
    #[error("enumeration interrupted (context {context}): {source}; start it again")]
    EnumerationInterrupted {
        /// The enumeration context of the lost Pull.
        context: String,
        /// What broke.
        source: Box<Error>,
    },
    /// A method ran and returned a non-zero `ReturnValue`.
    #[error("{method} returned {return_value}{}", meaning.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    MethodFailed {
        /// The method, e.g. `MSFT_SmbSession.ForceClose`.
        method: String,
        /// Its `ReturnValue`.
        return_value: u32,
        /// The documented meaning of the code, when known.
        meaning: Option<String>,
    },
    /// An instance does not fit its Rust type.
    #[error("cannot decode: {0}")]
    Decode(#[from] DecodeError),
}

fn excerpt_suffix(excerpt: &str) -> String {
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

impl Error {
    /// An error of a kind, with no target yet.
    pub fn new(kind: ErrorKind) -> Self {
        Self { kind, target: None }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The target (host or URL, as the caller gave it), when known.
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Sets the target.
    #[must_use]
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Removes the target (to print it elsewhere).
    #[must_use]
    pub fn without_target(mut self) -> Self {
        self.target = None;
        self
    }

    /// The WS-Management fault, when the server sent one.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.kind {
            ErrorKind::Fault(f) => Some(f),
            _ => None,
        }
    }

    /// A timeout, ours or the server's (`w:TimedOut`).
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout { .. })
            || self.fault().is_some_and(Fault::is_timeout)
    }

    /// Worth trying again later unchanged: timeouts, quota faults, connections refused or reset
    /// before anything was sent. Never an authentication failure.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Timeout { .. }
            | ErrorKind::Connect(_)
            | ErrorKind::EnumerationInterrupted { .. } => true,
            ErrorKind::Fault(f) => f.is_retryable(),
            ErrorKind::HttpStatus { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// The credentials were refused.
    pub fn is_authentication(&self) -> bool {
        matches!(self.kind, ErrorKind::Authentication { .. })
    }

    /// Authenticated, but not allowed (a fault saying access denied).
    pub fn is_access_denied(&self) -> bool {
        self.fault().is_some_and(Fault::is_access_denied)
    }

    /// The connection could not be made.
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect(_))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config(message.into()))
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol(message.into()))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl From<ResponseError> for Error {
    fn from(e: ResponseError) -> Self {
        Self::new(match e {
            ResponseError::Parse(p) => ErrorKind::Parse(p),
            ResponseError::Fault(f) => ErrorKind::Fault(f),
            ResponseError::Unexpected(m) => ErrorKind::Protocol(m),
        })
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Self::new(ErrorKind::Parse(e))
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::new(ErrorKind::Decode(e))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(target) => write!(f, "{target}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("target", &self.target)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
