//! A scripted WinRM server on loopback: it enumerates N SMB sessions in the pages the client
//! asks for, with contexts that say where the next page starts, and lets a test answer any
//! request otherwise (a fault, a closed connection, a delay).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Behavior, hostile_server_seeing};

pub const SMB: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/SMB/MSFT_SmbSession";

/// What a request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Enumerate,
    Pull,
    Release,
    Invoke,
    Other,
}

/// Requests a scripted server received, by kind, and the contexts it was asked to release.
#[derive(Default)]
pub struct Seen {
    pub enumerates: AtomicUsize,
    pub pulls: AtomicUsize,
    pub releases: AtomicUsize,
    pub invokes: AtomicUsize,
    pub released: std::sync::Mutex<Vec<String>>,
}

impl Seen {
    pub fn count(&self, op: Op) -> usize {
        match op {
            Op::Enumerate => &self.enumerates,
            Op::Pull => &self.pulls,
            Op::Release => &self.releases,
            Op::Invoke => &self.invokes,
            Op::Other => return 0,
        }
        .load(Ordering::SeqCst)
    }
}

pub fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let rest = &text[start..];
    Some(&rest[..rest.find(close)?])
}

pub fn op_of(body: &str) -> Op {
    let action =
        between(body, "<a:Action s:mustUnderstand=\"true\">", "</a:Action>").unwrap_or_default();
    match action.rsplit('/').next().unwrap_or_default() {
        "Enumerate" => Op::Enumerate,
        "Pull" => Op::Pull,
        "Release" => Op::Release,
        _ if action.starts_with("http://schemas.microsoft.com/wbem/wsman/1/wmi/") => Op::Invoke,
        _ => Op::Other,
    }
}

/// A response envelope with `action`, relating to the request.
pub fn envelope(action: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">"#,
            "<s:Header><a:Action>{}</a:Action><a:RelatesTo>{{RELATES}}</a:RelatesTo></s:Header><s:Body>{}</s:Body></s:Envelope>"
        ),
        action, body
    )
}

/// A fault as Windows sends it: HTTP 500, a SOAP fault with a subcode and a WSManFault code.
pub fn fault(subcode: &str, code: u32, message: &str) -> Behavior {
    let body = envelope(
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
        &format!(
            concat!(
                r#"<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{}</s:Value></s:Subcode></s:Code>"#,
                r#"<s:Reason><s:Text xml:lang="en-US">{}</s:Text></s:Reason><s:Detail>"#,
                r#"<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{}" Machine="fs01"><f:Message>{}</f:Message></f:WSManFault>"#,
                "</s:Detail></s:Fault>"
            ),
            subcode, message, code, message
        ),
    );
    Behavior::Status(500, body)
}

pub fn timed_out() -> Behavior {
    fault(
        "w:TimedOut",
        2150858793,
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.",
    )
}

/// Page of `size` sessions from `offset` out of `total`, as the answer to `op`.
pub fn page(op: Op, offset: usize, size: usize, total: usize) -> Behavior {
    let end = (offset + size).min(total);
    let items: String = (offset..end)
        .map(|id| {
            format!(
                r#"<p:MSFT_SmbSession xmlns:p="{SMB}"><p:ClientComputerName>10.0.{}.{}</p:ClientComputerName><p:ClientUserName>CONTOSO\user{id}</p:ClientUserName><p:NumOpens>{}</p:NumOpens><p:SessionId>{}</p:SessionId></p:MSFT_SmbSession>"#,
                id / 256,
                id % 256,
                id % 7,
                1_000_000 + id
            )
        })
        .collect();
    let tail = if end >= total {
        "<w:EndOfSequence/>".to_owned()
    } else {
        format!("<n:EnumerationContext>uuid:ctx-{end}</n:EnumerationContext>")
    };
    let (element, items_ns) = match op {
        Op::Enumerate => ("EnumerateResponse", "w"),
        _ => ("PullResponse", "n"),
    };
    let tail = if op == Op::Pull {
        tail.replace("w:EndOfSequence", "n:EndOfSequence")
    } else {
        tail
    };
    Behavior::Soap(envelope(
        &format!("http://schemas.xmlsoap.org/ws/2004/09/enumeration/{element}"),
        &format!("<n:{element}><{items_ns}:Items>{items}</{items_ns}:Items>{tail}</n:{element}>"),
    ))
}

/// A WinRM server enumerating `total` SMB sessions in pages of the requested MaxElements, whose
/// contexts say where the next page starts; `twist` may answer a request otherwise (it gets
/// the operation and how many of that kind came before).
pub async fn scripted_server(
    total: usize,
    twist: impl Fn(Op, usize) -> Option<Behavior> + Send + Sync + 'static,
) -> (String, Arc<Seen>, tokio::task::JoinHandle<()>) {
    super::watchdog();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let (url, task) = hostile_server_seeing(move |_, body| {
        let op = op_of(body);
        let nth = match op {
            Op::Enumerate => counts.enumerates.fetch_add(1, Ordering::SeqCst),
            Op::Pull => counts.pulls.fetch_add(1, Ordering::SeqCst),
            Op::Release => counts.releases.fetch_add(1, Ordering::SeqCst),
            Op::Invoke => counts.invokes.fetch_add(1, Ordering::SeqCst),
            Op::Other => 0,
        };
        if let Some(behavior) = twist(op, nth) {
            return behavior;
        }
        let size: usize = between(body, "<w:MaxElements>", "</w:MaxElements>")
            .or_else(|| between(body, "<n:MaxElements>", "</n:MaxElements>"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(20);
        let context = between(body, "<n:EnumerationContext>", "</n:EnumerationContext>");
        match op {
            Op::Enumerate => page(op, 0, size, total),
            Op::Pull => {
                let offset = context
                    .and_then(|c| c.strip_prefix("uuid:ctx-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                if offset > total {
                    fault("n:InvalidEnumerationContext", 2150858843, "unknown context")
                } else {
                    page(op, offset, size, total)
                }
            }
            Op::Release => {
                counts
                    .released
                    .lock()
                    .unwrap()
                    .push(context.unwrap_or_default().to_owned());
                Behavior::Soap(envelope(
                    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse",
                    "",
                ))
            }
            Op::Invoke | Op::Other => fault("w:ActionNotSupported", 2150858771, "not here"),
        }
    })
    .await;
    (url, seen, task)
}

/// A server whose sessions change while it runs: the test adds and removes them, ForceClose
/// removes one, and `down` makes it drop every connection (a host that went away).
pub struct Live {
    pub url: String,
    pub sessions: Arc<std::sync::Mutex<Vec<u64>>>,
    pub down: Arc<std::sync::atomic::AtomicBool>,
    pub seen: Arc<Seen>,
    _task: tokio::task::JoinHandle<()>,
}

impl Live {
    /// Replaces the sessions (ids) the server has.
    pub fn set(&self, ids: &[u64]) {
        *self.sessions.lock().unwrap() = ids.to_vec();
    }
}

/// A [`Live`] server with these session ids; every enumeration fits one page.
pub async fn live_server(ids: &[u64]) -> Live {
    let sessions = Arc::new(std::sync::Mutex::new(ids.to_vec()));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let (state, off, counts) = (sessions.clone(), down.clone(), seen.clone());
    let (url, task) = hostile_server_seeing(move |_, body| {
        if off.load(Ordering::SeqCst) {
            return Behavior::Close;
        }
        let op = op_of(body);
        match op {
            Op::Enumerate => {
                counts.enumerates.fetch_add(1, Ordering::SeqCst);
                let items: String = state
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|id| {
                        format!(
                            r#"<p:MSFT_SmbSession xmlns:p="{SMB}"><p:ClientComputerName>10.0.0.{}</p:ClientComputerName><p:ClientUserName>CORP\user{id}</p:ClientUserName><p:NumOpens>1</p:NumOpens><p:SessionId>{id}</p:SessionId></p:MSFT_SmbSession>"#,
                            id % 250
                        )
                    })
                    .collect();
                Behavior::Soap(envelope(
                    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse",
                    &format!("<n:EnumerateResponse><w:Items>{items}</w:Items><w:EndOfSequence/></n:EnumerateResponse>"),
                ))
            }
            Op::Invoke => {
                counts.invokes.fetch_add(1, Ordering::SeqCst);
                let id: Option<u64> = between(body, r#"<w:Selector Name="SessionId">"#, "</w:Selector>")
                    .and_then(|id| id.parse().ok());
                let mut sessions = state.lock().unwrap();
                let before = sessions.len();
                sessions.retain(|s| Some(*s) != id);
                let code = if sessions.len() < before { 0 } else { 2 };
                Behavior::Soap(envelope(
                    &format!("{SMB}/ForceCloseResponse"),
                    &format!(r#"<p:ForceClose_OUTPUT xmlns:p="{SMB}"><p:ReturnValue>{code}</p:ReturnValue></p:ForceClose_OUTPUT>"#),
                ))
            }
            Op::Release => Behavior::Soap(envelope(
                "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse",
                "",
            )),
            _ => fault("w:ActionNotSupported", 2150858771, "not here"),
        }
    })
    .await;
    Live {
        url,
        sessions,
        down,
        seen,
        _task: task,
    }
}
