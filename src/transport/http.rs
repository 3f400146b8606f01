//! Plain HTTP helpers shared by every mechanism: building a reqwest client, reading a body under
//! the size cap, mapping reqwest errors and HTTP statuses to this crate's errors.

use std::time::Duration;

use bytes::BytesMut;
use reqwest::header::CONTENT_TYPE;

use crate::error::{Error, ErrorKind, Result};

/// What the HTTP layer is configured with.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpOptions {
    pub max_response_size: usize,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// PEM bundles of CA certificates to trust besides the system roots.
    pub root_certificates: Vec<Vec<u8>>,
    pub danger_accept_invalid_certs: bool,
    /// PEM certificate chain followed by its private key.
    pub client_identity: Option<Vec<u8>>,
}

/// Limits and TLS material, parsed once per client and shared by its sessions and hosts.
#[derive(Clone, Debug)]
pub(crate) struct HttpSettings {
    pub max_response_size: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    root_certificates: Vec<reqwest::Certificate>,
    danger_accept_invalid_certs: bool,
    identity: Option<reqwest::Identity>,
}

impl HttpSettings {
    pub(crate) fn new(config: &HttpOptions) -> Result<Self> {
        let mut root_certificates = Vec::new();
        for pem in &config.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::config(format!("cannot read CA certificates: {e}")))?;
            if certs.is_empty() {
                return Err(Error::config("the CA file holds no PEM certificate"));
            }
            root_certificates.extend(certs);
        }
        Ok(Self {
            max_response_size: config.max_response_size,
            connect_timeout: config.connect_timeout,
            // The operation timeout bounds the server's work; the HTTP exchange gets a margin on
            // top (as long again, at most 15 s) for the network and the server's own overhead.
            request_timeout: config.operation_timeout
                + config.operation_timeout.min(Duration::from_secs(15)),
            root_certificates,
            danger_accept_invalid_certs: config.danger_accept_invalid_certs,
            identity: match &config.client_identity {
                Some(pem) => Some(reqwest::Identity::from_pem(pem).map_err(|e| {
                    Error::config(format!("cannot read the client certificate or key: {e}"))
                })?),
                None => None,
            },
        })
    }

    /// An HTTP/1.1 client. For connection-bound mechanisms, one per authenticated session with
    /// a pool of one connection: the security context lives on that connection.
    pub(super) fn client(&self, connection_bound: bool) -> Result<reqwest::Client> {
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
            .no_proxy();
        for cert in &self.root_certificates {
            builder = builder.add_root_certificate(cert.clone());
        }
        if self.danger_accept_invalid_certs {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        builder
            .build()
            .map_err(|e| Error::config(format!("cannot set up HTTP client: {e}")))
    }

    /// Reads a body to its end (so the connection can be reused) into one buffer sized from
    /// Content-Length, refusing more than the cap.
    pub(super) async fn read_body(&self, mut response: reqwest::Response) -> Result<BytesMut> {
        let limit = self.max_response_size;
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ErrorKind::ResponseTooLarge { limit }.into());
        }
        let mut body = BytesMut::with_capacity(declared.map_or(16 << 10, |len| len as usize));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() + chunk.len() > limit {
                return Err(ErrorKind::ResponseTooLarge { limit }.into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    pub(super) fn classify(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            if e.is_connect() {
                ErrorKind::Timeout {
                    phase: "connecting",
                    after: self.connect_timeout,
                }
            } else {
                ErrorKind::Timeout {
                    phase: "waiting for the response",
                    after: self.request_timeout,
                }
            }
        } else if e.is_connect() {
            ErrorKind::Connect(Box::new(e.without_url()))
        } else {
            ErrorKind::Transport(Box::new(e.without_url()))
        }
        .into()
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
