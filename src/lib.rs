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
//! # Layers
//!
//! - [`cim`] and [`wsman`] do no I/O: envelopes, parsing, values, the enumeration state
//!   machine. Bytes in, values out.
//! - `transport` posts envelopes over HTTP(S); [`Client`] drives the state machines with it.
//! - [`classes`] holds the typed session classes.
//! - [`testing`] (feature `testing`) is a loopback server that replays fixtures.
//!
//! # Features
//!
//! - `cli` (default): the `winrm-sessions` command-line tool. Library users may turn default
//!   features off.
//! - `testing`: [`testing::FixtureServer`], a WinRM server on loopback that replays recorded
//!   fixtures, for the tests of applications built on this crate.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod cim;
pub mod classes;
mod client;
mod error;
pub mod fleet;
pub mod record;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;
pub mod wsman;

pub use auth::{Auth, Credentials, Password};
pub use client::{
    Client, ClientBuilder, Enumeration, HTTP_PORT, HTTPS_PORT, LogonSessionWithProcesses,
    ServerSessionWithConnections,
};

/// Options of [`Client`] calls: association filters and method inputs.
pub mod client_options {
    pub use crate::client::{Associations, MethodInput};
}
pub use error::{BoxError, Error, ErrorKind, Result};
