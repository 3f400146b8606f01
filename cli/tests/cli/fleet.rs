//! Several slow hosts at once: every command that takes several targets keeps `--concurrency`
//! hosts with a request at their server at the same time, counted by the servers themselves.

use std::time::Duration;

use crate::support::slow_hosts;

const BIN: &str = env!("CARGO_BIN_EXE_winrm-sessions");
const HOSTS: usize = 10;
const C: usize = 4;

/// Runs `args`, the targets, `--concurrency C` and `tail`; returns the peak of requests in
/// flight and what was printed.
async fn peak_of(args: &[&str]) -> (usize, String) {
    peak_with(args, &[]).await
}

async fn peak_with(args: &[&str], tail: &[&str]) -> (usize, String) {
    let (servers, probe) = slow_hosts(HOSTS, Duration::from_millis(100)).await;
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .args(servers.iter().map(|s| s.url()))
        .args(["--concurrency", &C.to_string(), "--user", "demo"])
        .args(tail)
        .env("WINRM_PASSWORD", "demo")
        .env("KRB5CCNAME", "FILE:/nonexistent/winrm-sessions-test-ccache")
        .env_remove("WINRM_SESSIONS_LOG")
        .stdin(std::process::Stdio::null());
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the CLI finishes in time")
        .expect("the CLI runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    (
        probe.peak_servers(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[tokio::test]
async fn every_class_command_and_format_keeps_concurrency_hosts_in_flight() {
    for format in ["json", "csv", "table"] {
        let (peak, out) = peak_of(&["smb-sessions", "--format", format]).await;
        assert_eq!(peak, C, "smb-sessions --format {format}");
        if format == "json" {
            assert_eq!(out.lines().count(), HOSTS * 7);
        }
    }
    let (peak, out) = peak_of(&["server-sessions", "--format", "json"]).await;
    assert_eq!((peak, out.lines().count()), (C, HOSTS * 4));
}

#[tokio::test]
async fn joins_queries_closes_and_watches_keep_concurrency_hosts_in_flight() {
    let (peak, out) = peak_of(&["logon-sessions", "--with-processes", "--format", "json"]).await;
    assert_eq!(
        (peak, out.lines().count()),
        (C, HOSTS * 6),
        "--with-processes"
    );
    let (peak, out) = peak_of(&["server-sessions", "--with-connections", "--format", "json"]).await;
    assert_eq!(
        (peak, out.lines().count()),
        (C, HOSTS * 4),
        "--with-connections"
    );
    let (peak, out) = peak_with(
        &["query", "--format", "json"],
        &["SELECT * FROM Win32_Process WHERE Name = 'powershell.exe'"],
    )
    .await;
    assert_eq!((peak, out.lines().count()), (C, HOSTS), "query");
    let (peak, _) = peak_of(&[
        "close-smb-session",
        "--session-id",
        "8813272891621",
        "--dry-run",
    ])
    .await;
    assert_eq!(peak, C, "close-smb-session");
    let (peak, _) = peak_of(&["watch", "smb-sessions", "--count", "1", "--format", "json"]).await;
    assert_eq!(peak, C, "watch");
}
