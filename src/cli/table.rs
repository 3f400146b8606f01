//! Tables for people: the columns PowerShell shows by default for each class, sized to the
//! terminal, wide characters counted as two columns.

use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::output::Record;

/// Narrowest a column is squeezed to before columns are dropped instead.
const MIN_WIDTH: usize = 6;
const GAP: usize = 1;

/// The default columns of a class, like the Format views of Get-SmbSession and Get-CimInstance.
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

/// Columns for the abstract Win32_Session, whose rows are of several classes.
pub const SESSION_COLUMNS: &[&str] = &[
    "CimClass",
    "LogonId",
    "ComputerName",
    "UserName",
    "AuthenticationPackage",
    "StartTime",
];

/// Renders rows; `width` is the terminal width, `None` when not a terminal (no truncation).
pub fn render(records: &[Record], columns: &[String], width: Option<usize>) -> String {
    let mut columns: Vec<String> = columns.to_vec();
    let cells: Vec<Vec<(String, bool)>> = records
        .iter()
        .map(|r| columns.iter().map(|c| cell(r.get(c))).collect())
        .collect();
    let mut widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].0.width())
                .chain(std::iter::once(c.width()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut dropped = 0;
    if let Some(limit) = width {
        let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * w.len().saturating_sub(1);
        while total(&widths) > limit {
            let (widest, &w) = widths
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| **w)
                .expect("columns");
            if w > MIN_WIDTH.max(columns[widest].width().min(MIN_WIDTH)) {
                widths[widest] -= 1;
            } else if widths.len() > 1 {
                widths.pop();
                columns.pop();
                dropped += 1;
            } else {
                break;
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, values: Vec<(String, bool)>| {
        let mut row = String::new();
        for (i, (text, numeric)) in values.into_iter().take(widths.len()).enumerate() {
            let text = truncate(&text, widths[i]);
            let pad = widths[i] - text.width();
            if i > 0 {
                row.push_str(&" ".repeat(GAP));
            }
            if numeric {
                row.push_str(&" ".repeat(pad));
                row.push_str(&text);
            } else {
                row.push_str(&text);
                if i + 1 < widths.len() {
                    row.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(row.trim_end());
        out.push('\n');
    };
    let numeric_column: Vec<bool> = (0..columns.len())
        .map(|i| !cells.is_empty() && cells.iter().all(|row| row[i].1 || row[i].0.is_empty()))
        .collect();
    line(
        &mut out,
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), numeric_column[i]))
            .collect(),
    );
    line(
        &mut out,
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| ("-".repeat(c.width().min(widths[i])), numeric_column[i]))
            .collect(),
    );
    for row in cells {
        line(&mut out, row);
    }
    if dropped > 0 {
        out.push_str(&format!(
            "({dropped} more column(s) do not fit; use --format json or csv for all)\n"
        ));
    }
    out
}

/// Display text of a value and whether it is a number (right-aligned).
fn cell(value: Option<&Value>) -> (String, bool) {
    match value {
        None | Some(Value::Null) => (String::new(), false),
        Some(Value::Number(n)) => (n.to_string(), true),
        Some(Value::Bool(b)) => (if *b { "True" } else { "False" }.into(), false),
        Some(Value::String(s)) => (printable(s), false),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|v| cell(Some(v)).0).collect();
            (format!("{{{}}}", parts.join(", ")), false)
        }
        Some(Value::Object(map)) if map.contains_key("ResourceURI") => (reference_text(map), false),
        Some(Value::Object(map)) => (joined_text(map), false),
    }
}

/// A joined instance by what names it: a share, or a process name and id.
fn joined_text(map: &serde_json::Map<String, Value>) -> String {
    let text = |k: &str| {
        map.get(k)
            .map(|v| cell(Some(v)).0)
            .filter(|t| !t.is_empty())
    };
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
        for (i, (k, v)) in selectors.iter().enumerate() {
            out.push(if i == 0 { '.' } else { ',' });
            match v {
                Value::String(s) => out.push_str(&format!("{k}={s:?}")),
                Value::Object(inner) => out.push_str(&format!("{k}=({})", reference_text(inner))),
                other => out.push_str(&format!("{k}={other}")),
            }
        }
    }
    printable(&out)
}

fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

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
    use super::*;

    fn record(fields: serde_json::Value) -> Record {
        Record::new(
            "fs01",
            "MSFT_SmbSession",
            fields.as_object().unwrap().clone(),
        )
    }

    #[test]
    fn numbers_right_aligned_wide_characters_counted_twice() {
        let rows = vec![
            record(
                serde_json::json!({"SessionId": 8813272891621u64, "ClientUserName": "CONTOSO\\李雷", "NumOpens": 2}),
            ),
            record(
                serde_json::json!({"SessionId": 18446744073709551615u64, "ClientUserName": "a", "NumOpens": 12}),
            ),
        ];
        let cols: Vec<String> = ["SessionId", "ClientUserName", "NumOpens"]
            .map(String::from)
            .to_vec();
        let text = render(&rows, &cols, None);
        let expected = concat!(
            "           SessionId ClientUserName NumOpens\n",
            "           --------- -------------- --------\n",
            "       8813272891621 CONTOSO\\李雷          2\n",
            "18446744073709551615 a                    12\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn squeezes_the_widest_column_to_fit_the_terminal() {
        let rows = vec![record(
            serde_json::json!({"A": "x".repeat(80), "B": "short"}),
        )];
        let cols: Vec<String> = ["A", "B"].map(String::from).to_vec();
        let text = render(&rows, &cols, Some(40));
        assert!(text.lines().all(|l| l.width() <= 40), "{text}");
        assert!(text.contains('…'));
    }
}
