//! Many hosts at once: one configuration, a bounded number of hosts in flight, a deadline per
//! host, retries with backoff for what is worth retrying, and outcomes streamed as they arrive.
//!
//! ```no_run
//! # async fn run() -> winrm_sessions::Result<()> {
//! use futures_util::StreamExt;
//! use winrm_sessions::fleet::{Fleet, HostEvent};
//! use winrm_sessions::{Client, Credentials, classes::SmbSession};
//!
//! let credentials = Credentials::new(r"CORP\auditor", "secret");
//! let fleet = Fleet::new(move |target| Client::builder(target).credentials(credentials.clone()).build())
//!     .concurrency(64);
//! let mut events = fleet.enumerate::<SmbSession>(["fs01", "fs02", "fs03"]);
//! while let Some(event) = events.next().await {
//!     match event {
//!         HostEvent::Item { target, item } => println!("{target}: {}", item.session_id),
//!         // The error names its target already.
//!         HostEvent::Failed { error, .. } => eprintln!("{error}"),
//!         HostEvent::Done { target, items, .. } => eprintln!("{target}: {items} sessions"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Dropping the stream cancels the hosts still running; their open enumerations are released.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cim::{CimClass, FromInstance};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};

type Connect = dyn Fn(&str) -> Result<Client> + Send + Sync;

/// What happened on one host.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostEvent<T> {
    /// An item from a host.
    Item {
        /// The target, as given.
        target: String,
        /// The item.
        item: T,
    },
    /// One item of a host did not fit its type; the host goes on.
    ItemError {
        /// The target.
        target: String,
        /// What did not fit.
        error: Error,
    },
    /// The host failed (after retries, or at its deadline). Items it sent before failing were
    /// delivered; a retry never repeats an item.
    Failed {
        /// The target.
        target: String,
        /// Why, naming the target.
        error: Error,
        /// How long it took to fail, retries included.
        elapsed: Duration,
    },
    /// The host answered completely.
    Done {
        /// The target.
        target: String,
        /// Items it sent.
        items: usize,
        /// How long it took, retries included.
        elapsed: Duration,
    },
}

/// When to try a host again: only for errors that are worth it ([`Error::is_retryable`]: a
/// refused or failed connection, a timeout, a quota fault) and only when nothing was delivered
/// yet in that attempt. Never for authentication failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Pause before the first retry; doubled each time.
    pub backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (1-based), with a jitter of up to a quarter that
    /// spreads hosts apart (derived from the target, so runs are reproducible).
    fn pause(&self, retry: u32, target: &str) -> Duration {
        let base = self
            .backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        let hash = target
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        base + base / 4 * (hash % 100) / 100
    }
}

/// Runs the same work on many hosts.
#[derive(Clone)]
#[must_use]
pub struct Fleet {
    connect: Arc<Connect>,
    concurrency: usize,
    deadline: Duration,
    retry: RetryPolicy,
    buffer: usize,
}

impl Fleet {
    /// A fleet whose clients come from `connect` (the target as given → a client).
    /// Defaults: 32 hosts at a time, 5 minutes per host, [`RetryPolicy::default`].
    pub fn new(connect: impl Fn(&str) -> Result<Client> + Send + Sync + 'static) -> Self {
        Self {
            connect: Arc::new(connect),
            concurrency: 32,
            deadline: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            buffer: 64,
        }
    }

    /// A fleet whose clients are `template` retargeted ([`Client::with_target`]): every host
    /// shares what the template prepared (credentials, TLS material, Kerberos tickets).
    pub fn from_client(template: Client) -> Self {
        Self::new(move |target| template.with_target(target))
    }

    /// Hosts in flight at once (at least 1). No more tasks than this exist at any time,
    /// whatever the number of targets.
    pub fn concurrency(mut self, hosts: usize) -> Self {
        self.concurrency = hosts.max(1);
        self
    }

    /// How long one host may take, retries included; past it the host fails with a timeout.
    pub fn per_host_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Events held between the hosts and the consumer (at least 1; default 64). When the
    /// consumer is slower, each host waits with its next item in hand: memory is at most one
    /// item per host in flight plus this many, and the buffer never limits how many hosts have
    /// requests on the wire (that is [`Fleet::concurrency`]).
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// This fleet, with the clients of as many targets as it has hosts in flight taken from
    /// `kept` (made and put there the first time): what a watch's polls share, so that a host's
    /// next poll goes out on the connection, and under the authentication, its last poll left
    /// open.
    pub(crate) fn keeping(&self, kept: &KeptClients) -> Fleet {
        let connect = self.connect.clone();
        let kept = kept.clone();
        let room = self.concurrency;
        let mut fleet = self.clone();
        fleet.connect = Arc::new(move |target: &str| {
            let mut clients = kept.lock();
            if let Some(client) = clients.get(target) {
                // What this client met in an earlier run is not what the next deadline should
                // report.
                client.take_problem();
                return Ok(client.clone());
            }
            let client = connect(target)?;
            if clients.len() < room {
                clients.insert(target.to_owned(), client.clone());
            }
            Ok(client)
        });
        fleet
    }

    /// Enumerates a typed class on every target.
    pub fn enumerate<T>(
        &self,
        targets: impl IntoIterator<Item = impl Into<String>>,
    ) -> FleetStream<T>
    where
        T: CimClass + FromInstance + Send + 'static,
    {
        self.run(targets, |client: &Client| client.enumerate::<T>())
    }

    /// Runs a stream of your choice on every target: an enumeration (a class, a query,
    /// associations), its [`crate::Enumeration::pages`], a [`Client::join`]. Items arrive as
    /// [`HostEvent::Item`]; an item that did not decode is an [`HostEvent::ItemError`] and the
    /// host goes on; any other error ends the host (retried only while it has delivered
    /// nothing).
    pub fn run<T, S, F>(
        &self,
        targets: impl IntoIterator<Item = impl Into<String>>,
        make: F,
    ) -> FleetStream<T>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T>> + Send + 'static,
        F: Fn(&Client) -> S + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        self.spawn_hosts(targets, move |fleet, target, client, tx| {
            let make = make.clone();
            async move { fleet.host(&target, &client, &*make, &tx).await }
        })
    }

    /// Runs `work` on every target's client (with retries and the deadline) and delivers its
    /// result as one item per host: for work that is not a stream.
    pub fn map<R, F, Fut>(
        &self,
        targets: impl IntoIterator<Item = impl Into<String>>,
        work: F,
    ) -> FleetStream<R>
    where
        R: Send + 'static,
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<R>> + Send,
    {
        let work = Arc::new(work);
        self.spawn_hosts(targets, move |fleet, target, client, tx| {
            let work = work.clone();
            async move {
                let mut attempt = 1;
                let item = loop {
                    match work(client.clone()).await {
                        Ok(result) => break result,
                        Err(e) if e.is_retryable() && attempt < fleet.retry.attempts => {
                            fleet.wait_to_retry(&client, attempt, e).await;
                            attempt += 1;
                        }
                        Err(e) => return Err(e),
                    }
                };
                let _ = tx.send(HostEvent::Item { target, item }).await;
                Ok(1)
            }
        })
    }

    /// Before retry number `attempt`: the failure is logged and kept as the host's last
    /// problem (what its deadline reports), then the backoff passes.
    async fn wait_to_retry(&self, client: &Client, attempt: u32, failure: Error) {
        let pause = self.retry.pause(attempt, client.target());
        tracing::info!(
            attempt,
            pause_ms = pause.as_millis() as u64,
            error = %failure.report(),
            "Trying the host again"
        );
        client.note_problem(failure);
        tokio::time::sleep(pause).await;
    }

    /// A driver task that keeps at most `concurrency` host tasks alive: each builds its client,
    /// runs `per_host` within the deadline and reports `Done` (with the count it returns) or
    /// `Failed`. Targets are taken one by one as hosts finish, so memory follows the
    /// concurrency, not the length of the list.
    fn spawn_hosts<T, F, Fut>(
        &self,
        targets: impl IntoIterator<Item = impl Into<String>>,
        per_host: F,
    ) -> FleetStream<T>
    where
        T: Send + 'static,
        F: Fn(Fleet, String, Client, mpsc::Sender<HostEvent<T>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<usize>> + Send + 'static,
    {
        // Bounded: a slow consumer slows the hosts instead of growing memory.
        let (tx, rx) = mpsc::channel(self.buffer);
        let targets: Vec<String> = targets.into_iter().map(Into::into).collect();
        let fleet = self.clone();
        let driver = tokio::spawn(async move {
            let mut running = JoinSet::new();
            let mut pending = targets.into_iter();
            loop {
                while running.len() < fleet.concurrency {
                    let Some(target) = pending.next() else { break };
                    let span = tracing::info_span!("host", %target);
                    let tx = tx.clone();
                    match (fleet.connect)(&target) {
                        Ok(client) => {
                            let work =
                                per_host(fleet.clone(), target.clone(), client.clone(), tx.clone());
                            let outcome = host_outcome(target, client, fleet.deadline, work, tx);
                            running.spawn(outcome.instrument(span));
                        }
                        Err(error) => {
                            running.spawn(
                                async move {
                                    let error = error.with_target(target.clone());
                                    tracing::info!(error = %error.report(), "Host failed");
                                    let event = HostEvent::Failed {
                                        target,
                                        error,
                                        elapsed: Duration::ZERO,
                                    };
                                    let _ = tx.send(event).await;
                                }
                                .instrument(span),
                            );
                        }
                    }
                }
                if running.join_next().await.is_none() {
                    return;
                }
            }
        });
        FleetStream {
            rx,
            _driver: AbortOnDrop(driver),
        }
    }

    /// One host, with retries; returns the number of items delivered.
    async fn host<T, S, F>(
        &self,
        target: &str,
        client: &Client,
        make: &F,
        tx: &mpsc::Sender<HostEvent<T>>,
    ) -> Result<usize>
    where
        S: Stream<Item = Result<T>> + Send,
        F: Fn(&Client) -> S,
    {
        let mut delivered = 0usize;
        let mut attempt = 1;
        loop {
            let mut stream = std::pin::pin!(make(client));
            let mut this_attempt = 0usize;
            let failure = loop {
                // The next item first, then room for it: a host whose consumer is slow holds
                // one item (one page, for page streams) and keeps no slot of the channel while
                // it waits for its server, so every host in flight has its request on the wire
                // whatever the consumer and the channel's size. (Reserving first let the hosts
                // queue for the channel's slots while holding them through a round trip: with
                // one slot, the fleet ran one host at a time.)
                let event = match stream.next().await {
                    None => return Ok(delivered),
                    Some(Ok(item)) => {
                        this_attempt += 1;
                        delivered += 1;
                        HostEvent::Item {
                            target: target.to_owned(),
                            item,
                        }
                    }
                    // One item did not fit its type: report it and go on.
                    Some(Err(error)) if matches!(error.kind(), ErrorKind::Decode(_)) => {
                        HostEvent::ItemError {
                            target: target.to_owned(),
                            error,
                        }
                    }
                    Some(Err(error)) => break error,
                };
                if tx.send(event).await.is_err() {
                    return Ok(delivered); // the consumer went away: stop
                }
            };
            if !failure.is_retryable() || this_attempt > 0 || attempt >= self.retry.attempts {
                return Err(failure);
            }
            self.wait_to_retry(client, attempt, failure).await;
            attempt += 1;
        }
    }
}

/// Clients kept from one run of a fleet to the next ([`Fleet::keeping`]), each with its idle
/// connection: some kilobytes and a descriptor a host, so at most as many hosts as the fleet
/// has in flight keep theirs (the first targets to ask), and memory still follows the
/// concurrency, not the length of the list.
#[derive(Clone, Default)]
pub(crate) struct KeptClients {
    clients: Arc<std::sync::Mutex<std::collections::HashMap<String, Client>>>,
}

impl KeptClients {
    /// Drops `target`'s client: its next run starts from a new one (new connection, new
    /// address lookup, whatever the fleet's `connect` makes now).
    pub(crate) fn forget(&self, target: &str) {
        self.lock().remove(target);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Client>> {
        // A panic elsewhere while it was held leaves the map whole.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs one host's work within the deadline and sends its outcome. Past the deadline, the
/// error carries the last problem the host met (a retry's reason, a Pull the server kept
/// timing out, a lost connection).
async fn host_outcome<T>(
    target: String,
    client: Client,
    deadline: Duration,
    work: impl std::future::Future<Output = Result<usize>>,
    tx: mpsc::Sender<HostEvent<T>>,
) {
    let started = Instant::now();
    let event = match tokio::time::timeout(deadline, work).await {
        Ok(Ok(items)) => {
            // What an item is (a session, a page, a join) is the caller's to say: the caller
            // has `HostEvent::Done` and logs it in its own words; this line is for debugging.
            tracing::debug!(
                stream_items = items,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Host done"
            );
            HostEvent::Done {
                target,
                items,
                elapsed: started.elapsed(),
            }
        }
        Ok(Err(error)) => {
            let error = error.with_target(target.clone());
            tracing::info!(error = %error.report(), "Host failed");
            HostEvent::Failed {
                error,
                target,
                elapsed: started.elapsed(),
            }
        }
        Err(_) => {
            let last = client.take_problem().map(|e| Box::new(e.without_target()));
            let error = Error::new(ErrorKind::Deadline {
                after: deadline,
                last,
            })
            .with_target(target.clone());
            tracing::info!(error = %error.report(), "Host failed");
            HostEvent::Failed {
                error,
                target,
                elapsed: started.elapsed(),
            }
        }
    };
    let _ = tx.send(event).await;
}

/// Aborts the driver (and with it every host task) when the stream is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The events of a fleet run, as they arrive; the stream ends when every host is done.
/// Dropping it cancels the hosts still running.
pub struct FleetStream<T> {
    rx: mpsc::Receiver<HostEvent<T>>,
    _driver: AbortOnDrop,
}

impl<T> Stream for FleetStream<T> {
    type Item = HostEvent<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<HostEvent<T>>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::Credentials;

    /// A fleet of clients that are never connected: the work of these tests is a closure.
    fn fleet(attempts: u32, backoff: Duration) -> Fleet {
        Fleet::new(|target| {
            Client::builder(target)
                .credentials(Credentials::new("user", "secret"))
                .build()
        })
        .retry(RetryPolicy {
            attempts,
            backoff,
            max_backoff: backoff,
        })
    }

    fn timed_out() -> Error {
        Error::new(ErrorKind::Timeout {
            phase: "waiting for the response",
            after: Duration::from_secs(1),
        })
    }

    #[test]
    fn kept_clients_come_back_without_their_last_problem_and_no_more_than_fit_in_flight() {
        let made = Arc::new(AtomicU32::new(0));
        let counting = made.clone();
        let fleet = Fleet::new(move |target| {
            counting.fetch_add(1, Ordering::SeqCst);
            Client::builder(target)
                .credentials(Credentials::new("user", "secret"))
                .build()
        })
        .concurrency(2);
        let kept = KeptClients::default();
        let keeping = fleet.keeping(&kept);
        let client = |target: &str| (keeping.connect)(target).unwrap();
        client("a").note_problem(timed_out());
        let again = client("a");
        assert_eq!(made.load(Ordering::SeqCst), 1, "a's client was kept");
        assert!(
            again.take_problem().is_none(),
            "an earlier run's problem is not this one's"
        );
        // Room for two, a and b: c is made each time.
        for target in ["b", "c", "b", "c"] {
            assert_eq!(client(target).target(), target);
        }
        assert_eq!(made.load(Ordering::SeqCst), 1 + 1 + 2);
        kept.forget("a");
        client("a");
        assert_eq!(made.load(Ordering::SeqCst), 5, "a forgotten: made anew");
    }

    /// Runs `map` on one host whose work fails `failures` times (with `failure`) before it
    /// answers 7; returns the host's events and how many times the work ran.
    async fn map_one(
        fleet: &Fleet,
        failures: u32,
        failure: fn() -> Error,
    ) -> (Vec<HostEvent<u32>>, u32) {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let events = fleet.map(["fs01"], move |_client| {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run <= failures {
                    Err(failure())
                } else {
                    Ok(7)
                }
            }
        });
        let events = tokio::time::timeout(Duration::from_secs(20), events.collect::<Vec<_>>())
            .await
            .expect("the host ends");
        (events, runs.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn map_retries_what_is_retryable_as_many_times_as_the_policy_says() {
        let fleet = fleet(3, Duration::from_millis(1));
        // Two failures, then an answer: the third attempt delivers it.
        let (events, runs) = map_one(&fleet, 2, timed_out).await;
        assert_eq!(runs, 3);
        assert!(
            matches!(events[0], HostEvent::Item { item: 7, .. }),
            "{events:?}"
        );
        assert!(
            matches!(events[1], HostEvent::Done { items: 1, .. }),
            "{events:?}"
        );
        // Three failures: no fourth attempt, the last failure is the host's.
        let (events, runs) = map_one(&fleet, 3, timed_out).await;
        assert_eq!(runs, 3);
        match &events[..] {
            [HostEvent::Failed { error, .. }] => {
                assert!(
                    matches!(error.kind(), ErrorKind::Timeout { .. }),
                    "{error:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Not retryable: one attempt.
        let refused = || Error::config("refused");
        let (events, runs) = map_one(&fleet, 1, refused).await;
        assert_eq!(runs, 1);
        assert!(
            matches!(events[..], [HostEvent::Failed { .. }]),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn an_item_that_does_not_decode_is_reported_and_the_host_goes_on() {
        let fleet = fleet(3, Duration::from_millis(1));
        let events = fleet.run(["fs01"], |_client: &Client| {
            let undecodable = Error::from(crate::cim::DecodeError::new("not a number"));
            futures_util::stream::iter([Ok(1u32), Err(undecodable), Ok(2)])
        });
        let events = tokio::time::timeout(Duration::from_secs(20), events.collect::<Vec<_>>())
            .await
            .expect("the host ends");
        match &events[..] {
            [
                HostEvent::Item { item: 1, .. },
                HostEvent::ItemError { error, .. },
                HostEvent::Item { item: 2, .. },
                HostEvent::Done { items: 2, .. },
            ] => assert!(matches!(error.kind(), ErrorKind::Decode(_)), "{error:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn dropping_the_stream_cancels_the_hosts_in_flight() {
        // A host whose stream never ends holds one end of a channel: when its task is
        // cancelled, the other end hears the channel close.
        let (held, cancelled) = tokio::sync::oneshot::channel::<()>();
        let held = std::sync::Mutex::new(Some(held));
        let events = fleet(1, Duration::from_millis(1)).run(["fs01"], move |_client: &Client| {
            let held = held.lock().unwrap().take();
            futures_util::stream::pending::<Result<u32>>().map(move |item| {
                let _ = &held;
                item
            })
        });
        drop(events);
        let heard = tokio::time::timeout(Duration::from_secs(20), cancelled).await;
        assert!(
            matches!(heard, Ok(Err(_))),
            "the host was cancelled with its stream: {heard:?}"
        );
    }

    #[tokio::test]
    async fn a_retry_waits_its_backoff_and_the_deadline_names_why_it_was_waiting() {
        // The backoff is longer than the host's deadline: the host ends in its pause, and the
        // deadline's error carries the failure that made it pause.
        let fleet = fleet(3, Duration::from_secs(30)).per_host_deadline(Duration::from_millis(200));
        let (events, runs) = map_one(&fleet, 3, timed_out).await;
        assert_eq!(runs, 1, "no second attempt before the pause ends");
        match &events[..] {
            [HostEvent::Failed { error, .. }] => match error.kind() {
                ErrorKind::Deadline {
                    last: Some(last), ..
                } => {
                    assert!(matches!(last.kind(), ErrorKind::Timeout { .. }), "{last:?}")
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let policy = RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        let p1 = policy.pause(1, "fs01");
        let p2 = policy.pause(2, "fs01");
        let p4 = policy.pause(4, "fs01");
        assert!(
            p1 >= Duration::from_millis(100) && p1 <= Duration::from_millis(125),
            "{p1:?}"
        );
        assert!(
            p2 >= Duration::from_millis(200) && p2 <= Duration::from_millis(250),
            "{p2:?}"
        );
        assert!(
            p4 >= Duration::from_millis(300) && p4 <= Duration::from_millis(375),
            "{p4:?}"
        );
        assert_eq!(
            policy.pause(3, "fs01"),
            policy.pause(3, "fs01"),
            "reproducible"
        );
        // The jitter spreads hosts over the quarter above the backoff, not a sliver of it.
        let pauses: Vec<Duration> = (0..20)
            .map(|i| policy.pause(1, &format!("fs{i:02}")))
            .collect();
        let (least, most) = (pauses.iter().min().unwrap(), pauses.iter().max().unwrap());
        assert!(
            *most - *least >= Duration::from_millis(10) && *most <= Duration::from_millis(125),
            "{pauses:?}"
        );
    }
}
