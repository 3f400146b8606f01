//! The interop suite: the tests that need an implementation that is not ours, so more than Rust
//! and loopback: pyspnego's NTLM acceptor, an MIT krb5 realm and GSSAPI acceptor, Microsoft's OMI
//! WS-Management server, and the peer
//! captures of real Windows output in `../shared/peer-fixtures`. A missing tool or folder fails
//! them; nothing here skips. `scripts/interop-tests` installs the tools and runs this suite
//! (`cargo test --features interop --test interop`); `cargo test` leaves it out.

#[path = "../support/mod.rs"]
#[allow(dead_code)] // shared with the other test suites, which use other parts
mod support;

#[path = "../support/pki.rs"]
mod pki;

mod acceptors;
mod downgrade;
mod omi;
mod peer_captures;
