//! `close-smb-session`: select sessions like Close-SmbSession's query parameters, show them,
//! confirm, close each one with MSFT_SmbSession.ForceClose, and report each outcome.

use std::io::{self, BufRead, IsTerminal, Write};

use futures_util::TryStreamExt;
use winrm_sessions::cim::{CimClass, FromInstance, Instance};
use winrm_sessions::classes::{SmbSession, TypedInstance, class_properties};

use crate::args::CloseArgs;
use crate::credentials::UsageError;
use crate::output::{Columns, Extra, Layout, Record, Writer};
use crate::settings::Settings;
use crate::{EXIT_FAILED, EXIT_OK, usage};

/// What a row of `close-smb-session` shows in a table.
const COLUMNS: &[&str] = &[
    "SessionId",
    "ClientComputerName",
    "ClientUserName",
    "NumOpens",
    "Action",
    "Error",
];

/// True when the session matches any of the selectors (the selectors are OR-ed per kind and
/// AND-ed across kinds, as Close-SmbSession's parameters are).
fn selected(session: &SmbSession, args: &CloseArgs) -> bool {
    // Windows compares user and computer names case-insensitively, beyond ASCII too; IPv6
    // clients appear with or without brackets.
    let fold = |s: &str| s.trim_matches(['[', ']']).to_lowercase();
    let equal = |value: &Option<String>, wanted: &[String]| {
        wanted.is_empty()
            || value
                .as_deref()
                .is_some_and(|v| wanted.iter().any(|w| fold(w) == fold(v)))
    };
    (args.session_id.is_empty() || args.session_id.contains(&session.session_id))
        && equal(&session.client_computer_name, &args.client_computer_name)
        && equal(&session.client_user_name, &args.client_user_name)
}

/// The writer for this command's rows: the session's properties, `Action` and `Error`.
fn writer(format: super::args::Format) -> Writer<io::BufWriter<io::StdoutLock<'static>>> {
    let stdout = io::stdout();
    let mut layout = Layout::new(
        Columns::Fixed(COLUMNS.iter().map(|c| c.to_string()).collect()),
        class_properties(SmbSession::CLASS_NAME)
            .iter()
            .map(|p| p.to_string())
            .collect(),
    )
    .extras(&["Action", "Error"]);
    layout.width = stdout
        .is_terminal()
        .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
        .flatten();
    Writer::new(format, io::BufWriter::new(stdout.lock()), layout)
}

/// One row: the session as enumerated, what was done, and why it failed.
fn write_row<W: Write>(
    writer: &mut Writer<W>,
    target: &str,
    instance: &Instance,
    action: &str,
    error: Option<&str>,
) -> io::Result<()> {
    let typed = TypedInstance::new(instance).map_err(|e| io::Error::other(e.to_string()))?;
    writer.write(&Record {
        target,
        class: instance.class_name(),
        body: &typed,
        extras: &[("Action", Extra::Str(action)), ("Error", Extra::Opt(error))],
    })
}

pub async fn run(args: CloseArgs) -> u8 {
    if args.session_id.is_empty()
        && args.client_computer_name.is_empty()
        && args.client_user_name.is_empty()
    {
        return usage(
            "name the sessions to close: --session-id, --client-computer-name or --client-user-name",
        );
    }
    let settings = match Settings::resolve(&args.connection) {
        Ok(settings) => settings,
        Err(UsageError(message)) => return usage(&message),
    };
    let target = args.target.clone();
    let client = match settings.client(&target) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("winrm-sessions: {target}: {}", e.without_target().report());
            return EXIT_FAILED;
        }
    };
    let instances: Vec<Instance> = match client
        .enumerate_class(&SmbSession::class_path())
        .try_collect()
        .await
    {
        Ok(instances) => instances,
        Err(e) => {
            eprintln!("winrm-sessions: {target}: {}", e.without_target().report());
            return EXIT_FAILED;
        }
    };
    let mut chosen: Vec<(SmbSession, Instance)> = Vec::new();
    for instance in instances {
        match SmbSession::from_instance(instance.clone()) {
            Ok(session) if selected(&session, &args) => chosen.push((session, instance)),
            Ok(_) => {}
            Err(e) => {
                eprintln!("winrm-sessions: {target}: cannot decode: {e}");
                return EXIT_FAILED;
            }
        }
    }
    if chosen.is_empty() {
        eprintln!("winrm-sessions: {target}: no SMB session matches; nothing to close");
        return EXIT_OK;
    }
    if args.dry_run {
        let mut output = writer(args.output.format);
        for (_, instance) in &chosen {
            let _ = write_row(&mut output, &target, instance, "WouldClose", None);
        }
        let _ = output.finish();
        eprintln!(
            "dry run: {} session(s) would be closed on {target}; nothing was changed",
            chosen.len()
        );
        return EXIT_OK;
    }
    if !args.force {
        if !io::stdin().is_terminal() {
            return usage(
                "not a terminal to confirm on: pass --force to close without confirmation, or --dry-run to look first",
            );
        }
        eprintln!(
            "About to close {} SMB session(s) on {target}:",
            chosen.len()
        );
        for (s, _) in &chosen {
            eprintln!(
                "  {}  {}  from {}  ({} open)",
                s.session_id,
                s.client_user_name.as_deref().unwrap_or("?"),
                s.client_computer_name.as_deref().unwrap_or("?"),
                s.num_opens.unwrap_or(0)
            );
        }
        eprint!("Open files are closed and unsaved data may be lost. Close them? [y/N] ");
        let _ = io::stderr().flush();
        let mut answer = String::new();
        if io::stdin().lock().read_line(&mut answer).is_err()
            || !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
        {
            eprintln!("nothing was closed");
            return EXIT_OK;
        }
    }
    let mut output = writer(args.output.format);
    let mut failed = 0;
    for (session, instance) in &chosen {
        let _ = match client.force_close_smb_session(session.session_id).await {
            Ok(()) => write_row(&mut output, &target, instance, "Closed", None),
            Err(e) => {
                failed += 1;
                let reason = e.without_target().report().to_string();
                eprintln!(
                    "winrm-sessions: {target}: session {}: {reason}",
                    session.session_id
                );
                write_row(&mut output, &target, instance, "Failed", Some(&reason))
            }
        };
        let _ = output.end_page();
    }
    let _ = output.finish();
    if failed > 0 { EXIT_FAILED } else { EXIT_OK }
}
