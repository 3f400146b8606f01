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
        let host = request.url.host_str().unwrap_or_default();
        let port = request.url.port().unwrap_or(88);
        let addresses: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| error(format!("cannot resolve KDC {host}:{port}: {e}")))?
            .collect();
        let mut last = None;
        for address in addresses {
            match exchange(address, &request.data, self.timeout) {
                Ok(reply) => return Ok(reply),
                Err(e) => last = Some(e),
            }
        }
        Err(error(format!(
            "cannot reach the KDC at {host}:{port}: {}",
            last.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        )))
    }
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
