//! Typed at the cost of a raw read, class by class: for each seed class, the binary's CPU
//! (user + system, `/usr/bin/time`, median of three) against a client that types nothing,
//! built here: hyper on one thread, posting the same Enumerate and Pulls to the same fixture
//! server and reading each page into one buffer (what a raw-XML client such as winrm-rs does),
//! its CPU measured on its own thread. Same server, same pages, same run; Basic over HTTP,
//! then NTLM with message encryption (the raw client unseals each page with this crate's
//! NTLM, as the binary does).
//!
//! The raw read is nearly free (the kernel's copy and hyper's framing); any typed client must
//! at least scan the XML, so the table also shows the raw read plus a namespace-resolved
//! quick-xml scan of the same pages, the floor of reading XML at all.
//!
//! Each class's items are the demo fixtures' (recorded from Windows), repeated to 100,000
//! (Win32_Process: 25,000), in pages of about 1,000 items.
//!
//! `cargo bench -p winrm-sessions-cli --bench classes`; `WINRM_SESSIONS_BENCH_CLASS_ITEMS=N`
//! for another count, `WINRM_SESSIONS_BENCH_CLASSES=Win32_Process,...` for some classes,
//! `WINRM_SESSIONS_BENCH_WORK=DIR` to keep the fixtures in DIR.

#[path = "../../benches/common/mod.rs"]
mod common;
#[path = "../../benches/common/raw_fleet.rs"]
mod raw_fleet;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use raw_fleet::between;
use winrm_sessions::internals::RawNtlm;
use winrm_sessions::wsman::{ResponseBody, parse_response};

const BINARY: &str = env!("CARGO_BIN_EXE_winrm-sessions");
/// Items per Pull page, about.
const PAGE: usize = 1000;

/// A class, the command that enumerates it, and how many items to serve.
struct Class {
    name: &'static str,
    command: &'static str,
    items: usize,
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo")
}

/// The demo recording's files for `class` of `kind` (`Enumerate`, `Pull`), in order.
fn recorded(class: &str, kind: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(&format!("-{kind}-{class}.{suffix}.xml"))
        })
        .collect();
    files.sort();
    files
}

/// Writes a conversation serving `items` of `class`: an Enumerate with the recording's first
/// page, then Pulls of about `PAGE` items built from the recording's items, repeated.
fn write_fixtures(dir: &Path, class: &str, items: usize) {
    let enumerate_request = std::fs::read_to_string(&recorded(class, "Enumerate", "request")[0])
        .expect("the demo recording has this class");
    let enumerate_response =
        std::fs::read_to_string(&recorded(class, "Enumerate", "response")[0]).unwrap();
    let pull_request = std::fs::read_to_string(&recorded(class, "Pull", "request")[0]).unwrap();
    let pull_response = std::fs::read_to_string(&recorded(class, "Pull", "response")[0]).unwrap();
    // Every recorded item of the class, as chunks of the recording's Items (item count each).
    let mut chunks = Vec::new();
    for file in recorded(class, "Enumerate", "response")
        .into_iter()
        .chain(recorded(class, "Pull", "response"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        let count = match parse_response(text.as_bytes()).unwrap().body {
            ResponseBody::Enumerate(page) | ResponseBody::Pull(page) => page.items.len(),
            other => panic!("{other:?}"),
        };
        let inner = between(&text, "Items", "Items>").unwrap();
        let inner = &inner[..inner.rfind("</").unwrap()];
        if count > 0 {
            chunks.push((inner.to_owned(), count));
        }
    }
    assert!(!chunks.is_empty(), "{class}: no items recorded");
    let context = |n: usize| format!("uuid:00000000-0000-0000-0000-{n:012}");
    let recorded_context = between(&enumerate_response, "EnumerationContext", "</")
        .expect("the recorded Enumerate hands out a context")
        .to_owned();
    let first = match parse_response(enumerate_response.as_bytes()).unwrap().body {
        ResponseBody::Enumerate(page) => page.items.len(),
        other => panic!("{other:?}"),
    };
    std::fs::write(dir.join("00000-Enumerate.request.xml"), enumerate_request).unwrap();
    std::fs::write(
        dir.join("00000-Enumerate.response.xml"),
        enumerate_response.replace(&recorded_context, &context(0)),
    )
    .unwrap();
    let pull_context = between(&pull_request, "EnumerationContext", "</")
        .unwrap()
        .to_owned();
    let page_context = between(&pull_response, "EnumerationContext", "</").map(str::to_owned);
    let (head, tail) = {
        let open = pull_response.find("Items>").unwrap() + "Items>".len();
        let close = pull_response.rfind("Items>").unwrap();
        let close = pull_response[..close].rfind("</").unwrap();
        (&pull_response[..open], &pull_response[close..])
    };
    let mut served = first;
    let mut n = 0;
    let mut chunk = 0;
    while served < items {
        let mut body = String::new();
        let mut count = 0;
        while count < PAGE && served + count < items {
            let (text, items) = &chunks[chunk % chunks.len()];
            body.push_str(text);
            count += items;
            chunk += 1;
        }
        served += count;
        let last = served >= items;
        let mut response = format!("{head}{body}{tail}");
        // The context the page hands out (none on the last), and EndOfSequence on the last.
        response = match (&page_context, last) {
            (Some(recorded), false) => response.replace(recorded, &context(n + 1)),
            (Some(recorded), true) => {
                let element = format!("<n:EnumerationContext>{recorded}</n:EnumerationContext>");
                assert!(
                    response.contains(&element),
                    "{class}: a context element as n:"
                );
                response.replace(&element, "")
            }
            (None, false) => response.replacen(
                "<n:Items>",
                &format!(
                    "<n:EnumerationContext>{}</n:EnumerationContext><n:Items>",
                    context(n + 1)
                ),
                1,
            ),
            (None, true) => response,
        };
        if last && !response.contains("EndOfSequence") {
            assert!(response.contains("</n:Items>"), "{class}: Items as n:");
            response = response.replacen("</n:Items>", "</n:Items><n:EndOfSequence/>", 1);
        }
        if !last {
            response = response.replace("<n:EndOfSequence/>", "");
        }
        std::fs::write(
            dir.join(format!("{:05}-Pull.response.xml", n + 1)),
            response,
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{:05}-Pull.request.xml", n + 1)),
            pull_request.replace(&pull_context, &context(n)),
        )
        .unwrap();
        n += 1;
    }
}

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The raw read: the recorded Enumerate, then a Pull with each page's context, each answer
/// read into one buffer (and with NTLM, unsealed in place by this crate's NTLM, as the binary
/// does); returns the CPU seconds of its thread and the pages.
fn raw_read(url: &str, dir: &Path, ntlm: bool) -> (f64, Vec<Bytes>) {
    let enumerate = std::fs::read_to_string(dir.join("00000-Enumerate.request.xml")).unwrap();
    let pull = std::fs::read_to_string(dir.join("00001-Pull.request.xml")).unwrap();
    let template_context = between(&pull, "EnumerationContext", "</")
        .unwrap()
        .to_owned();
    let url: hyper::Uri = url.parse().unwrap();
    let authority = url.authority().unwrap().clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let started = thread_cpu();
            let tcp = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(connection);
            let post = |authorization: Option<String>, content_type: &str, body: Vec<u8>| {
                let mut request = hyper::Request::post(url.path())
                    .header("Host", authority.as_str())
                    .header("Content-Type", content_type);
                if let Some(authorization) = authorization {
                    request = request.header("Authorization", authorization);
                }
                request.body(Full::new(Bytes::from(body))).unwrap()
            };
            let mut ntlm = ntlm.then(|| RawNtlm::new("demo", "demo"));
            if let Some(ntlm) = &mut ntlm {
                // NEGOTIATE, CHALLENGE, AUTHENTICATE on this connection, as Windows clients do.
                let negotiate = format!("Negotiate {}", B64.encode(ntlm.step(None)));
                let response = sender
                    .send_request(post(Some(negotiate), "application/soap+xml", Vec::new()))
                    .await
                    .unwrap();
                assert_eq!(response.status(), 401);
                let challenge = response.headers()["WWW-Authenticate"].to_str().unwrap();
                let challenge = B64
                    .decode(challenge.trim_start_matches("Negotiate "))
                    .unwrap();
                let _ = response.into_body().collect().await.unwrap();
                let authenticate = format!("Negotiate {}", B64.encode(ntlm.step(Some(&challenge))));
                let response = sender
                    .send_request(post(Some(authenticate), "application/soap+xml", Vec::new()))
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let _ = response.into_body().collect().await.unwrap();
            }
            let mut pages = Vec::new();
            let mut body = enumerate;
            loop {
                let request = match &mut ntlm {
                    Some(ntlm) => post(None, &ntlm.content_type(), ntlm.seal(body.as_bytes())),
                    None => post(
                        Some("Basic ZGVtbzpkZW1v".into()),
                        "application/soap+xml;charset=UTF-8",
                        body.into_bytes(),
                    ),
                };
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let content_type = response.headers()["Content-Type"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let page = response.into_body().collect().await.unwrap().to_bytes();
                let page = match &mut ntlm {
                    Some(ntlm) => {
                        let mut sealed = page.to_vec();
                        let plain = ntlm.open(&content_type, &mut sealed);
                        Bytes::from(sealed).slice(plain)
                    }
                    None => page,
                };
                let text = std::str::from_utf8(&page).unwrap();
                let next = match between(text, "EnumerationContext", "</") {
                    Some(context) if !text.contains("EndOfSequence") => {
                        Some(pull.replace(&template_context, context))
                    }
                    _ => None,
                };
                pages.push(page);
                match next {
                    Some(next) => body = next,
                    None => break,
                }
            }
            (thread_cpu() - started, pages)
        })
    })
    .join()
    .unwrap()
}

/// The least any typed client does beyond the raw read: a namespace-resolved quick-xml scan
/// of every page, each element's name resolved and each text unescaped. CPU seconds.
fn scan_floor(pages: &[Bytes]) -> f64 {
    let started = thread_cpu();
    let seen: usize = pages.iter().map(|page| raw_fleet::scan(page)).sum();
    std::hint::black_box(seen);
    thread_cpu() - started
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let items: usize = std::env::var("WINRM_SESSIONS_BENCH_CLASS_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let classes = [
        Class {
            name: "Win32_ServerSession",
            command: "server-sessions",
            items,
        },
        Class {
            name: "Win32_ServerConnection",
            command: "server-connections",
            items,
        },
        Class {
            name: "Win32_SessionConnection",
            command: "session-connections",
            items,
        },
        Class {
            name: "Win32_LogonSession",
            command: "logon-sessions",
            items,
        },
        Class {
            name: "Win32_SessionProcess",
            command: "session-processes",
            items,
        },
        Class {
            name: "Win32_Process",
            command: "processes",
            items: items / 4,
        },
        Class {
            name: "Win32_Session",
            command: "sessions",
            items,
        },
        Class {
            name: "MSFT_SmbSession",
            command: "smb-sessions",
            items,
        },
    ];
    // `WINRM_SESSIONS_BENCH_WORK=DIR` keeps the fixtures there (to profile a class by hand);
    // `WINRM_SESSIONS_BENCH_CLASSES=A,B` runs only those classes.
    let temporary = tempfile::tempdir().unwrap();
    let work = std::env::var_os("WINRM_SESSIONS_BENCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| temporary.path().to_owned());
    let only: Option<Vec<String>> = std::env::var("WINRM_SESSIONS_BENCH_CLASSES")
        .ok()
        .map(|v| v.split(',').map(|c| c.trim().to_owned()).collect());
    let out = work.join("out");
    println!(
        "classes: the binary (output to a file) against a raw read of the same pages \
         (hyper, one thread, each page into one buffer, unsealed with NTLM); CPU = user + system, median of 3"
    );
    println!(
        "| class | auth | items | MB | raw read s | read + XML scan s | json s | csv s | table s | json / raw read | json / read + scan |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for class in &classes {
        if only
            .as_ref()
            .is_some_and(|only| !only.iter().any(|c| c == class.name))
        {
            continue;
        }
        let dir = work.join(class.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_fixtures(&dir, class.name, class.items);
        let (mut server, url) = common::serve_fixtures(BINARY, &dir);
        for auth in ["basic", "ntlm"] {
            let mut pages = Vec::new();
            let raw = median(
                (0..3)
                    .map(|_| {
                        let (cpu, read) = raw_read(&url, &dir, auth == "ntlm");
                        pages = read;
                        cpu
                    })
                    .collect(),
            );
            let megabytes = pages.iter().map(Bytes::len).sum::<usize>() as f64 / 1e6;
            let floor = raw + median((0..3).map(|_| scan_floor(&pages)).collect());
            let mut ours = Vec::new();
            for format in ["json", "csv", "table"] {
                let cpu = median(
                (0..3)
                    .map(|_| {
                        let mut command = Command::new("sh");
                        command.args([
                            "-c",
                            &format!(
                                "exec {BINARY} {} {url} --auth {auth} --allow-plaintext --user demo --format {format} > {}",
                                class.command,
                                out.display()
                            ),
                        ]);
                        command.env("WINRM_PASSWORD", "demo");
                        common::timed(&mut command, true).cpu
                    })
                    .collect(),
            );
                ours.push(cpu);
            }
            let written = std::fs::read_to_string(&out).unwrap();
            assert!(
                written.lines().count() >= class.items,
                "{}: {} lines for {} items",
                class.name,
                written.lines().count(),
                class.items
            );
            println!(
                "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} |",
                class.name,
                auth,
                class.items,
                megabytes,
                raw,
                floor,
                ours[0],
                ours[1],
                ours[2],
                ours[0] / raw,
                ours[0] / floor
            );
        }
        let _ = server.kill();
        let _ = server.wait();
    }
}
