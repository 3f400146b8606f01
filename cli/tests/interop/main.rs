//! The command line's interop tests: the binary against MIT krb5 and OMI (see the library's
//! `tests/interop`); run by `scripts/interop-tests`, never skipped.

#[path = "../../../tests/support/mod.rs"]
#[allow(dead_code)] // shared with the other test suites, which use other parts
mod support;

mod kinit;
mod omi;
