//! [`Client`]: one WinRM endpoint, its credentials and its limits.

mod addressing;
mod associations;
mod builder;
mod config;
mod enumeration;
mod joins;

use std::sync::Arc;

pub use addressing::ClassAddressing;
pub use associations::{Associations, MethodInput};
pub use builder::ClientBuilder;
pub(crate) use config::Config;
pub(crate) use config::endpoint_url;
pub use config::{HTTP_PORT, HTTPS_PORT};
pub(crate) use enumeration::PageSink;
pub use enumeration::{Enumeration, Page, PageItems, Pages};
pub use joins::{
    JoinPages, JoinSpec, Joined, LogonSessionWithProcesses, ServerSessionWithConnections,
};

use crate::cim::{CimClass, ClassPath, FromInstance, Instance, Reference};
use crate::error::{Error, Result};
use crate::transport::{HttpTransport, Resend};
use crate::wsman::{
    Addressing, Filter, Identity, MessageId, ResponseBody, parse_response, request,
};
use addressing::Resource;
use tracing::Instrument;

/// A client for one WinRM endpoint. Cheap to clone: clones share the configuration and the
/// HTTP connection pool.
///
/// ```no_run
/// # async fn run() -> winrm_sessions::Result<()> {
/// use futures_util::TryStreamExt;
/// use winrm_sessions::{Client, Credentials, classes::SmbSession};
///
/// let client = Client::builder("fs01.corp.example")
///     .https(true)
///     .credentials(Credentials::new("auditor", "secret"))
///     .build()?;
/// let mut sessions = client.enumerate::<SmbSession>();
/// while let Some(s) = sessions.try_next().await? {
///     println!("{} {:?} {:?}", s.session_id, s.client_user_name, s.client_computer_name);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    config: Config,
    transport: HttpTransport,
    /// The form of class addresses this host takes, once learnt from its `Identify` answer.
    style: std::sync::OnceLock<addressing::Style>,
}

impl Client {
    /// Starts configuring a client for a target: a host name, an address, `host:port`, or a full
    /// `http(s)://host:port/wsman` URL.
    pub fn builder(target: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(target)
    }

    /// The target as given to the builder.
    pub fn target(&self) -> &str {
        &self.inner.config.target
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &url::Url {
        &self.inner.config.endpoint
    }

    /// A client for another target with the same settings, sharing what was prepared when this
    /// one was built: TLS material, credentials (the NT hash, the keytab key, the credential
    /// cache, a ticket-granting ticket already obtained), krb5.conf and the recording hook.
    /// This is how a fleet reaches many hosts without reading anything again.
    ///
    /// # Errors
    ///
    /// A config error when the target is not a valid host or URL;
    /// [`ErrorKind::PlaintextBasicRefused`](crate::ErrorKind::PlaintextBasicRefused) when this client sends Basic credentials, was not
    /// allowed to over plain HTTP, and `target` is a plain HTTP endpoint.
    pub fn with_target(&self, target: impl Into<String>) -> Result<Client> {
        let target = target.into();
        let endpoint = endpoint_url(&target, self.inner.config.https)
            .map_err(|e| e.with_target(target.clone()))?;
        if self.inner.config.basic_needs_https && endpoint.scheme() != "https" {
            // The template's HTTPS does not make this host's plain HTTP safe.
            return Err(Error::new(crate::ErrorKind::PlaintextBasicRefused).with_target(target));
        }
        let mut config = self.inner.config.clone();
        config.target = target;
        config.endpoint = endpoint.clone();
        Ok(Client {
            inner: Arc::new(ClientInner {
                transport: self.inner.transport.retarget(endpoint),
                config,
                style: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Waits until every enumeration of this client and of the clients sharing its
    /// configuration ([`Client::with_target`], a fleet) has ended or, dropped early, been
    /// released (the Release is sent in the background); at most `timeout`. True when none is
    /// left. For a program about to exit after stopping enumerations (a fleet or watch dropped
    /// on Ctrl-C): the server would otherwise keep them until they time out.
    pub async fn wait_for_releases(&self, timeout: std::time::Duration) -> bool {
        self.inner.transport.releases_done(timeout).await
    }

    /// Keeps the last problem met and got past on this client's target (see
    /// [`HttpTransport::note_problem`]).
    pub(crate) fn note_problem(&self, problem: Error) {
        self.inner.transport.note_problem(problem);
    }

    /// The last problem met and got past, taken.
    pub(crate) fn take_problem(&self) -> Option<Error> {
        self.inner.transport.take_problem()
    }

    fn addressing(&self) -> Addressing {
        let config = &self.inner.config;
        Addressing {
            to: config.endpoint.to_string(),
            max_envelope_size: config.max_envelope_size,
            operation_timeout: config.operation_timeout,
            locale: config.locale.clone(),
        }
    }

    /// All instances of a typed class (in WMI's form of address unless
    /// [`ClassAddressing::Dmtf`] was chosen).
    pub fn enumerate<T: CimClass + FromInstance>(&self) -> Enumeration<T> {
        let resource = Resource::Class {
            path: T::class_path(),
            windows: true,
        };
        Enumeration::new(self.clone(), resource, None)
    }

    /// All instances of any class, as dynamic [`Instance`] values. Under
    /// [`ClassAddressing::Auto`], unless the class is one only Windows has, the server is asked
    /// who it is first (once per client).
    pub fn enumerate_class(&self, class: &ClassPath) -> Enumeration<Instance> {
        Enumeration::new(self.clone(), class_resource(class), None)
    }

    /// Every instance of a class, gathered into `S` as each page is parsed (the items `S`
    /// takes as one scan read them are never built into instances): what a watch's snapshot
    /// of a host is made from.
    pub(crate) async fn gather_class<S: PageSink>(&self, class: &ClassPath) -> Result<S> {
        enumeration::Core::new(self.clone(), class_resource(class), None)
            .gather()
            .await
    }

    /// The results of a WQL query in a namespace (`root/cimv2`), typed or as [`Instance`].
    /// Under [`ClassAddressing::Auto`], unless the query's class is one only Windows has, the
    /// server is asked who it is first (once per client).
    pub fn query<T: FromInstance>(
        &self,
        namespace: &str,
        wql: impl Into<String>,
    ) -> Enumeration<T> {
        let wql = wql.into();
        let namespace = crate::cim::normalize_namespace(namespace);
        let class = crate::wsman::enumeration_from_class(&wql).unwrap_or_default();
        let resource = Resource::Query {
            windows: addressing::is_windows_class(&namespace, &class),
            namespace,
        };
        Enumeration::new(self.clone(), resource, Some(Filter::Wql(wql)))
    }

    /// The form of class addresses, if already known for this host.
    fn known_style(&self) -> Option<addressing::Style> {
        self.inner.style.get().copied()
    }

    /// The form of class addresses this host takes: from its `Identify` answer, asked once. A
    /// server that answers Identify with a fault (it does not implement it) is taken for
    /// Windows; any other failure is the enumeration's.
    async fn style(&self) -> Result<addressing::Style> {
        if let Some(style) = self.known_style() {
            return Ok(style);
        }
        let style = match self.identify().await {
            Ok(identity) => addressing::Style::for_identity(&identity),
            Err(e) if e.fault().is_some() => addressing::Style::Wmi,
            Err(e) => return Err(e),
        };
        tracing::debug!(?style, "Class addresses for this host");
        Ok(*self.inner.style.get_or_init(|| style))
    }

    /// The instance a reference points to.
    pub async fn get<T: FromInstance>(&self, reference: &Reference) -> Result<T> {
        let envelope = request::get(&self.addressing(), reference, &MessageId::random());
        let instance = match self.exchange(envelope).await? {
            ResponseBody::Resource(instance) => instance,
            other => {
                return Err(Error::protocol(format!(
                    "expected the instance in a GetResponse, got {other:?}"
                ))
                .with_target(self.target()));
            }
        };
        T::from_instance(instance).map_err(|e| Error::from(e).with_target(self.target()))
    }

    /// What the server says about itself (`wsmid:Identify`).
    pub async fn identify(&self) -> Result<Identity> {
        match self.exchange(request::identify()).await? {
            ResponseBody::Identify(identity) => Ok(identity),
            _ => Err(Error::protocol("expected an IdentifyResponse").with_target(self.target())),
        }
    }

    /// Sends an envelope and parses the response; a fault becomes an error.
    async fn exchange(&self, envelope: String) -> Result<ResponseBody> {
        self.exchange_with(envelope, Resend::Allowed).await
    }

    async fn exchange_with(&self, envelope: String, resend: Resend) -> Result<ResponseBody> {
        let span = operation_span(self.target(), "request");
        if !span.is_disabled() {
            let action = request_action(&envelope);
            span.record("op", action.rsplit('/').next().unwrap_or(action));
        }
        let result = async {
            let body = self.inner.transport.post(envelope, resend).await?;
            let response = parse_response(&body)?;
            match response.body {
                ResponseBody::Fault(fault) => Err(crate::ErrorKind::Fault(fault).into()),
                other => Ok(other),
            }
        };
        let started = std::time::Instant::now();
        let result: Result<ResponseBody> = result.instrument(span.clone()).await;
        let _entered = span.enter();
        match &result {
            Ok(_) => tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "Done"),
            Err(e) => tracing::debug!(error = %e.report(), "Failed"),
        }
        result.map_err(|e| e.with_target(self.target()))
    }
}

/// A debug span for one operation on `target` (`op` recorded by the caller). The target is left
/// out inside a fleet's `host` span, which names it already.
pub(crate) fn operation_span(target: &str, name: &'static str) -> tracing::Span {
    let span = match name {
        "enumeration" => tracing::debug_span!(
            "enumeration",
            class = tracing::field::Empty,
            target = tracing::field::Empty
        ),
        _ => tracing::debug_span!(
            "request",
            op = tracing::field::Empty,
            target = tracing::field::Empty
        ),
    };
    if !span.is_disabled()
        && tracing::Span::current()
            .metadata()
            .is_none_or(|m| m.name() != "host")
    {
        span.record("target", target);
    }
    span
}

/// The `a:Action` of an envelope this crate wrote, for the logs.
fn request_action(envelope: &str) -> &str {
    envelope
        .split_once("<a:Action")
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once('<'))
        .map_or("", |(action, _)| action)
}

impl FromInstance for Instance {
    fn from_instance(instance: Instance) -> std::result::Result<Self, crate::cim::DecodeError> {
        Ok(instance)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.inner.config.target)
            .field("endpoint", &self.inner.config.endpoint.as_str())
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

/// A class, addressed as Windows addresses its own classes when it is one only Windows has.
fn class_resource(class: &ClassPath) -> Resource {
    Resource::Class {
        windows: addressing::is_windows_class(class.namespace(), class.class_name()),
        path: class.clone(),
    }
}
