//! `watch` over a fleet: 1,000 hosts with 100 MSFT_SmbSession each (the fixture server in its
//! own process, pages as Windows sends them), the binary under `/usr/bin/time`. Reports the
//! time of one poll cycle, then 100 cycles with `--store`: time per cycle, peak RSS, and the
//! store's size after them.
//!
//! `cargo bench -p winrm-sessions-cli --bench watch`; `WINRM_SESSIONS_BENCH_CYCLES=20` for a
//! shorter run.

#[path = "../../benches/common/mod.rs"]
mod common;
#[path = "../../benches/common/open_files.rs"]
mod open_files;
#[path = "../../benches/common/raw_fleet.rs"]
mod raw_fleet;

use open_files::raise_open_files;

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
    raw_fleet::run_if_asked();
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
    at_fleet_scale();
}

/// 10,000 hosts × 100 sessions (a million sessions) at concurrency 1,000, every answer 50 ms
/// late: what the watch keeps between polls must fit in 300 MB, and a cycle should take about
/// ceil(10,000 / 1,000) × one host's time. `WINRM_SESSIONS_BENCH_FLEET_HOSTS` for fewer hosts.
/// The floor is (client CPU + the server's) / cores: the least wall the work allows here. A raw
/// client's poll of the same fleet (the same requests, each answer read into a buffer and
/// dropped, or also scanned as XML: `benches/common/raw_fleet.rs`) shows the cycle this machine
/// allows any client, and any client that reads the XML.
fn at_fleet_scale() {
    let hosts: usize = std::env::var("WINRM_SESSIONS_BENCH_FLEET_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let concurrency = 1_000.min(hosts);
    raise_open_files();
    let fixtures = tempfile::tempdir().unwrap();
    common::write_smb_fixtures(fixtures.path(), SESSIONS, SESSIONS);
    let (mut server, url) =
        common::serve_fixtures_with(BINARY, fixtures.path(), &["--latency", "50ms"]);
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("hosts.txt");
    let lines: String = (0..hosts).map(|i| format!("{url}?host={i}\n")).collect();
    std::fs::write(&list, lines).unwrap();
    let store = work.path().join("watch.db");
    let watch = |targets: &Path, count: u64, with_store: bool, c: usize| {
        let mut command = Command::new(BINARY);
        command
            .args(["watch", "smb-sessions", "--hosts-file"])
            .arg(targets)
            .args(["--auth", "basic", "--allow-plaintext", "--retries", "0"])
            .args(["--concurrency", &c.to_string(), "--interval", "1ms"])
            .args(["--format", "json", "--count", &count.to_string()])
            .args(["--user", "demo"])
            .env("WINRM_PASSWORD", "demo");
        if with_store {
            command.arg("--store").arg(&store);
        }
        common::timed(&mut command, true)
    };
    let single = work.path().join("one.txt");
    std::fs::write(&single, format!("{url}?host=0\n")).unwrap();
    let one_host = common::best_of_three(|| watch(&single, 1, false, 1).wall);
    let ideal = hosts.div_ceil(concurrency) as f64 * one_host;
    println!(
        "watch at fleet scale: {hosts} hosts x {SESSIONS} sessions, concurrency {concurrency}, 50 ms latency; one host alone {one_host:.3} s, ideal cycle {ideal:.2} s"
    );
    for (reading, name) in [
        (raw_fleet::Reading::Read, "raw client, one poll"),
        (
            raw_fleet::Reading::Scan,
            "raw client scanning the XML, one poll",
        ),
    ] {
        let raw_one_host = common::best_of_three(|| {
            common::timed(
                &mut raw_fleet::command(&single, fixtures.path(), 1, reading),
                true,
            )
            .wall
        });
        let raw_ideal = hosts.div_ceil(concurrency) as f64 * raw_one_host;
        let server_before = common::process_cpu(server.id());
        let raw = common::timed(
            &mut raw_fleet::command(&list, fixtures.path(), concurrency, reading),
            true,
        );
        let server_cpu = common::process_cpu(server.id()) - server_before;
        println!(
            "  {name}: {:.2} s wall ({:.2} x its ideal of {raw_ideal:.2} s), {:.2} s CPU, peak RSS {:.1} MB; server {:.2} s CPU, floor {:.2} s",
            raw.wall,
            raw.wall / raw_ideal,
            raw.cpu,
            raw.rss_mb,
            server_cpu,
            common::cpu_floor(raw.cpu + server_cpu)
        );
    }
    for cycles in [1u64, 3] {
        let server_before = common::process_cpu(server.id());
        let usage = watch(&list, cycles, false, concurrency);
        let server_cpu = common::process_cpu(server.id()) - server_before;
        println!(
            "  {cycles} cycle(s): {:.2} s wall ({:.2} x ideal per cycle), {:.2} s CPU, peak RSS {:.1} MB; server {:.2} s CPU, floor {:.2} s",
            usage.wall,
            usage.wall / cycles as f64 / ideal,
            usage.cpu,
            usage.rss_mb,
            server_cpu,
            common::cpu_floor(usage.cpu + server_cpu)
        );
    }
    let first = watch(&list, 1, true, concurrency);
    let after_first = size(&store);
    let again = watch(&list, 1, true, concurrency);
    println!(
        "  --store: first cycle {:.2} s, peak RSS {:.1} MB, store {:.1} MB; a cycle with no change {:.2} s, peak RSS {:.1} MB, store grew by {} bytes",
        first.wall,
        first.rss_mb,
        after_first as f64 / 1e6,
        again.wall,
        again.rss_mb,
        size(&store) as i64 - after_first as i64
    );
    let _ = server.kill();
    let _ = server.wait();
}
