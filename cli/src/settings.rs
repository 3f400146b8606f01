//! Connection settings shared by every target of a run, and the clients built from them.

use std::sync::Arc;
use std::time::Duration;

use winrm_sessions::fleet::{Fleet, RetryPolicy};
use winrm_sessions::{Auth, ClassAddressing, Client, Credentials};

use crate::args::{AddressingArg, AuthArg, ConnectionArgs};
use crate::credentials::{self, UsageError};

/// A command's targets and settings, or the exit status of what was wrong with them (said on
/// stderr).
pub fn prepare(
    positional: &[String],
    connection: &ConnectionArgs,
) -> Result<(Vec<String>, Arc<Settings>), u8> {
    let (targets, dropped) =
        crate::args::collect_targets(positional, connection.hosts_file.as_deref())
            .map_err(|UsageError(message)| crate::usage(&message))?;
    if dropped > 0 {
        eprintln!("winrm-sessions: {dropped} target(s) named more than once: each is asked once");
    }
    let mut settings =
        Settings::resolve(connection).map_err(|UsageError(message)| crate::usage(&message))?;
    settings.record_per_target = settings.record.is_some() && targets.len() > 1;
    Ok((targets, Arc::new(settings)))
}

/// Connection settings shared by every target of a run.
pub struct Settings {
    credentials: Option<Credentials>,
    client_identity: Option<(Vec<u8>, Vec<u8>)>,
    auth: Auth,
    https: bool,
    addressing: ClassAddressing,
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
    no_ntlm_fallback: bool,
    pub record: Option<(std::path::PathBuf, Vec<(String, String)>)>,
    pub record_per_target: bool,
    keytab: Option<(String, std::path::PathBuf)>,
    /// Kerberos from this credential cache.
    ticket_cache: Option<std::path::PathBuf>,
    /// The client every host's is retargeted from, once built.
    template: std::sync::OnceLock<Client>,
}

impl Settings {
    /// The credentials (not for certificate authentication) and everything else of the
    /// connection options.
    pub fn resolve(args: &ConnectionArgs) -> Result<Self, UsageError> {
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
            addressing: match args.addressing {
                AddressingArg::Auto => ClassAddressing::Auto,
                AddressingArg::Wmi => ClassAddressing::Wmi,
                AddressingArg::Dmtf => ClassAddressing::Dmtf,
            },
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
            no_ntlm_fallback: args.no_ntlm_fallback,
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
            template: std::sync::OnceLock::new(),
        })
    }

    pub fn for_demo(credentials: Credentials) -> Self {
        Self {
            credentials: Some(credentials),
            client_identity: None,
            auth: Auth::Negotiate,
            https: false,
            addressing: ClassAddressing::Auto,
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
            no_ntlm_fallback: false,
            record: None,
            record_per_target: false,
            keytab: None,
            ticket_cache: None,
            template: std::sync::OnceLock::new(),
        }
    }

    /// The fleet: its concurrency, deadline and retries, and its clients: one built now and
    /// retargeted for every host (credentials, TLS material and tickets prepared once, a
    /// configuration error said once), or, when each target records into its own directory,
    /// one built per target.
    ///
    /// A configuration that cannot work (Basic over plain HTTP without --allow-plaintext, a bad
    /// URL) is a usage error, exit status 2; anything else found while preparing (an
    /// unreadable ticket cache) exit status 1. Both are said on stderr, naming the first
    /// target. `keeps_connections`: for a watch, whose hosts keep a connection open from one
    /// poll to the next (counted against the open-file limit).
    pub fn fleet_or_exit(
        self: &Arc<Self>,
        targets: &[String],
        keeps_connections: bool,
    ) -> Result<Fleet, u8> {
        let first = targets.first().map_or("localhost", String::as_str);
        self.fleet(first, keeps_connections).map_err(|e| {
            use winrm_sessions::ErrorKind;
            match e.kind() {
                // What the command line asked for cannot work: a usage error, in its words.
                ErrorKind::PlaintextBasicRefused => crate::usage(&format!(
                    "{}: refusing Basic authentication over plain HTTP: the password would \
                     cross the network in clear (use an https:// URL or --https, or allow it \
                     with --allow-plaintext)",
                    e.target().unwrap_or(first)
                )),
                ErrorKind::Config(_) => crate::usage(&e.report().to_string()),
                _ => {
                    eprintln!("winrm-sessions: {}", e.report());
                    crate::EXIT_FAILED
                }
            }
        })
    }

    /// `first`: the target the template is built for, so that what is wrong with the
    /// configuration is said of a target the user typed.
    fn fleet(
        self: &Arc<Self>,
        first: &str,
        keeps_connections: bool,
    ) -> winrm_sessions::Result<Fleet> {
        if let Some(limit) = crate::limits::raise_open_files()
            && let Some(warning) =
                crate::limits::too_low(limit, self.concurrency, keeps_connections)
        {
            eprintln!("winrm-sessions: {warning}");
        }
        let fleet = if self.record_per_target {
            let settings = self.clone();
            Fleet::new(move |target| settings.client(target))
        } else {
            // The template's own target is never contacted: every host is a `with_target` of it.
            let template = match self.template.get() {
                Some(template) => template.clone(),
                None => {
                    let built = self.client(first)?;
                    self.template.get_or_init(|| built).clone()
                }
            };
            Fleet::from_client(template)
        };
        Ok(fleet
            .concurrency(self.concurrency)
            .per_host_deadline(self.host_deadline)
            .retry(RetryPolicy {
                attempts: self.retries + 1,
                ..RetryPolicy::default()
            }))
    }

    /// Waits (a few seconds at most) for the Releases of enumerations abandoned by an
    /// interrupted run, so that the servers free them now rather than at their timeout.
    pub async fn wait_for_releases(&self) {
        if let Some(template) = self.template.get()
            && !template.wait_for_releases(Duration::from_secs(5)).await
        {
            eprintln!("winrm-sessions: some enumerations could not be released before exiting");
        }
    }

    pub fn client(&self, target: &str) -> winrm_sessions::Result<Client> {
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
        if self.https {
            // Only when asked: a URL's scheme decides by itself, and an http:// URL with
            // --https is a contradiction the builder reports.
            builder = builder.https(true);
        }
        builder = builder
            .class_addressing(self.addressing)
            .danger_accept_invalid_certs(self.accept_invalid_certs)
            .danger_allow_basic_over_http(self.allow_plaintext)
            .operation_timeout(self.operation_timeout)
            .connect_timeout(self.connect_timeout)
            .max_elements(self.max_elements)
            .ntlm_fallback(!self.no_ntlm_fallback);
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
