//! `watch`: every target polled each interval through the fleet; sessions printed as they are
//! found, open and close, polls that fail as `unreachable`; optionally kept in a store and
//! served as Prometheus metrics. `history`: what a store kept.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::SystemTime;

use winrm_sessions::cim::{ClassPath, Instance};
use winrm_sessions::classes::{TypedInstance, class_properties};
use winrm_sessions::watch::metrics::Metrics;
use winrm_sessions::watch::store::{HistoryFilter, Store};
use winrm_sessions::watch::{Change, Poll, SessionEvent, Watch, WatchEvent};

use crate::args::{HistoryArgs, WatchArgs};
use crate::output::{
    Columns, Extra, Layout, Record, Writer, default_columns, next_or_flush, terminal_width,
};
use crate::settings::prepare;
use crate::store_writer::StoreWriter;
use crate::{EXIT_FAILED, EXIT_OK};

/// RFC 3339 in UTC, to the millisecond: `2026-11-29T14:03:07.123Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_default()
}

/// The RFC 3339 text of the last time written, kept: a host's events of one poll share theirs,
/// a million of them on a large fleet's first poll.
#[derive(Default)]
struct Times {
    at: Option<SystemTime>,
    text: String,
}

impl Times {
    fn rfc3339(&mut self, at: SystemTime) -> &str {
        if self.at != Some(at) {
            self.at = Some(at);
            self.text = rfc3339(at);
        }
        &self.text
    }
}

/// Columns of a table of `class` with `before` and `after` around its default view.
fn layout(class: &str, before: &[&'static str], after: &[&'static str]) -> Layout {
    let schema: Vec<String> = class_properties(class)
        .iter()
        .map(|p| p.to_string())
        .collect();
    let view: Vec<String> = match default_columns(class) {
        Some(view) => view.iter().map(|c| c.to_string()).collect(),
        // Win32_Session: rows of several classes.
        None => [
            "CimClass",
            "ComputerName",
            "UserName",
            "LogonId",
            "StartTime",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect(),
    };
    let columns = before
        .iter()
        .map(|c| c.to_string())
        .chain(view)
        .chain(after.iter().map(|c| c.to_string()))
        .collect();
    let extras: Vec<&'static str> = before.iter().chain(after).copied().collect();
    Layout::new(Columns::Fixed(columns), schema).extras(&extras)
}

fn writer(
    layout: Layout,
    format: crate::args::Format,
    several: bool,
) -> Writer<io::BufWriter<io::Stdout>> {
    let stdout = io::stdout();
    let mut layout = layout;
    layout.several_targets = several;
    layout.width = terminal_width(&stdout);
    // Events come a few at a time: a table is sized from what the first poll brings.
    layout.sample_rows = 1;
    Writer::new(format, io::BufWriter::new(stdout), layout)
}

pub async fn run(args: WatchArgs) -> u8 {
    let (targets, settings) = match prepare(&args.targets, &args.connection) {
        Ok(prepared) => prepared,
        Err(status) => return status,
    };
    let fleet = match settings.fleet_or_exit(&targets, true) {
        Ok(fleet) => fleet,
        Err(status) => return status,
    };
    let (namespace, class_name) = args.class.class();
    let class = ClassPath::new(namespace, class_name);
    let mut watch = Watch::class(fleet, class)
        .every(args.interval)
        .report_unchanged(args.store.is_some());
    if let Some(polls) = args.count {
        watch = watch.polls(polls);
    }

    // The store first: a watch restarted on it resumes where the last one stopped.
    let store = match &args.store {
        None => None,
        Some(path) => match Store::open(path) {
            Ok(store) => Some(store),
            Err(e) => {
                eprintln!("winrm-sessions: {}", e.report());
                return EXIT_FAILED;
            }
        },
    };
    if let Some(store) = &store {
        for target in &targets {
            match store.resume(class_name, target) {
                Ok(Some(open)) => match watch.resume(target, open) {
                    Ok(resumed) => watch = resumed,
                    Err(e) => {
                        eprintln!("winrm-sessions: {}", e.report());
                        return EXIT_FAILED;
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    eprintln!("winrm-sessions: {}", e.report());
                    return EXIT_FAILED;
                }
            }
        }
    }
    let metrics = Metrics::new();
    let _server = match &args.metrics_listen {
        None => None,
        Some(address) => match metrics.serve(address).await {
            Ok(server) => {
                eprintln!(
                    "winrm-sessions: metrics on http://{}/metrics",
                    server.address()
                );
                Some(server)
            }
            Err(e) => {
                eprintln!("winrm-sessions: {}", e.report());
                return EXIT_FAILED;
            }
        },
    };

    let several = targets.len() > 1;
    let mut output = writer(
        layout(class_name, &["Time", "Event"], &["Error"]),
        args.output.format,
        several,
    );
    let mut store = match store.map(|store| StoreWriter::start(store, class_name)) {
        None => None,
        Some(Ok(writer)) => Some(writer),
        Some(Err(e)) => {
            eprintln!("winrm-sessions: cannot start the store's writer: {e}");
            return EXIT_FAILED;
        }
    };
    let mut events = watch.start(targets);
    let mut times = Times::default();
    // A host's session events, held until its poll ends: they go into the store together.
    let mut pending: HashMap<String, Vec<SessionEvent<Instance>>> = HashMap::new();
    let mut last_failed: HashMap<String, bool> = HashMap::new();
    let mut status = EXIT_OK;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let event = tokio::select! {
            biased;
            _ = &mut interrupted => {
                eprintln!("winrm-sessions: interrupted; stopping");
                break;
            }
            event = next_or_flush(&mut events, || output.flush()) => match event {
                Ok(event) => event,
                Err(e) => {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        eprintln!("winrm-sessions: cannot write output: {e}");
                        status = EXIT_FAILED;
                    }
                    break;
                }
            },
        };
        let Some(event) = event else { break };
        let written = match event {
            WatchEvent::Session(event) => {
                let written = match event.change {
                    Change::Unchanged => Ok(()),
                    change => write_session(&mut output, &event, change, &mut times),
                };
                if store.is_some() {
                    pending.entry(event.target.clone()).or_default().push(event);
                }
                written
            }
            WatchEvent::Polled(poll) => {
                metrics.observe(class_name, &poll);
                last_failed.insert(poll.target.clone(), poll.outcome.is_err());
                let written = match &poll.outcome {
                    Ok(_) => Ok(()),
                    Err(_) => write_unreachable(&mut output, &poll, class_name),
                };
                if let Some(store) = &mut store {
                    let sessions = pending.remove(&poll.target).unwrap_or_default();
                    if let Err(report) = store.record(poll, sessions).await {
                        eprintln!("winrm-sessions: {report}");
                        status = EXIT_FAILED;
                        break;
                    }
                }
                written.and_then(|()| output.end_page())
            }
            _ => Ok(()),
        };
        if let Err(e) = written {
            if e.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("winrm-sessions: cannot write output: {e}");
                status = EXIT_FAILED;
            }
            break;
        }
    }
    drop(events);
    let _ = output.finish();
    if let Some(mut store) = store
        && let Err(report) = store.finish().await
    {
        eprintln!("winrm-sessions: {report}");
        status = EXIT_FAILED;
    }
    let _ = io::stderr().flush();
    settings.wait_for_releases().await;
    let mut failing: Vec<&String> = last_failed
        .iter()
        .filter_map(|(target, &failed)| failed.then_some(target))
        .collect();
    if !failing.is_empty() {
        failing.sort();
        const SHOWN: usize = 10;
        let more = failing.len().saturating_sub(SHOWN);
        let names: Vec<&str> = failing.iter().take(SHOWN).map(|t| t.as_str()).collect();
        eprintln!(
            "winrm-sessions: the last poll of {} host(s) failed: {}{} (see the \"unreachable\" \
             records for why)",
            failing.len(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        if status == EXIT_OK {
            status = EXIT_FAILED;
        }
    }
    status
}

fn write_session<W: Write>(
    output: &mut Writer<W>,
    event: &SessionEvent<Instance>,
    change: Change,
    times: &mut Times,
) -> io::Result<()> {
    let typed = TypedInstance::new(&event.session).map_err(|e| io::Error::other(e.to_string()))?;
    let name = match change {
        Change::Present => "present",
        Change::Opened => "opened",
        Change::Closed => "closed",
        _ => "unchanged",
    };
    output.write(&Record {
        target: &event.target,
        class: event.session.class_name(),
        body: &typed,
        extras: &[
            ("Time", Extra::Str(times.rfc3339(event.at))),
            ("Event", Extra::Str(name)),
        ],
    })
}

fn write_unreachable<W: Write>(output: &mut Writer<W>, poll: &Poll, class: &str) -> io::Result<()> {
    let time = rfc3339(poll.at);
    let reason = poll
        .outcome
        .as_ref()
        .err()
        .map(|e| e.report().without_target().to_string());
    output.write(&Record {
        target: &poll.target,
        class,
        body: &serde_json::Map::new(),
        extras: &[
            ("Time", Extra::Str(&time)),
            ("Event", Extra::Str("unreachable")),
            ("Error", Extra::Opt(reason.as_deref())),
        ],
    })
}

/// `history`: one record per session the store kept.
pub fn history(args: HistoryArgs) -> u8 {
    let store = match Store::open_read_only(&args.store) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("winrm-sessions: {}", e.report());
            return EXIT_FAILED;
        }
    };
    let mut filter = HistoryFilter::new();
    let mut asked = Vec::new();
    for (flag, value) in [
        ("--user", &args.user),
        ("--client", &args.client),
        ("--target", &args.target),
    ] {
        if let Some(value) = value {
            asked.push(format!("{flag} {value}"));
        }
    }
    if let Some(user) = args.user {
        filter = filter.user(user);
    }
    if let Some(client) = args.client {
        filter = filter.client(client);
    }
    if let Some(target) = args.target {
        filter = filter.target(target);
    }
    if let Some(since) = args.since {
        filter = filter.since(since);
    }
    let entries = match store.history(&filter) {
        Ok(entries) => entries,
        Err(e) => {
            eprintln!("winrm-sessions: {}", e.report());
            return EXIT_FAILED;
        }
    };
    if entries.is_empty() && !asked.is_empty() {
        eprintln!(
            "winrm-sessions: no session in {} matches {}",
            args.store.display(),
            asked.join(" ")
        );
    }
    let class = entries
        .first()
        .map_or("MSFT_SmbSession".to_owned(), |e| e.class.clone());
    let several = entries.iter().any(|e| e.target != entries[0].target);
    let mut output = writer(
        layout(&class, &[], &["FirstSeen", "LastSeen", "Open"]),
        args.output.format,
        several,
    );
    for entry in &entries {
        let Ok(typed) = TypedInstance::new(&entry.session) else {
            continue;
        };
        let (first, last) = (rfc3339(entry.first_seen), rfc3339(entry.last_seen));
        let written = output.write(&Record {
            target: &entry.target,
            class: entry.session.class_name(),
            body: &typed,
            extras: &[
                ("FirstSeen", Extra::Str(&first)),
                ("LastSeen", Extra::Str(&last)),
                ("Open", Extra::Bool(entry.open)),
            ],
        });
        if written.is_err() {
            break;
        }
    }
    let _ = output.finish();
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn a_kept_time_text_is_the_text_of_the_time_asked() {
        let mut times = Times::default();
        let first = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let second = first + Duration::from_millis(1);
        assert_eq!(times.rfc3339(first), "2023-11-14T22:13:20.123Z");
        assert_eq!(times.rfc3339(first), "2023-11-14T22:13:20.123Z");
        assert_eq!(times.rfc3339(second), "2023-11-14T22:13:20.124Z");
        assert_eq!(times.rfc3339(first), rfc3339(first));
    }
}
