//! A record as cells, for the formats that need columns (CSV, tables): a serde serializer that
//! takes the record's entries one by one, scalars straight to text, anything nested (arrays,
//! references, joined instances) kept as a JSON value for the format to render.

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
    /// An array or an object.
    Complex(serde_json::Value),
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
}

impl Row {
    /// The cells of `record` (anything that serializes as a map).
    pub fn of<T: ?Sized + Serialize>(record: &T) -> Result<Row, Error> {
        let mut row = Row::default();
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
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Marks a value that is not a scalar (handled through `serde_json::Value`).
const NOT_SCALAR: &str = "not a scalar";

macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(Error(NOT_SCALAR.into()))
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
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(Error(NOT_SCALAR.into()))
    }
}

struct RowEntries<'a> {
    row: &'a mut Row,
    key: Option<String>,
}

fn cell_of<T: ?Sized + Serialize>(value: &T) -> Result<Cell, Error> {
    let mut cell = Cell::Empty;
    fill(&mut cell, value)?;
    Ok(cell)
}

/// Writes `value` into `cell`, reusing its string when it has one.
fn fill<T: ?Sized + Serialize>(cell: &mut Cell, value: &T) -> Result<(), Error> {
    match value.serialize(CellWriter(cell)) {
        Ok(()) => Ok(()),
        Err(e) if e.0 == NOT_SCALAR => {
            *cell = serde_json::to_value(value)
                .map(Cell::Complex)
                .map_err(|e| Error(e.to_string()))?;
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
        let slot = self.row.next_slot();
        slot.0 = key;
        fill(&mut slot.1, value)
    }

    fn serialize_entry<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), Error> {
        let slot = self.row.next_slot();
        let mut name = Cell::Text(std::mem::take(&mut slot.0));
        fill(&mut name, key)?;
        match name {
            Cell::Text(text) => slot.0 = text,
            _ => return Err(Error("a record key is not text".into())),
        }
        fill(&mut slot.1, value)
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
            Cell::Text(s) | Cell::Number(s) => s,
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
        Err(Error(NOT_SCALAR.into()))
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
        let row = Row::of(&value).unwrap();
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
    fn a_refilled_row_holds_only_the_new_record() {
        let mut row = Row::of(&serde_json::json!({"A": "x", "B": 1, "C": true})).unwrap();
        row.refill(&serde_json::json!({"B": "two", "A": null}))
            .unwrap();
        assert_eq!(row.entries().len(), 2);
        assert_eq!(row.get("B"), Some(&Cell::Text("two".into())));
        assert_eq!(row.get("A"), Some(&Cell::Empty));
        assert_eq!(row.get("C"), None);
    }
}
