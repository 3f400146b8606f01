//! Throwaway certificates for the HTTPS tests of the library's suites (rcgen is the
//! library's dev-dependency only, so the command line's tests do not include this).

/// A throwaway CA and a server certificate it signed for `names`: (CA, certificate, key) PEM.
pub fn pki(names: &[&str]) -> (String, String, String) {
    pki_with(names, |_| {})
}

/// Like [`pki`], the server certificate's parameters changed by `edit` (its validity).
pub fn pki_with(
    names: &[&str],
    edit: impl FnOnce(&mut rcgen::CertificateParams),
) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "winrm-sessions test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    edit(&mut params);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}
