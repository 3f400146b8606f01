//! Associations, joins, WQL and methods through the fixture server.

use futures_util::TryStreamExt;
use winrm_sessions::ErrorKind;
use winrm_sessions::cim::{Instance, Reference};
use winrm_sessions::classes::{
    LogonSession, Process, ServerConnection, ServerSession, SessionProcess, SmbSession,
};
use winrm_sessions::client_options::Associations;
use winrm_sessions::wsman::wql;

use crate::support::{client_for, demo_server};

/// As the README's example builds it.
fn session(computer: &str, user: &str) -> Reference {
    winrm_sessions::classes::ServerSession::reference_for(computer, user)
}

fn logon(id: &str) -> Reference {
    Reference::for_class(&winrm_sessions::cim::ClassPath::new(
        "root/cimv2",
        "Win32_LogonSession",
    ))
    .with_selector("LogonId", id)
}

#[tokio::test]
async fn associators_and_references_through_the_association_filter() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let connections: Vec<ServerConnection> = client
        .associators(
            &session("10.20.30.40", "Пользователь"),
            Associations::new()
                .association_class("Win32_SessionConnection")
                .result_class("Win32_ServerConnection"),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].share_name, "Общий");
    let links: Vec<SessionProcess> = client
        .references(
            &logon("5120044"),
            Associations::new().result_class("Win32_SessionProcess"),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(links.len(), 2);
    assert!(
        links
            .iter()
            .all(|l| l.antecedent.selector("LogonId").and_then(|v| v.as_text()) == Some("5120044"))
    );
}

#[tokio::test]
async fn an_association_the_provider_rejects_is_a_typed_fault() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let error = client
        .associators::<Instance>(
            &logon("999"),
            Associations::new().association_class("Win32_NoSuchAssociation"),
        )
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        error.fault().is_some_and(|f| f.is_invalid_filter()),
        "{error:?}"
    );
}

#[tokio::test]
async fn wql_associators_of_built_safely() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let query = wql::associators_of(
        &logon("5120044"),
        Some("Win32_SessionProcess"),
        Some("Win32_Process"),
    )
    .unwrap();
    let processes: Vec<Process> = client
        .query("root/cimv2", query)
        .try_collect()
        .await
        .unwrap();
    let names: Vec<_> = processes.iter().filter_map(|p| p.name.as_deref()).collect();
    assert_eq!(names, ["explorer.exe", "powershell.exe"]);
}

#[tokio::test]
async fn server_sessions_join_their_connections_in_three_enumerations() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let before = server.stats().matched;
    let joined = client.server_sessions_with_connections().await.unwrap();
    assert_eq!(joined.len(), 4);
    let admin = joined
        .iter()
        .find(|j| j.session.user_name == "Administrator")
        .unwrap();
    let mut shares: Vec<_> = admin
        .connections
        .iter()
        .map(|c| c.share_name.as_str())
        .collect();
    shares.sort();
    assert_eq!(shares, ["Finance", "IPC$", "Software"]);
    let nobody: Vec<&ServerSession> = joined
        .iter()
        .filter(|j| j.connections.is_empty())
        .map(|j| &j.session)
        .collect();
    assert!(
        nobody.is_empty(),
        "every demo session has a connection: {nobody:?}"
    );
    // Three enumerations of two pages each, not one per session.
    assert_eq!(server.stats().matched - before, 6);
}

#[tokio::test]
async fn logon_sessions_join_their_processes() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let joined = client.logon_sessions_with_processes().await.unwrap();
    let names = |id: &str| -> Vec<String> {
        let mut names: Vec<String> = joined
            .iter()
            .find(|j| j.session.logon_id == id)
            .unwrap()
            .processes
            .iter()
            .filter_map(|p| p.name.clone())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("3254871"), ["robocopy.exe", "svchost.exe"]);
    assert_eq!(names("5120044"), ["explorer.exe", "powershell.exe"]);
    assert!(names("997").is_empty());
    let _: &LogonSession = &joined[0].session;
}

#[tokio::test]
async fn force_close_outcomes() {
    let server = demo_server().await;
    let client = client_for(server.url());
    client
        .force_close_smb_session(8_813_272_891_625)
        .await
        .unwrap();
    let gone = client
        .force_close_smb_session(8_813_272_891_640)
        .await
        .unwrap_err();
    match gone.kind() {
        ErrorKind::MethodFailed {
            return_value,
            meaning,
            ..
        } => {
            assert_eq!(*return_value, 2);
            assert!(meaning.as_deref().unwrap().contains("no such session"));
        }
        other => panic!("{other:?}"),
    }
    let denied = client
        .force_close_smb_session(8_813_272_891_700)
        .await
        .unwrap_err();
    assert!(denied.is_access_denied(), "{denied:?}");
}

#[tokio::test]
async fn a_reference_to_an_instance_that_no_longer_exists() {
    let server = demo_server().await;
    let client = client_for(server.url());
    let error = client
        .get::<SmbSession>(&SmbSession::reference_for(1234))
        .await
        .unwrap_err();
    assert!(error.fault().is_some_and(|f| f.is_not_found()), "{error:?}");
}
