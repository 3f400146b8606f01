//! Command-line arguments (the contract of DESIGN §5).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The examples of `--help` and of the manual page's EXAMPLES section.
pub const EXAMPLES: &str = "Examples:
  winrm-sessions demo                                   the bundled fixture server, no Windows
  winrm-sessions smb-sessions fs01 --user 'CORP\\auditor'  who has SMB sessions open on fs01
  winrm-sessions smb-sessions --hosts-file servers.txt --concurrency 64 --format json
  winrm-sessions logon-sessions fs01 --with-processes   logon sessions and their processes
  winrm-sessions query fs01 \"SELECT * FROM Win32_Process WHERE Name = 'powershell.exe'\"
  winrm-sessions close-smb-session fs01 --client-user-name alice --dry-run
  winrm-sessions watch smb-sessions fs01 fs02 --interval 30s --store sessions.db";

/// Ask Windows servers over WinRM who is connected to them.
#[derive(Debug, Parser)]
#[command(
    name = "winrm-sessions",
    version,
    about = "ask Windows servers over WinRM who is connected to them (SMB sessions, server \
             sessions, logon sessions, processes) and close sessions",
    long_about = None,
    after_help = EXAMPLES,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log on stderr: -v hosts and retries, -vv every request, -vvv request and response bodies
    /// (never a password, token or key); WINRM_SESSIONS_LOG=FILTER overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// SMB sessions (MSFT_SmbSession), like Get-SmbSession
    SmbSessions(ClassArgs),
    /// Server sessions (Win32_ServerSession)
    ServerSessions(ServerSessionsArgs),
    /// Connections to shares (Win32_ServerConnection)
    ServerConnections(ClassArgs),
    /// Sessions and their connections (Win32_SessionConnection)
    SessionConnections(ClassArgs),
    /// Logon sessions (Win32_LogonSession)
    LogonSessions(LogonSessionsArgs),
    /// Logon sessions and their processes (Win32_SessionProcess)
    SessionProcesses(ClassArgs),
    /// Every session of every kind (Win32_Session and its subclasses)
    Sessions(ClassArgs),
    /// Processes (Win32_Process)
    Processes(ClassArgs),
    /// Close SMB sessions (MSFT_SmbSession.ForceClose), like Close-SmbSession
    CloseSmbSession(CloseArgs),
    /// Run a WQL query
    Query(QueryArgs),
    /// Poll targets every interval and print sessions as they open and close
    Watch(WatchArgs),
    /// Sessions a watch recorded (--store): who was connected where, from when to when
    History(HistoryArgs),
    /// Start the bundled fixture server on loopback and run an audit against it
    Demo(DemoArgs),
    /// Serve a fixture directory on loopback; prints the URL on the first line of stdout
    ServeFixtures(ServeArgs),
    /// Print a shell completion script (e.g. `winrm-sessions completions bash > ~/.local/share/bash-completion/completions/winrm-sessions`)
    Completions(CompletionsArgs),
    /// Print a manual page (roff: `winrm-sessions man | man -l -`), or write them all
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (default: the tool's own page)
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write the pages of the tool and every command into this directory instead (e.g.
    /// ~/.local/share/man/man1)
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ClassArgs {
    /// Host names, addresses or http(s)://host:port/wsman URLs
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServerSessionsArgs {
    #[command(flatten)]
    pub class: ClassArgs,
    /// Add each session's connections to shares (Win32_ServerConnection, joined through
    /// Win32_SessionConnection) as the key Connections
    #[arg(long)]
    pub with_connections: bool,
}

#[derive(Debug, Args)]
pub struct LogonSessionsArgs {
    #[command(flatten)]
    pub class: ClassArgs,
    /// Add each session's processes (Win32_Process, joined through Win32_SessionProcess) as the
    /// key Processes
    #[arg(long)]
    pub with_processes: bool,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    /// Host names, addresses or URLs (or --hosts-file): the selected sessions are looked up on
    /// every one, shown together, confirmed once, and closed
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Close the session with this id (repeatable)
    #[arg(long, value_name = "ID")]
    pub session_id: Vec<u64>,
    /// Close the sessions from this client computer (repeatable; case-insensitive)
    #[arg(long, value_name = "NAME")]
    pub client_computer_name: Vec<String>,
    /// Close the sessions of this user, e.g. 'CORP\alice' (repeatable; case-insensitive)
    #[arg(long, value_name = "USER")]
    pub client_user_name: Vec<String>,
    /// List what would be closed and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Host names, addresses or URLs (or --hosts-file), then the WQL query as the last
    /// argument, e.g. "SELECT * FROM Win32_Process WHERE SessionId = 2"
    #[arg(value_name = "TARGET... WQL", required = true, num_args = 1..)]
    pub targets_and_wql: Vec<String>,
    /// WMI namespace
    #[arg(long, default_value = "root/cimv2")]
    pub namespace: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl QueryArgs {
    /// The targets and the query (the last argument).
    pub fn split(mut self) -> (Vec<String>, String, ConnectionArgs, OutputArgs, String) {
        let wql = self.targets_and_wql.pop().unwrap_or_default();
        (
            self.targets_and_wql,
            wql,
            self.connection,
            self.output,
            self.namespace,
        )
    }
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to watch: the class command's name (smb-sessions, server-sessions, ...)
    #[arg(value_enum, value_name = "CLASS-COMMAND")]
    pub class: Watched,
    /// Host names, addresses or URLs (or --hosts-file)
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Time between polls: 500ms, 30s, 5m, 1h (or 1m30s)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub interval: std::time::Duration,
    /// Stop after this many polls (default: until interrupted)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Keep every session seen and every poll in this SQLite file (created if needed); a
    /// watch restarted on it goes on where the last one stopped
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9464)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The classes `watch` follows, named as their commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Watched {
    SmbSessions,
    ServerSessions,
    ServerConnections,
    SessionConnections,
    LogonSessions,
    SessionProcesses,
    Sessions,
    Processes,
}

impl Watched {
    /// The namespace and class.
    pub fn class(self) -> (&'static str, &'static str) {
        match self {
            Watched::SmbSessions => ("root/Microsoft/Windows/SMB", "MSFT_SmbSession"),
            Watched::ServerSessions => ("root/cimv2", "Win32_ServerSession"),
            Watched::ServerConnections => ("root/cimv2", "Win32_ServerConnection"),
            Watched::SessionConnections => ("root/cimv2", "Win32_SessionConnection"),
            Watched::LogonSessions => ("root/cimv2", "Win32_LogonSession"),
            Watched::SessionProcesses => ("root/cimv2", "Win32_SessionProcess"),
            Watched::Sessions => ("root/cimv2", "Win32_Session"),
            Watched::Processes => ("root/cimv2", "Win32_Process"),
        }
    }
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The store a watch wrote (--store)
    #[arg(long, value_name = "FILE")]
    pub store: PathBuf,
    /// Only this user's sessions (case-insensitive; with or without the domain)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only sessions from this client computer
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,
    /// Only sessions on this target (as given to the watch)
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// Only sessions seen since this time: RFC 3339 (2026-11-20T08:00:00Z) or a duration ago
    /// (7d, 24h, 30m)
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<std::time::SystemTime>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `500ms`, `30s`, `5m`, `1h`, `7d`, or several (`1m30s`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty duration (e.g. 30s, 5m, 500ms)".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: expected a number and a unit (e.g. 30s, 5m, 500ms)"))?;
        let unit = match unit {
            "ms" => std::time::Duration::from_millis(1),
            "s" => std::time::Duration::from_secs(1),
            "m" => std::time::Duration::from_secs(60),
            "h" => std::time::Duration::from_secs(3600),
            "d" => std::time::Duration::from_secs(86_400),
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {unit:?} (ms, s, m, h or d)"
                ));
            }
        };
        total = unit
            .checked_mul(u32::try_from(number).map_err(|_| format!("{text:?}: too long"))?)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("{text:?}: too long"))?;
        rest = tail;
    }
    Ok(total)
}

/// An RFC 3339 time, or a duration ago.
pub fn parse_since(text: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(at) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(at.into());
    }
    let ago = parse_duration(text).map_err(|_| {
        format!(
            "{text:?}: expected an RFC 3339 time (2026-11-20T08:00:00Z) or a duration ago (7d, 24h)"
        )
    })?;
    std::time::SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("{text:?}: too long ago"))
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of NNNN-name.request.xml / .response.xml pairs
    pub dir: PathBuf,
    /// Port on 127.0.0.1 (default: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// User to accept
    #[arg(long, env = "WINRM_USER", default_value = winrm_sessions::testing::DEFAULT_USER)]
    pub user: String,
    /// Wait this long before every answer, handshakes included (e.g. 50ms): a server across a
    /// network, to see how a fleet, a watch or your own timeouts behave against it
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    pub latency: std::time::Duration,
    /// List what the directory's recordings can answer (enumerations, queries, Gets, method
    /// calls) and exit
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// User name: DOMAIN\user, user@REALM or a local user
    #[arg(long, short = 'u', env = "WINRM_USER")]
    pub user: Option<String>,
    /// Read the password from this file (first line); otherwise WINRM_PASSWORD, otherwise a prompt
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Authentication mechanism
    #[arg(long, value_enum, default_value_t = AuthArg::Negotiate)]
    pub auth: AuthArg,
    /// Client certificate (PEM) for --auth certificate
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of the client certificate
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// Kerberos with the key of --user from this MIT keytab instead of a password (implies
    /// --auth kerberos)
    #[arg(long, value_name = "FILE")]
    pub keytab: Option<PathBuf>,
    /// Kerberos with the tickets of this credential cache (from kinit) instead of a password
    /// (implies --auth kerberos). Without --user and a password, KRB5CCNAME or the default cache
    /// is used by itself
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keytab", "password_file"])]
    pub ccache: Option<PathBuf>,
    /// Kerberos KDC (host, host:port or tcp://host:port) instead of krb5.conf
    #[arg(long, value_name = "HOST")]
    pub kdc: Option<String>,
    /// Kerberos service principal instead of HTTP/<host>
    #[arg(long, value_name = "SPN")]
    pub spn: Option<String>,
    /// Under Negotiate, never fall back to NTLM when Kerberos cannot start (no KDC answers, the
    /// KDC does not know the service): fail with the Kerberos error instead. NTLM never follows
    /// a Kerberos AP-REQ, whatever this says
    #[arg(long)]
    pub no_ntlm_fallback: bool,
    /// Use HTTPS (port 5986) for targets given as host names (a URL's scheme decides by
    /// itself; an http:// URL with --https is a usage error)
    #[arg(long)]
    pub https: bool,
    /// How requests name a class and its namespace: auto asks a server who it is before a
    /// query (Windows gets WMI's form; OMI and other CIM servers DSP0227's, with the namespace in
    /// a __cimnamespace selector)
    #[arg(long, value_enum, default_value_t = AddressingArg::Auto)]
    pub addressing: AddressingArg,
    /// Trust the CA certificates in this PEM file (in addition to the system roots)
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server certificate: anyone on the path can read the traffic
    #[arg(long)]
    pub danger_accept_invalid_certs: bool,
    /// Allow Basic authentication over plain HTTP (the password crosses the network in clear)
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Read targets from this file: one per line, blank lines and # comments ignored
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// Targets queried at the same time
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Seconds one host may take in all, retries included
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub host_timeout: u64,
    /// Retries of a host after a refused or lost connection, a timeout or a quota fault (never
    /// after an authentication failure, a name that does not resolve or an untrusted certificate)
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Seconds the server may take per request (WS-Man OperationTimeout)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// Seconds to wait for a connection
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Items asked for per page
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_elements: u32,
    /// Record every exchange, decrypted, as fixtures into this directory (one subdirectory per
    /// target when there are several); replay them with serve-fixtures
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// With --record: replace FROM by TO in what is recorded (host and user names); repeatable
    #[arg(long, value_name = "FROM=TO", requires = "record")]
    pub record_replace: Vec<String>,
}

/// The targets named on the command line, then those of `--hosts-file` (one per line, blank
/// lines and `#` comments ignored), each once: a target named again (in any case) is dropped,
/// so the order is that of first mention. How many were dropped is returned too.
pub fn collect_targets(
    positional: &[String],
    hosts_file: Option<&std::path::Path>,
) -> Result<(Vec<String>, usize), crate::credentials::UsageError> {
    use crate::credentials::UsageError;
    let mut named: Vec<String> = positional.to_vec();
    if let Some(path) = hosts_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read hosts file {}: {e}", path.display())))?;
        named.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    if named.is_empty() {
        return Err(UsageError(
            "no target: name one or more hosts, or pass --hosts-file".into(),
        ));
    }
    let before = named.len();
    {
        let mut seen = std::collections::HashSet::with_capacity(named.len());
        named.retain(|target| seen.insert(target.to_ascii_lowercase()));
    }
    named.shrink_to_fit();
    let dropped = before - named.len();
    Ok((named, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_once_in_the_order_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hosts.txt");
        let mut lines = String::from("# fleet\nfs02\n\nFS01   # again, other case\n");
        for i in 0..100_000 {
            lines.push_str(&format!("fs{:02}\n\n", i % 7));
        }
        std::fs::write(&file, lines).unwrap();
        let (targets, dropped) = collect_targets(&["fs01".into()], Some(&file)).unwrap();
        assert_eq!(
            targets,
            ["fs01", "fs02", "fs00", "fs03", "fs04", "fs05", "fs06"]
        );
        assert_eq!(dropped, 1 + 2 + 100_000 - 7);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// Kerberos when the user names a realm with a known KDC, NTLM otherwise; WinRM message
    /// encryption on HTTP (what Windows clients do)
    Negotiate,
    /// NTLM with message encryption on HTTP and channel binding on HTTPS
    Ntlm,
    /// Kerberos with the password (no kinit needed); KDC from --kdc or krb5.conf
    Kerberos,
    /// HTTP Basic (local accounts; HTTPS, or HTTP with --allow-plaintext)
    Basic,
    /// A client certificate over HTTPS (--cert-file and --key-file)
    Certificate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AddressingArg {
    /// WMI's form for Windows, DSP0227's for a server whose Identify answer names another product
    Auto,
    /// http://schemas.microsoft.com/wbem/wsman/1/wmi/NAMESPACE/CLASS (Windows)
    Wmi,
    /// http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CLASS with __cimnamespace (OMI,
    /// openwsman)
    Dmtf,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct OutputArgs {
    /// Output format: a table for people, NDJSON or CSV for scripts
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns like PowerShell's default view, sized to the terminal
    Table,
    /// One JSON object per line, keys = WMI property names, plus PSComputerName and CimClass
    Json,
    /// CSV with a header row
    Csv,
}
