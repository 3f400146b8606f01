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

/// A record's entries, in order.
#[derive(Debug, Default)]
pub struct Row {
    pub entries: Vec<(String, Cell)>,
}

impl Row {
    /// The cells of `record` (anything that serializes as a map).
    pub fn of<T: ?Sized + Serialize>(record: &T) -> Result<Row, Error> {
        let mut row = Row::default();
        record.serialize(RowSerializer(&mut row))?;
        Ok(row)
    }

    pub fn get(&self, key: &str) -> Option<&Cell> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, c)| c)
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
    match value.serialize(CellSerializer) {
        Ok(cell) => Ok(cell),
        Err(e) if e.0 == NOT_SCALAR => serde_json::to_value(value)
            .map(Cell::Complex)
            .map_err(|e| Error(e.to_string())),
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
        self.row.entries.push((key, cell_of(value)?));
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// A scalar as a cell; anything else is refused with [`NOT_SCALAR`].
struct CellSerializer;

macro_rules! number {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method(self, v: $ty) -> Result<Cell, Error> {
            Ok(Cell::Number(v.to_string()))
        }
    )*};
}

impl ser::Serializer for CellSerializer {
    type Ok = Cell;
    type Error = Error;
    type SerializeSeq = Impossible<Cell, Error>;
    type SerializeTuple = Impossible<Cell, Error>;
    type SerializeTupleStruct = Impossible<Cell, Error>;
    type SerializeTupleVariant = Impossible<Cell, Error>;
    type SerializeMap = Impossible<Cell, Error>;
    type SerializeStruct = Impossible<Cell, Error>;
    type SerializeStructVariant = Impossible<Cell, Error>;

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

    fn serialize_bool(self, v: bool) -> Result<Cell, Error> {
        Ok(Cell::Bool(v))
    }
    fn serialize_char(self, v: char) -> Result<Cell, Error> {
        Ok(Cell::Text(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Cell, Error> {
        Ok(Cell::Text(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Cell, Error> {
        Ok(Cell::Text(String::from_utf8_lossy(v).into_owned()))
    }
    fn serialize_none(self) -> Result<Cell, Error> {
        Ok(Cell::Empty)
    }
    fn serialize_unit(self) -> Result<Cell, Error> {
        Ok(Cell::Empty)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Cell, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Cell, Error> {
        value.serialize(self)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Cell, Error> {
        Ok(Cell::Empty)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
    ) -> Result<Cell, Error> {
        Ok(Cell::Text(v.to_owned()))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Cell, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(Error(NOT_SCALAR.into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error(NOT_SCALAR.into()))
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
        assert_eq!(row.entries.len(), 5);
    }
}
