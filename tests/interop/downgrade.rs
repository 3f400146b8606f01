//! Negotiate cannot be bent to NTLM once Kerberos has spoken: a server (or an attacker on the
//! path) that answers the AP-REQ with a forged AP-REP, with 200 and no AP-REP, or with a
//! KRB-ERROR-shaped refusal, ends the handshake with the Kerberos error, and never receives an
//! NTLMSSP token to crack or relay. A real ticket from an MIT KDC makes the AP-REQ real.

use std::sync::{Arc, Mutex};

use base64::Engine;
use futures_util::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use winrm_sessions::classes::SmbSession;
use winrm_sessions::{Auth, Client, Credentials};

use crate::support::interop::{kdc_available, realm};

/// How the fake server answers a request that carries a Negotiate token.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// 401 with a token that is not the AP-REP the client's AP-REQ asks for.
    ForgedToken,
    /// 200 with no token: "authenticated" without mutual authentication.
    OkWithoutToken,
    /// 401 with no token: the ticket refused.
    Refused,
}

/// A server on loopback that offers Negotiate and answers every token as `answer` says;
/// returns its URL and every Authorization header it received.
async fn fake_server(answer: Answer) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wsman", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 16384];
                loop {
                    let head_end = loop {
                        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < head_end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buffer.drain(..head_end + length);
                    let authorization = head.lines().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("authorization")
                            .then(|| value.trim().to_owned())
                    });
                    let response = match &authorization {
                        None => "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n".to_owned(),
                        Some(_) => match answer {
                            Answer::ForgedToken => format!(
                                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate {}\r\nContent-Length: 0\r\n\r\n",
                                // A SPNEGO answer (accept-completed, Kerberos) whose AP-REP
                                // is garbage.
                                base64::engine::general_purpose::STANDARD.encode(
                                    b"\xa1\x1e\x30\x1c\xa0\x03\x0a\x01\x00\xa1\x0b\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\xa2\x08\x04\x06forged"
                                )
                            ),
                            Answer::OkWithoutToken => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_owned(),
                            Answer::Refused => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_owned(),
                        },
                    };
                    log.lock().unwrap().extend(authorization);
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// True when a header carries an NTLM message (raw, or inside SPNEGO).
fn is_ntlm(authorization: &str) -> bool {
    let token = authorization.split_whitespace().nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .unwrap_or_default();
    bytes.windows(7).any(|w| w == b"NTLMSSP")
}

#[tokio::test]
async fn no_ntlm_token_ever_follows_a_kerberos_ap_req() {
    assert!(kdc_available());
    let realm = realm();
    for answer in [Answer::ForgedToken, Answer::OkWithoutToken, Answer::Refused] {
        let (url, seen) = fake_server(answer).await;
        let client = Client::builder(&url)
            .credentials(Credentials::new(r"WINRM.TEST\alice", "Alice-Passw0rd!"))
            .auth(Auth::Negotiate)
            .kdc(realm.kdc.clone())
            .spn("HTTP/winrm.example.test")
            .build()
            .unwrap();
        let error = client
            .enumerate::<SmbSession>()
            .try_collect::<Vec<_>>()
            .await
            .expect_err("a server that cannot prove itself is refused");
        let seen = seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "{answer:?}: the AP-REQ went out");
        assert!(
            seen.iter()
                .all(|a| a.starts_with("Negotiate ") && !is_ntlm(a)),
            "{answer:?}: an NTLM token followed the AP-REQ: {seen:?}"
        );
        let said = error.report().to_string();
        assert!(said.contains("Kerberos"), "{answer:?}: {said}");
    }
}
