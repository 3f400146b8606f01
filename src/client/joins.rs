//! The answers admins ask for, joined locally: each server session with its connections, each
//! logon session with its processes.
//!
//! **Why local joins.** Following the association for each session costs one Enumerate (and
//! perhaps Pulls) per session: hundreds of round trips on a busy file server. Enumerating the
//! two classes and the association class once each costs three enumerations whatever the number
//! of sessions, and the association instances carry the keys of both ends, so the join is a hash
//! lookup. The per-session form stays available through [`Client::associators`].

use std::collections::HashMap;

use futures_util::TryStreamExt;

use super::Client;
use crate::cim::{Reference, SelectorValue};
use crate::classes::{
    LogonSession, Process, ServerConnection, ServerSession, SessionConnection, SessionProcess,
};
use crate::error::Result;

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

/// A join key: the reference's key values in a fixed order, compared case-insensitively (WMI
/// keys are).
fn key(reference: &Reference, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            reference
                .selector(n)
                .and_then(SelectorValue::as_text)
                .unwrap_or_default()
                .to_lowercase()
        })
        .collect()
}

impl Client {
    /// Every `Win32_ServerSession` with its `Win32_ServerConnection`s (three enumerations).
    pub async fn server_sessions_with_connections(
        &self,
    ) -> Result<Vec<ServerSessionWithConnections>> {
        const SESSION_KEYS: &[&str] = &["ComputerName", "UserName"];
        const CONNECTION_KEYS: &[&str] = &["ComputerName", "ShareName", "UserName"];
        let (sessions, connections, links) = tokio::try_join!(
            self.enumerate::<ServerSession>().try_collect::<Vec<_>>(),
            self.enumerate::<ServerConnection>().try_collect::<Vec<_>>(),
            self.enumerate::<SessionConnection>()
                .try_collect::<Vec<_>>(),
        )?;
        let by_key: HashMap<Vec<String>, &ServerConnection> = connections
            .iter()
            .map(|c| (key(&c.reference(), CONNECTION_KEYS), c))
            .collect();
        let mut linked: HashMap<Vec<String>, Vec<ServerConnection>> = HashMap::new();
        for link in &links {
            if let Some(connection) = by_key.get(&key(&link.dependent, CONNECTION_KEYS)) {
                linked
                    .entry(key(&link.antecedent, SESSION_KEYS))
                    .or_default()
                    .push((*connection).clone());
            }
        }
        Ok(sessions
            .into_iter()
            .map(|session| {
                let connections = linked
                    .remove(&key(&session.reference(), SESSION_KEYS))
                    .unwrap_or_default();
                ServerSessionWithConnections {
                    session,
                    connections,
                }
            })
            .collect())
    }

    /// Every `Win32_LogonSession` with its `Win32_Process`es (three enumerations).
    pub async fn logon_sessions_with_processes(&self) -> Result<Vec<LogonSessionWithProcesses>> {
        let (sessions, processes, links) = tokio::try_join!(
            self.enumerate::<LogonSession>().try_collect::<Vec<_>>(),
            self.enumerate::<Process>().try_collect::<Vec<_>>(),
            self.enumerate::<SessionProcess>().try_collect::<Vec<_>>(),
        )?;
        let by_handle: HashMap<Vec<String>, &Process> = processes
            .iter()
            .map(|p| (key(&p.reference(), &["Handle"]), p))
            .collect();
        let mut linked: HashMap<Vec<String>, Vec<Process>> = HashMap::new();
        for link in &links {
            if let Some(process) = by_handle.get(&key(&link.dependent, &["Handle"])) {
                linked
                    .entry(key(&link.antecedent, &["LogonId"]))
                    .or_default()
                    .push((*process).clone());
            }
        }
        Ok(sessions
            .into_iter()
            .map(|session| {
                let processes = linked
                    .remove(&key(&session.reference(), &["LogonId"]))
                    .unwrap_or_default();
                LogonSessionWithProcesses { session, processes }
            })
            .collect())
    }
}
