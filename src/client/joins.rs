//! The answers admins ask for, joined locally: each server session with its connections, each
//! logon session with its processes.
//!
//! **Why local joins.** Following the association for each session costs one Enumerate (and
//! perhaps Pulls) per session: hundreds of round trips on a busy file server. Enumerating the
//! two classes and the association class once each costs three enumerations whatever the number
//! of sessions, and the association instances carry the keys of both ends, so the join is a hash
//! lookup. The per-session form stays available through [`Client::associators`].
//!
//! **Memory.** The right side (connections, processes) and the association are read first into
//! an index; the left side (sessions) then streams a page at a time. Memory is bounded by the
//! right side's index, not by the number of sessions.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Stream, TryStreamExt};

use super::{Client, Pages};
use crate::cim::CimClass;
use crate::cim::{ClassPath, FromInstance, Instance, Reference, SelectorValue, Value};
use crate::classes::{
    LogonSession, Process, ServerConnection, ServerSession, SessionConnection, SessionProcess,
};
use crate::error::{Error, Result};

/// A local join of two classes through an association class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinSpec {
    left: ClassPath,
    left_role: &'static str,
    left_keys: &'static [&'static str],
    right: ClassPath,
    right_role: &'static str,
    right_keys: &'static [&'static str],
    association: ClassPath,
}

impl JoinSpec {
    /// `Win32_ServerSession` with its `Win32_ServerConnection`s, through
    /// `Win32_SessionConnection`.
    pub fn server_session_connections() -> Self {
        Self {
            left: ServerSession::class_path(),
            left_role: "Antecedent",
            left_keys: ServerSession::KEYS,
            right: ServerConnection::class_path(),
            right_role: "Dependent",
            right_keys: ServerConnection::KEYS,
            association: SessionConnection::class_path(),
        }
    }

    /// `Win32_LogonSession` with its `Win32_Process`es, through `Win32_SessionProcess`.
    pub fn logon_session_processes() -> Self {
        Self {
            left: LogonSession::class_path(),
            left_role: "Antecedent",
            left_keys: LogonSession::KEYS,
            right: Process::class_path(),
            right_role: "Dependent",
            right_keys: Process::KEYS,
            association: SessionProcess::class_path(),
        }
    }

    /// The class on the left.
    pub fn left(&self) -> &ClassPath {
        &self.left
    }

    /// The class on the right.
    pub fn right(&self) -> &ClassPath {
        &self.right
    }
}

/// An instance of the left class and the instances of the right class linked to it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Joined {
    /// The left instance (a session).
    pub left: Instance,
    /// The right instances linked to it (its connections, its processes).
    pub right: Vec<Instance>,
}

/// A join key: the key values in a fixed order, compared case-insensitively (WMI keys are).
type Key = Vec<String>;

fn text_key(value: Option<&str>) -> String {
    value.unwrap_or_default().to_lowercase()
}

fn instance_key(instance: &Instance, names: &[&str]) -> Key {
    names
        .iter()
        .map(|n| text_key(instance.get(n).and_then(Value::as_text)))
        .collect()
}

fn reference_key(reference: &Reference, names: &[&str]) -> Key {
    names
        .iter()
        .map(|n| text_key(reference.selector(n).and_then(SelectorValue::as_text)))
        .collect()
}

/// The right instances by the left key that the association links them to.
type Index = HashMap<Key, Vec<Instance>>;

fn build_index(spec: &JoinSpec, right: Vec<Instance>, links: Vec<Instance>) -> Index {
    let by_key: HashMap<Key, Instance> = right
        .into_iter()
        .map(|r| (instance_key(&r, spec.right_keys), r))
        .collect();
    let mut index = Index::new();
    for link in &links {
        let ends = (
            link.get(spec.left_role).and_then(Value::as_reference),
            link.get(spec.right_role).and_then(Value::as_reference),
        );
        let (Some(left), Some(right)) = ends else {
            continue;
        };
        let right_key = reference_key(right, spec.right_keys);
        // A right instance belongs to one left instance; several links to it keep a copy each.
        let instance = match by_key.get(&right_key) {
            Some(instance) => instance.clone(),
            None => continue,
        };
        index
            .entry(reference_key(left, spec.left_keys))
            .or_default()
            .push(instance);
    }
    index
}

type Indexing = Pin<Box<dyn Future<Output = Result<Index>> + Send>>;

enum State {
    Indexing(Indexing, Option<Pages<Instance>>),
    Streaming(Index, Pages<Instance>),
    Done,
}

/// The pages of a join: each page of the left class, its instances joined (see
/// [`Client::join`]).
#[must_use = "streams do nothing unless polled"]
pub struct JoinPages {
    spec: JoinSpec,
    state: State,
}

impl Stream for JoinPages {
    type Item = Result<Vec<Joined>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Indexing(indexing, left) => {
                    let index = ready!(indexing.as_mut().poll(cx));
                    let left = left.take();
                    this.state = match (index, left) {
                        (Ok(index), Some(left)) => State::Streaming(index, left),
                        (Err(e), _) => {
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                        (Ok(_), None) => State::Done,
                    };
                }
                State::Streaming(index, left) => {
                    let page = match ready!(Pin::new(&mut *left).poll_next(cx)) {
                        Some(Ok(page)) => page,
                        Some(Err(e)) => {
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                        None => {
                            this.state = State::Done;
                            return Poll::Ready(None);
                        }
                    };
                    let joined = page
                        .into_instances()
                        .into_iter()
                        .map(|left| {
                            let right = index
                                .remove(&instance_key(&left, this.spec.left_keys))
                                .unwrap_or_default();
                            Joined { left, right }
                        })
                        .collect();
                    return Poll::Ready(Some(Ok(joined)));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl std::fmt::Debug for JoinPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinPages")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// A server session and its connections to shares.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSessionWithConnections {
    /// The session.
    pub session: ServerSession,
    /// Its connections.
    pub connections: Vec<ServerConnection>,
}

/// A logon session and the processes running in it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogonSessionWithProcesses {
    /// The logon session.
    pub session: LogonSession,
    /// Its processes.
    pub processes: Vec<Process>,
}

fn typed<T: FromInstance>(client: &Client, instance: Instance) -> Result<T> {
    T::from_instance(instance).map_err(|e| Error::from(e).with_target(client.target()))
}

impl Client {
    /// A local join (three enumerations whatever the number of instances): the right class and
    /// the association are read into an index first, concurrently; then the left class streams,
    /// a page at a time, each instance with the right instances linked to it. Memory is bounded
    /// by the right side's index.
    pub fn join(&self, spec: &JoinSpec) -> JoinPages {
        let (client, index_spec) = (self.clone(), spec.clone());
        let indexing: Indexing = Box::pin(async move {
            let (right, links) = tokio::try_join!(
                client
                    .enumerate_class(&index_spec.right)
                    .try_collect::<Vec<_>>(),
                client
                    .enumerate_class(&index_spec.association)
                    .try_collect::<Vec<_>>(),
            )?;
            Ok(build_index(&index_spec, right, links))
        });
        JoinPages {
            spec: spec.clone(),
            state: State::Indexing(indexing, Some(self.enumerate_class(&spec.left).pages())),
        }
    }

    /// Every `Win32_ServerSession` with its `Win32_ServerConnection`s (three enumerations).
    pub async fn server_sessions_with_connections(
        &self,
    ) -> Result<Vec<ServerSessionWithConnections>> {
        let mut out = Vec::new();
        let mut pages = self.join(&JoinSpec::server_session_connections());
        while let Some(page) = pages.try_next().await? {
            for joined in page {
                out.push(ServerSessionWithConnections {
                    session: typed(self, joined.left)?,
                    connections: joined
                        .right
                        .into_iter()
                        .map(|c| typed(self, c))
                        .collect::<Result<_>>()?,
                });
            }
        }
        Ok(out)
    }

    /// Every `Win32_LogonSession` with its `Win32_Process`es (three enumerations).
    pub async fn logon_sessions_with_processes(&self) -> Result<Vec<LogonSessionWithProcesses>> {
        let mut out = Vec::new();
        let mut pages = self.join(&JoinSpec::logon_session_processes());
        while let Some(page) = pages.try_next().await? {
            for joined in page {
                out.push(LogonSessionWithProcesses {
                    session: typed(self, joined.left)?,
                    processes: joined
                        .right
                        .into_iter()
                        .map(|p| typed(self, p))
                        .collect::<Result<_>>()?,
                });
            }
        }
        Ok(out)
    }
}
