//! The command line's tests: the binary as users run it, against loopback servers.

#[path = "../../../tests/support/mod.rs"]
#[allow(dead_code)] // shared with the library's tests, which use other parts
mod support;

mod bin;
mod commands;
mod faults;
mod fleet;
mod record;
mod streaming;
mod watch;
