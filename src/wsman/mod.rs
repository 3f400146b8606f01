//! WS-Management messages, with no I/O: request envelopes, response parsing, faults, and the
//! enumeration state machine ([MS-WSMV], [DSP0226]).
//!
//! [MS-WSMV]: https://learn.microsoft.com/openspecs/windows_protocols/ms-wsmv
//! [DSP0226]: https://www.dmtf.org/standards/wsman

pub mod charset;
pub(crate) mod dom;
mod enumeration;
mod fault;
pub mod ns;
pub mod request;
mod request_summary;
mod response;
pub mod wql;
pub(crate) mod writer;
pub(crate) mod xml;

pub use enumeration::Enumerator;
pub(crate) use enumeration::wql_from_class as enumeration_from_class;
pub use fault::{Fault, QualifiedName, codes};
pub use request::{
    Addressing, Argument, AssociationFilter, AssociationKind, EnumerationMode, Filter, InvalidName,
    MessageId,
};
pub use request_summary::{RequestSummary, parse_request};
pub use response::{Identity, Page, Response, ResponseBody, ResponseHeader, parse_response};
pub(crate) use response::{Instances, ItemSink, ScannedItem, parse_response_into, scanned_value};

use crate::cim::ValueError;

/// A response that is not well-formed WS-Management.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not UTF-8.
    #[error("response is not UTF-8 (invalid byte at offset {position})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        position: usize,
    },
    /// The body's character encoding is not one SOAP allows, or is not what the message
    /// declares.
    #[error("{0}")]
    Encoding(charset::EncodingError),
    /// The body is empty.
    #[error("response body is empty")]
    Empty,
    /// The XML ends in the middle of an element.
    #[error("response is truncated (XML ends inside an element)")]
    Truncated,
    /// The XML is not well-formed.
    #[error("malformed XML at offset {position}: {message}")]
    Malformed {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the XML reader reported.
        message: String,
    },
    /// Nesting beyond the limit.
    #[error("XML nesting deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A document type declaration: never sent by WS-Management servers, refused to rule out
    /// entity expansion.
    #[error("response contains a document type declaration")]
    Dtd,
    /// An entity other than the five predefined ones.
    #[error("response uses the undefined entity &{0};")]
    UnknownEntity(String),
    /// The root element is not a SOAP 1.2 Envelope.
    #[error("expected a SOAP envelope, found {0}")]
    NotAnEnvelope(String),
    /// No `s:Body`.
    #[error("SOAP envelope has no body")]
    MissingBody,
    /// A typed CIM element (datetime, interval) whose text is not of that type.
    #[error("property {property}: {source}")]
    InvalidValue {
        /// The property.
        property: String,
        /// What was wrong.
        source: ValueError,
    },
    /// Well-formed, but not what WS-Management allows here.
    #[error("{0}")]
    Unexpected(String),
}

/// Why a response could not be used: unparseable, a fault, or a protocol violation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ResponseError {
    /// Not well-formed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The server answered with a fault.
    #[error("{0}")]
    Fault(Box<Fault>),
    /// Well-formed but breaks the exchange (wrong RelatesTo, missing context, ...).
    #[error("{0}")]
    Unexpected(String),
}

#[cfg(test)]
mod tests;
