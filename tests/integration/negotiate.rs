//! Negotiate sessions on the wire: nothing in clear, re-authentication after a dropped
//! connection, a lost Pull reported rather than skipped, and broken handshakes.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::classes::SmbSession;
use winrm_sessions::testing::{FixtureServer, FixtureSet};
use winrm_sessions::{Auth, Client, Credentials, ErrorKind};

use crate::support::{Behavior, Proxy, demo_fixtures, demo_server, hostile_server};

fn negotiate_client(url: &str, password: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", password))
        .auth(Auth::Negotiate)
        .operation_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_soap_body_and_no_password_cross_in_clear() {
    let server = demo_server().await;
    let proxy = Proxy::start(server.addr()).await;
    let sessions: Vec<SmbSession> = negotiate_client(&proxy.url, "demo")
        .enumerate()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 7);
    let up = proxy.upstream_bytes.lock().unwrap().clone();
    let down = proxy.downstream_bytes.lock().unwrap().clone();
    assert!(contains(&up, "Authorization: Negotiate") || contains(&up, "authorization: Negotiate"));
    assert!(contains(&up, "multipart/encrypted"), "requests are sealed");
    for secret in [
        "Envelope",
        "MSFT_SmbSession",
        "EnumerationContext",
        "demo\u{0}",
    ] {
        assert!(
            !contains(&up, secret),
            "{secret:?} crossed in clear towards the server"
        );
    }
    for secret in ["Envelope", "ClientUserName", "Administrator"] {
        assert!(
            !contains(&down, secret),
            "{secret:?} crossed in clear towards the client"
        );
    }
}

#[tokio::test]
async fn a_dropped_idle_connection_is_authenticated_again() {
    let server = demo_server().await;
    let proxy = Proxy::start(server.addr()).await;
    let client = negotiate_client(&proxy.url, "demo");
    let first: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    proxy.drop_connections();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(server.stats().unmatched, 0);
}

#[tokio::test]
async fn a_pull_lost_in_transit_is_interrupted_not_skipped() {
    let server = demo_server().await;
    let proxy = Proxy::start(server.addr()).await;
    let client = negotiate_client(&proxy.url, "demo");
    let mut stream = client.enumerate::<SmbSession>();
    // Handshake (two requests) and the Enumerate go through; the first Pull is cut.
    proxy.cut_request(4);
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.session_id, 8_813_272_891_621);
    let error = stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::EnumerationInterrupted { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
    assert!(
        stream.next().await.is_none(),
        "the stream ends; nothing is skipped silently"
    );
}

#[tokio::test]
async fn a_wrong_password_is_one_error_with_no_retry_loop() {
    let server = demo_server().await;
    let proxy = Proxy::start(server.addr()).await;
    let error = negotiate_client(&proxy.url, "wrong")
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        error.is_authentication() && !error.is_retryable(),
        "{error:?}"
    );
    assert_eq!(proxy.requests(), 2, "NEGOTIATE and AUTHENTICATE, once");
}

#[tokio::test]
async fn malformed_tokens_endless_401s_and_a_switch_of_mechanism_are_typed_errors() {
    type Case = (&'static str, fn(usize) -> Behavior);
    let cases: [Case; 3] = [
        ("malformed token", |_| {
            Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate AAAAAAAA\r\nContent-Length: 0\r\n\r\n".into())
        }),
        ("not base64", |_| {
            Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate ***\r\nContent-Length: 0\r\n\r\n".into())
        }),
        ("switch to Kerberos", |_| {
            Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Kerberos YWJj\r\nContent-Length: 0\r\n\r\n".into())
        }),
    ];
    for (name, behavior) in cases {
        let (url, _server) = hostile_server(behavior).await;
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            negotiate_client(&url, "demo")
                .enumerate::<SmbSession>()
                .try_collect::<Vec<_>>(),
        )
        .await
        .unwrap_or_else(|_| panic!("{name}: hung"));
        let error = result.expect_err(name);
        assert!(
            matches!(
                error.kind(),
                ErrorKind::Authentication { .. } | ErrorKind::Protocol(_)
            ),
            "{name}: {error:?}"
        );
        assert_eq!(error.target(), Some(url.as_str()), "{name}");
    }
}

#[tokio::test]
async fn a_server_that_answers_200_without_authenticating_is_refused() {
    let (url, _server) = hostile_server(|_| {
        Behavior::Raw(
            "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 0\r\n\r\n"
                .into(),
        )
    })
    .await;
    let error = negotiate_client(&url, "demo")
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        error.is_authentication()
            && error
                .to_string()
                .contains("before NTLM authentication completed, without proving who it is"),
        "{error}"
    );
}

/// Negotiate falls back to NTLM only when Kerberos cannot start (here: no KDC answers), and
/// only when allowed; forbidden, the host fails with the Kerberos error and no NTLM is sent.
#[tokio::test]
async fn ntlm_stands_in_for_a_kerberos_that_cannot_start_only_when_allowed() {
    let server = demo_server().await;
    let closed_kdc = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let client = |fallback: bool| {
        Client::builder(server.url())
            .credentials(Credentials::new(r"WINRM.TEST\demo", "demo"))
            .auth(Auth::Negotiate)
            .kdc(closed_kdc.clone())
            .ntlm_fallback(fallback)
            .operation_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    };
    let sessions: Vec<SmbSession> = client(true).enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7, "NTLM stood in");
    let requests = server.in_flight().total();
    let error = client(false)
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let said = error.report().to_string();
    assert!(said.contains("Kerberos") && said.contains("KDC"), "{said}");
    assert_eq!(
        server.in_flight().total(),
        requests,
        "no request (no NTLM handshake either) reached the server"
    );
}

/// The demo server, closing each connection after `requests` answers, announced or not.
async fn closing_server(requests: u32, announced: bool) -> FixtureServer {
    let builder = FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap());
    let builder = if announced {
        builder.close_connections_after(requests)
    } else {
        builder.drop_connections_after(requests)
    };
    builder.start().await.unwrap()
}

/// Every sealed request goes out on the connection whose handshake set up its context: when the
/// server closes connections (after the handshake's two requests and one sealed request), each
/// next request costs a new handshake on a new connection, never a sealed body on a connection
/// that did not authenticate, and never a lost Pull.
#[tokio::test]
async fn a_closed_connection_takes_its_context_with_it() {
    for announced in [true, false] {
        let server = closing_server(3, announced).await;
        let client = negotiate_client(server.url(), "demo");
        let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
        assert_eq!(sessions.len(), 7, "announced: {announced}");
        let replayed = server.stats();
        let connections = server.connection_stats();
        let sealed = replayed.matched + replayed.unmatched;
        assert!(sealed >= 3, "an Enumerate and Pulls: {replayed:?}");
        assert_eq!(replayed.unmatched, 0);
        assert_eq!(
            connections.unauthenticated, 0,
            "announced: {announced}: a request went out on a connection that never authenticated"
        );
        // One handshake and one connection per sealed request: each connection carried one.
        assert_eq!(connections.handshakes, sealed, "{connections:?}");
        assert_eq!(connections.opened, sealed, "{connections:?}");
        assert_eq!(connections.closed_by_server, sealed, "{connections:?}");
    }
}

/// The same over HTTPS, where the server's close comes as a TLS alert first.
#[tokio::test]
async fn over_https_a_closed_connection_takes_its_context_with_it() {
    let (ca, cert, key) = crate::pki::pki(&["127.0.0.1"]);
    let server = FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
        .tls(cert, key)
        .drop_connections_after(3)
        .start()
        .await
        .unwrap();
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .auth(Auth::Ntlm)
        .ca_pem(ca)
        .build()
        .unwrap();
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7);
    let connections = server.connection_stats();
    assert_eq!(connections.unauthenticated, 0, "{connections:?}");
    assert_eq!(
        connections.handshakes,
        server.stats().matched,
        "{connections:?}"
    );
}

/// A connection that stays open carries every request after one handshake.
#[tokio::test]
async fn an_open_connection_is_authenticated_once() {
    let server = demo_server().await;
    let client = negotiate_client(server.url(), "demo");
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
    assert_eq!(sessions.len(), 7);
    let connections = server.connection_stats();
    assert_eq!(
        (
            connections.opened,
            connections.handshakes,
            connections.unauthenticated
        ),
        (1, 1, 0),
        "{connections:?}"
    );
}

/// A server that forgets a connection's authentication (its lifetime ended, it lost the
/// context) answers the next request 401: the client authenticates again and sends that request
/// once more, Pull or not, since the server refused it unread. Over HTTP (sealed messages) and
/// HTTPS (clear messages on an authenticated TLS connection).
#[tokio::test]
async fn an_authentication_the_server_forgot_is_renewed_and_the_request_sent_again() {
    let (ca, cert, key) = crate::pki::pki(&["127.0.0.1"]);
    for https in [false, true] {
        let builder = FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
            .expire_authentication_after(2);
        let builder = if https {
            builder.tls(cert.clone(), key.clone())
        } else {
            builder
        };
        let server = builder.start().await.unwrap();
        let client = Client::builder(server.url())
            .credentials(Credentials::new("demo", "demo"))
            .auth(Auth::Ntlm)
            .ca_pem(ca.clone())
            .operation_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let sessions: Vec<SmbSession> = client.enumerate().try_collect().await.unwrap();
        assert_eq!(sessions.len(), 7, "https: {https}");
        let replayed = server.stats();
        let connections = server.connection_stats();
        assert_eq!(replayed.unmatched, 0, "https: {https}: {replayed:?}");
        assert!(replayed.matched >= 3, "https: {https}: {replayed:?}");
        // Two requests per handshake, each refused third one sent again after the next.
        assert_eq!(
            connections.handshakes,
            replayed.matched.div_ceil(2),
            "https: {https}: {connections:?}"
        );
        assert_eq!(connections.unauthenticated, 0, "https: {https}");
    }
}

/// A server that completes the handshake and then refuses every message is an authentication
/// error of the mechanism that was used, after one renewed attempt: not a loop, not a protocol
/// error.
#[tokio::test]
async fn a_server_that_refuses_every_message_after_the_handshake_is_one_ntlm_error() {
    let server = FixtureServer::builder(FixtureSet::from_dir(demo_fixtures()).unwrap())
        .expire_authentication_after(0)
        .start()
        .await
        .unwrap();
    let error = negotiate_client(server.url(), "demo")
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    match error.kind() {
        ErrorKind::Authentication { mechanism, reason } => {
            assert_eq!(*mechanism, "NTLM");
            assert_eq!(
                reason,
                "the server refused sealed messages right after authenticating"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.connection_stats().handshakes,
        2,
        "the first and one more"
    );
    assert_eq!(server.stats().matched, 0);
}

/// A 401 that ends a handshake says which step the server refused: another scheme offered
/// instead, none offered, the first message answered without a challenge, or the password.
#[tokio::test]
async fn a_refused_handshake_says_what_the_server_refused() {
    type Case = (&'static str, fn(usize) -> Behavior, &'static str);
    let cases: [Case; 3] = [
        (
            "Basic only",
            |_| {
                Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"WSMAN\"\r\nContent-Length: 0\r\n\r\n".into())
            },
            "the server does not accept NTLM (it offers Basic)",
        ),
        (
            "no scheme",
            |_| Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".into()),
            "the server offers no authentication scheme",
        ),
        (
            "Negotiate without a challenge",
            |_| {
                Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n".into())
            },
            "the server answered the first message of the handshake without a challenge",
        ),
    ];
    for (name, behavior, said) in cases {
        let (url, _server) = hostile_server(behavior).await;
        let error = negotiate_client(&url, "demo")
            .enumerate::<SmbSession>()
            .try_collect::<Vec<_>>()
            .await
            .expect_err(name);
        match error.kind() {
            ErrorKind::Authentication { mechanism, reason } => {
                assert_eq!((*mechanism, reason.as_str()), ("NTLM", said), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let server = demo_server().await;
    let error = negotiate_client(server.url(), "wrong")
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    match error.kind() {
        ErrorKind::Authentication { mechanism, reason } => assert_eq!(
            (*mechanism, reason.as_str()),
            ("NTLM", "the server refused the user name or password")
        ),
        other => panic!("{other:?}"),
    }
}
