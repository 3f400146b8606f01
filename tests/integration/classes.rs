//! Every session class, end to end through the fixture server: typed values, paging, Release.

use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{ClassPath, Instance, SelectorValue, Value};
use winrm_sessions::classes::{
    LogonSession, Process, ServerConnection, ServerSession, Session, SessionConnection,
    SessionProcess, SmbSession,
};

use crate::support::{client_for, demo_server};

#[tokio::test]
async fn smb_sessions_arrive_typed_over_four_pages_with_exact_uint64() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7);
    let max = sessions.iter().find(|s| s.session_id == u64::MAX).unwrap();
    assert_eq!(max.num_opens, Some(u64::MAX));
    assert_eq!(
        max.client_user_name.as_deref(),
        Some(r#"CONTOSO\o'brien & "sons" <ops>"#)
    );
    assert_eq!(
        max.client_computer_name.as_deref(),
        Some("[2001:db8:85a3::8a2e:370:7334]")
    );
    let zoe = &sessions[1];
    assert_eq!(
        zoe.client_user_name.as_deref(),
        Some("CONTOSO\\Zoë.Ångström")
    );
    let backup = sessions
        .iter()
        .find(|s| s.session_id == 8_813_272_891_633)
        .unwrap();
    assert_eq!(backup.dialect, None, "nil stays None");
    let anonymous = sessions
        .iter()
        .find(|s| s.session_id == 8_813_272_891_640)
        .unwrap();
    assert_eq!(
        anonymous.client_user_name.as_deref(),
        Some(""),
        "empty string is not nil"
    );
    assert_eq!(server.stats().unmatched, 0);
    assert_eq!(server.stats().matched, 4, "one Enumerate and three Pulls");
}

#[tokio::test]
async fn server_sessions_connections_and_their_association() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let sessions: Vec<ServerSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 4);
    assert_eq!(sessions[2].active_time, Some(u32::MAX));
    let connections: Vec<ServerConnection> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(connections.len(), 6);
    assert!(connections.iter().any(|c| c.share_name == "Projets & Co"));
    let links: Vec<SessionConnection> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(links.len(), 6);
    for link in &links {
        let session = link.antecedent.class_path().unwrap();
        assert_eq!(session.class_name(), "Win32_ServerSession");
        let user = link
            .antecedent
            .selector("UserName")
            .and_then(SelectorValue::as_text)
            .unwrap();
        assert!(sessions.iter().any(|s| s.user_name == user), "{user}");
        assert_eq!(
            link.dependent.class_path().unwrap().class_name(),
            "Win32_ServerConnection"
        );
    }
}

#[tokio::test]
async fn logon_sessions_keep_datetime_offsets_and_processes_decode() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let logons: Vec<LogonSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(logons.len(), 6);
    let network = logons.iter().find(|l| l.logon_id == "3254871").unwrap();
    let start = network.start_time.as_ref().unwrap();
    assert_eq!(start.as_str(), "2026-11-20T08:15:42.866781-08:00");
    assert_eq!(start.to_offset_datetime().offset().whole_hours(), -8);
    assert_eq!(logons.last().unwrap().start_time, None);
    let processes: Vec<Process> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(processes.len(), 6);
    let explorer = processes
        .iter()
        .find(|p| p.name.as_deref() == Some("explorer.exe"))
        .unwrap();
    assert_eq!(explorer.virtual_size, Some(u64::MAX));
    let links: Vec<SessionProcess> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(links.len(), 6);
    assert_eq!(
        links[0].dependent.class_path().unwrap().class_name(),
        "Win32_Process"
    );
}

#[tokio::test]
async fn abstract_win32_session_yields_concrete_subclasses() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let all: Vec<Session> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(all.len(), 10);
    let logons = all
        .iter()
        .filter(|s| matches!(s, Session::Logon(_)))
        .count();
    let servers = all
        .iter()
        .filter(|s| matches!(s, Session::Server(_)))
        .count();
    assert_eq!((logons, servers), (6, 4));
}

#[tokio::test]
async fn dynamic_instances_serve_any_class_and_wql_projections_are_named() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let smb: Vec<Instance> = client
        .enumerate_class(&ClassPath::new(
            "root/Microsoft/Windows/SMB",
            "MSFT_SmbSession",
        ))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(smb.len(), 7);
    assert_eq!(
        smb[0].get("SessionId"),
        Some(&Value::Text("8813272891621".into()))
    );
    let rows: Vec<Instance> = client
        .query("root/cimv2", "SELECT Name, ProcessId FROM Win32_Process")
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.class_name() == "Win32_Process"));
    let typed: Vec<Process> = client
        .query(
            "root/cimv2",
            "SELECT * FROM Win32_Process WHERE Name = 'powershell.exe'",
        )
        .try_collect()
        .await
        .unwrap();
    assert!(
        typed[0]
            .command_line
            .as_deref()
            .unwrap()
            .contains("& 'done' <log>")
    );
}

#[tokio::test]
async fn a_wql_fault_is_typed_and_names_the_target() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let err = client
        .query::<Instance>("root/cimv2", "SELECT * FROM Win32_NoSuchClass")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let fault = err.fault().expect("a fault");
    assert!(fault.is_invalid_filter());
    assert!(!err.is_retryable());
    assert_eq!(fault.operation.as_deref(), Some("ExecQuery"));
    assert!(err.to_string().starts_with(server.url()), "{err}");
    assert!(
        err.to_string()
            .contains("The specified class does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn get_by_reference_returns_the_instance() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let session: SmbSession = client
        .get(&SmbSession::reference_for(8_813_272_891_621))
        .await
        .unwrap();
    assert_eq!(
        session.client_user_name.as_deref(),
        Some("CONTOSO\\Administrator")
    );
}

#[tokio::test]
async fn dropping_an_enumeration_early_releases_it() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let mut stream = client.enumerate::<SmbSession>();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.session_id, 8_813_272_891_621);
    drop(stream);
    // The Release is sent in the background; the client knows when it has been answered.
    assert!(
        client
            .wait_for_releases(std::time::Duration::from_secs(5))
            .await
    );
    assert_eq!(server.stats().releases, 1);
    // A finished enumeration has nothing to release.
    let _: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert!(
        client
            .wait_for_releases(std::time::Duration::from_secs(5))
            .await
    );
    assert_eq!(server.stats().releases, 1);
}

#[tokio::test]
async fn concurrent_enumerations_of_one_class_replay_independently() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let (a, b) = tokio::join!(
        client.enumerate::<SmbSession>().try_collect::<Vec<_>>(),
        client.enumerate::<SmbSession>().try_collect::<Vec<_>>()
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len(), 7, "all the demo's SMB sessions");
    assert_eq!(a, b);
    assert_eq!(server.stats().unmatched, 0);
}
