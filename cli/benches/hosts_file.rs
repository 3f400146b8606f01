//! A fleet bounded by its concurrency, not its hosts file: the binary given 100,000 targets that
//! all refuse at once (closed loopback ports), `--retries 0`, holds tasks for `--concurrency`
//! hosts only. Target: ≤ 100 MB peak RSS (`/usr/bin/time`), under Basic and NTLM client setup.
//!
//! `cargo bench -p winrm-sessions-cli --bench hosts_file`

#[path = "../../benches/common/mod.rs"]
mod common;

/// The binary on a hosts file of `hosts` targets that all refuse at once (closed loopback
/// ports), `--retries 0`, under each authentication's client setup.
fn hosts_file(hosts: usize) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let list: String = (0..hosts)
        // Distinct targets (a target named twice is asked once) on closed ports.
        .map(|i| format!("http://127.0.0.1:{}/wsman?host={i}\n", 1 + i % 5))
        .collect();
    std::fs::write(file.path(), list).unwrap();
    for auth in ["basic", "ntlm"] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_winrm-sessions"));
        command
            .args(["smb-sessions", "--hosts-file"])
            .arg(file.path())
            .args([
                "--auth",
                auth,
                "--allow-plaintext",
                "--retries",
                "0",
                "--format",
                "json",
            ])
            .args(["--user", "demo"])
            .env("WINRM_PASSWORD", "demo");
        let usage = common::timed(&mut command, false);
        println!(
            "  binary, hosts file of {hosts} refused targets, --auth {auth}, concurrency 16: {:.2} s wall, {:.2} s CPU, peak RSS {:.1} MB (target <= 100 MB)",
            usage.wall, usage.cpu, usage.rss_mb
        );
        assert!(usage.rss_mb <= 100.0, "memory follows the hosts file");
    }
}

fn main() {
    println!("hosts_file: one binary run per authentication");
    hosts_file(100_000);
}
