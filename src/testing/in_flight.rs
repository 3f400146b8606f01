//! [`InFlight`]: how many requests, and at how many servers, one or several fixture servers
//! are answering at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Counts the requests fixture servers are answering (from their arrival until their answer
/// leaves, latency included) and the servers with at least one such request, remembering the
/// most of each at once. Shared by several servers
/// ([`FixtureServerBuilder::in_flight`](super::FixtureServerBuilder::in_flight)), it tells how
/// many hosts of a fleet had a request on the wire at the same time: a proof of a fleet's
/// concurrency that does not depend on timing.
///
/// ```no_run
/// # async fn run() -> winrm_sessions::Result<()> {
/// use std::time::Duration;
/// use winrm_sessions::testing::{FixtureServer, FixtureSet, InFlight};
///
/// let probe = InFlight::new();
/// let mut servers = Vec::new();
/// for _ in 0..6 {
///     let set = FixtureSet::from_dir("fixtures/demo")?;
///     servers.push(
///         FixtureServer::builder(set)
///             .latency(Duration::from_millis(50))
///             .in_flight(&probe)
///             .start()
///             .await?,
///     );
/// }
/// // ... run a fleet of the six at concurrency 4 ...
/// assert_eq!(probe.peak_servers(), 4);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    requests: AtomicUsize,
    peak_requests: AtomicUsize,
    servers: AtomicUsize,
    peak_servers: AtomicUsize,
    total: AtomicUsize,
    changed: Notify,
}

impl InFlight {
    /// A probe with nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests being answered now.
    pub fn requests(&self) -> usize {
        self.0.requests.load(Ordering::SeqCst)
    }

    /// The most requests answered at once so far.
    pub fn peak_requests(&self) -> usize {
        self.0.peak_requests.load(Ordering::SeqCst)
    }

    /// Servers answering at least one request now.
    pub fn servers(&self) -> usize {
        self.0.servers.load(Ordering::SeqCst)
    }

    /// The most servers answering at once so far: the hosts a fleet had in flight.
    pub fn peak_servers(&self) -> usize {
        self.0.peak_servers.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn total(&self) -> usize {
        self.0.total.load(Ordering::SeqCst)
    }

    /// Waits until `count` servers have answered at once, or `limit` has passed; returns
    /// [`InFlight::peak_servers`] then. For tests that must not hang when the code under test
    /// never gets there.
    pub async fn wait_for_servers(&self, count: usize, limit: Duration) -> usize {
        let reached = async {
            loop {
                let changed = self.0.changed.notified();
                if self.peak_servers() >= count {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(limit, reached).await;
        self.peak_servers()
    }

    /// Counts a request at the server whose own count is `server` until the guard is dropped.
    pub(crate) fn enter(&self, server: &Arc<AtomicUsize>) -> Guard {
        let counts = &self.0;
        let requests = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
        counts.peak_requests.fetch_max(requests, Ordering::SeqCst);
        counts.total.fetch_add(1, Ordering::SeqCst);
        if server.fetch_add(1, Ordering::SeqCst) == 0 {
            let servers = counts.servers.fetch_add(1, Ordering::SeqCst) + 1;
            counts.peak_servers.fetch_max(servers, Ordering::SeqCst);
        }
        counts.changed.notify_waiters();
        Guard {
            probe: self.clone(),
            server: server.clone(),
        }
    }
}

/// A request in flight; see [`InFlight::enter`].
pub(crate) struct Guard {
    probe: InFlight,
    server: Arc<AtomicUsize>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let counts = &self.probe.0;
        if self.server.fetch_sub(1, Ordering::SeqCst) == 1 {
            counts.servers.fetch_sub(1, Ordering::SeqCst);
        }
        counts.requests.fetch_sub(1, Ordering::SeqCst);
        counts.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_requests_and_servers_now_at_peak_and_in_all() {
        let probe = InFlight::new();
        let (one, two) = (Arc::default(), Arc::default());
        let a = probe.enter(&one);
        let b = probe.enter(&one);
        assert_eq!((probe.requests(), probe.servers()), (2, 1));
        let c = probe.enter(&two);
        assert_eq!((probe.peak_requests(), probe.peak_servers()), (3, 2));
        drop(a);
        drop(c);
        assert_eq!((probe.requests(), probe.servers()), (1, 1));
        drop(b);
        assert_eq!(
            (probe.requests(), probe.servers(), probe.total()),
            (0, 0, 3)
        );
        assert_eq!(probe.wait_for_servers(2, Duration::from_secs(5)).await, 2);
        assert_eq!(probe.wait_for_servers(3, Duration::from_millis(1)).await, 2);
    }
}
