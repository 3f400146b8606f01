//! The least a fleet client can do over WS-Management, as a yardstick for the binary: for each
//! host a TCP connection, the recorded Enumerate, then a Pull with each answer's context, each
//! answer read into one buffer and dropped ([`Reading::Read`]), or first scanned as XML
//! ([`Reading::Scan`], the least a client that reads the XML at all does). Nothing typed,
//! nothing written; hyper on tokio's multi-threaded runtime, hosts in flight up to the
//! concurrency, as the binary runs them. Benchmarks start it as a process of their own (their
//! own executable, re-run with [`ENV`] set) under `/usr/bin/time`, beside the binary, against
//! the same server: its wall / ideal is what this machine allows any client, its CPU what the
//! bytes cost before any typing. Only the command line's benchmarks use it (hyper's client and
//! quick-xml are their dev-dependencies).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// Set (to `HOSTS_FILE FIXTURES CONCURRENCY read|scan`, tab-separated) in a benchmark re-run
/// as the raw client.
pub const ENV: &str = "WINRM_SESSIONS_BENCH_RAW_FLEET";

/// What the raw client does with each answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Reads it into a buffer (and finds the next context).
    Read,
    /// Reads it, then scans it with [`scan`].
    Scan,
}

/// The command that runs the raw client over the targets of `hosts_file` (one URL a line)
/// against the conversation recorded in `fixtures`, `concurrency` hosts at a time.
pub fn command(
    hosts_file: &Path,
    fixtures: &Path,
    concurrency: usize,
    reading: Reading,
) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    let reading = match reading {
        Reading::Read => "read",
        Reading::Scan => "scan",
    };
    command.env(
        ENV,
        format!(
            "{}\t{}\t{concurrency}\t{reading}",
            hosts_file.display(),
            fixtures.display()
        ),
    );
    command
}

/// The least any client that reads the XML does with a page: a namespace-resolved quick-xml
/// scan, each element's name resolved and each text unescaped. Returns a count to keep it from
/// being optimised away.
pub fn scan(page: &[u8]) -> usize {
    use quick_xml::events::Event;
    let mut seen = 0usize;
    let mut reader = quick_xml::reader::NsReader::from_reader(page);
    loop {
        match reader.read_resolved_event().expect("valid XML") {
            (_, Event::Start(_) | Event::Empty(_)) => seen += 1,
            (_, Event::Text(t)) => seen += t.xml10_content().len(),
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    seen
}

/// In a benchmark re-run by [`command`], runs the raw client and exits; otherwise returns.
pub fn run_if_asked() {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let mut parts = spec.split('\t');
    let (Some(hosts), Some(fixtures), Some(concurrency), Some(reading)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!(
            "{ENV}: expected HOSTS_FILE<TAB>FIXTURES<TAB>CONCURRENCY<TAB>read|scan, got {spec:?}"
        );
    };
    let reading = match reading {
        "read" => Reading::Read,
        "scan" => Reading::Scan,
        other => panic!("{ENV}: read or scan, not {other:?}"),
    };
    let targets: Vec<String> = std::fs::read_to_string(hosts)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let concurrency: usize = concurrency.parse().unwrap();
    let read = |name: &str| std::fs::read_to_string(Path::new(fixtures).join(name)).unwrap();
    let conversation = Arc::new(Conversation::new(
        read("00000-Enumerate.request.xml"),
        read("00001-Pull.request.xml"),
        reading,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut running = tokio::task::JoinSet::new();
        for target in targets {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let conversation = conversation.clone();
            running.spawn(async move {
                conversation.run(&target).await;
                drop(permit);
            });
            // Reap the finished ones as we go, so that a long list holds only what is in flight;
            // a host that failed fails the run (its wall would flatter the client).
            while let Some(done) = running.try_join_next() {
                done.expect("a host of the raw client failed");
            }
        }
        while let Some(done) = running.join_next().await {
            done.expect("a host of the raw client failed");
        }
    });
    std::process::exit(0);
}

/// One host's requests: the recorded Enumerate, then the recorded Pull with each answer's
/// context in place of the recorded one.
struct Conversation {
    enumerate: String,
    pull: String,
    recorded_context: String,
    reading: Reading,
}

impl Conversation {
    fn new(enumerate: String, pull: String, reading: Reading) -> Self {
        let recorded_context = context(&pull).expect("a Pull with a context").to_owned();
        Self {
            enumerate,
            pull,
            recorded_context,
            reading,
        }
    }

    async fn run(&self, target: &str) {
        let uri: hyper::Uri = target.parse().unwrap();
        let authority = uri.authority().unwrap().as_str().to_owned();
        let path = uri.path_and_query().unwrap().as_str().to_owned();
        let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        // The connection is polled by this task, as the binary polls its own.
        let requests = async move {
            let mut body = self.enumerate.clone();
            loop {
                let request = hyper::Request::post(path.as_str())
                    .header("Host", authority.as_str())
                    .header("Content-Type", "application/soap+xml;charset=UTF-8")
                    .header("Authorization", "Basic ZGVtbzpkZW1v")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200, "{target}");
                let page = response.into_body().collect().await.unwrap().to_bytes();
                if self.reading == Reading::Scan {
                    std::hint::black_box(scan(&page));
                }
                let text = std::str::from_utf8(&page).unwrap();
                if text.contains("EndOfSequence") {
                    break;
                }
                let Some(next) = context(text) else { break };
                body = self.pull.replace(&self.recorded_context, next);
            }
            // Closes the connection: hyper's side of it then ends.
            drop(sender);
        };
        let (_, connection) = tokio::join!(requests, connection);
        connection.unwrap();
    }
}

/// The text between `open`'s end and `close` in `text`: `between(page, "EnumerationContext",
/// "</")` is a page's context.
pub fn between<'t>(text: &'t str, open: &str, close: &str) -> Option<&'t str> {
    let start = text.find(open)? + open.len();
    let start = start + text[start..].find('>')? + 1;
    let end = start + text[start..].find(close)?;
    Some(&text[start..end])
}

/// A page's EnumerationContext.
fn context(text: &str) -> Option<&str> {
    between(text, "EnumerationContext", "</")
}
