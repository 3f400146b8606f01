//! Tables for people, streamed: the columns PowerShell shows by default for each class, sized
//! from the first rows (as Format-Table does: the first page, or a little more when that page
//! is small, up to [`SAMPLE_ROWS`] rows or [`SAMPLE_TIME`]), wide characters counted as two
//! columns.
//!
//! Text columns shrink to fit the terminal and a later, wider text is cut with `…`. Numbers and
//! identifiers (the class's key properties, `PSComputerName`) are never cut: when they do not
//! fit, the line gets wider rather than wrong.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
use winrm_sessions::classes::key_properties;

use super::cells::{Cell, Keep, Row};
use super::{Columns, Layout, Record, invalid};

/// Narrowest a text column is squeezed to.
const MIN_WIDTH: usize = 6;
/// Rows that size a table when the first pages are small.
pub(super) const SAMPLE_ROWS: usize = 50;
/// Longest a table waits for its sample before printing what it has.
pub(super) const SAMPLE_TIME: std::time::Duration = std::time::Duration::from_millis(300);
const GAP: usize = 1;

/// The default columns of a class, like the format views of Get-SmbSession and
/// Get-CimInstance.
pub fn default_columns(class: &str) -> Option<&'static [&'static str]> {
    Some(match class.to_ascii_lowercase().as_str() {
        "msft_smbsession" => &[
            "SessionId",
            "ClientComputerName",
            "ClientUserName",
            "NumOpens",
        ],
        "win32_serversession" => &[
            "ComputerName",
            "UserName",
            "ActiveTime",
            "IdleTime",
            "ResourcesOpened",
            "ClientType",
        ],
        "win32_serverconnection" => &[
            "ComputerName",
            "UserName",
            "ShareName",
            "NumberOfFiles",
            "ActiveTime",
            "ConnectionID",
        ],
        "win32_sessionconnection" | "win32_sessionprocess" => &["Antecedent", "Dependent"],
        "win32_logonsession" => &["LogonId", "LogonType", "AuthenticationPackage", "StartTime"],
        "win32_process" => &[
            "ProcessId",
            "ParentProcessId",
            "Name",
            "SessionId",
            "WorkingSetSize",
            "CommandLine",
        ],
        _ => return None,
    })
}

#[derive(Debug)]
struct Column {
    name: String,
    width: usize,
    numeric: bool,
    /// Numbers and identifiers: never cut.
    whole: bool,
    /// The index of this column's entry in the last row written.
    entry: std::cell::Cell<Option<usize>>,
}

#[derive(Debug)]
struct Table {
    class: String,
    columns: Vec<Column>,
}

pub(super) struct TableState {
    layout: Layout,
    current: Option<Table>,
    /// The first rows of a table, held until the end of their page to size the columns.
    pending: Vec<Row>,
    pending_class: String,
    pending_since: Option<std::time::Instant>,
    tables: usize,
    /// Refilled for each record once the table is sized.
    row: Row,
    /// The line being written.
    line: String,
}

impl TableState {
    pub(super) fn new(layout: Layout) -> Self {
        Self {
            layout,
            current: None,
            pending: Vec::new(),
            pending_class: String::new(),
            pending_since: None,
            tables: 0,
            row: Row::new(Keep::Value),
            line: String::new(),
        }
    }

    fn splits_by_class(&self) -> bool {
        matches!(self.layout.columns, Columns::ClassView)
    }

    pub(super) fn write<W: Write, B: ?Sized + Serialize>(
        &mut self,
        out: &mut W,
        record: &Record<'_, B>,
    ) -> io::Result<()> {
        let new_class = |class: &str| !class.eq_ignore_ascii_case(record.class);
        if self.splits_by_class() {
            if !self.pending.is_empty() && new_class(&self.pending_class) {
                self.emit_pending(out)?;
            }
            if self.current.as_ref().is_some_and(|t| new_class(&t.class)) {
                self.current = None;
            }
        }
        match &self.current {
            Some(table) => {
                self.row.refill(record).map_err(invalid)?;
                write_row(out, &mut self.line, table, &self.row)
            }
            None => {
                let row = Row::of(Keep::Value, record).map_err(invalid)?;
                if self.pending.is_empty() {
                    self.pending_class = record.class.to_owned();
                    self.pending_since = Some(std::time::Instant::now());
                }
                self.pending.push(row);
                Ok(())
            }
        }
    }

    /// A page is complete: the held rows go out once they are enough to size the table, or
    /// have waited long enough.
    pub(super) fn end_page<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        let waited = self
            .pending_since
            .is_some_and(|since| since.elapsed() >= SAMPLE_TIME);
        if self.pending.len() >= self.layout.sample_rows || (!self.pending.is_empty() && waited) {
            self.emit_pending(out)?;
        }
        Ok(())
    }

    /// The end: whatever is held goes out.
    pub(super) fn finish<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.emit_pending(out)?;
        }
        Ok(())
    }

    /// Sizes a table from its first rows, prints its header and them.
    fn emit_pending<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        let rows = std::mem::take(&mut self.pending);
        let class = std::mem::take(&mut self.pending_class);
        self.pending_since = None;
        let table = self.size(&class, &rows);
        if self.tables > 0 {
            out.write_all(b"\n")?;
        }
        self.tables += 1;
        write_header(out, &mut self.line, &table)?;
        for row in &rows {
            write_row(out, &mut self.line, &table, row)?;
        }
        self.current = Some(table);
        Ok(())
    }

    fn size(&self, class: &str, rows: &[Row]) -> Table {
        let mut names: Vec<String> = match &self.layout.columns {
            Columns::Fixed(columns) => columns.clone(),
            Columns::ClassView => match default_columns(class) {
                Some(view) => view.iter().map(|c| c.to_string()).collect(),
                None => rows[0]
                    .entries()
                    .iter()
                    .map(|(k, _)| k.clone())
                    .filter(|k| {
                        k != "PSComputerName"
                            && k != "CimClass"
                            && !self.layout.extras.iter().any(|e| e == k)
                    })
                    .collect(),
            },
        };
        if matches!(self.layout.columns, Columns::ClassView) {
            names.extend(self.layout.extras.iter().map(|e| e.to_string()));
        }
        if self.layout.several_targets && !names.iter().any(|n| n == "PSComputerName") {
            names.push("PSComputerName".into());
        }
        let keys = key_properties(class);
        let mut columns: Vec<Column> = names
            .into_iter()
            .map(|name| {
                let cells: Vec<Option<&Cell>> = rows.iter().map(|r| r.get(&name)).collect();
                let numeric = cells.iter().any(|c| c.is_some_and(Cell::is_number))
                    && cells
                        .iter()
                        .all(|c| c.is_none_or(|c| c.is_number() || *c == Cell::Empty));
                let width = cells
                    .iter()
                    .map(|c| text(*c).width())
                    .chain(std::iter::once(name.width()))
                    .max()
                    .unwrap_or(0);
                let whole = numeric
                    || name == "PSComputerName"
                    || keys.iter().any(|k| k.eq_ignore_ascii_case(&name));
                Column {
                    name,
                    width,
                    numeric,
                    whole,
                    entry: std::cell::Cell::new(None),
                }
            })
            .collect();
        if let Some(limit) = self.layout.width {
            fit(&mut columns, limit);
        }
        Table {
            class: class.to_owned(),
            columns,
        }
    }
}

/// Shrinks text columns, widest first, down to [`MIN_WIDTH`], until the line fits `limit`.
fn fit(columns: &mut [Column], limit: usize) {
    let total =
        |c: &[Column]| c.iter().map(|c| c.width).sum::<usize>() + GAP * c.len().saturating_sub(1);
    while total(columns) > limit {
        let Some(widest) = columns
            .iter_mut()
            .filter(|c| !c.whole && c.width > MIN_WIDTH)
            .max_by_key(|c| c.width)
        else {
            return; // only numbers and identifiers left: the line is wider than the terminal
        };
        widest.width -= 1;
    }
}

fn write_header<W: Write>(out: &mut W, line: &mut String, table: &Table) -> io::Result<()> {
    let names = table
        .columns
        .iter()
        .map(|c| (Cow::Borrowed(c.name.as_str()), c.numeric));
    write_line(out, line, table, names, true)?;
    let rules: Vec<String> = table
        .columns
        .iter()
        .map(|c| "-".repeat(c.name.width().min(c.width)))
        .collect();
    let rules = rules
        .iter()
        .zip(&table.columns)
        .map(|(r, c)| (Cow::Borrowed(r.as_str()), c.numeric));
    write_line(out, line, table, rules, true)
}

fn write_row<W: Write>(out: &mut W, line: &mut String, table: &Table, row: &Row) -> io::Result<()> {
    let entries = row.entries();
    let cells = table.columns.iter().map(|c| {
        // Where the previous row had it (rows of a class come alike), else a search.
        let cached = c
            .entry
            .get()
            .filter(|&i| entries.get(i).is_some_and(|(k, _)| *k == c.name));
        let found = cached.or_else(|| entries.iter().position(|(k, _)| *k == c.name));
        c.entry.set(found);
        (text(found.map(|i| &entries[i].1)), c.numeric)
    });
    write_line(out, line, table, cells, false)
}

/// Columns of `text` on a terminal (wide characters count two); ASCII at no cost.
fn width(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.width()
    }
}

/// One line: each cell padded to its column, cut with `…` when it is wider and may be cut.
fn write_line<'a, W: Write>(
    out: &mut W,
    line: &mut String,
    table: &Table,
    cells: impl Iterator<Item = (Cow<'a, str>, bool)>,
    header: bool,
) -> io::Result<()> {
    const SPACES: &str = "                                                                ";
    let pad = |line: &mut String, mut n: usize| {
        while n > 0 {
            let chunk = n.min(SPACES.len());
            line.push_str(&SPACES[..chunk]);
            n -= chunk;
        }
    };
    line.clear();
    let last = table.columns.len().saturating_sub(1);
    for (i, ((text, right), column)) in cells.zip(&table.columns).enumerate() {
        if i > 0 {
            pad(line, GAP);
        }
        let text = if (column.whole && !header) || width(&text) <= column.width {
            text
        } else {
            Cow::Owned(truncate(&text, column.width))
        };
        let room = column.width.saturating_sub(width(&text));
        if right {
            pad(line, room);
            line.push_str(&text);
        } else {
            line.push_str(&text);
            if i < last {
                pad(line, room);
            }
        }
    }
    out.write_all(line.trim_end().as_bytes())?;
    out.write_all(b"\n")
}

/// The display text of a cell.
fn text(cell: Option<&Cell>) -> Cow<'_, str> {
    match cell {
        None | Some(Cell::Empty) => Cow::Borrowed(""),
        Some(Cell::Number(n)) => Cow::Borrowed(n),
        Some(Cell::Text(t)) => printable(t),
        Some(Cell::Bool(b)) => Cow::Borrowed(if *b { "True" } else { "False" }),
        Some(Cell::Complex(value)) => Cow::Owned(value_text(value)),
        Some(Cell::Json(json)) => printable(json),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::String(s) => printable(s).into_owned(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_text).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Object(map) if map.contains_key("ResourceURI") => reference_text(map),
        Value::Object(map) => joined_text(map),
    }
}

/// A joined instance by what names it: a share, or a process name and id.
fn joined_text(map: &serde_json::Map<String, Value>) -> String {
    let text = |k: &str| map.get(k).map(value_text).filter(|t| !t.is_empty());
    match (text("ShareName"), text("Name"), text("ProcessId")) {
        (Some(share), _, _) => share,
        (None, Some(name), Some(pid)) => format!("{name}({pid})"),
        (None, Some(name), None) => name,
        _ => "…".into(),
    }
}

/// `Win32_ServerSession.ComputerName="10.0.0.7",UserName="bob"` for a reference object.
fn reference_text(map: &serde_json::Map<String, Value>) -> String {
    let class = map
        .get("ResourceURI")
        .and_then(Value::as_str)
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or("?");
    let mut out = class.to_owned();
    if let Some(Value::Object(selectors)) = map.get("Selectors") {
        use std::fmt::Write;
        for (i, (k, v)) in selectors.iter().enumerate() {
            out.push(if i == 0 { '.' } else { ',' });
            // Writing to a String cannot fail.
            let _ = match v {
                Value::String(s) => write!(out, "{k}={s:?}"),
                Value::Object(inner) => write!(out, "{k}=({})", reference_text(inner)),
                other => write!(out, "{k}={other}"),
            };
        }
    }
    match printable(&out) {
        Cow::Borrowed(_) => out,
        Cow::Owned(cleaned) => cleaned,
    }
}

/// `s` with each control character (a line break, a tab) shown as a space, so that a row
/// stays one line; borrowed when there is none.
fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

/// `s` cut to `width` columns with `…` (wide characters count two).
fn truncate(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Layout, Writer};
    use super::*;
    use crate::args::Format;

    fn render(rows: &[serde_json::Value], layout: Layout, pages: &[usize]) -> String {
        let mut writer = Writer::new(Format::Table, Vec::new(), layout);
        let mut rest = rows;
        for &n in pages {
            let (page, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            for body in page {
                let target = body["PSComputerName"].as_str().unwrap_or("fs01").to_owned();
                let mut fields = body.as_object().unwrap().clone();
                fields.remove("PSComputerName");
                let record = Record {
                    target: &target,
                    class: "MSFT_SmbSession",
                    body: &fields,
                    extras: &[],
                };
                writer.write(&record).unwrap();
            }
            writer.end_page().unwrap();
        }
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    fn sessions() -> Vec<serde_json::Value> {
        vec![
            serde_json::json!({"SessionId": 8813272891621u64, "ClientComputerName": "10.0.0.1", "ClientUserName": "CONTOSO\\李雷", "NumOpens": 2}),
            serde_json::json!({"SessionId": 18446744073709551615u64, "ClientComputerName": "WS-0042", "ClientUserName": "a", "NumOpens": 12}),
        ]
    }

    #[test]
    fn numbers_right_aligned_wide_characters_counted_twice() {
        let text = render(&sessions(), Layout::new(Columns::ClassView, vec![]), &[2]);
        let expected = concat!(
            "           SessionId ClientComputerName ClientUserName NumOpens\n",
            "           --------- ------------------ -------------- --------\n",
            "       8813272891621 10.0.0.1           CONTOSO\\李雷          2\n",
            "18446744073709551615 WS-0042            a                    12\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn at_any_width_numbers_are_whole_and_text_shrinks_first() {
        for width in [20, 50, 80] {
            let mut layout = Layout::new(Columns::ClassView, vec![]);
            layout.width = Some(width);
            let text = render(&sessions(), layout, &[2]);
            assert!(text.contains("18446744073709551615"), "{width}: {text}");
            assert!(text.contains("8813272891621"), "{width}: {text}");
            if width == 50 {
                assert!(text.lines().all(|l| l.width() <= 50), "{text}");
            }
        }
    }

    #[test]
    fn later_pages_keep_the_widths_cut_text_and_never_numbers() {
        let mut rows = sessions();
        rows.push(serde_json::json!({"SessionId": 1u64 << 62, "ClientComputerName": "a-much-longer-computer-name.example", "ClientUserName": "b", "NumOpens": 123456789012u64}));
        let mut layout = Layout::new(Columns::ClassView, vec![]);
        layout.sample_rows = 2;
        let text = render(&rows, layout, &[2, 1]);
        let last = text.lines().last().unwrap();
        assert!(last.contains("4611686018427387904"), "{text}");
        assert!(last.contains("123456789012"), "{text}");
        assert!(last.contains('…'), "text cut: {text}");
    }

    #[test]
    fn emoji_and_long_names_at_any_width_keep_numbers_whole() {
        let long = "x".repeat(256);
        let rows = vec![
            serde_json::json!({"SessionId": 18446744073709551615u64, "ClientComputerName": long, "ClientUserName": "CONTOSO\\😀👩‍💻", "NumOpens": 7}),
            serde_json::json!({"SessionId": 1u64, "ClientComputerName": "主机", "ClientUserName": "李雷", "NumOpens": 123456789012u64}),
        ];
        for width in [1, 20, 50, 80] {
            let mut layout = Layout::new(Columns::ClassView, vec![]);
            layout.width = Some(width);
            let text = render(&rows, layout, &[2]);
            assert!(text.contains("18446744073709551615"), "{width}: {text}");
            assert!(text.contains("123456789012"), "{width}: {text}");
            assert!(!text.contains(&long), "{width}: the long name is cut");
        }
        let text = render(&rows, Layout::new(Columns::ClassView, vec![]), &[2]);
        assert!(text.contains(&long), "not a terminal: nothing is cut");
    }

    #[test]
    fn several_targets_add_a_computer_column_to_one_table() {
        let mut rows = sessions();
        rows[1]["PSComputerName"] = "fs02".into();
        let mut layout = Layout::new(Columns::ClassView, vec![]);
        layout.several_targets = true;
        let text = render(&rows, layout, &[1, 1]);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("PSComputerName"))
                .count(),
            1
        );
        assert!(text.contains("fs02"));
    }
}
