//! `winrm-sessions`: ask Windows servers over WinRM who is connected to them.
//!
//! A thin binary over the `winrm-sessions` library: arguments ([`args`]), credentials and
//! connection settings ([`settings`]), the audit loop over targets ([`audit`]), output
//! ([`output`]), and the `demo`, `close-smb-session` and `completions` commands. Exit codes: 0
//! every target answered, 1 any target failed, 2 usage.

mod alloc;
mod args;
mod audit;
mod close;
mod credentials;
mod demo;
mod docs;
mod limits;
mod output;
mod progress;
mod settings;
mod source;
mod store_writer;
mod watch;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use winrm_sessions::JoinSpec;
use winrm_sessions::cim::ClassPath;

use args::{ClassArgs, Cli, Command};
use audit::audit;
use source::Source;

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("winrm-sessions: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    // The command runs on a worker of the pool, beside the hosts' tasks that feed it: their
    // events wake it there, not across to this thread (a futex wake per event, most of a
    // large fleet's scheduling cost).
    let status = runtime.block_on(async {
        match tokio::spawn(run(cli)).await {
            Ok(status) => status,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => EXIT_FAILED,
        }
    });
    ExitCode::from(status)
}

/// Logs on stderr: `-v` info (hosts done and failed, retries and why), `-vv` debug (every
/// request: operation, page, items, bytes, time; connections reused, authentications),
/// `-vvv` trace (request and response bodies, decrypted; other crates at debug).
/// `WINRM_SESSIONS_LOG` takes filter directives instead (`winrm_sessions=debug,hyper=trace`).
/// Colour only when stderr is a terminal.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "warn,winrm_sessions=info",
        2 => "warn,winrm_sessions=debug",
        _ => "debug,winrm_sessions=trace",
    };
    let filter = match std::env::var("WINRM_SESSIONS_LOG") {
        Ok(directives) if !directives.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(
            &directives,
        )
        .unwrap_or_else(|e| {
            eprintln!(
                "winrm-sessions: WINRM_SESSIONS_LOG is not a valid filter ({e}); using -v levels"
            );
            tracing_subscriber::EnvFilter::new(default)
        }),
        _ => tracing_subscriber::EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(verbose >= 3)
        .try_init();
}

async fn run(cli: Cli) -> u8 {
    let class = |namespace: &str, name: &str| Source::Class(ClassPath::new(namespace, name));
    let (args, source) = match cli.command {
        Command::SmbSessions(a) => (a, class("root/Microsoft/Windows/SMB", "MSFT_SmbSession")),
        Command::ServerSessions(a) => (
            a.class,
            if a.with_connections {
                Source::Join(JoinSpec::server_session_connections())
            } else {
                class("root/cimv2", "Win32_ServerSession")
            },
        ),
        Command::ServerConnections(a) => (a, class("root/cimv2", "Win32_ServerConnection")),
        Command::SessionConnections(a) => (a, class("root/cimv2", "Win32_SessionConnection")),
        Command::LogonSessions(a) => (
            a.class,
            if a.with_processes {
                Source::Join(JoinSpec::logon_session_processes())
            } else {
                class("root/cimv2", "Win32_LogonSession")
            },
        ),
        Command::SessionProcesses(a) => (a, class("root/cimv2", "Win32_SessionProcess")),
        Command::Sessions(a) => (a, class("root/cimv2", "Win32_Session")),
        Command::Processes(a) => (a, class("root/cimv2", "Win32_Process")),
        Command::Query(q) => {
            let (targets, wql, connection, output, namespace) = q.split();
            if !winrm_sessions::wsman::wql::looks_like_wql(&wql) {
                return usage(&format!(
                    "query: the last argument must be the WQL query, and {wql:?} is not one \
                     (e.g. winrm-sessions query fs01 \"SELECT * FROM Win32_Process\")"
                ));
            }
            let args = ClassArgs {
                targets,
                connection,
                output,
            };
            (args, Source::Query { namespace, wql })
        }
        Command::CloseSmbSession(c) => return close::run(c).await,
        Command::Demo(d) => return demo::run(d).await,
        Command::ServeFixtures(s) => return demo::serve(s).await,
        Command::Watch(w) => return watch::run(w).await,
        Command::History(h) => return watch::history(h),
        Command::Completions(c) => return docs::completions(c.shell),
        Command::Man(m) => return docs::man(m),
    };
    let (targets, settings) = match settings::prepare(&args.targets, &args.connection) {
        Ok(prepared) => prepared,
        Err(status) => return status,
    };
    audit(targets, settings, source, args.output.format).await
}

pub(crate) fn usage(message: &str) -> u8 {
    eprintln!("winrm-sessions: {message}");
    EXIT_USAGE
}
