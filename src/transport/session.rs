//! Authenticated sessions: one HTTP/1.1 connection with its security context, the handshake in
//! empty-body POSTs (a SOAP body never crosses in clear), then sealed requests, one at a time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hyper::header::{HeaderValue, WWW_AUTHENTICATE};

use super::connection::{Answer, Connection, ExchangeError};
use super::http::{HttpSettings, is_soap, soap_answer, unexpected_status};
use super::{Peer, SOAP};
use crate::auth::channel_binding::tls_server_end_point;
use crate::auth::context::{ContextError, SecurityContext, Step};
use crate::auth::framing;
use crate::error::{Error, ErrorKind, Result};

/// Handshake rounds before giving up on a server that keeps answering 401 with tokens.
const MAX_ROUNDS: usize = 6;

/// One authenticated connection.
pub(super) struct Session {
    connection: Connection,
    context: Box<dyn SecurityContext>,
    /// WinRM message encryption: on plain HTTP. On HTTPS, TLS protects the bodies (as with
    /// Windows clients) and the channel bindings tie the authentication to that TLS channel.
    encrypt: bool,
}

/// How a handshake failed.
pub(super) enum HandshakeError {
    /// The server does not take this context's HTTP scheme; it offers these.
    SchemeNotOffered(Vec<String>),
    /// Anything else.
    Failed(Error),
    /// The first token (under Kerberos, the AP-REQ) went out, then the handshake failed: no
    /// other mechanism may be tried after this, since whoever answered may be an attacker on
    /// the path who wants an NTLM response to crack or relay (see docs/design.md, threat model).
    AfterFirstToken(Box<HandshakeError>),
}

impl HandshakeError {
    /// True when the first token had gone out.
    pub(super) fn after_first_token(&self) -> bool {
        matches!(self, HandshakeError::AfterFirstToken(_))
    }

    /// The schemes the server offers instead, when it does not take this context's.
    pub(super) fn offered_instead(&self) -> Option<&[String]> {
        match self {
            HandshakeError::SchemeNotOffered(offered) => Some(offered),
            HandshakeError::AfterFirstToken(inner) => inner.offered_instead(),
            HandshakeError::Failed(_) => None,
        }
    }
}

impl From<Error> for HandshakeError {
    fn from(e: Error) -> Self {
        HandshakeError::Failed(e)
    }
}

/// How sending a sealed request failed.
pub(super) enum SendError {
    /// The connection was closed before a byte of the request went out: the server never saw
    /// it, and it may go out on a new connection whatever it is.
    NotSent(Error),
    /// 401: the connection lost its context (a new connection, a server restart); the request
    /// was not processed.
    Unauthorized,
    /// The connection failed; whether the server processed the request is unknown.
    Lost(Error),
    /// Anything else (bad framing, a bad signature, a status we cannot use).
    Failed(Error),
}

fn auth_error(mechanism: &'static str, reason: impl Into<String>) -> Error {
    ErrorKind::Authentication {
        mechanism,
        reason: reason.into(),
    }
    .into()
}

pub(super) fn context_failure(mechanism: &'static str, e: ContextError) -> Error {
    if e.credentials_rejected {
        auth_error(mechanism, e.message)
    } else {
        Error::protocol(e.message)
    }
}

/// The token of `WWW-Authenticate: <scheme> <base64>`, if the server sent one.
fn server_token(answer: &Answer, scheme: &str) -> Result<Option<Vec<u8>>> {
    for value in answer.headers.get_all(WWW_AUTHENTICATE) {
        let Ok(value) = value.to_str() else { continue };
        let mut words = value.split_whitespace();
        if words.next().is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            && let Some(token) = words.next()
        {
            let token = B64.decode(token).map_err(|_| {
                Error::protocol(format!("the server's {scheme} token is not base64"))
            })?;
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// One step of the security context, its failure said in the mechanism's words.
fn step(context: &mut dyn SecurityContext, input: Option<&[u8]>) -> Result<Step, HandshakeError> {
    let mechanism = context.mechanism();
    context
        .step(input)
        .map_err(|e| HandshakeError::Failed(context_failure(mechanism, e)))
}

/// A handshake POST: no body (a SOAP body never crosses before the context is established).
async fn empty_post(
    connection: &mut Connection,
    settings: &HttpSettings,
    peer: &Peer,
    authorization: HeaderValue,
) -> Result<Answer> {
    connection
        .post(settings, peer, SOAP, Some(authorization), Bytes::new())
        .await
        .map_err(ExchangeError::into_error)
}

/// Why a 401 without a token ended a handshake. Under Kerberos the KDC already accepted the
/// password: the server refused the ticket. Under NTLM only a refusal of the last token is a
/// refused password; before it, the server did not take part in the handshake.
fn refusal(mechanism: &str, sent_last_token: bool) -> &'static str {
    match (mechanism, sent_last_token) {
        ("Kerberos", _) => {
            "the server refused the Kerberos ticket (is the service principal name right, and \
             the server's clock within 5 minutes of the KDC's?)"
        }
        (_, true) => "the server refused the user name or password",
        (_, false) => "the server answered the first message of the handshake without a challenge",
    }
}

/// Channel bindings from the certificate of the connection the handshake runs on. An HTTPS
/// connection with no certificate to bind to is refused: authenticating without bindings would
/// let a server in the middle relay the authentication (and fail under Extended Protection).
fn bind_to_channel(
    certificate: Option<&[u8]>,
    context: &mut dyn SecurityContext,
) -> Result<(), Error> {
    let certificate = certificate.ok_or_else(|| {
        Error::protocol(
            "the HTTPS connection shows no server certificate to bind the authentication \
             to (channel bindings); refusing to authenticate without them",
        )
    })?;
    context.set_channel_bindings(&tls_server_end_point(certificate));
    Ok(())
}

impl Session {
    /// `NTLM` or `Kerberos`.
    pub(super) fn mechanism(&self) -> &'static str {
        self.context.mechanism()
    }

    /// Whether the connection can carry another request.
    pub(super) fn is_reusable(&self) -> bool {
        self.connection.is_reusable()
    }

    /// When the connection last finished an exchange.
    pub(super) fn idle_since(&self) -> tokio::time::Instant {
        self.connection.idle_since
    }

    /// Opens a connection and authenticates on it, bound (over HTTPS) to the certificate that
    /// connection's TLS handshake presented.
    pub(super) async fn connect(
        settings: &HttpSettings,
        peer: &Peer,
        mut context: Box<dyn SecurityContext>,
    ) -> Result<Self, HandshakeError> {
        let connection = Connection::open(settings, peer).await?;
        if peer.https {
            bind_to_channel(connection.certificate(), context.as_mut())?;
        }
        let (token, complete) = match step(&mut *context, None)? {
            Step::Continue(token) => (token, false),
            Step::Done(Some(token)) => (token, true),
            Step::Done(None) => {
                return Err(Error::protocol("the security context produced no token").into());
            }
        };
        Self::exchange_tokens(connection, settings, peer, context, token, complete)
            .await
            .map_err(|e| HandshakeError::AfterFirstToken(Box::new(e)))
    }

    /// The rounds of a handshake from its first token on.
    async fn exchange_tokens(
        mut connection: Connection,
        settings: &HttpSettings,
        peer: &Peer,
        mut context: Box<dyn SecurityContext>,
        mut token: Vec<u8>,
        mut complete: bool,
    ) -> Result<Self, HandshakeError> {
        let scheme = context.http_scheme();
        let mechanism = context.mechanism();
        for round in 0..MAX_ROUNDS {
            let header = HeaderValue::from_str(&format!("{scheme} {}", B64.encode(&token)))
                .map_err(|_| Error::protocol("unencodable token"))?;
            let answer = empty_post(&mut connection, settings, peer, header).await?;
            let server = server_token(&answer, scheme)?;
            match answer.status {
                401 => {
                    let Some(server) = server else {
                        let offered = answer.offered_schemes();
                        if round == 0 && !offered.iter().any(|o| o.eq_ignore_ascii_case(scheme)) {
                            return Err(HandshakeError::SchemeNotOffered(offered));
                        }
                        return Err(auth_error(mechanism, refusal(mechanism, complete)).into());
                    };
                    (token, complete) = match step(&mut *context, Some(&server))? {
                        Step::Continue(token) => (token, false),
                        Step::Done(Some(token)) => (token, true),
                        Step::Done(None) => {
                            return Err(Error::protocol(
                                "the server asked for another round after the last token",
                            )
                            .into());
                        }
                    };
                }
                200 => {
                    // Mutual authentication: a final token comes with the 200 (Kerberos).
                    if let Some(server) = server {
                        match step(&mut *context, Some(&server))? {
                            Step::Done(None) => complete = true,
                            Step::Done(Some(_)) | Step::Continue(_) => {
                                return Err(Error::protocol(
                                    "the server ended the handshake while the client had more to say",
                                )
                                .into());
                            }
                        }
                    }
                    if !complete {
                        // Under Kerberos: no AP-REP, so the server never proved who it is.
                        return Err(auth_error(
                            mechanism,
                            format!(
                                "the server answered 200 before {mechanism} authentication \
                                 completed, without proving who it is (is it a WinRM endpoint?)"
                            ),
                        )
                        .into());
                    }
                    return Ok(Self {
                        connection,
                        context,
                        encrypt: !peer.https,
                    });
                }
                status => {
                    return Err(
                        unexpected_status(status, answer.content_type(), &answer.body).into(),
                    );
                }
            }
        }
        Err(auth_error(mechanism, format!("no result after {MAX_ROUNDS} rounds")).into())
    }

    /// Seals the envelope, posts it on this connection, unseals the answer (200 or 500) in
    /// place in the buffer it was read into.
    pub(super) async fn send(
        &mut self,
        settings: &HttpSettings,
        peer: &Peer,
        envelope: &[u8],
    ) -> Result<Bytes, SendError> {
        if !self.encrypt {
            return self.send_over_tls(settings, peer, envelope).await;
        }
        let protocol = self.context.protocol();
        let sealed = self
            .context
            .seal(envelope)
            .map_err(|e| SendError::Failed(Error::protocol(format!("sealing: {e}"))))?;
        let body = framing::encode(protocol, &sealed);
        let (status, ctype, mut body) = self
            .exchange(
                settings,
                peer,
                &framing::content_type(protocol),
                body.into(),
            )
            .await?;
        if status == 401 {
            return Err(SendError::Unauthorized);
        }
        if !matches!(status, 200 | 500) {
            return Err(SendError::Failed(unexpected_status(status, ctype, &body)));
        }
        let Some((_, boundary)) = framing::parse_content_type(&ctype) else {
            return Err(SendError::Failed(if is_soap(&ctype) {
                Error::protocol("the server answered in clear on an encrypted session")
            } else {
                unexpected_status(status, ctype, &body)
            }));
        };
        let charset = framing::declared_charset(&body);
        let plain =
            framing::open_in_place(self.context.as_mut(), &boundary, &mut body).map_err(|e| {
                SendError::Failed(Error::protocol(format!("unsealing the response: {e}")))
            })?;
        super::http::in_utf8(charset.as_deref(), body.freeze().slice(plain))
            .map_err(SendError::Failed)
    }

    /// On HTTPS: the plain envelope on the authenticated connection.
    async fn send_over_tls(
        &mut self,
        settings: &HttpSettings,
        peer: &Peer,
        envelope: &[u8],
    ) -> Result<Bytes, SendError> {
        let (status, ctype, body) = self
            .exchange(settings, peer, SOAP, Bytes::copy_from_slice(envelope))
            .await?;
        if status == 401 {
            return Err(SendError::Unauthorized);
        }
        soap_answer(status, ctype, body).map_err(SendError::Failed)
    }

    /// One POST on this session's connection: status, content type and the whole body.
    async fn exchange(
        &mut self,
        settings: &HttpSettings,
        peer: &Peer,
        content_type: &str,
        body: Bytes,
    ) -> Result<(u16, String, bytes::BytesMut), SendError> {
        let answer = self
            .connection
            .post(settings, peer, content_type, None, body)
            .await
            .map_err(|e| match e {
                ExchangeError::NotSent(e) => SendError::NotSent(e),
                ExchangeError::Lost(e) => SendError::Lost(e),
                ExchangeError::Failed(e) => SendError::Failed(e),
            })?;
        Ok((answer.status, answer.content_type(), answer.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credentials;
    use crate::auth::ntlm::{NtlmClient, NtlmCredentials};

    #[test]
    fn an_https_answer_without_a_certificate_is_refused_not_left_unbound() {
        let mut context =
            NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
        let e = bind_to_channel(None, &mut context).unwrap_err();
        assert!(e.to_string().contains("no server certificate"), "{e}");
    }
}
