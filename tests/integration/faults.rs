//! What real servers do to an enumeration, and errors that say why: a lost Enumerate or Pull,
//! a crash in the middle of a method call, faults that leave the context alive, names that are
//! not XML names. Each ends in the complete data or one typed error naming the target and the
//! cause. (The same through the command line: the CLI crate's `faults` tests.)

use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{Instance, Reference};
use winrm_sessions::classes::SmbSession;
use winrm_sessions::client_options::MethodInput;
use winrm_sessions::{Auth, Client, Credentials, ErrorKind};

use crate::support::scripted::{Op, SMB, envelope, fault, scripted_server};
use crate::support::{Behavior, Proxy, basic_client, demo_server};

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
    let client = basic_client(&url);
    let e = client
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
    // Until every Release this client started has been answered: none was.
    assert!(client.wait_for_releases(Duration::from_secs(5)).await);
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

#[tokio::test]
async fn a_method_answer_without_return_value_is_not_success() {
    let (url, _seen, _server) = scripted_server(1, |op, _| {
        (op == Op::Invoke).then(|| {
            Behavior::Soap(envelope(
                "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession/ForceCloseResponse",
                &format!(r#"<p:ForceClose_OUTPUT xmlns:p="{SMB}"></p:ForceClose_OUTPUT>"#),
            ))
        })
    })
    .await;
    let e = basic_client(&url)
        .force_close_smb_session(8_813_272_891_621)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("without a ReturnValue"), "{e}");
}
