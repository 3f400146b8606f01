//! The command-line tool against the fixture server: every class command, every format, exit
//! codes, and the password never on the command line.

use std::process::Output;

use crate::support::demo_server;

const BIN: &str = env!("CARGO_BIN_EXE_winrm-sessions");

async fn run(args: Vec<String>, password: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(&args)
        .env_remove("WINRM_PASSWORD")
        .env_remove("WINRM_USER")
        // No Kerberos tickets of the machine's user leak into the tests.
        .env("KRB5CCNAME", "FILE:/nonexistent/winrm-sessions-test-ccache");
    if let Some(password) = password {
        command.env("WINRM_PASSWORD", password);
    }
    command.stdin(std::process::Stdio::null());
    tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("the CLI finishes in time")
        .expect("the CLI runs")
}

/// The default authentication: Negotiate with message encryption, no plaintext opt-in needed.
fn args(command: &str, url: &str, format: &str) -> Vec<String> {
    [command, url, "--user", "demo", "--format", format]
        .map(String::from)
        .to_vec()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

const COMMANDS: &[(&str, &str, usize)] = &[
    ("smb-sessions", "MSFT_SmbSession", 7),
    ("server-sessions", "Win32_ServerSession", 4),
    ("server-connections", "Win32_ServerConnection", 6),
    ("session-connections", "Win32_SessionConnection", 6),
    ("logon-sessions", "Win32_LogonSession", 6),
    ("session-processes", "Win32_SessionProcess", 6),
    ("sessions", "", 10),
    ("processes", "Win32_Process", 6),
];

#[tokio::test]
async fn every_class_command_prints_ndjson_with_the_contract_keys() {
    let server = demo_server().await;
    for &(command, class, count) in COMMANDS {
        let output = run(args(command, server.url(), "json"), Some("demo")).await;
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<serde_json::Value> = stdout(&output)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), count, "{command}");
        for line in &lines {
            assert_eq!(line["PSComputerName"], server.url(), "{command}");
            if !class.is_empty() {
                assert_eq!(line["CimClass"], class, "{command}");
            }
        }
    }
}

#[tokio::test]
async fn json_values_follow_the_contract() {
    let server = demo_server().await;
    let output = run(args("smb-sessions", server.url(), "json"), Some("demo")).await;
    let text = stdout(&output);
    assert!(
        text.contains(r#""SessionId":18446744073709551615"#),
        "uint64 exact: {text}"
    );
    assert!(text.contains(r#""Dialect":null"#), "nil is null");
    assert!(
        text.contains(r#""ClientUserName":"""#),
        "empty string stays a string"
    );
    let output = run(args("logon-sessions", server.url(), "json"), Some("demo")).await;
    assert!(stdout(&output).contains(r#""StartTime":"2026-11-20T17:02:09.4124+01:00""#));
    let output = run(
        args("session-connections", server.url(), "json"),
        Some("demo"),
    )
    .await;
    let first: serde_json::Value =
        serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap();
    assert_eq!(
        first["Antecedent"],
        serde_json::json!({
            "ResourceURI": "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession",
            "Selectors": {"ComputerName": "192.168.101.13", "UserName": "Administrator"}
        })
    );
    let output = run(args("sessions", server.url(), "json"), Some("demo")).await;
    let classes: Vec<String> = stdout(&output)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["CimClass"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        classes.contains(&"Win32_LogonSession".to_owned())
            && classes.contains(&"Win32_ServerSession".to_owned())
    );
}

#[tokio::test]
async fn csv_has_a_header_and_one_row_per_instance() {
    let server = demo_server().await;
    for &(command, _, count) in COMMANDS {
        let output = run(args(command, server.url(), "csv"), Some("demo")).await;
        assert!(output.status.success(), "{command}");
        let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
        let headers = reader.headers().unwrap().clone();
        assert!(headers.iter().any(|h| h == "PSComputerName"), "{command}");
        assert_eq!(reader.records().count(), count, "{command}");
    }
}

#[tokio::test]
async fn tables_have_the_default_columns() {
    let server = demo_server().await;
    for &(command, _, count) in COMMANDS {
        let output = run(args(command, server.url(), "table"), Some("demo")).await;
        assert!(output.status.success(), "{command}");
        let text = stdout(&output);
        assert_eq!(text.lines().count(), count + 2, "{command}:\n{text}");
    }
    let output = run(args("smb-sessions", server.url(), "table"), Some("demo")).await;
    let header = stdout(&output)
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        header,
        "SessionId ClientComputerName ClientUserName NumOpens"
    );
}

#[tokio::test]
async fn query_prints_results_and_a_bad_query_fails_with_exit_1() {
    let server = demo_server().await;
    let mut a = vec![
        "query".to_owned(),
        server.url().to_owned(),
        "SELECT Name, ProcessId FROM Win32_Process".to_owned(),
    ];
    a.extend(["--user", "demo", "--format", "json"].map(String::from));
    let output = run(a, Some("demo")).await;
    assert!(output.status.success());
    assert_eq!(stdout(&output).lines().count(), 6);
    let mut a = vec![
        "query".to_owned(),
        server.url().to_owned(),
        "SELECT * FROM Win32_NoSuchClass".to_owned(),
    ];
    a.extend(["--user", "demo"].map(String::from));
    let output = run(a, Some("demo")).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(server.url()) && stderr.contains("CannotProcessFilter"),
        "{stderr}"
    );
}

#[tokio::test]
async fn one_failing_target_gives_exit_1_and_names_it_while_others_print() {
    let server = demo_server().await;
    let mut a = args("smb-sessions", server.url(), "json");
    a.push("http://127.0.0.1:9/wsman".into());
    let output = run(a, Some("demo")).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output).lines().count(), 7);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("winrm-sessions:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        stderr.contains("1 host(s) answered, 1 failed; 7 record(s)"),
        "summary: {stderr}"
    );
    assert!(
        stderr.contains(
            "http://127.0.0.1:9/wsman: connection refused by 127.0.0.1:9 (is WinRM listening on that port?)"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn wrong_password_is_one_authentication_error() {
    let server = demo_server().await;
    let output = run(args("smb-sessions", server.url(), "json"), Some("wrong")).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication failed (NTLM)"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password is never printed: {stderr}"
    );
    assert_eq!(
        server.stats().matched + server.stats().unmatched,
        0,
        "nothing sealed was sent"
    );
    // One handshake: NEGOTIATE, then AUTHENTICATE refused; never a second handshake.
    assert_eq!(server.in_flight().total(), 2, "no retry after a 401");
    assert_eq!(server.connection_stats().handshakes, 0);
    let mut basic = args("smb-sessions", server.url(), "json");
    basic.extend(["--auth", "basic", "--allow-plaintext"].map(String::from));
    let output = run(basic.clone(), Some("wrong")).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication failed (Basic)"), "{stderr}");
    let output = run(basic, Some("demo")).await;
    assert!(output.status.success(), "Basic still works where allowed");
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let server = demo_server().await;
    // No password source and no terminal.
    let output = run(args("smb-sessions", server.url(), "json"), None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no password"));
    // Basic over HTTP without --allow-plaintext is refused before anything is sent.
    let a = [
        "smb-sessions",
        server.url(),
        "--user",
        "demo",
        "--auth",
        "basic",
    ]
    .map(String::from)
    .to_vec();
    let output = run(a, Some("demo")).await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: refusing Basic authentication over plain HTTP",
            server.url()
        )) && stderr.contains("--allow-plaintext")
            && !stderr.contains("ClientBuilder"),
        "names the target typed and the flag, not a library API: {stderr}"
    );
    assert_eq!(server.in_flight().total(), 0, "nothing was sent");
    // An http:// URL with --https contradicts itself: a usage error naming the URL as typed.
    let mut a = args("query", server.url(), "json");
    a.extend(["--https", "SELECT * FROM Win32_Process"].map(String::from));
    let output = run(a, Some("demo")).await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(server.url()) && stderr.contains("the URL says http"),
        "{stderr}"
    );
    assert_eq!(server.in_flight().total(), 0, "nothing was sent");
    // `query` with the WQL forgotten says so.
    let a = ["query", server.url(), "--user", "demo"]
        .map(String::from)
        .to_vec();
    let output = run(a, Some("demo")).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("must be the WQL query"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A password is not an option.
    let a = ["smb-sessions", "fs01", "--password", "x"]
        .map(String::from)
        .to_vec();
    assert_eq!(run(a, None).await.status.code(), Some(2));
}

#[tokio::test]
async fn hosts_file_skips_blank_lines_and_comments() {
    let server = demo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("# file servers\n\n{}  # the demo\n", server.url()),
    )
    .unwrap();
    let a = [
        "smb-sessions",
        "--hosts-file",
        hosts.to_str().unwrap(),
        "--user",
        "demo",
        "--format",
        "json",
    ]
    .map(String::from)
    .to_vec();
    let output = run(a, Some("demo")).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout(&output).lines().count(), 7);
}

#[tokio::test]
async fn demo_runs_with_no_server_around() {
    for format in ["table", "json"] {
        let output = run(vec!["demo".into(), "--format".into(), format.into()], None).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout(&output).contains("8813272891621"));
    }
}

#[tokio::test]
async fn serve_fixtures_prints_its_url_first_and_rejects_a_bad_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        vec!["serve-fixtures".into(), dir.path().display().to_string()],
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no fixtures in"));
    std::fs::write(dir.path().join("0001-x.request.xml"), "<s:Envelope").unwrap();
    std::fs::write(dir.path().join("0001-x.response.xml"), "<s:Envelope/>").unwrap();
    let output = run(
        vec!["serve-fixtures".into(), dir.path().display().to_string()],
        None,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("0001-x.request.xml"),
        "names the file: {stderr}"
    );
}

#[tokio::test]
async fn joins_nest_connections_and_processes_under_the_contract_keys() {
    let server = demo_server().await;
    let mut a = args("server-sessions", server.url(), "json");
    a.push("--with-connections".into());
    let output = run(a, Some("demo")).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let admin: serde_json::Value = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["UserName"] == "Administrator")
        .unwrap();
    let connections = admin["Connections"].as_array().unwrap();
    assert_eq!(connections.len(), 3);
    assert!(
        connections
            .iter()
            .all(|c| c["CimClass"] == "Win32_ServerConnection")
    );
    let mut a = args("logon-sessions", server.url(), "json");
    a.push("--with-processes".into());
    let output = run(a, Some("demo")).await;
    let rdp: serde_json::Value = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["LogonId"] == "5120044")
        .unwrap();
    let processes = rdp["Processes"].as_array().unwrap();
    assert_eq!(processes.len(), 2);
    assert_eq!(processes[0]["CimClass"], "Win32_Process");
    assert_eq!(processes[0]["VirtualSize"], serde_json::json!(u64::MAX));
    let mut a = args("server-sessions", server.url(), "table");
    a.push("--with-connections".into());
    let table = stdout(&run(a, Some("demo")).await);
    assert!(table.contains("{Finance, IPC$, Software}"), "{table}");
}

#[tokio::test]
async fn close_smb_session_dry_run_confirmation_and_outcomes() {
    let server = demo_server().await;
    let base = |extra: &[&str]| {
        let mut a = vec![
            "close-smb-session".to_owned(),
            server.url().to_owned(),
            "--user".into(),
            "demo".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // A dry run lists and changes nothing.
    let output = run(
        base(&[
            "--client-user-name",
            r"лаб\пользователь",
            "--dry-run",
            "--format",
            "json",
        ]),
        Some("demo"),
    )
    .await;
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["SessionId"], 8_813_272_891_700u64);
    assert_eq!(lines[0]["Action"], "WouldClose");
    assert_eq!(
        server.stats().matched,
        4,
        "only the enumeration: one Enumerate and three Pulls"
    );
    // Without a terminal and without --force nothing is closed.
    let output = run(base(&["--session-id", "8813272891625"]), Some("demo")).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    // Selecting nothing is a usage error, not "close everything".
    assert_eq!(
        run(base(&["--force"]), Some("demo")).await.status.code(),
        Some(2)
    );
    // With --force: one closed, one already gone, one denied.
    let output = run(
        base(&[
            "--session-id",
            "8813272891625",
            "--session-id",
            "8813272891640",
            "--session-id",
            "8813272891700",
            "--force",
            "--format",
            "json",
        ]),
        Some("demo"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let actions: Vec<(u64, String)> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| {
            (
                r["SessionId"].as_u64().unwrap(),
                r["Action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (8_813_272_891_625, "Closed".into()),
            (8_813_272_891_640, "Failed".into()),
            (8_813_272_891_700, "Failed".into())
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("returned 2 (no such session"), "{stderr}");
    assert!(stderr.contains("AccessDenied"), "{stderr}");
}

#[tokio::test]
async fn ticket_cache_misuse_is_a_usage_or_configuration_error() {
    let server = demo_server().await;
    let ntlm = [
        "smb-sessions",
        server.url(),
        "--auth",
        "ntlm",
        "--ccache",
        "/tmp/x",
    ]
    .map(String::from)
    .to_vec();
    let output = run(ntlm, None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--ccache needs"));

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("krb5cc");
    std::fs::write(&garbage, b"not a cache").unwrap();
    let args = [
        "smb-sessions",
        server.url(),
        "--ccache",
        garbage.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let output = run(args, None).await;
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("credential cache"), "{stderr}");

    // No user, no password, no tickets: the hint names kinit.
    let output = run(
        ["smb-sessions", server.url()].map(String::from).to_vec(),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("kinit"));
}

#[tokio::test]
async fn serve_fixtures_admits_exactly_its_user_says_who_and_serves_only_wsman() {
    use std::io::{BufRead, BufReader};
    let mut server = std::process::Command::new(BIN)
        .args(["serve-fixtures"])
        .arg(crate::support::demo_fixtures())
        .args(["--user", "alice"])
        .env_remove("WINRM_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_owned();
    let mut banner = String::new();
    BufReader::new(server.stderr.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(
        banner.contains(r#"for user "alice" with password "demo""#),
        "{banner}"
    );
    for auth in ["ntlm", "basic"] {
        let attempt = |user: &str, target: &str| {
            [
                "smb-sessions",
                target,
                "--user",
                user,
                "--auth",
                auth,
                "--allow-plaintext",
                "--format",
                "json",
                "--retries",
                "0",
            ]
            .map(String::from)
            .to_vec()
        };
        let output = run(attempt("alice", &url), Some("demo")).await;
        assert!(
            output.status.success(),
            "{auth}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let output = run(attempt("bob", &url), Some("demo")).await;
        assert_eq!(output.status.code(), Some(1), "{auth}: bob is not alice");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("authentication failed"), "{auth}: {stderr}");
        let elsewhere = url.replace("/wsman", "/other");
        let output = run(attempt("alice", &elsewhere), Some("demo")).await;
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("404"), "{auth}: {stderr}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn query_takes_several_targets_and_a_hosts_file() {
    let server = demo_server().await;
    let second = format!("{}?second", server.url());
    let hosts = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(hosts.path(), format!("# file servers\n{second}\n")).unwrap();
    let output = run(
        [
            "query",
            server.url(),
            "--hosts-file",
            &hosts.path().display().to_string(),
            "--user",
            "demo",
            "--format",
            "json",
            "SELECT Name, ProcessId FROM Win32_Process",
        ]
        .map(String::from)
        .to_vec(),
        Some("demo"),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 12, "six processes from each target");
    for target in [server.url(), second.as_str()] {
        assert_eq!(
            records
                .iter()
                .filter(|r| r["PSComputerName"] == target)
                .count(),
            6
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 host(s) answered, 0 failed"), "{stderr}");
    // The query alone, without a target, is a usage error that says so.
    let output = run(
        ["query", "--user", "demo", "SELECT * FROM Win32_Process"]
            .map(String::from)
            .to_vec(),
        Some("demo"),
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no target"));
}

#[tokio::test]
async fn close_smb_session_on_several_targets_confirms_once_and_reports_each() {
    let server = demo_server().await;
    let second = format!("{}?second", server.url());
    let unreachable = "http://127.0.0.1:9/wsman";
    let close = |extra: &[&str]| {
        let mut a = vec![
            "close-smb-session".to_owned(),
            server.url().to_owned(),
            second.clone(),
            unreachable.to_owned(),
            "--user".into(),
            "demo".into(),
            "--retries".into(),
            "0".into(),
            "--session-id".into(),
            "8813272891625".into(),
            "--format".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let rows = |output: &Output| -> Vec<(String, String)> {
        stdout(output)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|r| {
                (
                    r["PSComputerName"].as_str().unwrap().to_owned(),
                    r["Action"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let output = run(close(&["--dry-run"]), Some("demo")).await;
    assert_eq!(output.status.code(), Some(1), "one target is unreachable");
    assert_eq!(
        rows(&output),
        [
            (server.url().to_owned(), "WouldClose".to_owned()),
            (second.clone(), "WouldClose".to_owned())
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{unreachable}: connection refused")),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 session(s) on 2 target(s) would be closed"),
        "{stderr}"
    );
    let output = run(close(&["--force"]), Some("demo")).await;
    assert_eq!(output.status.code(), Some(1));
    let mut closed = rows(&output);
    closed.sort(); // in the order the targets answered
    assert_eq!(
        closed,
        [
            (server.url().to_owned(), "Closed".to_owned()),
            (second.clone(), "Closed".to_owned())
        ]
    );
}

#[tokio::test]
async fn completions_and_manual_pages_come_from_the_arguments() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = run(vec!["completions".into(), shell.into()], None).await;
        assert!(output.status.success(), "{shell}");
        let script = stdout(&output);
        assert!(
            script.contains("smb-sessions") && script.contains("close-smb-session"),
            "{shell}"
        );
    }
    let output = run(vec!["man".into()], None).await;
    assert!(output.status.success());
    let page = stdout(&output);
    assert!(page.contains(".TH winrm-sessions 1"));
    assert!(
        page.contains(".SH NAME\nwinrm\\-sessions \\- ask Windows servers"),
        "the name once, then what it does: {page}"
    );
    assert!(
        page.contains(".SH EXAMPLES\n.nf\n  winrm\\-sessions demo") && !page.contains(".SH EXTRA"),
        "{page}"
    );
    let output = run(vec!["man".into(), "query".into()], None).await;
    assert!(
        stdout(&output).contains("\\-\\-namespace"),
        "the query's options"
    );
    let output = run(vec!["man".into(), "no-such-command".into()], None).await;
    assert_eq!(output.status.code(), Some(2));
    let parent = tempfile::tempdir().unwrap();
    // A folder that does not exist yet is made.
    let dir = parent.path().join("share/man/man1");
    let output = run(
        vec!["man".into(), "--out-dir".into(), dir.display().to_string()],
        None,
    )
    .await;
    assert!(output.status.success());
    assert!(
        std::fs::read_to_string(dir.join("winrm-sessions.1"))
            .unwrap()
            .contains(".SH EXAMPLES")
    );
    for page in [
        "winrm-sessions.1",
        "winrm-sessions-smb-sessions.1",
        "winrm-sessions-close-smb-session.1",
    ] {
        assert!(dir.join(page).exists(), "{page}");
    }
}

/// The demo's recordings answer what the README shows, `serve-fixtures --list` says what a
/// directory can answer, and a question it cannot answer names the closest one it can.
#[tokio::test]
async fn the_demo_answers_the_readme_and_says_what_it_can_answer() {
    let output = run(
        vec![
            "serve-fixtures".into(),
            crate::support::demo_fixtures().display().to_string(),
            "--list".into(),
        ],
        None,
    )
    .await;
    assert!(output.status.success());
    let list = stdout(&output);
    for line in [
        "Enumerate MSFT_SmbSession",
        "Enumerate WQL: SELECT * FROM Win32_Process WHERE Name = 'robocopy.exe'",
        "Invoke ForceClose on MSFT_SmbSession SessionId=8813272891621",
        "Get MSFT_SmbSession SessionId=8813272891621",
    ] {
        assert!(list.lines().any(|l| l == line), "{line:?} in:\n{list}");
    }
    assert!(!list.contains("Pull"), "pulls follow an Enumerate: {list}");

    let server = demo_server().await;
    let query = |wql: &str| {
        let mut a = args("query", server.url(), "json");
        a.push(wql.to_owned());
        a
    };
    let output = run(
        query("SELECT * FROM Win32_Process WHERE Name = 'robocopy.exe'"),
        Some("demo"),
    )
    .await;
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("\"ProcessId\":8120"),
        "{}",
        stdout(&output)
    );
    let mut close = args("close-smb-session", server.url(), "json");
    close.extend(["--session-id", "8813272891621", "--force"].map(String::from));
    let output = run(close, Some("demo")).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout(&output).contains("Closed"), "{}", stdout(&output));
    // A user as typed: bare, DOMAIN\user or user@domain (winrm_sessions::names).
    for user in [
        "administrator",
        r"CONTOSO\Administrator",
        "Administrator@contoso.test",
    ] {
        let mut dry = args("close-smb-session", server.url(), "json");
        dry.extend(["--client-user-name", user, "--dry-run"].map(String::from));
        let output = run(dry, Some("demo")).await;
        assert!(output.status.success(), "{user}");
        assert_eq!(
            stdout(&output).lines().count(),
            1,
            "{user}: {}",
            stdout(&output)
        );
    }

    let output = run(
        query("SELECT * FROM Win32_Process WHERE Name = 'notepad.exe'"),
        Some("demo"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("closest recorded: 00")
            && stderr.contains("SELECT * FROM Win32_Process WHERE Name = ")
            && !stderr.contains("associators"),
        "the same operation and class, the nearest query: {stderr}"
    );
}

/// `-v` says per host what it wrote, in records, and how many pages they came in.
#[tokio::test]
async fn verbose_counts_records_and_pages_per_host() {
    let server = demo_server().await;
    let mut a = args("smb-sessions", server.url(), "json");
    a.push("-v".into());
    let output = run(a, Some("demo")).await;
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Host done") && stderr.contains("records=7 pages=3"),
        "{stderr}"
    );
}
