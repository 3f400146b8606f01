//! `watch` and `history` as users run them: events in NDJSON, a store that survives a restart,
//! Prometheus metrics, Ctrl-C, and what goes wrong with stores and addresses.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::Behavior;
use crate::support::scripted::{Op, live_server, scripted_server};

use crate::bin::winrm;

fn watch(targets: &[&str], extra: &[&str]) -> Command {
    let mut command = winrm(&["watch", "smb-sessions"]);
    command
        .args(targets)
        .args(["--auth", "basic", "--allow-plaintext", "--retries", "0"])
        .args(["--format", "json"])
        .args(extra);
    command
}

fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (Event, SessionId) of each line, in order.
fn kinds(events: &[serde_json::Value]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| {
            (
                e["Event"].as_str().unwrap().to_owned(),
                e["SessionId"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Reads NDJSON lines from a running watch until `n` lines came.
fn read_lines(reader: &mut impl BufRead, n: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    while lines.len() < n {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the watch ended early"
        );
        lines.push(serde_json::from_str(&line).unwrap());
    }
    lines
}

fn stderr_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

fn scrape(address: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn events_store_metrics_and_a_restart_that_does_not_reopen() {
    let a = live_server(&[1, 2]).await;
    let b = live_server(&[10]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("watch.db");
    let store_arg = store.display().to_string();
    let mut child = watch(
        &[&a.url, &b.url],
        &[
            "--interval",
            "600ms",
            "--count",
            "3",
            "--store",
            &store_arg,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let banner = stderr_line(&mut child);
    let address = banner
        .trim()
        .strip_prefix("winrm-sessions: metrics on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{banner}"))
        .to_owned();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let first = tokio::task::block_in_place(|| read_lines(&mut stdout, 3));
    assert!(
        first
            .iter()
            .all(|e| e["Event"] == "present" && e["Time"].is_string())
    );
    // Between polls: one session closes, one opens, a host goes away.
    a.set(&[2, 3]);
    b.down.store(true, Ordering::SeqCst);
    let second = tokio::task::block_in_place(|| read_lines(&mut stdout, 3));
    let mut second_kinds = kinds(&second);
    second_kinds.sort();
    assert_eq!(
        second_kinds,
        [
            ("closed".into(), 1),
            ("opened".into(), 3),
            ("unreachable".into(), 0)
        ]
    );
    let unreachable = second.iter().find(|e| e["Event"] == "unreachable").unwrap();
    assert_eq!(unreachable["PSComputerName"], b.url.as_str());
    assert!(
        unreachable["Error"].as_str().unwrap().contains("closed"),
        "{unreachable}"
    );
    let metrics = tokio::task::block_in_place(|| scrape(&address));
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "winrm_sessions_open_sessions{{target=\"{}\",class=\"MSFT_SmbSession\"}} 2",
            a.url
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "winrm_sessions_poll_failures_total{{target=\"{}\"}} 1",
            b.url
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("winrm_sessions_poll_duration_seconds_bucket"),
        "{metrics}"
    );
    b.down.store(false, Ordering::SeqCst);
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "the last poll of every host succeeded"
    );

    // Restarted on the store: nothing still there is opened again; what changed meanwhile is.
    a.set(&[2, 3, 4]);
    let output = watch(&[&a.url, &b.url], &["--count", "1", "--store", &store_arg])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut restarted = kinds(&events(&String::from_utf8(output.stdout).unwrap()));
    restarted.sort();
    assert_eq!(
        restarted,
        [
            ("opened".into(), 4),
            ("present".into(), 2),
            ("present".into(), 3),
            ("present".into(), 10)
        ]
    );

    // History: one record per session, first and last seen, open or not.
    let output = winrm(&["history", "--store", &store_arg, "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let history = events(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(history.len(), 5, "sessions 1, 2, 3, 4 and 10");
    let one = history.iter().find(|h| h["SessionId"] == 1).unwrap();
    assert_eq!(one["Open"], false);
    assert!(one["FirstSeen"].as_str().unwrap() <= one["LastSeen"].as_str().unwrap());
    let output = winrm(&[
        "history", "--store", &store_arg, "--user", "USER3", "--since", "1h", "--format", "csv",
    ])
    .output()
    .unwrap();
    let csv = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        csv.lines().count(),
        2,
        "a header and user3's session: {csv}"
    );
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains("FirstSeen,LastSeen,Open")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_ends_cleanly_and_releases_the_enumeration_in_flight() {
    // Pages of 50 out of 500, the Pulls slow: an enumeration is open when Ctrl-C comes.
    let (url, seen, _server) = scripted_server(500, |op, _| {
        (op == Op::Pull).then(|| {
            Behavior::After(
                Duration::from_millis(300),
                Box::new(crate::support::scripted::page(Op::Pull, 50, 50, 500)),
            )
        })
    })
    .await;
    let mut child = watch(&[&url], &["--max-elements", "50", "--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.count(Op::Pull) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        seen.count(Op::Release),
        1,
        "the open enumeration was released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_stores_busy_addresses_and_bad_durations_are_clear_errors() {
    let server = live_server(&[1]).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let output = watch(&[&server.url], extra).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "my notes, not a database\n".repeat(200)).unwrap();
    let (code, stderr) = run(&["--count", "1", "--store", &text.display().to_string()]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not a winrm-sessions store"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "my notes, not a database\n".repeat(200),
        "left alone"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let (code, stderr) = run(&["--count", "1", "--metrics-listen", &address]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!("cannot serve metrics on {address}")),
        "{stderr}"
    );

    // Two watches on one store: the second is refused, the first goes on.
    let store = dir.path().join("watch.db").display().to_string();
    let mut first = watch(
        &[&server.url],
        &["--interval", "200ms", "--count", "10", "--store", &store],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Its first event (a session present at its first poll) comes after it opened the store.
    let mut events = BufReader::new(first.stdout.take().unwrap());
    let opened = read_lines(&mut events, 1);
    assert_eq!(opened[0]["Event"], "present", "{opened:?}");
    let (code, stderr) = run(&["--count", "1", "--store", &store]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("another watch"), "{stderr}");
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut events, &mut rest).unwrap();
        rest
    });
    assert_eq!(
        tokio::task::block_in_place(|| first.wait()).unwrap().code(),
        Some(0)
    );
    rest.await.unwrap();

    for bad in ["soon", "5x", "", "99999999999h"] {
        let (code, stderr) = run(&["--interval", bad]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
    }
    let output = winrm(&[
        "history",
        "--store",
        &dir.path().join("none.db").display().to_string(),
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no store there"));
}

/// A watch whose last poll of a host failed exits 1 and says which hosts on stderr.
#[test]
fn the_hosts_whose_last_poll_failed_are_named() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/wsman", listener.local_addr().unwrap())
    };
    let output = watch(&[&closed], &["--count", "1", "--connect-timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("the last poll of 1 host(s) failed: {closed}")),
        "{stderr}"
    );
}

/// `history --target` finds a watch's sessions however the target is written, and says so on
/// stderr when a filter matches nothing.
#[tokio::test(flavor = "multi_thread")]
async fn history_filters_match_targets_and_users_however_written() {
    let server = crate::support::demo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("w.db").display().to_string();
    let url = server.url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        watch(&[&url], &["--count", "1", "--store", &store])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = dir.path().join("w.db").display().to_string();
    let history = |extra: &[&str]| {
        let output = winrm(&["history", "--store", &store, "--format", "json"])
            .args(extra)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&output.stdout).lines().count(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (all, _) = history(&[]);
    assert_eq!(all, 7);
    let host_port = server.addr().to_string();
    for written in [host_port.as_str(), server.url(), "127.0.0.1"] {
        assert_eq!(history(&["--target", written]).0, all, "{written}");
    }
    assert_eq!(history(&["--user", "administrator@contoso.test"]).0, 1);
    assert_eq!(history(&["--user", r"CONTOSO\Administrator"]).0, 1);
    let (none, stderr) = history(&["--target", "fs99"]);
    assert_eq!(none, 0);
    assert!(
        stderr.contains("no session in") && stderr.contains("--target fs99"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_cannot_be_written_stops_the_watch_with_why() {
    // Files may not grow past 2 MB: the store's writes fail after a few polls, as on a full
    // disk. The watch must stop, say why and exit 1, not hang or go on without its history.
    let ids: Vec<u64> = (1..=300).collect();
    let server = live_server(&ids).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("watch.db").display().to_string();
    let mut command = watch(
        &[&server.url],
        &["--interval", "1ms", "--count", "1000", "--store", &store],
    );
    command.stdout(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls: setrlimit and signal.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            let limit = libc::rlimit {
                rlim_cur: 2 << 20,
                rlim_max: 2 << 20,
            };
            // A write past the limit then fails with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || command.output().unwrap()),
    )
    .await
    .expect("the watch stops")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&store) && (stderr.contains("disk") || stderr.contains("full")),
        "the store and why: {stderr}"
    );
    let polls = server.seen.enumerates.load(Ordering::SeqCst);
    assert!(
        (2..1000).contains(&polls),
        "polls went on until the failure, then stopped ({polls} polls)"
    );
}
