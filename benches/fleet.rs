//! Fleet scaling with simulated latency: with every request delayed by the server, the total
//! time for H hosts at concurrency C should stay near ceil(H / C) × one host's time; 1,000
//! targets in one process must not run out of file descriptors or memory. (The binary on a hosts
//! file of 100,000 targets: `cargo bench -p winrm-sessions-cli --bench hosts_file`.)
//!
//! `cargo bench --bench fleet`

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::fleet::{Fleet, HostEvent};
use winrm_sessions::testing::{FixtureServer, FixtureSet};
use winrm_sessions::{Client, Credentials};

#[global_allocator]
static ALLOC: common::MeteredAlloc = common::MeteredAlloc;

const LATENCY: Duration = Duration::from_millis(50);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `hosts` targets at `concurrency`; returns (elapsed, items, failures, peak fds).
async fn run(url: &str, hosts: usize, concurrency: usize) -> (Duration, usize, usize, usize) {
    let fleet = Fleet::new(|target| {
        Client::builder(target)
            .credentials(Credentials::new("demo", "demo"))
            .build()
    })
    .concurrency(concurrency)
    .per_host_deadline(Duration::from_secs(120));
    let targets: Vec<String> = (0..hosts).map(|i| format!("{url}?host={i}")).collect();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampled = peak.clone();
    let sampler = tokio::spawn(async move {
        loop {
            sampled.fetch_max(open_fds(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let started = Instant::now();
    let mut events = fleet.enumerate::<SmbSession>(targets);
    let (mut items, mut failed) = (0, 0);
    while let Some(event) = events.next().await {
        match event {
            HostEvent::Item { .. } => items += 1,
            HostEvent::Failed { error, .. } => {
                failed += 1;
                eprintln!("{error}");
            }
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    sampler.abort();
    let peak_fds = peak.load(std::sync::atomic::Ordering::Relaxed);
    (elapsed, items, failed, peak_fds)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let set = FixtureSet::from_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo")).unwrap();
        let server = FixtureServer::builder(set).latency(LATENCY).start().await.unwrap();
        println!(
            "fleet: MSFT_SmbSession (Enumerate + 3 Pulls, Negotiate with encryption) per host, {} ms server latency per request",
            LATENCY.as_millis()
        );
        let (one, items, failed, _) = run(server.url(), 1, 1).await;
        assert_eq!((items, failed), (7, 0));
        println!("  one host alone: {:.0} ms", one.as_secs_f64() * 1e3);
        for (hosts, concurrency) in [(200usize, 20usize), (200, 50)] {
            let (elapsed, items, failed, fds) = run(server.url(), hosts, concurrency).await;
            assert_eq!((items, failed), (hosts * 7, 0));
            let ideal = one.as_secs_f64() * hosts.div_ceil(concurrency) as f64;
            println!(
                "  {hosts} hosts at concurrency {concurrency}: {:.2} s; ideal ceil(H/C) x one host = {:.2} s; ratio {:.2}; peak open fds {fds}",
                elapsed.as_secs_f64(),
                ideal,
                elapsed.as_secs_f64() / ideal
            );
        }
        let baseline = common::reset_peak();
        let (elapsed, items, failed, fds) = run(server.url(), 1000, 100).await;
        assert_eq!((items, failed), (7000, 0));
        println!(
            "  1000 hosts at concurrency 100: {:.2} s, {items} items; peak open fds {fds} (client and server in one process); \
             peak heap above baseline {:.1} MB; VmHWM {} KiB",
            elapsed.as_secs_f64(),
            (common::peak() - baseline) as f64 / 1e6,
            vm_hwm_kib()
        );
    });
}
