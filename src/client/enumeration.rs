//! [`Enumeration`]: a `Stream` of typed items over Enumerate / Pull, one page in memory at a time.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;

use super::Client;
use crate::cim::{FromInstance, Instance};
use crate::error::{Error, ErrorKind, Result};
use crate::transport::Resend;
use crate::wsman::request::Enumerate;
use crate::wsman::{EnumerationMode, Enumerator, Filter};

type Pending = Pin<Box<dyn Future<Output = Result<Bytes>> + Send>>;

/// A stream of instances of one class or query.
///
/// Nothing is sent until it is first polled. It holds at most one page of items; the next Pull
/// is sent only when the page has been consumed, so memory is bounded by the page size whatever
/// the total. Dropping it before the end sends a Release in the background (best effort, never
/// blocking the drop) so the server frees the enumeration at once instead of after its timeout.
///
/// An item that does not decode into `T` is yielded as an `Err` and the stream goes on; a
/// transport, protocol or fault error ends the stream.
#[must_use = "streams do nothing unless polled"]
pub struct Enumeration<T> {
    client: Client,
    request: Enumerate,
    enumerator: Enumerator,
    page: std::vec::IntoIter<Instance>,
    pending: Option<Pending>,
    finished: bool,
    _item: PhantomData<fn() -> T>,
}

impl<T> Enumeration<T> {
    pub(crate) fn new(client: Client, resource_uri: String, filter: Option<Filter>) -> Self {
        let request = Enumerate {
            resource_uri,
            filter,
            mode: EnumerationMode::Objects,
            max_elements: client.inner.config.max_elements,
        };
        let enumerator = Enumerator::new(client.addressing(), request.clone());
        Self {
            client,
            request,
            enumerator,
            page: Vec::new().into_iter(),
            pending: None,
            finished: false,
            _item: PhantomData,
        }
    }

    fn reconfigure(mut self, change: impl FnOnce(&mut Enumerate)) -> Self {
        change(&mut self.request);
        self.enumerator = Enumerator::new(self.client.addressing(), self.request.clone());
        self
    }

    /// Items to ask for per page (before the first poll).
    pub fn max_elements(self, items: u32) -> Self {
        self.reconfigure(|r| r.max_elements = items.max(1))
    }

    /// Objects, references or both (before the first poll). With references, each instance's
    /// [`Instance::reference`] is set.
    pub fn mode(self, mode: EnumerationMode) -> Self {
        self.reconfigure(|r| r.mode = mode)
    }

    /// Replaces the filter (before the first poll).
    pub fn filter(self, filter: Filter) -> Self {
        self.reconfigure(|r| r.filter = Some(filter))
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<T>>> {
        self.finished = true;
        self.pending = None;
        Poll::Ready(Some(Err(error.with_target(self.client.target()))))
    }
}

impl<T: FromInstance> Stream for Enumeration<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = &mut *self;
        loop {
            if let Some(instance) = this.page.next() {
                let item = T::from_instance(instance)
                    .map_err(|e| Error::from(e).with_target(this.client.target()));
                return Poll::Ready(Some(item));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            if this.pending.is_none() {
                // A Pull whose answer is lost cannot be sent again: the server may have moved
                // past that page. It fails as EnumerationInterrupted instead of skipping items.
                let pulling = this.enumerator.context().map(str::to_owned);
                match this.enumerator.poll_request() {
                    Some(envelope) => {
                        let transport = this.client.inner.transport.clone();
                        this.pending = Some(Box::pin(async move {
                            match pulling {
                                None => transport.post(envelope, Resend::Allowed).await,
                                Some(context) => transport
                                    .post(envelope, Resend::Forbidden)
                                    .await
                                    .map_err(|e| interrupted(e, context)),
                            }
                        }));
                    }
                    None => {
                        this.finished = true;
                        continue;
                    }
                }
            }
            let Some(pending) = this.pending.as_mut() else {
                continue;
            };
            let body = ready!(pending.as_mut().poll(cx));
            this.pending = None;
            let body = match body {
                Ok(body) => body,
                Err(e) => return this.fail(e),
            };
            match this.enumerator.handle_response(&body) {
                Ok(items) => this.page = items.into_iter(),
                Err(e) => return this.fail(e.into()),
            }
        }
    }
}

/// A Pull that failed in transit: the page may be lost on the server's side.
fn interrupted(error: Error, context: String) -> Error {
    match error.kind() {
        ErrorKind::Transport(_) | ErrorKind::Timeout { .. } => ErrorKind::EnumerationInterrupted {
            context,
            source: Box::new(error),
        }
        .into(),
        _ => error,
    }
}

impl<T> Drop for Enumeration<T> {
    fn drop(&mut self) {
        let Some(envelope) = self.enumerator.release_request() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let transport = self.client.inner.transport.clone();
        let target = self.client.target().to_owned();
        runtime.spawn(async move {
            if let Err(error) = transport.post(envelope, Resend::Allowed).await {
                tracing::debug!(%target, %error, "Release of an abandoned enumeration failed");
            }
        });
    }
}

impl<T> std::fmt::Debug for Enumeration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enumeration")
            .field("target", &self.client.target())
            .field("resource_uri", &self.request.resource_uri)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
