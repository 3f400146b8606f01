//! The `winrm-sessions` command: argument parsing, the audit loop over targets, output, exit
//! codes (0 every target answered, 1 any target failed, 2 usage).

mod args;
mod close;
mod credentials;
mod demo;
mod output;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use winrm_sessions::cim::{ClassPath, Instance};
use winrm_sessions::classes::{TypedInstance, class_properties};
use winrm_sessions::fleet::{Fleet, HostEvent, RetryPolicy};
use winrm_sessions::wsman::wql::{SelectShape, select_shape};
use winrm_sessions::{Auth, Client, Credentials, JoinSpec, Joined, Page};

use args::{AuthArg, ClassArgs, Cli, Command, ConnectionArgs, Format};
use credentials::UsageError;
use output::{Columns, Extra, Layout, Nested, Record, Writer};

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

/// What a command asks every target for.
#[derive(Clone, Debug)]
pub enum Source {
    Class(ClassPath),
    Query { namespace: String, wql: String },
    Join(JoinSpec),
}

/// What one page of a source holds.
pub enum Batch {
    Page(Page<Instance>),
    Joined(Vec<Joined>),
}

impl Source {
    /// The pages of this source on one host.
    fn batches(&self, client: &Client) -> BoxStream<'static, winrm_sessions::Result<Batch>> {
        match self {
            Source::Class(class) => client
                .enumerate_class(class)
                .pages()
                .map_ok(Batch::Page)
                .boxed(),
            Source::Query { namespace, wql } => client
                .query::<Instance>(namespace, wql.clone())
                .pages()
                .map_ok(Batch::Page)
                .boxed(),
            Source::Join(spec) => client.join(spec).map_ok(Batch::Joined).boxed(),
        }
    }

    /// The columns, schema and extra keys of this source's records.
    pub fn layout(&self) -> Layout {
        match self {
            Source::Class(class) if class.class_name().eq_ignore_ascii_case("Win32_Session") => {
                let mut schema = Vec::new();
                for subclass in ["Win32_LogonSession", "Win32_ServerSession"] {
                    for property in class_properties(subclass) {
                        if !schema.iter().any(|p: &String| p == property) {
                            schema.push(property.to_owned());
                        }
                    }
                }
                Layout::new(Columns::Fixed(strings(SESSION_COLUMNS)), schema)
            }
            Source::Class(class) => Layout::new(
                Columns::ClassView,
                strings(&class_properties(class.class_name())),
            ),
            Source::Query { wql, .. } => match select_shape(wql) {
                Some(SelectShape {
                    properties: Some(properties),
                    ..
                }) => Layout::new(Columns::Fixed(properties.clone()), properties),
                Some(SelectShape { class, .. }) => {
                    Layout::new(Columns::ClassView, strings(&class_properties(&class)))
                }
                None => Layout::new(Columns::ClassView, Vec::new()),
            },
            Source::Join(spec) => Layout::new(
                Columns::ClassView,
                strings(&class_properties(spec.left().class_name())),
            )
            .extras(&[joined_key(spec)]),
        }
    }
}

/// Columns for the abstract Win32_Session, whose rows are of several classes.
const SESSION_COLUMNS: &[&str] = &[
    "CimClass",
    "LogonId",
    "ComputerName",
    "UserName",
    "AuthenticationPackage",
    "StartTime",
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The key under which a join nests its right side.
fn joined_key(spec: &JoinSpec) -> &'static str {
    if spec
        .right()
        .class_name()
        .eq_ignore_ascii_case("Win32_Process")
    {
        "Processes"
    } else {
        "Connections"
    }
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
            settings.record_per_target = settings.record.is_some() && targets.len() > 1;
            Arc::new(settings)
        }
        Err(UsageError(message)) => return usage(&message),
    };
    audit(targets, settings, source, args.output.format).await
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

    /// The fleet's clients: one built now and retargeted for every host (credentials, TLS
    /// material and tickets prepared once, a configuration error said once), or, when each
    /// target records into its own directory, one built per target.
    fn fleet(self: &Arc<Self>) -> winrm_sessions::Result<Fleet> {
        if self.record_per_target {
            let settings = self.clone();
            return Ok(Fleet::new(move |target| settings.client(target)));
        }
        // The template's own target is never contacted: every host is a `with_target` of it.
        Ok(Fleet::from_client(self.client("localhost")?))
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
    layout.width = if stdout.is_terminal() {
        terminal_size::terminal_size().map(|(w, _)| usize::from(w.0))
    } else {
        None
    };
    let several = targets.len() > 1;
    let mut writer = Writer::new(
        format,
        io::BufWriter::with_capacity(64 << 10, stdout.lock()),
        layout,
    );
    let mut progress = Progress::new(targets.len(), several && io::stderr().is_terminal());
    let fleet = match settings.fleet() {
        Ok(fleet) => fleet,
        Err(e) => {
            eprintln!("winrm-sessions: {}", e.report());
            return EXIT_FAILED;
        }
    };
    let fleet = fleet
        .concurrency(settings.concurrency)
        .per_host_deadline(settings.host_deadline)
        .retry(RetryPolicy {
            attempts: settings.retries + 1,
            ..RetryPolicy::default()
        })
        // Items are whole pages: one waiting per host at most.
        .buffer(1);
    let started = std::time::Instant::now();
    let batches = source.clone();
    let mut events = fleet.run(targets, move |client| batches.batches(client));
    let mut output = OutputState::default();
    while let Some(event) = events.next().await {
        match event {
            HostEvent::Item { target, item } => {
                progress.clear();
                let written = write_batch(&mut writer, &target, item, &mut output);
                progress.items += written;
            }
            HostEvent::Done { .. } => {
                progress.ok += 1;
                output.check(writer.end_page());
            }
            HostEvent::Failed { target, error } => {
                progress.failed += 1;
                progress.clear();
                output.check(writer.end_page());
                eprintln!(
                    "winrm-sessions: {target}: {}",
                    error.without_target().report()
                );
            }
            HostEvent::ItemError { target, error } => {
                output.bad_items += 1;
                progress.clear();
                eprintln!(
                    "winrm-sessions: {target}: {}",
                    error.without_target().report()
                );
            }
            _ => {}
        }
        if output.fatal.is_some() {
            break;
        }
        progress.draw();
    }
    progress.clear();
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
