//! The HTTP shell around the sans-IO core: POST an envelope, get the response body back.
//!
//! It owns everything that touches the network: TLS (rustls, verification on), timeouts, the
//! Authorization header, the cap on response size, and the mapping of HTTP outcomes to errors.
//! A 200 or a 500 with a SOAP body is handed to the caller (a 500 carries a fault); anything
//! else is an error here.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};

use crate::auth::{Auth, basic_authorization};
use crate::client::Config;
use crate::error::{Error, ErrorKind, Result};

/// One HTTP endpoint with its credentials.
#[derive(Clone, Debug)]
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    endpoint: url::Url,
    authorization: Option<HeaderValue>,
    auth: Auth,
    max_response_size: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl HttpTransport {
    pub(crate) fn new(config: &Config) -> Result<Self> {
        let https = config.endpoint.scheme() == "https";
        let authorization = match (config.auth, &config.credentials) {
            (Auth::Basic, Some(credentials)) => {
                if !https && !config.allow_basic_over_http {
                    return Err(ErrorKind::PlaintextBasicRefused.into());
                }
                let mut value =
                    HeaderValue::from_str(&basic_authorization(credentials)).map_err(|_| {
                        Error::config("user name or password contains a control character")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            (Auth::Basic, None) => None,
        };
        // The operation timeout bounds the server's work; the HTTP exchange gets a margin on top
        // (as long again, at most 15 s) for the network and the server's own overhead.
        let request_timeout =
            config.operation_timeout + config.operation_timeout.min(Duration::from_secs(15));
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(request_timeout)
            .user_agent(concat!("winrm-sessions/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        for pem in &config.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::config(format!("cannot read CA certificates: {e}")))?;
            if certs.is_empty() {
                return Err(Error::config("the CA file holds no PEM certificate"));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if config.danger_accept_invalid_certs {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| Error::config(format!("cannot set up HTTP client: {e}")))?;
        Ok(Self {
            client,
            endpoint: config.endpoint.clone(),
            authorization,
            auth: config.auth,
            max_response_size: config.max_response_size,
            connect_timeout: config.connect_timeout,
            request_timeout,
        })
    }

    /// Sends one envelope and returns the SOAP body of a 200 or 500 response.
    pub(crate) async fn post(&self, envelope: String) -> Result<Bytes> {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/soap+xml;charset=UTF-8")
            .body(envelope);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status == 401 {
            let offered: Vec<String> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
                .collect();
            let _ = self.read_body(response).await;
            let reason = if self.authorization.is_none() {
                "the server requires credentials and none were given".to_owned()
            } else if !offered.is_empty()
                && !offered
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(self.auth.name()))
            {
                format!(
                    "the server does not accept {} (it offers {})",
                    self.auth.name(),
                    offered.join(", ")
                )
            } else {
                "the server refused the user name or password".to_owned()
            };
            return Err(ErrorKind::Authentication {
                mechanism: self.auth.name(),
                reason,
            }
            .into());
        }
        let is_soap = content_type
            .to_ascii_lowercase()
            .starts_with("application/soap+xml");
        let body = self.read_body(response).await?;
        match status {
            200 | 500 if is_soap => Ok(body),
            200 => Err(ErrorKind::UnexpectedContentType(content_type).into()),
            _ => Err(ErrorKind::HttpStatus {
                status,
                excerpt: excerpt(&body),
            }
            .into()),
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes> {
        let limit = self.max_response_size;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(ErrorKind::ResponseTooLarge { limit }.into());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() + chunk.len() > limit {
                return Err(ErrorKind::ResponseTooLarge { limit }.into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    fn classify(&self, e: reqwest::Error) -> Error {
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
