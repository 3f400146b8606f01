//! The replay engine, with no I/O: a request envelope in, a status and a response envelope out.
//!
//! Requests are matched on what they ask for (action, resource URI, selectors, filter,
//! enumeration mode, method input, and for Pull/Release the recorded context), never on
//! MessageIDs. Enumeration contexts are remapped: each Enumerate gets fresh contexts, so
//! concurrent enumerations of the same class replay independently. Exchanges with the same key
//! are served in recorded order, the last one repeating.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::body::Pieces;
use super::fixtures::{Exchange, FixtureSet};
use crate::cim::{Selector, SelectorValue};
use crate::wsman::writer::escape_into;
use crate::wsman::{MessageId, RequestSummary, ns, parse_request};

/// Live contexts kept at most; the oldest are forgotten (as a server's enumeration timeout
/// would) so abandoned enumerations cannot grow memory without bound.
const MAX_LIVE_CONTEXTS: usize = 10_000;

pub(crate) struct Replayer {
    set: FixtureSet,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cursors: HashMap<usize, usize>,
    live_contexts: HashMap<String, String>,
    order: VecDeque<String>,
    stats: ReplayStats,
}

/// Counters of what a fixture server answered, for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Requests answered from a recorded exchange.
    pub matched: usize,
    /// Requests no recorded exchange matched (answered with a fault).
    pub unmatched: usize,
    /// Release requests received.
    pub releases: usize,
}

impl Replayer {
    pub(crate) fn new(set: FixtureSet) -> Self {
        Self {
            set,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn stats(&self) -> ReplayStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers one request body.
    pub(crate) fn answer(&self, body: &[u8]) -> (u16, Pieces) {
        let request = match parse_request(body) {
            Ok(r) => r,
            Err(e) => {
                return (
                    400,
                    fault(
                        "s:Sender",
                        "w:SchemaValidationError",
                        &format!("malformed request: {e}"),
                        None,
                    )
                    .into(),
                );
            }
        };
        let mut state = self.lock();
        let is_release = request.action == ns::action::RELEASE;
        if is_release {
            state.stats.releases += 1;
        }
        // Pull and Release name a live context; find the recorded one behind it.
        let recorded_context = match &request.enumeration_context {
            Some(live) => match state.live_contexts.get(live) {
                Some(recorded) => Some(recorded.clone()),
                None => {
                    state.stats.unmatched += 1;
                    return (
                        500,
                        fault(
                            "s:Sender",
                            "n:InvalidEnumerationContext",
                            "The enumeration context supplied in the message is not valid.",
                            request.message_id.as_deref(),
                        )
                        .into(),
                    );
                }
            },
            None => None,
        };
        if let Some(live) = &request.enumeration_context {
            state.live_contexts.remove(live);
        }
        let candidates: Vec<usize> = self
            .set
            .exchanges
            .iter()
            .enumerate()
            .filter(|(_, e)| same_request(&e.request, &request, recorded_context.as_deref()))
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = candidates.first() else {
            if is_release {
                state.stats.matched += 1;
                return (200, release_response(request.message_id.as_deref()).into());
            }
            if request.body_element.as_deref() == Some("Identify") {
                state.stats.matched += 1;
                return (200, identify_response().into());
            }
            state.stats.unmatched += 1;
            let closest = self.closest(&request);
            tracing::warn!(
                action = %request.action,
                resource_uri = request.resource_uri.as_deref().unwrap_or(""),
                filter = request.filter.as_ref().map(|f| f.1.as_str()).unwrap_or(""),
                closest = %closest,
                "No recorded exchange matches the request"
            );
            let message = format!(
                "winrm-sessions fixture server: no recorded exchange matches {} on {}; closest recorded: {closest}",
                short_action(&request.action),
                request
                    .resource_uri
                    .as_deref()
                    .unwrap_or("(no resource URI)")
            );
            return (
                500,
                fault(
                    "s:Sender",
                    "a:DestinationUnreachable",
                    &message,
                    request.message_id.as_deref(),
                )
                .into(),
            );
        };
        let used = state.cursors.entry(first).or_insert(0);
        let index = candidates[(*used).min(candidates.len() - 1)];
        *used += 1;
        let exchange = &self.set.exchanges[index];
        state.stats.matched += 1;
        let live_context = exchange
            .response_context
            .as_ref()
            .map(|_| MessageId::random().as_str().to_owned());
        let response = exchange.render(request.message_id.as_deref(), live_context.as_deref());
        if let (Some(recorded), Some(live)) = (&exchange.response_context, live_context) {
            state.live_contexts.insert(live.clone(), recorded.clone());
            state.order.push_back(live);
            while state.order.len() > MAX_LIVE_CONTEXTS {
                if let Some(old) = state.order.pop_front() {
                    state.live_contexts.remove(&old);
                }
            }
        }
        (exchange.status, response)
    }

    fn closest(&self, request: &RequestSummary) -> String {
        // Same operation first, then the same resource, the same class in a WQL query (every
        // WQL query is on `root/cimv2/*`), the same selectors, then the query that shares the
        // most words: a query for robocopy.exe is closest to the one for powershell.exe, not
        // to an ASSOCIATORS OF on another class.
        let wql_class = |filter: &Option<(String, String)>| {
            filter
                .as_ref()
                .and_then(|(_, text)| crate::wsman::wql::select_shape(text))
                .map(|shape| shape.class.to_ascii_lowercase())
        };
        let words = |filter: &Option<(String, String)>| -> std::collections::HashSet<String> {
            filter
                .as_ref()
                .map(|(_, text)| {
                    text.split(|c: char| c.is_whitespace() || "=,{}()'\"".contains(c))
                        .filter(|w| !w.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default()
        };
        let asked_class = wql_class(&request.filter);
        let asked_words = words(&request.filter);
        let score = |e: &Exchange| {
            let r = &e.request;
            (
                r.action == request.action,
                eq_ignore_case(&r.resource_uri, &request.resource_uri),
                asked_class.is_some() && wql_class(&r.filter) == asked_class,
                canonical_selectors(&r.selectors) == canonical_selectors(&request.selectors),
                r.filter == request.filter,
                words(&r.filter).intersection(&asked_words).count(),
            )
        };
        match self.set.exchanges.iter().max_by_key(|e| score(e)) {
            Some(e) => format!(
                "{} ({} on {}{})",
                e.name,
                short_action(&e.request.action),
                e.request.resource_uri.as_deref().unwrap_or("-"),
                e.request
                    .filter
                    .as_ref()
                    .map(|f| format!(", filter {:?}", f.1))
                    .unwrap_or_default()
            ),
            None => "none (the fixture set is empty)".into(),
        }
    }
}

fn short_action(action: &str) -> &str {
    if action.is_empty() {
        "Identify"
    } else {
        action.rsplit('/').next().unwrap_or(action)
    }
}

fn eq_ignore_case(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

fn canonical_selectors(selectors: &[Selector]) -> Vec<String> {
    let mut out: Vec<String> = selectors
        .iter()
        .map(|s| match &s.value {
            SelectorValue::Text(t) => format!("{}={}", s.name.to_ascii_lowercase(), t),
            SelectorValue::Reference(r) => format!("{}=({})", s.name.to_ascii_lowercase(), r),
        })
        .collect();
    out.sort();
    out
}

fn same_request(
    recorded: &RequestSummary,
    live: &RequestSummary,
    recorded_context: Option<&str>,
) -> bool {
    recorded.action == live.action
        && eq_ignore_case(&recorded.resource_uri, &live.resource_uri)
        && canonical_selectors(&recorded.selectors) == canonical_selectors(&live.selectors)
        && recorded.filter == live.filter
        && recorded.enumeration_mode == live.enumeration_mode
        && recorded.body_element == live.body_element
        && recorded.body_content == live.body_content
        && recorded.enumeration_context.as_deref() == recorded_context
}

const ENVELOPE_OPEN: &str = concat!(
    r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope""#,
    r#" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing""#,
    r#" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration""#,
    r#" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#
);

fn header(out: &mut String, action: &str, relates_to: Option<&str>) {
    out.push_str(ENVELOPE_OPEN);
    out.push_str("<s:Header><a:Action>");
    out.push_str(action);
    out.push_str("</a:Action><a:MessageID>");
    out.push_str(MessageId::random().as_str());
    out.push_str("</a:MessageID><a:To>");
    out.push_str(ns::ANONYMOUS);
    out.push_str("</a:To>");
    if let Some(id) = relates_to {
        out.push_str("<a:RelatesTo>");
        escape_into(out, id);
        out.push_str("</a:RelatesTo>");
    }
    out.push_str("</s:Header>");
}

/// A Windows-shaped fault.
pub(crate) fn fault(code: &str, subcode: &str, message: &str, relates_to: Option<&str>) -> String {
    let mut out = String::new();
    header(&mut out, ns::action::FAULT, relates_to);
    out.push_str("<s:Body><s:Fault><s:Code><s:Value>");
    out.push_str(code);
    out.push_str("</s:Value><s:Subcode><s:Value>");
    out.push_str(subcode);
    out.push_str(r#"</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">"#);
    escape_into(&mut out, message);
    out.push_str(r#"</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858752" Machine="localhost"><f:Message>"#);
    escape_into(&mut out, message);
    out.push_str("</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>");
    out
}

fn release_response(relates_to: Option<&str>) -> String {
    let mut out = String::new();
    header(&mut out, ns::action::RELEASE_RESPONSE, relates_to);
    out.push_str("<s:Body><n:ReleaseResponse/></s:Body></s:Envelope>");
    out
}

fn identify_response() -> String {
    concat!(
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">"#,
        "<s:Header/><s:Body><wsmid:IdentifyResponse>",
        "<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>",
        "<wsmid:ProductVendor>winrm-sessions fixture server</wsmid:ProductVendor>",
        "<wsmid:ProductVersion>OS: 0.0.0 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>",
        "</wsmid:IdentifyResponse></s:Body></s:Envelope>"
    )
    .to_owned()
}
