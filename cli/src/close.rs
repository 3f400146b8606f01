//! `close-smb-session`: select sessions like Close-SmbSession's query parameters on every
//! target, show them all, confirm once, close each one with MSFT_SmbSession.ForceClose, and
//! report each outcome.

use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{CimClass, FromInstance, Instance};
use winrm_sessions::classes::{SmbSession, TypedInstance, class_properties};
use winrm_sessions::fleet::HostEvent;

use crate::args::CloseArgs;
use crate::output::{Columns, Extra, Layout, Record, Writer};
use crate::settings::prepare;
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

/// Which sessions to close, as Close-SmbSession's query parameters choose them.
struct Selectors {
    session_id: Vec<u64>,
    client_computer_name: Vec<String>,
    client_user_name: Vec<String>,
}

impl CloseArgs {
    fn selectors(&self) -> Selectors {
        Selectors {
            session_id: self.session_id.clone(),
            client_computer_name: self.client_computer_name.clone(),
            client_user_name: self.client_user_name.clone(),
        }
    }
}

impl Selectors {
    /// True when the session matches any value of each selector given (values are OR-ed per
    /// selector, selectors AND-ed, as Close-SmbSession's parameters are).
    fn matches(&self, session: &SmbSession) -> bool {
        // Windows compares user and computer names case-insensitively, beyond ASCII too; IPv6
        // clients appear with or without brackets.
        let fold = |s: &str| s.trim_matches(['[', ']']).to_lowercase();
        let equal = |value: &Option<String>, wanted: &[String]| {
            wanted.is_empty()
                || value
                    .as_deref()
                    .is_some_and(|v| wanted.iter().any(|w| fold(w) == fold(v)))
        };
        (self.session_id.is_empty() || self.session_id.contains(&session.session_id))
            && equal(&session.client_computer_name, &self.client_computer_name)
            && (self.client_user_name.is_empty()
                || session.client_user_name.as_deref().is_some_and(|user| {
                    // `alice`, `CORP\alice` and `alice@corp.example` alike (winrm_sessions::names).
                    self.client_user_name
                        .iter()
                        .any(|wanted| winrm_sessions::names::user_matches(wanted, user))
                }))
    }
}

/// The writer for this command's rows: the session's properties, `Action` and `Error`.
fn writer(format: crate::args::Format, several_targets: bool) -> Writer<io::BufWriter<io::Stdout>> {
    let stdout = io::stdout();
    let mut layout = Layout::new(
        Columns::Fixed(COLUMNS.iter().map(|c| c.to_string()).collect()),
        class_properties(SmbSession::CLASS_NAME)
            .iter()
            .map(|p| p.to_string())
            .collect(),
    )
    .extras(&["Action", "Error"]);
    layout.several_targets = several_targets;
    layout.width = crate::output::terminal_width(&stdout);
    Writer::new(format, io::BufWriter::new(stdout), layout)
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

/// The sessions of one target that the selectors chose, as enumerated.
type Chosen = Vec<(SmbSession, Instance)>;

pub async fn run(args: CloseArgs) -> u8 {
    if args.session_id.is_empty()
        && args.client_computer_name.is_empty()
        && args.client_user_name.is_empty()
    {
        return usage(
            "name the sessions to close: --session-id, --client-computer-name or --client-user-name",
        );
    }
    let (targets, settings) = match prepare(&args.targets, &args.connection) {
        Ok(prepared) => prepared,
        Err(status) => return status,
    };
    let fleet = match settings.fleet_or_exit(&targets, false) {
        Ok(fleet) => fleet,
        Err(status) => return status,
    };
    let several = targets.len() > 1;

    // 1. What each target has that matches, in the order the targets were given.
    let selectors = Arc::new(args.selectors());
    let mut found: HashMap<String, Chosen> = HashMap::new();
    let mut failed_hosts = 0usize;
    let mut events = fleet.map(targets.clone(), move |client| {
        let selectors = selectors.clone();
        async move {
            let instances: Vec<Instance> = client
                .enumerate_class(&SmbSession::class_path())
                .try_collect()
                .await?;
            let mut chosen = Chosen::new();
            for instance in instances {
                let session = SmbSession::from_instance(instance.clone())
                    .map_err(|e| winrm_sessions::Error::from(e).with_target(client.target()))?;
                if selectors.matches(&session) {
                    chosen.push((session, instance));
                }
            }
            Ok(chosen)
        }
    });
    while let Some(event) = events.next().await {
        match event {
            HostEvent::Item { target, item } => {
                found.insert(target, item);
            }
            HostEvent::Failed { target, error, .. } => {
                failed_hosts += 1;
                eprintln!(
                    "winrm-sessions: {target}: {}",
                    error.without_target().report()
                );
            }
            _ => {}
        }
    }
    let chosen: Vec<(String, Chosen)> = targets
        .iter()
        .filter_map(|t| found.remove(t).map(|c| (t.clone(), c)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let count: usize = chosen.iter().map(|(_, c)| c.len()).sum();
    let unreachable = if failed_hosts > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    if count == 0 {
        eprintln!(
            "winrm-sessions: no SMB session matches{}; nothing to close",
            if failed_hosts > 0 {
                " on the targets that answered"
            } else {
                ""
            }
        );
        return unreachable;
    }

    // 2. A dry run lists them; otherwise they are confirmed once, all targets together.
    if args.dry_run {
        let mut output = writer(args.output.format, several);
        for (target, sessions) in &chosen {
            for (_, instance) in sessions {
                let _ = write_row(&mut output, target, instance, "WouldClose", None);
            }
            let _ = output.end_page();
        }
        let _ = output.finish();
        eprintln!(
            "dry run: {count} session(s) on {} target(s) would be closed; nothing was changed",
            chosen.len()
        );
        return unreachable;
    }
    if !args.force {
        if !io::stdin().is_terminal() {
            return usage(
                "not a terminal to confirm on: pass --force to close without confirmation, or --dry-run to look first",
            );
        }
        if !confirm(&chosen, count) {
            eprintln!("nothing was closed");
            return unreachable;
        }
    }

    // 3. Each target closes its sessions; every outcome is a row.
    let ids: Arc<HashMap<String, Vec<u64>>> = Arc::new(
        chosen
            .iter()
            .map(|(t, c)| (t.clone(), c.iter().map(|(s, _)| s.session_id).collect()))
            .collect(),
    );
    let order: Vec<String> = chosen.iter().map(|(t, _)| t.clone()).collect();
    let mut instances: HashMap<String, Chosen> = chosen.into_iter().collect();
    let mut output = writer(args.output.format, several);
    let mut failed = failed_hosts;
    let mut events = fleet.map(order, move |client| {
        let ids = ids.clone();
        async move {
            let mut outcomes = Vec::new();
            for &id in ids.get(client.target()).into_iter().flatten() {
                let outcome = client.force_close_smb_session(id).await;
                outcomes.push((
                    id,
                    outcome.map_err(|e| e.without_target().report().to_string()),
                ));
            }
            Ok(outcomes)
        }
    });
    while let Some(event) = events.next().await {
        match event {
            HostEvent::Item { target, item } => {
                let sessions = instances.remove(&target).unwrap_or_default();
                for (id, outcome) in item {
                    let Some((_, instance)) = sessions.iter().find(|(s, _)| s.session_id == id)
                    else {
                        continue;
                    };
                    let _ = match &outcome {
                        Ok(()) => write_row(&mut output, &target, instance, "Closed", None),
                        Err(reason) => {
                            failed += 1;
                            eprintln!("winrm-sessions: {target}: session {id}: {reason}");
                            write_row(&mut output, &target, instance, "Failed", Some(reason))
                        }
                    };
                }
                let _ = output.end_page().and_then(|()| output.flush());
            }
            HostEvent::Failed { target, error, .. } => {
                failed += 1;
                eprintln!(
                    "winrm-sessions: {target}: {}",
                    error.without_target().report()
                );
            }
            _ => {}
        }
    }
    let _ = output.finish();
    if failed > 0 { EXIT_FAILED } else { EXIT_OK }
}

/// Shows every chosen session, grouped by target, and asks once on the terminal.
fn confirm(chosen: &[(String, Chosen)], count: usize) -> bool {
    eprintln!(
        "About to close {count} SMB session(s) on {} target(s):",
        chosen.len()
    );
    for (target, sessions) in chosen {
        eprintln!("  {target}:");
        for (s, _) in sessions {
            eprintln!(
                "    {}  {}  from {}  ({} open)",
                s.session_id,
                s.client_user_name.as_deref().unwrap_or("?"),
                s.client_computer_name.as_deref().unwrap_or("?"),
                s.num_opens.unwrap_or(0)
            );
        }
    }
    eprint!("Open files are closed and unsaved data may be lost. Close them? [y/N] ");
    let _ = io::stderr().flush();
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}
