//! The Enumerate / Pull / Release exchange as a sans-IO state machine.
//!
//! Call order: [`Enumerator::poll_request`] gives the next envelope to send; feed the response
//! body to [`Enumerator::handle_response`], which returns that page's items; repeat until
//! [`Enumerator::is_finished`]. When stopping early, or after a fault, send
//! [`Enumerator::release_request`] if it gives one.
//!
//! It enforces what real servers do and other clients get wrong: a Pull carries the same
//! ResourceURI as its Enumerate; every Pull uses the newest context (Windows changes it on every
//! response); a first response may hold a single item; a final page may be empty; a response
//! without EndOfSequence must carry a context; a Pull answered `w:TimedOut` (no items were ready
//! within OperationTimeout) is sent again with the same context, not restarted from the
//! Enumerate; a fault that leaves the context valid still lets it be released.

use super::request::{self, Addressing, Enumerate, Filter, MessageId};
use super::response::{Page, Response, ResponseBody, parse_response};
use super::{Fault, ResponseError, ns::action};
use crate::cim::Instance;

/// Consecutive empty non-final pages tolerated before the server is considered broken.
const MAX_EMPTY_PAGES: u32 = 64;

/// Consecutive Pulls answered `w:TimedOut` tolerated before giving up (an hour at the default
/// OperationTimeout of a minute; a caller's own deadline usually ends the wait first).
const MAX_SERVER_TIMEOUTS: u32 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    Start,
    /// Waiting for the EnumerateResponse to this MessageID.
    ExpectEnumerateResponse(MessageId),
    /// Holding a context; the next request is a Pull.
    Ready(String),
    /// Waiting for the PullResponse to this MessageID; the context it was sent with.
    ExpectPullResponse(MessageId, String),
    /// EndOfSequence seen.
    Finished,
    /// A fault ended the enumeration but left this context valid on the server: nothing more
    /// will be pulled, and a Release frees it.
    Abandoned(String),
    /// A response was unusable, or the context was released; nothing more will be sent.
    Failed,
}

/// One enumeration, from Enumerate to EndOfSequence.
#[derive(Debug, Clone)]
pub struct Enumerator {
    addressing: Addressing,
    request: Enumerate,
    pull_max_elements: u32,
    fragment_class: String,
    state: State,
    empty_pages: u32,
    server_timeouts: u32,
    last_server_timeout: Option<Fault>,
}

impl Enumerator {
    /// An enumeration of `request`; `max_elements` applies to the first page and every Pull.
    pub fn new(addressing: Addressing, request: Enumerate) -> Self {
        let fragment_class = match &request.filter {
            Some(Filter::Wql(query)) => wql_from_class(query).unwrap_or_default(),
            Some(Filter::Association(filter)) => filter.result_class.clone().unwrap_or_default(),
            _ => request
                .resource_uri
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        Self {
            pull_max_elements: request.max_elements,
            addressing,
            request,
            fragment_class,
            state: State::Start,
            empty_pages: 0,
            server_timeouts: 0,
            last_server_timeout: None,
        }
    }

    /// The class of items a server sends unnamed (WQL projections): the query's or the
    /// resource's.
    pub(crate) fn fragment_class(&self) -> &str {
        &self.fragment_class
    }

    /// The resource URI every request of this enumeration carries.
    pub fn resource_uri(&self) -> &str {
        &self.request.resource_uri
    }

    /// The next envelope to send, or `None` when waiting for a response, finished or failed.
    pub fn poll_request(&mut self) -> Option<String> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Start => {
                let id = MessageId::random();
                let envelope = request::enumerate(&self.addressing, &self.request, &id);
                self.state = State::ExpectEnumerateResponse(id);
                Some(envelope)
            }
            State::Ready(context) => {
                let id = MessageId::random();
                let envelope = request::pull(
                    &self.addressing,
                    &self.request,
                    &context,
                    self.pull_max_elements,
                    &id,
                );
                self.state = State::ExpectPullResponse(id, context);
                Some(envelope)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Takes the response to the last request and returns the items of that page.
    pub fn handle_response(&mut self, body: &[u8]) -> Result<Vec<Instance>, ResponseError> {
        match parse_response(body) {
            Ok(response) => self.handle(response),
            Err(e) => {
                self.state = State::Failed;
                Err(e.into())
            }
        }
    }

    /// Like [`Enumerator::handle_response`], for a response already parsed (parsing needs no
    /// state, so a driver may do it elsewhere, on another thread).
    pub fn handle(&mut self, response: Response) -> Result<Vec<Instance>, ResponseError> {
        self.handle_sunk(response, 0)
    }

    /// Like [`Enumerator::handle`], for a response whose page's items went to a sink: `sunk`
    /// of them, which count for the page as its own items would.
    pub(crate) fn handle_sunk(
        &mut self,
        response: Response,
        sunk: usize,
    ) -> Result<Vec<Instance>, ResponseError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (expected_id, is_pull) = match &state {
            State::ExpectEnumerateResponse(id) => (id.clone(), false),
            State::ExpectPullResponse(id, _) => (id.clone(), true),
            _ => {
                self.state = state;
                return Err(ResponseError::Unexpected(
                    "a response arrived with no request outstanding".into(),
                ));
            }
        };
        if let Some(relates_to) = &response.header.relates_to
            && !relates_to.eq_ignore_ascii_case(expected_id.as_str())
        {
            return Err(ResponseError::Unexpected(format!(
                "response relates to {relates_to}, expected {}",
                expected_id.as_str()
            )));
        }
        let page = match (response.body, is_pull) {
            (ResponseBody::Fault(fault), _) => return self.fault(fault, state),
            (ResponseBody::Enumerate(page), false) | (ResponseBody::Pull(page), true) => page,
            (other, _) => {
                let wanted = if is_pull {
                    action::PULL_RESPONSE
                } else {
                    action::ENUMERATE_RESPONSE
                };
                return Err(ResponseError::Unexpected(format!(
                    "expected {wanted}, got {}",
                    describe(&other, response.header.action.as_deref())
                )));
            }
        };
        self.accept_page(page, sunk)
    }

    /// A fault: a Pull that timed out on the server is pulled again with the same context; any
    /// other fault ends the enumeration, its context kept for a Release unless the fault says
    /// the context is gone.
    fn fault(&mut self, fault: Box<Fault>, state: State) -> Result<Vec<Instance>, ResponseError> {
        let State::ExpectPullResponse(_, context) = state else {
            return Err(ResponseError::Fault(fault));
        };
        if fault.is_timeout() {
            self.server_timeouts += 1;
            if self.server_timeouts > MAX_SERVER_TIMEOUTS {
                self.state = State::Abandoned(context);
                return Err(ResponseError::Unexpected(format!(
                    "the server timed out {MAX_SERVER_TIMEOUTS} Pulls in a row without items \
                     ({fault})"
                )));
            }
            self.state = State::Ready(context);
            self.last_server_timeout = Some(*fault);
            return Ok(Vec::new());
        }
        if !fault.is_invalid_enumeration_context() {
            self.state = State::Abandoned(context);
        }
        Err(ResponseError::Fault(fault))
    }

    /// The `w:TimedOut` fault that answered the last Pull, taken: the enumeration goes on (the
    /// next request is the same Pull), and a driver may log it or keep it as the last problem
    /// seen. `None` when the last response was a page.
    pub fn take_server_timeout(&mut self) -> Option<Fault> {
        self.last_server_timeout.take()
    }

    fn accept_page(&mut self, page: Page, sunk: usize) -> Result<Vec<Instance>, ResponseError> {
        self.last_server_timeout = None;
        self.server_timeouts = 0;
        let Page {
            context,
            mut items,
            end_of_sequence,
        } = page;
        for item in &mut items {
            if item.class_name().is_empty() {
                item.set_class_name(self.fragment_class.clone());
            }
        }
        if end_of_sequence {
            self.state = State::Finished;
            return Ok(items);
        }
        let context = context.filter(|c| !c.is_empty()).ok_or_else(|| {
            ResponseError::Unexpected(
                "response has neither EndOfSequence nor an EnumerationContext".into(),
            )
        })?;
        if items.is_empty() && sunk == 0 {
            self.empty_pages += 1;
            if self.empty_pages > MAX_EMPTY_PAGES {
                return Err(ResponseError::Unexpected(format!(
                    "server sent {MAX_EMPTY_PAGES} empty pages in a row"
                )));
            }
        } else {
            self.empty_pages = 0;
        }
        self.state = State::Ready(context);
        Ok(items)
    }

    /// True after EndOfSequence.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// True after an unusable response or a fault.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed | State::Abandoned(_))
    }

    /// A Release for the live context, when there is one (the server holds it until
    /// EnumerationTimeoutms otherwise, counting against the user's quota): when stopping early,
    /// or after a fault that left the context valid. Given once; nothing is sent after it.
    /// With a Pull in flight, its answer may bring a newer context: handle it first.
    pub fn release_request(&mut self) -> Option<String> {
        let context = match std::mem::replace(&mut self.state, State::Failed) {
            State::Ready(c) | State::ExpectPullResponse(_, c) | State::Abandoned(c) => c,
            other => {
                self.state = other;
                return None;
            }
        };
        Some(request::release(
            &self.addressing,
            &self.request,
            &context,
            &MessageId::random(),
        ))
    }

    /// The live enumeration context, if any.
    pub fn context(&self) -> Option<&str> {
        match &self.state {
            State::Ready(c) | State::ExpectPullResponse(_, c) | State::Abandoned(c) => Some(c),
            _ => None,
        }
    }
}

fn describe(body: &ResponseBody, action: Option<&str>) -> String {
    let kind = match body {
        ResponseBody::Enumerate(_) => "EnumerateResponse",
        ResponseBody::Pull(_) => "PullResponse",
        ResponseBody::Release => "ReleaseResponse",
        ResponseBody::Resource(_) => "a resource",
        ResponseBody::MethodOutput(_) => "a method output",
        ResponseBody::Identify(_) => "IdentifyResponse",
        ResponseBody::Fault(_) => "a fault",
        ResponseBody::Empty => "an empty body",
    };
    match action {
        Some(a) => format!("{kind} (action {a})"),
        None => kind.to_owned(),
    }
}

/// The class after `FROM` in a WQL query, for naming projection items.
pub(crate) fn wql_from_class(query: &str) -> Option<String> {
    let mut words = query.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("from") {
            return words.next().map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_')
                    .to_owned()
            });
        }
    }
    None
}
