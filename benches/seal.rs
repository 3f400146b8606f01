//! Unsealing a large page, the client's side of message encryption: NTLM (RC4 + HMAC-MD5) and
//! Kerberos Wrap tokens (AES-256-CTS + HMAC-SHA1-96), each next to the raw primitive pass over
//! the same bytes in the same run, so the figure says how close to its primitives it runs.
//!
//! `cargo bench --bench seal`

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use winrm_sessions::internals::{SealPair, raw_aes_pass, raw_ntlm_pass};

#[global_allocator]
static ALLOC: common::MeteredAlloc = common::MeteredAlloc;

/// Median time of `open` over fresh sealed copies (sealing is not timed).
fn unseal(mut pair: SealPair, page: &[u8], budget: Duration) -> Duration {
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 20 || start.elapsed() < budget {
        let (header, mut data) = pair.seal_response(page);
        let t = Instant::now();
        let plain = pair.open_response(&header, &mut data);
        samples.push(t.elapsed());
        assert_eq!(&data[plain], page);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn raw(page: &[u8], budget: Duration, pass: impl Fn(&mut [u8])) -> Duration {
    let mut data = page.to_vec();
    data.truncate(data.len() / 16 * 16);
    common::measure(budget, || {
        pass(&mut data);
        black_box(&data);
    })
}

fn report(name: &str, bytes: usize, unsealed: Duration, floor: Duration) {
    let rate = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "{name:<28} {:>7.0} MB/s unseal   raw primitives {:>7.0} MB/s   ({:.2}x the raw time)",
        rate(unsealed),
        rate(floor),
        unsealed.as_secs_f64() / floor.as_secs_f64()
    );
}

fn main() {
    let page = common::pull_response(0, 1000, "uuid:1", Some("uuid:2")).into_bytes();
    let budget = Duration::from_secs(3);
    println!(
        "seal: one {:.2} MB PullResponse (1000 MSFT_SmbSession) opened in place by the client",
        page.len() as f64 / 1e6
    );
    let ntlm = unseal(SealPair::ntlm(), &page, budget);
    let ntlm_floor = raw(&page, budget, |d| {
        black_box(raw_ntlm_pass(d));
    });
    report("NTLM (RC4, HMAC-MD5)", page.len(), ntlm, ntlm_floor);
    let kerberos = unseal(SealPair::kerberos(), &page, budget);
    let aes_floor = raw(&page, budget, |d| {
        black_box(raw_aes_pass(d));
    });
    report("Kerberos (AES-256, SHA1)", page.len(), kerberos, aes_floor);
}
