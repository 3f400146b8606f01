//! Interoperability with implementations that are not ours, on loopback: NTLM with WinRM
//! message encryption against pyspnego's acceptor, and Kerberos against an MIT krb5 KDC in a
//! throwaway realm and MIT's GSSAPI acceptor (through pyspnego and python-gssapi). Our own server
//! talking to our own client proves little; these catch a shared misreading of a specification.
//!
//! Needs python3 with pyspnego and gssapi, and MIT krb5's KDC and tools (`krb5-kdc`,
//! `krb5-admin-server`, `krb5-user`); `scripts/interop-tests` installs them. A missing one
//! fails these tests: this suite never skips.

use std::process::Command;

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::{Auth, Client, Credentials};

use crate::support::interop::{Realm, acceptor, available, kdc_available, pyspnego_server, realm};

fn client(url: &str, password: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new(r"INTEROP\interop", password))
        .auth(Auth::Ntlm)
        .build()
        .unwrap()
}

#[tokio::test]
async fn ntlm_with_message_encryption_against_pyspnego() {
    if !available("spnego") {
        return;
    }
    let server = pyspnego_server();
    let sessions: Vec<SmbSession> = client(&server.url, "Interop-Passw0rd!")
        .enumerate()
        .try_collect()
        .await
        .expect("pyspnego authenticates us and unseals our requests; we unseal its answers");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].session_id, u64::MAX);
    assert_eq!(
        sessions[0].client_user_name.as_deref(),
        Some(r"INTEROP\pyspnego")
    );
    assert_eq!(
        sessions[1].client_computer_name.as_deref(),
        Some("[fe80::1]")
    );
}

#[tokio::test]
async fn pyspnego_refuses_a_wrong_password_and_we_say_so_once() {
    if !available("spnego") {
        return;
    }
    let server = pyspnego_server();
    let error = client(&server.url, "wrong")
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(error.is_authentication(), "{error:?}");
    assert!(!error.is_retryable());
}

fn kerberos_client(
    url: &str,
    realm: &Realm,
    auth: Auth,
    user: &str,
    password: &str,
    spn: &str,
) -> Client {
    Client::builder(url)
        .credentials(Credentials::new(user, password))
        .auth(auth)
        .kdc(realm.kdc.clone())
        .spn(spn)
        .build()
        .unwrap()
}

#[tokio::test]
async fn kerberos_with_message_encryption_against_mit_krb5() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    for (auth, user) in [
        (Auth::Kerberos, "alice@winrm.test"),
        (Auth::Negotiate, r"WINRM.TEST\alice"),
    ] {
        let sessions: Vec<SmbSession> = kerberos_client(
            &server.url,
            &realm,
            auth,
            user,
            "Alice-Passw0rd!",
            "HTTP/winrm.example.test",
        )
        .enumerate()
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{auth:?} as {user}: {e}"));
        assert_eq!(sessions.len(), 2, "{auth:?}");
        assert_eq!(sessions[0].session_id, u64::MAX);
    }
}

#[tokio::test]
async fn kerberos_failures_are_explained() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    let error = |user: &'static str, password: &'static str, spn: &'static str| {
        let client = kerberos_client(&server.url, &realm, Auth::Kerberos, user, password, spn);
        async move {
            client
                .enumerate::<SmbSession>()
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err()
        }
    };
    let wrong = error("alice@WINRM.TEST", "wrong", "HTTP/winrm.example.test").await;
    assert!(
        wrong.is_authentication() && !wrong.is_retryable(),
        "{wrong:?}"
    );
    let unknown_user = error("mallory@WINRM.TEST", "x", "HTTP/winrm.example.test").await;
    assert!(
        unknown_user
            .to_string()
            .contains("does not know the user mallory@WINRM.TEST"),
        "{unknown_user}"
    );
    let unknown_spn = error(
        "alice@WINRM.TEST",
        "Alice-Passw0rd!",
        "HTTP/nowhere.example.test",
    )
    .await;
    assert!(
        unknown_spn.to_string().contains("service principal"),
        "{unknown_spn}"
    );
}

#[tokio::test]
async fn kerberos_from_a_keytab_without_a_password() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    let client = Client::builder(&server.url)
        .kerberos_keytab("alice@WINRM.TEST", &realm.user_keytab)
        .kdc(realm.kdc.clone())
        .spn("HTTP/winrm.example.test")
        .build()
        .unwrap();
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 2);
    let missing = Client::builder(&server.url)
        .kerberos_keytab("bob@WINRM.TEST", &realm.user_keytab)
        .kdc(realm.kdc.clone())
        .build()
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no AES key for bob@WINRM.TEST"),
        "{missing}"
    );
}

#[tokio::test]
async fn kerberos_from_the_ticket_cache_kinit_wrote() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let ccache = realm.ccache.clone().expect("kinit wrote a cache");
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    let client = Client::builder(&server.url)
        .kerberos_ticket_cache_file(&ccache)
        .kdc(realm.kdc.clone())
        .spn("HTTP/winrm.example.test")
        .build()
        .unwrap();
    // Several requests: the service ticket is asked for once, then sealing goes on in order.
    for _ in 0..3 {
        let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
        assert_eq!(sessions.len(), 2);
    }
    // A cache that already holds the service ticket (`kvno` put it there) needs no KDC.
    let realm_ccache = ccache.clone();
    let with_service_ticket = tempfile::tempdir().unwrap();
    let ccache = with_service_ticket.path().join("krb5cc");
    std::fs::copy(&realm_ccache, &ccache).unwrap();
    let kvno = Command::new("kvno")
        .arg("HTTP/winrm.example.test@WINRM.TEST")
        .env("KRB5_CONFIG", &realm.krb5_config)
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .status()
        .expect("kvno runs");
    assert!(kvno.success());
    let offline = Client::builder(&server.url)
        .kerberos_ticket_cache_file(&ccache)
        .kdc("127.0.0.1:1")
        .spn("HTTP/winrm.example.test")
        .build()
        .unwrap();
    let sessions: Vec<SmbSession> = offline.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 2);

    let unknown_spn = Client::builder(&server.url)
        .kerberos_ticket_cache_file(&realm_ccache)
        .kdc(realm.kdc.clone())
        .spn("HTTP/nowhere.example.test")
        .build()
        .unwrap()
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        unknown_spn.to_string().contains("service principal"),
        "{unknown_spn}"
    );
    let missing = Client::builder(&server.url)
        .kerberos_ticket_cache_file("/nonexistent/krb5cc")
        .build()
        .unwrap_err();
    assert!(missing.to_string().contains("run kinit"), "{missing}");
}

#[tokio::test]
async fn kerberos_over_https_is_bound_to_the_tls_channel() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let (ca, cert, key) = crate::pki::pki(&["127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let server = |bindings: &str| {
        acceptor(&[
            ("KRB5_CONFIG", &realm.krb5_config),
            ("KRB5_KTNAME", &realm.keytab),
            ("TLS_CERT_FILE", cert_file.to_str().unwrap()),
            ("TLS_KEY_FILE", key_file.to_str().unwrap()),
            ("CHANNEL_BINDINGS", bindings),
        ])
    };
    let ccache = realm.ccache.clone().expect("kinit wrote a cache");
    let enumerate = |url: String| {
        let client = Client::builder(url)
            .ca_pem(ca.clone())
            .kdc(realm.kdc.clone())
            .spn("HTTP/winrm.example.test")
            .kerberos_ticket_cache_file(&ccache)
            .build()
            .unwrap();
        async move {
            client
                .enumerate::<SmbSession>()
                .try_collect::<Vec<_>>()
                .await
        }
    };
    let bound = server("cert");
    assert!(bound.url.starts_with("https://"));
    let sessions = enumerate(bound.url.clone()).await.unwrap();
    assert_eq!(sessions.len(), 2);
    // An acceptor that expects the bindings of another certificate (what a man in the middle
    // presenting its own certificate would see) refuses: ours are present and checked.
    let mismatched = server("wrong");
    let refused = enumerate(mismatched.url.clone()).await.unwrap_err();
    assert!(refused.is_authentication(), "{refused}");
}

#[tokio::test]
async fn kerberos_with_a_password_against_a_kdc_that_does_not_demand_preauthentication() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    // MIT's default for a new principal: the KDC answers the first AS-REQ with the ticket.
    for auth in [Auth::Kerberos, Auth::Negotiate] {
        let sessions: Vec<SmbSession> = kerberos_client(
            &server.url,
            &realm,
            auth,
            "bob@WINRM.TEST",
            "Bob-Passw0rd!",
            "HTTP/winrm.example.test",
        )
        .enumerate()
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{auth:?}: {e}"));
        assert_eq!(sessions.len(), 2);
    }
    let wrong = kerberos_client(
        &server.url,
        &realm,
        Auth::Kerberos,
        "bob@WINRM.TEST",
        "wrong",
        "HTTP/winrm.example.test",
    )
    .enumerate::<SmbSession>()
    .try_collect::<Vec<_>>()
    .await
    .unwrap_err();
    assert!(wrong.is_authentication(), "{wrong}");
}

#[tokio::test]
async fn kerberos_in_spnego_when_the_server_offers_only_negotiate() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
        ("OFFER", "Negotiate"),
    ]);
    for (auth, user) in [
        (Auth::Kerberos, "alice@WINRM.TEST"),
        (Auth::Negotiate, "alice@WINRM.TEST"),
    ] {
        let sessions: Vec<SmbSession> = kerberos_client(
            &server.url,
            &realm,
            auth,
            user,
            "Alice-Passw0rd!",
            "HTTP/winrm.example.test",
        )
        .enumerate()
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("{auth:?}: {e}"));
        assert_eq!(sessions.len(), 2);
    }
}

/// Counts the TCP connections made to a KDC: one per KDC exchange.
async fn counting_proxy(kdc: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let upstream: std::net::SocketAddr = kdc.parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (address, count)
}

#[tokio::test]
async fn a_wrong_kerberos_password_reaches_the_kdc_once_for_a_whole_fleet() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    let (kdc, connections) = counting_proxy(&realm.kdc).await;
    let template = Client::builder(&server.url)
        .credentials(Credentials::new("alice@WINRM.TEST", "wrong"))
        .auth(Auth::Kerberos)
        .kdc(kdc)
        .spn("HTTP/winrm.example.test")
        .build()
        .unwrap();
    let fleet = winrm_sessions::fleet::Fleet::new(move |target| template.with_target(target))
        .concurrency(4);
    let targets = vec![server.url.clone(); 8];
    let mut failures = 0;
    let mut events = fleet.enumerate::<SmbSession>(targets);
    while let Some(event) = futures_util::StreamExt::next(&mut events).await {
        if let winrm_sessions::fleet::HostEvent::Failed { error, .. } = event {
            assert!(error.is_authentication(), "{error}");
            failures += 1;
        }
    }
    assert_eq!(failures, 8);
    // The AS-REQ without pre-authentication, then the one with the wrong key: never again.
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one attempt at the password for the whole fleet"
    );
}

#[tokio::test]
async fn kerberos_with_a_password_and_ntlm_are_bound_to_the_tls_channel_too() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let (ca, cert, key) = crate::pki::pki(&["127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let server = |bindings: &str| {
        acceptor(&[
            ("KRB5_CONFIG", &realm.krb5_config),
            ("KRB5_KTNAME", &realm.keytab),
            ("TLS_CERT_FILE", cert_file.to_str().unwrap()),
            ("TLS_KEY_FILE", key_file.to_str().unwrap()),
            ("CHANNEL_BINDINGS", bindings),
        ])
    };
    let enumerate = |url: String, auth: Auth, user: &'static str, password: &'static str| {
        let client = Client::builder(url)
            .ca_pem(ca.clone())
            .credentials(Credentials::new(user, password))
            .auth(auth)
            .kdc(realm.kdc.clone())
            .spn("HTTP/winrm.example.test")
            .build()
            .unwrap();
        async move {
            client
                .enumerate::<SmbSession>()
                .try_collect::<Vec<_>>()
                .await
        }
    };
    let cases = [
        (Auth::Kerberos, "alice@WINRM.TEST", "Alice-Passw0rd!"),
        (Auth::Negotiate, "alice@WINRM.TEST", "Alice-Passw0rd!"),
        (Auth::Ntlm, r"INTEROP\interop", "Interop-Passw0rd!"),
    ];
    let bound = server("cert");
    for (auth, user, password) in cases {
        let sessions = enumerate(bound.url.clone(), auth, user, password)
            .await
            .unwrap_or_else(|e| panic!("{auth:?}: {e}"));
        assert_eq!(sessions.len(), 2);
    }
    let mismatched = server("wrong");
    for (auth, user, password) in cases {
        let refused = enumerate(mismatched.url.clone(), auth, user, password)
            .await
            .unwrap_err();
        assert!(refused.is_authentication(), "{auth:?}: {refused}");
    }
}
