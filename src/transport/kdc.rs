//! KDC messages over TCP (RFC 4120 7.2.2: a four-byte length, then the message), async, so
//! that a KDC that does not answer is bounded by the caller's deadline like any other I/O.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::kerberos::KerberosError;

/// Largest KDC reply accepted (a ticket with a large PAC stays well below).
const MAX_REPLY: usize = 1 << 20;

/// `host` and `port` of a `tcp://host:port` KDC URL (port 88 when absent).
fn host_port(url: &str) -> Result<(String, u16), KerberosError> {
    let rest = url.strip_prefix("tcp://").ok_or_else(|| {
        KerberosError::token(format!("KDC {url}: only tcp:// KDCs are supported"))
    })?;
    let parsed = url::Url::parse(&format!("tcp://{rest}"))
        .map_err(|e| KerberosError::token(format!("bad KDC address {url}: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| KerberosError::token(format!("no host in KDC address {url}")))?
        .trim_matches(['[', ']'])
        .to_owned();
    Ok((host, parsed.port().unwrap_or(88)))
}

async fn exchange_one(host: &str, port: u16, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect((host, port)).await?;
    let length =
        u32::try_from(request.len()).map_err(|_| std::io::Error::other("KDC request too large"))?;
    let mut framed = Vec::with_capacity(4 + request.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(request);
    stream.write_all(&framed).await?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_REPLY {
        return Err(std::io::Error::other(format!(
            "a KDC reply of {len} bytes exceeds the {MAX_REPLY}-byte limit"
        )));
    }
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

/// Sends a request to the first KDC of `kdcs` that answers within `timeout` each.
pub(crate) async fn exchange(
    kdcs: &[String],
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, KerberosError> {
    let mut failures = Vec::new();
    for url in kdcs {
        let (host, port) = host_port(url)?;
        match tokio::time::timeout(timeout, exchange_one(&host, port, request)).await {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(e)) => failures.push(format!("{host}:{port}: {e}")),
            Err(_) => failures.push(format!("{host}:{port}: no answer within {timeout:?}")),
        }
    }
    let mut error = KerberosError::token(if failures.is_empty() {
        "no KDC to ask".to_owned()
    } else {
        failures.join("; ")
    });
    error.kdc_unreachable = !failures.is_empty();
    Err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdc_addresses() {
        assert_eq!(host_port("tcp://dc01:88").unwrap(), ("dc01".into(), 88));
        assert_eq!(host_port("tcp://[::1]:1088").unwrap(), ("::1".into(), 1088));
        assert_eq!(host_port("tcp://dc01").unwrap(), ("dc01".into(), 88));
        assert!(host_port("udp://dc01:88").is_err());
    }

    #[tokio::test]
    async fn a_kdc_that_lies_about_its_reply_size_or_never_answers_is_an_error() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut huge, _) = listener.accept().await.unwrap();
            let _ = huge.write_all(&u32::MAX.to_be_bytes()).await;
            let (_silent, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let kdc = vec![format!("tcp://127.0.0.1:{port}")];
        let e = exchange(&kdc, b"x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.message.contains("limit"), "{e}");
        let e = exchange(&kdc, b"x", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.message.contains("no answer"), "{e}");
        assert!(!e.credentials_rejected && e.kdc_unreachable);
    }
}
