//! Ask Windows servers, over WS-Management (WinRM), who is connected to them, and get typed
//! answers: SMB sessions, server sessions and connections, logon sessions and their processes.
//!
//! ```no_run
//! # async fn run() -> winrm_sessions::Result<()> {
//! use futures_util::TryStreamExt;
//! use winrm_sessions::{Client, Credentials, classes::SmbSession};
//!
//! let client = Client::builder("fs01.corp.example")
//!     .https(true)
//!     .credentials(Credentials::new(r"CORP\auditor", "secret"))
//!     .build()?;
//! let sessions: Vec<SmbSession> = client.enumerate().try_collect().await?;
//! for s in &sessions {
//!     println!("{} {:?} from {:?}, {} open", s.session_id, s.client_user_name,
//!              s.client_computer_name, s.num_opens.unwrap_or(0));
//! }
//! # Ok(()) }
//! ```
//!
//! Against a stock Windows server on port 5985 the default, [`Auth::Negotiate`], authenticates
//! with Kerberos or NTLM and seals every message with WinRM message encryption.
//!
//! # Layers
//!
//! - [`cim`] and [`wsman`] do no I/O: envelopes, parsing, values, faults, the enumeration state
//!   machine, WQL building. Bytes in, values out.
//! - [`auth`]: credentials, and this crate's own NTLM and Kerberos engines (no I/O): handshakes,
//!   sealing, channel bindings, SPNEGO, the WinRM encryption framing.
//! - `transport` posts envelopes over HTTP(S) on connection-bound sessions; [`Client`] drives
//!   the state machines with it: enumerations as streams, `get`, associations, methods, joins.
//! - [`classes`] holds the typed session classes.
//! - [`fleet`] runs the same work over many hosts; [`watch`] polls them over time and reports
//!   what changed; [`record`] writes exchanges as fixtures.
//! - `testing` (feature `testing`) is a WinRM server on loopback that replays fixtures with
//!   Negotiate, encryption, Basic, TLS and client certificates.
//!
//! Design notes: `docs/design.md` in the repository.
//!
//! # Features
//!
//! None by default.
//!
//! - `testing`: `testing::FixtureServer`, a WinRM server on loopback for the tests of
//!   applications built on this crate.
//! - `store`: `watch::store::Store`, a watch's history in SQLite (compiled in).
//! - `metrics`: `watch::metrics::Metrics`, a watch's state served to Prometheus.
//! - `interop`: for this crate's own tests only (the suite that needs pyspnego, MIT krb5 and
//!   the peer captures); it adds nothing to the library.
//!
//! docs.rs documents every feature. Locally, `cargo doc` documents what is enabled: run
//! `cargo doc -p winrm-sessions --all-features --no-deps --open` to see `testing`, `store` and
//! `metrics` too.
//!
//! The command-line tool is the `winrm-sessions-cli` package of the same repository.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod cim;
pub mod classes;
mod client;
mod error;
pub mod fleet;
#[cfg(any(test, feature = "__internals"))]
#[doc(hidden)]
pub mod internals;
pub mod names;
pub mod record;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;
pub mod watch;
pub mod wsman;

pub use auth::{Auth, Credentials, Password};
pub use client::{
    ClassAddressing, Client, ClientBuilder, Enumeration, HTTP_PORT, HTTPS_PORT, JoinPages,
    JoinSpec, Joined, LogonSessionWithProcesses, Page, PageItems, Pages,
    ServerSessionWithConnections,
};

/// Options of [`Client`] calls: association filters and method inputs.
pub mod client_options {
    pub use crate::client::{Associations, MethodInput};
}
pub use error::{BoxError, Error, ErrorKind, Report, Result, TlsError};
