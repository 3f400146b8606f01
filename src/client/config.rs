//! Client configuration and how a target becomes an endpoint URL.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// What a [`super::Client`] needs besides the shared transport settings: its target and the
/// WS-Management options of its requests.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub target: String,
    pub endpoint: Url,
    /// Whether host names (not URLs) become HTTPS endpoints, for clients retargeted from this one.
    pub https: bool,
    pub operation_timeout: Duration,
    pub max_envelope_size: u32,
    pub max_elements: u32,
    pub locale: Option<String>,
    /// Basic credentials without `danger_allow_basic_over_http`: a retargeted client must be
    /// HTTPS too, or the password would cross in clear to that host.
    pub basic_needs_https: bool,
    /// How requests name a class and its namespace.
    pub class_addressing: super::ClassAddressing,
}

/// Default ports of the WinRM service.
pub const HTTP_PORT: u16 = 5985;
/// Default HTTPS port of the WinRM service.
pub const HTTPS_PORT: u16 = 5986;

/// Turns a target into an endpoint URL: a full `http(s)://` URL is taken as it is (with
/// `/wsman` added when it has no path); a host name, an IPv4 or IPv6 address, with or without a
/// port, becomes `http://HOST:5985/wsman` or `https://HOST:5986/wsman`.
pub(crate) fn endpoint_url(target: &str, https: bool) -> Result<Url> {
    let target = target.trim();
    if target.is_empty() {
        return Err(Error::config("empty target"));
    }
    if target.contains("://") {
        let mut url = Url::parse(target)
            .map_err(|e| Error::config(format!("invalid URL {target:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "unsupported scheme {:?} in {target:?} (use http or https)",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config(format!("no host in {target:?}")));
        }
        if url.path().is_empty() || url.path() == "/" {
            url.set_path("/wsman");
        }
        return Ok(url);
    }
    let (scheme, default_port) = if https {
        ("https", HTTPS_PORT)
    } else {
        ("http", HTTP_PORT)
    };
    // A bare IPv6 address has several colons and no brackets: it has no port.
    let authority = if target.matches(':').count() > 1 && !target.starts_with('[') {
        format!("[{target}]:{default_port}")
    } else if target.starts_with('[') && target.ends_with(']') {
        format!("{target}:{default_port}")
    } else if target.contains(':') {
        target.to_owned()
    } else {
        format!("{target}:{default_port}")
    };
    if authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(Error::config(format!("invalid host {target:?}")));
    }
    Url::parse(&format!("{scheme}://{authority}/wsman"))
        .map_err(|e| Error::config(format!("invalid host {target:?}: {e}")))
}

/// Where a CA bundle comes from.
#[derive(Clone, Debug)]
pub(crate) enum CaSource {
    File(PathBuf),
    Pem(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_wsman_urls() {
        let cases = [
            ("fs01", false, "http://fs01:5985/wsman"),
            (
                "fs01.corp.example",
                true,
                "https://fs01.corp.example:5986/wsman",
            ),
            ("fs01:8080", false, "http://fs01:8080/wsman"),
            ("10.0.0.7", false, "http://10.0.0.7:5985/wsman"),
            ("fe80::1", false, "http://[fe80::1]:5985/wsman"),
            ("[::1]", true, "https://[::1]:5986/wsman"),
            ("[::1]:6000", false, "http://[::1]:6000/wsman"),
            ("https://fs01:443", false, "https://fs01/wsman"),
            (
                "http://127.0.0.1:9/custom",
                false,
                "http://127.0.0.1:9/custom",
            ),
        ];
        for (target, https, expected) in cases {
            assert_eq!(
                endpoint_url(target, https).unwrap().as_str(),
                expected,
                "{target}"
            );
        }
    }

    #[test]
    fn bad_targets_are_config_errors() {
        for target in ["", "ftp://fs01", "http://", "fs 01", "user@fs01"] {
            assert!(endpoint_url(target, false).is_err(), "{target:?}");
        }
    }
}
