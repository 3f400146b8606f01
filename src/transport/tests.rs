//! Which mechanism a Negotiate client ends up using, against servers scripted request by
//! request: Kerberos presents a service ticket the client already holds (no KDC), so these run
//! with Rust alone. The rules under test are the threat model's: NTLM stands in only when
//! Kerberos could not start, never once the AP-REQ went out; a server that offers only
//! `Negotiate` gets Kerberos wrapped in SPNEGO, not NTLM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use super::*;
use crate::auth::Credentials;
use crate::auth::kerberos::ccache::{Principal, SessionKey};
use crate::auth::kerberos::exchange::LongTermKey;
use crate::auth::kerberos::messages::{Credential, KerberosTime};
use crate::auth::kerberos::store::KerberosCredentials;

/// A server on threads of its own that answers the n-th request (counted over all
/// connections) with `answer(n, authorization)`, and keeps each request's `Authorization`.
fn scripted(
    answer: impl Fn(usize, &str) -> String + Send + Sync + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (answer, seen) = (answer.clone(), kept.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let (mut length, mut authorization) = (0, String::new());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(value) = lower.strip_prefix("content-length:") {
                            length = value.trim().parse().unwrap();
                        }
                        if lower.starts_with("authorization:") {
                            authorization = line["authorization:".len()..].trim().to_owned();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if reader.read_exact(&mut vec![0; length]).is_err() {
                        return;
                    }
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(authorization.clone());
                        seen.len()
                    };
                    if (&stream)
                        .write_all(answer(n, &authorization).as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (address, seen)
}

/// A Negotiate client for `address` (user `alice@CORP.EXAMPLE`, password `demo` for NTLM)
/// holding a service ticket for `HTTP/127.0.0.1` whose session key is of `enctype`, and no KDC
/// that answers: whatever Kerberos does comes from that ticket.
fn negotiate_transport(address: SocketAddr, spnego: bool, enctype: i32) -> HttpTransport {
    let settings = HttpSettings::new(&HttpOptions {
        max_response_size: 1 << 20,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(2),
        ..HttpOptions::default()
    })
    .unwrap();
    let client = Principal {
        name_type: 1,
        realm: "CORP.EXAMPLE".into(),
        components: vec!["alice".into()],
    };
    let closed_kdc = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let kerberos = KerberosAuth {
        credentials: Arc::new(KerberosCredentials::from_key(
            client.clone(),
            LongTermKey::Password("demo".into()),
            vec![closed_kdc],
        )),
        spn: None,
        spnego,
        realm_origin: None,
    };
    let service = kerberos.service("127.0.0.1");
    kerberos.credentials.remember_service_ticket(
        &service,
        Credential {
            client,
            server: service.clone(),
            ticket: crate::auth::kerberos::messages::tests::ticket_der_for(&service),
            key: SessionKey {
                enctype,
                bytes: Zeroizing::new(vec![2; if enctype == 18 { 32 } else { 16 }]),
            },
            end_time: KerberosTime::now().seconds + 3600,
        },
    );
    let auth = Authenticator::Kerberos {
        kerberos,
        fallback: Some(NtlmCredentials::new(&Credentials::new(
            r"CORP\alice",
            "demo",
        ))),
    };
    let endpoint = format!("http://{address}/wsman").parse().unwrap();
    HttpTransport::new(endpoint, Arc::new(Shared::new(settings, auth, None)))
}

fn post(transport: &HttpTransport) -> Result<Bytes> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(transport.post("<s:Envelope/>".into(), Resend::Allowed))
}

/// The scheme and the first bytes of each request's token: `Kerberos` with a GSS-API token
/// (0x60), `Negotiate` with SPNEGO (0x60) or with a raw NTLM message (`NTLMSSP`).
fn tokens(seen: &Mutex<Vec<String>>) -> Vec<(String, Vec<u8>)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|authorization| {
            let (scheme, token) = authorization.split_once(' ').unwrap();
            let token = B64.decode(token).unwrap();
            (scheme.to_owned(), token[..7.min(token.len())].to_vec())
        })
        .collect()
}

const NOT_SOAP: &str = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\
                        Content-Length: 4\r\n\r\noops";

/// Once the AP-REQ has gone out, whatever answers it, no NTLM follows: an attacker on the path
/// who breaks the Kerberos exchange must not get an NTLM response to crack or relay.
#[test]
fn no_ntlm_follows_an_ap_req_whatever_the_answer() {
    let refused =
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n";
    for (answer, said) in [
        (NOT_SOAP, "500"),
        (
            refused,
            "the server refused the Kerberos ticket (is the service principal name right, and \
             the server's clock within 5 minutes of the KDC's?)",
        ),
    ] {
        let (address, seen) = scripted(move |_, _| answer.to_owned());
        let error = post(&negotiate_transport(address, true, 18)).unwrap_err();
        assert!(error.to_string().contains(said), "{error}");
        let tokens = tokens(&seen);
        assert_eq!(tokens.len(), 1, "{said}: only the AP-REQ: {tokens:?}");
        assert_eq!(tokens[0].0, "Negotiate");
        assert_eq!(tokens[0].1[0], 0x60, "SPNEGO, not NTLM: {tokens:?}");
    }
}

/// A ticket whose session key this client cannot use (RC4) stops Kerberos before anything is
/// sent: NTLM stands in, as Negotiate allows.
#[test]
fn ntlm_stands_in_when_the_ticket_cannot_be_used() {
    let (address, seen) = scripted(|_, _| NOT_SOAP.to_owned());
    let error = post(&negotiate_transport(address, true, 23)).unwrap_err();
    assert!(error.to_string().contains("500"), "{error}");
    let tokens = tokens(&seen);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0], ("Negotiate".to_owned(), b"NTLMSSP".to_vec()));
}

/// A server that answers the `Kerberos` scheme by offering only `Negotiate` gets the same
/// ticket again in SPNEGO (still Kerberos, never NTLM).
#[test]
fn a_server_that_offers_only_negotiate_gets_kerberos_in_spnego() {
    let (address, seen) = scripted(|n, _| {
        if n == 1 {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"
                .to_owned()
        } else {
            NOT_SOAP.to_owned()
        }
    });
    let error = post(&negotiate_transport(address, false, 18)).unwrap_err();
    assert!(error.to_string().contains("500"), "{error}");
    let tokens = tokens(&seen);
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert_eq!(tokens[0].0, "Kerberos");
    assert_eq!(tokens[1].0, "Negotiate");
    assert!(
        tokens.iter().all(|(_, token)| token[0] == 0x60),
        "GSS-API tokens, no NTLM: {tokens:?}"
    );
}
