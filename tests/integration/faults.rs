//! What real servers do to an enumeration, and errors that say why: `w:TimedOut` on a Pull, a
//! lost Enumerate or Pull, a crash in the middle of a method call, faults that leave the
//! context alive, names that are not XML names, targets refused or unknown. Each ends in the
//! complete data or one typed error naming the target and the cause.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{Instance, Reference};
use winrm_sessions::classes::SmbSession;
use winrm_sessions::client_options::MethodInput;
use winrm_sessions::{Auth, Client, Credentials, ErrorKind};

use crate::support::{Behavior, Proxy, demo_server, hostile_server_seeing, watch_memory};

const BIN: &str = env!("CARGO_BIN_EXE_winrm-sessions");

const SMB: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession";

/// What a request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Enumerate,
    Pull,
    Release,
    Invoke,
    Other,
}

/// Requests a scripted server received, by kind, and the contexts it was asked to release.
#[derive(Default)]
struct Seen {
    enumerates: AtomicUsize,
    pulls: AtomicUsize,
    releases: AtomicUsize,
    invokes: AtomicUsize,
    released: std::sync::Mutex<Vec<String>>,
}

impl Seen {
    fn count(&self, op: Op) -> usize {
        match op {
            Op::Enumerate => &self.enumerates,
            Op::Pull => &self.pulls,
            Op::Release => &self.releases,
            Op::Invoke => &self.invokes,
            Op::Other => return 0,
        }
        .load(Ordering::SeqCst)
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let rest = &text[start..];
    Some(&rest[..rest.find(close)?])
}

fn op_of(body: &str) -> Op {
    let action =
        between(body, "<a:Action s:mustUnderstand=\"true\">", "</a:Action>").unwrap_or_default();
    match action.rsplit('/').next().unwrap_or_default() {
        "Enumerate" => Op::Enumerate,
        "Pull" => Op::Pull,
        "Release" => Op::Release,
        _ if action.starts_with("http://schemas.microsoft.com/wbem/wsman/1/wmi/") => Op::Invoke,
        _ => Op::Other,
    }
}

/// A response envelope with `action`, relating to the request.
fn envelope(action: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#,
            "<s:Header><a:Action>{}</a:Action><a:RelatesTo>{{RELATES}}</a:RelatesTo></s:Header><s:Body>{}</s:Body></s:Envelope>"
        ),
        action, body
    )
}

/// A fault as Windows sends it: HTTP 500, a SOAP fault with a subcode and a WSManFault code.
fn fault(subcode: &str, code: u32, message: &str) -> Behavior {
    let body = envelope(
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        &format!(
            concat!(
                r#"<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{}</s:Value></s:Subcode></s:Code>"#,
                r#"<s:Reason><s:Text xml:lang="en-US">{}</s:Text></s:Reason><s:Detail>"#,
                r#"<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{}" Machine="fs01"><f:Message>{}</f:Message></f:WSManFault>"#,
                "</s:Detail></s:Fault>"
            ),
            subcode, message, code, message
        ),
    );
    Behavior::Status(500, body)
}

fn timed_out() -> Behavior {
    fault(
        "w:TimedOut",
        2150858793,
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
    )
}

/// Page of `size` sessions from `offset` out of `total`, as the answer to `op`.
fn page(op: Op, offset: usize, size: usize, total: usize) -> Behavior {
    let end = (offset + size).min(total);
    let items: String = (offset..end)
        .map(|id| {
            format!(
                r#"<p:MSFT_SmbSession xmlns:p="{SMB}"><p:ClientComputerName>10.0.{}.{}</p:ClientComputerName><p:ClientUserName>CONTOSO\user{id}</p:ClientUserName><p:NumOpens>{}</p:NumOpens><p:SessionId>{}</p:SessionId></p:MSFT_SmbSession>"#,
                id / 256,
                id % 256,
                id % 7,
                1_000_000 + id
            )
        })
        .collect();
    let tail = if end >= total {
        "<w:EndOfSequence/>".to_owned()
    } else {
        format!("<n:EnumerationContext>uuid:ctx-{end}</n:EnumerationContext>")
    };
    let (element, items_ns) = match op {
        Op::Enumerate => ("EnumerateResponse", "w"),
        _ => ("PullResponse", "n"),
    };
    let tail = if op == Op::Pull {
        tail.replace("w:EndOfSequence", "n:EndOfSequence")
    } else {
        tail
    };
    Behavior::Soap(envelope(
        &format!("http://schemas.xmlsoap.org/ws/2004/09/enumeration/{element}"),
        &format!("<n:{element}><{items_ns}:Items>{items}</{items_ns}:Items>{tail}</n:{element}>"),
    ))
}

/// A WinRM server enumerating `total` SMB sessions in pages of the requested MaxElements, whose
/// contexts say where the next page starts; `twist` may answer a request otherwise (it gets
/// the operation and how many of that kind came before).
async fn scripted_server(
    total: usize,
    twist: impl Fn(Op, usize) -> Option<Behavior> + Send + Sync + 'static,
) -> (String, Arc<Seen>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let (url, task) = hostile_server_seeing(move |_, body| {
        let op = op_of(body);
        let nth = match op {
            Op::Enumerate => counts.enumerates.fetch_add(1, Ordering::SeqCst),
            Op::Pull => counts.pulls.fetch_add(1, Ordering::SeqCst),
            Op::Release => counts.releases.fetch_add(1, Ordering::SeqCst),
            Op::Invoke => counts.invokes.fetch_add(1, Ordering::SeqCst),
            Op::Other => 0,
        };
        if let Some(behavior) = twist(op, nth) {
            return behavior;
        }
        let size: usize = between(body, "<w:MaxElements>", "</w:MaxElements>")
            .or_else(|| between(body, "<n:MaxElements>", "</n:MaxElements>"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(20);
        let context = between(body, "<n:EnumerationContext>", "</n:EnumerationContext>");
        match op {
            Op::Enumerate => page(op, 0, size, total),
            Op::Pull => {
                let offset = context
                    .and_then(|c| c.strip_prefix("uuid:ctx-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                if offset > total {
                    fault("n:InvalidEnumerationContext", 2150858843, "unknown context")
                } else {
                    page(op, offset, size, total)
                }
            }
            Op::Release => {
                counts
                    .released
                    .lock()
                    .unwrap()
                    .push(context.unwrap_or_default().to_owned());
                Behavior::Soap(envelope(
                    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse",
                    "",
                ))
            }
            Op::Invoke | Op::Other => fault("w:ActionNotSupported", 2150858771, "not here"),
        }
    })
    .await;
    (url, seen, task)
}

/// Basic over HTTP: the requests arrive as they were written.
fn basic_client(url: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", "demo"))
        .auth(Auth::Basic)
        .danger_allow_basic_over_http(true)
        .build()
        .unwrap()
}

fn cli(url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["smb-sessions", url, "--auth", "basic", "--allow-plaintext"])
        .args(["--format", "json"])
        .args(extra)
        .env("WINRM_USER", "demo")
        .env("WINRM_PASSWORD", "demo")
        .env("KRB5CCNAME", "FILE:/nonexistent")
        .env_remove("WINRM_SESSIONS_LOG")
        .stdin(Stdio::null());
    command
}

async fn run(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn session_ids(ndjson: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(ndjson)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["SessionId"]
                .as_u64()
                .unwrap()
        })
        .collect()
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

#[tokio::test]
async fn an_enumerate_lost_twice_is_an_error_not_a_loop() {
    let (url, seen, _server) = scripted_server(120, |op, _| {
        (op == Op::Enumerate).then_some(Behavior::Close)
    })
    .await;
    let e = basic_client(&url)
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::ConnectionClosed { .. }),
        "{e:?}"
    );
    assert_eq!(
        e.report().to_string(),
        format!("{url}: the connection was closed before the response was complete")
    );
    assert_eq!(seen.count(Op::Enumerate), 2);
}

fn negotiate_client(url: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", "demo"))
        .auth(Auth::Ntlm)
        .operation_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_lost_enumerate_is_sent_again_under_ntlm() {
    let server = demo_server().await;
    let proxy = Proxy::start(server.addr()).await;
    // The handshake is two requests; the third, the Enumerate, never arrives.
    proxy.cut_request(3);
    let sessions: Vec<SmbSession> = negotiate_client(&proxy.url)
        .enumerate()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 7);
    assert_eq!(server.stats().unmatched, 0);
    // 2 (handshake) + 1 (cut) + 2 (handshake again) + Enumerate + 3 Pulls.
    assert_eq!(proxy.requests(), 9);
}

#[tokio::test]
async fn a_handshake_whose_connection_closes_is_not_a_refused_password() {
    let (url, _seen, _server) = scripted_server(1, |_, _| Some(Behavior::Close)).await;
    let e = negotiate_client(&url)
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(!e.is_authentication(), "{e:?}");
    assert!(
        matches!(e.kind(), ErrorKind::ConnectionClosed { .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_lost_pull_is_never_sent_again() {
    let (url, seen, _server) = scripted_server(120, |op, nth| {
        (op == Op::Pull && nth == 1).then_some(Behavior::Close)
    })
    .await;
    let mut stream = basic_client(&url)
        .enumerate::<SmbSession>()
        .max_elements(50);
    let mut ids = Vec::new();
    let error = loop {
        match stream.next().await.unwrap() {
            Ok(session) => ids.push(session.session_id),
            Err(e) => break e,
        }
    };
    assert_eq!(ids.len(), 100, "two pages, then the lost one");
    assert!(
        matches!(error.kind(), ErrorKind::EnumerationInterrupted { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.report().to_string(),
        format!(
            "{url}: enumeration interrupted while a Pull was in flight (context uuid:ctx-100); start it again: the connection was closed before the response was complete"
        )
    );
    assert!(stream.next().await.is_none());
    assert_eq!(seen.count(Op::Pull), 2, "the lost Pull was not sent again");
}

#[tokio::test]
async fn a_fault_that_leaves_the_context_alive_is_followed_by_a_release() {
    let (url, seen, _server) = scripted_server(500, |op, nth| {
        (op == Op::Pull && nth == 2).then(|| {
            fault(
                "w:QuotaLimit",
                2144108120,
                "The WS-Management service cannot process the request. This user is allowed a maximum number of 1500 concurrent operations, which has been exceeded.",
            )
        })
    })
    .await;
    let e = basic_client(&url)
        .enumerate::<SmbSession>()
        .max_elements(50)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(e.fault().is_some_and(|f| f.is_quota_exceeded()), "{e:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.count(Op::Release) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *seen.released.lock().unwrap(),
        ["uuid:ctx-150"],
        "the context of the faulted Pull, released once"
    );

    // A context the server says is gone is not released.
    let (url, seen, _server) = scripted_server(500, |op, nth| {
        (op == Op::Pull && nth == 0)
            .then(|| fault("n:InvalidEnumerationContext", 2150858843, "expired"))
    })
    .await;
    let e = basic_client(&url)
        .enumerate::<SmbSession>()
        .max_elements(50)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        e.fault()
            .is_some_and(|f| f.is_invalid_enumeration_context()),
        "{e:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.count(Op::Release), 0);
}

fn session_reference() -> Reference {
    SmbSession::reference_for(8_813_272_891_621)
}

#[tokio::test]
async fn a_crash_during_a_method_call_says_it_may_have_run_and_is_not_sent_again() {
    // Basic: the server reads the call and dies.
    let (url, seen, _server) =
        scripted_server(1, |op, _| (op == Op::Invoke).then_some(Behavior::Close)).await;
    let e = basic_client(&url)
        .force_close_smb_session(8_813_272_891_621)
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvokeInterrupted { .. }),
        "{e:?}"
    );
    assert_eq!(
        e.report().to_string(),
        format!(
            "{url}: the connection failed during MSFT_SmbSession.ForceClose: it may or may not have run: the connection was closed before the response was complete"
        )
    );
    assert_eq!(seen.count(Op::Invoke), 1, "never sent twice");

    // NTLM: the connection carrying the sealed call breaks; not a refused password.
    let server = demo_server().await;
    let proxy = Proxy::start(server.addr()).await;
    proxy.cut_request(3);
    let e = negotiate_client(&proxy.url)
        .force_close_smb_session(8_813_272_891_621)
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::InvokeInterrupted { .. }) && !e.is_authentication(),
        "{e:?}"
    );
    assert_eq!(proxy.requests(), 3, "not sent again");
}

#[tokio::test]
async fn method_and_parameter_names_that_are_not_xml_names_send_nothing() {
    let (url, seen, _server) = scripted_server(1, |_, _| None).await;
    let client = basic_client(&url);
    for (method, parameter) in [("Force Close", "Reason"), ("ForceClose", "a>b")] {
        let e = client
            .invoke::<Instance>(
                &session_reference(),
                method,
                MethodInput::new().arg(parameter, "x"),
            )
            .await
            .unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidName(_)), "{e:?}");
        assert!(e.to_string().contains("is not a valid name"), "{e}");
    }
    assert_eq!(seen.count(Op::Invoke), 0);
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
            .map(|i| format!("http://127.0.0.1:{}/wsman\n", 1 + i % 5))
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
    assert!(large <= 100.0, "{large} MB");
    assert!(large < small + 25.0, "{small} MB -> {large} MB");
}
