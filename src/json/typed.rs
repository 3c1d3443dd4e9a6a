//! Typed values through `serde` (the `serde` feature): write any `Serialize` value as a property,
//! and read a flag payload (or any JSON text) into a `Deserialize` type, with no allocation.
//!
//! - [`Serde`] wraps a `&T: Serialize` as a [`Value`]: `o.prop("config", Serde(&cfg))?`. It is
//!   serialized straight into the event record, with the writer's exact size accounting (a value
//!   that does not fit is measured, never truncated), strings escaped as every other property,
//!   and nesting bounded by [`MAX_SERDE_DEPTH`].
//! - [`from_json`] reads JSON text into `T` with `serde-json-core`: strings are unescaped into
//!   bounded owned fields (`heapless::String<N>`) through a caller's scratch buffer, or borrowed
//!   from the text by `&str` fields when they have no escapes.
//!
//! ```
//! use posthog_embedded::json::typed::{from_json, Serde};
//! use posthog_embedded::json::write::{Object, Sink};
//! use serde::{Deserialize, Serialize};
//!
//! // A remote configuration delivered as a flag payload.
//! #[derive(Deserialize, Serialize, Debug, PartialEq)]
//! struct Sampling<'a> {
//!     interval_ms: u32,
//!     mode: &'a str,
//!     channels: heapless::Vec<u8, 4>,
//! }
//!
//! let payload = r#"{"interval_ms": 5000, "mode": "burst", "channels": [1, 3]}"#;
//! let cfg: Sampling = from_json(payload, &mut [0u8; 32])?;
//! assert_eq!((cfg.interval_ms, cfg.mode), (5000, "burst"));
//!
//! // ... and the same value written back as an event property.
//! let mut buf = [0u8; 128];
//! let mut sink = Sink::new(&mut buf, 64);
//! let mut o = Object::open(&mut sink, &[]);
//! o.prop("sampling", Serde(&cfg))?;
//! o.close();
//! assert_eq!(
//!     sink.written(),
//!     Some(&br#"{"sampling":{"interval_ms":5000,"mode":"burst","channels":[1,3]}}"#[..])
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt::{self, Write as _};

use serde::ser::{self, Serialize};

use super::write::{Sink, Value, ValueWriter};
use crate::error::PropertyError;

/// Deepest nesting of arrays and objects inside one [`Serde`] value. Deeper values (only a
/// recursive type can produce them) are [`PropertyError::TooDeep`]: serialization recurses once
/// per level, so this bounds its stack use.
pub const MAX_SERDE_DEPTH: usize = 32;

/// A `Serialize` value written as a JSON property value (see the [module docs](self)).
///
/// Mapping: structs and maps are objects (map keys must be strings, chars, integers or unit
/// variants; integer keys are written as strings, as `serde_json` does), sequences and tuples are
/// arrays, `None` and `()` are `null`, unit variants are their name, other variants are
/// `{"Variant": value}`, bytes are an array of numbers, floats must be finite.
#[derive(Clone, Copy, Debug)]
pub struct Serde<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Value for Serde<'_, T> {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        self.0
            .serialize(Ser {
                sink: w.into_sink(),
                depth: 0,
            })
            .map_err(|e| e.0)
    }
}

/// The serializer's error: a [`PropertyError`] (serde needs its own type to build custom ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SerError(PropertyError);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl core::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        // The message would need an allocation to keep; the variant says what happened.
        Self(PropertyError::NotSerializable)
    }
}

impl From<PropertyError> for SerError {
    fn from(e: PropertyError) -> Self {
        Self(e)
    }
}

/// Writes one value into the sink.
struct Ser<'s, 'b> {
    sink: &'s mut Sink<'b>,
    depth: usize,
}

impl<'s, 'b> Ser<'s, 'b> {
    /// Opens an array or object one level deeper, after `{"variant":` when `variant` is given
    /// (the compound's [`Kind`] then closes that outer object too).
    fn open(
        self,
        variant: Option<&str>,
        bracket: u8,
        kind: Kind,
    ) -> Result<Compound<'s, 'b>, SerError> {
        let depth = self.depth + 1;
        if depth > MAX_SERDE_DEPTH {
            return Err(PropertyError::TooDeep {
                max: MAX_SERDE_DEPTH,
            }
            .into());
        }
        if let Some(variant) = variant {
            self.sink.raw(b"{");
            self.sink.string(variant);
            self.sink.raw(b":");
        }
        self.sink.raw(&[bracket]);
        Ok(Compound {
            sink: self.sink,
            depth,
            first: true,
            kind,
        })
    }
}

/// Whether a compound closes with `]` or `}`, and whether it is wrapped in `{"variant": …}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Array,
    Object,
    VariantArray,
    VariantObject,
}

/// An open array or object.
struct Compound<'s, 'b> {
    sink: &'s mut Sink<'b>,
    depth: usize,
    first: bool,
    kind: Kind,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !self.first {
            self.sink.raw(b",");
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.comma();
        value.serialize(Ser {
            sink: self.sink,
            depth: self.depth,
        })
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), SerError> {
        self.comma();
        self.sink.string(key);
        self.sink.raw(b":");
        value.serialize(Ser {
            sink: self.sink,
            depth: self.depth,
        })
    }

    fn close(self) -> Result<(), SerError> {
        self.sink.raw(match self.kind {
            Kind::Array => b"]",
            Kind::Object => b"}",
            Kind::VariantArray => b"]}",
            Kind::VariantObject => b"}}",
        });
        Ok(())
    }
}

/// `collect_str` without an allocation: the text is escaped as it is formatted.
struct Escaping<'s, 'b>(&'s mut Sink<'b>);

/// Writes `value`'s `Display` text as a JSON string.
fn display_string<T: fmt::Display + ?Sized>(
    sink: &mut Sink<'_>,
    value: &T,
) -> Result<(), SerError> {
    sink.raw(b"\"");
    let mut w = Escaping(sink);
    write!(w, "{value}").map_err(|_| PropertyError::NotSerializable)?;
    w.0.raw(b"\"");
    Ok(())
}

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.escaped(s);
        Ok(())
    }
}

impl<'s, 'b> ser::Serializer for Ser<'s, 'b> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'s, 'b>;
    type SerializeTuple = Compound<'s, 'b>;
    type SerializeTupleStruct = Compound<'s, 'b>;
    type SerializeTupleVariant = Compound<'s, 'b>;
    type SerializeMap = Compound<'s, 'b>;
    type SerializeStruct = Compound<'s, 'b>;
    type SerializeStructVariant = Compound<'s, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        self.sink.raw(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), SerError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), SerError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), SerError> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), SerError> {
        self.sink.i64(v);
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), SerError> {
        self.serialize_u64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), SerError> {
        self.serialize_u64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), SerError> {
        self.serialize_u64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        self.sink.u64(v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        Ok(self.sink.f32(v)?)
    }

    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        Ok(self.sink.f64(v)?)
    }

    fn serialize_char(self, v: char) -> Result<(), SerError> {
        let mut buf = [0u8; 4];
        self.sink.string(v.encode_utf8(&mut buf));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.sink.string(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        let mut seq = self.open(None, b'[', Kind::Array)?;
        for b in v {
            seq.comma();
            seq.sink.u64(u64::from(*b));
        }
        seq.close()
    }

    fn serialize_none(self) -> Result<(), SerError> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        self.sink.raw(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SerError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        let mut o = self.open(None, b'{', Kind::Object)?;
        o.field(variant, value)?;
        o.close()
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'s, 'b>, SerError> {
        self.open(None, b'[', Kind::Array)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'s, 'b>, SerError> {
        self.open(None, b'[', Kind::Array)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'b>, SerError> {
        self.open(None, b'[', Kind::Array)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'b>, SerError> {
        self.open(Some(variant), b'[', Kind::VariantArray)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'s, 'b>, SerError> {
        self.open(None, b'{', Kind::Object)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'b>, SerError> {
        self.open(None, b'{', Kind::Object)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'s, 'b>, SerError> {
        self.open(Some(variant), b'{', Kind::VariantObject)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), SerError> {
        display_string(self.sink, value)
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        self.comma();
        key.serialize(KeySer { sink: self.sink })?;
        self.sink.raw(b":");
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        value.serialize(Ser {
            sink: self.sink,
            depth: self.depth,
        })
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

/// A map key: JSON object keys are strings, so strings, chars, integers and unit variants are
/// written as strings and anything else is [`PropertyError::NonStringKey`].
struct KeySer<'s, 'b> {
    sink: &'s mut Sink<'b>,
}

impl KeySer<'_, '_> {
    fn quoted_int(self, digits: impl FnOnce(&mut Sink<'_>)) -> Result<(), SerError> {
        self.sink.raw(b"\"");
        digits(self.sink);
        self.sink.raw(b"\"");
        Ok(())
    }
}

fn non_string_key<T>() -> Result<T, SerError> {
    Err(PropertyError::NonStringKey.into())
}

impl ser::Serializer for KeySer<'_, '_> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = ser::Impossible<(), SerError>;
    type SerializeTuple = ser::Impossible<(), SerError>;
    type SerializeTupleStruct = ser::Impossible<(), SerError>;
    type SerializeTupleVariant = ser::Impossible<(), SerError>;
    type SerializeMap = ser::Impossible<(), SerError>;
    type SerializeStruct = ser::Impossible<(), SerError>;
    type SerializeStructVariant = ser::Impossible<(), SerError>;

    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.sink.string(v);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), SerError> {
        let mut buf = [0u8; 4];
        self.serialize_str(v.encode_utf8(&mut buf))
    }

    fn serialize_i8(self, v: i8) -> Result<(), SerError> {
        self.quoted_int(|s| s.i64(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<(), SerError> {
        self.quoted_int(|s| s.i64(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<(), SerError> {
        self.quoted_int(|s| s.i64(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<(), SerError> {
        self.quoted_int(|s| s.i64(v))
    }

    fn serialize_u8(self, v: u8) -> Result<(), SerError> {
        self.quoted_int(|s| s.u64(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<(), SerError> {
        self.quoted_int(|s| s.u64(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<(), SerError> {
        self.quoted_int(|s| s.u64(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        self.quoted_int(|s| s.u64(v))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        value.serialize(self)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), SerError> {
        display_string(self.sink, value)
    }

    fn serialize_bool(self, _v: bool) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_f32(self, _v: f32) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_f64(self, _v: f64) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_none(self) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_unit(self) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), SerError> {
        non_string_key()
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, SerError> {
        non_string_key()
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, SerError> {
        non_string_key()
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, SerError> {
        non_string_key()
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, SerError> {
        non_string_key()
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, SerError> {
        non_string_key()
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, SerError> {
        non_string_key()
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, SerError> {
        non_string_key()
    }
}

/// JSON text could not be read into the requested type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FromJsonError {
    /// The text ended inside a value.
    Truncated,
    /// The text is not JSON (a missing comma or colon, a bad number, escape or code point, a
    /// trailing comma, text after the value).
    Syntax,
    /// The JSON does not have the type's shape: a wrong type, a missing field, or more items
    /// or bytes than a bounded field holds.
    Shape,
    /// An escaped string does not fit, unescaped, in the scratch buffer.
    ScratchTooSmall {
        /// The scratch buffer's size, in bytes.
        available: usize,
    },
}

impl fmt::Display for FromJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("JSON text ends inside a value"),
            Self::Syntax => f.write_str("malformed JSON"),
            Self::Shape => f.write_str("JSON does not have the expected shape or does not fit"),
            Self::ScratchTooSmall { available } => write!(
                f,
                "an escaped string does not fit in the {available}-byte scratch buffer"
            ),
        }
    }
}

impl core::error::Error for FromJsonError {}

/// Reads `json` (a flag payload, say) into `T`. The whole text must be one value (whitespace
/// around it aside).
///
/// Strings are unescaped exactly: into owned bounded fields (`heapless::String<N>`) through
/// `scratch`, which must hold the longest escaped string unescaped (an empty scratch accepts
/// strings without escapes only). `&str` fields borrow from `json`, so they take strings
/// without escapes (one with escapes is [`FromJsonError::Shape`]).
///
/// # Errors
/// [`FromJsonError`]: truncated or malformed text, a shape that does not match `T` (or does not
/// fit its bounded fields), or an escaped string longer than `scratch`.
pub fn from_json<'de, T: serde::Deserialize<'de>>(
    json: &'de str,
    scratch: &mut [u8],
) -> Result<T, FromJsonError> {
    use serde_json_core::de::Error as E;
    let available = scratch.len();
    match serde_json_core::from_str_escaped(json, scratch) {
        Ok((value, _)) => Ok(value),
        Err(e) => Err(match e {
            E::EofWhileParsingList
            | E::EofWhileParsingObject
            | E::EofWhileParsingString
            | E::EofWhileParsingNumber
            | E::EofWhileParsingValue => FromJsonError::Truncated,
            E::ExpectedColon
            | E::ExpectedListCommaOrEnd
            | E::ExpectedObjectCommaOrEnd
            | E::ExpectedSomeIdent
            | E::ExpectedSomeValue
            | E::InvalidNumber
            | E::InvalidUnicodeCodePoint
            | E::InvalidEscapeSequence
            | E::KeyMustBeAString
            | E::TrailingCharacters
            | E::TrailingComma => FromJsonError::Syntax,
            E::EscapedStringIsTooLong => FromJsonError::ScratchTooSmall { available },
            _ => FromJsonError::Shape,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::write::Object;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;
    use std::string::String;
    use std::vec;

    /// `value` written as the property `v`, as JSON text, or the error.
    fn prop<T: Serialize + ?Sized>(value: &T) -> Result<String, PropertyError> {
        let mut buf = vec![0u8; 4096];
        let mut sink = Sink::new(&mut buf, 64);
        let mut o = Object::open(&mut sink, &[]);
        o.prop("v", Serde(value))?;
        o.close();
        let text = String::from_utf8(sink.written().unwrap().to_vec()).unwrap();
        Ok(text
            .strip_prefix(r#"{"v":"#)
            .unwrap()
            .strip_suffix('}')
            .unwrap()
            .into())
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u8);

    #[derive(Serialize)]
    struct Tuple(u8, &'static str);

    #[derive(Serialize)]
    enum E {
        A,
        B(i32),
        C(u8, u8),
        D { x: bool },
    }

    #[derive(Serialize)]
    struct All<'a> {
        b: bool,
        i: i8,
        u: u64,
        f: f32,
        c: char,
        s: &'a str,
        o: Option<u16>,
        n: Option<u16>,
        unit: (),
        us: Unit,
        nt: Newtype,
        t: Tuple,
        v: [i64; 3],
        bytes: &'a serde_bytes_like::Bytes,
        e: [E; 4],
    }

    /// `serialize_bytes` without the `serde_bytes` crate.
    mod serde_bytes_like {
        pub(super) struct Bytes(pub(super) [u8; 2]);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    #[test]
    fn every_serde_shape_is_json_as_serde_json_writes_it() {
        let all = All {
            b: true,
            i: -7,
            u: u64::MAX,
            f: 0.1,
            c: 'é',
            s: "quote \" backslash \\ newline \n bell \u{7}",
            o: Some(3),
            n: None,
            unit: (),
            us: Unit,
            nt: Newtype(9),
            t: Tuple(1, "x"),
            v: [1, -2, 3],
            bytes: &serde_bytes_like::Bytes([0, 255]),
            e: [E::A, E::B(-1), E::C(1, 2), E::D { x: false }],
        };
        let ours = prop(&all).unwrap();
        let theirs = serde_json::to_string(&all).unwrap();
        assert_eq!(ours, theirs);
        assert!(ours.contains(r#""f":0.1,"#), "{ours}");
    }

    #[test]
    fn maps_take_string_like_keys_only() {
        let mut m = BTreeMap::new();
        m.insert(2u8, "two");
        m.insert(10u8, "ten");
        assert_eq!(prop(&m).unwrap(), r#"{"2":"two","10":"ten"}"#);
        let mut m = BTreeMap::new();
        m.insert('k', 1);
        assert_eq!(prop(&m).unwrap(), r#"{"k":1}"#);
        let mut m = BTreeMap::new();
        m.insert((1, 2), 1);
        assert_eq!(prop(&m), Err(PropertyError::NonStringKey));
        let mut m = BTreeMap::new();
        m.insert(true, 1);
        assert_eq!(prop(&m), Err(PropertyError::NonStringKey));
    }

    #[test]
    fn non_finite_floats_and_custom_errors_are_refused() {
        assert_eq!(prop(&[1.0, f64::NAN]), Err(PropertyError::NonFiniteNumber));
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
                Err(ser::Error::custom("no"))
            }
        }
        assert_eq!(prop(&Fails), Err(PropertyError::NotSerializable));
    }

    #[test]
    fn collect_str_escapes_without_allocating() {
        struct Shown;
        impl Serialize for Shown {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&format_args!("a\"{}", 1))
            }
        }
        assert_eq!(prop(&Shown).unwrap(), r#""a\"1""#);
    }

    #[test]
    fn nesting_is_bounded() {
        // A recursive value whose nesting comes from the data.
        fn chain(depth: usize) -> Result<String, PropertyError> {
            struct Deep(usize);
            impl Serialize for Deep {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    use serde::ser::SerializeSeq;
                    let mut seq = s.serialize_seq(Some(1))?;
                    if self.0 > 1 {
                        seq.serialize_element(&Deep(self.0 - 1))?;
                    }
                    seq.end()
                }
            }
            prop(&Deep(depth))
        }
        assert_eq!(chain(MAX_SERDE_DEPTH).unwrap().len(), 2 * MAX_SERDE_DEPTH);
        assert_eq!(
            chain(MAX_SERDE_DEPTH + 1),
            Err(PropertyError::TooDeep {
                max: MAX_SERDE_DEPTH
            })
        );
    }

    #[test]
    fn variants_count_towards_the_nesting_bound() {
        use std::boxed::Box;
        #[derive(Serialize)]
        enum V {
            S { inner: Option<Box<V>> },
        }
        fn chain(depth: usize) -> V {
            (1..depth).fold(V::S { inner: None }, |v, _| V::S {
                inner: Some(Box::new(v)),
            })
        }
        let ok = prop(&chain(MAX_SERDE_DEPTH)).unwrap();
        assert!(ok.starts_with(r#"{"S":{"inner":{"S":"#), "{ok}");
        assert_eq!(ok, serde_json::to_string(&chain(MAX_SERDE_DEPTH)).unwrap());
        assert_eq!(
            prop(&chain(MAX_SERDE_DEPTH + 1)),
            Err(PropertyError::TooDeep {
                max: MAX_SERDE_DEPTH
            })
        );
    }

    #[test]
    fn a_value_that_does_not_fit_is_measured_exactly() {
        let v = [
            "0123456789",
            "abcdefghij",
            "\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{9}",
        ];
        let full = {
            let mut buf = [0u8; 256];
            let mut sink = Sink::new(&mut buf, 64);
            Serde(&v).write_json(ValueWriter::new(&mut sink)).unwrap();
            sink.written().unwrap().len()
        };
        for cap in [0, 1, 10, full - 1] {
            let mut buf = vec![0u8; cap];
            let mut sink = Sink::new(&mut buf, 64);
            Serde(&v).write_json(ValueWriter::new(&mut sink)).unwrap();
            assert!(!sink.fits());
            assert_eq!(sink.needed(), full, "cap {cap}");
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Payload<'a> {
        interval_ms: u32,
        mode: &'a str,
        label: heapless::String<16>,
        channels: heapless::Vec<u8, 4>,
        extra: Option<bool>,
    }

    #[test]
    fn payloads_read_into_bounded_types() {
        let json =
            r#" {"interval_ms":5000,"mode":"burst","label":"caf\u00e9 \"1\"","channels":[1,3]} "#;
        let p: Payload<'_> = from_json(json, &mut [0u8; 16]).unwrap();
        assert_eq!(p.interval_ms, 5000);
        assert_eq!(p.mode, "burst");
        assert_eq!(p.label.as_str(), "café \"1\"");
        assert_eq!(p.channels.as_slice(), &[1, 3]);
        assert_eq!(p.extra, None);
    }

    #[test]
    fn payload_errors_are_typed() {
        let read = |json: &str| from_json::<Payload<'_>>(json, &mut [0u8; 16]).map(|_| ());
        assert_eq!(read(r#"{"interval_ms":"x"}"#), Err(FromJsonError::Shape));
        assert_eq!(read(r#"{"mode":"m"}"#), Err(FromJsonError::Shape));
        // A bounded field that is too small is an error, never a truncation.
        let long = r#"{"interval_ms":1,"mode":"m","label":"seventeen bytes!!","channels":[]}"#;
        assert_eq!(read(long), Err(FromJsonError::Shape));
        let many = r#"{"interval_ms":1,"mode":"m","label":"","channels":[1,2,3,4,5]}"#;
        assert_eq!(read(many), Err(FromJsonError::Shape));
        assert_eq!(read(r#"{"interval_ms":1"#), Err(FromJsonError::Truncated));
        assert_eq!(read(r#"{"interval_ms" 1}"#), Err(FromJsonError::Syntax));
        assert_eq!(from_json::<u8>("1 2", &mut []), Err(FromJsonError::Syntax));
        assert_eq!(from_json::<u8>(" 7\n", &mut []), Ok(7));
        for bad in ["", "{", "[1,", "nul", "\u{0}"] {
            assert!(from_json::<Option<u8>>(bad, &mut []).is_err(), "{bad:?}");
        }
        // Escapes need room to be unescaped.
        let escaped = r#"{"interval_ms":1,"mode":"m","label":"\u00e9\u00e9","channels":[]}"#;
        assert_eq!(
            from_json::<Payload<'_>>(escaped, &mut [0u8; 3]).map(|_| ()),
            Err(FromJsonError::ScratchTooSmall { available: 3 })
        );
        assert_eq!(
            from_json::<Payload<'_>>(escaped, &mut [0u8; 4]).map(|p| p.label),
            Ok(heapless::String::try_from("éé").unwrap())
        );
    }

    #[test]
    fn borrowed_strings_take_text_without_escapes() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct S<'a> {
            s: &'a str,
        }
        let plain: S<'_> = from_json(r#"{"s":"plain"}"#, &mut []).unwrap();
        assert_eq!(plain.s, "plain");
        // An escaped string cannot be borrowed: an error, never the raw escaped text.
        assert_eq!(
            from_json::<S<'_>>(r#"{"s":"a\nb"}"#, &mut [0u8; 8]),
            Err(FromJsonError::Shape)
        );
    }
}
