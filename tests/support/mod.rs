//! Shared by the library's and the command line's tests: the bundled fixture server, hostile
//! and scripted servers, a cutting proxy, the interop harness, a memory watcher.

pub mod interop;
pub mod omi;
pub mod scripted;

use std::path::{Path, PathBuf};

use winrm_sessions::testing::FixtureServer;
use winrm_sessions::{Client, Credentials};

/// How long a test binary that uses these servers may run in all: several times what the
/// suites take on a 2-core machine (the library's integration tests about 15 s, the command
/// line's about 25 s). Past it, a test hangs (a retry loop that never ends, a wait for an
/// event that never comes): the binary says so and aborts, so the run fails instead of
/// hanging CI. `WINRM_SESSIONS_TEST_WATCHDOG_SECS` changes it.
const WATCHDOG: std::time::Duration = std::time::Duration::from_secs(90);

/// Starts the watchdog of this test binary (once): see [`WATCHDOG`].
pub fn watchdog() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let limit = std::env::var("WINRM_SESSIONS_TEST_WATCHDOG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(WATCHDOG, std::time::Duration::from_secs);
        std::thread::spawn(move || {
            std::thread::sleep(limit);
            // Straight to the process's stderr: the harness captures `eprintln!` of a test's
            // threads, and would drop it with the aborted process.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr().lock(),
                format!(
                    "\nwatchdog: this test binary has run for {} s: a test hangs; aborting so \
                     that the run fails instead of hanging\n",
                    limit.as_secs()
                )
                .as_bytes(),
            );
            std::process::abort();
        });
    });
}

/// The repository's root (the library's package, whichever package's tests include this).
pub fn repo() -> PathBuf {
    watchdog();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("fixtures/demo").is_dir())
        .unwrap_or(manifest)
        .to_path_buf()
}

pub fn demo_fixtures() -> PathBuf {
    repo().join("fixtures/demo")
}

pub async fn demo_server() -> FixtureServer {
    FixtureServer::start(demo_fixtures())
        .await
        .expect("bundled fixtures load")
}

/// Basic over plain HTTP: the requests arrive as they were written.
pub fn basic_client(url: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", "demo"))
        .auth(winrm_sessions::Auth::Basic)
        .danger_allow_basic_over_http(true)
        .build()
        .expect("client builds")
}

pub fn client_for(url: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", "demo"))
        .danger_allow_basic_over_http(true)
        .build()
        .expect("client builds")
}

/// Turns a response's text into its bytes (see [`Behavior::Encoded`]).
pub type Encoder = Box<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// What a hostile server does with the n-th request it receives (0-based).
pub enum Behavior {
    /// Sends these raw bytes (`{RELATES}` is replaced by the request's MessageID) and closes.
    Raw(String),
    /// Sends a 200 SOAP response with this body (`{RELATES}` replaced).
    Soap(String),
    /// Sends a 200 response with this content type and this XML (`{RELATES}` replaced), turned
    /// into bytes by `encode` (another character encoding, say).
    Encoded {
        content_type: String,
        xml: String,
        encode: Encoder,
    },
    /// Like `Soap`, with another status (faults come with 500).
    Status(u16, String),
    /// Never answers.
    Hang,
    /// Closes the connection without a byte.
    Close,
    /// Waits, then does the other behaviour (a server that takes its OperationTimeout).
    After(std::time::Duration, Box<Behavior>),
}

/// A loopback server that answers with whatever the test wants, including nonsense.
pub async fn hostile_server(
    behave: impl Fn(usize) -> Behavior + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    hostile_server_seeing(move |n, _| behave(n)).await
}

/// Like [`hostile_server`], with the request body to decide on.
pub async fn hostile_server_seeing(
    behave: impl Fn(usize, &str) -> Behavior + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    watchdog();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wsman", listener.local_addr().unwrap());
    let behave = std::sync::Arc::new(behave);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let behave = behave.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                loop {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 8192];
                    let body_start = loop {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(pos) = find(&request, b"\r\n\r\n") {
                            break pos + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while request.len() < body_start + length {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    let body = String::from_utf8_lossy(&request[body_start..]).into_owned();
                    let relates = body
                        .split("<a:MessageID>")
                        .nth(1)
                        .and_then(|r| r.split('<').next())
                        .unwrap_or_default()
                        .to_owned();
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut behavior = behave(n, &body);
                    while let Behavior::After(pause, then) = behavior {
                        tokio::time::sleep(pause).await;
                        behavior = *then;
                    }
                    match behavior {
                        Behavior::Raw(raw) => {
                            let _ = stream
                                .write_all(raw.replace("{RELATES}", &relates).as_bytes())
                                .await;
                            return;
                        }
                        Behavior::Soap(_) | Behavior::Status(..) => {
                            let (status, soap) = match behavior {
                                Behavior::Status(status, soap) => (status, soap),
                                Behavior::Soap(soap) => (200, soap),
                                _ => unreachable!(),
                            };
                            let soap = soap.replace("{RELATES}", &relates);
                            let reason = if status == 200 { "OK" } else { "Error" };
                            let raw = format!(
                                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{soap}",
                                soap.len()
                            );
                            if stream.write_all(raw.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Behavior::Encoded {
                            content_type,
                            xml,
                            encode,
                        } => {
                            let body = encode(&xml.replace("{RELATES}", &relates));
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            if stream
                                .write_all(&[head.into_bytes(), body].concat())
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Behavior::Hang => {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                            return;
                        }
                        Behavior::Close => return,
                        Behavior::After(..) => unreachable!("unwrapped above"),
                    }
                }
            });
        }
    });
    (url, task)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A Windows-shaped envelope around a body, relating to the request.
pub fn soap(body: &str) -> String {
    format!(
        concat!(
            r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#,
            "<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</a:Action>",
            "<a:RelatesTo>{{RELATES}}</a:RelatesTo></s:Header><s:Body>{}</s:Body></s:Envelope>"
        ),
        body
    )
}

/// A loopback TCP proxy that records both directions and can cut connections: to look at what
/// crosses the wire and to break connections at chosen moments.
pub struct Proxy {
    pub url: String,
    pub upstream_bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pub downstream_bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cut_at_request: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering;
        use std::sync::{Arc, Mutex};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/wsman", listener.local_addr().unwrap());
        let upstream_bytes = Arc::new(Mutex::new(Vec::new()));
        let downstream_bytes = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cut_at_request = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> =
            Arc::new(Mutex::new(Vec::new()));
        let (up, down, req, cut, conns) = (
            upstream_bytes.clone(),
            downstream_bytes.clone(),
            requests.clone(),
            cut_at_request.clone(),
            connections.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let (up, down, req, cut) = (up.clone(), down.clone(), req.clone(), cut.clone());
                let handle = tokio::spawn(async move {
                    let to_server = async {
                        let mut buf = vec![0u8; 65536];
                        loop {
                            let n = match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let starts = buf[..n].windows(6).filter(|w| w == b"POST /").count();
                            let seen = req.fetch_add(starts, Ordering::SeqCst) + starts;
                            let limit = cut.load(Ordering::SeqCst);
                            if limit != 0
                                && starts > 0
                                && seen >= limit
                                && cut
                                    .compare_exchange(limit, 0, Ordering::SeqCst, Ordering::SeqCst)
                                    .is_ok()
                            {
                                return; // cut once: this request never arrives, no answer comes back
                            }
                            up.lock().unwrap().extend_from_slice(&buf[..n]);
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let to_client = async {
                        let mut buf = vec![0u8; 65536];
                        loop {
                            let n = match server_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            down.lock().unwrap().extend_from_slice(&buf[..n]);
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! { _ = to_server => {}, _ = to_client => {} }
                });
                conns.lock().unwrap().push(handle.abort_handle());
            }
        });
        Proxy {
            url,
            upstream_bytes,
            downstream_bytes,
            requests,
            cut_at_request,
            connections,
            task,
        }
    }

    /// Closes every open connection, as a server restart or an idle timeout would.
    pub fn drop_connections(&self) {
        for handle in self.connections.lock().unwrap().drain(..) {
            handle.abort();
        }
    }

    /// Cuts the connection carrying the n-th request from now on (1-based), before it arrives;
    /// the requests after it go through.
    pub fn cut_request(&self, n_from_now: usize) {
        use std::sync::atomic::Ordering;
        let now = self.requests.load(Ordering::SeqCst);
        self.cut_at_request
            .store(now + n_from_now, Ordering::SeqCst);
    }

    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.drop_connections();
        self.task.abort();
    }
}

/// The peak resident memory of a child process, in MB, sampled until it exits or `limit`
/// passes (then it is killed).
pub fn watch_memory(child: &mut std::process::Child, limit: std::time::Duration) -> f64 {
    watch_memory_until(child, limit, || false).0
}

/// Like [`watch_memory`], ending the child also as soon as `done` says so (checked while it
/// runs); the second value is true when `done` ended it, false when it exited or ran out of time.
/// Fails when the peak cannot be read from /proc: a probe that cannot measure must not pass.
pub fn watch_memory_until(
    child: &mut std::process::Child,
    limit: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> (f64, bool) {
    let started = std::time::Instant::now();
    let mut peak_kb = 0u64;
    let mut ended_by_done = false;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let stop = done();
        if stop || started.elapsed() > limit {
            ended_by_done = stop;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        peak_kb > 0,
        "the child's peak memory could not be read from /proc/{}/status",
        child.id()
    );
    (peak_kb as f64 / 1024.0, ended_by_done)
}

const ENDLESS_ITEM: &str = r#"<p:MSFT_SmbSession xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession"><p:ClientUserName>CONTOSO\user</p:ClientUserName><p:NumOpens>1</p:NumOpens><p:SessionId>ID</p:SessionId></p:MSFT_SmbSession>"#;

/// Page `n` of an enumeration that never ends: `items` sessions with ids unique across pages.
pub fn endless_page(n: usize, items: usize) -> String {
    let body: String = (0..items)
        .map(|i| ENDLESS_ITEM.replace("ID", &(n * items + i).to_string()))
        .collect();
    let (element, items_ns) = if n == 0 {
        ("EnumerateResponse", "w")
    } else {
        ("PullResponse", "n")
    };
    soap(&format!(
        "<n:{element}><n:EnumerationContext>uuid:ctx-{n}</n:EnumerationContext><{items_ns}:Items>{body}</{items_ns}:Items></n:{element}>"
    ))
    .replace("EnumerateResponse</a:Action>", &format!("{element}</a:Action>"))
}

/// `hosts` demo fixture servers that answer after `latency`, counting their requests (and how
/// many of them answer at once) in one probe: a fleet of slow hosts whose concurrency a test
/// can check without timing.
pub async fn slow_hosts(
    hosts: usize,
    latency: std::time::Duration,
) -> (Vec<FixtureServer>, winrm_sessions::testing::InFlight) {
    let probe = winrm_sessions::testing::InFlight::new();
    let servers = futures_util::future::join_all((0..hosts).map(|_| {
        FixtureServer::builder(
            winrm_sessions::testing::FixtureSet::from_dir(demo_fixtures()).unwrap(),
        )
        .latency(latency)
        .in_flight(&probe)
        .start()
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    (servers, probe)
}
