//! Property values and PostHog's value semantics (posthog-python 7.91.1), allocation-free.
//!
//! Property filters compare a filter value from the flag definitions with a value from the
//! caller's person or group properties. This module holds the pieces every operator needs:
//!
//! - [`PropertyValue`]: one JSON-ish value, borrowed. [`PropertyValue::from_json`] classifies raw
//!   JSON text (a filter value straight from the definitions) without copying it.
//! - [`Properties`]: where the evaluator looks up the caller's values; a plain slice of
//!   `(key, value)` pairs implements it.
//! - Stringification ([`py_str`], [`write_py_str`]): posthog-python `_value_to_string`,
//!   the subject of `exact`, `is_not`, the substring operators and `regex`. Floats are spelled
//!   the way the server spells them (`1e-7`, `1e+16`, `0.00001`, `323.0`), composites as compact
//!   JSON with object keys sorted.
//! - Case folding: [`lower_eq`] for `exact`/`is_not` (full Unicode lowercase, as Python
//!   `str.lower()`, including the Greek final sigma) and the ASCII-only [`ascii_icontains`],
//!   [`ascii_istarts_with`], [`ascii_iends_with`] for the substring, prefix and suffix operators.
//! - Numbers for `gt`/`gte`/`lt`/`lte` (posthog-python `_parse_numeric_value`):
//!   [`parse_py_number`] and [`PropertyValue::as_number`].
//! - The legacy boolean rules of `exact` (posthog-python `_match_exact_property`, applied unless
//!   `property_matching_version` is 2): [`PropertyValue::is_boolean_like`] and
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

use core::fmt;

use crate::json::read::{ReadError, ReadErrorKind, Reader, Str, Token};

mod case;
#[cfg(not(feature = "compact"))]
mod lower_table;
mod number;
mod stringify;

pub use case::{ascii_icontains, ascii_iends_with, ascii_istarts_with, lower_eq, Undecidable};
pub use number::{is_boolean_like_json, parse_py_number, truthy_json};
pub use stringify::{py_str, write_py_str, StringifyError};

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
        let mut r = Reader::of_str(raw);
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
        let mut reader = Reader::of_str(raw);
        match reader.next() {
            Ok(Some(Token::ArrayStart)) => Some(ArrayItems {
                raw,
                reader,
                done: false,
            }),
            _ => None,
        }
    }

    /// The value as a number for `gt`/`gte`/`lt`/`lte` (posthog-python `_parse_numeric_value`):
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

    /// Whether the value is *boolean-like* for legacy `exact`/`is_not` (posthog-python
    /// `_match_exact_property`, unless `property_matching_version` is 2): a bool; a string equal
    /// to `"true"` or `"false"` ignoring case; or an array whose items are all boolean-like
    /// (nested arrays included; an empty array counts).
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

    /// PostHog's legacy truthiness for `exact` (posthog-python `_match_exact_property`): a bool
    /// is itself; a string is true iff it equals `"true"` ignoring case; an array is true iff all
    /// its items are (so `[]` is true); anything else (null, numbers, objects) is false.
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

/// Classifies a scalar token (for a reader's caller that already holds one).
pub(crate) fn scalar(tok: Token<'_>) -> Result<PropertyValue<'_>, FromJsonError> {
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
    let mut r = Reader::of_str(raw);
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

    /// [`get`](Self::get) with the key as UTF-8 bytes: the evaluator looks keys up this way,
    /// straight from its store. The default checks the bytes are UTF-8 and calls `get`; the
    /// slice and array implementations compare bytes directly.
    fn get_bytes(&self, key: &[u8]) -> Option<PropertyValue<'_>> {
        core::str::from_utf8(key).ok().and_then(|k| self.get(k))
    }
}

impl Properties for [(&str, PropertyValue<'_>)] {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        <[_]>::get(self, index).map(|(k, v)| (*k, *v))
    }

    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        self.get_bytes(key.as_bytes())
    }

    fn get_bytes(&self, key: &[u8]) -> Option<PropertyValue<'_>> {
        // Length and first byte before the full comparison: most keys differ there.
        self.iter()
            .find(|(k, _)| {
                let k = k.as_bytes();
                k.len() == key.len() && k.first() == key.first() && k == key
            })
            .map(|(_, v)| *v)
    }
}

impl<const N: usize> Properties for [(&str, PropertyValue<'_>); N] {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        Properties::entry(self.as_slice(), index)
    }

    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        Properties::get(self.as_slice(), key)
    }

    fn get_bytes(&self, key: &[u8]) -> Option<PropertyValue<'_>> {
        Properties::get_bytes(self.as_slice(), key)
    }
}

impl<T: Properties + ?Sized> Properties for &T {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        (**self).entry(index)
    }

    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        (**self).get(key)
    }

    fn get_bytes(&self, key: &[u8]) -> Option<PropertyValue<'_>> {
        (**self).get_bytes(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_bytes_agrees_with_get() {
        /// Only `entry`: `get` and `get_bytes` are the trait's defaults.
        struct Entries<'a>(&'a [(&'a str, PropertyValue<'a>)]);
        impl Properties for Entries<'_> {
            fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
                self.0.get(index).map(|(k, v)| (*k, *v))
            }
        }
        let props = [
            ("plan", PropertyValue::Str("pro")),
            ("plan", PropertyValue::Str("second")),
            ("seats", PropertyValue::Int(12)),
            ("pl", PropertyValue::Bool(true)),
            ("é", PropertyValue::Null),
        ];
        let keys: [&[u8]; 7] = [
            b"plan",
            b"seats",
            b"pl",
            b"pla",
            b"",
            "é".as_bytes(),
            b"\xff",
        ];
        for key in keys {
            let want = core::str::from_utf8(key)
                .ok()
                .and_then(|k| Properties::get(&props[..], k));
            assert_eq!(Properties::get_bytes(&props[..], key), want, "{key:?}");
            assert_eq!(props.get_bytes(key), want, "{key:?}");
            assert_eq!(Entries(&props).get_bytes(key), want, "{key:?}");
        }
        assert_eq!(
            props.get_bytes(b"plan"),
            Some(PropertyValue::Str("pro")),
            "first wins"
        );
    }
    use std::vec::Vec;

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
