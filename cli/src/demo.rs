//! `demo` (the bundled fixture server plus an audit against it) and `serve-fixtures`.

use std::io::Write;
use std::sync::Arc;

use winrm_sessions::Credentials;
use winrm_sessions::cim::ClassPath;
use winrm_sessions::testing::{
    DEFAULT_PASSWORD, DEFAULT_USER, Exchange, FixtureServer, FixtureSet,
};

use crate::args::{DemoArgs, Format, ServeArgs};
use crate::audit::audit;
use crate::settings::Settings;
use crate::source::Source;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

include!(concat!(env!("OUT_DIR"), "/demo_fixtures.rs"));

fn embedded() -> Result<FixtureSet, String> {
    let exchanges: Result<Vec<Exchange>, _> = DEMO_FIXTURES
        .iter()
        .map(|(name, request, response)| Exchange::parse(*name, request, *response))
        .collect();
    let set = FixtureSet::from_exchanges(exchanges.map_err(|e| e.to_string())?);
    if set.is_empty() {
        return Err("this build has no embedded demo fixtures".into());
    }
    Ok(set)
}

pub async fn run(args: DemoArgs) -> u8 {
    let set = match embedded() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("winrm-sessions: {e}");
            return EXIT_FAILED;
        }
    };
    let server = match FixtureServer::builder(set).start().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("winrm-sessions: cannot start the fixture server: {e}");
            return EXIT_FAILED;
        }
    };
    eprintln!(
        "Demo: a fixture server on {} replays a recorded file server (fs01.contoso.test).\n\
         Each section below is a real WS-Management conversation with it: Negotiate (NTLM)\n\
         authentication and WinRM message encryption, as with a stock Windows server on port 5985.\n\
         Against your own server: winrm-sessions smb-sessions HOST --user 'DOMAIN\\user'\n",
        server.url()
    );
    let settings = Arc::new(Settings::for_demo(Credentials::new(
        DEFAULT_USER,
        DEFAULT_PASSWORD,
    )));
    let sections = [
        (
            "SMB sessions (MSFT_SmbSession, as Get-SmbSession shows them)",
            "root/Microsoft/Windows/SMB",
            "MSFT_SmbSession",
        ),
        (
            "Server sessions (Win32_ServerSession)",
            "root/cimv2",
            "Win32_ServerSession",
        ),
        (
            "Connections to shares (Win32_ServerConnection)",
            "root/cimv2",
            "Win32_ServerConnection",
        ),
        (
            "Logon sessions (Win32_LogonSession)",
            "root/cimv2",
            "Win32_LogonSession",
        ),
    ];
    // A CSV document has one header: it holds the first section's class; the others are shown
    // as tables or NDJSON (whose records say their class).
    let shown = if args.output.format == Format::Csv {
        eprintln!(
            "CSV holds one class: MSFT_SmbSession below. `demo` (a table) or `demo --format json` \
             shows every section.\n"
        );
        1
    } else {
        sections.len()
    };
    let mut status = EXIT_OK;
    for (i, (title, namespace, class)) in sections.into_iter().take(shown).enumerate() {
        if args.output.format == Format::Table {
            let mut stdout = std::io::stdout();
            let _ = writeln!(stdout, "{}== {title} ==", if i > 0 { "\n" } else { "" });
            let _ = stdout.flush();
        }
        let source = Source::Class(ClassPath::new(namespace, class));
        let code = audit(
            vec![server.url().to_owned()],
            settings.clone(),
            source,
            args.output.format,
        )
        .await;
        status = status.max(code);
    }
    status
}

pub async fn serve(args: ServeArgs) -> u8 {
    let set = match FixtureSet::from_dir(&args.dir) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("winrm-sessions: {e}");
            return EXIT_USAGE;
        }
    };
    if args.list {
        let mut stdout = std::io::stdout().lock();
        for line in set.answers() {
            if writeln!(stdout, "{line}").is_err() {
                break;
            }
        }
        return EXIT_OK;
    }
    let (password, password_said) = match std::env::var("WINRM_PASSWORD") {
        Ok(password) => (password, "the password in WINRM_PASSWORD".to_owned()),
        Err(_) => (
            DEFAULT_PASSWORD.to_owned(),
            format!("password {DEFAULT_PASSWORD:?}"),
        ),
    };
    let user = args.user.clone();
    let server = match FixtureServer::builder(set)
        .credentials(args.user, password)
        .bind(std::net::Ipv4Addr::LOCALHOST.into(), args.port)
        .latency(args.latency)
        .start()
        .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("winrm-sessions: {e}");
            return EXIT_FAILED;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", server.url());
    let _ = stdout.flush();
    let latency = if args.latency.is_zero() {
        String::new()
    } else {
        format!(", answering after {} ms", args.latency.as_millis())
    };
    eprintln!(
        "Serving {} on {} for user {user:?} with {password_said}, over Negotiate (NTLM) or \
         Basic{latency} (Ctrl-C to stop)",
        args.dir.display(),
        server.url()
    );
    std::future::pending::<()>().await;
    EXIT_OK
}
