//! End to end: 100,000 MSFT_SmbSession from the fixture server (a separate process, so that its
//! memory is not counted), through HTTP, the parser and serde, as a typed stream. Reports items
//! per second and the client's peak heap, which must stay bounded by one page, not the total.
//!
//! `cargo bench --bench enumerate`

#[path = "../../benches/common/mod.rs"]
mod common;

use std::time::Instant;

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::{Auth, Client, Credentials};

#[global_allocator]
static ALLOC: common::MeteredAlloc = common::MeteredAlloc;

const TOTAL: u64 = 100_000;
const PAGE: u64 = 500;
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    common::write_smb_fixtures(dir.path(), TOTAL, PAGE);
    let (mut server, url) =
        common::serve_fixtures(env!("CARGO_BIN_EXE_winrm-sessions"), dir.path());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "enumerate: {TOTAL} MSFT_SmbSession over loopback HTTP, pages of {PAGE}, typed stream"
    );
    for (auth, label) in [
        (
            Auth::Negotiate,
            "Negotiate (NTLM), sealed with WinRM message encryption",
        ),
        (Auth::Basic, "Basic, plain HTTP"),
    ] {
        let client = Client::builder(&url)
            .credentials(Credentials::new("demo", "demo"))
            .auth(auth)
            .danger_allow_basic_over_http(true)
            .max_elements(PAGE as u32)
            .build()
            .unwrap();
        println!(" {label}:");
        measure(&runtime, &client);
    }
    println!(
        "  process peak RSS (VmHWM) {} KiB",
        vm_hwm_kib().map_or("?".into(), |k| k.to_string())
    );
    let _ = server.kill();
    let _ = server.wait();
}

fn measure(runtime: &tokio::runtime::Runtime, client: &Client) {
    let mut rates = Vec::new();
    for run in 1..=3 {
        let baseline = common::reset_peak();
        let started = Instant::now();
        let (count, last_id) = runtime.block_on(async {
            let mut stream = client.enumerate::<SmbSession>();
            let mut count = 0u64;
            let mut last = 0;
            while let Some(session) = stream.try_next().await.expect("enumerates") {
                count += 1;
                last = session.session_id;
            }
            (count, last)
        });
        let elapsed = started.elapsed();
        assert_eq!(count, TOTAL);
        assert_eq!(last_id, 8_813_272_891_621 + TOTAL - 1);
        let peak = common::peak() - baseline;
        let rate = count as f64 / elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "  run {run}: {:>7.0} items/s ({:.2} s); client peak heap above baseline {:.2} MB",
            rate,
            elapsed.as_secs_f64(),
            peak as f64 / 1e6
        );
    }
    rates.sort_by(f64::total_cmp);
    println!("  median {:.0} items/s", rates[1]);
}
