//! The library's integration tests: one binary (faster to link than one per file), one module
//! per concern. The command line's are in `cli/tests`.

#[path = "../support/mod.rs"]
#[allow(dead_code)] // shared with the command line's tests, which use other parts
mod support;

#[path = "../support/pki.rs"]
mod pki;

mod addressing;
mod associations;
mod bad_input;
mod classes;
mod faults;
mod fleet;
mod https;
mod negotiate;
mod property;
mod watch;
