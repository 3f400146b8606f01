//! Fleets at real latency, through the binary: every answer of the fixture server (in its own
//! process, `serve-fixtures --latency 50ms`) comes 50 ms late, as from a file server across a
//! WAN, and the binary (under `/usr/bin/time`) audits H hosts at concurrency C from a hosts
//! file. Reports wall, ideal = ceil(H / C) × one host's wall, their ratio, peak RSS and CPU.
//! Targets: ratio ≤ 1.1; peak RSS ≤ 150 MB at concurrency 1,000; CPU linear in hosts.
//!
//! The server shares the machine's cores: its CPU for the run is reported too, and the floor,
//! (client CPU + server CPU) / cores, the least wall the work allows here. A wall near the floor
//! and above the ideal says the cores, not the waiting, set the time.
//!
//! Beside the binary, on the same server and hosts, a raw client (see
//! `benches/common/raw_fleet.rs`: the same requests, each answer read into a buffer and
//! dropped; `format` "raw") gives the ratio this machine allows any client, and what the bytes
//! cost in CPU before any typing; "raw+scan" also scans each answer as XML, the least a client
//! that reads the XML does.
//!
//! The hosts are distinct targets (`URL?host=N`) on one loopback server. The open-file limit is
//! raised as far as the hard limit allows; a run the limit cannot carry is said and skipped.
//!
//! `cargo bench -p winrm-sessions-cli --bench fleet`

#[path = "../../benches/common/mod.rs"]
mod common;
#[path = "../../benches/common/open_files.rs"]
mod open_files;
#[path = "../../benches/common/raw_fleet.rs"]
mod raw_fleet;

use open_files::raise_open_files;

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_winrm-sessions");
const LATENCY_MS: u64 = 50;
/// Sessions per host, as an Enumerate of one and Pulls of `PAGE`: four requests a host.
const SESSIONS: u64 = 10;
const PAGE: u64 = 3;
/// The formats of runs by the raw client rather than the binary, and what it does with each
/// answer.
const RAW: [(&str, raw_fleet::Reading); 2] = [
    ("raw", raw_fleet::Reading::Read),
    ("raw+scan", raw_fleet::Reading::Scan),
];

/// What the raw client does in a run of `format`, if the raw client runs it.
fn raw_reading(format: &str) -> Option<raw_fleet::Reading> {
    RAW.iter().find(|(f, _)| *f == format).map(|(_, r)| *r)
}

struct Run {
    hosts: usize,
    concurrency: usize,
    auth: &'static str,
    format: &'static str,
}

impl Run {
    fn new(hosts: usize, concurrency: usize, auth: &'static str, format: &'static str) -> Self {
        Self {
            hosts,
            concurrency,
            auth,
            format,
        }
    }

    /// The one-host run whose wall this run's ideal is built on: the binary's in json, or the
    /// raw client's own.
    fn one_host(&self) -> (&'static str, &'static str) {
        match raw_reading(self.format) {
            Some(_) => (self.auth, self.format),
            None => (self.auth, "json"),
        }
    }
}

fn run(url: &str, fixtures: &std::path::Path, dir: &std::path::Path, run: &Run) -> common::Usage {
    let hosts = dir.join(format!("hosts-{}.txt", run.hosts));
    if !hosts.exists() {
        let list: String = (0..run.hosts)
            .map(|i| format!("{url}?host={i}\n"))
            .collect();
        std::fs::write(&hosts, list).unwrap();
    }
    if let Some(reading) = raw_reading(run.format) {
        return common::timed(
            &mut raw_fleet::command(&hosts, fixtures, run.concurrency, reading),
            true,
        );
    }
    let mut command = Command::new(BINARY);
    command
        .args(["smb-sessions", "--hosts-file"])
        .arg(&hosts)
        .args(["--auth", run.auth, "--allow-plaintext", "--retries", "0"])
        .args(["--concurrency", &run.concurrency.to_string()])
        .args(["--format", run.format, "--user", "demo"])
        .env("WINRM_PASSWORD", "demo");
    common::timed(&mut command, true)
}

fn main() {
    raw_fleet::run_if_asked();
    let limit = raise_open_files();
    let fixtures = tempfile::tempdir().unwrap();
    common::write_smb_fixtures(fixtures.path(), SESSIONS, PAGE);
    let (mut server, url) = common::serve_fixtures_with(
        BINARY,
        fixtures.path(),
        &["--latency", &format!("{LATENCY_MS}ms")],
    );
    let work = tempfile::tempdir().unwrap();
    println!(
        "fleet: the binary, MSFT_SmbSession ({SESSIONS} a host, 4 requests), {LATENCY_MS} ms latency on every answer; open-file limit {limit}"
    );
    println!(
        "| hosts | concurrency | auth | format | wall s | ideal s | ratio | peak RSS MB | CPU s | server CPU s | floor s |"
    );
    println!("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut one_host = std::collections::HashMap::new();
    let raw_formats = RAW.map(|(format, _)| format);
    let one_host_runs = [("basic", "json"), ("ntlm", "json")]
        .into_iter()
        .chain(raw_formats.map(|format| ("basic", format)));
    for (auth, format) in one_host_runs {
        let one = Run::new(1, 1, auth, format);
        let best = common::best_of_three(|| run(&url, fixtures.path(), work.path(), &one).wall);
        println!("| 1 | 1 | {auth} | {format} | {best:.3} | {best:.3} | 1.00 | | | | |");
        one_host.insert((auth, format), best);
    }
    // Each Basic fleet by the binary in json, then by the raw client reading and scanning.
    let mut runs = Vec::new();
    for (hosts, concurrency) in [(1_000, 100), (1_000, 1_000), (10_000, 1_000)] {
        for format in ["json"].into_iter().chain(raw_formats) {
            runs.push(Run::new(hosts, concurrency, "basic", format));
        }
    }
    runs.extend([
        Run::new(10_000, 1_000, "basic", "csv"),
        Run::new(10_000, 1_000, "basic", "table"),
        Run::new(1_000, 100, "ntlm", "json"),
        Run::new(10_000, 1_000, "ntlm", "json"),
    ]);
    for r in &runs {
        // Each host in flight holds up to two descriptors, the server one more per host.
        let needed = 3 * r.concurrency as u64 + 256;
        if limit < needed {
            println!(
                "| {} | {} | {} | {} | skipped: the open-file limit {limit} is too low for concurrency {} (needs about {needed}; raise ulimit -Hn) | | | | | | |",
                r.hosts, r.concurrency, r.auth, r.format, r.concurrency
            );
            continue;
        }
        let server_before = common::process_cpu(server.id());
        let usage = run(&url, fixtures.path(), work.path(), r);
        let server_cpu = common::process_cpu(server.id()) - server_before;
        let ideal = r.hosts.div_ceil(r.concurrency) as f64 * one_host[&r.one_host()];
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} |",
            r.hosts,
            r.concurrency,
            r.auth,
            r.format,
            usage.wall,
            ideal,
            usage.wall / ideal,
            usage.rss_mb,
            usage.cpu,
            server_cpu,
            common::cpu_floor(usage.cpu + server_cpu)
        );
    }
    let _ = server.kill();
}
