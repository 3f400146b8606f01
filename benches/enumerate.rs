//! End to end: 100,000 MSFT_SmbSession from the fixture server (a separate process, so that its
//! memory is not counted), through HTTP, the parser and serde, as a typed stream. Reports items
//! per second and the client's peak heap, which must stay bounded by one page, not the total.
//!
//! `cargo bench --bench enumerate`

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::{Auth, Client, Credentials};

#[global_allocator]
static ALLOC: common::MeteredAlloc = common::MeteredAlloc;

const TOTAL: u64 = 100_000;
const PAGE: u64 = 500;
const RESOURCE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession";

fn request(action: &str, id: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#,
            "<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/{}</a:Action><a:MessageID>{}</a:MessageID>",
            "<w:ResourceURI>{}</w:ResourceURI></s:Header><s:Body>{}</s:Body></s:Envelope>"
        ),
        action, id, RESOURCE, body
    )
}

/// Writes the recorded conversation: an optimized Enumerate with one item, then Pulls.
fn write_fixtures(dir: &std::path::Path) {
    let context = |n: u64| format!("uuid:00000000-0000-0000-0000-{n:012}");
    let first = common::pull_response(0, 1, "uuid:E", Some(&context(0)))
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
    let mut page = 0;
    while next < TOTAL {
        let count = PAGE.min(TOTAL - next);
        let id = format!("uuid:P{page}");
        let last = next + count >= TOTAL;
        let response = common::pull_response(
            next,
            count,
            &id,
            (!last).then(|| context(page + 1)).as_deref(),
        );
        let body = format!(
            "<n:Pull><n:EnumerationContext>{}</n:EnumerationContext></n:Pull>",
            context(page)
        );
        std::fs::write(
            dir.join(format!("{:05}-Pull.request.xml", page + 1)),
            request("Pull", &id, &body),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{:05}-Pull.response.xml", page + 1)),
            response,
        )
        .unwrap();
        next += count;
        page += 1;
    }
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    write_fixtures(dir.path());
    let mut server = Command::new(env!("CARGO_BIN_EXE_winrm-sessions"))
        .args(["serve-fixtures", dir.path().to_str().unwrap()])
        .env("WINRM_PASSWORD", "demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the fixture server");
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_owned();

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
