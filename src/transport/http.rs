//! Plain HTTP helpers shared by every mechanism: building a reqwest client, reading a body under
//! the size cap, mapping reqwest errors and HTTP statuses to this crate's errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use reqwest::header::CONTENT_TYPE;
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

    /// An HTTP/1.1 client. For connection-bound mechanisms, one per authenticated session with
    /// a pool of one connection: the security context lives on that connection. `resolved`
    /// gives the addresses of a host name, looked up beforehand (so that a name that does not
    /// resolve is told apart from a refused connection).
    pub(super) fn client(
        &self,
        connection_bound: bool,
        resolved: Option<(&str, &[std::net::SocketAddr])>,
    ) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(if connection_bound { 1 } else { 8 })
            // Below the 120 s after which HTTP.sys closes idle connections, so that we close first.
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .tls_info(connection_bound)
            .user_agent(concat!("winrm-sessions/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .tls_backend_preconfigured(ClientConfig::clone(&*self.tls.config()?));
        if let Some((host, addresses)) = resolved {
            builder = builder.resolve_to_addrs(host, addresses);
        }
        builder
            .build()
            .map_err(|e| Error::config(format!("cannot set up HTTP client: {e}")))
    }

    /// Reads a body to its end (so the connection can be reused) into one buffer sized from
    /// Content-Length, refusing more than the cap.
    pub(super) async fn read_body(&self, mut response: reqwest::Response) -> Result<BytesMut> {
        let address = response
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let limit = self.max_response_size;
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ErrorKind::ResponseTooLarge { limit }.into());
        }
        let mut body = BytesMut::with_capacity(declared.map_or(16 << 10, |len| len as usize));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(e, &address, Phase::Body))?
        {
            if body.len() + chunk.len() > limit {
                return Err(ErrorKind::ResponseTooLarge { limit }.into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The precise error for what reqwest reports: a refused, closed or reset connection, a TLS
    /// failure with its reason, a timeout and its phase.
    pub(super) fn classify(&self, e: reqwest::Error, address: &str, phase: Phase) -> Error {
        if let Some(tls) = find_in_chain::<rustls::Error>(&e) {
            return ErrorKind::Tls(tls_error(tls, address)).into();
        }
        if e.is_timeout() {
            return if e.is_connect() {
                ErrorKind::Timeout {
                    phase: "connecting",
                    after: self.connect_timeout,
                }
            } else {
                ErrorKind::Timeout {
                    phase: match phase {
                        Phase::Exchange => "waiting for the response",
                        Phase::Body => "reading the response",
                    },
                    after: self.request_timeout,
                }
            }
            .into();
        }
        let during = match phase {
            Phase::Exchange => "before the response was complete",
            Phase::Body => "in the middle of the response",
        };
        let closed = |source| Error::from(ErrorKind::ConnectionClosed { during, source });
        if let Some(io) = find_in_chain::<std::io::Error>(&e) {
            use std::io::ErrorKind as Io;
            match io.kind() {
                Io::ConnectionRefused => {
                    return ErrorKind::ConnectionRefused {
                        address: address.to_owned(),
                    }
                    .into();
                }
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::BrokenPipe
                | Io::UnexpectedEof
                    if !e.is_connect() =>
                {
                    return closed(Some(root_cause(&e)));
                }
                _ => {}
            }
        }
        if e.is_connect() {
            return ErrorKind::Connect {
                address: address.to_owned(),
                source: root_cause(&e),
            }
            .into();
        }
        if find_in_chain::<hyper::Error>(&e).is_some_and(|h| h.is_incomplete_message()) {
            // hyper's words say no more than ours.
            return closed(None);
        }
        ErrorKind::Transport(root_cause(&e)).into()
    }
}

/// The innermost error under reqwest's, as text: what actually happened (an OS error, a
/// malformed response), without the layers that only say "error sending request".
#[derive(Debug)]
struct Cause(String);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

fn root_cause(e: &reqwest::Error) -> crate::error::BoxError {
    let mut innermost: &(dyn std::error::Error + 'static) = e;
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
fn find_in_chain<E: std::error::Error + 'static>(e: &reqwest::Error) -> Option<&E> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
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

pub(super) fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
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

/// The schemes a 401 offers (`Negotiate`, `Kerberos`, `Basic`...).
pub(super) fn offered_schemes(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}
