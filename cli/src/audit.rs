//! The audit loop: every target through the library's fleet runner, records written as pages
//! arrive, one stderr line per failed host or bad item, a summary for several targets.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;

use winrm_sessions::classes::TypedInstance;
use winrm_sessions::fleet::HostEvent;

use crate::args::Format;
use crate::output::{Extra, Nested, Record, Writer, next_or_flush};
use crate::progress::Progress;
use crate::settings::Settings;
use crate::source::{Batch, Source};
use crate::{EXIT_FAILED, EXIT_OK};

/// Queries every target (at most `concurrency` at once, through the library's fleet runner),
/// writes records as each page arrives, one stderr line per failed host or bad item, and a
/// summary for several targets.
pub async fn audit(
    targets: Vec<String>,
    settings: Arc<Settings>,
    source: Source,
    format: Format,
) -> u8 {
    let stdout = io::stdout();
    let mut layout = source.layout();
    layout.several_targets = targets.len() > 1;
    layout.width = crate::output::terminal_width(&stdout);
    let several = targets.len() > 1;
    let mut writer = Writer::new(
        format,
        io::BufWriter::with_capacity(64 << 10, stdout),
        layout,
    );
    let mut progress = Progress::new(targets.len(), several && io::stderr().is_terminal());
    let fleet = match settings.fleet_or_exit(&targets, false) {
        // Items are whole pages: one waiting per host at most.
        Ok(fleet) => fleet.buffer(1),
        Err(status) => return status,
    };
    let started = std::time::Instant::now();
    let batches = source.clone();
    let mut events = fleet.run(targets, move |client| batches.batches(client));
    let mut output = OutputState::default();
    // Records written per host in flight, for its "Host done" line (`-v`).
    let mut records_of: std::collections::HashMap<String, usize> = Default::default();
    loop {
        let flushed = next_or_flush(&mut events, || {
            progress.suspend(|| output.check(writer.flush()));
            Ok(())
        });
        let Ok(Some(event)) = flushed.await else {
            break;
        };
        match event {
            HostEvent::Item { target, item } => {
                let written =
                    progress.suspend(|| write_batch(&mut writer, &target, item, &mut output));
                progress.items += written;
                *records_of.entry(target).or_default() += written;
            }
            HostEvent::Done {
                target,
                items,
                elapsed,
            } => {
                let records = records_of.remove(&target).unwrap_or(0);
                tracing::info!(
                    target: "winrm_sessions",
                    host = %target,
                    records,
                    pages = items,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "Host done"
                );
                progress.ok += 1;
                progress.suspend(|| output.check(writer.end_page()));
            }
            HostEvent::Failed { target, error, .. } => {
                records_of.remove(&target);
                progress.failed += 1;
                progress.suspend(|| {
                    output.check(writer.end_page());
                    eprintln!(
                        "winrm-sessions: {target}: {}",
                        error.without_target().report()
                    );
                });
            }
            HostEvent::ItemError { target, error } => {
                output.bad_items += 1;
                progress.suspend(|| {
                    eprintln!(
                        "winrm-sessions: {target}: {}",
                        error.without_target().report()
                    )
                });
            }
            _ => {}
        }
        if output.fatal.is_some() {
            break;
        }
        progress.update();
    }
    progress.finish();
    if output.fatal.is_none() {
        output.check(writer.finish().map(|_| ()));
    }
    if let Some(e) = output.fatal {
        eprintln!("winrm-sessions: cannot write output: {e}");
        return EXIT_FAILED;
    }
    if several {
        eprintln!(
            "{} host(s) answered, {} failed; {} record(s) in {:.1} s",
            progress.ok,
            progress.failed,
            progress.items,
            started.elapsed().as_secs_f64()
        );
    }
    let _ = io::stderr().flush();
    if progress.failed > 0 || output.bad_items > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// How writing went: a closed pipe stops the output quietly (as `head` expects), any other
/// write error ends the run.
#[derive(Default)]
struct OutputState {
    closed: bool,
    fatal: Option<io::Error>,
    bad_items: usize,
}

impl OutputState {
    fn check(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => self.fatal = Some(e),
        }
    }
}

/// Writes one page of a host; returns how many records it held. An instance that does not fit
/// its class is reported on stderr (and the run ends with status 1); the others are written.
fn write_batch<W: Write>(
    writer: &mut Writer<W>,
    target: &str,
    batch: Batch,
    output: &mut OutputState,
) -> usize {
    let mut bad = |e: winrm_sessions::cim::DecodeError| {
        output.bad_items += 1;
        eprintln!("winrm-sessions: {target}: cannot decode: {e}");
    };
    let mut written = 0;
    let mut results = Vec::new();
    match batch {
        Batch::Page(page) => {
            for instance in page.instances() {
                match TypedInstance::new(instance) {
                    Ok(typed) => {
                        written += 1;
                        results.push(writer.write(&Record {
                            target,
                            class: instance.class_name(),
                            body: &typed,
                            extras: &[],
                        }));
                    }
                    Err(e) => bad(e),
                }
            }
        }
        Batch::Joined(page) => {
            for joined in &page {
                let typed = match TypedInstance::new(&joined.left) {
                    Ok(typed) => typed,
                    Err(e) => {
                        bad(e);
                        continue;
                    }
                };
                let mut nested = Vec::with_capacity(joined.right.len());
                for right in &joined.right {
                    match TypedInstance::new(right) {
                        Ok(t) => nested.push(Nested(t)),
                        Err(e) => bad(e),
                    }
                }
                let key = if joined
                    .left
                    .class_name()
                    .eq_ignore_ascii_case("Win32_LogonSession")
                {
                    "Processes"
                } else {
                    "Connections"
                };
                written += 1;
                results.push(writer.write(&Record {
                    target,
                    class: joined.left.class_name(),
                    body: &typed,
                    extras: &[(key, Extra::Nested(&nested))],
                }));
            }
        }
    }
    if !output.closed {
        for result in results {
            output.check(result);
        }
        output.check(writer.end_page());
    }
    written
}
