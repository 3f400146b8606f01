//! Record and replay: a conversation recorded through the CLI or the library hook replays to the
//! same output, with no secrets in the files and names replaced where asked.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::record::Recorder;
use winrm_sessions::testing::{FixtureServer, FixtureSet};
use winrm_sessions::{Client, Credentials};

use crate::support::demo_fixtures;

const BIN: &str = env!("CARGO_BIN_EXE_winrm-sessions");
const PASSWORD: &str = "Recorded-S3cret!";

async fn live_server() -> FixtureServer {
    FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
        .credentials("demo", PASSWORD)
        .start()
        .await
        .unwrap()
}

async fn cli(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env("WINRM_PASSWORD", PASSWORD)
        .env_remove("WINRM_USER")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap()
}

/// NDJSON records without PSComputerName (the URL differs between the live and replay servers).
fn records(output: &std::process::Output) -> Vec<BTreeMap<String, serde_json::Value>> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: BTreeMap<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            r.remove("PSComputerName");
            r
        })
        .collect()
}

fn all_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_recorded_cli_run_replays_to_the_same_output_and_holds_no_secret() {
    let live = live_server().await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().to_str().unwrap();
    for command in ["smb-sessions", "logon-sessions"] {
        let mut args = vec![
            command,
            live.url(),
            "--user",
            "demo",
            "--format",
            "json",
            "--record",
            record,
        ];
        if command == "logon-sessions" {
            args.push("--with-processes");
        }
        let recorded = cli(&args).await;
        assert!(
            recorded.status.success(),
            "{}",
            String::from_utf8_lossy(&recorded.stderr)
        );

        let replay = FixtureServer::builder(FixtureSet::from_dir(dir.path()).unwrap())
            .credentials("demo", PASSWORD)
            .start()
            .await
            .unwrap();
        args[1] = replay.url();
        args.truncate(6);
        if command == "logon-sessions" {
            args.push("--with-processes");
        }
        let replayed = cli(&args).await;
        assert!(
            replayed.status.success(),
            "{}",
            String::from_utf8_lossy(&replayed.stderr)
        );
        let expected = if command == "smb-sessions" { 7 } else { 6 };
        assert_eq!(
            records(&recorded).len(),
            expected,
            "{command}: what was recorded"
        );
        assert_eq!(records(&recorded), records(&replayed), "{command}");
        assert_eq!(replay.stats().unmatched, 0);
    }
    let files = all_files(dir.path());
    assert_eq!(files[0].0, "0001-Enumerate-MSFT_SmbSession.request.xml");
    assert_eq!(files[1].0, "0001-Enumerate-MSFT_SmbSession.response.xml");
    assert!(
        files
            .iter()
            .any(|(name, _)| name.contains("Pull-Win32_Process"))
    );
    for (name, text) in &files {
        for secret in [
            PASSWORD,
            "Authorization",
            "NTLMSSP",
            "TlRMTVNT",
            "Negotiate TlRM",
        ] {
            assert!(!text.contains(secret), "{secret:?} in {name}");
        }
        assert!(text.contains("Envelope"), "{name} is decrypted XML");
    }
}

#[tokio::test]
async fn names_are_replaced_consistently_in_what_is_recorded() {
    let live = live_server().await;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().to_str().unwrap();
    let recorded = cli(&[
        "smb-sessions",
        live.url(),
        "--user",
        "demo",
        "--format",
        "json",
        "--record",
        record,
        "--record-replace",
        r"CONTOSO\Administrator=EXAMPLE\admin",
        "--record-replace",
        r#"o'brien & "sons" <ops>=user2"#,
    ])
    .await;
    assert!(recorded.status.success());
    let text: String = all_files(dir.path()).into_iter().map(|(_, t)| t).collect();
    assert!(
        !text.contains("Administrator") && !text.contains("brien"),
        "replaced everywhere"
    );
    let replay = FixtureServer::builder(FixtureSet::from_dir(dir.path()).unwrap())
        .credentials("demo", PASSWORD)
        .start()
        .await
        .unwrap();
    let replayed = cli(&[
        "smb-sessions",
        replay.url(),
        "--user",
        "demo",
        "--format",
        "json",
    ])
    .await;
    let users: Vec<String> = records(&replayed)
        .iter()
        .filter_map(|r| r["ClientUserName"].as_str().map(str::to_owned))
        .collect();
    assert!(
        users.contains(&r"EXAMPLE\admin".to_owned())
            && users.contains(&r"CONTOSO\user2".to_owned()),
        "{users:?}"
    );
}

#[tokio::test]
async fn the_library_hook_records_the_same_format() {
    let live = live_server().await;
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::new(dir.path()).unwrap());
    let client = Client::builder(live.url())
        .credentials(Credentials::new("demo", PASSWORD))
        .exchange_hook(recorder.clone())
        .build()
        .unwrap();
    let live_sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert!(recorder.error().is_none());
    let replay = FixtureServer::start(dir.path()).await.unwrap();
    let replayed: Vec<SmbSession> = Client::builder(replay.url())
        .credentials(Credentials::new("demo", "demo"))
        .build()
        .unwrap()
        .enumerate()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(live_sessions.len(), 7);
    assert_eq!(live_sessions, replayed);
}

#[tokio::test]
async fn an_unexpected_request_gets_a_fault_naming_the_closest_recording() {
    let server = FixtureServer::start(demo_fixtures()).await.unwrap();
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .build()
        .unwrap();
    let error = client
        .query::<winrm_sessions::cim::Instance>("root/cimv2", "SELECT * FROM Win32_Service")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("no recorded exchange matches Enumerate"),
        "{text}"
    );
    assert!(text.contains("closest recorded: 00"), "{text}");
    assert_eq!(server.stats().unmatched, 1);

    // serve-fixtures logs the same on stderr.
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve-fixtures", demo_fixtures().to_str().unwrap()])
        .env("WINRM_PASSWORD", "demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).await.unwrap();
    let client = Client::builder(url.trim())
        .credentials(Credentials::new("demo", "demo"))
        .build()
        .unwrap();
    let _ = client
        .query::<winrm_sessions::cim::Instance>("root/cimv2", "SELECT * FROM Win32_Service")
        .try_collect::<Vec<_>>()
        .await;
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("No recorded exchange matches the request") && stderr.contains("closest"),
        "{stderr}"
    );
}
