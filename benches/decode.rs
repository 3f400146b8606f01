//! Typed decode throughput of a large PullResponse against a raw quick-xml scan of the same
//! bytes: how much the namespace-aware parse into `Instance` and the serde step into
//! `SmbSession` cost over merely reading the XML.
//!
//! `cargo bench --bench decode`

mod common;

use std::hint::black_box;
use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::reader::NsReader;
use winrm_sessions::cim::FromInstance;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::wsman::{ResponseBody, parse_response};

#[global_allocator]
static ALLOC: common::MeteredAlloc = common::MeteredAlloc;

const ITEMS: u64 = 5_000;

fn main() {
    let body = common::pull_response(0, ITEMS, "uuid:1", Some("uuid:2")).into_bytes();
    let mb = body.len() as f64 / 1e6;
    let budget = Duration::from_secs(3);

    let raw = common::measure(budget, || {
        let mut reader = NsReader::from_reader(body.as_slice());
        let mut elements = 0usize;
        loop {
            match reader.read_resolved_event().expect("valid XML") {
                (_, Event::Start(_) | Event::Empty(_)) => elements += 1,
                (_, Event::Eof) => break,
                _ => {}
            }
        }
        black_box(elements);
    });
    let dynamic = common::measure(budget, || {
        let response = parse_response(&body).expect("parses");
        black_box(response);
    });
    let typed = common::measure(budget, || {
        let ResponseBody::Pull(page) = parse_response(&body).expect("parses").body else {
            panic!("not a page")
        };
        let sessions: Vec<SmbSession> = page
            .items
            .into_iter()
            .map(|i| SmbSession::from_instance(i).expect("decodes"))
            .collect();
        assert_eq!(sessions.len() as u64, ITEMS);
        black_box(sessions);
    });

    common::reset_peak();
    let before = common::peak();
    let ResponseBody::Pull(page) = parse_response(&body).unwrap().body else {
        unreachable!()
    };
    let parsed_peak = common::peak() - before;
    drop(page);

    println!("decode: one PullResponse of {ITEMS} MSFT_SmbSession items, {mb:.2} MB");
    for (name, d) in [
        ("raw quick-xml namespace-resolved scan", raw),
        ("parse into Instance (dynamic)", dynamic),
        ("parse + serde into SmbSession (typed)", typed),
    ] {
        println!(
            "  {name:<40} {:>8.2} ms  {:>7.1} MB/s  {:>9.0} items/s",
            d.as_secs_f64() * 1e3,
            mb / d.as_secs_f64(),
            ITEMS as f64 / d.as_secs_f64()
        );
    }
    println!(
        "  typed / raw time ratio: {:.2}x; heap to hold the parsed page: {:.1} MB ({:.2}x the body)",
        typed.as_secs_f64() / raw.as_secs_f64(),
        parsed_peak as f64 / 1e6,
        parsed_peak as f64 / body.len() as f64
    );
}
