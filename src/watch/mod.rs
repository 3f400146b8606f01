//! Sessions over time: every host of a fleet polled each interval, and what changed between two
//! successful polls of a host as a `Stream` of events.
//!
//! ```no_run
//! # async fn run() -> winrm_sessions::Result<()> {
//! use std::time::Duration;
//! use futures_util::StreamExt;
//! use winrm_sessions::fleet::Fleet;
//! use winrm_sessions::watch::{Change, Watch, WatchEvent};
//! use winrm_sessions::{Client, Credentials, classes::SmbSession};
//!
//! let template = Client::builder("fs01")
//!     .credentials(Credentials::new(r"CORP\auditor", "secret"))
//!     .build()?;
//! let mut events = Watch::<SmbSession>::new(Fleet::from_client(template))
//!     .every(Duration::from_secs(30))
//!     .start(["fs01", "fs02"]);
//! while let Some(event) = events.next().await {
//!     match event {
//!         WatchEvent::Session(e) if e.change == Change::Opened => {
//!             println!("{}: {:?} opened a session", e.target, e.session.client_user_name)
//!         }
//!         WatchEvent::Polled(poll) if poll.outcome.is_err() => println!("{} unreachable", poll.target),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! A session's identity is its class's key properties on its target ([`SessionKey`]). The first
//! successful poll of a host reports what is there ([`Change::Present`]); later ones what
//! appeared ([`Change::Opened`]) and what went away ([`Change::Closed`], with the session as last
//! seen). A failed poll is a [`Poll`] with an error and never closes anything: the next
//! successful poll is compared with the last successful one. With the `store` feature,
//! `store::Store` keeps the history in SQLite and resumes a watch where the last one stopped;
//! with `metrics`, `metrics::Metrics` exposes it to Prometheus.

#[cfg(feature = "store")]
mod codec;
#[cfg(feature = "metrics")]
pub mod metrics;
mod snapshot;
#[cfg(feature = "store")]
pub mod store;
mod tracker;

use std::pin::Pin;
use std::task::{Context, Poll as TaskPoll};
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::cim::{CimClass, ClassPath, FromInstance, Instance};
use crate::error::{Error, Result};
use crate::fleet::{Fleet, HostEvent, KeptClients};
use snapshot::Snapshot;
use tracker::Tracker;
pub use tracker::{Change, SessionKey};

/// Polls a fleet's hosts every interval and reports what changed.
#[must_use]
pub struct Watch<T> {
    fleet: Fleet,
    class: ClassPath,
    interval: Duration,
    polls: Option<u64>,
    unchanged: bool,
    tracker: Tracker,
    _typed: std::marker::PhantomData<fn() -> T>,
}

impl<T: CimClass + FromInstance + Clone + Send + 'static> Watch<T> {
    /// Watches the sessions of a typed class; every minute unless [`Watch::every`] says.
    pub fn new(fleet: Fleet) -> Self {
        Self::of_class(fleet, T::class_path())
    }
}

impl Watch<Instance> {
    /// Watches any class, as dynamic instances.
    pub fn class(fleet: Fleet, class: ClassPath) -> Self {
        Self::of_class(fleet, class)
    }
}

impl<T: FromInstance + Clone + Send + 'static> Watch<T> {
    fn of_class(fleet: Fleet, class: ClassPath) -> Self {
        Self {
            fleet,
            class,
            interval: Duration::from_secs(60),
            polls: None,
            unchanged: false,
            tracker: Tracker::default(),
            _typed: std::marker::PhantomData,
        }
    }

    /// Time from the start of one poll of every host to the start of the next (at least 1 ms).
    /// A poll that takes longer delays the next; polls never overlap. Under 90 s, as many hosts
    /// as the fleet has in flight (the first targets) keep their client, and with it their
    /// connection and authenticated session, from one poll to the next; a host whose poll
    /// failed gets a new one from the fleet.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Stops after `polls` polls of every host (at least 1); without it, the stream never ends.
    pub fn polls(mut self, polls: u64) -> Self {
        self.polls = Some(polls.max(1));
        self
    }

    /// Reports the sessions still there at each poll too ([`Change::Unchanged`]): what a store
    /// needs to keep each session's record as last seen.
    pub fn report_unchanged(mut self, report: bool) -> Self {
        self.unchanged = report;
        self
    }

    /// Starts from what an earlier watch last saw open on `target` (from a store), so that
    /// sessions still there are not reported as opened again, and those that went away while
    /// nobody watched are reported closed.
    ///
    /// # Errors
    ///
    /// A decode error when an instance does not fit `T`.
    pub fn resume(mut self, target: &str, sessions: Vec<Instance>) -> Result<Self> {
        for instance in &sessions {
            T::from_instance(instance.clone()).map_err(Error::from)?;
        }
        self.tracker.resume(target, sessions);
        Ok(self)
    }

    /// Starts polling `targets`. Dropping the stream stops the watch and releases the
    /// enumerations in flight.
    pub fn start(self, targets: impl IntoIterator<Item = impl Into<String>>) -> WatchStream<T> {
        let targets: Vec<String> = targets.into_iter().map(Into::into).collect();
        let (tx, rx) = mpsc::channel(1024);
        let driver = tokio::spawn(drive(self, targets, tx));
        WatchStream {
            rx,
            _driver: crate::fleet::AbortOnDrop(driver),
        }
    }
}

/// What a watch reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchEvent<T> {
    /// A session is there, appeared or went away.
    Session(SessionEvent<T>),
    /// A host's poll ended, right after the session events it brought: one host's events and
    /// its `Polled` come together, never interleaved with another host's.
    Polled(Poll),
}

/// A session that is present, opened or closed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionEvent<T> {
    /// What happened.
    pub change: Change,
    /// The target, as given.
    pub target: String,
    /// The session's identity on it.
    pub key: SessionKey,
    /// The poll that saw it (1 for the first).
    pub poll: u64,
    /// When the poll's answer arrived.
    pub at: SystemTime,
    /// The session as this poll saw it (as last seen, for [`Change::Closed`]).
    pub session: T,
}

/// The outcome of one poll of one host.
#[derive(Debug)]
#[non_exhaustive]
pub struct Poll {
    /// The target, as given.
    pub target: String,
    /// The poll's number (1 for the first).
    pub number: u64,
    /// When it ended.
    pub at: SystemTime,
    /// How long it took, retries included.
    pub duration: Duration,
    /// The sessions open on the host, or why it could not be polled (the host is unreachable
    /// for this poll; nothing is reported closed because of it).
    pub outcome: Result<usize>,
}

/// The events of a [`Watch`]; see [`Watch::start`].
pub struct WatchStream<T> {
    rx: mpsc::Receiver<WatchEvent<T>>,
    _driver: crate::fleet::AbortOnDrop,
}

impl<T> Stream for WatchStream<T> {
    type Item = WatchEvent<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The loop: each tick, every host polled through the fleet (its concurrency, deadline and
/// retries), each answer diffed against that host's last successful poll.
async fn drive<T: FromInstance + Clone + Send + 'static>(
    mut watch: Watch<T>,
    targets: Vec<String>,
    tx: mpsc::Sender<WatchEvent<T>>,
) {
    // A host's client (its connection, its authenticated session, the addressing it learnt)
    // is kept from one poll to the next when the next poll comes before the connection would
    // be given up as idle: a poll is then its requests alone, with no new connection, no new
    // handshake and no new logon on the server. A failed poll drops it.
    let kept = KeptClients::default();
    let fleet = if watch.interval < crate::transport::IDLE_FOR {
        watch.fleet.keeping(&kept)
    } else {
        watch.fleet.clone()
    };
    let mut ticker = tokio::time::interval(watch.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut number = 0u64;
    while watch.polls.is_none_or(|polls| number < polls) {
        ticker.tick().await;
        number += 1;
        tracing::debug!(poll = number, hosts = targets.len(), "Polling");
        let class = watch.class.clone();
        // Each host's answer becomes its snapshot as each page is parsed: a host in flight
        // holds a page and its snapshot, never its whole answer as instances.
        let mut hosts = fleet.map(targets.clone(), move |client| {
            let class = class.clone();
            async move {
                let snapshot: Snapshot = client.gather_class(&class).await?;
                Ok(snapshot.finish())
            }
        });
        // A host's snapshot waits here until its poll ends; then its session events and its
        // `Polled` go out together, so a consumer that keeps a host's events until its poll
        // ends (a store) holds one host's, not those of every host whose answer came first.
        let mut answered: std::collections::HashMap<String, Snapshot> = Default::default();
        while let Some(event) = hosts.next().await {
            let events = match event {
                HostEvent::Item { target, item } => {
                    answered.insert(target, item);
                    Vec::new()
                }
                HostEvent::Done {
                    target, elapsed, ..
                } => {
                    // `Fleet::map` delivers a host's answer before its `Done`; without one
                    // there is nothing to compare (never an empty poll closing everything).
                    let Some(found) = answered.remove(&target) else {
                        continue;
                    };
                    let at = SystemTime::now();
                    let observed = watch.tracker.observe(&target, found, watch.unchanged, |i| {
                        T::from_instance(i).map_err(Error::from)
                    });
                    match observed {
                        Ok(changes) => {
                            let mut events: Vec<WatchEvent<T>> = changes
                                .into_iter()
                                .map(|(change, key, session)| {
                                    WatchEvent::Session(SessionEvent {
                                        change,
                                        target: target.clone(),
                                        key,
                                        poll: number,
                                        at,
                                        session,
                                    })
                                })
                                .collect();
                            let open = watch.tracker.open(&target);
                            events.push(polled(target, number, elapsed, Ok(open)));
                            events
                        }
                        // A host's answer that did not decode: its poll fails.
                        Err(error) => {
                            let error = error.with_target(target.clone());
                            vec![polled(target, number, elapsed, Err(error))]
                        }
                    }
                }
                HostEvent::Failed {
                    target,
                    error,
                    elapsed,
                } => {
                    answered.remove(&target);
                    kept.forget(&target);
                    vec![polled(target, number, elapsed, Err(error))]
                }
                _ => Vec::new(),
            };
            for event in events {
                if tx.send(event).await.is_err() {
                    return; // nobody listens any more
                }
            }
        }
    }
}

fn polled<T>(
    target: String,
    number: u64,
    duration: Duration,
    outcome: Result<usize>,
) -> WatchEvent<T> {
    WatchEvent::Polled(Poll {
        target,
        number,
        at: SystemTime::now(),
        duration,
        outcome,
    })
}
