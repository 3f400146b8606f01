//! Testing support (feature `testing`): a WinRM server on loopback that replays recorded
//! fixtures, so that applications built on this crate can be tested without Windows.
//!
//! The fixture format is described in [`FixtureSet`]; the bundled fixtures under `fixtures/`
//! of this repository use it.

mod body;
mod connections;
mod fixtures;
mod in_flight;
mod replay;
mod server;

pub use connections::ConnectionStats;
pub use fixtures::{Exchange, FixtureError, FixtureSet};
pub use in_flight::InFlight;
pub use replay::ReplayStats;
pub use server::{DEFAULT_PASSWORD, DEFAULT_USER, FixtureServer, FixtureServerBuilder};
