//! The one seam between this crate and `sspi`: a security context that produces handshake
//! tokens and seals and unseals messages. sspi changes its API between minor releases; nothing
//! outside this file names it.

use sspi::ntlm::NtlmConfig;
use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, ClientRequestFlags, CredentialUse,
    DataRepresentation, EncryptionFlags, Ntlm, SecurityBuffer, SecurityBufferRef, SecurityStatus,
    ServerRequestFlags, Sspi, SspiImpl, Username,
};

use super::framing::{KERBEROS_PROTOCOL, SPNEGO_PROTOCOL, SealedPart};
use super::kdc::KdcTransport;
use super::{Credentials, Password};

/// Why a security context failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError {
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

fn context_error(what: &str, e: sspi::Error) -> ContextError {
    use sspi::ErrorKind as K;
    let description = e.description.as_str();
    let upper = description.to_ascii_uppercase();
    // Kerberos errors, in plain words.
    let (explained, kerberos_rejection) = if upper.contains("SKEW") {
        (Some("the clocks of this machine and the KDC differ by more than the allowed skew (usually 5 minutes): synchronise them".to_owned()), false)
    } else if upper.contains("C_PRINCIPAL_UNKNOWN")
        || upper.contains("CLIENT_NOT_FOUND")
        || upper.contains("CLIENT NOT FOUND")
    {
        (
            Some(
                "the KDC does not know this user (check the realm: REALM\\user or user@REALM)"
                    .to_owned(),
            ),
            true,
        )
    } else if upper.contains("S_PRINCIPAL_UNKNOWN")
        || upper.contains("SERVER_NOT_FOUND")
        || upper.contains("SERVER NOT FOUND")
    {
        (Some("the KDC does not know the service principal (the SPN, HTTP/<host> by default; set it with --spn)".to_owned()), false)
    } else if upper.contains("PREAUTH_FAILED")
        || upper.contains("INTEGRITY") && upper.contains("KRB")
    {
        (Some("the KDC refused the password".to_owned()), true)
    } else {
        (None, false)
    };
    let credentials_rejected = kerberos_rejection
        || matches!(
            e.error_type,
            K::LogonDenied | K::NoCredentials | K::UnknownCredentials | K::WrongPrincipalName
        );
    let message = match explained {
        Some(plain) => format!("{what}: {plain} ({description})"),
        None => format!("{what}: {description}"),
    };
    ContextError {
        message,
        credentials_rejected,
    }
}

/// The outcome of one handshake step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this token and feed the peer's answer to the next step.
    Continue(Vec<u8>),
    /// Authenticated; send this last token if there is one.
    Done(Option<Vec<u8>>),
}

/// A client or server security context for one connection.
pub trait SecurityContext: Send {
    /// The next handshake token; `input` is the peer's last token (none at the start).
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError>;
    /// Seals a message (sign, then encrypt), advancing the sending sequence number.
    fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError>;
    /// Checks and unseals a message, rejecting a bad signature or an out-of-order sequence
    /// number.
    fn unwrap(&mut self, part: &SealedPart) -> Result<Vec<u8>, ContextError>;
    /// The HTTP authentication scheme (`Negotiate` or `Kerberos`).
    fn http_scheme(&self) -> &'static str;
    /// Binds the authentication to the TLS channel (`tls-server-end-point:<hash>`); call before
    /// the step that authenticates.
    fn set_channel_bindings(&mut self, _application_data: &[u8]) {}
    /// True when the first token must already carry the channel bindings (Kerberos: the
    /// AP-REQ is the first and only client token), so on HTTPS the session learns the server's
    /// certificate before the first step.
    fn needs_channel_bindings_first(&self) -> bool {
        false
    }
    /// True when a step may block on the network (Kerberos talks to the KDC): the session then
    /// runs it on the blocking pool.
    fn is_blocking(&self) -> bool {
        false
    }
    /// The `protocol` of the `multipart/encrypted` body.
    fn protocol(&self) -> &'static str {
        SPNEGO_PROTOCOL
    }
}

fn identity(credentials: &Credentials) -> Result<AuthIdentity, ContextError> {
    identity_of(credentials.user(), credentials.password())
}

fn identity_of(user: &str, password: &Password) -> Result<AuthIdentity, ContextError> {
    let username = Username::parse(user).map_err(|e| ContextError {
        message: format!("invalid user name {user:?}: {e}"),
        credentials_rejected: false,
    })?;
    Ok(AuthIdentity {
        username,
        password: password.expose().to_owned().into(),
    })
}

/// The name this machine gives as its workstation in NTLM messages.
fn workstation() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_ascii_uppercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "WORKSTATION".into())
}

/// NTLM (raw NTLMSSP tokens under the `Negotiate` scheme, as Windows clients send them), with
/// MIC, key exchange, sealing and, on HTTPS, channel bindings.
pub struct NtlmClient {
    ntlm: Ntlm,
    credentials: Option<AuthIdentityBuffers>,
    target: String,
    complete: bool,
}

impl NtlmClient {
    /// A client context; `channel_bindings` is the `tls-server-end-point:<hash>` application
    /// data on HTTPS.
    pub fn new(
        credentials: &Credentials,
        target_host: &str,
        channel_bindings: Option<&[u8]>,
    ) -> Result<Self, ContextError> {
        let mut ntlm = Ntlm::with_config(NtlmConfig::new(workstation()));
        if let Some(token) = channel_bindings {
            ntlm.set_channel_bindings(token);
        }
        let identity = identity(credentials)?;
        let handle = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .map_err(|e| context_error("NTLM credentials", e))?;
        Ok(Self {
            ntlm,
            credentials: handle.credentials_handle,
            target: format!("HTTP/{target_host}"),
            complete: false,
        })
    }
}

fn client_flags() -> ClientRequestFlags {
    ClientRequestFlags::CONFIDENTIALITY
        | ClientRequestFlags::INTEGRITY
        | ClientRequestFlags::SEQUENCE_DETECT
        | ClientRequestFlags::REPLAY_DETECT
        | ClientRequestFlags::ALLOCATE_MEMORY
}

impl SecurityContext for NtlmClient {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        if self.complete {
            return Ok(Step::Done(None));
        }
        let mut input_buffers = vec![SecurityBuffer::new(
            input.unwrap_or_default().to_vec(),
            BufferType::Token,
        )];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut builder = self
            .ntlm
            .initialize_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(client_flags())
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.target)
            .with_output(&mut output);
        if input.is_some() {
            builder = builder.with_input(&mut input_buffers);
        }
        let result = self
            .ntlm
            .initialize_security_context_impl(&mut builder)
            .map_err(|e| context_error("NTLM", e))?
            .resolve_to_result()
            .map_err(|e| context_error("NTLM", e))?;
        finish_step(
            &mut self.ntlm,
            result.status,
            &mut output,
            &mut self.complete,
        )
    }

    fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
        wrap_with(&mut self.ntlm, plaintext)
    }

    fn unwrap(&mut self, part: &SealedPart) -> Result<Vec<u8>, ContextError> {
        unwrap_with(&mut self.ntlm, part)
    }

    fn http_scheme(&self) -> &'static str {
        "Negotiate"
    }

    fn set_channel_bindings(&mut self, application_data: &[u8]) {
        self.ntlm.set_channel_bindings(application_data);
    }
}

/// Completes the token when the package asks for it, and turns the status into a [`Step`].
fn finish_step(
    context: &mut impl Sspi,
    status: SecurityStatus,
    output: &mut [SecurityBuffer],
    complete: &mut bool,
) -> Result<Step, ContextError> {
    if matches!(
        status,
        SecurityStatus::CompleteAndContinue | SecurityStatus::CompleteNeeded
    ) {
        context
            .complete_auth_token(output)
            .map_err(|e| context_error("completing the token", e))?;
    }
    let token = std::mem::take(&mut output[0].buffer);
    match status {
        SecurityStatus::ContinueNeeded | SecurityStatus::CompleteAndContinue => {
            Ok(Step::Continue(token))
        }
        _ => {
            *complete = true;
            Ok(Step::Done((!token.is_empty()).then_some(token)))
        }
    }
}

fn wrap_with(context: &mut impl Sspi, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
    let trailer = context
        .query_context_sizes()
        .map_err(|e| context_error("sealing", e))?
        .security_trailer as usize;
    let mut header = vec![0u8; trailer];
    let mut data = plaintext.to_vec();
    let mut buffers = [
        SecurityBufferRef::token_buf(header.as_mut_slice()),
        SecurityBufferRef::data_buf(data.as_mut_slice()),
    ];
    context
        .encrypt_message(EncryptionFlags::empty(), &mut buffers)
        .map_err(|e| context_error("sealing", e))?;
    let header = buffers[0].data().to_vec();
    let data = buffers[1].data().to_vec();
    Ok(SealedPart {
        original_length: plaintext.len(),
        header,
        data,
    })
}

fn unwrap_with(context: &mut impl Sspi, part: &SealedPart) -> Result<Vec<u8>, ContextError> {
    let mut header = part.header.clone();
    let mut data = part.data.clone();
    let mut buffers = [
        SecurityBufferRef::token_buf(header.as_mut_slice()),
        SecurityBufferRef::data_buf(data.as_mut_slice()),
    ];
    context
        .decrypt_message(&mut buffers)
        .map_err(|e| context_error("unsealing (bad signature, sequence number or key)", e))?;
    let plaintext = buffers[1].data().to_vec();
    if plaintext.len() != part.original_length {
        return Err(ContextError {
            message: format!(
                "unsealed {} bytes but the message declares Length={}",
                plaintext.len(),
                part.original_length
            ),
            credentials_rejected: false,
        });
    }
    Ok(plaintext)
}

/// Kerberos with a password (no kinit needed), the KDC reached through this crate's own TCP transport,
/// under the `Kerberos` HTTP scheme with `HTTP-Kerberos-session-encrypted` sealing.
///
/// No channel bindings on HTTPS: given bindings, sspi 0.23 adds a top-level
/// `AD-AUTH-DATA-AP-OPTIONS` element that MIT's acceptor does not complete a context with (the
/// interop test showed it), and a stock Windows server (`CbtHardeningLevel=Relaxed`) accepts
/// none. Kerberos from the ticket cache ([`crate::auth::kerberos`]) does send them.
pub struct KerberosClient {
    kerberos: sspi::Kerberos,
    credentials: Option<sspi::CredentialsBuffers>,
    spn: String,
    kdc: KdcTransport,
    complete: bool,
}

impl KerberosClient {
    /// A client for `spn` (e.g. `HTTP/fs01.corp.example`), asking the KDC at `kdc_url`
    /// (`tcp://host:88`).
    pub fn new(
        credentials: &Credentials,
        keytab: Option<&super::keytab::KeytabKey>,
        spn: &str,
        kdc_url: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, ContextError> {
        let config = sspi::KerberosConfig::new_with_kdc_url(kdc_url, workstation());
        let mut kerberos = sspi::Kerberos::new_client_from_config(config)
            .map_err(|e| context_error("Kerberos", e))?;
        let auth_data = match keytab {
            Some(key) => sspi::Credentials::Keytab(sspi::KeytabIdentity {
                principal: Username::parse(&down_level(&key.principal)).map_err(|e| {
                    ContextError {
                        message: format!("invalid principal {:?}: {e}", key.principal),
                        credentials_rejected: false,
                    }
                })?,
                key: key.key.to_vec().into(),
                key_enctype: if key.enctype == 17 {
                    picky_krb::crypto::CipherSuite::Aes128CtsHmacSha196
                } else {
                    picky_krb::crypto::CipherSuite::Aes256CtsHmacSha196
                },
            }),
            None => sspi::Credentials::AuthIdentity(identity_of(
                &down_level(credentials.user()),
                credentials.password(),
            )?),
        };
        let handle = kerberos
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&auth_data)
            .execute(&mut kerberos)
            .map_err(|e| context_error("Kerberos credentials", e))?;
        Ok(Self {
            kerberos,
            credentials: handle.credentials_handle,
            spn: spn.to_owned(),
            kdc: KdcTransport { timeout },
            complete: false,
        })
    }
}

/// sspi sends a UPN as an enterprise name, which MIT KDCs refuse: `user@REALM` becomes
/// `REALM\\user`.
fn down_level(user: &str) -> String {
    match user.split_once('@') {
        Some((name, realm)) if !user.contains('\\') => {
            format!("{}\\{name}", realm.to_ascii_uppercase())
        }
        _ => user.to_owned(),
    }
}

impl SecurityContext for KerberosClient {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        if self.complete && input.is_none() {
            return Ok(Step::Done(None));
        }
        let mut input_buffers = vec![SecurityBuffer::new(
            input.unwrap_or_default().to_vec(),
            BufferType::Token,
        )];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut builder = self
            .kerberos
            .initialize_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(client_flags() | ClientRequestFlags::MUTUAL_AUTH)
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&self.spn)
            .with_input(&mut input_buffers)
            .with_output(&mut output);
        let result = self
            .kerberos
            .initialize_security_context_impl(&mut builder)
            .map_err(|e| context_error("Kerberos", e))?
            .resolve_with_client(&self.kdc)
            .map_err(|e| context_error("Kerberos", e))?;
        finish_step(
            &mut self.kerberos,
            result.status,
            &mut output,
            &mut self.complete,
        )
    }

    fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
        wrap_with(&mut self.kerberos, plaintext)
    }

    fn unwrap(&mut self, part: &SealedPart) -> Result<Vec<u8>, ContextError> {
        unwrap_with(&mut self.kerberos, part)
    }

    fn http_scheme(&self) -> &'static str {
        "Kerberos"
    }

    fn protocol(&self) -> &'static str {
        KERBEROS_PROTOCOL
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

/// The acceptor side of NTLM, for the fixture server: one expected user and password.
pub struct NtlmServer {
    ntlm: Ntlm,
    credentials: Option<AuthIdentityBuffers>,
    complete: bool,
}

impl NtlmServer {
    /// An acceptor that admits exactly this user and password.
    pub fn new(user: &str, password: &Password) -> Result<Self, ContextError> {
        let mut ntlm = Ntlm::new();
        let identity = identity_of(user, password)?;
        let handle = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Inbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .map_err(|e| context_error("NTLM acceptor credentials", e))?;
        Ok(Self {
            ntlm,
            credentials: handle.credentials_handle,
            complete: false,
        })
    }

    /// True once the client is authenticated.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
}

impl SecurityContext for NtlmServer {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, ContextError> {
        let mut input_buffers = vec![SecurityBuffer::new(
            input.unwrap_or_default().to_vec(),
            BufferType::Token,
        )];
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = self
            .ntlm
            .accept_security_context()
            .with_credentials_handle(&mut self.credentials)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input_buffers)
            .with_output(&mut output);
        let result = self
            .ntlm
            .accept_security_context_impl(builder)
            .map_err(|e| context_error("NTLM acceptor", e))?
            .resolve_to_result()
            .map_err(|e| context_error("NTLM acceptor", e))?;
        finish_step(
            &mut self.ntlm,
            result.status,
            &mut output,
            &mut self.complete,
        )
    }

    fn wrap(&mut self, plaintext: &[u8]) -> Result<SealedPart, ContextError> {
        wrap_with(&mut self.ntlm, plaintext)
    }

    fn unwrap(&mut self, part: &SealedPart) -> Result<Vec<u8>, ContextError> {
        unwrap_with(&mut self.ntlm, part)
    }

    fn http_scheme(&self) -> &'static str {
        "Negotiate"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(client: &mut NtlmClient, server: &mut NtlmServer) -> Result<(), ContextError> {
        let mut to_server = match client.step(None)? {
            Step::Continue(t) => t,
            Step::Done(_) => panic!("NTLM needs three messages"),
        };
        for _ in 0..4 {
            let to_client = match server.step(Some(&to_server))? {
                Step::Continue(t) => t,
                Step::Done(_) => return Ok(()),
            };
            to_server = match client.step(Some(&to_client))? {
                Step::Continue(t) => t,
                Step::Done(Some(t)) => t,
                Step::Done(None) => return Ok(()),
            };
        }
        panic!("handshake did not finish")
    }

    fn pair(server_password: &str) -> (NtlmClient, NtlmServer) {
        let client = NtlmClient::new(&Credentials::new("demo", "s3cret"), "fs01", None).unwrap();
        let server = NtlmServer::new("demo", &Password::new(server_password)).unwrap();
        (client, server)
    }

    #[test]
    fn client_and_acceptor_authenticate_and_seal_both_ways() {
        let (mut client, mut server) = pair("s3cret");
        handshake(&mut client, &mut server).unwrap();
        assert!(server.is_complete());
        for message in [b"<s:Envelope/>".as_slice(), b"second message", b""] {
            let sealed = client.wrap(message).unwrap();
            assert_eq!(sealed.header.len(), 16, "NTLM signature");
            if !message.is_empty() {
                assert_ne!(sealed.data, message, "sealed, not in clear");
            }
            assert_eq!(server.unwrap(&sealed).unwrap(), message);
            let answer = server.wrap(b"answer").unwrap();
            assert_eq!(client.unwrap(&answer).unwrap(), b"answer");
        }
    }

    #[test]
    fn a_wrong_password_is_rejected_by_the_acceptor() {
        let (mut client, mut server) = pair("other");
        let e = handshake(&mut client, &mut server).unwrap_err();
        assert!(!e.message.is_empty());
    }

    #[test]
    fn tampering_and_replay_are_detected() {
        let (mut client, mut server) = pair("s3cret");
        handshake(&mut client, &mut server).unwrap();
        let sealed = client.wrap(b"pull page 2").unwrap();
        let mut tampered = sealed.clone();
        tampered.data[0] ^= 1;
        assert!(server.unwrap(&tampered).is_err());

        let (mut client, mut server) = pair("s3cret");
        handshake(&mut client, &mut server).unwrap();
        let first = client.wrap(b"one").unwrap();
        server.unwrap(&first).unwrap();
        assert!(
            server.unwrap(&first).is_err(),
            "a replayed sequence number is refused"
        );

        let mut wrong_length = client.wrap(b"two").unwrap();
        wrong_length.original_length += 1;
        assert!(server.unwrap(&wrong_length).is_err());
    }

    fn peer_fixture(name: &str) -> Option<Vec<u8>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/peer-fixtures/pyspnego/data")
            .join(name);
        std::fs::read(path).ok()
    }

    #[test]
    fn a_real_windows_challenge_gets_an_authenticate_message() {
        let Some(challenge) = peer_fixture("ntlm_challenge") else {
            return; // ../shared/peer-fixtures is not present
        };
        let mut client =
            NtlmClient::new(&Credentials::new(r"DOMAIN\user", "pass"), "dc01", None).unwrap();
        let Step::Continue(negotiate) = client.step(None).unwrap() else {
            panic!()
        };
        assert_eq!(&negotiate[..12], b"NTLMSSP\0\x01\0\0\0");
        let authenticate = match client.step(Some(&challenge)).unwrap() {
            Step::Continue(t) | Step::Done(Some(t)) => t,
            Step::Done(None) => panic!("no AUTHENTICATE"),
        };
        assert_eq!(&authenticate[..12], b"NTLMSSP\0\x03\0\0\0");
    }

    #[test]
    fn a_real_windows_negotiate_gets_a_challenge_from_the_acceptor() {
        let Some(negotiate) = peer_fixture("ntlm_negotiate") else {
            return;
        };
        let mut server = NtlmServer::new("demo", &Password::new("demo")).unwrap();
        let Step::Continue(challenge) = server.step(Some(&negotiate)).unwrap() else {
            panic!()
        };
        assert_eq!(&challenge[..12], b"NTLMSSP\0\x02\0\0\0");
    }

    #[test]
    fn malformed_and_truncated_tokens_are_errors_not_panics() {
        let challenge = peer_fixture("ntlm_challenge")
            .unwrap_or_else(|| b"NTLMSSP\0\x02\0\0\0garbage".to_vec());
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"NTLMSSP\0".to_vec(), vec![0xff; 300]];
        inputs.extend(
            (0..challenge.len())
                .step_by(7)
                .map(|cut| challenge[..cut].to_vec()),
        );
        for input in inputs {
            let mut client = NtlmClient::new(&Credentials::new("u", "p"), "h", None).unwrap();
            client.step(None).unwrap();
            let _ = client.step(Some(&input));
            let mut server = NtlmServer::new("u", &Password::new("p")).unwrap();
            let _ = server.step(Some(&input));
        }
    }
}
