//! hyper's side of one connection, polled in the task that posts on it instead of in a task of
//! its own.
//!
//! hyper's HTTP/1.1 client is two halves: the sender, which hands over a request and waits for
//! its answer, and the connection, which reads and writes the socket. Spawned apart, every step
//! of an exchange crosses from one task to the other: the request to the connection's task, the
//! answer's head back, then each read of the body back and forth, each time through the
//! runtime's queue. With a thousand hosts answering at once that queue is a thousand tasks
//! long, so every answer sits half read for a whole turn of it, and a thousand half-read
//! answers are in memory together. Polled together in one task, an answer whose bytes have
//! arrived is read to its end in one go.
//!
//! Nobody polls the connection while it sits idle between two requests: the transport peeks at
//! the socket before reusing it instead (`tcp::Watch`), and anything hyper has to do on its own
//! (noticing a close, finishing an answer's end) happens at the next request's first poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// hyper's connection future: runs until the connection closes.
pub(super) type ConnectionFuture = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// How many times one poll goes round between the work and the connection before it yields:
/// each round is one step of an exchange (a read handed over, a read asked for), so a 2 MB
/// answer arrived whole is read in one poll; and a future that wakes itself at once must not
/// spin. (tokio's budget needs no check here: a task out of it is woken only after its poll.)
const ROUNDS: usize = 128;

/// The connection's future, while it runs, and the waker that tells a poll of the work or the
/// connection woke the other.
pub(super) struct Driver {
    connection: Option<ConnectionFuture>,
    flag: Arc<Flag>,
    waker: Waker,
}

impl Driver {
    pub(super) fn new(connection: ConnectionFuture) -> Self {
        let flag = Arc::new(Flag {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        Self {
            connection: Some(connection),
            waker: Waker::from(flag.clone()),
            flag,
        }
    }

    /// Runs `work` (a step of an exchange on this connection) to its end, polling the
    /// connection alongside so that the socket is read and written meanwhile. When the
    /// connection ends (closed, failed), `work` learns it from hyper as it would have from a
    /// spawned connection.
    pub(super) async fn run<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| self.poll(work.as_mut(), cx)).await
    }

    fn poll<F: Future>(&mut self, mut work: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.flag.task.register(cx.waker());
        let mut inner = Context::from_waker(&self.waker);
        for _ in 0..ROUNDS {
            self.flag.state.store(POLLING, Ordering::SeqCst);
            if let Poll::Ready(output) = work.as_mut().poll(&mut inner) {
                self.flag.state.store(IDLE, Ordering::SeqCst);
                // Nobody waits on the connection until the next exchange, which registers its
                // own task: an idle connection neither keeps this one alive nor wakes it.
                drop(self.flag.task.take());
                return Poll::Ready(output);
            }
            if let Some(connection) = self.connection.as_mut()
                && let Poll::Ready(result) = connection.as_mut().poll(&mut inner)
            {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "Connection ended");
                }
                // What the work waits for has been settled by the connection's end.
                self.connection = None;
                continue;
            }
            // Woken by one another while being polled: go round again, here, rather than
            // through the runtime's queue.
            if self
                .flag
                .state
                .compare_exchange(POLLING, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return Poll::Pending;
            }
        }
        self.flag.state.store(IDLE, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Nobody is polling: a wake goes to the task.
const IDLE: u8 = 0;
/// A poll is under way and nothing woke it yet.
const POLLING: u8 = 1;
/// A poll is under way and something woke it: it goes round once more.
const WOKEN: u8 = 2;

/// A waker for both halves, which remembers a wake that came while they were being polled
/// instead of queuing the task again.
struct Flag {
    state: AtomicU8,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // While a poll is under way it sees the mark before it returns; otherwise (a read
        // became ready, a timer fired) the task is woken.
        if let Err(IDLE) =
            self.state
                .compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst)
        {
            self.task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts the task's wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wakes {
        /// A waker for a task, and the count of its wakes.
        fn waker() -> (Arc<Self>, Waker) {
            let wakes = Arc::new(Self::default());
            (wakes.clone(), Waker::from(wakes))
        }
    }

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A stand-in for hyper's connection: each poll hands one more chunk to the work, as a
    /// read of the socket would, while the work has asked for it; ends after `chunks`.
    fn connection(chunks: usize, sent: Arc<AtomicUsize>, asked: Arc<AtomicWaker>) -> Driver {
        let connection = std::future::poll_fn(move |cx| {
            asked.register(cx.waker());
            if sent.load(Ordering::SeqCst) < chunks {
                sent.fetch_add(1, Ordering::SeqCst);
                // The work is told a chunk is there, as a body channel would.
                asked.wake();
            }
            if sent.load(Ordering::SeqCst) == chunks {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        });
        Driver::new(Box::pin(connection))
    }

    #[test]
    fn an_answer_that_has_arrived_is_read_to_its_end_in_one_poll() {
        let sent = Arc::new(AtomicUsize::new(0));
        let asked = Arc::new(AtomicWaker::new());
        let mut driver = connection(8, sent.clone(), asked.clone());
        // The work takes each chunk as it comes and waits for the next, as a body read does.
        let mut taken = 0;
        let work = std::future::poll_fn(|cx| {
            asked.register(cx.waker());
            taken = sent.load(Ordering::SeqCst);
            if taken == 8 {
                Poll::Ready(taken)
            } else {
                Poll::Pending
            }
        });
        let (wakes, waker) = Wakes::waker();
        let mut cx = Context::from_waker(&waker);
        let mut run = std::pin::pin!(driver.run(work));
        assert_eq!(run.as_mut().poll(&mut cx), Poll::Ready(8));
        // Every step went round inside the poll, none through the task's queue.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn work_that_keeps_waking_itself_yields_to_the_runtime() {
        let mut driver = Driver::new(Box::pin(std::future::pending()));
        let polls = AtomicUsize::new(0);
        // A future that asks at once to be polled again, every time it is polled.
        let work = std::future::poll_fn(|cx| {
            polls.fetch_add(1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let (wakes, waker) = Wakes::waker();
        let mut cx = Context::from_waker(&waker);
        let mut run = std::pin::pin!(driver.run(work));
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), ROUNDS);
        // It asked to be polled again, and will be.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_wake_between_polls_reaches_the_task_and_none_after_it_is_done() {
        let mut driver = Driver::new(Box::pin(std::future::pending()));
        let ready = Arc::new(AtomicWaker::new());
        let done = Arc::new(AtomicUsize::new(0));
        let work = {
            let (ready, done) = (ready.clone(), done.clone());
            std::future::poll_fn(move |cx| {
                ready.register(cx.waker());
                if done.load(Ordering::SeqCst) == 1 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        };
        let (wakes, waker) = Wakes::waker();
        let mut cx = Context::from_waker(&waker);
        let mut run = std::pin::pin!(driver.run(work));
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
        // Later, from elsewhere (a socket became readable): the task is woken, once.
        done.store(1, Ordering::SeqCst);
        ready.wake();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(run.as_mut().poll(&mut cx).is_ready());
        // Done: what the connection hears while idle wakes nobody.
        ready.wake();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
    }
}
