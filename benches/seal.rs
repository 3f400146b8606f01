//! Message encryption cost on a large page: NTLM sealing (sspi, RC4) and Kerberos Wrap tokens
//! (`auth::kerberos::gss`, AES-256), each sealed by one side and checked and unsealed by the
//! other, as a 500-item PullResponse crosses from server to client.
//!
//! `cargo bench --bench seal`

mod common;

use std::hint::black_box;
use std::time::Duration;

use winrm_sessions::Password;
use winrm_sessions::auth::Credentials;
use winrm_sessions::auth::context::{NtlmClient, NtlmServer, SecurityContext, Step};
use winrm_sessions::auth::kerberos::ccache::SessionKey;
use winrm_sessions::auth::kerberos::gss::{Role, Sealer};

#[global_allocator]
static ALLOC: common::MeteredAlloc = common::MeteredAlloc;

fn ntlm_pair() -> (NtlmClient, NtlmServer) {
    let mut client = NtlmClient::new(&Credentials::new("demo", "demo"), "fs01", None).unwrap();
    let mut server = NtlmServer::new("demo", &Password::new("demo")).unwrap();
    let Step::Continue(mut to_server) = client.step(None).unwrap() else {
        panic!()
    };
    while let Step::Continue(to_client) = server.step(Some(&to_server)).unwrap() {
        to_server = match client.step(Some(&to_client)).unwrap() {
            Step::Continue(t) | Step::Done(Some(t)) => t,
            Step::Done(None) => break,
        };
    }
    (client, server)
}

fn report(name: &str, bytes: usize, elapsed: Duration) {
    println!(
        "{name:<32} {:>8.1} MB/s  ({:.2} ms per {:.1} MB page)",
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3,
        bytes as f64 / 1e6
    );
}

fn main() {
    let page = common::pull_response(0, 500, "uuid:1", Some("uuid:2")).into_bytes();
    let budget = Duration::from_secs(3);

    let (mut client, mut server) = ntlm_pair();
    let ntlm = common::measure(budget, || {
        let sealed = server.wrap(&page).unwrap();
        black_box(client.unwrap(&sealed).unwrap());
    });
    report("NTLM seal + unseal", page.len(), ntlm);

    let key = || SessionKey {
        enctype: 18,
        value: vec![7u8; 32].into(),
    };
    let mut acceptor = Sealer::new(Role::Acceptor, key(), true, 1, 1).unwrap();
    let mut initiator = Sealer::new(Role::Initiator, key(), true, 1, 1).unwrap();
    let kerberos = common::measure(budget, || {
        let sealed = acceptor.wrap(&page).unwrap();
        black_box(initiator.unwrap(&sealed).unwrap());
    });
    report("Kerberos AES-256 wrap + unwrap", page.len(), kerberos);
}
