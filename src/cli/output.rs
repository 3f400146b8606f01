//! Records and the three output formats. JSON is written as records arrive; CSV and tables need
//! every record to size their columns, so they are written at the end.

use std::io::{self, Write};

use serde_json::{Map, Value};

use super::args::Format;
use super::table;

/// One instance as printed: WMI property names, then `PSComputerName` and `CimClass`.
#[derive(Debug, Clone)]
pub struct Record {
    pub class: String,
    fields: Map<String, Value>,
}

impl Record {
    pub fn new(target: &str, class: &str, mut fields: Map<String, Value>) -> Self {
        fields.insert("PSComputerName".into(), Value::String(target.into()));
        fields.insert("CimClass".into(), Value::String(class.into()));
        Self {
            class: class.into(),
            fields,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.fields.keys()
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

/// Where records go.
pub struct Output<W: Write> {
    format: Format,
    out: W,
    buffered: Vec<Record>,
    columns: TableColumns,
    terminal_width: Option<usize>,
    multiple_targets: bool,
}

/// Which columns a table shows.
#[derive(Debug, Clone, Copy)]
pub enum TableColumns {
    /// The class's default view (or every property for classes without one).
    ClassDefault,
    /// The columns for the abstract Win32_Session.
    Sessions,
    /// These columns.
    Custom(&'static [&'static str]),
}

impl<W: Write> Output<W> {
    pub fn new(
        format: Format,
        out: W,
        columns: TableColumns,
        terminal_width: Option<usize>,
        multiple_targets: bool,
    ) -> Self {
        Self {
            format,
            out,
            buffered: Vec::new(),
            columns,
            terminal_width,
            multiple_targets,
        }
    }

    pub fn write(&mut self, record: Record) -> io::Result<()> {
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut self.out, record.fields())?;
                self.out.write_all(b"\n")?;
                self.out.flush()
            }
            Format::Csv | Format::Table => {
                self.buffered.push(record);
                Ok(())
            }
        }
    }

    /// A host has answered completely: with several targets, its table is printed now rather
    /// than at the end (CSV needs every record for its header and waits).
    pub fn host_done(&mut self, target: &str) -> io::Result<()> {
        if self.format != Format::Table || !self.multiple_targets {
            return Ok(());
        }
        let (mine, others): (Vec<Record>, Vec<Record>) = std::mem::take(&mut self.buffered)
            .into_iter()
            .partition(|r| r.get("PSComputerName").and_then(|v| v.as_str()) == Some(target));
        self.buffered = others;
        if mine.is_empty() {
            return Ok(());
        }
        let rest = std::mem::replace(&mut self.buffered, mine);
        writeln!(self.out, "== {target} ==")?;
        let multiple = std::mem::replace(&mut self.multiple_targets, false);
        let result = self.write_tables();
        self.multiple_targets = multiple;
        self.buffered = rest;
        writeln!(self.out)?;
        self.out.flush()?;
        result
    }

    pub fn finish(mut self) -> io::Result<W> {
        match self.format {
            Format::Json => {}
            Format::Csv => self.write_csv()?,
            Format::Table => self.write_tables()?,
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_csv(&mut self) -> io::Result<()> {
        let mut header: Vec<String> = Vec::new();
        for record in &self.buffered {
            for key in record.keys() {
                if !header.contains(key) {
                    header.push(key.clone());
                }
            }
        }
        if header.is_empty() {
            return Ok(());
        }
        let mut writer = csv::Writer::from_writer(&mut self.out);
        writer.write_record(&header)?;
        for record in &self.buffered {
            writer.write_record(header.iter().map(|k| csv_cell(record.get(k))))?;
        }
        writer.flush()?;
        Ok(())
    }

    fn write_tables(&mut self) -> io::Result<()> {
        if self.buffered.is_empty() {
            return Ok(());
        }
        // One table per class, in order of first appearance (a query may mix classes).
        let mut classes: Vec<String> = Vec::new();
        for r in &self.buffered {
            if !classes.iter().any(|c| c.eq_ignore_ascii_case(&r.class)) {
                classes.push(r.class.clone());
            }
        }
        let groups: Vec<(Option<String>, Vec<Record>)> = match self.columns {
            TableColumns::Sessions | TableColumns::Custom(_) => {
                vec![(None, std::mem::take(&mut self.buffered))]
            }
            TableColumns::ClassDefault => classes
                .iter()
                .map(|c| {
                    let rows = self
                        .buffered
                        .iter()
                        .filter(|r| r.class.eq_ignore_ascii_case(c))
                        .cloned()
                        .collect();
                    (Some(c.clone()), rows)
                })
                .collect(),
        };
        let titled = groups.len() > 1;
        for (i, (class, rows)) in groups.iter().enumerate() {
            let mut columns: Vec<String> = match (self.columns, class) {
                (TableColumns::Sessions, _) => table::SESSION_COLUMNS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                (TableColumns::Custom(columns), _) => {
                    columns.iter().map(|s| s.to_string()).collect()
                }
                (TableColumns::ClassDefault, Some(class)) => match table::default_columns(class) {
                    Some(cols) => cols.iter().map(|s| s.to_string()).collect(),
                    None => rows[0]
                        .keys()
                        .filter(|k| *k != "PSComputerName" && *k != "CimClass")
                        .cloned()
                        .collect(),
                },
                (TableColumns::ClassDefault, None) => Vec::new(),
            };
            // Joined instances, shown by name in one column.
            for joined in ["Connections", "Processes"] {
                if rows[0].get(joined).is_some() {
                    columns.push(joined.into());
                }
            }
            if self.multiple_targets {
                columns.push("PSComputerName".into());
            }
            if titled {
                if i > 0 {
                    writeln!(self.out)?;
                }
                writeln!(self.out, "{}:", class.as_deref().unwrap_or_default())?;
            }
            self.out
                .write_all(table::render(rows, &columns, self.terminal_width).as_bytes())?;
        }
        Ok(())
    }
}

fn csv_cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(target: &str, class: &str, fields: Value) -> Record {
        Record::new(target, class, fields.as_object().unwrap().clone())
    }

    #[test]
    fn json_is_one_object_per_line_with_exact_integers_and_nulls() {
        let mut out = Output::new(
            Format::Json,
            Vec::new(),
            TableColumns::ClassDefault,
            None,
            false,
        );
        out.write(record(
            "fs01",
            "MSFT_SmbSession",
            serde_json::json!({"SessionId": u64::MAX, "Dialect": null}),
        ))
        .unwrap();
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"SessionId\":18446744073709551615,\"Dialect\":null,\"PSComputerName\":\"fs01\",\"CimClass\":\"MSFT_SmbSession\"}\n"
        );
    }

    #[test]
    fn csv_header_is_the_union_of_keys_in_order_of_appearance() {
        let mut out = Output::new(
            Format::Csv,
            Vec::new(),
            TableColumns::ClassDefault,
            None,
            false,
        );
        out.write(record("h", "A", serde_json::json!({"X": 1, "Y": "a,b"})))
            .unwrap();
        out.write(record("h", "B", serde_json::json!({"Z": null})))
            .unwrap();
        let text = String::from_utf8(out.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "X,Y,PSComputerName,CimClass,Z\n1,\"a,b\",h,A,\nh,B,,,\n".replace("h,B,,,", ",,h,B,")
        );
    }
}
