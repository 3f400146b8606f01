//! `watch` over a fleet: 1,000 hosts with 100 MSFT_SmbSession each (the fixture server in its
//! own process, pages as Windows sends them), the binary under `/usr/bin/time`. Reports the
//! time of one poll cycle, then 100 cycles with `--store`: time per cycle, peak RSS, and the
//! store's size after them.
//!
//! `cargo bench -p winrm-sessions-cli --bench watch`; `WINRM_SESSIONS_BENCH_CYCLES=20` for a
//! shorter run.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_winrm-sessions");
const HOSTS: usize = 1000;
const SESSIONS: u64 = 100;

fn size(path: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .sum()
}

fn main() {
    let cycles: u64 = std::env::var("WINRM_SESSIONS_BENCH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let fixtures = tempfile::tempdir().unwrap();
    common::write_smb_fixtures(fixtures.path(), SESSIONS, SESSIONS);
    let (mut server, url) = common::serve_fixtures(BINARY, fixtures.path());
    let work = tempfile::tempdir().unwrap();
    let hosts = work.path().join("hosts.txt");
    let list: String = (0..HOSTS).map(|i| format!("{url}?host={i}\n")).collect();
    std::fs::write(&hosts, list).unwrap();
    let store = work.path().join("watch.db");
    let watch = |count: u64, with_store: bool| {
        let mut command = Command::new(BINARY);
        command
            .args(["watch", "smb-sessions", "--hosts-file"])
            .arg(&hosts)
            .args(["--auth", "basic", "--allow-plaintext", "--retries", "0"])
            .args([
                "--concurrency",
                "64",
                "--interval",
                "1ms",
                "--format",
                "json",
            ])
            .args(["--count", &count.to_string(), "--user", "demo"])
            .env("WINRM_PASSWORD", "demo");
        if with_store {
            command.arg("--store").arg(&store);
        }
        command
    };
    println!(
        "watch: {HOSTS} hosts x {SESSIONS} MSFT_SmbSession (Enumerate + Pull each), Basic over loopback, concurrency 64, NDJSON to /dev/null"
    );
    let one = common::timed(&mut watch(1, false), true);
    println!(
        "  one poll cycle: {:.2} s wall, {:.2} s CPU, peak RSS {:.1} MB ({} sessions)",
        one.wall,
        one.cpu,
        one.rss_mb,
        HOSTS as u64 * SESSIONS
    );
    let many = common::timed(&mut watch(cycles, true), true);
    println!(
        "  {cycles} cycles with --store: {:.2} s per cycle ({:.2} s CPU per cycle), peak RSS {:.1} MB, store {:.1} MB",
        many.wall / cycles as f64,
        many.cpu / cycles as f64,
        many.rss_mb,
        size(&store) as f64 / 1e6
    );
    let _ = server.kill();
    let _ = server.wait();
}
