//! The seam between the transport and the authentication engines: a security context that
//! produces and takes handshake tokens and seals and unseals messages. One per connection;
//! NTLM and Kerberos clients and the fixture server's NTLM acceptor implement it, sans-IO.

use std::ops::Range;

use super::framing::SealedPart;

/// Why a security context failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextError {
    /// What failed, in plain words.
    pub message: String,
    /// True when the peer rejected the credentials (as opposed to a malformed token).
    pub credentials_rejected: bool,
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ContextError {}

/// The outcome of one handshake step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send this token and feed the peer's answer to the next step.
    Continue(Vec<u8>),
    /// Authenticated; send this last token if there is one.
    Done(Option<Vec<u8>>),
}

/// A client or server security context for one connection.
///
/// Call order: [`SecurityContext::step`] with `None`, send the token, feed each answer to
/// `step` until [`Step::Done`]; then [`SecurityContext::seal`] each request and
/// [`SecurityContext::open`] each response, in order.
pub(crate) trait SecurityContext: Send {
    /// The next handshake token; `input` is the peer's last token (none at the start).
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError>;
    /// Seals a message (sign, then encrypt), advancing the sending sequence number.
    fn seal(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError>;
    /// Checks and unseals a message in place: `header` is its security header, `data` the
    /// sealed bytes, which become the plaintext at the returned range. A bad signature or an
    /// out-of-order sequence number is an error.
    fn open(&mut self, header: &[u8], data: &mut [u8]) -> Result<Range<usize>, ContextError>;
    /// The HTTP authentication scheme (`Negotiate` or `Kerberos`).
    fn http_scheme(&self) -> &'static str;
    /// The `protocol` of the `multipart/encrypted` body.
    fn protocol(&self) -> &'static str;
    /// `NTLM` or `Kerberos`, for messages.
    fn mechanism(&self) -> &'static str;
    /// Binds the authentication to the TLS channel (`tls-server-end-point:<hash>`); call before
    /// the step that authenticates.
    fn set_channel_bindings(&mut self, application_data: &[u8]);
}
