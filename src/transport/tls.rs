//! The TLS configuration: read once when a client is built, the verifier (with the system's CA
//! certificates) made once on first use, and shared by every connection of every host.
//!
//! reqwest would otherwise load and parse the system's CA certificates for each HTTP client
//! it builds, and this crate builds one per authenticated connection and per host: over a
//! fleet that was most of the CPU spent before a byte was sent.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::{Error, Result};

/// CA certificates, a client identity and the verification policy, with the configuration
/// built from them.
pub(crate) struct TlsMaterial {
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    danger_accept_invalid_certs: bool,
    config: OnceLock<Arc<ClientConfig>>,
}

impl TlsMaterial {
    /// Reads the PEM inputs: CA bundles to trust besides the system's roots, and a client
    /// certificate chain followed by its private key.
    pub(crate) fn parse(
        ca_bundles: &[Vec<u8>],
        identity: Option<&[u8]>,
        danger_accept_invalid_certs: bool,
    ) -> Result<Self> {
        let mut extra_roots = Vec::new();
        for pem in ca_bundles {
            let before = extra_roots.len();
            for cert in CertificateDer::pem_slice_iter(pem) {
                extra_roots.push(
                    cert.map_err(|e| Error::config(format!("cannot read CA certificates: {e}")))?,
                );
            }
            if extra_roots.len() == before {
                return Err(Error::config("the CA file holds no PEM certificate"));
            }
        }
        let identity = match identity {
            None => None,
            Some(pem) => {
                let chain = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Error::config(format!("cannot read the client certificate: {e}"))
                    })?;
                if chain.is_empty() {
                    return Err(Error::config(
                        "the client certificate file holds no certificate",
                    ));
                }
                let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
                    Error::config(format!(
                        "cannot read the client certificate's private key: {e}"
                    ))
                })?;
                Some((chain, key))
            }
        };
        let material = Self {
            extra_roots,
            identity,
            danger_accept_invalid_certs,
            config: OnceLock::new(),
        };
        if material.identity.is_some() {
            // A key that does not fit its certificate is a configuration error: say it now.
            material.config()?;
        }
        Ok(material)
    }

    /// The client configuration (HTTP/1.1, TLS 1.2 and 1.3), built on first use.
    pub(crate) fn config(&self) -> Result<Arc<ClientConfig>> {
        if let Some(config) = self.config.get() {
            return Ok(config.clone());
        }
        let config = Arc::new(self.build()?);
        Ok(self.config.get_or_init(|| config).clone())
    }

    fn build(&self) -> Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(format!("TLS: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.danger_accept_invalid_certs {
            Arc::new(AcceptAnyCertificate(provider.clone()))
        } else {
            Arc::new(
                rustls_platform_verifier::Verifier::new_with_extra_roots(
                    self.extra_roots.iter().cloned(),
                    provider,
                )
                .map_err(|e| Error::config(format!("cannot load the CA certificates: {e}")))?,
            )
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.identity {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| Error::config(format!("the client certificate is unusable: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl Drop for TlsMaterial {
    fn drop(&mut self) {
        if let Some((_, key)) = &mut self.identity {
            zeroize::Zeroize::zeroize(key);
        }
    }
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("extra_roots", &self.extra_roots.len())
            .field("client_certificate", &self.identity.is_some())
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .finish_non_exhaustive()
    }
}

/// `danger_accept_invalid_certs`: any certificate for any name is accepted; the handshake's
/// signatures are still checked against the certificate the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
