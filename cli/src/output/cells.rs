//! A record as cells, for the formats that need columns (CSV, tables): a serde serializer that
//! takes the record's entries one by one, scalars straight to text, anything nested (arrays,
//! references, joined instances) kept the way the format renders it: as compact JSON text
//! (CSV writes it as is) or as a JSON value (a table makes its own text of it).

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeMap};

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Nil, or absent.
    Empty,
    /// An integer or a real, as decimal text.
    Number(String),
    /// Text.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// An array or an object, as a value ([`Keep::Value`]).
    Complex(serde_json::Value),
    /// An array or an object, as compact JSON text ([`Keep::JsonText`]).
    Json(String),
}

/// How a row keeps what is not a scalar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// As compact JSON text, written straight from the record: no value is built.
    #[default]
    JsonText,
    /// As a [`serde_json::Value`], for a format that looks inside.
    Value,
}

impl Cell {
    pub fn is_number(&self) -> bool {
        matches!(self, Cell::Number(_))
    }
}

/// A record's entries, in order. Refilled in place, a row reuses the strings of the previous
/// record's (a page of a class has the same keys in the same order).
#[derive(Debug, Default)]
pub struct Row {
    slots: Vec<(String, Cell)>,
    len: usize,
    nested: Keep,
}

impl Row {
    /// An empty row that keeps nested values as `nested` says.
    pub fn new(nested: Keep) -> Row {
        Row {
            nested,
            ..Row::default()
        }
    }

    /// The cells of `record` (anything that serializes as a map).
    pub fn of<T: ?Sized + Serialize>(nested: Keep, record: &T) -> Result<Row, Error> {
        let mut row = Row::new(nested);
        row.refill(record)?;
        Ok(row)
    }

    /// Replaces the cells by those of `record`, reusing this row's allocations.
    pub fn refill<T: ?Sized + Serialize>(&mut self, record: &T) -> Result<(), Error> {
        self.len = 0;
        record.serialize(RowSerializer(self))
    }

    /// The entries: key and cell, in the record's order.
    pub fn entries(&self) -> &[(String, Cell)] {
        &self.slots[..self.len]
    }

    pub fn get(&self, key: &str) -> Option<&Cell> {
        self.entries()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c)
    }

    /// The next slot, reused when there is one.
    fn next_slot(&mut self) -> &mut (String, Cell) {
        if self.len == self.slots.len() {
            self.slots.push((String::new(), Cell::Empty));
        }
        self.len += 1;
        &mut self.slots[self.len - 1]
    }
}

/// Why a record could not become cells.
#[derive(Debug)]
pub struct Error(pub Cow<'static, str>);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string().into())
    }
}

/// Marks a value that is not a scalar (handled through `serde_json::Value`).
const NOT_SCALAR: &str = "not a scalar";

macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(Error(Cow::Borrowed(NOT_SCALAR)))
        }
    )*};
}

struct RowSerializer<'a>(&'a mut Row);

impl<'a> ser::Serializer for RowSerializer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = RowEntries<'a>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_map(self, _: Option<usize>) -> Result<RowEntries<'a>, Error> {
        Ok(RowEntries {
            row: self.0,
            key: None,
        })
    }

    unsupported! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
        Err(Error(Cow::Borrowed(NOT_SCALAR)))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error(Cow::Borrowed(NOT_SCALAR)))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error(Cow::Borrowed(NOT_SCALAR)))
    }
}

struct RowEntries<'a> {
    row: &'a mut Row,
    key: Option<String>,
}

fn cell_of<T: ?Sized + Serialize>(value: &T) -> Result<Cell, Error> {
    let mut cell = Cell::Empty;
    fill(&mut cell, value, Keep::Value)?;
    Ok(cell)
}

/// Writes `value` into `cell`, reusing its string when it has one.
fn fill<T: ?Sized + Serialize>(cell: &mut Cell, value: &T, nested: Keep) -> Result<(), Error> {
    match value.serialize(CellWriter(cell)) {
        Ok(()) => Ok(()),
        Err(e) if e.0 == NOT_SCALAR => {
            let json_error = |e: serde_json::Error| Error(e.to_string().into());
            *cell = match nested {
                Keep::Value => Cell::Complex(serde_json::to_value(value).map_err(json_error)?),
                Keep::JsonText => {
                    let mut text = match std::mem::replace(cell, Cell::Empty) {
                        Cell::Text(s) | Cell::Number(s) | Cell::Json(s) => s.into_bytes(),
                        _ => Vec::new(),
                    };
                    text.clear();
                    serde_json::to_writer(&mut text, value).map_err(json_error)?;
                    // serde_json writes UTF-8 only.
                    Cell::Json(String::from_utf8(text).map_err(|e| Error(e.to_string().into()))?)
                }
            };
            Ok(())
        }
        Err(e) => Err(e),
    }
}

impl SerializeMap for RowEntries<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        match cell_of(key)? {
            Cell::Text(text) => self.key = Some(text),
            _ => return Err(Error("a record key is not text".into())),
        }
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a value without a key".into()))?;
        let nested = self.row.nested;
        let slot = self.row.next_slot();
        slot.0 = key;
        fill(&mut slot.1, value, nested)
    }

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Error> {
        let nested = self.row.nested;
        let slot = self.row.next_slot();
        let mut name = Cell::Text(std::mem::take(&mut slot.0));
        fill(&mut name, key, Keep::Value)?;
        match name {
            Cell::Text(text) => slot.0 = text,
            _ => return Err(Error("a record key is not text".into())),
        }
        fill(&mut slot.1, value, nested)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// Writes a scalar into a cell (its string reused); anything else is refused with
/// [`NOT_SCALAR`].
struct CellWriter<'a>(&'a mut Cell);

impl CellWriter<'_> {
    fn text(self, kind: fn(String) -> Cell, write: impl FnOnce(&mut String)) {
        let mut reused = match std::mem::replace(self.0, Cell::Empty) {
            Cell::Text(s) | Cell::Number(s) | Cell::Json(s) => s,
            _ => String::new(),
        };
        reused.clear();
        write(&mut reused);
        *self.0 = kind(reused);
    }
}

macro_rules! number {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method(self, v: $ty) -> Result<(), Error> {
            use std::fmt::Write;
            self.text(Cell::Number, |s| { let _ = write!(s, "{v}"); });
            Ok(())
        }
    )*};
}

impl ser::Serializer for CellWriter<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    number! {
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        *self.0 = Cell::Bool(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.text(Cell::Text, |s| s.push(v));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.text(Cell::Text, |s| s.push_str(v));
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.text(Cell::Text, |s| s.push_str(&String::from_utf8_lossy(v)));
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Error> {
        *self.0 = Cell::Empty;
        Ok(())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        *self.0 = Cell::Empty;
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        *self.0 = Cell::Empty;
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.text(Cell::Text, |s| s.push_str(v));
        Ok(())
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error(Cow::Borrowed(NOT_SCALAR)))
    }
    unsupported! {
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_become_text_and_the_rest_stays_structured() {
        let value = serde_json::json!({
            "SessionId": 18446744073709551615u64,
            "Dialect": null,
            "User": "CONTOSO\\a",
            "Secure": true,
            "Addresses": ["a", "b"],
        });
        let row = Row::of(Keep::Value, &value).unwrap();
        assert_eq!(
            row.get("SessionId"),
            Some(&Cell::Number("18446744073709551615".into()))
        );
        assert_eq!(row.get("Dialect"), Some(&Cell::Empty));
        assert_eq!(row.get("Secure"), Some(&Cell::Bool(true)));
        assert!(matches!(row.get("Addresses"), Some(Cell::Complex(_))));
        assert_eq!(row.entries().len(), 5);
    }

    #[test]
    fn nested_values_as_json_text_read_as_the_value_would() {
        let value = serde_json::json!({
            "Antecedent": {"ResourceURI": "u/Win32_ServerSession",
                           "Selectors": {"ComputerName": "10.0.0.7", "UserName": "a \"b\""}},
            "Addresses": ["a", 1, null],
            "SessionId": 7,
        });
        let mut row = Row::of(Keep::JsonText, &value).unwrap();
        let as_value = Row::of(Keep::Value, &value).unwrap();
        for key in ["Antecedent", "Addresses"] {
            let (Some(Cell::Json(text)), Some(Cell::Complex(v))) =
                (row.get(key), as_value.get(key))
            else {
                panic!("{key} is not nested in both rows");
            };
            assert_eq!(*text, v.to_string());
        }
        assert_eq!(row.get("SessionId"), Some(&Cell::Number("7".into())));
        // Refilled, a nested cell becomes a scalar and back.
        row.refill(&serde_json::json!({"Antecedent": "x", "Addresses": []}))
            .unwrap();
        assert_eq!(row.get("Antecedent"), Some(&Cell::Text("x".into())));
        assert_eq!(row.get("Addresses"), Some(&Cell::Json("[]".into())));
    }

    #[test]
    fn a_refilled_row_holds_only_the_new_record() {
        let mut row = Row::of(
            Keep::Value,
            &serde_json::json!({"A": "x", "B": 1, "C": true}),
        )
        .unwrap();
        row.refill(&serde_json::json!({"B": "two", "A": null}))
            .unwrap();
        assert_eq!(row.entries().len(), 2);
        assert_eq!(row.get("B"), Some(&Cell::Text("two".into())));
        assert_eq!(row.get("A"), Some(&Cell::Empty));
        assert_eq!(row.get("C"), None);
    }
}
