//! Property values and PostHog's value semantics (posthog-python 7.91.1), allocation-free.
//!
//! Property filters compare a filter value from the flag definitions with a value from the
//! caller's person or group properties. This module holds the pieces every operator needs:
//!
//! - [`PropertyValue`]: one JSON-ish value, borrowed. [`PropertyValue::from_json`] classifies raw
//!   JSON text (a filter value straight from the definitions) without copying it.
//! - [`Properties`]: where the evaluator looks up the caller's values; a plain slice of
//!   `(key, value)` pairs implements it.
//! - Stringification ([`py_str`], [`write_py_str`]): PY `_value_to_string` (protocol §1.10.2),
//!   the subject of `exact`, `is_not`, the substring operators and `regex`. Floats are spelled
//!   the way the server spells them (`1e-7`, `1e+16`, `0.00001`, `323.0`), composites as compact
//!   JSON with object keys sorted.
//! - Case folding (§1.10.3): [`lower_eq`] (full Unicode lowercase, as Python `str.lower()`,
//!   including the Greek final sigma) and the ASCII-only [`ascii_icontains`],
//!   [`ascii_istarts_with`], [`ascii_iends_with`].
//! - Numbers (§1.10.5): [`parse_py_number`] and [`PropertyValue::as_number`].
//! - The legacy boolean rules of `exact` (§1.10.4): [`PropertyValue::is_boolean_like`] and
//!   [`PropertyValue::truthy`].
//!
//! Nothing here allocates. Composite values are re-read from their JSON text every time they are
//! needed (bounded by [`MAX_STRINGIFY_DEPTH`] where recursion is involved), which trades a little
//! CPU for zero heap and a small, fixed stack.
//!
//! ```
//! use posthog_embedded::flags::value::{lower_eq, py_str, PropertyValue};
//!
//! let filter = PropertyValue::from_json(r#"{"b": 2, "a": 1.0}"#)?;
//! let mut buf = [0u8; 64];
//! assert_eq!(py_str(&filter, &mut buf)?, r#"{"a":1.0,"b":2}"#);
//!
//! assert_eq!(lower_eq("ΟΔΟΣ", "οδος"), Ok(true));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::cmp::Ordering;
use core::fmt::{self, Write};

use crate::json::read::{ReadError, ReadErrorKind, Reader, Str, Token};

/// How many containers deep a composite value may be nested for [`py_str`] and
/// [`write_py_str`]: `[[1]]` is 2 deep. Deeper values give [`StringifyError::TooDeep`].
///
/// Stringification recurses once per level, so this bounds its stack use.
pub const MAX_STRINGIFY_DEPTH: usize = 16;

/// Longest decoded string [`PropertyValue::as_number`] reads from an escaped JSON string
/// ([`PropertyValue::EscapedStr`]); longer ones are not numbers. Unescaped strings have no limit.
pub const MAX_ESCAPED_NUMBER_LEN: usize = 64;

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// One property value (or filter value), borrowed.
///
/// Build it yourself for the caller's properties (`PropertyValue::Str("pro")`,
/// `PropertyValue::Int(3)`, or through `From`), or with [`from_json`](Self::from_json) from raw
/// JSON text.
///
/// `PartialEq` is structural, not PostHog equality: `Int(1)` and `Float(1.0)` differ, and so do
/// `Str("a")` and an `EscapedStr` that decodes to `"a"`. Use the functions of this module for
/// PostHog semantics.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PropertyValue<'a> {
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer (a JSON number with no fraction and no exponent).
    Int(i64),
    /// An integer above `i64::MAX`. [`from_json`](Self::from_json) uses it only there; smaller
    /// values behave exactly like the same [`Int`](Self::Int).
    UInt(u64),
    /// A float (a JSON number written with a fraction or an exponent, like `1.0` or `1e3`).
    /// Python keeps `1.0` and `1` apart, and so does this type: they stringify differently.
    Float(f64),
    /// A string, decoded (no JSON escapes: the text is the value).
    Str(&'a str),
    /// A string still in JSON form because its source had escapes (`"a\"b"`, `"\u00e9"`).
    /// [`from_json`](Self::from_json) produces it; every function of this module decodes it on
    /// the fly, so it behaves exactly like the [`Str`](Self::Str) of its decoded text.
    EscapedStr(Str<'a>),
    /// A JSON array or object: its raw JSON text, which must be valid JSON (any whitespace).
    Json(&'a str),
}

impl<'a> PropertyValue<'a> {
    /// Classifies one raw JSON value (surrounding whitespace allowed), borrowing from `raw`.
    ///
    /// - `null`, `true`, `false` → [`Null`](Self::Null), [`Bool`](Self::Bool).
    /// - A number without fraction or exponent → [`Int`](Self::Int), or [`UInt`](Self::UInt)
    ///   above `i64::MAX`. A number with a fraction or exponent → [`Float`](Self::Float), even
    ///   when whole (`1.0`), and even when out of `f64` range (`1e400` is `inf`, as Python's
    ///   `json.loads` reads it; stringifying it then fails and it is not a number).
    /// - A string without escapes → [`Str`](Self::Str) (borrowed, unquoted); with escapes →
    ///   [`EscapedStr`](Self::EscapedStr).
    /// - An array or object → [`Json`](Self::Json) with the text, validated (nesting up to
    ///   [`DEFAULT_MAX_DEPTH`](crate::json::read::DEFAULT_MAX_DEPTH)), whitespace trimmed.
    ///
    /// # Errors
    /// [`FromJsonError::Json`] if `raw` is not exactly one valid JSON value;
    /// [`FromJsonError::IntegerOutOfRange`] for an integer beyond `u64`/`i64` (Python would keep
    /// it exact; this type cannot, so the evaluator should give up on such a filter).
    pub fn from_json(raw: &'a str) -> Result<Self, FromJsonError> {
        let mut r = Reader::new(raw.as_bytes());
        let tok = r.next()?.ok_or(FromJsonError::Json(ReadError {
            kind: ReadErrorKind::UnexpectedEnd,
            offset: raw.len(),
        }))?;
        let value = match tok {
            Token::ObjectStart | Token::ArrayStart => {
                r.skip_container()?;
                Self::Json(trim_json_ws(raw))
            }
            other => scalar(other)?,
        };
        // The reader rejects anything after the value.
        match r.next()? {
            None => Ok(value),
            Some(_) => Err(FromJsonError::Json(ReadError {
                kind: ReadErrorKind::TrailingData,
                offset: r.offset(),
            })),
        }
    }

    /// Whether this is JSON `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Whether this is a JSON array (a [`Json`](Self::Json) value starting with `[`).
    #[must_use]
    pub fn is_array(&self) -> bool {
        matches!(self, Self::Json(raw) if trim_json_ws(raw).starts_with('['))
    }

    /// Whether this is the empty JSON array `[]` (whitespace inside allowed).
    #[must_use]
    pub fn is_empty_array(&self) -> bool {
        match self.array_items() {
            Some(mut items) => items.next().is_none(),
            None => false,
        }
    }

    /// The elements of a JSON array, in order, each as a `PropertyValue` borrowing from the
    /// array's text (nested arrays and objects come out as [`Json`](Self::Json)). `None` if this
    /// is not an array.
    ///
    /// The iterator yields an error (then stops) for an element [`from_json`](Self::from_json)
    /// would reject: an integer beyond 64 bits, or invalid JSON in a hand-built `Json`.
    #[must_use]
    pub fn array_items(&self) -> Option<ArrayItems<'a>> {
        let Self::Json(raw) = *self else {
            return None;
        };
        let mut reader = Reader::new(raw.as_bytes());
        match reader.next() {
            Ok(Some(Token::ArrayStart)) => Some(ArrayItems {
                raw,
                reader,
                done: false,
            }),
            _ => None,
        }
    }

    /// The value as a number for `gt`/`gte`/`lt`/`lte` (PY `_parse_numeric_value`, §1.10.5):
    /// integers and finite floats as `f64` (large integers round, as Python's `float()` does);
    /// strings through [`parse_py_number`]. `None` for booleans, null, arrays, objects,
    /// non-finite floats and strings that are not numbers.
    ///
    /// An [`EscapedStr`](Self::EscapedStr) longer than [`MAX_ESCAPED_NUMBER_LEN`] decoded bytes
    /// is treated as not a number.
    #[must_use]
    pub fn as_number(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::UInt(u) => Some(u as f64),
            Self::Float(f) => f.is_finite().then_some(f),
            Self::Str(s) => parse_py_number(s),
            Self::EscapedStr(s) => {
                let mut buf = [0u8; MAX_ESCAPED_NUMBER_LEN];
                parse_py_number(s.decode_into(&mut buf).ok()?)
            }
            Self::Null | Self::Bool(_) | Self::Json(_) => None,
        }
    }

    /// Whether the value is *boolean-like* for legacy `exact`/`is_not` (§1.10.4): a bool; a
    /// string equal to `"true"` or `"false"` ignoring case; or an array whose items are all
    /// boolean-like (nested arrays included; an empty array counts).
    #[must_use]
    pub fn is_boolean_like(&self) -> bool {
        match *self {
            Self::Bool(_) => true,
            Self::Str(s) => bool_word(s.chars()).is_some(),
            Self::EscapedStr(s) => bool_word(s.chars()).is_some(),
            Self::Json(raw) => all_array_leaves(raw, |tok| match tok {
                Token::Bool(_) => true,
                Token::Str(s) => bool_word(s.chars()).is_some(),
                _ => false,
            }),
            Self::Null | Self::Int(_) | Self::UInt(_) | Self::Float(_) => false,
        }
    }

    /// PostHog's legacy truthiness (§1.10.4): a bool is itself; a string is true iff it equals
    /// `"true"` ignoring case; an array is true iff all its items are (so `[]` is true); anything
    /// else (null, numbers, objects) is false.
    #[must_use]
    pub fn truthy(&self) -> bool {
        match *self {
            Self::Bool(b) => b,
            Self::Str(s) => bool_word(s.chars()) == Some(true),
            Self::EscapedStr(s) => bool_word(s.chars()) == Some(true),
            Self::Json(raw) => all_array_leaves(raw, |tok| match tok {
                Token::Bool(b) => b,
                Token::Str(s) => bool_word(s.chars()) == Some(true),
                _ => false,
            }),
            Self::Null | Self::Int(_) | Self::UInt(_) | Self::Float(_) => false,
        }
    }
}

impl<'a> From<&'a str> for PropertyValue<'a> {
    fn from(s: &'a str) -> Self {
        Self::Str(s)
    }
}

impl From<bool> for PropertyValue<'_> {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for PropertyValue<'_> {
    fn from(f: f64) -> Self {
        Self::Float(f)
    }
}

impl From<u64> for PropertyValue<'_> {
    /// [`Int`](PropertyValue::Int) when it fits, [`UInt`](PropertyValue::UInt) otherwise.
    fn from(u: u64) -> Self {
        i64::try_from(u).map_or(Self::UInt(u), Self::Int)
    }
}

macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for PropertyValue<'_> {
            fn from(v: $t) -> Self {
                Self::Int(i64::from(v))
            }
        }
    )*};
}
from_small_int!(i8, i16, i32, i64, u8, u16, u32);

/// Classifies a scalar token.
fn scalar(tok: Token<'_>) -> Result<PropertyValue<'_>, FromJsonError> {
    Ok(match tok {
        Token::Null => PropertyValue::Null,
        Token::Bool(b) => PropertyValue::Bool(b),
        Token::Number(n) if n.is_integer() => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => PropertyValue::Int(i),
            (None, Some(u)) => PropertyValue::UInt(u),
            (None, None) => return Err(FromJsonError::IntegerOutOfRange),
        },
        Token::Number(n) => PropertyValue::Float(n.as_f64()),
        Token::Str(s) => match s.as_str() {
            Some(s) => PropertyValue::Str(s),
            None => PropertyValue::EscapedStr(s),
        },
        // A reader never hands the last three out where a value starts; containers are handled
        // by the callers.
        Token::ObjectStart
        | Token::ArrayStart
        | Token::ObjectEnd
        | Token::ArrayEnd
        | Token::Key(_) => {
            return Err(FromJsonError::Json(ReadError {
                kind: ReadErrorKind::ExpectedValue,
                offset: 0,
            }))
        }
    })
}

fn trim_json_ws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// `Some(true)` for "true", `Some(false)` for "false" (ASCII case ignored), `None` otherwise.
///
/// Python compares `s.lower()`; no non-ASCII character lowercases to one of these letters, so
/// ASCII folding is exact here.
fn bool_word(chars: impl Iterator<Item = char>) -> Option<bool> {
    let mut buf = [0u8; 5];
    let mut n = 0;
    for c in chars {
        let slot = buf.get_mut(n)?;
        *slot = u8::try_from(c).ok()?.to_ascii_lowercase();
        n += 1;
    }
    match buf.get(..n)? {
        b"true" => Some(true),
        b"false" => Some(false),
        _ => None,
    }
}

/// For a JSON array: whether every non-container token inside it (at any depth) satisfies
/// `leaf`, and no object occurs. For anything else (or invalid JSON): false. No recursion.
fn all_array_leaves(raw: &str, leaf: impl Fn(Token<'_>) -> bool) -> bool {
    let mut r = Reader::new(raw.as_bytes());
    if !matches!(r.next(), Ok(Some(Token::ArrayStart))) {
        return false;
    }
    loop {
        match r.next() {
            Ok(Some(Token::ArrayStart | Token::ArrayEnd)) => {}
            Ok(Some(Token::ObjectStart | Token::ObjectEnd | Token::Key(_))) => return false,
            Ok(Some(tok)) => {
                if !leaf(tok) {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The elements of a JSON array; see [`PropertyValue::array_items`].
#[derive(Clone, Debug)]
pub struct ArrayItems<'a> {
    raw: &'a str,
    reader: Reader<'a>,
    done: bool,
}

impl<'a> Iterator for ArrayItems<'a> {
    type Item = Result<PropertyValue<'a>, FromJsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.reader.next() {
            Ok(Some(Token::ArrayEnd)) | Ok(None) => {
                self.done = true;
                return None;
            }
            Ok(Some(Token::ArrayStart | Token::ObjectStart)) => {
                container_text(self.raw, &mut self.reader).map(PropertyValue::Json)
            }
            Ok(Some(tok)) => scalar(tok),
            Err(e) => Err(FromJsonError::Json(e)),
        };
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl core::iter::FusedIterator for ArrayItems<'_> {}

/// Just after a container's opening bracket: skips to its end and returns its text.
fn container_text<'a>(raw: &'a str, r: &mut Reader<'a>) -> Result<&'a str, FromJsonError> {
    let start = r.offset().saturating_sub(1);
    r.skip_container()?;
    raw.get(start..r.offset())
        .ok_or(FromJsonError::Json(ReadError {
            kind: ReadErrorKind::ExpectedValue,
            offset: start,
        }))
}

/// [`PropertyValue::from_json`] rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FromJsonError {
    /// The text is not exactly one valid JSON value.
    Json(ReadError),
    /// An integer beyond the 64-bit range (below `i64::MIN` or above `u64::MAX`).
    IntegerOutOfRange,
}

impl From<ReadError> for FromJsonError {
    fn from(e: ReadError) -> Self {
        Self::Json(e)
    }
}

impl fmt::Display for FromJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid JSON value: {e}"),
            Self::IntegerOutOfRange => f.write_str("integer does not fit in 64 bits"),
        }
    }
}

impl core::error::Error for FromJsonError {}

// ---------------------------------------------------------------------------------------------
// Property maps
// ---------------------------------------------------------------------------------------------

/// A map of property values the evaluator can look keys up in.
///
/// Implemented for slices and arrays of `(key, value)` pairs (and references to any
/// implementation), so a context can be as simple as:
///
/// ```
/// use posthog_embedded::flags::value::{Properties, PropertyValue};
///
/// let person = [("plan", PropertyValue::Str("pro")), ("seats", PropertyValue::Int(12))];
/// assert_eq!(person.get("seats"), Some(PropertyValue::Int(12)));
/// assert_eq!(person.get("email"), None);
/// ```
///
/// Keys are compared exactly (case-sensitive). In a slice of pairs the **first** pair with the
/// key wins; later duplicates are ignored.
///
/// On a bare slice, method syntax finds the slice's own `get(index)` first: write
/// `Properties::get(slice, key)` there (arrays and generic `P: Properties` code are unaffected).
pub trait Properties {
    /// The `index`-th property as `(key, value)`, or `None` past the end. Indices are dense
    /// from 0. Used to send the properties to `/flags` and, by default, for look-ups.
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)>;

    /// The value stored under `key` (the first entry with that key), or `None` if the key is
    /// absent. (A present key with a null value is `Some(PropertyValue::Null)`: PostHog treats
    /// the two differently.) The default scans [`entry`](Self::entry).
    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        (0..)
            .map_while(|i| self.entry(i))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

impl Properties for [(&str, PropertyValue<'_>)] {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        <[_]>::get(self, index).map(|(k, v)| (*k, *v))
    }

    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<const N: usize> Properties for [(&str, PropertyValue<'_>); N] {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        Properties::entry(self.as_slice(), index)
    }

    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        Properties::get(self.as_slice(), key)
    }
}

impl<T: Properties + ?Sized> Properties for &T {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        (**self).entry(index)
    }

    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        (**self).get(key)
    }
}

// ---------------------------------------------------------------------------------------------
// Stringification
// ---------------------------------------------------------------------------------------------

/// A value could not be turned into PostHog's string form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StringifyError {
    /// A float (standing alone or inside a composite) is NaN or infinite. PostHog makes the
    /// comparison inconclusive.
    NonFinite,
    /// A composite is nested deeper than [`MAX_STRINGIFY_DEPTH`].
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The caller's buffer is too small ([`py_str`] only).
    Overflow {
        /// Bytes the string form needs.
        needed: usize,
    },
    /// A [`PropertyValue::Json`] holds text that is not valid JSON.
    InvalidJson,
    /// The `core::fmt::Write` sink reported an error ([`write_py_str`] only).
    Write,
}

impl fmt::Display for StringifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NonFinite => f.write_str("NaN or infinite number has no string form"),
            Self::TooDeep { max } => write!(f, "value nested deeper than {max} levels"),
            Self::Overflow { needed } => {
                write!(f, "string form needs {needed} bytes, more than the buffer")
            }
            Self::InvalidJson => f.write_str("composite value is not valid JSON"),
            Self::Write => f.write_str("the output sink failed"),
        }
    }
}

impl core::error::Error for StringifyError {}

impl From<fmt::Error> for StringifyError {
    fn from(_: fmt::Error) -> Self {
        Self::Write
    }
}

impl From<ReadError> for StringifyError {
    fn from(_: ReadError) -> Self {
        Self::InvalidJson
    }
}

/// PostHog's string form of `value` (PY `_value_to_string`, protocol §1.10.2), borrowing from
/// the value when it is already a string and written into `buf` otherwise.
///
/// - A [`Str`](PropertyValue::Str) is returned as is, without touching `buf`; `null`, `true`
///   and `false` are static strings.
/// - Integers in decimal; floats in the server's JSON spelling: plain decimal from `1e-5` up to
///   (not including) `1e16`, keeping a `.0` when whole (`323.0`, `-0.0`, `0.00001`), exponent
///   form otherwise with an explicit sign and no padding (`1e-7`, `1.5e+16`).
/// - Arrays and objects as compact JSON (`[1,"a"]`, `{"a":1,"b":[true,null]}`), object keys
///   sorted by code point (duplicate keys: the last value wins, as in Python's `json.loads`),
///   strings escaped like `json.dumps(ensure_ascii=False)` (only `"`, `\` and control
///   characters; non-ASCII stays as is).
///
/// To compare, search or match the result, keep `buf` borrowed while you use it. A buffer of a
/// few hundred bytes covers typical filter values; [`StringifyError::Overflow`] tells you the
/// exact size needed otherwise.
///
/// # Errors
/// [`StringifyError::NonFinite`] (NaN/inf anywhere), [`StringifyError::TooDeep`],
/// [`StringifyError::InvalidJson`] (a hand-built [`Json`](PropertyValue::Json) that is not
/// JSON), or [`StringifyError::Overflow`] with the size needed. On error `buf` holds garbage.
pub fn py_str<'r>(value: &PropertyValue<'r>, buf: &'r mut [u8]) -> Result<&'r str, StringifyError> {
    match *value {
        PropertyValue::Str(s) => return Ok(s),
        PropertyValue::Null => return Ok("null"),
        PropertyValue::Bool(true) => return Ok("true"),
        PropertyValue::Bool(false) => return Ok("false"),
        _ => {}
    }
    let mut out = BufOut { buf, len: 0 };
    write_py_str(value, &mut out)?;
    let len = out.len;
    let buf: &'r [u8] = out.buf;
    let written = buf
        .get(..len)
        .ok_or(StringifyError::Overflow { needed: len })?;
    // Whole UTF-8 sequences were written and all of them fit: this cannot fail.
    core::str::from_utf8(written).map_err(|_| StringifyError::Overflow { needed: len })
}

/// Writes PostHog's string form of `value` (see [`py_str`]) to any `core::fmt::Write` sink, for
/// callers that stream it (for example into a hasher or a `heapless::String`).
///
/// # Errors
/// As [`py_str`], except that a full or failing sink is [`StringifyError::Write`]. Part of the
/// output may have been written.
pub fn write_py_str<W: Write + ?Sized>(
    value: &PropertyValue<'_>,
    out: &mut W,
) -> Result<(), StringifyError> {
    match *value {
        PropertyValue::Null => out.write_str("null")?,
        PropertyValue::Bool(b) => out.write_str(if b { "true" } else { "false" })?,
        PropertyValue::Int(i) => write!(out, "{i}")?,
        PropertyValue::UInt(u) => write!(out, "{u}")?,
        PropertyValue::Float(f) => write_float(f, out)?,
        PropertyValue::Str(s) => out.write_str(s)?,
        PropertyValue::EscapedStr(s) => {
            for c in s.chars() {
                out.write_char(c)?;
            }
        }
        PropertyValue::Json(raw) => write_json_value(raw, 0, out)?,
    }
    Ok(())
}

/// A `fmt::Write` into a byte buffer that keeps counting past its end.
struct BufOut<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Write for BufOut<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.saturating_add(s.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(s.as_bytes());
        }
        self.len = end;
        Ok(())
    }
}

/// Writes one JSON value given as text, `depth` containers deep, in PostHog's composite form.
fn write_json_value<W: Write + ?Sized>(
    raw: &str,
    depth: usize,
    out: &mut W,
) -> Result<(), StringifyError> {
    let mut r = Reader::new(raw.as_bytes());
    let tok = r.next()?.ok_or(StringifyError::InvalidJson)?;
    write_token(raw, &mut r, tok, depth, out)
}

/// Writes the value that starts with `tok` (just read from `r`, which reads `raw`).
fn write_token<W: Write + ?Sized>(
    raw: &str,
    r: &mut Reader<'_>,
    tok: Token<'_>,
    depth: usize,
    out: &mut W,
) -> Result<(), StringifyError> {
    match tok {
        Token::Null => out.write_str("null")?,
        Token::Bool(b) => out.write_str(if b { "true" } else { "false" })?,
        Token::Number(n) if n.is_integer() => {
            // Python prints the int exactly, whatever its size; `-0` reads as 0.
            let s = n.as_str();
            out.write_str(if s == "-0" { "0" } else { s })?;
        }
        Token::Number(n) => write_float(n.as_f64(), out)?,
        Token::Str(s) => write_quoted(s, out)?,
        Token::ArrayStart | Token::ObjectStart => {
            if depth >= MAX_STRINGIFY_DEPTH {
                return Err(StringifyError::TooDeep {
                    max: MAX_STRINGIFY_DEPTH,
                });
            }
            let start = r.offset().saturating_sub(1);
            r.skip_container()?;
            let text = raw
                .get(start..r.offset())
                .ok_or(StringifyError::InvalidJson)?;
            if matches!(tok, Token::ArrayStart) {
                write_array(text, depth + 1, out)?;
            } else {
                write_object(text, depth + 1, out)?;
            }
        }
        Token::ArrayEnd | Token::ObjectEnd | Token::Key(_) => {
            return Err(StringifyError::InvalidJson)
        }
    }
    Ok(())
}

/// Writes the array whose text is `raw`, its elements `depth` containers deep.
fn write_array<W: Write + ?Sized>(
    raw: &str,
    depth: usize,
    out: &mut W,
) -> Result<(), StringifyError> {
    let mut r = Reader::new(raw.as_bytes());
    if r.next()? != Some(Token::ArrayStart) {
        return Err(StringifyError::InvalidJson);
    }
    out.write_char('[')?;
    let mut first = true;
    loop {
        match r.next()?.ok_or(StringifyError::InvalidJson)? {
            Token::ArrayEnd => break,
            tok => {
                if !first {
                    out.write_char(',')?;
                }
                first = false;
                write_token(raw, &mut r, tok, depth, out)?;
            }
        }
    }
    out.write_char(']')?;
    Ok(())
}

/// Writes the object whose text is `raw` with its keys sorted, its values `depth` deep.
///
/// Without a place to sort, each round scans the whole object for the smallest key greater than
/// the one written last: O(keys × size), bounded by the input. Among equal keys the last one
/// wins (Python's `json.loads` keeps the last value of a duplicate key).
fn write_object<W: Write + ?Sized>(
    raw: &str,
    depth: usize,
    out: &mut W,
) -> Result<(), StringifyError> {
    out.write_char('{')?;
    let mut prev: Option<Str<'_>> = None;
    loop {
        let mut r = Reader::new(raw.as_bytes());
        if r.next()? != Some(Token::ObjectStart) {
            return Err(StringifyError::InvalidJson);
        }
        // The best key so far and the text of its value.
        let mut best: Option<(Str<'_>, &str)> = None;
        loop {
            match r.next()?.ok_or(StringifyError::InvalidJson)? {
                Token::ObjectEnd => break,
                Token::Key(k) => {
                    let start = value_start(raw, r.offset());
                    r.skip_value()?;
                    let value = raw
                        .get(start..r.offset())
                        .ok_or(StringifyError::InvalidJson)?;
                    if prev.is_some_and(|p| cmp_keys(&k, &p) != Ordering::Greater) {
                        continue;
                    }
                    if best.is_none_or(|(b, _)| cmp_keys(&k, &b) != Ordering::Greater) {
                        best = Some((k, value));
                    }
                }
                _ => return Err(StringifyError::InvalidJson),
            }
        }
        let Some((key, value)) = best else { break };
        if prev.is_some() {
            out.write_char(',')?;
        }
        write_quoted(key, out)?;
        out.write_char(':')?;
        write_json_value(value, depth, out)?;
        prev = Some(key);
    }
    out.write_char('}')?;
    Ok(())
}

/// The offset of the value after a key that ends at `after_key`: past whitespace and `:`.
fn value_start(raw: &str, after_key: usize) -> usize {
    let skipped = raw
        .as_bytes()
        .get(after_key..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b':'))
        .count();
    after_key + skipped
}

/// Orders two keys by their decoded code points (Python's `sorted` on `str`).
fn cmp_keys(a: &Str<'_>, b: &Str<'_>) -> Ordering {
    match (a.as_str(), b.as_str()) {
        // UTF-8 byte order is code point order.
        (Some(a), Some(b)) => a.cmp(b),
        _ => a.chars().cmp(b.chars()),
    }
}

/// Writes a JSON string quoted and escaped like Python's `json.dumps(ensure_ascii=False)`.
fn write_quoted<W: Write + ?Sized>(s: Str<'_>, out: &mut W) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Writes a float the way the server spells it (§1.10.2).
fn write_float<W: Write + ?Sized>(v: f64, out: &mut W) -> Result<(), StringifyError> {
    if !v.is_finite() {
        return Err(StringifyError::NonFinite);
    }
    let mut ryu_buf = ryu::Buffer::new();
    let d = Decimal::parse(ryu_buf.format_finite(v));
    let digits = d.digits();
    if d.negative {
        out.write_char('-')?;
    }
    let Some((&lead, rest)) = digits.split_first() else {
        out.write_str("0.0")?;
        return Ok(());
    };
    // The value is 0.DIGITS × 10^point; in scientific form D.IGITS × 10^exp.
    let exp = d.point - 1;
    if (-5..16).contains(&exp) {
        if d.point <= 0 {
            out.write_str("0.")?;
            write_zeros(d.point.unsigned_abs(), out)?;
            write_digits(digits, out)?;
        } else {
            let point = usize::try_from(d.point).unwrap_or(0);
            match (digits.get(..point), digits.get(point..)) {
                (Some(int), Some(frac)) if !frac.is_empty() => {
                    write_digits(int, out)?;
                    out.write_char('.')?;
                    write_digits(frac, out)?;
                }
                _ => {
                    write_digits(digits, out)?;
                    let len = u32::try_from(digits.len()).unwrap_or(0);
                    write_zeros(d.point.unsigned_abs().saturating_sub(len), out)?;
                    out.write_str(".0")?;
                }
            }
        }
    } else {
        write_digits(&[lead], out)?;
        if !rest.is_empty() {
            out.write_char('.')?;
            write_digits(rest, out)?;
        }
        write!(
            out,
            "e{}{}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )?;
    }
    Ok(())
}

fn write_digits<W: Write + ?Sized>(digits: &[u8], out: &mut W) -> fmt::Result {
    digits
        .iter()
        .try_for_each(|&b| out.write_char(char::from(b)))
}

fn write_zeros<W: Write + ?Sized>(n: u32, out: &mut W) -> fmt::Result {
    (0..n).try_for_each(|_| out.write_char('0'))
}

/// A finite float's shortest round-trip digits, read back from `ryu`'s text (whatever notation
/// `ryu` chose): value = ±0.DIGITS × 10^point, no leading or trailing zero digits.
struct Decimal {
    negative: bool,
    buf: [u8; 32],
    len: usize,
    point: i32,
}

impl Decimal {
    fn parse(s: &str) -> Self {
        let mut d = Self {
            negative: false,
            buf: [0; 32],
            len: 0,
            point: 0,
        };
        let (mantissa, exp) = match s.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
            None => (s, 0),
        };
        let mut in_fraction = false;
        for b in mantissa.bytes() {
            match b {
                b'-' => d.negative = true,
                b'.' => in_fraction = true,
                // A leading zero is dropped; after the decimal point it shifts the point left.
                b'0' if d.len == 0 => d.point -= i32::from(in_fraction),
                b'0'..=b'9' => {
                    if let Some(slot) = d.buf.get_mut(d.len) {
                        *slot = b;
                        d.len += 1;
                    }
                    if !in_fraction {
                        d.point += 1;
                    }
                }
                _ => {}
            }
        }
        while d.len > 0 && d.buf.get(d.len - 1) == Some(&b'0') {
            d.len -= 1;
        }
        d.point += exp;
        d
    }

    fn digits(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Case folding
// ---------------------------------------------------------------------------------------------

/// [`lower_eq`] could not decide: the answer depends on whether a `Σ` is word-final, and a
/// neighbouring character is outside the Unicode ranges this crate carries case tables for.
/// PostHog's evaluator treats this like any other inconclusive comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Undecidable;

impl fmt::Display for Undecidable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("case-insensitive comparison needs Unicode data this build does not carry")
    }
}

impl core::error::Error for Undecidable {}

/// Whether `a.to_lowercase() == b.to_lowercase()` (Python `a.lower() == b.lower()`, used by
/// `exact`/`is_not`, §1.10.3), computed without allocating.
///
/// Lowercasing uses the full Unicode mappings (`"İ"` becomes `"i̇"`, so it equals `"i̇"` but not
/// `"i"`; `"ß"` stays `"ß"`) and the Final_Sigma rule: `Σ` becomes `ς` when a cased letter
/// precedes it and none follows it (skipping case-ignorable characters such as apostrophes and
/// combining marks both ways), `σ` otherwise. So `"ΟΔΟΣ"` equals `"οδος"`, and `"Σ"` alone
/// equals `"σ"`, not `"ς"`.
///
/// # Errors
/// [`Undecidable`] only when a `Σ` lines up with a `σ`, `ς` or another `Σ`, its word-final
/// status matters, and deciding it needs the Cased/Case_Ignorable property of a character
/// outside the ranges covered here (Latin, Greek, Cyrillic, Armenian, Latin/Greek Extended,
/// General Punctuation, kana, CJK ideographs, Hangul syllables, most emoji). Every `Ok` is
/// exact.
pub fn lower_eq(a: &str, b: &str) -> Result<bool, Undecidable> {
    if a == b {
        return Ok(true);
    }
    let mut x = Lower::new(a);
    let mut y = Lower::new(b);
    let mut undecided = false;
    loop {
        match (x.next(), y.next()) {
            (None, None) => break,
            (Some(_), None) | (None, Some(_)) => return Ok(false),
            (Some(Lc::Char(p)), Some(Lc::Char(q))) => {
                if p != q {
                    return Ok(false);
                }
            }
            (Some(Lc::Sigma), Some(Lc::Char(q))) | (Some(Lc::Char(q)), Some(Lc::Sigma)) => {
                if q != 'σ' && q != 'ς' {
                    return Ok(false);
                }
                undecided = true;
            }
            (Some(Lc::Sigma), Some(Lc::Sigma)) => undecided = true,
        }
    }
    if undecided {
        Err(Undecidable)
    } else {
        Ok(true)
    }
}

/// One character of a lowercased string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lc {
    Char(char),
    /// A `Σ` whose lowercase (`σ` or `ς`) cannot be decided with the tables at hand.
    Sigma,
}

/// The lowercase of a string, one character at a time.
struct Lower<'a> {
    s: &'a str,
    chars: core::str::CharIndices<'a>,
    pending: Option<core::char::ToLowercase>,
}

impl<'a> Lower<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s,
            chars: s.char_indices(),
            pending: None,
        }
    }
}

impl Iterator for Lower<'_> {
    type Item = Lc;

    fn next(&mut self) -> Option<Lc> {
        if let Some(c) = self.pending.as_mut().and_then(Iterator::next) {
            return Some(Lc::Char(c));
        }
        self.pending = None;
        let (i, c) = self.chars.next()?;
        if c == 'Σ' {
            return Some(match final_sigma(self.s, i) {
                Some(true) => Lc::Char('ς'),
                Some(false) => Lc::Char('σ'),
                None => Lc::Sigma,
            });
        }
        let mut lower = c.to_lowercase();
        let first = lower.next();
        self.pending = Some(lower);
        first.map(Lc::Char)
    }
}

/// Whether the `Σ` at byte `i` of `s` is in the Final_Sigma context (Unicode §3.13, as Rust's
/// `str::to_lowercase` and CPython's `str.lower` apply it): a cased character before it and no
/// cased character after it, case-ignorable characters skipped both ways. `None` if that depends
/// on a character whose properties are unknown here.
fn final_sigma(s: &str, i: usize) -> Option<bool> {
    let before = s.get(..i).unwrap_or_default();
    let after = s.get(i + 'Σ'.len_utf8()..).unwrap_or_default();
    let cased_before = cased_beyond_ignorables(before.chars().rev());
    if cased_before == Some(false) {
        return Some(false);
    }
    let cased_after = cased_beyond_ignorables(after.chars());
    if cased_after == Some(true) {
        return Some(false);
    }
    match (cased_before, cased_after) {
        (Some(true), Some(false)) => Some(true),
        _ => None,
    }
}

/// Skips case-ignorable characters, then says whether the next one is cased (`false` at the
/// end), or `None` if an unknown character is in the way.
fn cased_beyond_ignorables(chars: impl Iterator<Item = char>) -> Option<bool> {
    for c in chars {
        match case_class(c) {
            CaseClass::Ignorable => {}
            CaseClass::Cased => return Some(true),
            CaseClass::Other => return Some(false),
            CaseClass::Unknown => return None,
        }
    }
    Some(false)
}

/// What a character is to the Final_Sigma rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaseClass {
    /// Neither cased nor case-ignorable: stops the scan, "not cased".
    Other,
    /// Cased (Lowercase, Uppercase or Lt) and not case-ignorable: stops the scan, "cased".
    Cased,
    /// Case_Ignorable (Mn, Me, Cf, Lm, Sk, MidLetter, MidNumLet, Single_Quote): skipped.
    Ignorable,
    /// Outside the ranges of [`CASE_CLASSES`].
    Unknown,
}

const O: u32 = 0;
const C: u32 = 1;
const I: u32 = 2;
const U: u32 = 3;

/// One entry of [`CASE_CLASSES`]: a range start and its class, packed.
const fn r(start: u32, class: u32) -> u32 {
    (start << 2) | class
}

/// Case classes by range: each entry's class holds from its start up to the next entry's start.
/// Generated from Rust's `str::to_lowercase` (and checked against it by the unit tests) for
/// U+0000–U+058F, U+1E00–U+206F, U+3040–U+30FF, U+4E00–U+9FFF, U+AC00–U+D7A3 and
/// U+1F300–U+1FAFF; everything else is unknown. These blocks have not changed in recent Unicode
/// versions, so the classes agree with CPython's tables too.
#[rustfmt::skip]
const CASE_CLASSES: [u32; 143] = [
    r(0x0000, O), r(0x0027, I), r(0x0028, O), r(0x002E, I), r(0x002F, O), r(0x003A, I),
    r(0x003B, O), r(0x0041, C), r(0x005B, O), r(0x005E, I), r(0x005F, O), r(0x0060, I),
    r(0x0061, C), r(0x007B, O), r(0x00A8, I), r(0x00A9, O), r(0x00AA, C), r(0x00AB, O),
    r(0x00AD, I), r(0x00AE, O), r(0x00AF, I), r(0x00B0, O), r(0x00B4, I), r(0x00B5, C),
    r(0x00B6, O), r(0x00B7, I), r(0x00B9, O), r(0x00BA, C), r(0x00BB, O), r(0x00C0, C),
    r(0x00D7, O), r(0x00D8, C), r(0x00F7, O), r(0x00F8, C), r(0x01BB, O), r(0x01BC, C),
    r(0x01C0, O), r(0x01C4, C), r(0x0294, O), r(0x0296, C), r(0x02B0, I), r(0x0370, C),
    r(0x0374, I), r(0x0376, C), r(0x0378, O), r(0x037A, I), r(0x037B, C), r(0x037E, O),
    r(0x037F, C), r(0x0380, O), r(0x0384, I), r(0x0386, C), r(0x0387, I), r(0x0388, C),
    r(0x038B, O), r(0x038C, C), r(0x038D, O), r(0x038E, C), r(0x03A2, O), r(0x03A3, C),
    r(0x03F6, O), r(0x03F7, C), r(0x0482, O), r(0x0483, I), r(0x048A, C), r(0x0530, O),
    r(0x0531, C), r(0x0557, O), r(0x0559, I), r(0x055A, O), r(0x055F, I), r(0x0560, C),
    r(0x0589, O), r(0x0590, U), r(0x1E00, C), r(0x1F16, O), r(0x1F18, C), r(0x1F1E, O),
    r(0x1F20, C), r(0x1F46, O), r(0x1F48, C), r(0x1F4E, O), r(0x1F50, C), r(0x1F58, O),
    r(0x1F59, C), r(0x1F5A, O), r(0x1F5B, C), r(0x1F5C, O), r(0x1F5D, C), r(0x1F5E, O),
    r(0x1F5F, C), r(0x1F7E, O), r(0x1F80, C), r(0x1FB5, O), r(0x1FB6, C), r(0x1FBD, I),
    r(0x1FBE, C), r(0x1FBF, I), r(0x1FC2, C), r(0x1FC5, O), r(0x1FC6, C), r(0x1FCD, I),
    r(0x1FD0, C), r(0x1FD4, O), r(0x1FD6, C), r(0x1FDC, O), r(0x1FDD, I), r(0x1FE0, C),
    r(0x1FED, I), r(0x1FF0, O), r(0x1FF2, C), r(0x1FF5, O), r(0x1FF6, C), r(0x1FFD, I),
    r(0x1FFF, O), r(0x200B, I), r(0x2010, O), r(0x2018, I), r(0x201A, O), r(0x2024, I),
    r(0x2025, O), r(0x2027, I), r(0x2028, O), r(0x202A, I), r(0x202F, O), r(0x2060, I),
    r(0x2065, O), r(0x2066, I), r(0x2070, U), r(0x3040, O), r(0x3099, I), r(0x309F, O),
    r(0x30FC, I), r(0x30FF, O), r(0x3100, U), r(0x4E00, O), r(0xA000, U), r(0xAC00, O),
    r(0xD7A4, U), r(0x1F300, O), r(0x1F3FB, I), r(0x1F400, O), r(0x1FB00, U),
];

fn case_class(c: char) -> CaseClass {
    let cp = u32::from(c);
    let n = CASE_CLASSES.partition_point(|&e| e >> 2 <= cp);
    let class = n
        .checked_sub(1)
        .and_then(|i| CASE_CLASSES.get(i))
        .map_or(U, |&e| e & 3);
    match class {
        O => CaseClass::Other,
        C => CaseClass::Cased,
        I => CaseClass::Ignorable,
        _ => CaseClass::Unknown,
    }
}

/// Whether `haystack` contains `needle`, ASCII letters compared case-insensitively and
/// everything else exactly (`icontains`, §1.10.3: `"É"` does not match `"é"`). An empty needle
/// is always contained.
#[must_use]
pub fn ascii_icontains(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    // A match of valid UTF-8 can only start on a character boundary, so bytes are enough.
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Whether `haystack` starts with `prefix`, ASCII case ignored (`starts_with`, §1.10.3).
#[must_use]
pub fn ascii_istarts_with(haystack: &str, prefix: &str) -> bool {
    haystack
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `haystack` ends with `suffix`, ASCII case ignored (`ends_with`, §1.10.3).
#[must_use]
pub fn ascii_iends_with(haystack: &str, suffix: &str) -> bool {
    let h = haystack.as_bytes();
    h.len()
        .checked_sub(suffix.len())
        .and_then(|start| h.get(start..))
        .is_some_and(|h| h.eq_ignore_ascii_case(suffix.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// Parses a numeric string the way PostHog's `gt`/`gte`/`lt`/`lte` do (PY
/// `_parse_numeric_value`, §1.10.5). The whole string must match
/// `[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?`, ASCII digits only, no whitespace;
/// and the value must be finite (`"1e309"` is `None`; `"1e-400"` is `0.0`).
///
/// ```
/// use posthog_embedded::flags::value::parse_py_number;
///
/// assert_eq!(parse_py_number("+.5e+1"), Some(5.0));
/// assert_eq!(parse_py_number("10."), Some(10.0));
/// assert_eq!(parse_py_number(" 10"), None);
/// assert_eq!(parse_py_number("NaN"), None);
/// ```
#[must_use]
pub fn parse_py_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_end = digits_from(i);
    let had_int = int_end > i;
    i = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = digits_from(i + 1);
        if !had_int && frac_end == i + 1 {
            return None;
        }
        i = frac_end;
    } else if !had_int {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = digits_from(i);
        if exp_end == i {
            return None;
        }
        i = exp_end;
    }
    if i != b.len() {
        return None;
    }
    // Rust's float grammar accepts everything matched above.
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// [`PropertyValue::is_boolean_like`] of a raw JSON value (for example a filter value straight
/// from the definitions). Invalid JSON is not boolean-like.
#[must_use]
pub fn is_boolean_like_json(raw: &str) -> bool {
    PropertyValue::from_json(raw).is_ok_and(|v| v.is_boolean_like())
}

/// [`PropertyValue::truthy`] of a raw JSON value. Invalid JSON is not truthy.
#[must_use]
pub fn truthy_json(raw: &str) -> bool {
    PropertyValue::from_json(raw).is_ok_and(|v| v.truthy())
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn s(v: PropertyValue<'_>) -> String {
        let mut buf = [0u8; 512];
        py_str(&v, &mut buf).map(String::from).unwrap()
    }

    fn sj(raw: &str) -> String {
        s(PropertyValue::from_json(raw).unwrap())
    }

    fn float(v: f64) -> String {
        s(PropertyValue::Float(v))
    }

    #[test]
    fn from_json_classifies() {
        use PropertyValue as V;
        assert_eq!(V::from_json("null"), Ok(V::Null));
        assert_eq!(V::from_json(" true "), Ok(V::Bool(true)));
        assert_eq!(V::from_json("false"), Ok(V::Bool(false)));
        assert_eq!(V::from_json("5"), Ok(V::Int(5)));
        assert_eq!(V::from_json("-0"), Ok(V::Int(0)));
        assert_eq!(V::from_json("-9223372036854775808"), Ok(V::Int(i64::MIN)));
        assert_eq!(V::from_json("18446744073709551615"), Ok(V::UInt(u64::MAX)));
        assert_eq!(
            V::from_json("18446744073709551616"),
            Err(FromJsonError::IntegerOutOfRange)
        );
        assert_eq!(
            V::from_json("-9223372036854775809"),
            Err(FromJsonError::IntegerOutOfRange)
        );
        assert_eq!(V::from_json("1.0"), Ok(V::Float(1.0)));
        assert_eq!(V::from_json("1e2"), Ok(V::Float(100.0)));
        assert_eq!(V::from_json("1e400"), Ok(V::Float(f64::INFINITY)));
        assert_eq!(V::from_json(r#""abc""#), Ok(V::Str("abc")));
        let V::EscapedStr(e) = V::from_json(r#""a\"b""#).unwrap() else {
            panic!("escaped")
        };
        assert!(e.eq_str("a\"b"));
        assert_eq!(V::from_json(" [1, 2] \n"), Ok(V::Json("[1, 2]")));
        assert_eq!(V::from_json(r#"{"a":{}}"#), Ok(V::Json(r#"{"a":{}}"#)));
        assert!(matches!(V::from_json(""), Err(FromJsonError::Json(_))));
        assert!(matches!(V::from_json("[1,]"), Err(FromJsonError::Json(_))));
        assert!(matches!(V::from_json("1 2"), Err(FromJsonError::Json(_))));
        assert!(matches!(V::from_json("'a'"), Err(FromJsonError::Json(_))));
    }

    #[test]
    fn array_items_and_predicates() {
        let v = PropertyValue::from_json(r#"[1, "a", [2, {"k": 3}], 1.5, null, "\n"]"#).unwrap();
        assert!(v.is_array());
        assert!(!v.is_empty_array());
        let items: Vec<_> = v.array_items().unwrap().map(Result::unwrap).collect();
        assert_eq!(items.len(), 6);
        assert_eq!(items[0], PropertyValue::Int(1));
        assert_eq!(items[1], PropertyValue::Str("a"));
        assert_eq!(items[2], PropertyValue::Json(r#"[2, {"k": 3}]"#));
        assert_eq!(items[3], PropertyValue::Float(1.5));
        assert_eq!(items[4], PropertyValue::Null);
        assert!(matches!(items[5], PropertyValue::EscapedStr(_)));
        assert!(PropertyValue::from_json(" [ ] ").unwrap().is_empty_array());
        assert!(!PropertyValue::from_json("{}").unwrap().is_array());
        assert!(PropertyValue::from_json("{}")
            .unwrap()
            .array_items()
            .is_none());
        assert!(PropertyValue::Str("[]").array_items().is_none());
        let big = PropertyValue::from_json("[1, 100000000000000000000, 2]").unwrap();
        let mut it = big.array_items().unwrap();
        assert_eq!(it.next(), Some(Ok(PropertyValue::Int(1))));
        assert_eq!(it.next(), Some(Err(FromJsonError::IntegerOutOfRange)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn properties_lookup() {
        let props = [
            ("a", PropertyValue::Int(1)),
            ("b", PropertyValue::Null),
            ("a", PropertyValue::Int(2)),
        ];
        assert_eq!(props.get("a"), Some(PropertyValue::Int(1)));
        assert_eq!(props.get("b"), Some(PropertyValue::Null));
        assert_eq!(props.get("A"), None);
        let slice: &[(&str, PropertyValue<'_>)] = &props;
        assert_eq!(Properties::get(slice, "a"), Some(PropertyValue::Int(1)));
        fn generic(p: &impl Properties) -> Option<PropertyValue<'_>> {
            p.get("b")
        }
        assert_eq!(generic(&slice), Some(PropertyValue::Null));
        assert_eq!(generic(&&props), Some(PropertyValue::Null));
    }

    #[test]
    fn stringifies_scalars() {
        assert_eq!(s(PropertyValue::Null), "null");
        assert_eq!(s(PropertyValue::Bool(true)), "true");
        assert_eq!(s(PropertyValue::Bool(false)), "false");
        assert_eq!(s(PropertyValue::Int(-5)), "-5");
        assert_eq!(s(PropertyValue::UInt(u64::MAX)), "18446744073709551615");
        assert_eq!(s(PropertyValue::Str("Ä b")), "Ä b");
        assert_eq!(sj(r#""a\"b\u00e9\n""#), "a\"bé\n");
        // A plain string is borrowed, not copied, and needs no buffer.
        let mut empty: [u8; 0] = [];
        assert_eq!(py_str(&PropertyValue::Str("long"), &mut empty), Ok("long"));
        assert_eq!(py_str(&PropertyValue::Null, &mut empty), Ok("null"));
    }

    #[test]
    fn stringifies_floats_like_the_server() {
        // Every example of §1.10.2.
        assert_eq!(float(323.0), "323.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(1e-5), "0.00001");
        assert_eq!(float(9.9e-5), "0.000099");
        assert_eq!(float(1e-7), "1e-7");
        assert_eq!(float(1e16), "1e+16");
        assert_eq!(float(1.5e16), "1.5e+16");
        // Around the switches.
        assert_eq!(float(1e-6), "1e-6");
        assert_eq!(float(1.25e-6), "1.25e-6");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(0.00012), "0.00012");
        assert_eq!(float(9999999999999998.0), "9999999999999998.0");
        assert_eq!(float(1e15), "1000000000000000.0");
        assert_eq!(float(123456789.125), "123456789.125");
        assert_eq!(float(1e22), "1e+22");
        assert_eq!(float(1.7976931348623157e308), "1.7976931348623157e+308");
        assert_eq!(float(5e-324), "5e-324");
        assert_eq!(float(-2.5e-8), "-2.5e-8");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(-1.5), "-1.5");
        assert_eq!(float(100.0), "100.0");
        assert_eq!(float(12.5), "12.5");
        assert_eq!(float(0.3), "0.3");
        assert_eq!(float(2.0f64.powi(60)), "1.152921504606847e+18");
        let mut buf = [0u8; 8];
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                py_str(&PropertyValue::Float(bad), &mut buf),
                Err(StringifyError::NonFinite)
            );
        }
    }

    #[test]
    fn float_spelling_follows_the_repr_rule() {
        // Python breaks 17-digit ties to even, like ryu (std's `{:e}` says ...797.3 here).
        assert_eq!(float(-1.1496366673247973e15), "-1149636667324797.2");
        // Structure for a spread of values: round-trips, fixed notation exactly for decimal
        // exponents -5..16 (with a fraction part), exponent form otherwise, without padding.
        // (400,000 such values were also compared with CPython's repr + the §1.10.2 rewrite.)
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let v = if i % 2 == 0 {
                f64::from_bits(seed)
            } else {
                (seed >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((seed % 30) as i32 - 10)
            };
            if !v.is_finite() {
                continue;
            }
            let got = float(v);
            assert_eq!(got.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{got}");
            let exp: i32 = std::format!("{v:e}")
                .split_once('e')
                .unwrap()
                .1
                .parse()
                .unwrap();
            if v == 0.0 || (-5..16).contains(&exp) {
                assert!(!got.contains('e') && got.contains('.'), "{got}");
            } else {
                let (_, e) = got.split_once('e').unwrap();
                let digits = e.strip_prefix(['+', '-']).unwrap();
                assert!(!digits.starts_with('0'), "{got}");
                assert_eq!(e.starts_with('-'), exp < 0, "{got}");
            }
        }
    }

    #[test]
    fn stringifies_composites() {
        assert_eq!(sj("[1, 2]"), "[1,2]");
        assert_eq!(sj("[]"), "[]");
        assert_eq!(sj("{}"), "{}");
        assert_eq!(sj(r#"{"b": 2, "a": 1}"#), r#"{"a":1,"b":2}"#);
        assert_eq!(
            sj(r#"{"z": [{"b": 1, "a": 2}], "a": "x"}"#),
            r#"{"a":"x","z":[{"a":2,"b":1}]}"#
        );
        assert_eq!(
            sj(r#"[1.0, -0, 1e-7, 1E16, true, null, "q\"\\/\u0001\t", "é😀"]"#),
            "[1.0,0,1e-7,1e+16,true,null,\"q\\\"\\\\/\\u0001\\t\",\"é😀\"]"
        );
        // Integers beyond 64 bits inside a composite print exactly.
        assert_eq!(
            sj("[123456789012345678901234567890]"),
            "[123456789012345678901234567890]"
        );
        // Control characters: json.dumps escapes.
        assert_eq!(
            sj(r#"["\b\f\n\r\t\u001f\u007f"]"#),
            "[\"\\b\\f\\n\\r\\t\\u001f\u{7f}\"]"
        );
        assert_eq!(
            sj(r#"[[[[]]], {"a": {"b": {}}}]"#),
            r#"[[[[]]],{"a":{"b":{}}}]"#
        );
    }

    #[test]
    fn object_keys_sort_by_code_point() {
        // Uppercase before lowercase, shorter prefix first, non-ASCII after ASCII, and escaped
        // keys compared by their decoded text.
        assert_eq!(
            sj(r#"{"b":1,"a":2,"B":3,"ab":4,"é":5,"\u00e8":6,"":7,"\u0041a":8}"#),
            r#"{"":7,"Aa":8,"B":3,"a":2,"ab":4,"b":1,"è":6,"é":5}"#
        );
        // Astral characters sort after BMP ones (code point, not UTF-16, order).
        assert_eq!(sj(r#"{"😀":1,"\uffff":2}"#), "{\"\u{ffff}\":2,\"😀\":1}");
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        assert_eq!(sj(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(sj(r#"{"a":1,"\u0061":[2]}"#), r#"{"a":[2]}"#);
        assert_eq!(sj(r#"{"k":{"x":1,"x":{"y":2}}}"#), r#"{"k":{"x":{"y":2}}}"#);
    }

    #[test]
    fn depth_limit() {
        let mut deep = String::new();
        for _ in 0..MAX_STRINGIFY_DEPTH {
            deep.push('[');
        }
        for _ in 0..MAX_STRINGIFY_DEPTH {
            deep.push(']');
        }
        assert_eq!(sj(&deep), deep);
        let deeper = std::format!("[{deep}]");
        let mut buf = [0u8; 256];
        assert_eq!(
            py_str(&PropertyValue::from_json(&deeper).unwrap(), &mut buf),
            Err(StringifyError::TooDeep {
                max: MAX_STRINGIFY_DEPTH
            })
        );
        let objs = std::format!("{}1{}", r#"{"a":"#.repeat(17), "}".repeat(17));
        assert_eq!(
            py_str(&PropertyValue::from_json(&objs).unwrap(), &mut buf),
            Err(StringifyError::TooDeep {
                max: MAX_STRINGIFY_DEPTH
            })
        );
    }

    #[test]
    fn overflow_reports_the_size_needed() {
        let v = PropertyValue::from_json(r#"{"key": "a long value", "b": [1, 2, 3]}"#).unwrap();
        let want = r#"{"b":[1,2,3],"key":"a long value"}"#;
        for cap in 0..want.len() {
            let mut buf = std::vec![0u8; cap];
            assert_eq!(
                py_str(&v, &mut buf),
                Err(StringifyError::Overflow { needed: want.len() })
            );
        }
        let mut buf = std::vec![0u8; want.len()];
        assert_eq!(py_str(&v, &mut buf), Ok(want));
        let mut buf = [0u8; 3];
        assert_eq!(py_str(&PropertyValue::Float(1.5), &mut buf), Ok("1.5"));
        assert_eq!(
            py_str(&PropertyValue::Float(-1.5), &mut buf),
            Err(StringifyError::Overflow { needed: 4 })
        );
        // A non-finite float inside wins over a full buffer.
        let mut buf = [0u8; 2];
        assert_eq!(
            py_str(
                &PropertyValue::from_json("[1, 2, 1e999]").unwrap(),
                &mut buf
            ),
            Err(StringifyError::NonFinite)
        );
    }

    #[test]
    fn write_py_str_streams_and_reports_sink_errors() {
        let mut out = String::new();
        write_py_str(
            &PropertyValue::from_json(r#"{"b":1,"a":[2]}"#).unwrap(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, r#"{"a":[2],"b":1}"#);
        let mut small: heapless::String<4> = heapless::String::new();
        assert_eq!(
            write_py_str(&PropertyValue::Str("too long"), &mut small),
            Err(StringifyError::Write)
        );
        let mut out = String::new();
        assert_eq!(
            write_py_str(&PropertyValue::Json("[1,"), &mut out),
            Err(StringifyError::InvalidJson)
        );
    }

    #[test]
    fn lower_eq_examples() {
        assert_eq!(lower_eq("Ä", "ä"), Ok(true));
        assert_eq!(lower_eq("ß", "ss"), Ok(false));
        assert_eq!(lower_eq("ẞ", "ß"), Ok(true));
        assert_eq!(lower_eq("Σ", "ς"), Ok(false));
        assert_eq!(lower_eq("Σ", "σ"), Ok(true));
        assert_eq!(lower_eq("ΟΔΟΣ", "οδος"), Ok(true));
        assert_eq!(lower_eq("ΟΔΟΣ", "οδοσ"), Ok(false));
        assert_eq!(lower_eq("ΟΔΟΣ ΟΔΟΣ", "οδος οδος"), Ok(true));
        assert_eq!(lower_eq("ΣΑΣ", "σας"), Ok(true));
        assert_eq!(lower_eq("ΟΔΟΣ'", "οδος'"), Ok(true));
        assert_eq!(lower_eq("ΟΔΟΣ'Α", "οδοσ'α"), Ok(true));
        assert_eq!(lower_eq("Α\u{301}Σ", "α\u{301}ς"), Ok(true));
        assert_eq!(lower_eq("İ", "i\u{307}"), Ok(true));
        assert_eq!(lower_eq("İ", "i"), Ok(false));
        assert_eq!(lower_eq("K", "k"), Ok(true)); // Kelvin sign
        assert_eq!(lower_eq("", ""), Ok(true));
        assert_eq!(lower_eq("a", ""), Ok(false));
        assert_eq!(lower_eq("VALUE", "value"), Ok(true));
        // Unknown neighbour (Georgian) next to a Σ that lines up with σ/ς: undecidable.
        assert_eq!(lower_eq("ΑΣა", "ασა"), Err(Undecidable));
        assert_eq!(lower_eq("აΣ", "აς"), Err(Undecidable));
        // ... unless the other side settles it anyway.
        assert_eq!(lower_eq("ΑΣა", "αxა"), Ok(false));
        assert_eq!(lower_eq("ΑΣა", "ασაb"), Ok(false));
        assert_eq!(lower_eq("ΑΣა", "ΑΣა"), Ok(true));
        // A cased letter right after decides, whatever came before.
        assert_eq!(lower_eq("აΣa", "აσa"), Ok(true));
        // Nothing cased before decides, whatever comes after.
        assert_eq!(lower_eq(" Σა", " σა"), Ok(true));
    }

    /// Every character class in the table agrees with std's own Final_Sigma handling.
    #[test]
    fn case_classes_match_std() {
        for cp in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let class = case_class(c);
            if class == CaseClass::Unknown {
                continue;
            }
            if c == 'Σ' {
                assert_eq!(class, CaseClass::Cased);
                continue;
            }
            let mut b1 = [0u8; 8];
            let mut b2 = [0u8; 8];
            let x = std::format!("{}Σ", c.encode_utf8(&mut b1))
                .to_lowercase()
                .ends_with('ς');
            let y = std::format!("A{}Σ", c.encode_utf8(&mut b2))
                .to_lowercase()
                .ends_with('ς');
            let want = match (x, y) {
                (true, true) => CaseClass::Cased,
                (false, false) => CaseClass::Other,
                (false, true) => CaseClass::Ignorable,
                (true, false) => unreachable!(),
            };
            assert_eq!(class, want, "U+{cp:04X}");
        }
    }

    /// Whenever `lower_eq` answers, it agrees with std's `to_lowercase`.
    #[test]
    fn lower_eq_agrees_with_std() {
        const ALPHABET: &[char] = &[
            'a', 'A', 'Σ', 'σ', 'ς', 'Ο', 'ο', ' ', '\'', '.', '\u{301}', '\u{345}', 'İ', 'i',
            '\u{307}', 'ß', 'ẞ', 'K', 'k', 'Ä', 'ä', 'ა', '1', 'ʰ', '’', 'Ω', 'ω', 'ͅ', 'ᾼ', 'ǅ',
            '中', 'ー', '😀', 'Ж', 'ж',
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut decided, mut undecidable, mut equal) = (0, 0, 0);
        for _ in 0..200_000 {
            let len = next(6);
            let a: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            // b: a lowercased or uppercased or mutated variant, to get many equal pairs.
            let b: String = match next(4) {
                0 => a.to_lowercase(),
                1 => a.to_uppercase(),
                2 => a
                    .chars()
                    .map(|c| {
                        if next(3) == 0 {
                            ALPHABET[next(ALPHABET.len())]
                        } else {
                            c
                        }
                    })
                    .collect(),
                _ => (0..next(6))
                    .map(|_| ALPHABET[next(ALPHABET.len())])
                    .collect(),
            };
            let want = a.to_lowercase() == b.to_lowercase();
            match lower_eq(&a, &b) {
                Ok(got) => {
                    assert_eq!(got, want, "{a:?} vs {b:?}");
                    decided += 1;
                    equal += usize::from(got);
                }
                Err(Undecidable) => undecidable += 1,
            }
        }
        std::eprintln!("decided {decided} (equal {equal}), undecidable {undecidable}");
        assert!(decided > 150_000 && equal > 40_000);
    }

    #[test]
    fn ascii_case_helpers() {
        assert!(ascii_icontains("343tfVALUE5", "valUe"));
        assert!(ascii_icontains("abc", ""));
        assert!(ascii_icontains("", ""));
        assert!(!ascii_icontains("", "a"));
        assert!(!ascii_icontains("prefixÄsuffix", "ä"));
        assert!(ascii_icontains("prefixÄsuffix", "XÄS"));
        assert!(ascii_istarts_with("VALUE", "vaL"));
        assert!(!ascii_istarts_with("Äsuffix", "ä"));
        assert!(!ascii_istarts_with("va", "val"));
        assert!(ascii_istarts_with("x", ""));
        assert!(ascii_iends_with("343tfvalue", "lUe"));
        assert!(!ascii_iends_with("prefixÄ", "ä"));
        assert!(!ascii_iends_with("ue", "lue"));
        assert!(ascii_iends_with("null", "LL"));
        // Multi-byte needles never match mid-character.
        assert!(!ascii_icontains("\u{e9}", "\u{a9}"));
    }

    #[test]
    fn numbers() {
        let ok = [
            ("0", 0.0),
            ("10", 10.0),
            ("-10", -10.0),
            ("+10", 10.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("-.5", -0.5),
            ("+.5e+1", 5.0),
            ("+1.e1", 10.0),
            ("-1.25E+2", -125.0),
            ("-5e-1", -0.5),
            ("1e-400", 0.0),
            ("1.7976931348623157e308", f64::MAX),
            ("007", 7.0),
            ("9007199254740993", 9007199254740992.0),
        ];
        for (s, v) in ok {
            assert_eq!(parse_py_number(s), Some(v), "{s}");
        }
        let bad = [
            "", " ", "+", "-", ".", "+.", "e5", ".e5", "1e", "1e+", "1.5.", " 10", "10 ", "10\n",
            "1_0", "1,0", "0x10", "١٠", "NaN", "nan", "inf", "-inf", "Infinity", "1e309", "10px",
            "abc", "1.0.0", "--1", "1e5.0", "1d5",
        ];
        for s in bad {
            assert_eq!(parse_py_number(s), None, "{s:?}");
        }
    }

    #[test]
    fn as_number() {
        use PropertyValue as V;
        assert_eq!(V::Int(-3).as_number(), Some(-3.0));
        assert_eq!(V::UInt(u64::MAX).as_number(), Some(u64::MAX as f64));
        assert_eq!(V::Float(2.5).as_number(), Some(2.5));
        assert_eq!(V::Float(f64::NAN).as_number(), None);
        assert_eq!(V::Float(f64::INFINITY).as_number(), None);
        assert_eq!(V::Str("23").as_number(), Some(23.0));
        assert_eq!(V::Str("").as_number(), None);
        assert_eq!(V::Bool(true).as_number(), None);
        assert_eq!(V::Null.as_number(), None);
        assert_eq!(V::Json("[10]").as_number(), None);
        assert_eq!(V::Json("{}").as_number(), None);
        assert_eq!(
            V::from_json(r#""\u0031\u0030""#).unwrap().as_number(),
            Some(10.0)
        );
        assert_eq!(V::from_json(r#""1\n""#).unwrap().as_number(), None);
    }

    #[test]
    fn boolean_like_and_truthy() {
        let cases: &[(&str, bool, bool)] = &[
            // raw, boolean-like, truthy
            ("true", true, true),
            ("false", true, false),
            (r#""TRUE""#, true, true),
            (r#""False""#, true, false),
            (r#""\u0074rue""#, true, true),
            (r#""yes""#, false, false),
            (r#""true ""#, false, false),
            (r#""""#, false, false),
            ("null", false, false),
            ("0", false, false),
            ("1", false, false),
            ("1.0", false, false),
            ("[]", true, true),
            ("[true]", true, true),
            (r#"["false"]"#, true, false),
            (r#"["true", "false"]"#, true, false),
            (r#"[true, ["TRUE", []]]"#, true, true),
            (r#"[true, [false]]"#, true, false),
            (r#"[[true], "PRO"]"#, false, false),
            (r#"[null, "PRO"]"#, false, false),
            ("[1]", false, false),
            ("[{}]", false, false),
            ("{}", false, false),
            (r#"{"a": true}"#, false, false),
        ];
        for &(raw, like, truthy) in cases {
            let v = PropertyValue::from_json(raw).unwrap();
            assert_eq!(v.is_boolean_like(), like, "{raw}");
            assert_eq!(v.truthy(), truthy, "{raw}");
            assert_eq!(is_boolean_like_json(raw), like, "{raw}");
            assert_eq!(truthy_json(raw), truthy, "{raw}");
        }
        assert!(PropertyValue::Str("tRuE").truthy());
        assert!(!is_boolean_like_json("[tru"));
        assert!(!truthy_json("nope"));
    }

    #[test]
    fn errors_display() {
        use std::string::ToString;
        assert!(!StringifyError::NonFinite.to_string().is_empty());
        assert!(StringifyError::Overflow { needed: 7 }
            .to_string()
            .contains('7'));
        assert!(!Undecidable.to_string().is_empty());
        assert!(!FromJsonError::IntegerOutOfRange.to_string().is_empty());
    }
}
