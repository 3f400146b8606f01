//! `watch --store`: the store written on a thread of its own.
//!
//! SQLite blocks on the disk, and a fleet's polls end thousands at a time: written from the
//! command's loop, each host's transaction stopped a runtime worker (or, through
//! `block_in_place`, handed its work to another thread, which cost more than the write). Here
//! the loop queues each host's poll and goes on; one thread writes them in order, one
//! transaction per host. The queue is bounded, so a slow disk slows the loop instead of
//! growing memory, and the first failed write ends the writer with its error.

use std::thread::JoinHandle;

use tokio::sync::mpsc;
use winrm_sessions::Error;
use winrm_sessions::cim::Instance;
use winrm_sessions::watch::store::Store;
use winrm_sessions::watch::{Poll, SessionEvent};

/// Hosts' polls queued at most (each with its session events, about a page of instances).
const QUEUE: usize = 64;

/// One host's poll and the session events it brought.
struct Batch {
    poll: Poll,
    sessions: Vec<SessionEvent<Instance>>,
}

/// A store being written by its own thread; see the module documentation.
pub struct StoreWriter {
    queue: Option<mpsc::Sender<Batch>>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl StoreWriter {
    /// Starts the thread that writes `class`'s polls into `store`.
    pub fn start(mut store: Store, class: &str) -> std::io::Result<Self> {
        let (queue, mut batches) = mpsc::channel::<Batch>(QUEUE);
        let class = class.to_owned();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                while let Some(batch) = batches.blocking_recv() {
                    store.record(&class, &batch.poll, &batch.sessions)?;
                }
                Ok(())
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues a host's poll, waiting for room when the disk is behind.
    ///
    /// # Errors
    ///
    /// Why the writer stopped, as its report: a write failed (that poll and those queued after
    /// it are not kept).
    pub async fn record(
        &mut self,
        poll: Poll,
        sessions: Vec<SessionEvent<Instance>>,
    ) -> Result<(), String> {
        let sent = match &self.queue {
            Some(queue) => queue.send(Batch { poll, sessions }).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer ends only on an error (or once the queue is closed, which is `finish`).
        Err(self
            .finish()
            .await
            .err()
            .unwrap_or_else(|| "the store's writer stopped".to_owned()))
    }

    /// Waits until everything queued is written.
    ///
    /// # Errors
    ///
    /// The report of the write that failed, if one did.
    pub async fn finish(&mut self) -> Result<(), String> {
        self.queue = None;
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(result)) => result.map_err(|e| e.report().to_string()),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => Err(format!("the store's writer could not be waited for: {e}")),
        }
    }
}
