//! The command line streams whatever the server does: output flows as pages arrive, memory stays
//! bounded by a page or two, and records already written are never written again.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{
    Behavior, endless_page, hostile_server, hostile_server_seeing, soap, watch_memory,
    watch_memory_until,
};

use crate::bin::smb_sessions as cli;

fn session_ids(ndjson: &str) -> Vec<u64> {
    crate::bin::session_ids(ndjson.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_ends_streams_until_the_deadline_in_bounded_memory() {
    let (url, _server) = hostile_server(|n| Behavior::Soap(endless_page(n, 200))).await;
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = cli(
        &url,
        &["--format", "json", "--host-timeout", "3", "--retries", "0"],
    )
    .stdout(Stdio::from(out.reopen().unwrap()))
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let peak = tokio::task::spawn_blocking(move || {
        let peak = watch_memory(&mut child, Duration::from_secs(30));
        (peak, child.wait_with_output().unwrap())
    })
    .await
    .unwrap();
    let (peak_mb, output) = peak;
    assert_eq!(
        output.status.code(),
        Some(1),
        "the host failed at its deadline"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("deadline"), "{stderr}");
    let ids = session_ids(&std::fs::read_to_string(out.path()).unwrap());
    assert!(
        ids.len() >= 2_000,
        "records were written as they came: {}",
        ids.len()
    );
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no record twice"
    );
    eprintln!(
        "peak {peak_mb:.1} MB, {} records before the deadline",
        ids.len()
    );
    // README: 18 MB for the release build; the tests run the debug build, about 20 MB.
    assert!(
        peak_mb < 32.0,
        "memory bounded by a page or two: {peak_mb:.1} MB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_stops_reading_holds_the_pipeline_not_memory() {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let (url, _server) = hostile_server(move |n| {
        seen.fetch_add(1, Ordering::SeqCst);
        Behavior::Soap(endless_page(n, 500))
    })
    .await;
    let mut child = cli(&url, &["--format", "json", "--retries", "0"])
        .stdout(Stdio::piped()) // never read
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // While the child runs: once the pipe is full, the requests stop. Ended as soon as none
    // has come for a second and a half; a child still asking after 20 s fails.
    let counted = requests.clone();
    let (peak_mb, quiet) = tokio::task::spawn_blocking(move || {
        let mut last = (usize::MAX, std::time::Instant::now());
        watch_memory_until(&mut child, Duration::from_secs(20), || {
            let now = counted.load(Ordering::SeqCst);
            if now != last.0 {
                last = (now, std::time::Instant::now());
            }
            now > 0 && last.1.elapsed() > Duration::from_millis(1500)
        })
    })
    .await
    .unwrap();
    let asked = requests.load(Ordering::SeqCst);
    assert!(
        quiet,
        "still asking for pages after 20 s ({asked}) for a pipe nobody reads, or exited"
    );
    assert!(asked < 50, "{asked} pages asked for a pipe nobody reads");
    eprintln!("peak {peak_mb:.1} MB, {asked} pages asked for");
    assert!(
        peak_mb < 32.0,
        "{peak_mb:.1} MB (README: 18 MB, release build)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_fails_after_writing_is_failed_and_never_started_again() {
    let enumerates = Arc::new(AtomicUsize::new(0));
    let seen = enumerates.clone();
    let (url, _server) = hostile_server_seeing(move |n, body| {
        if body.contains("enumeration/Enumerate<") {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        if n == 0 {
            Behavior::Soap(endless_page(0, 50))
        } else {
            Behavior::Close
        }
    })
    .await;
    let output = cli(&url, &["--format", "json", "--retries", "3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let ids = session_ids(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(ids.len(), 50, "the first page once");
    assert_eq!(
        enumerates.load(Ordering::SeqCst),
        1,
        "no second Enumerate after records were written"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_items_than_asked_and_a_page_of_tiny_items_near_the_cap() {
    // 20,000 items when 10 were asked for, then a 15 MiB page of tiny ones.
    let tiny =
        r#"<p:MSFT_SmbSession xmlns:p="urn:x"><p:SessionId>ID</p:SessionId></p:MSFT_SmbSession>"#;
    let (url, _server) = hostile_server(move |n| {
        if n == 0 {
            Behavior::Soap(endless_page(0, 20_000))
        } else {
            let mut items = String::with_capacity(16 << 20);
            let mut i = 100_000u64;
            while items.len() < 15 << 20 {
                items.push_str(&tiny.replace("ID", &i.to_string()));
                i += 1;
            }
            Behavior::Soap(
                soap(&format!(
                    "<n:PullResponse><n:Items>{items}</n:Items><n:EndOfSequence/></n:PullResponse>"
                ))
                .replace("EnumerateResponse</a:Action>", "PullResponse</a:Action>"),
            )
        }
    })
    .await;
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = cli(&url, &["--format", "csv", "--max-elements", "10"])
        .stdout(Stdio::from(out.reopen().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (peak_mb, status) = tokio::task::spawn_blocking(move || {
        let peak = watch_memory(&mut child, Duration::from_secs(60));
        (peak, child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(status.success());
    let rows = std::fs::read_to_string(out.path()).unwrap().lines().count() - 1;
    assert!(rows > 20_000 + 150_000, "{rows} rows");
    // The cap (16 MiB) plus one page of records, not the total.
    eprintln!("peak {peak_mb:.1} MB for a 15 MiB page of tiny items");
    // The 16 MiB response cap read once, its items parsed, a CSV writer: about 90 MB.
    assert!(peak_mb < 128.0, "{peak_mb:.1} MB");
}
