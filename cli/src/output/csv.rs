//! CSV (RFC 4180) with a header row: the class's schema, completed by the first page's
//! properties, then rows as they come. Nested values (arrays, references, joined instances) are
//! JSON text in their cell.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;

use super::cells::{Cell, Keep, Row};
use super::{Layout, Record, invalid};

pub(super) struct CsvState {
    header: Vec<String>,
    /// Where `extras`, `PSComputerName` and `CimClass` begin: properties found on the first page
    /// go before them.
    trailing_from: usize,
    positions: HashMap<String, usize>,
    written: bool,
    /// The first page, held until its properties complete the header.
    pending: Vec<Row>,
    /// Properties seen after the header was written (reported once each).
    late: HashSet<String>,
    /// The row refilled for each record once the header is out.
    row: Row,
    /// The header position of each entry of the last row (the next record of the class has
    /// its keys in the same order: a comparison instead of a lookup).
    order: Vec<Option<usize>>,
    /// For each header position, the entry that fills it in the row being written.
    cells: Vec<Option<usize>>,
}

impl CsvState {
    pub(super) fn new(layout: &Layout) -> Self {
        let header = layout.header();
        Self {
            trailing_from: layout.schema.len(),
            positions: positions(&header),
            header,
            written: false,
            pending: Vec::new(),
            late: HashSet::new(),
            row: Row::new(Keep::JsonText),
            order: Vec::new(),
            cells: Vec::new(),
        }
    }

    pub(super) fn write<W: Write, B: ?Sized + Serialize>(
        &mut self,
        out: &mut W,
        record: &Record<'_, B>,
    ) -> io::Result<()> {
        if self.written {
            let mut row = std::mem::take(&mut self.row);
            let result = row
                .refill(record)
                .map_err(invalid)
                .and_then(|()| self.write_row(out, &row));
            self.row = row;
            return result;
        }
        let row = Row::of(Keep::JsonText, record).map_err(invalid)?;
        for (key, _) in row.entries() {
            if !self.positions.contains_key(key) {
                self.header.insert(self.trailing_from, key.clone());
                self.trailing_from += 1;
                self.positions = positions(&self.header);
            }
        }
        self.pending.push(row);
        Ok(())
    }

    pub(super) fn end_page<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        if self.written || self.pending.is_empty() {
            return Ok(());
        }
        self.write_header(out)?;
        for row in std::mem::take(&mut self.pending) {
            self.write_row(out, &row)?;
        }
        Ok(())
    }

    /// With no record at all, the header still goes out: scripts expect one.
    pub(super) fn finish<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.end_page(out)?;
        if !self.written {
            self.write_header(out)?;
        }
        Ok(())
    }

    fn write_header<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.written = true;
        write_line(out, self.header.iter().map(|s| Cow::Borrowed(s.as_str())))
    }

    fn write_row<W: Write>(&mut self, out: &mut W, row: &Row) -> io::Result<()> {
        self.cells.clear();
        self.cells.resize(self.header.len(), None);
        let entries = row.entries();
        self.order.resize(entries.len(), None);
        for (index, (key, _)) in entries.iter().enumerate() {
            let cached = self.order[index].filter(|&at| self.header[at] == *key);
            match cached.or_else(|| self.positions.get(key).copied()) {
                Some(at) => {
                    self.order[index] = Some(at);
                    self.cells[at] = Some(index);
                }
                None => {
                    if self.late.insert(key.clone()) {
                        eprintln!(
                            "winrm-sessions: property {key} first appeared after the CSV header \
                             was written and is left out of the CSV (--format json has it)"
                        );
                    }
                }
            }
        }
        let cells = self
            .cells
            .iter()
            .map(|at| at.map(|index| &entries[index].1));
        write_line(
            out,
            cells.map(|cell| match cell {
                None | Some(Cell::Empty) => Cow::Borrowed(""),
                Some(Cell::Number(n)) => Cow::Borrowed(n.as_str()),
                Some(Cell::Text(t)) => Cow::Borrowed(t.as_str()),
                Some(Cell::Bool(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
                Some(Cell::Json(json)) => Cow::Borrowed(json.as_str()),
                // This row keeps nested values as JSON text; a value would read the same.
                Some(Cell::Complex(v)) => Cow::Owned(v.to_string()),
            }),
        )
    }
}

fn positions(header: &[String]) -> HashMap<String, usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect()
}

/// One line: fields quoted when they hold a comma, a quote or a line break (RFC 4180).
fn write_line<'a, W: Write>(
    out: &mut W,
    fields: impl Iterator<Item = Cow<'a, str>>,
) -> io::Result<()> {
    for (i, text) in fields.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if text
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        {
            out.write_all(b"\"")?;
            out.write_all(text.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(text.as_bytes())?;
        }
    }
    out.write_all(b"\n")
}
