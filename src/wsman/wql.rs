//! Building WQL safely: string literals escaped so that a value from outside (a user name, a
//! share name) can never change the shape of the query, and identifiers checked.
//!
//! ```
//! use winrm_sessions::wsman::wql::Select;
//!
//! let query = Select::from("Win32_Process")
//!     .where_eq("Name", "o'brien \\ \"co\".exe")
//!     .where_eq("SessionId", 2u32)
//!     .build()
//!     .unwrap();
//! assert_eq!(
//!     query,
//!     r#"SELECT * FROM Win32_Process WHERE Name = 'o\'brien \\ "co".exe' AND SessionId = 2"#
//! );
//! ```

use std::fmt;

use crate::cim::{Reference, SelectorValue};

/// A value in a WQL condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WqlValue {
    /// A string literal, escaped on output.
    Text(String),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// `TRUE` / `FALSE`.
    Bool(bool),
}

impl From<&str> for WqlValue {
    fn from(v: &str) -> Self {
        WqlValue::Text(v.to_owned())
    }
}
impl From<String> for WqlValue {
    fn from(v: String) -> Self {
        WqlValue::Text(v)
    }
}
impl From<u64> for WqlValue {
    fn from(v: u64) -> Self {
        WqlValue::UInt(v)
    }
}
impl From<u32> for WqlValue {
    fn from(v: u32) -> Self {
        WqlValue::UInt(v.into())
    }
}
impl From<i64> for WqlValue {
    fn from(v: i64) -> Self {
        WqlValue::Int(v)
    }
}
impl From<bool> for WqlValue {
    fn from(v: bool) -> Self {
        WqlValue::Bool(v)
    }
}

impl fmt::Display for WqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WqlValue::Text(t) => f.write_str(&quote(t)),
            WqlValue::Int(i) => write!(f, "{i}"),
            WqlValue::UInt(u) => write!(f, "{u}"),
            WqlValue::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
        }
    }
}

/// What a `SELECT` query asks for: the class after `FROM` and, for a projection
/// (`SELECT a, b FROM ...`), the properties in the order given. `None` for anything else
/// (`ASSOCIATORS OF`, `REFERENCES OF`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectShape {
    /// The class after `FROM`.
    pub class: String,
    /// The selected properties; `None` for `SELECT *`.
    pub properties: Option<Vec<String>>,
}

/// Reads the shape of a `SELECT` query (see [`SelectShape`]).
pub fn select_shape(query: &str) -> Option<SelectShape> {
    let trimmed = query.trim_start();
    let head = trimmed.get(..6)?;
    if !head.eq_ignore_ascii_case("select") {
        return None;
    }
    let rest = &trimmed[6..];
    let lower = rest.to_ascii_lowercase();
    let from = lower
        .match_indices("from")
        .find(|(at, _)| {
            let before = rest[..*at].chars().last();
            let after = rest[at + 4..].chars().next();
            before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
        })?
        .0;
    let class = crate::wsman::enumeration_from_class(query)?;
    let list = rest[..from].trim();
    let properties = (list != "*").then(|| {
        list.split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    });
    Some(SelectShape { class, properties })
}

/// True when `text` starts as a WQL statement does (`SELECT`, `ASSOCIATORS OF`,
/// `REFERENCES OF`, in any case): what tells a query from a host name given in its place.
pub fn looks_like_wql(text: &str) -> bool {
    let mut words = text.split_whitespace();
    match words.next().map(str::to_ascii_uppercase).as_deref() {
        Some("SELECT") => true,
        Some("ASSOCIATORS" | "REFERENCES") => {
            words.next().is_some_and(|w| w.eq_ignore_ascii_case("OF"))
        }
        _ => false,
    }
}

/// A WQL string literal in single quotes, with `\` and `'` escaped by a backslash.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if matches!(c, '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// A class or property name that is not a plain identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid WQL identifier (letters, digits and _, not starting with a digit)")]
pub struct InvalidIdentifier(pub String);

fn identifier(name: &str) -> Result<&str, InvalidIdentifier> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(InvalidIdentifier(name.to_owned()))
    }
}

/// `SELECT ... FROM ... WHERE ...` with escaped values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Select {
    class: String,
    properties: Vec<String>,
    conditions: Vec<(String, &'static str, WqlValue)>,
}

impl Select {
    /// All properties of a class.
    pub fn from(class: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            ..Self::default()
        }
    }

    /// Only these properties (a projection: items come back as `w:XmlFragment`).
    pub fn properties<I, S>(mut self, properties: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.properties = properties.into_iter().map(Into::into).collect();
        self
    }

    /// `AND property = value`.
    pub fn where_eq(self, property: impl Into<String>, value: impl Into<WqlValue>) -> Self {
        self.condition(property, "=", value)
    }

    /// `AND property <> value`.
    pub fn where_ne(self, property: impl Into<String>, value: impl Into<WqlValue>) -> Self {
        self.condition(property, "<>", value)
    }

    /// `AND property LIKE 'pattern'` (`%` and `_` are wildcards).
    pub fn where_like(self, property: impl Into<String>, pattern: impl Into<String>) -> Self {
        self.condition(property, "LIKE", WqlValue::Text(pattern.into()))
    }

    fn condition(
        mut self,
        property: impl Into<String>,
        op: &'static str,
        value: impl Into<WqlValue>,
    ) -> Self {
        self.conditions.push((property.into(), op, value.into()));
        self
    }

    /// The query text.
    pub fn build(&self) -> Result<String, InvalidIdentifier> {
        let columns = if self.properties.is_empty() {
            "*".to_owned()
        } else {
            self.properties
                .iter()
                .map(|p| identifier(p))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        };
        let mut out = format!("SELECT {columns} FROM {}", identifier(&self.class)?);
        for (i, (property, op, value)) in self.conditions.iter().enumerate() {
            out.push_str(if i == 0 { " WHERE " } else { " AND " });
            out.push_str(&format!("{} {op} {value}", identifier(property)?));
        }
        Ok(out)
    }
}

/// The WMI object path of a reference, for `ASSOCIATORS OF {...}`:
/// `Win32_ServerSession.ComputerName="10.0.0.7",UserName="bob"`, values escaped.
pub fn object_path(reference: &Reference) -> Result<String, InvalidIdentifier> {
    let class = reference
        .class_path()
        .map(|c| c.class_name().to_owned())
        .ok_or_else(|| InvalidIdentifier(reference.resource_uri().to_owned()))?;
    let mut out = identifier(&class)?.to_owned();
    for (i, selector) in reference.selectors().iter().enumerate() {
        out.push(if i == 0 { '.' } else { ',' });
        out.push_str(identifier(&selector.name)?);
        out.push('=');
        let value = match &selector.value {
            SelectorValue::Text(t) => t.clone(),
            SelectorValue::Reference(r) => object_path(r)?,
        };
        out.push('"');
        for c in value.chars() {
            if matches!(c, '\\' | '"') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    Ok(out)
}

/// `ASSOCIATORS OF {object} WHERE AssocClass = ... ResultClass = ...`.
pub fn associators_of(
    object: &Reference,
    association_class: Option<&str>,
    result_class: Option<&str>,
) -> Result<String, InvalidIdentifier> {
    let mut out = format!("ASSOCIATORS OF {{{}}}", object_path(object)?);
    let mut clauses = Vec::new();
    if let Some(a) = association_class {
        clauses.push(format!("AssocClass = {}", identifier(a)?));
    }
    if let Some(r) = result_class {
        clauses.push(format!("ResultClass = {}", identifier(r)?));
    }
    if !clauses.is_empty() {
        out.push_str(" WHERE ");
        out.push_str(&clauses.join(" "));
    }
    Ok(out)
}

/// `REFERENCES OF {object} WHERE ResultClass = ...`.
pub fn references_of(
    object: &Reference,
    result_class: Option<&str>,
) -> Result<String, InvalidIdentifier> {
    let mut out = format!("REFERENCES OF {{{}}}", object_path(object)?);
    if let Some(r) = result_class {
        out.push_str(&format!(" WHERE ResultClass = {}", identifier(r)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_inside_their_literal() {
        for hostile in [
            "x' OR Name LIKE '%",
            r"C:\Windows\",
            "' --",
            "\\'",
            "a\\' OR 1=1 OR Name='",
        ] {
            let q = Select::from("Win32_Process")
                .where_eq("Name", hostile)
                .build()
                .unwrap();
            let literal = q
                .strip_prefix("SELECT * FROM Win32_Process WHERE Name = ")
                .unwrap();
            // Unescape and check that the literal is exactly one string equal to the input.
            assert!(literal.starts_with('\'') && literal.ends_with('\''), "{q}");
            let inner = &literal[1..literal.len() - 1];
            let mut unescaped = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => unescaped.push(chars.next().expect("escape has a character")),
                    '\'' => panic!("unescaped quote ends the literal early: {q}"),
                    c => unescaped.push(c),
                }
            }
            assert_eq!(unescaped, hostile);
        }
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(Select::from("Win32_Process; DROP").build().is_err());
        assert!(
            Select::from("Win32_Process")
                .where_eq("Name = 'x' OR Name", "y")
                .build()
                .is_err()
        );
        assert!(
            Select::from("Win32_Process")
                .properties(["Name", "1x"])
                .build()
                .is_err()
        );
        assert_eq!(
            Select::from("Win32_Process")
                .properties(["Name", "ProcessId"])
                .where_like("Name", "svc%")
                .build()
                .unwrap(),
            "SELECT Name, ProcessId FROM Win32_Process WHERE Name LIKE 'svc%'"
        );
    }

    #[test]
    fn associators_of_an_escaped_object_path() {
        let session = Reference::new(
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_ServerSession",
        )
        .with_selector("ComputerName", "10.0.0.7")
        .with_selector("UserName", r#"o"brien\x"#);
        assert_eq!(
            associators_of(
                &session,
                Some("Win32_SessionConnection"),
                Some("Win32_ServerConnection")
            )
            .unwrap(),
            r#"ASSOCIATORS OF {Win32_ServerSession.ComputerName="10.0.0.7",UserName="o\"brien\\x"} WHERE AssocClass = Win32_SessionConnection ResultClass = Win32_ServerConnection"#
        );
        assert_eq!(
            references_of(&session, None).unwrap(),
            r#"REFERENCES OF {Win32_ServerSession.ComputerName="10.0.0.7",UserName="o\"brien\\x"}"#
        );
    }
}
