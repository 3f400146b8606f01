//! Hostile and broken servers: every failure is a typed error naming the target, on time,
//! never a panic, a hang or a silently partial result.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::classes::SmbSession;
use winrm_sessions::wsman::ParseError;
use winrm_sessions::{Auth, Client, Credentials, ErrorKind};

use crate::support::{Behavior, hostile_server, soap};

/// Basic, so that each test reaches the response handling it is about; Negotiate has its own.
fn client(url: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", "demo"))
        .auth(Auth::Basic)
        .danger_allow_basic_over_http(true)
        .operation_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(2))
        .max_response_size(64 * 1024)
        .build()
        .unwrap()
}

async fn first_error(url: &str) -> winrm_sessions::Error {
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        client(url)
            .enumerate::<SmbSession>()
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("an error in time, not a hang");
    let error = result.expect_err("an error");
    assert_eq!(error.target(), Some(url), "the error names the target");
    error
}

const ITEM: &str = r#"<p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:NumOpens>NUM</p:NumOpens><p:SessionId>ID</p:SessionId></p:MSFT_SmbSession>"#;

#[tokio::test]
async fn unexpected_content_type() {
    let (url, _s) = hostile_server(|_| {
        Behavior::Raw(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello".into(),
        )
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::UnexpectedContentType(t) if t == "text/html"),
        "{e}"
    );
}

#[tokio::test]
async fn http_500_with_a_web_page_is_an_http_error_with_an_excerpt() {
    let (url, _s) = hostile_server(|_| {
        let page = "<html><b>IIS\nis sad</b></html>\r\n";
        Behavior::Raw(format!(
            "HTTP/1.1 500 Oops\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        ))
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::HttpStatus { status: 500, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("IIS is sad"), "{e}");
}

#[tokio::test]
async fn body_shorter_than_its_content_length() {
    let (url, _s) = hostile_server(|_| {
        Behavior::Raw("HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 1000\r\n\r\n<s:Envelope".into())
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(
            e.kind(),
            ErrorKind::ConnectionClosed {
                during: "in the middle of the response",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.report()
            .to_string()
            .contains("the connection was closed in the middle of the response"),
        "{}",
        e.report()
    );
}

#[tokio::test]
async fn truncated_xml() {
    let (url, _s) = hostile_server(|_| {
        let body = soap(
            "<n:EnumerateResponse><n:EnumerationContext>uuid:1</n:EnumerationContext><w:Items>",
        );
        Behavior::Soap(body[..body.len() - 30].to_owned())
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::Parse(ParseError::Truncated)),
        "{e:?}"
    );
}

#[tokio::test]
async fn garbage_instead_of_an_envelope() {
    let (url, _s) = hostile_server(|_| Behavior::Soap("<html>not soap</html>".into())).await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::Parse(ParseError::NotAnEnvelope(_))),
        "{e:?}"
    );
}

#[tokio::test]
async fn oversized_responses_are_refused_declared_or_streamed() {
    let (url, _s) = hostile_server(|_| {
        Behavior::Raw("HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 100000000\r\n\r\n".into())
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::ResponseTooLarge { limit: 65536 }),
        "{e:?}"
    );
    let (url, _s) = hostile_server(|_| {
        let chunk = "x".repeat(16 * 1024);
        let mut raw = "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
        for _ in 0..10 {
            raw.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        raw.push_str("0\r\n\r\n");
        Behavior::Raw(raw)
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::ResponseTooLarge { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn dropped_connection() {
    let (url, _s) = hostile_server(|_| Behavior::Close).await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::ConnectionClosed { .. }),
        "{e:?}"
    );
    assert!(e.is_retryable() && !e.is_authentication());
}

#[tokio::test]
async fn a_server_that_hangs_times_out() {
    let (url, _s) = hostile_server(|_| Behavior::Hang).await;
    let started = std::time::Instant::now();
    let e = first_error(&url).await;
    assert!(e.is_timeout() && e.is_retryable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let e = first_error("http://127.0.0.1:9/wsman").await;
    assert!(e.is_connect() && e.is_retryable(), "{e:?}");
}

#[tokio::test]
async fn wrong_credentials_name_the_target_and_are_not_retryable() {
    let (url, _s) = hostile_server(|_| {
        Behavior::Raw("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nWWW-Authenticate: Kerberos\r\nContent-Length: 0\r\n\r\n".into())
    })
    .await;
    let e = first_error(&url).await;
    assert!(e.is_authentication() && !e.is_retryable(), "{e:?}");
    assert!(
        e.to_string()
            .contains("does not accept Basic (it offers Negotiate, Kerberos)"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_enumeration_context() {
    let (url, _s) = hostile_server(|_| {
        Behavior::Soap(soap(&format!(
            "<n:EnumerateResponse><w:Items>{}</w:Items></n:EnumerateResponse>",
            ITEM.replace("NUM", "1").replace("ID", "1")
        )))
    })
    .await;
    let mut stream = client(&url).enumerate::<SmbSession>();
    let first = stream.next().await.unwrap();
    let e = match first {
        Err(e) => e,
        Ok(_) => stream.next().await.unwrap().unwrap_err(),
    };
    assert!(
        matches!(e.kind(), ErrorKind::Protocol(m) if m.contains("EnumerationContext")),
        "{e:?}"
    );
}

#[tokio::test]
async fn text_in_a_uint_and_an_overflow_are_item_errors_and_the_rest_still_arrives() {
    let items = [
        ("12", "1"),
        ("many", "2"),
        ("18446744073709551616", "3"),
        ("4", "4"),
    ]
    .map(|(num, id)| ITEM.replace("NUM", num).replace("ID", id))
    .concat();
    let (url, _s) = hostile_server(move |_| {
        Behavior::Soap(soap(&format!(
            "<n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext><w:Items>{items}</w:Items><w:EndOfSequence/></n:EnumerateResponse>"
        )))
    })
    .await;
    let results: Vec<_> = client(&url).enumerate::<SmbSession>().collect().await;
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap().num_opens, Some(12));
    let text = results[1].as_ref().unwrap_err().to_string();
    assert!(
        text.contains(r#"MSFT_SmbSession.NumOpens: expected uint64, found "many""#),
        "{text}"
    );
    let overflow = results[2].as_ref().unwrap_err().to_string();
    assert!(overflow.contains("out of range for uint64"), "{overflow}");
    assert_eq!(results[3].as_ref().unwrap().session_id, 4);
}

#[tokio::test]
async fn endless_empty_pages_end_in_an_error() {
    let (url, _s) = hostile_server(|n| {
        Behavior::Soap(soap(&format!(
            "<n:PullResponse><n:EnumerationContext>uuid:{n}</n:EnumerationContext><n:Items/></n:PullResponse>"
        ))
        .replace("EnumerateResponse</a:Action>", "PullResponse</a:Action>")
        .replace("<n:PullResponse>", if n == 0 { "<n:EnumerateResponse>" } else { "<n:PullResponse>" })
        .replace("</n:PullResponse>", if n == 0 { "</n:EnumerateResponse>" } else { "</n:PullResponse>" }))
    })
    .await;
    let e = first_error(&url).await;
    assert!(e.to_string().contains("empty pages in a row"), "{e}");
}

#[tokio::test]
async fn a_response_to_another_request_is_rejected() {
    let (url, _s) = hostile_server(|_| {
        Behavior::Soap(
            soap("<n:EnumerateResponse><w:EndOfSequence/></n:EnumerateResponse>")
                .replace("{RELATES}", "uuid:NOT-YOURS"),
        )
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::Protocol(m) if m.contains("uuid:NOT-YOURS")),
        "{e:?}"
    );
}

#[tokio::test]
async fn tls_is_verified_by_default() {
    // A plain-HTTP server answering a TLS client: the handshake fails, it is not downgraded.
    let server = crate::support::demo_server().await;
    let https = server.url().replace("http://", "https://");
    let client = Client::builder(&https)
        .credentials(Credentials::new("demo", "demo"))
        .auth(Auth::Basic)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let e = client
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
}

#[test]
fn basic_over_http_is_refused_unless_allowed_and_debug_hides_the_password() {
    let e = Client::builder("fs01")
        .credentials(Credentials::new("CORP\\auditor", "s3cret-pass"))
        .auth(Auth::Basic)
        .build()
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::PlaintextBasicRefused));
    assert_eq!(e.target(), Some("fs01"));
    let client = Client::builder("fs01")
        .https(true)
        .credentials(Credentials::new("CORP\\auditor", "s3cret-pass"))
        .build()
        .unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("auditor"), "{debug}");
    let e = Client::builder("fs01")
        .ca_file("/nonexistent/ca.pem")
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot read CA file /nonexistent/ca.pem"),
        "{e}"
    );
}

/// An answer whose body is `xml` in UTF-16 (little- or big-endian, with or without a byte
/// order mark), with `content_type`.
fn utf16_answer(xml: &str, big_endian: bool, mark: bool, content_type: &str) -> Behavior {
    Behavior::Encoded {
        content_type: content_type.to_owned(),
        xml: xml.to_owned(),
        encode: Box::new(move |xml| {
            let mut body = Vec::new();
            if mark {
                body.extend_from_slice(if big_endian {
                    &[0xfe, 0xff]
                } else {
                    &[0xff, 0xfe]
                });
            }
            for unit in xml.encode_utf16() {
                body.extend_from_slice(&if big_endian {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                });
            }
            body
        }),
    }
}

const UTF16_PAGE: &str = r#"<n:EnumerateResponse><w:Items><p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:SessionId>42</p:SessionId><p:ClientUserName>CONTOSO\zoë 𝄞</p:ClientUserName></p:MSFT_SmbSession></w:Items><w:EndOfSequence/></n:EnumerateResponse>"#;

/// WinRM answers in UTF-16 when asked to (`-UseUTF16`), as may a proxy: decoded, either byte
/// order, marked or declared.
#[tokio::test]
async fn utf16_answers_are_decoded() {
    for (big_endian, mark, content_type) in [
        (false, true, "application/soap+xml;charset=UTF-16"),
        (true, true, "application/soap+xml;charset=UTF-16"),
        (false, false, "application/soap+xml;charset=UTF-16"),
        (true, false, "application/soap+xml;charset=utf-16be"),
        (false, true, "application/soap+xml"),
    ] {
        let xml = soap(UTF16_PAGE).replace(
            "<s:Envelope",
            r#"<?xml version="1.0" encoding="UTF-16"?><s:Envelope"#,
        );
        let (url, _s) =
            hostile_server(move |_| utf16_answer(&xml, big_endian, mark, content_type)).await;
        let sessions: Vec<SmbSession> = client(&url).enumerate().try_collect().await.unwrap();
        assert_eq!(sessions.len(), 1, "{content_type} {big_endian} {mark}");
        assert_eq!(sessions[0].session_id, 42);
        assert_eq!(
            sessions[0].client_user_name.as_deref(),
            Some("CONTOSO\\zoë 𝄞")
        );
    }
}

/// A body whose bytes contradict its declared charset is refused, saying both.
#[tokio::test]
async fn a_charset_the_bytes_contradict_is_refused_saying_so() {
    let (url, _s) = hostile_server(|_| {
        utf16_answer(
            &soap(UTF16_PAGE),
            false,
            true,
            "application/soap+xml;charset=UTF-8",
        )
    })
    .await;
    let e = first_error(&url).await;
    assert!(
        matches!(e.kind(), ErrorKind::Parse(ParseError::Encoding(_))),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("declares UTF-8 but starts with a UTF-16LE byte order mark"),
        "{e}"
    );
}
