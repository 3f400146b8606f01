//! `close-smb-session`: select sessions like Close-SmbSession's query parameters, show them,
//! confirm, close each one with MSFT_SmbSession.ForceClose, and report each outcome.

use std::io::{self, BufRead, IsTerminal, Write};

use futures_util::TryStreamExt;
use serde_json::Value;
use winrm_sessions::classes::SmbSession;

use super::args::CloseArgs;
use super::credentials::UsageError;
use super::output::{Output, Record, TableColumns};
use super::{EXIT_FAILED, EXIT_OK, Settings, usage};

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

fn record(target: &str, session: &SmbSession, action: &str, error: Option<String>) -> Record {
    let mut fields = serde_json::Map::new();
    fields.insert("SessionId".into(), Value::from(session.session_id));
    fields.insert(
        "ClientComputerName".into(),
        session.client_computer_name.clone().into(),
    );
    fields.insert(
        "ClientUserName".into(),
        session.client_user_name.clone().into(),
    );
    fields.insert("NumOpens".into(), session.num_opens.into());
    fields.insert("Action".into(), Value::String(action.into()));
    fields.insert("Error".into(), error.into());
    Record::new(target, "MSFT_SmbSession", fields)
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
            eprintln!("winrm-sessions: {target}: {}", e.without_target());
            return EXIT_FAILED;
        }
    };
    let sessions: Vec<SmbSession> = match client.enumerate().try_collect().await {
        Ok(sessions) => sessions,
        Err(e) => {
            eprintln!("winrm-sessions: {target}: {}", e.without_target());
            return EXIT_FAILED;
        }
    };
    let chosen: Vec<SmbSession> = sessions
        .into_iter()
        .filter(|s| selected(s, &args))
        .collect();
    if chosen.is_empty() {
        eprintln!("winrm-sessions: {target}: no SMB session matches; nothing to close");
        return EXIT_OK;
    }
    let stdout = io::stdout();
    let width = stdout
        .is_terminal()
        .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
        .flatten();
    let columns = TableColumns::Custom(&[
        "SessionId",
        "ClientComputerName",
        "ClientUserName",
        "NumOpens",
        "Action",
        "Error",
    ]);
    if args.dry_run {
        let mut output = Output::new(args.output.format, stdout.lock(), columns, width, false);
        for session in &chosen {
            let _ = output.write(record(&target, session, "WouldClose", None));
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
        for s in &chosen {
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
    let mut output = Output::new(args.output.format, stdout.lock(), columns, width, false);
    let mut failed = 0;
    for session in &chosen {
        let rec = match client.force_close_smb_session(session.session_id).await {
            Ok(()) => record(&target, session, "Closed", None),
            Err(e) => {
                failed += 1;
                let reason = e.without_target().to_string();
                eprintln!(
                    "winrm-sessions: {target}: session {}: {reason}",
                    session.session_id
                );
                record(&target, session, "Failed", Some(reason))
            }
        };
        let _ = output.write(rec);
    }
    let _ = output.finish();
    if failed > 0 { EXIT_FAILED } else { EXIT_OK }
}
