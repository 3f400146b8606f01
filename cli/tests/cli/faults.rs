//! What real servers do, through the command line: `w:TimedOut` on a Pull, the per-host deadline
//! with the last error, a lost Enumerate, refused and unresolvable targets, a long hosts file.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::scripted::{Op, scripted_server, timed_out};
use crate::support::{Behavior, watch_memory};

use crate::bin::{session_ids, smb_sessions};

fn cli(url: &str, extra: &[&str]) -> Command {
    let mut command = smb_sessions(url, &["--format", "json"]);
    command.args(extra);
    command
}

async fn run(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn assert_complete(ids: &[u64], total: usize) {
    assert_eq!(ids.len(), total, "every session once");
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        total,
        "no duplicates"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_timed_out_every_fifth_time_is_pulled_again_never_restarted() {
    let (url, seen, _server) = scripted_server(2_000, |op, nth| {
        (op == Op::Pull && nth % 5 == 4).then(timed_out)
    })
    .await;
    let output = run(cli(&url, &["--max-elements", "50", "--retries", "0"])).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_complete(&session_ids(&output.stdout), 2_000);
    assert_eq!(seen.count(Op::Enumerate), 1, "never restarted");
    // 39 Pulls bring pages; every fifth Pull was answered TimedOut and sent again.
    assert_eq!(seen.count(Op::Pull), 39 + 39 / 4);
    assert_eq!(seen.count(Op::Release), 0, "the server ended it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_keeps_timing_out_fails_at_the_deadline_with_the_last_error() {
    let (url, seen, _server) = scripted_server(2_000, |op, _| {
        (op == Op::Pull).then(|| Behavior::After(Duration::from_millis(200), Box::new(timed_out())))
    })
    .await;
    let started = Instant::now();
    let output = run(cli(
        &url,
        &[
            "--max-elements",
            "50",
            "--retries",
            "0",
            "--host-timeout",
            "2",
        ],
    ))
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        session_ids(&output.stdout).len(),
        50,
        "the first page, once"
    );
    assert!(
        stderr.contains(&format!(
            "winrm-sessions: {url}: no answer within the per-host deadline of 2s; the last error was: fault TimedOut: The WS-Management service cannot complete the operation within the time specified in OperationTimeout (WSManFault 0x80338029)"
        )),
        "{stderr}"
    );
    assert_eq!(seen.count(Op::Enumerate), 1, "never restarted");
    assert!(seen.count(Op::Pull) >= 5, "pulled again and again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_enumerate_is_sent_again_under_basic() {
    let (url, seen, _server) = scripted_server(120, |op, nth| {
        (op == Op::Enumerate && nth == 0).then_some(Behavior::Close)
    })
    .await;
    let output = run(cli(&url, &["--max-elements", "50", "--retries", "0"])).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_complete(&session_ids(&output.stdout), 120);
    assert_eq!(seen.count(Op::Enumerate), 2, "sent once more");
    assert!(stderr.is_empty(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_and_unresolvable_targets_say_so_and_only_the_refused_one_is_retried() {
    let refused = "http://127.0.0.1:9/wsman";
    let unknown = "winrm-sessions-test.invalid";
    let mut command = cli(refused, &["--retries", "2", "-v"]);
    command.arg(unknown);
    let output = run(command).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("winrm-sessions:"))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors.contains(&&*format!(
            "winrm-sessions: {refused}: connection refused by 127.0.0.1:9 (is WinRM listening on that port?)"
        )),
        "{stderr}"
    );
    assert!(
        errors.iter().any(|l| l.starts_with(&format!(
            "winrm-sessions: {unknown}: the name {unknown} does not resolve: "
        ))),
        "{stderr}"
    );
    let retries = |target: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("Trying the host again") && l.contains(target))
            .count()
    };
    assert_eq!(retries("127.0.0.1:9"), 2, "{stderr}");
    assert_eq!(
        retries(unknown),
        0,
        "a name that does not resolve is not retried"
    );
    assert!(!stderr.contains('\x1b'), "no colour into a pipe");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_hosts_file_runs_in_memory_that_follows_the_concurrency() {
    // (`cargo bench --bench fleet` runs 100,000; a debug build here takes 20,000.)
    let peak = |hosts: usize| async move {
        let file = tempfile::NamedTempFile::new().unwrap();
        let list: String = (0..hosts)
            // Distinct targets (a target named twice is asked once) on closed ports.
            .map(|i| format!("http://127.0.0.1:{}/wsman?host={i}\n", 1 + i % 5))
            .collect();
        std::fs::write(file.path(), list).unwrap();
        let mut command = cli(
            "http://127.0.0.1:1/wsman",
            &["--retries", "0", "--hosts-file"],
        );
        command
            .arg(file.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().unwrap();
            let stderr = child.stderr.take().unwrap();
            let lines = std::thread::spawn(move || {
                use std::io::BufRead;
                std::io::BufReader::new(stderr).lines().count()
            });
            let peak = watch_memory(&mut child, Duration::from_secs(120));
            let status = child.wait().unwrap();
            (peak, status.code(), lines.join().unwrap())
        })
        .await
        .unwrap()
    };
    let (small, code, _) = peak(1_000).await;
    assert_eq!(code, Some(1));
    let (large, code, lines) = peak(20_000).await;
    assert_eq!(code, Some(1));
    assert_eq!(lines, 20_001 + 1, "one line per host and the summary");
    eprintln!("peak RSS: 1,001 targets {small:.1} MB, 20,001 targets {large:.1} MB");
    assert!(large <= 40.0, "{large} MB");
    assert!(large < small + 25.0, "{small} MB -> {large} MB");
}

/// Kerberos with a user that names no realm takes krb5.conf's default realm: an unreachable KDC
/// of that realm is said as such, with where the realm came from and the KDC's address, not as
/// a protocol violation.
#[test]
fn an_unreachable_kdc_is_named_with_its_realm_and_where_that_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let conf = dir.path().join("krb5.conf");
    std::fs::write(
        &conf,
        format!(
            "[libdefaults]\n default_realm = ATHENA.MIT.EDU\n[realms]\n ATHENA.MIT.EDU = {{\n  kdc = {closed}\n }}\n"
        ),
    )
    .unwrap();
    let output = crate::bin::winrm(&[
        "smb-sessions",
        "http://127.0.0.1:9/wsman",
        "--auth",
        "kerberos",
        "--user",
        "alice",
        "--retries",
        "0",
    ])
    .env("KRB5_CONFIG", &conf)
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no KDC of realm ATHENA.MIT.EDU (from the default_realm of krb5.conf")
            && stderr.contains(&closed)
            && !stderr.contains("protocol violation"),
        "{stderr}"
    );
}
