//! What the tool prints, in three formats, written as it arrives.
//!
//! Every command prints [`Record`]s through one [`Writer`]: a class instance, a joined
//! instance, a row of `close-smb-session`. A record serializes straight from the typed instance
//! to the output: JSON writes it as it goes; CSV and tables turn it into cells
//! ([`cells::Row`]). Output is buffered and flushed whenever the tool is about to wait for a
//! server (and when the buffer fills), so it appears as soon as it is known and a large
//! enumeration or fleet costs a few large writes, not one per record or per page.
//!
//! CSV and tables need columns before the first line: they take them from the class's schema
//! (and view) and from the first page (tables: the first rows, see `table`), then stream. A later cell wider than its column is cut
//! with `…` when it is text; numbers and identifiers are never cut (the line gets wider
//! instead), and a property that first appears after the CSV header was written is reported
//! once on stderr (the JSON output has it).

pub mod cells;
mod csv;
mod json;
mod table;
pub use table::default_columns;

use std::io::{self, Write};

use futures_util::{FutureExt, Stream, StreamExt};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use winrm_sessions::classes::TypedInstance;

use crate::args::Format;

/// An extra key of a record after the class's properties.
#[derive(Debug)]
pub enum Extra<'a> {
    Str(&'a str),
    Opt(Option<&'a str>),
    Bool(bool),
    Nested(&'a [Nested<'a>]),
}

impl Serialize for Extra<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Extra::Str(s) => serializer.serialize_str(s),
            Extra::Opt(o) => o.serialize(serializer),
            Extra::Bool(b) => serializer.serialize_bool(*b),
            Extra::Nested(items) => serializer.collect_seq(items.iter()),
        }
    }
}

/// An instance nested in a record (a joined connection or process): its properties and its
/// `CimClass`.
#[derive(Debug)]
pub struct Nested<'a>(pub TypedInstance<'a>);

impl Serialize for Nested<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        winrm_sessions::cim::flatten_into(&mut map, &self.0)?;
        map.serialize_entry("CimClass", self.0.class_name())?;
        map.end()
    }
}

/// One printed record: the class's properties (typed), extra keys, then `PSComputerName` and
/// `CimClass`. The JSON contract of DESIGN §5.
#[derive(Debug)]
pub struct Record<'a, B: ?Sized> {
    pub target: &'a str,
    pub class: &'a str,
    pub body: &'a B,
    pub extras: &'a [(&'static str, Extra<'a>)],
}

impl<B: ?Sized + Serialize> Serialize for Record<'_, B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        winrm_sessions::cim::flatten_into(&mut map, self.body)?;
        for (key, value) in self.extras {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("PSComputerName", self.target)?;
        map.serialize_entry("CimClass", self.class)?;
        map.end()
    }
}

/// Which columns a table shows.
#[derive(Clone, Debug)]
pub enum Columns {
    /// The default view of the record's class (like PowerShell's format views), or the first
    /// page's properties for a class without one; a new table starts when the class changes.
    ClassView,
    /// Exactly these (a projection, `sessions`, `close-smb-session`).
    Fixed(Vec<String>),
}

/// What a command tells the writer about its records ahead of the first one.
#[derive(Clone, Debug)]
pub struct Layout {
    pub columns: Columns,
    /// Properties known before any record (the class's schema, a projection), for the CSV
    /// header; the first page adds those the schema does not know.
    pub schema: Vec<String>,
    /// Keys after the properties (`Connections`, `Action`...), before `PSComputerName`.
    pub extras: Vec<&'static str>,
    /// Several targets: tables get a `PSComputerName` column.
    pub several_targets: bool,
    /// The terminal's width when stdout is one.
    pub width: Option<usize>,
    /// How many first rows a table waits for to size its columns.
    pub sample_rows: usize,
}

impl Layout {
    pub fn new(columns: Columns, schema: Vec<String>) -> Self {
        Self {
            columns,
            schema,
            extras: Vec::new(),
            several_targets: false,
            width: None,
            sample_rows: table::SAMPLE_ROWS,
        }
    }

    pub fn extras(mut self, extras: &[&'static str]) -> Self {
        self.extras = extras.to_vec();
        self
    }

    /// The CSV header known in advance: schema, extras, `PSComputerName`, `CimClass`.
    fn header(&self) -> Vec<String> {
        let mut header = self.schema.clone();
        header.extend(self.extras.iter().map(|e| e.to_string()));
        header.extend(["PSComputerName".into(), "CimClass".into()]);
        header
    }
}

enum Kind {
    Json,
    Csv(csv::CsvState),
    Table(table::TableState),
}

/// Writes records in one format to `out` as they come.
pub struct Writer<W: Write> {
    out: W,
    kind: Kind,
    /// Something was written to `out` since the last flush.
    unflushed: bool,
}

impl<W: Write> Writer<W> {
    pub fn new(format: Format, out: W, layout: Layout) -> Self {
        let kind = match format {
            Format::Json => Kind::Json,
            Format::Csv => Kind::Csv(csv::CsvState::new(&layout)),
            Format::Table => Kind::Table(table::TableState::new(layout)),
        };
        Self {
            out,
            kind,
            unflushed: false,
        }
    }

    /// Writes one record (CSV and tables hold it until [`Writer::end_page`]; everything is
    /// buffered until [`Writer::flush`]).
    pub fn write<B: ?Sized + Serialize>(&mut self, record: &Record<'_, B>) -> io::Result<()> {
        self.unflushed = true;
        match &mut self.kind {
            Kind::Json => json::write(&mut self.out, record),
            Kind::Csv(state) => state.write(&mut self.out, record),
            Kind::Table(state) => state.write(&mut self.out, record),
        }
    }

    /// A page (or a host) is complete: what CSV and tables held for it is written (still
    /// buffered: see [`Writer::flush`]).
    pub fn end_page(&mut self) -> io::Result<()> {
        match &mut self.kind {
            Kind::Json => Ok(()),
            Kind::Csv(state) => state.end_page(&mut self.out),
            Kind::Table(state) => state.end_page(&mut self.out),
        }
    }

    /// What is written goes out: called before waiting for more, so that output appears as
    /// soon as the tool has nothing else to do, in a few large writes rather than one per
    /// page of every host.
    pub fn flush(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.unflushed) {
            return Ok(());
        }
        self.out.flush()
    }

    /// The end: whatever is still held goes out (a CSV header too, when nothing came).
    pub fn finish(mut self) -> io::Result<W> {
        self.end_page()?;
        self.unflushed = true;
        match &mut self.kind {
            Kind::Json => {}
            Kind::Csv(state) => state.finish(&mut self.out)?,
            Kind::Table(state) => state.finish(&mut self.out)?,
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The next of `events`: at once when one is ready; otherwise `flush` runs first, so that what
/// is written goes out before the tool waits for servers. A failed flush is returned instead.
pub async fn next_or_flush<S: Stream + Unpin>(
    events: &mut S,
    flush: impl FnOnce() -> io::Result<()>,
) -> io::Result<Option<S::Item>> {
    if let Some(event) = events.next().now_or_never() {
        return Ok(event);
    }
    flush()?;
    Ok(events.next().await)
}

/// An I/O error from a cell conversion.
fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// The width to fit tables to: the terminal's when stdout is one (its size, or `COLUMNS` when
/// the size cannot be read); none when writing to a pipe or a file.
pub fn terminal_width(stdout: &std::io::Stdout) -> Option<usize> {
    use std::io::IsTerminal;
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .filter(|&w| w > 0)
}
