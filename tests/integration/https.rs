//! HTTPS: verification against a custom CA, refusal of an unknown CA or a wrong name, and the
//! explicitly named opt-out.

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::testing::{FixtureServer, FixtureSet};
use winrm_sessions::{Client, Credentials};

use crate::pki::{pki, pki_with};
use crate::support::demo_fixtures;

async fn https_server(names: &[&str]) -> (FixtureServer, String) {
    serve(pki(names)).await
}

async fn serve((ca, cert, key): (String, String, String)) -> (FixtureServer, String) {
    let server = FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
        .tls(cert, key)
        .start()
        .await
        .unwrap();
    (server, ca)
}

#[tokio::test]
async fn an_expired_certificate_says_so_and_when() {
    let (server, ca) = serve(pki_with(&["127.0.0.1"], |params| {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }))
    .await;
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .ca_pem(ca)
        .build()
        .unwrap();
    let e = client
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            winrm_sessions::ErrorKind::Tls(winrm_sessions::TlsError::Expired { .. })
        ),
        "{e:?}"
    );
    assert!(!e.is_retryable());
    assert!(
        e.report()
            .to_string()
            .ends_with("TLS: the server's certificate expired (valid until 2021-01-01T00:00:00Z)"),
        "{}",
        e.report()
    );
}

#[tokio::test]
async fn https_with_a_custom_ca_and_basic_auth() {
    let (server, ca) = https_server(&["127.0.0.1", "localhost"]).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .ca_file(&ca_file)
        .build()
        .expect("Basic is allowed over HTTPS without any opt-in");
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7);
}

#[tokio::test]
async fn an_unknown_ca_or_a_wrong_name_is_refused_unless_explicitly_waived() {
    let (server, ca) = https_server(&["fs01.contoso.test"]).await;
    // Right CA, wrong name.
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .ca_pem(ca.clone())
        .build()
        .unwrap();
    let e = client
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(e.is_connect() && !e.is_retryable(), "{e:?}");
    assert_eq!(
        e.report().to_string(),
        format!(
            "{}: TLS: the server's certificate is for fs01.contoso.test, not for 127.0.0.1",
            server.url()
        )
    );
    // Unknown CA.
    let (server2, _) = https_server(&["127.0.0.1"]).await;
    let client = Client::builder(server2.url())
        .credentials(Credentials::new("demo", "demo"))
        .build()
        .unwrap();
    let e = client
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(e.is_connect() && !e.is_retryable(), "{e:?}");
    assert!(
        e.report()
            .to_string()
            .ends_with("TLS: the server's certificate is not signed by a trusted certificate authority (unknown issuer: trust its CA with --ca-file / ClientBuilder::ca_file)"),
        "{}",
        e.report()
    );
    // The loudly named opt-out.
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert_eq!(
        client
            .enumerate::<SmbSession>()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        7
    );
}

#[test]
fn a_ca_file_without_certificates_is_a_config_error() {
    let e = Client::builder("fs01")
        .https(true)
        .ca_pem("not a certificate")
        .build()
        .unwrap_err();
    assert!(
        matches!(e.kind(), winrm_sessions::ErrorKind::Config(_)),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("the CA file holds no PEM certificate"),
        "{e}"
    );
}

#[tokio::test]
async fn ntlm_over_https_binds_to_the_channel() {
    let (server, ca) = https_server(&["127.0.0.1"]).await;
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .auth(winrm_sessions::Auth::Ntlm)
        .ca_pem(ca)
        .build()
        .unwrap();
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7);
}

/// A client certificate issued by `ca` (rcgen), as PEM certificate and key.
fn client_certificate(
    ca_params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
) -> (String, String) {
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "auditor");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn certificate_authentication_over_https() {
    let (server_ca, cert, key) = pki(&["127.0.0.1"]);
    let client_ca_key = rcgen::KeyPair::generate().unwrap();
    let mut client_ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client_ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let client_ca = client_ca_params.self_signed(&client_ca_key).unwrap();
    let (client_cert, client_key) = client_certificate(client_ca_params, client_ca_key);
    let server = FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
        .tls(cert, key)
        .require_client_certificate(client_ca.pem())
        .start()
        .await
        .unwrap();
    let client = Client::builder(server.url())
        .ca_pem(server_ca.clone())
        .client_certificate(&client_cert, &client_key)
        .build()
        .unwrap();
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7);
    // Without a certificate the TLS handshake is refused.
    let anonymous = Client::builder(server.url())
        .ca_pem(server_ca)
        .credentials(Credentials::new("demo", "demo"))
        .auth(winrm_sessions::Auth::Basic)
        .build()
        .unwrap();
    let error = anonymous
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        error.is_connect() || matches!(error.kind(), winrm_sessions::ErrorKind::Transport(_)),
        "{error:?}"
    );
    // Certificate authentication over plain HTTP is refused before anything is sent.
    let error = Client::builder("http://127.0.0.1:1/wsman")
        .client_certificate(&client_cert, &client_key)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("needs HTTPS"), "{error}");
}

/// A client sending Basic over HTTPS, retargeted (as a fleet does) to a plain-HTTP host, does
/// not send the password there in clear unless that was allowed.
#[test]
fn basic_over_https_retargeted_to_plain_http_is_refused() {
    let (ca, _, _) = pki(&["fs01.example.test"]);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let template = |allow: bool| {
        Client::builder("https://fs01.example.test/wsman")
            .credentials(Credentials::new("demo", "demo"))
            .auth(winrm_sessions::Auth::Basic)
            .ca_file(&ca_file)
            .danger_allow_basic_over_http(allow)
            .build()
            .unwrap()
    };
    let e = template(false)
        .with_target("http://fs02.example.test/wsman")
        .expect_err("refused");
    assert!(
        matches!(e.kind(), winrm_sessions::ErrorKind::PlaintextBasicRefused),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("http://fs02.example.test/wsman: "),
        "{e}"
    );
    assert!(
        template(false)
            .with_target("https://fs02.example.test")
            .is_ok()
    );
    assert!(
        template(true)
            .with_target("http://fs02.example.test")
            .is_ok()
    );
}

/// `https://` to a port that speaks plain HTTP says so, with the port to use instead.
#[tokio::test]
async fn https_to_a_plain_http_port_says_the_port_speaks_http() {
    let server = crate::support::demo_server().await;
    let url = server.url().replace("http://", "https://");
    let error = Client::builder(&url)
        .credentials(Credentials::new("demo", "demo"))
        .build()
        .unwrap()
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let said = error.to_string();
    assert!(
        said.contains(&format!("{} answered in plain HTTP", server.addr()))
            && said.contains("5985"),
        "{said}"
    );
    assert!(!error.is_retryable(), "{error:?}");
}
