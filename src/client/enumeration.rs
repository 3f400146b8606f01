//! [`Enumeration`]: a `Stream` of typed items over Enumerate / Pull, and [`Pages`], the same
//! page by page.
//!
//! The next Pull goes out as soon as a page has arrived (its context is known), in a task of its
//! own that also parses the answer, while the caller consumes that page: the server's and the
//! network's time overlap the caller's work, and memory holds at most two pages.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use tokio::task::JoinHandle;

use super::Client;
use super::addressing::{Resource, Style};
use crate::cim::{FromInstance, Instance};
use crate::error::{Error, ErrorKind, Result};
use crate::transport::{HttpTransport, Resend};
use crate::wsman::request::Enumerate;
use crate::wsman::{EnumerationMode, Enumerator, Filter, Response, ResponseBody};
use crate::wsman::{Instances, ItemSink, ParseError, ScannedItem, parse_response_into};
use tracing::Instrument;

/// A request in flight, answered and parsed in its own task.
type Fetch<S> = JoinHandle<Result<Fetched<S>>>;

/// An answer, its page's items in the sink.
struct Fetched<S> {
    response: Response,
    sink: S,
    /// Items the page brought.
    items: usize,
}

/// Where an enumeration's items go as each page is parsed, in the task that fetched it: the
/// instances of a page for [`Enumeration`] and [`Pages`], or a caller's own form that
/// gathers the whole answer (a watch's snapshot), no instance built for each item.
pub(crate) trait PageSink: ItemSink + Default + Send + 'static {
    /// What a page leaves for the consumer.
    type Page;

    /// Takes what the last page brought, before the sink goes with the next request.
    fn take_page(&mut self) -> Self::Page;
}

impl PageSink for Instances {
    type Page = Vec<Instance>;

    fn take_page(&mut self) -> Vec<Instance> {
        // The next page gets names of its own: the consumer drops this page's instances while
        // the next page is parsed on another thread, and one set of names for both would have
        // the two threads count references on the same cache lines (8% more CPU).
        std::mem::take(self).items
    }
}

/// A stream of instances of one class or query.
///
/// Nothing is sent until it is first polled. It holds the page being consumed and the next one
/// being fetched, whatever the total. Dropping it before the end sends a Release in the
/// background (after the Pull in flight, if any, has answered) so the server frees the
/// enumeration at once instead of after its timeout.
///
/// An item that does not decode into `T` is yielded as an `Err` and the stream goes on; a
/// transport, protocol or fault error ends the stream. [`Enumeration::pages`] gives the same
/// as whole pages, for callers that work in batches.
#[must_use = "streams do nothing unless polled"]
pub struct Enumeration<T> {
    core: Core<Instances>,
    current: std::vec::IntoIter<Instance>,
    _item: PhantomData<fn() -> T>,
}

/// The pages of an enumeration, as the server sent them (see [`Enumeration::pages`]).
#[must_use = "streams do nothing unless polled"]
pub struct Pages<T> {
    core: Core<Instances>,
    leftover: Option<Vec<Instance>>,
    _item: PhantomData<fn() -> T>,
}

/// One page of items; they are decoded into `T` as they are taken.
pub struct Page<T> {
    instances: Vec<Instance>,
    target: std::sync::Arc<str>,
    _item: PhantomData<fn() -> T>,
}

impl<T> Page<T> {
    /// The number of items.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// True for an empty page.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The items as dynamic instances.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Takes the dynamic instances.
    pub fn into_instances(self) -> Vec<Instance> {
        self.instances
    }
}

impl<T: FromInstance> IntoIterator for Page<T> {
    type Item = Result<T>;
    type IntoIter = PageItems<T>;

    fn into_iter(self) -> PageItems<T> {
        PageItems {
            instances: self.instances.into_iter(),
            target: self.target,
            _item: PhantomData,
        }
    }
}

/// The items of a [`Page`], decoded one by one.
pub struct PageItems<T> {
    instances: std::vec::IntoIter<Instance>,
    target: std::sync::Arc<str>,
    _item: PhantomData<fn() -> T>,
}

impl<T: FromInstance> Iterator for PageItems<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        let instance = self.instances.next()?;
        Some(T::from_instance(instance).map_err(|e| Error::from(e).with_target(&*self.target)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.instances.size_hint()
    }
}

impl<T> std::fmt::Debug for Page<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("target", &&*self.target)
            .field("items", &self.instances.len())
            .finish()
    }
}

/// The state machine and the request in flight; shared by the item and page streams.
pub(crate) struct Core<S: PageSink> {
    client: Client,
    target: std::sync::Arc<str>,
    /// What is enumerated, and whether its form (WMI or DMTF) is yet to be learnt from the
    /// server's `Identify` answer.
    resource: Resource,
    unresolved: bool,
    resolving: Option<JoinHandle<Result<Style>>>,
    request: Enumerate,
    enumerator: Enumerator,
    inflight: Option<Fetch<S>>,
    /// Where items go; with the request in flight while there is one.
    sink: Option<S>,
    /// Requests sent so far (the Enumerate is 0), for the logs.
    requests: u64,
    /// Held from the Enumerate until the enumeration ends or is released: what
    /// [`Client::wait_for_releases`] waits for.
    open: Option<crate::transport::ReleaseGuard>,
    span: tracing::Span,
    started: bool,
    finished: bool,
    /// A setting changed after the first poll: reported instead of silently restarting.
    misuse: Option<Error>,
}

impl<S: PageSink> Core<S> {
    pub(crate) fn new(client: Client, resource: Resource, filter: Option<Filter>) -> Self {
        let style = resource
            .known_style(client.inner.config.class_addressing)
            .or_else(|| client.known_style());
        let (resource_uri, cim_namespace) = resource.address(style.unwrap_or(Style::Wmi));
        let request = Enumerate {
            resource_uri,
            cim_namespace,
            filter,
            mode: EnumerationMode::Objects,
            max_elements: client.inner.config.max_elements,
        };
        let enumerator = Enumerator::new(client.addressing(), request.clone());
        Self {
            target: client.target().into(),
            client,
            resource,
            unresolved: style.is_none(),
            resolving: None,
            request,
            enumerator,
            inflight: None,
            sink: Some(S::default()),
            requests: 0,
            open: None,
            span: tracing::Span::none(),
            started: false,
            finished: false,
            misuse: None,
        }
    }

    fn reconfigure(&mut self, what: &str, change: impl FnOnce(&mut Enumerate)) {
        if self.started || self.resolving.is_some() {
            self.misuse.get_or_insert_with(|| {
                Error::config(format!(
                    "the enumeration's {what} was changed after it started; set it before the \
                     first poll"
                ))
            });
            return;
        }
        change(&mut self.request);
        self.enumerator = Enumerator::new(self.client.addressing(), self.request.clone());
    }

    /// Sends the next request, if there is one, in a task that also parses the answer.
    fn start_next(&mut self) {
        if !self.started {
            self.open = Some(self.client.inner.transport.release_started());
            // Created at the first poll, under the caller's span then (a fleet's host).
            self.span = super::operation_span(&self.target, "enumeration");
            let class = self
                .enumerator
                .resource_uri()
                .rsplit('/')
                .next()
                .unwrap_or_default();
            self.span.record("class", class);
            let _entered = self.span.enter();
            tracing::debug!(resource_uri = %self.request.resource_uri, filter = ?self.request.filter, max_elements = self.request.max_elements, "Enumerating");
        }
        self.started = true;
        // A Pull whose answer is lost cannot be sent again: the server may have moved past
        // that page. It fails as EnumerationInterrupted instead of skipping items.
        let pulling = self.enumerator.context().map(str::to_owned);
        match self.enumerator.poll_request() {
            Some(envelope) => {
                let transport = self.client.inner.transport.clone();
                let span = tracing::debug_span!(
                    parent: &self.span,
                    "request",
                    op = if pulling.is_some() { "Pull" } else { "Enumerate" },
                    n = self.requests,
                );
                self.requests += 1;
                let sink = self.sink.take().unwrap_or_default();
                let class = self.enumerator.fragment_class().to_owned();
                let fetch = fetch(transport, envelope, pulling, sink, class).instrument(span);
                self.inflight = Some(tokio::spawn(fetch));
            }
            None => self.finished = true,
        }
    }

    fn fail(&mut self, mut error: Error) -> Poll<Option<Result<S::Page>>> {
        if let Some(fault) = error.fault_mut() {
            fault.namespace = self.resource.namespace().map(str::to_owned);
        }
        self.finished = true;
        self.inflight = None;
        // A fault may leave the context alive on the server: free it now.
        self.release_in_background(None);
        Poll::Ready(Some(Err(error.with_target(&*self.target))))
    }

    /// Sends a Release for the live context, if any, in the background: after the Pull in
    /// flight has answered (it may bring a newer context, or end the enumeration).
    fn release_in_background(&mut self, inflight: Option<Fetch<S>>) {
        if inflight.is_none() && self.enumerator.context().is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut enumerator = self.enumerator.clone();
        // This copy will not send it again.
        let _ = self.enumerator.release_request();
        let transport = self.client.inner.transport.clone();
        let span = tracing::debug_span!(parent: &self.span, "request", op = "Release");
        let guard = self
            .open
            .take()
            .unwrap_or_else(|| transport.release_started());
        runtime.spawn(
            async move {
                let _guard = guard;
                if let Some(fetch) = inflight
                    && let Ok(Ok(fetched)) = fetch.await
                {
                    let _ = enumerator.handle_sunk(fetched.response, fetched.items);
                }
                let Some(envelope) = enumerator.release_request() else {
                    return;
                };
                match transport.post(envelope, Resend::Allowed).await {
                    Ok(_) => tracing::debug!("Released the enumeration"),
                    Err(error) => tracing::debug!(error = %error.report(), "Release failed"),
                }
            }
            .instrument(span),
        );
    }

    /// Learns the form of the resource's address from the server (once per client), then
    /// addresses the enumeration in it.
    fn poll_resolved(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let client = self.client.clone();
        let resolving = self
            .resolving
            .get_or_insert_with(|| tokio::spawn(async move { client.style().await }));
        let answer = ready!(Pin::new(resolving).poll(cx));
        self.resolving = None;
        self.unresolved = false;
        let style = match answer {
            Ok(result) => result?,
            Err(e) => {
                return Poll::Ready(Err(Error::protocol(format!(
                    "the Identify task failed: {e}"
                ))));
            }
        };
        (self.request.resource_uri, self.request.cim_namespace) = self.resource.address(style);
        self.enumerator = Enumerator::new(self.client.addressing(), self.request.clone());
        Poll::Ready(Ok(()))
    }

    /// Every page, into the sink; the sink at the end.
    pub(crate) async fn gather(mut self) -> Result<S> {
        while let Some(page) = std::future::poll_fn(|cx| self.poll_page(cx)).await {
            page?;
        }
        Ok(self.sink.take().unwrap_or_default())
    }

    /// The next non-empty page, as the sink leaves it.
    pub(crate) fn poll_page(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<S::Page>>> {
        if let Some(error) = self.misuse.take() {
            return self.fail(error);
        }
        if self.unresolved
            && let Err(e) = ready!(self.poll_resolved(cx))
        {
            return self.fail(e);
        }
        loop {
            if self.inflight.is_none() {
                if self.finished {
                    return Poll::Ready(None);
                }
                self.start_next();
                if self.inflight.is_none() {
                    return Poll::Ready(None);
                }
            }
            let Some(fetch) = self.inflight.as_mut() else {
                continue;
            };
            let answer = ready!(Pin::new(fetch).poll(cx));
            self.inflight = None;
            let fetched = match answer {
                Ok(Ok(fetched)) => fetched,
                Ok(Err(e)) => return self.fail(e),
                Err(e) => {
                    return self.fail(Error::protocol(format!("the request task failed: {e}")));
                }
            };
            let Fetched {
                response,
                mut sink,
                items,
            } = fetched;
            let page = sink.take_page();
            self.sink = Some(sink);
            match self.enumerator.handle_sunk(response, items) {
                Ok(_) => {
                    if self.enumerator.is_finished() {
                        self.open = None;
                    }
                    if let Some(fault) = self.enumerator.take_server_timeout() {
                        let _entered = self.span.enter();
                        tracing::debug!(
                            context = self.enumerator.context(),
                            "The server timed out the Pull before items were ready; pulling again with the same context"
                        );
                        let problem =
                            Error::from(crate::wsman::ResponseError::Fault(Box::new(fault)));
                        self.client.inner.transport.note_problem(problem);
                    }
                    // The next page is asked for now, while this one is consumed.
                    self.start_next();
                    if items > 0 {
                        return Poll::Ready(Some(Ok(page)));
                    }
                }
                Err(e) => return self.fail(e.into()),
            }
        }
    }
}

/// Posts one request of an enumeration and parses the answer, its items into `sink`
/// (unnamed ones, WQL projections, named `class`).
async fn fetch<S: PageSink>(
    transport: HttpTransport,
    envelope: String,
    pulling: Option<String>,
    mut sink: S,
    class: String,
) -> Result<Fetched<S>> {
    let started = std::time::Instant::now();
    let body = match pulling {
        None => transport.post(envelope, Resend::Allowed).await?,
        Some(context) => transport
            .post(envelope, Resend::Forbidden)
            .await
            .map_err(|e| interrupted(e, context))?,
    };
    let answered = started.elapsed();
    let mut counted = Counted {
        sink: &mut sink,
        class: &class,
        items: 0,
    };
    let response = parse_response_into(&body, Some(&mut counted))?;
    let items = counted.items;
    if tracing::enabled!(tracing::Level::DEBUG) {
        let end = match &response.body {
            ResponseBody::Enumerate(page) | ResponseBody::Pull(page) => page.end_of_sequence,
            _ => false,
        };
        tracing::debug!(
            items,
            bytes = body.len(),
            end_of_sequence = end,
            answered_ms = answered.as_millis() as u64,
            parsed_ms = (started.elapsed() - answered).as_millis() as u64,
            "Page"
        );
    }
    Ok(Fetched {
        response,
        sink,
        items,
    })
}

/// A sink's items counted, and those a server sends unnamed given their class.
struct Counted<'a, S> {
    sink: &'a mut S,
    class: &'a str,
    items: usize,
}

impl<S: ItemSink> ItemSink for Counted<'_, S> {
    fn scanned(&mut self, item: ScannedItem<'_, '_>) -> std::result::Result<(), ParseError> {
        self.items += 1;
        self.sink.scanned(item)
    }

    fn instance(&mut self, mut instance: Instance) {
        self.items += 1;
        if instance.class_name().is_empty() {
            instance.set_class_name(self.class);
        }
        self.sink.instance(instance);
    }
}

/// A Pull that failed in transit: the page may be lost on the server's side.
fn interrupted(error: Error, context: String) -> Error {
    if !error.broke_in_flight() {
        return error;
    }
    ErrorKind::EnumerationInterrupted {
        context,
        source: Box::new(error.without_target()),
    }
    .into()
}

impl<S: PageSink> Drop for Core<S> {
    fn drop(&mut self) {
        let inflight = self.inflight.take();
        self.release_in_background(inflight);
    }
}

impl<T> Enumeration<T> {
    pub(crate) fn new(client: Client, resource: Resource, filter: Option<Filter>) -> Self {
        Self {
            core: Core::new(client, resource, filter),
            current: Vec::new().into_iter(),
            _item: PhantomData,
        }
    }

    /// Items to ask for per page. A change after the first poll is an error (the next item).
    pub fn max_elements(mut self, items: u32) -> Self {
        self.core
            .reconfigure("page size", |r| r.max_elements = items.max(1));
        self
    }

    /// Objects, references or both. With references, each instance's
    /// [`Instance::reference`] is set. A change after the first poll is an error.
    pub fn mode(mut self, mode: EnumerationMode) -> Self {
        self.core.reconfigure("mode", |r| r.mode = mode);
        self
    }

    /// Replaces the filter. A change after the first poll is an error.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.core.reconfigure("filter", |r| r.filter = Some(filter));
        self
    }

    /// The same enumeration as whole pages. Items already taken from the current page are not
    /// given again; the rest of it is the first page.
    pub fn pages(self) -> Pages<T> {
        let Enumeration { core, current, .. } = self;
        Pages {
            core,
            leftover: Some(current.collect()).filter(|v: &Vec<Instance>| !v.is_empty()),
            _item: PhantomData,
        }
    }
}

impl<T: FromInstance> Stream for Enumeration<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = &mut *self;
        loop {
            if let Some(instance) = this.current.next() {
                let item = T::from_instance(instance)
                    .map_err(|e| Error::from(e).with_target(&*this.core.target));
                return Poll::Ready(Some(item));
            }
            match ready!(this.core.poll_page(cx)) {
                Some(Ok(items)) => this.current = items.into_iter(),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            }
        }
    }
}

impl<T> Stream for Pages<T> {
    type Item = Result<Page<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Page<T>>>> {
        let this = &mut *self;
        let items = match this.leftover.take() {
            Some(items) => items,
            None => match ready!(this.core.poll_page(cx)) {
                Some(Ok(items)) => items,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            },
        };
        Poll::Ready(Some(Ok(Page {
            instances: items,
            target: this.core.target.clone(),
            _item: PhantomData,
        })))
    }
}

impl<S: PageSink> std::fmt::Debug for Core<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enumeration")
            .field("target", &&*self.target)
            .field("resource_uri", &self.request.resource_uri)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Enumeration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

impl<T> std::fmt::Debug for Pages<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}
