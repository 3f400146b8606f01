//! Our own KDC transport for sspi's Kerberos (its `network_client` feature would pull in a second,
//! blocking HTTP stack): KDC messages over TCP with connect and read timeouts and a cap on the
//! reply. It runs on tokio's blocking pool, inside a handshake step.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use sspi::generator::NetworkRequest;
use sspi::network_client::{NetworkClient, NetworkProtocol};

/// Largest KDC reply accepted (a ticket with a large PAC stays well below).
const MAX_REPLY: usize = 2 << 20;

/// Sends KDC requests over TCP.
pub(crate) struct KdcTransport {
    pub timeout: Duration,
}

fn error(message: String) -> sspi::Error {
    sspi::Error::new(sspi::ErrorKind::NoAuthenticatingAuthority, message)
}

impl NetworkClient for KdcTransport {
    fn send(&self, request: &NetworkRequest) -> sspi::Result<Vec<u8>> {
        if request.protocol != NetworkProtocol::Tcp {
            return Err(error(format!(
                "KDC URL {} uses {:?}; only tcp:// is supported",
                request.url, request.protocol
            )));
        }
        send_framed(&request.url, &request.data, self.timeout).map_err(error)
    }
}

/// Sends one KDC message (DER, no length prefix) to `kdc_url` (`tcp://host:port`) and returns
/// the reply without its prefix.
pub(crate) fn send(kdc_url: &str, message: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let url = url::Url::parse(kdc_url).map_err(|e| format!("bad KDC URL {kdc_url}: {e}"))?;
    if url.scheme() != "tcp" {
        return Err(format!("KDC URL {kdc_url}: only tcp:// is supported"));
    }
    let length = u32::try_from(message.len()).map_err(|_| "KDC request too large".to_owned())?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    let mut reply = send_framed(&url, &framed, timeout)?;
    reply.drain(..4);
    Ok(reply)
}

fn send_framed(url: &url::Url, data: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port().unwrap_or(88);
    let addresses: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve KDC {host}:{port}: {e}"))?
        .collect();
    let mut last = None;
    for address in addresses {
        match exchange(address, data, timeout) {
            Ok(reply) => return Ok(reply),
            Err(e) => last = Some(e),
        }
    }
    Err(format!(
        "cannot reach the KDC at {host}:{port}: {}",
        last.map_or_else(|| "no address".to_owned(), |e| e.to_string())
    ))
}

/// One request (already carrying its 4-byte length prefix) and its reply, prefix included.
fn exchange(
    address: std::net::SocketAddr,
    data: &[u8],
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(data)?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix)?;
    let len = u32::from_be_bytes(prefix) as usize & 0x7fff_ffff;
    if len > MAX_REPLY {
        return Err(std::io::Error::other(format!(
            "KDC reply of {len} bytes exceeds the limit"
        )));
    }
    let mut reply = prefix.to_vec();
    reply.resize(4 + len, 0);
    stream.read_exact(&mut reply[4..])?;
    Ok(reply)
}
