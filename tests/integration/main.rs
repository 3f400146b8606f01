//! One integration-test binary (faster to link than one per file), one module per concern.

mod support;

mod associations;
mod bad_input;
mod classes;
mod cli;
mod faults;
mod fleet;
mod https;
mod interop;
mod negotiate;
mod peer_fixtures;
mod property;
mod record;
mod streaming;
