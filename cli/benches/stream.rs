//! The product, end to end, as a user meets it: the `winrm-sessions` binary enumerating 10k,
//! 100k and 1M MSFT_SmbSession from the fixture server (a process of its own), over Basic and
//! over NTLM with message encryption, in each output format, writing to a file. For each run:
//! the client's CPU seconds and peak RSS (`/usr/bin/time`), items per second, and the raw floor
//! measured in the same run: a quick-xml `NsReader` scan of the same decrypted bytes (plus the
//! raw RC4 + HMAC-MD5 pass for NTLM), with the ratio. When pypsrp 0.9.1 is installed
//! (`pip install pypsrp==0.9.1`), it is measured on the same server too.
//!
//! `cargo bench --bench stream`; `WINRM_SESSIONS_BENCH_SIZES=10000,100000` picks the sizes.
//! Fixtures are generated once under `target/bench-fixtures`.

#[path = "../../benches/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quick_xml::events::Event;
use quick_xml::reader::NsReader;

const BINARY: &str = env!("CARGO_BIN_EXE_winrm-sessions");
const PAGE: u64 = 1000;
/// Runs of each configuration of the binary.
const RUNS: usize = 3;

fn fixtures(total: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-fixtures")
        .join(format!("smb-{total}"));
    if !dir.join("complete").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        common::write_smb_fixtures(&dir, total, PAGE);
        std::fs::write(dir.join("complete"), "").unwrap();
    }
    dir
}

/// The response bodies of a fixture directory, as the client receives them once unsealed.
fn bodies(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".response.xml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// The floor: a namespace-resolved quick-xml scan of every body that also reads the text
/// (what any consumer of the items must do), plus, for NTLM, one RC4 + HMAC-MD5 pass over the
/// same bytes. The best of three.
fn floor(bodies: &[Vec<u8>], ntlm: bool) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for body in bodies {
            let mut reader = NsReader::from_reader(body.as_slice());
            let mut seen = 0usize;
            loop {
                match reader.read_resolved_event().expect("valid XML") {
                    (_, Event::Eof) => break,
                    (_, Event::Start(_) | Event::Empty(_)) => seen += 1,
                    (_, Event::Text(t)) => seen += t.xml10_content().len(),
                    _ => {}
                }
            }
            std::hint::black_box(seen);
            if ntlm {
                let mut copy = body.clone();
                std::hint::black_box(winrm_sessions::internals::raw_ntlm_pass(&mut copy));
            }
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    best
}

fn pypsrp_available() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import importlib.metadata as m; assert m.version('pypsrp') == '0.9.1'",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn row(items: u64, client: &str, auth: &str, format: &str, usage: &common::Usage, floor: f64) {
    println!(
        "| {items:>9} | {client:<14} | {auth:<5} | {format:<5} | {:>8.2} | {:>8.1} | {:>11.0} | {:>8.3} | {:>6.2}x |",
        usage.cpu,
        usage.rss_mb,
        items as f64 / usage.wall.max(1e-3),
        floor,
        usage.cpu / floor
    );
}

fn main() {
    let sizes: Vec<u64> = std::env::var("WINRM_SESSIONS_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are numbers"))
        .collect();
    let pypsrp = pypsrp_available();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    println!(
        "stream: the winrm-sessions binary, MSFT_SmbSession from the fixture server (its own \
         process), pages of {PAGE}, output to a file{}",
        if pypsrp {
            "; pypsrp 0.9.1 on the same server"
        } else {
            "; pypsrp 0.9.1 not installed (pip install pypsrp==0.9.1 to compare)"
        }
    );
    println!();
    println!(
        "|     items | client         | auth  | fmt   | CPU s    | RSS MB   | items/s     | floor s  | ratio   |"
    );
    println!(
        "|----------:|----------------|-------|-------|---------:|---------:|------------:|---------:|--------:|"
    );
    for &items in &sizes {
        let dir = fixtures(items);
        let bodies = bodies(&dir);
        let (mut server, url) = common::serve_fixtures(BINARY, &dir);
        for auth in ["basic", "ntlm"] {
            let floor = floor(&bodies, auth == "ntlm");
            for format in ["json", "csv", "table"] {
                let mut command = Command::new(BINARY);
                command
                    .args(["smb-sessions", &url, "--auth", auth, "--allow-plaintext"])
                    .args(["--format", format, "--max-elements", &PAGE.to_string()])
                    .args(["--host-timeout", "3600", "--timeout", "120"])
                    .env("WINRM_USER", "demo")
                    .env("WINRM_PASSWORD", "demo")
                    .env("KRB5CCNAME", "FILE:/nonexistent")
                    .stdout(Stdio::null());
                // Output to a file, as a user redirects it.
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("exec \"$0\" \"$@\" > {}", out.display()))
                    .arg(command.get_program())
                    .args(command.get_args())
                    .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))));
                // The median of three runs (CPU), the highest peak (RSS): one run on a shared
                // machine is a few percent off either way.
                let mut runs: Vec<common::Usage> = (0..RUNS)
                    .map(|_| {
                        let usage = common::timed(&mut shell, true);
                        let lines = std::fs::read_to_string(&out)
                            .map(|t| t.lines().count() as u64)
                            .unwrap_or(0);
                        assert!(lines >= items, "{format}: {lines} lines for {items} items");
                        usage
                    })
                    .collect();
                let rss_mb = runs.iter().map(|u| u.rss_mb).fold(0.0, f64::max);
                runs.sort_by(|a, b| a.cpu.total_cmp(&b.cpu));
                let mut usage = runs.swap_remove(RUNS / 2);
                usage.rss_mb = rss_mb;
                row(items, "winrm-sessions", auth, format, &usage, floor);
            }
            if pypsrp && items <= 100_000 {
                let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pypsrp_enumerate.py");
                let mut command = Command::new("python3");
                command.args([script, &url, auth, out.to_str().unwrap()]);
                let usage = common::timed(&mut command, true);
                row(items, "pypsrp 0.9.1", auth, "json", &usage, floor);
            }
        }
        let _ = server.kill();
        let _ = server.wait();
        std::thread::sleep(Duration::from_millis(100));
    }
    println!();
    println!(
        "CPU: user + system seconds of the client process, the median of {RUNS} runs (RSS: the \
         highest of them); floor: a namespace-resolved quick-xml scan of the same decrypted bytes \
         (and for NTLM one RC4 + HMAC-MD5 pass over them), in this process; ratio = client CPU / \
         floor."
    );
}
