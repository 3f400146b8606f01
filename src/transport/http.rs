//! What every connection shares: limits and TLS material, and the mapping of I/O, TLS and HTTP
//! failures and statuses to this crate's errors.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::tls::TlsMaterial;

use crate::error::{Error, ErrorKind, Result, TlsError};

/// What the HTTP layer is configured with.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpOptions {
    pub max_response_size: usize,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// PEM bundles of CA certificates to trust besides the system roots.
    pub root_certificates: Vec<Vec<u8>>,
    pub danger_accept_invalid_certs: bool,
    /// PEM certificate chain followed by its private key (wiped when dropped).
    pub client_identity: Option<zeroize::Zeroizing<Vec<u8>>>,
}

/// Limits and TLS material, parsed once per client and shared by its sessions and hosts.
#[derive(Clone, Debug)]
pub(crate) struct HttpSettings {
    pub max_response_size: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    tls: Arc<TlsMaterial>,
}

impl HttpSettings {
    pub(crate) fn new(config: &HttpOptions) -> Result<Self> {
        Ok(Self {
            max_response_size: config.max_response_size,
            connect_timeout: config.connect_timeout,
            // The operation timeout bounds the server's work; the HTTP exchange gets a margin on
            // top (as long again, at most 15 s) for the network and the server's own overhead.
            request_timeout: config.operation_timeout
                + config.operation_timeout.min(Duration::from_secs(15)),
            tls: Arc::new(TlsMaterial::parse(
                &config.root_certificates,
                config.client_identity.as_deref().map(Vec::as_slice),
                config.danger_accept_invalid_certs,
            )?),
        })
    }

    /// The TLS configuration every connection of this client uses.
    pub(super) fn tls_config(&self) -> Result<Arc<ClientConfig>> {
        self.tls.config()
    }
}

/// The precise error for a connection that could not be made: refused, a TLS failure with its
/// reason, or the operating system's own words.
pub(super) fn connect_error(e: std::io::Error, address: &str) -> Error {
    if let Some(tls) = find_in_chain::<rustls::Error>(&e) {
        return ErrorKind::Tls(tls_error(tls, address)).into();
    }
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        return ErrorKind::ConnectionRefused {
            address: address.to_owned(),
        }
        .into();
    }
    ErrorKind::Connect {
        address: address.to_owned(),
        source: root_cause(&e),
    }
    .into()
}

/// The precise error for an exchange hyper could not complete: a connection closed or reset
/// and when, a TLS failure, a malformed answer.
pub(super) fn exchange_error(e: &hyper::Error, phase: Phase) -> Error {
    if let Some(tls) = find_in_chain::<rustls::Error>(e) {
        return ErrorKind::Tls(tls_error(tls, "")).into();
    }
    let during = match phase {
        Phase::Exchange => "before the response was complete",
        Phase::Body => "in the middle of the response",
    };
    let closed = |source| Error::from(ErrorKind::ConnectionClosed { during, source });
    if let Some(io) = find_in_chain::<std::io::Error>(e) {
        use std::io::ErrorKind as Io;
        if matches!(
            io.kind(),
            Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof
        ) {
            return closed(Some(root_cause(e)));
        }
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        // hyper's words say no more than ours.
        return closed(None);
    }
    ErrorKind::Transport(root_cause(e)).into()
}

/// The innermost error of a chain, as text: what actually happened (an OS error, a malformed
/// response), without the layers that only say "error sending request".
#[derive(Debug)]
struct Cause(String);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> crate::error::BoxError {
    let mut innermost = e;
    loop {
        let next = match innermost.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => innermost.source(),
        };
        match next {
            Some(next) => innermost = next,
            None => break,
        }
    }
    Box::new(Cause(innermost.to_string()))
}

/// Where an exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Sending, or waiting for the head of the response.
    Exchange,
    /// Reading the body.
    Body,
}

/// The first error of type `E` in the source chain of `e`, looking inside I/O errors too (an
/// `io::Error` wrapping another error gives that error's source, not the error itself).
fn find_in_chain<'a, E: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        cause = match error.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => error.source(),
            },
            None => error.source(),
        };
    }
    None
}

/// A subject name as the verifier presents it (`DnsName("fs01")`, `IpAddress(10.0.0.1)`):
/// the name alone.
fn unwrap_name(presented: &str) -> String {
    let inner = presented
        .split_once('(')
        .filter(|(kind, _)| kind.chars().all(|c| c.is_ascii_alphabetic()))
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(presented);
    inner.trim_matches('"').to_owned()
}

fn tls_error(error: &rustls::Error, address: &str) -> TlsError {
    use rustls::CertificateError as C;
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_matches(['[', ']'])
        .to_owned();
    match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            C::UnknownIssuer | C::BadSignature => TlsError::UnknownIssuer,
            C::NotValidForName => TlsError::NameMismatch {
                expected: host,
                presented: Vec::new(),
            },
            C::NotValidForNameContext {
                expected,
                presented,
            } => TlsError::NameMismatch {
                expected: expected.to_str().into_owned(),
                presented: presented.iter().map(|name| unwrap_name(name)).collect(),
            },
            C::Expired | C::NotValidYet => TlsError::Expired { not_after: None },
            C::ExpiredContext { not_after, .. } => TlsError::Expired {
                not_after: i64::try_from(not_after.as_secs())
                    .ok()
                    .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
                    .and_then(|at| {
                        at.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .map(|at| format!("valid until {at}")),
            },
            other => TlsError::Other(format!("the server's certificate was refused: {other:?}")),
        },
        // What a plain-HTTP answer to a ClientHello looks like to rustls: its first byte is
        // not a TLS record type.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            TlsError::NotTls {
                address: address.to_owned(),
            }
        }
        other => TlsError::Other(other.to_string()),
    }
}

/// A SOAP body in UTF-8, as the parser reads it: UTF-8 as it is, UTF-16 decoded (see
/// [`crate::wsman::charset`]).
pub(super) fn in_utf8(charset: Option<&str>, body: bytes::Bytes) -> Result<bytes::Bytes> {
    crate::wsman::charset::to_utf8(charset, body)
        .map_err(|e| ErrorKind::Parse(crate::wsman::ParseError::Encoding(e)).into())
}

/// The SOAP body of an answer in clear that is not a 401: a 200 or a 500 (a fault) in SOAP,
/// in UTF-8; anything else is an unexpected status or content type.
pub(super) fn soap_answer(
    status: u16,
    content_type: String,
    body: bytes::BytesMut,
) -> Result<bytes::Bytes> {
    match status {
        200 | 500 if is_soap(&content_type) => in_utf8(
            crate::wsman::charset::charset_of(&content_type),
            body.freeze(),
        ),
        _ => Err(unexpected_status(status, content_type, &body)),
    }
}

pub(super) fn is_soap(content_type: &str) -> bool {
    content_type
        .to_ascii_lowercase()
        .starts_with("application/soap+xml")
}

/// The error for a response that is neither a usable answer nor a 401.
pub(super) fn unexpected_status(status: u16, content_type: String, body: &[u8]) -> Error {
    if status == 200 {
        ErrorKind::UnexpectedContentType(content_type).into()
    } else {
        ErrorKind::HttpStatus {
            status,
            excerpt: excerpt(body),
        }
        .into()
    }
}

/// The first 200 printable characters of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(400)]);
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut joined = words.join(" ");
    if joined.chars().count() > 200 {
        joined = joined.chars().take(200).collect::<String>() + "…";
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_200_or_500_in_soap_is_a_soap_answer() {
        let answer = |status, content_type: &str, body: &str| {
            soap_answer(status, content_type.into(), body.as_bytes().into())
        };
        for status in [200, 500] {
            let body = answer(
                status,
                "Application/SOAP+xml;charset=UTF-8",
                "<s:Envelope/>",
            )
            .unwrap();
            assert_eq!(&body[..], b"<s:Envelope/>");
        }
        let error = answer(200, "text/html", "<html>sign in</html>").unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::UnexpectedContentType(t) if t == "text/html"),
            "{error:?}"
        );
        for (status, content_type) in [(500, "text/html"), (302, "application/soap+xml"), (503, "")]
        {
            let error = answer(status, content_type, "busy").unwrap_err();
            assert!(
                matches!(error.kind(), ErrorKind::HttpStatus { status: s, excerpt } if *s == status && excerpt == "busy"),
                "{status}: {error:?}"
            );
        }
    }
}
