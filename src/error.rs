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
         clear (use HTTPS, or allow it explicitly)"
    )]
    PlaintextBasicRefused,
    /// No KDC of the realm could be reached: Kerberos could not start.
    #[error(
        "Kerberos could not start: no KDC of realm {realm}{} could be reached: {reason}",
        .origin.as_deref().map(|o| format!(" (from {o})")).unwrap_or_default()
    )]
    KdcUnreachable {
        /// The realm whose KDCs were tried.
        realm: String,
        /// Where the realm came from, when the user did not name it.
        origin: Option<String>,
        /// Each KDC tried and what happened.
        reason: String,
    },
    /// Nothing accepted the connection: the port is closed (or a firewall rejected it).
    #[error("connection refused by {address} (is WinRM listening on that port?)")]
    ConnectionRefused {
        /// `host:port`.
        address: String,
    },
    /// The host name does not resolve. Not worth retrying.
    #[error("the name {host} does not resolve")]
    NameNotResolved {
        /// The name.
        host: String,
        /// What the resolver said.
        #[source]
        source: BoxError,
    },
    /// TLS failed: the server's certificate is not trusted, not for this name, expired, or the
    /// handshake broke. Not worth retrying.
    #[error("{0}")]
    Tls(TlsError),
    /// The TCP connection could not be established for another reason (unreachable network,
    /// no route).
    #[error("cannot connect to {address}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// No answer in time.
    #[error("timed out {phase} after {after:?}")]
    Timeout {
        /// `connecting` or `waiting for the response`.
        phase: &'static str,
        /// The limit that elapsed.
        after: Duration,
    },
    /// The connection was reset or closed before the answer was complete.
    #[error("the connection was closed {during}")]
    ConnectionClosed {
        /// `before the response was complete`, `in the middle of the response`.
        during: &'static str,
        /// What the operating system reported (a reset), when more than a closed connection.
        #[source]
        source: Option<BoxError>,
    },
    /// The exchange failed for another reason while sending or receiving.
    #[error("the HTTP exchange failed")]
    Transport(#[source] BoxError),
    /// A host did not finish within its deadline (in a fleet).
    #[error("no answer within the per-host deadline of {after:?}{}", last_error(.last))]
    Deadline {
        /// The deadline.
        after: Duration,
        /// The last error the host met before the deadline (a retry was waiting, a Pull kept
        /// timing out on the server), if any.
        last: Option<Box<Error>>,
    },
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
    Parse(ParseError),
    /// Well-formed, but breaks the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server answered with a WS-Management fault.
    #[error("fault {0}")]
    Fault(Box<Fault>),
    /// The connection failed while a Pull was in flight. The server may already have moved past
    /// that page, so the enumeration cannot go on without risking silently skipped items:
    /// start it again.
    #[error(
        "enumeration interrupted while a Pull was in flight (context {context}); start it again"
    )]
    EnumerationInterrupted {
        /// The enumeration context of the lost Pull.
        context: String,
        /// What broke.
        #[source]
        source: Box<Error>,
    },
    /// The connection failed while a method call was in flight: whether the method ran is
    /// unknown (it is never sent again on its own).
    #[error("the connection failed during {method}: it may or may not have run")]
    InvokeInterrupted {
        /// The method, e.g. `MSFT_SmbSession.ForceClose`.
        method: String,
        /// What broke.
        #[source]
        source: Box<Error>,
    },
    /// A method or parameter name is not an XML name; nothing was sent.
    #[error(transparent)]
    InvalidName(#[from] crate::wsman::InvalidName),
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
    Decode(DecodeError),
    /// A watch's store cannot be used: not a store, written by a newer version, in use by
    /// another watch, or a write failed (feature `store`). Nothing half-written is kept.
    #[cfg(feature = "store")]
    #[error("store {path}: {message}")]
    Store {
        /// The store file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The metrics endpoint cannot listen on its address (feature `metrics`).
    #[cfg(feature = "metrics")]
    #[error("cannot serve metrics on {address}")]
    Metrics {
        /// The address asked for.
        address: String,
        /// What the system said (the address is in use...).
        #[source]
        source: std::io::Error,
    },
    /// A fixture directory, file or server setting cannot be used (feature `testing`).
    #[cfg(feature = "testing")]
    #[error("{0}")]
    Fixture(crate::testing::FixtureError),
}

fn last_error(last: &Option<Box<Error>>) -> String {
    match last {
        Some(e) => format!("; the last error was: {}", e.report()),
        None => String::new(),
    }
}

/// Why TLS failed, in the words an admin acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate is not signed by a trusted authority.
    UnknownIssuer,
    /// The certificate is for other names.
    NameMismatch {
        /// The name connected to.
        expected: String,
        /// The names the certificate is for.
        presented: Vec<String>,
    },
    /// The certificate expired (or is not valid yet).
    Expired {
        /// When, if the verifier said.
        not_after: Option<String>,
    },
    /// The server answered the TLS handshake in plain text: the port speaks HTTP, not HTTPS.
    NotTls {
        /// `host:port`.
        address: String,
    },
    /// Anything else the TLS library reported.
    Other(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::UnknownIssuer => f.write_str(
                "TLS: the server's certificate is not signed by a trusted certificate authority \
                 (unknown issuer: trust its CA with --ca-file / ClientBuilder::ca_file)",
            ),
            TlsError::NameMismatch {
                expected,
                presented,
            } if presented.is_empty() => {
                write!(
                    f,
                    "TLS: the server's certificate is not valid for {expected}"
                )
            }
            TlsError::NameMismatch {
                expected,
                presented,
            } => write!(
                f,
                "TLS: the server's certificate is for {}, not for {expected}",
                presented.join(", ")
            ),
            TlsError::Expired {
                not_after: Some(when),
            } => write!(f, "TLS: the server's certificate expired ({when})"),
            TlsError::Expired { not_after: None } => {
                f.write_str("TLS: the server's certificate has expired or is not valid yet")
            }
            TlsError::NotTls { address } => write!(
                f,
                "TLS: {address} answered in plain HTTP, not TLS: that port speaks HTTP (WinRM \
                 over HTTP listens on 5985, over HTTPS on 5986): use an http:// target, or the \
                 HTTPS port"
            ),
            TlsError::Other(message) => write!(f, "TLS: {message}"),
        }
    }
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

    pub(crate) fn fault_mut(&mut self) -> Option<&mut Fault> {
        match &mut self.kind {
            ErrorKind::Fault(f) => Some(f),
            _ => None,
        }
    }

    /// A timeout, ours or the server's (`w:TimedOut`), or a fleet's per-host deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout { .. } | ErrorKind::Deadline { .. }
        ) || self.fault().is_some_and(Fault::is_timeout)
    }

    /// Worth trying again later unchanged: timeouts, quota faults, connections refused, reset or
    /// closed. Never an authentication failure, a name that does not resolve, or a
    /// certificate that is not trusted.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ErrorKind::Timeout { .. }
            | ErrorKind::ConnectionRefused { .. }
            | ErrorKind::ConnectionClosed { .. }
            | ErrorKind::Connect { .. }
            | ErrorKind::Deadline { .. }
            | ErrorKind::KdcUnreachable { .. }
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

    /// The exchange broke after the request may have reached the server: the connection was
    /// closed or failed, or no answer came in time. What was asked may or may not have been
    /// done, so only a request that cannot lose or repeat anything may be sent again.
    pub(crate) fn broke_in_flight(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Transport(_)
                | ErrorKind::ConnectionClosed { .. }
                | ErrorKind::Timeout { .. }
        )
    }

    /// The connection could not be made (refused, unresolved name, TLS, unreachable).
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Connect { .. }
                | ErrorKind::ConnectionRefused { .. }
                | ErrorKind::NameNotResolved { .. }
                | ErrorKind::Tls(_)
        )
    }

    /// The error and each of its causes, each said once: `a: b: c`, where a cause whose text
    /// its parent already says is left out. What a command-line tool prints.
    pub fn report(&self) -> Report<'_> {
        Report {
            error: self,
            target: true,
        }
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

#[cfg(feature = "testing")]
impl From<crate::testing::FixtureError> for Error {
    fn from(e: crate::testing::FixtureError) -> Self {
        Self::new(ErrorKind::Fixture(e))
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

/// An error with its causes; see [`Error::report`].
pub struct Report<'a> {
    error: &'a Error,
    target: bool,
}

impl Report<'_> {
    /// The same without the target in front, for a caller that names it already.
    #[must_use]
    pub fn without_target(mut self) -> Self {
        self.target = false;
        self
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = if self.target {
            self.error.to_string()
        } else {
            self.error.kind().to_string()
        };
        let mut cause = std::error::Error::source(self.error);
        while let Some(e) = cause {
            let text = e.to_string();
            if !text.is_empty() && !said.contains(&text) {
                said.push_str(": ");
                said.push_str(&text);
            }
            cause = e.source();
        }
        f.write_str(&said)
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
