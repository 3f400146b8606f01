//! Shared by the benchmarks: Windows-shaped MSFT_SmbSession pages, a heap meter, a timer, and
//! `/usr/bin/time` around the binary.

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes and remembers the peak since the last reset.
pub struct MeteredAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for MeteredAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

/// Starts a new peak measurement from the current live size.
pub fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// One MSFT_SmbSession as Windows writes it.
pub fn smb_item(i: u64) -> String {
    format!(
        concat!(
            r#"<p:MSFT_SmbSession xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
            r#"xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession" "#,
            r#"xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xsi:type="p:MSFT_SmbSession_Type">"#,
            "<p:ClientComputerName>10.{}.{}.{}</p:ClientComputerName>",
            r"<p:ClientUserName>CONTOSO\user{:06} &amp; co</p:ClientUserName>",
            "<p:ClusterNodeName>FS01</p:ClusterNodeName><p:Dialect>3.1.1</p:Dialect>",
            "<p:NumOpens>{}</p:NumOpens><p:ScopeName>FS01</p:ScopeName>",
            "<p:SecondsExists>{}</p:SecondsExists><p:SecondsIdle>{}</p:SecondsIdle>",
            "<p:SessionId>{}</p:SessionId><p:SmbInstance>0</p:SmbInstance>",
            r#"<p:TransportName xsi:nil="true"/></p:MSFT_SmbSession>"#
        ),
        i / 65536 % 256,
        i / 256 % 256,
        i % 256,
        i,
        i % 97,
        i * 7 % 86400,
        i % 600,
        8_813_272_891_621 + i
    )
}

pub const ENVELOPE_HEAD: &str = concat!(
    r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
    r#"xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
    r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" "#,
    r#"xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#
);

/// A PullResponse holding `items` (with a context when it is not the last page).
pub fn pull_response(
    first: u64,
    count: u64,
    relates_to: &str,
    next_context: Option<&str>,
) -> String {
    let mut out = String::with_capacity(count as usize * 800 + 1024);
    out.push_str(ENVELOPE_HEAD);
    out.push_str("<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</a:Action>");
    out.push_str("<a:MessageID>uuid:00000000-0000-0000-0000-000000000000</a:MessageID>");
    out.push_str("<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>");
    out.push_str(&format!(
        "<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body><n:PullResponse>"
    ));
    if let Some(context) = next_context {
        out.push_str(&format!(
            "<n:EnumerationContext>{context}</n:EnumerationContext>"
        ));
    }
    out.push_str("<n:Items>");
    for i in first..first + count {
        out.push_str(&smb_item(i));
    }
    out.push_str("</n:Items>");
    if next_context.is_none() {
        out.push_str("<n:EndOfSequence/>");
    }
    out.push_str("</n:PullResponse></s:Body></s:Envelope>");
    out
}

/// Runs `f` until `budget` is spent (at least 5 times) and returns the median duration.
pub fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || start.elapsed() < budget {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// The shortest of three walls: one host's time, on which ideals are built, so that a hiccup
/// does not flatter the ratios.
pub fn best_of_three(mut wall: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| wall()).fold(f64::MAX, f64::min)
}

/// The resource URI of MSFT_SmbSession.
pub const SMB_RESOURCE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession";

fn request(action: &str, id: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#,
            "<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/{}</a:Action><a:MessageID>{}</a:MessageID>",
            "<w:ResourceURI>{}</w:ResourceURI></s:Header><s:Body>{}</s:Body></s:Envelope>"
        ),
        action, id, SMB_RESOURCE, body
    )
}

/// Writes a recorded conversation of `total` MSFT_SmbSession: an optimized Enumerate with one
/// item, then Pulls of `page` items, as fixture files the fixture server replays.
pub fn write_smb_fixtures(dir: &std::path::Path, total: u64, page: u64) {
    let context = |n: u64| format!("uuid:00000000-0000-0000-0000-{n:012}");
    let first = pull_response(0, 1, "uuid:E", Some(&context(0)))
        .replace("PullResponse", "EnumerateResponse")
        .replace("<n:Items>", "<w:Items>")
        .replace("</n:Items>", "</w:Items>");
    std::fs::write(
        dir.join("00000-Enumerate.request.xml"),
        request("Enumerate", "uuid:E", "<n:Enumerate/>"),
    )
    .unwrap();
    std::fs::write(dir.join("00000-Enumerate.response.xml"), first).unwrap();
    let mut next = 1;
    let mut n = 0;
    while next < total {
        let count = page.min(total - next);
        let id = format!("uuid:P{n}");
        let last = next + count >= total;
        let response = pull_response(next, count, &id, (!last).then(|| context(n + 1)).as_deref());
        let body = format!(
            "<n:Pull><n:EnumerationContext>{}</n:EnumerationContext></n:Pull>",
            context(n)
        );
        std::fs::write(
            dir.join(format!("{:05}-Pull.request.xml", n + 1)),
            request("Pull", &id, &body),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{:05}-Pull.response.xml", n + 1)),
            response,
        )
        .unwrap();
        next += count;
        n += 1;
    }
}

/// Starts `winrm-sessions serve-fixtures DIR` in its own process; returns it and its URL.
pub fn serve_fixtures(binary: &str, dir: &std::path::Path) -> (std::process::Child, String) {
    serve_fixtures_with(binary, dir, &[])
}

/// [`serve_fixtures`] with more options (`--latency 50ms`).
pub fn serve_fixtures_with(
    binary: &str,
    dir: &std::path::Path,
    options: &[&str],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut server = std::process::Command::new(binary)
        .args(["serve-fixtures", dir.to_str().unwrap()])
        .args(options)
        .env("WINRM_PASSWORD", "demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the fixture server");
    let mut url = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    (server, url.trim().to_owned())
}

/// CPU seconds (user + system) a running process has used so far, from `/proc/PID/stat`
/// (in clock ticks of 1/100 s, the unit Linux gives there whatever the kernel's own tick).
pub fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name, in parentheses, may hold spaces: fields are counted after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The least wall time `cpu` seconds of work can take on this machine's cores: a run whose
/// wall is near it was bound by CPU, not by waiting.
pub fn cpu_floor(cpu: f64) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpu / cores as f64
}

/// What `/usr/bin/time` says of one run.
pub struct Usage {
    pub cpu: f64,
    pub rss_mb: f64,
    pub wall: f64,
}

/// Runs `command` under `/usr/bin/time`, its stdout discarded; with `must_succeed`, a failure
/// stops the benchmark.
pub fn timed(command: &mut Command, must_succeed: bool) -> Usage {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut time = Command::new("/usr/bin/time");
    time.args(["-f", "%U %S %M", "-o"])
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => time.env(key, value),
            None => time.env_remove(key),
        };
    }
    // The wall is timed here: `/usr/bin/time` gives it in hundredths of a second, 5% of one
    // host's 0.2 s, on which every fleet's ideal is built.
    let started = Instant::now();
    let status = time
        .stdout(Stdio::null())
        .stderr(if must_succeed {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .status()
        .expect("/usr/bin/time runs (apt-get install time)");
    let wall = started.elapsed().as_secs_f64();
    assert!(!must_succeed || status.success(), "{command:?} failed");
    let text = std::fs::read_to_string(report.path()).unwrap();
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    Usage {
        cpu: fields[0] + fields[1],
        rss_mb: fields[2] / 1024.0,
        wall,
    }
}
