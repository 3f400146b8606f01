//! A serde `Serializer` that writes a struct's fields (or a map's entries) as entries of an
//! enclosing map: how a typed instance and the extra keys of an output record (`PSComputerName`,
//! `CimClass`, ...) become one JSON object with no intermediate value in between.

use serde::Serialize;
use serde::ser::{self, Impossible, SerializeMap, SerializeStruct};

/// Serializes a struct or map into `map`'s entries; `keep` decides which keys go in.
pub(crate) struct EntriesInto<'a, M, K> {
    pub map: &'a mut M,
    pub keep: K,
}

fn not_a_struct<E: ser::Error>() -> E {
    E::custom("only a struct or a map can be flattened into a record")
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, M::Error> {
            Err(not_a_struct())
        }
    )*};
}

impl<'a, M: SerializeMap, K: FnMut(&str) -> bool> ser::Serializer for EntriesInto<'a, M, K> {
    type Ok = ();
    type Error = M::Error;
    type SerializeSeq = Impossible<(), M::Error>;
    type SerializeTuple = Impossible<(), M::Error>;
    type SerializeTupleStruct = Impossible<(), M::Error>;
    type SerializeTupleVariant = Impossible<(), M::Error>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), M::Error>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, M::Error> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, M::Error> {
        Ok(self)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        value.serialize(self)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), M::Error> {
        value.serialize(self)
    }

    fn serialize_none(self) -> Result<(), M::Error> {
        Ok(())
    }

    fn serialize_unit(self) -> Result<(), M::Error> {
        Ok(())
    }

    refuse! {
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
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        Err(not_a_struct())
    }
}

impl<M: SerializeMap, K: FnMut(&str) -> bool> SerializeStruct for EntriesInto<'_, M, K> {
    type Ok = ();
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        if (self.keep)(key) {
            self.map.serialize_entry(key, value)?;
        }
        Ok(())
    }

    fn end(self) -> Result<(), M::Error> {
        Ok(())
    }
}

/// Entries of a flattened map; their keys must serialize as strings.
impl<M: SerializeMap, K: FnMut(&str) -> bool> SerializeMap for EntriesInto<'_, M, K> {
    type Ok = ();
    type Error = M::Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<(), M::Error> {
        Err(ser::Error::custom(
            "entries of a flattened map go through serialize_entry",
        ))
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<(), M::Error> {
        Err(ser::Error::custom(
            "entries of a flattened map go through serialize_entry",
        ))
    }

    fn serialize_entry<Q: ?Sized + Serialize, V: ?Sized + Serialize>(
        &mut self,
        key: &Q,
        value: &V,
    ) -> Result<(), M::Error> {
        self.map.serialize_entry(key, value)
    }

    fn end(self) -> Result<(), M::Error> {
        Ok(())
    }
}

/// Writes `value` (a struct or a map) as entries of `map`.
pub fn flatten_into<M: SerializeMap, T: ?Sized + Serialize>(
    map: &mut M,
    value: &T,
) -> Result<(), M::Error> {
    value.serialize(EntriesInto {
        map,
        keep: |_: &str| true,
    })
}
