//! The `winrm-sessions` command: argument parsing, the audit loop over targets, output, exit
//! codes (0 every target answered, 1 any target failed, 2 usage).

mod args;
mod close;
mod credentials;
mod demo;
mod joins;
mod output;
mod table;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{ClassPath, Instance};
use winrm_sessions::classes::typed_record;
use winrm_sessions::fleet::{Fleet, FleetStream, HostEvent, RetryPolicy};
use winrm_sessions::{Auth, Client, Credentials, Enumeration};

use args::{AuthArg, ClassArgs, Cli, Command, ConnectionArgs, Format};
use credentials::UsageError;
use output::{Output, Record, TableColumns};

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
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
    ExitCode::from(runtime.block_on(run(cli)))
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "winrm_sessions=debug",
        _ => "winrm_sessions=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WINRM_SESSIONS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .try_init();
}

/// What a command asks every target for.
#[derive(Clone, Debug)]
pub enum Source {
    Class(ClassPath),
    Query { namespace: String, wql: String },
    ServerSessionsWithConnections,
    LogonSessionsWithProcesses,
}

async fn run(cli: Cli) -> u8 {
    let class = |namespace: &str, name: &str| Source::Class(ClassPath::new(namespace, name));
    let (args, source, columns) = match cli.command {
        Command::SmbSessions(a) => (
            a,
            class("root/Microsoft/Windows/SMB", "MSFT_SmbSession"),
            TableColumns::ClassDefault,
        ),
        Command::ServerSessions(a) => (
            a.class,
            if a.with_connections {
                Source::ServerSessionsWithConnections
            } else {
                class("root/cimv2", "Win32_ServerSession")
            },
            TableColumns::ClassDefault,
        ),
        Command::ServerConnections(a) => (
            a,
            class("root/cimv2", "Win32_ServerConnection"),
            TableColumns::ClassDefault,
        ),
        Command::SessionConnections(a) => (
            a,
            class("root/cimv2", "Win32_SessionConnection"),
            TableColumns::ClassDefault,
        ),
        Command::LogonSessions(a) => (
            a.class,
            if a.with_processes {
                Source::LogonSessionsWithProcesses
            } else {
                class("root/cimv2", "Win32_LogonSession")
            },
            TableColumns::ClassDefault,
        ),
        Command::SessionProcesses(a) => (
            a,
            class("root/cimv2", "Win32_SessionProcess"),
            TableColumns::ClassDefault,
        ),
        Command::Sessions(a) => (
            a,
            class("root/cimv2", "Win32_Session"),
            TableColumns::Sessions,
        ),
        Command::Processes(a) => (
            a,
            class("root/cimv2", "Win32_Process"),
            TableColumns::ClassDefault,
        ),
        Command::Query(q) => {
            let args = ClassArgs {
                targets: vec![q.target],
                connection: q.connection,
                output: q.output,
            };
            (
                args,
                Source::Query {
                    namespace: q.namespace,
                    wql: q.wql,
                },
                TableColumns::ClassDefault,
            )
        }
        Command::CloseSmbSession(c) => return close::run(c).await,
        Command::Demo(d) => return demo::run(d).await,
        Command::ServeFixtures(s) => return demo::serve(s).await,
    };
    let targets = match collect_targets(&args) {
        Ok(t) => t,
        Err(UsageError(message)) => return usage(&message),
    };
    let settings = match Settings::resolve(&args.connection) {
        Ok(mut settings) => {
            settings.record_per_target = targets.len() > 1;
            Arc::new(settings)
        }
        Err(UsageError(message)) => return usage(&message),
    };
    audit(targets, settings, source, args.output.format, columns).await
}

fn usage(message: &str) -> u8 {
    eprintln!("winrm-sessions: {message}");
    EXIT_USAGE
}

fn collect_targets(args: &ClassArgs) -> Result<Vec<String>, UsageError> {
    let mut targets = args.targets.clone();
    if let Some(path) = &args.connection.hosts_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read hosts file {}: {e}", path.display())))?;
        targets.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    if targets.is_empty() {
        return Err(UsageError(
            "no target: name one or more hosts, or pass --hosts-file".into(),
        ));
    }
    Ok(targets)
}

/// Connection settings shared by every target of a run.
pub struct Settings {
    credentials: Option<Credentials>,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    auth: Auth,
    https: bool,
    ca_file: Option<std::path::PathBuf>,
    accept_invalid_certs: bool,
    allow_plaintext: bool,
    operation_timeout: Duration,
    connect_timeout: Duration,
    max_elements: u32,
    concurrency: usize,
    host_deadline: Duration,
    retries: u32,
    kdc: Option<String>,
    spn: Option<String>,
    record: Option<(std::path::PathBuf, Vec<(String, String)>)>,
    record_per_target: bool,
    keytab: Option<(String, std::path::PathBuf)>,
    /// Kerberos from this credential cache.
    ticket_cache: Option<std::path::PathBuf>,
}

impl Settings {
    /// The credentials (not for certificate authentication) and everything else of the
    /// connection options.
    fn resolve(args: &ConnectionArgs) -> Result<Self, UsageError> {
        let ticket_cache = credentials::ticket_cache(args)?;
        let credentials =
            if args.auth == AuthArg::Certificate || args.keytab.is_some() || ticket_cache.is_some()
            {
                None
            } else {
                Some(credentials::resolve(args)?)
            };
        let mut settings = Self::from_args(args, credentials)?;
        settings.ticket_cache = ticket_cache;
        if let Some(keytab) = &args.keytab {
            let principal = args.user.clone().ok_or_else(|| {
                UsageError("--keytab needs --user (the principal, user@REALM)".into())
            })?;
            settings.keytab = Some((principal, keytab.clone()));
        }
        Ok(settings)
    }

    fn from_args(
        args: &ConnectionArgs,
        credentials: Option<Credentials>,
    ) -> Result<Self, UsageError> {
        let client_identity = match (&args.cert_file, &args.key_file, args.auth) {
            (Some(cert), Some(key), _) => {
                let read = |path: &std::path::PathBuf| {
                    std::fs::read(path)
                        .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))
                };
                Some((read(cert)?, read(key)?))
            }
            (_, _, AuthArg::Certificate) => {
                return Err(UsageError(
                    "--auth certificate needs --cert-file and --key-file".into(),
                ));
            }
            _ => None,
        };
        Ok(Self {
            credentials,
            client_identity,
            auth: match args.auth {
                AuthArg::Negotiate => Auth::Negotiate,
                AuthArg::Ntlm => Auth::Ntlm,
                AuthArg::Kerberos => Auth::Kerberos,
                AuthArg::Basic => Auth::Basic,
                AuthArg::Certificate => Auth::Certificate,
            },
            https: args.https,
            ca_file: args.ca_file.clone(),
            accept_invalid_certs: args.danger_accept_invalid_certs,
            allow_plaintext: args.allow_plaintext,
            operation_timeout: Duration::from_secs(args.timeout.max(1)),
            connect_timeout: Duration::from_secs(args.connect_timeout.max(1)),
            max_elements: args.max_elements,
            concurrency: usize::from(args.concurrency),
            host_deadline: Duration::from_secs(args.host_timeout.max(1)),
            retries: args.retries,
            kdc: args.kdc.clone(),
            spn: args.spn.clone(),
            record: match &args.record {
                None => None,
                Some(dir) => {
                    let mut replacements = Vec::new();
                    for pair in &args.record_replace {
                        let (from, to) = pair.split_once('=').ok_or_else(|| {
                            UsageError(format!("--record-replace {pair:?}: expected FROM=TO"))
                        })?;
                        replacements.push((from.to_owned(), to.to_owned()));
                    }
                    Some((dir.clone(), replacements))
                }
            },
            record_per_target: false,
            keytab: None,
            ticket_cache: None,
        })
    }

    pub fn for_demo(credentials: Credentials) -> Self {
        Self {
            credentials: Some(credentials),
            client_identity: None,
            auth: Auth::Negotiate,
            https: false,
            ca_file: None,
            accept_invalid_certs: false,
            allow_plaintext: false,
            operation_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_elements: 500,
            concurrency: 1,
            host_deadline: Duration::from_secs(60),
            retries: 0,
            kdc: None,
            spn: None,
            record: None,
            record_per_target: false,
            keytab: None,
            ticket_cache: None,
        }
    }

    fn client(&self, target: &str) -> winrm_sessions::Result<Client> {
        let mut builder = Client::builder(target).auth(self.auth);
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        if let Some((cert, key)) = &self.client_identity {
            builder = builder.client_certificate(cert, key);
        }
        if let Some((principal, keytab)) = &self.keytab {
            builder = builder.kerberos_keytab(principal, keytab);
        }
        if let Some(cache) = &self.ticket_cache {
            builder = builder.kerberos_ticket_cache_file(cache);
        }
        builder = builder
            .https(self.https)
            .danger_accept_invalid_certs(self.accept_invalid_certs)
            .danger_allow_basic_over_http(self.allow_plaintext)
            .operation_timeout(self.operation_timeout)
            .connect_timeout(self.connect_timeout)
            .max_elements(self.max_elements);
        if let Some(ca) = &self.ca_file {
            builder = builder.ca_file(ca);
        }
        if let Some(kdc) = &self.kdc {
            builder = builder.kdc(kdc);
        }
        if let Some(spn) = &self.spn {
            builder = builder.spn(spn);
        }
        if let Some((dir, replacements)) = &self.record {
            let dir = if self.record_per_target {
                let name: String = target
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                dir.join(name)
            } else {
                dir.clone()
            };
            let mut recorder = winrm_sessions::record::Recorder::new(&dir).map_err(|e| {
                winrm_sessions::Error::new(winrm_sessions::ErrorKind::Config(format!(
                    "cannot record into {}: {e}",
                    dir.display()
                )))
            })?;
            for (from, to) in replacements {
                recorder = recorder.replace(from, to);
            }
            builder = builder.exchange_hook(std::sync::Arc::new(recorder));
        }
        builder.build()
    }
}

/// Queries every target (at most `concurrency` at once, through the library's fleet runner),
/// prints records as they arrive, one stderr line per failed host, and a summary for several.
pub async fn audit(
    targets: Vec<String>,
    settings: Arc<Settings>,
    source: Source,
    format: Format,
    columns: TableColumns,
) -> u8 {
    let stdout = io::stdout();
    let width = if stdout.is_terminal() {
        terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
    } else {
        None
    };
    let several = targets.len() > 1;
    let mut output = Output::new(format, stdout.lock(), columns, width, several);
    let mut progress = Progress::new(targets.len(), several && io::stderr().is_terminal());
    let connect = settings.clone();
    let fleet = Fleet::new(move |target| connect.client(target))
        .concurrency(settings.concurrency)
        .per_host_deadline(settings.host_deadline)
        .retry(RetryPolicy {
            attempts: settings.retries + 1,
            ..RetryPolicy::default()
        });
    let started = std::time::Instant::now();
    let mut events: FleetStream<Vec<Record>> = match &source {
        Source::Class(_) | Source::Query { .. } => {
            let source = source.clone();
            fleet.map(targets, move |client| {
                let source = source.clone();
                async move { enumerate_records(&client, &source).await }
            })
        }
        Source::ServerSessionsWithConnections | Source::LogonSessionsWithProcesses => {
            let source = source.clone();
            fleet.map(targets, move |client| {
                let source = source.clone();
                async move { joins::records(client.target(), &client, &source).await }
            })
        }
    };
    let mut broken_pipe = false;
    while let Some(event) = events.next().await {
        match event {
            HostEvent::Item { item: records, .. } => {
                for record in records {
                    progress.items += 1;
                    if broken_pipe {
                        continue;
                    }
                    if let Err(e) = output.write(record) {
                        if e.kind() == io::ErrorKind::BrokenPipe {
                            broken_pipe = true;
                        } else {
                            eprintln!("winrm-sessions: cannot write output: {e}");
                            return EXIT_FAILED;
                        }
                    }
                }
            }
            HostEvent::Done { target, .. } => {
                progress.ok += 1;
                if !broken_pipe {
                    let _ = output.host_done(&target);
                }
            }
            HostEvent::Failed { target, error } | HostEvent::ItemError { target, error } => {
                progress.failed += 1;
                progress.clear();
                eprintln!("winrm-sessions: {target}: {}", error.without_target());
            }
            _ => {}
        }
        progress.draw();
    }
    progress.clear();
    if !broken_pipe
        && let Err(e) = output.finish()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
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
    if progress.failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Counts of a run, and the progress line on stderr when it is a terminal.
struct Progress {
    total: usize,
    ok: usize,
    failed: usize,
    items: usize,
    visible: bool,
}

impl Progress {
    fn new(total: usize, visible: bool) -> Self {
        Self {
            total,
            ok: 0,
            failed: 0,
            items: 0,
            visible,
        }
    }

    fn draw(&self) {
        if !self.visible {
            return;
        }
        let done = self.ok + self.failed;
        let filled = done * 30 / self.total.max(1);
        eprint!(
            "\r\x1b[K[{}{}] {done}/{} hosts, {} failed, {} records",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            self.total,
            self.failed,
            self.items
        );
        let _ = io::stderr().flush();
    }

    fn clear(&self) {
        if self.visible {
            eprint!("\r\x1b[K");
        }
    }
}

/// One host's enumeration as records (typed through the class structs). An item that does not
/// fit its class fails the host: nothing is dropped silently.
async fn enumerate_records(
    client: &Client,
    source: &Source,
) -> winrm_sessions::Result<Vec<Record>> {
    let mut stream: Enumeration<Instance> = match source {
        Source::Class(class) => client.enumerate_class(class),
        Source::Query { namespace, wql } => client.query(namespace, wql.clone()),
        _ => return Ok(Vec::new()),
    };
    let mut records = Vec::new();
    while let Some(instance) = stream.try_next().await? {
        let fields = typed_record(&instance).map_err(winrm_sessions::Error::from)?;
        records.push(Record::new(client.target(), instance.class_name(), fields));
    }
    Ok(records)
}
