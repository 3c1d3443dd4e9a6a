//! The tokens the reader returns: strings decoded lazily from the document, numbers kept as
//! their text.

use core::fmt;

use super::BufferTooSmall;

/// One step of a JSON document, as returned by [`Reader::next`](super::Reader::next).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Token<'a> {
    /// `{`
    ObjectStart,
    /// `}`
    ObjectEnd,
    /// `[`
    ArrayStart,
    /// `]`
    ArrayEnd,
    /// An object key (its `:` is consumed with the value that follows).
    Key(Str<'a>),
    /// A string value.
    Str(Str<'a>),
    /// A number value.
    Number(Number<'a>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// A JSON string as it appears in the input, between its quotes, escapes intact.
///
/// Only a [`Reader`](super::Reader) makes these, after checking that the content is valid UTF-8 and every
/// escape is valid, so decoding never fails. `PartialEq` compares the raw text: `"\u0041"` and
/// `"A"` differ there; use [`eq_str`](Self::eq_str) to compare content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Str<'a> {
    pub(super) raw: &'a str,
    pub(super) escaped: bool,
}

impl<'a> Str<'a> {
    /// The raw text between the quotes, escapes not decoded.
    #[must_use]
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether the raw text contains at least one backslash escape.
    #[must_use]
    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// The content, borrowed from the input, if it has no escapes (so raw and decoded agree).
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }

    /// The decoded content, one `char` at a time, without a buffer.
    #[must_use]
    pub fn chars(&self) -> Chars<'a> {
        Chars {
            inner: self.raw.chars(),
        }
    }

    /// Length of the decoded content in UTF-8 bytes (never more than [`raw`](Self::raw)'s).
    #[must_use]
    pub fn decoded_len(&self) -> usize {
        if self.escaped {
            self.chars().map(char::len_utf8).sum()
        } else {
            self.raw.len()
        }
    }

    /// Whether the decoded content equals `s`, without a buffer.
    #[must_use]
    pub fn eq_str(&self, s: &str) -> bool {
        if self.escaped {
            self.chars().eq(s.chars())
        } else {
            // Keys usually differ in length or first byte: tell those apart before `memcmp`.
            let (a, b) = (self.raw.as_bytes(), s.as_bytes());
            a.len() == b.len() && a.first() == b.first() && a == b
        }
    }

    /// Decodes the content into `buf` and returns it as a `&str` borrowed from `buf`.
    ///
    /// # Errors
    /// [`BufferTooSmall`], with the exact size needed, if the decoded content does not fit.
    /// `buf` may then hold a partial copy.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, BufferTooSmall> {
        let available = buf.len();
        let mut n = 0;
        if self.escaped {
            let mut chars = self.chars();
            while let Some(c) = chars.next() {
                let end = n + c.len_utf8();
                match buf.get_mut(n..end) {
                    Some(dst) => {
                        c.encode_utf8(dst);
                        n = end;
                    }
                    None => {
                        let needed = end + chars.map(char::len_utf8).sum::<usize>();
                        return Err(BufferTooSmall { needed, available });
                    }
                }
            }
        } else {
            n = self.raw.len();
            let dst = buf.get_mut(..n).ok_or(BufferTooSmall {
                needed: n,
                available,
            })?;
            dst.copy_from_slice(self.raw.as_bytes());
        }
        let filled: &'b [u8] = buf.get(..n).unwrap_or_default();
        // Whole chars were written, so this cannot fail; the error arm only avoids a panic path.
        core::str::from_utf8(filled).map_err(|_| BufferTooSmall {
            needed: n,
            available,
        })
    }
}

/// Writes the decoded content.
impl fmt::Display for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => self.chars().try_for_each(|c| fmt::Write::write_char(f, c)),
        }
    }
}

/// The decoded characters of a [`Str`]; see [`Str::chars`].
#[derive(Clone, Debug)]
pub struct Chars<'a> {
    inner: core::str::Chars<'a>,
}

impl Chars<'_> {
    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            v = v * 16 + self.inner.next()?.to_digit(16)?;
        }
        Some(v)
    }

    /// Decodes what follows `\u`. The reader validated it; malformed input (impossible for a
    /// `Str` from a `Reader`) decodes as U+FFFD rather than panicking.
    fn unicode(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if !(0xD800..=0xDBFF).contains(&hi) {
            return char::from_u32(hi);
        }
        if self.inner.next()? != '\\' || self.inner.next()? != 'u' {
            return None;
        }
        let lo = self.hex4()?;
        if !(0xDC00..=0xDFFF).contains(&lo) {
            return None;
        }
        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    }
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let c = self.inner.next()?;
        if c != '\\' {
            return Some(c);
        }
        let decoded = match self.inner.next() {
            Some('n') => Some('\n'),
            Some('t') => Some('\t'),
            Some('r') => Some('\r'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some(c @ ('"' | '\\' | '/')) => Some(c),
            Some('u') => self.unicode(),
            _ => None,
        };
        Some(decoded.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Every decoded char takes 1 to 12 raw bytes (and 1 to 4 raw chars).
        let (lo, hi) = self.inner.size_hint();
        (lo.div_ceil(12), hi)
    }
}

impl core::iter::FusedIterator for Chars<'_> {}

/// A JSON number as written in the input (`-12`, `0.5`, `1e400`). Its syntax was checked.
///
/// `PartialEq` compares the text: `1.0` and `1` differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Number<'a> {
    pub(super) raw: &'a str,
    pub(super) integer: bool,
}

impl<'a> Number<'a> {
    /// The number's text, exactly as in the input.
    #[must_use]
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether the number is an integer literal: no fraction and no exponent. `1.0` and `1e2`
    /// are *not* integer literals, even though their values are whole.
    #[must_use]
    pub fn is_integer(&self) -> bool {
        self.integer
    }

    /// The value as an `i64`, if the number is an integer literal in range (`-0` gives `0`).
    /// `None` for `1.0`, `1e2` and anything outside `i64`.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        if self.integer {
            self.raw.parse().ok()
        } else {
            None
        }
    }

    /// The value as a `u64`, if the number is a non-negative integer literal in range (`-0`
    /// gives `0`). `None` for negatives, `1.0`, `1e2` and anything above `u64::MAX`.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        if !self.integer {
            None
        } else if self.raw.starts_with('-') {
            self.as_i64().and_then(|v| u64::try_from(v).ok())
        } else {
            self.raw.parse().ok()
        }
    }

    /// The value as the nearest `f64` (correctly rounded). JSON has no limit on magnitude:
    /// numbers beyond `f64`'s range give `±inf` (`1e400`), and tiny ones `±0.0` (`1e-400`).
    /// `-0` gives `-0.0`.
    #[must_use]
    pub fn as_f64(&self) -> f64 {
        // A number token always has the grammar `parse_f64` takes.
        crate::json::decimal::parse_f64(self.raw).unwrap_or(f64::NAN)
    }
}

impl fmt::Display for Number<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::read::tests::{decoded, one_num, one_str};
    use std::string::ToString;

    #[test]
    fn number_conversions() {
        let n = one_num("-0");
        assert!(n.is_integer());
        assert_eq!((n.as_i64(), n.as_u64()), (Some(0), Some(0)));
        assert!(n.as_f64() == 0.0 && n.as_f64().is_sign_negative());

        let n = one_num("42");
        assert_eq!(
            (n.as_i64(), n.as_u64(), n.as_f64()),
            (Some(42), Some(42), 42.0)
        );
        let n = one_num("-42");
        assert_eq!((n.as_i64(), n.as_u64()), (Some(-42), None));

        assert_eq!(one_num("9223372036854775807").as_i64(), Some(i64::MAX));
        assert_eq!(one_num("9223372036854775808").as_i64(), None);
        assert_eq!(one_num("-9223372036854775808").as_i64(), Some(i64::MIN));
        assert_eq!(one_num("-9223372036854775809").as_i64(), None);
        assert_eq!(one_num("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(one_num("18446744073709551616").as_u64(), None);
        assert_eq!(
            one_num("18446744073709551616").as_f64(),
            18446744073709551616.0
        );

        for not_int in ["1.0", "1e2", "1E0", "0.0", "-0.0"] {
            let n = one_num(not_int);
            assert!(!n.is_integer());
            assert_eq!((n.as_i64(), n.as_u64()), (None, None), "{not_int}");
        }
        assert_eq!(one_num("1e2").as_f64(), 100.0);
        assert_eq!(one_num("1.5").as_f64(), 1.5);

        assert_eq!(one_num("1e400").as_f64(), f64::INFINITY);
        assert_eq!(one_num("-1e400").as_f64(), f64::NEG_INFINITY);
        assert_eq!(one_num("1e-400").as_f64(), 0.0);
        // Correct rounding on classic hard cases.
        assert_eq!(one_num("9007199254740993").as_f64(), 9007199254740992.0);
        assert_eq!(
            one_num("2.2250738585072011e-308").as_f64().to_bits(),
            0x000f_ffff_ffff_ffff
        );
        assert_eq!(one_num("0.1").as_f64(), 0.1);
        assert_eq!(one_num("4.9e-324").as_f64(), 5e-324);
        assert_eq!(one_num("1.7976931348623157e308").as_f64(), f64::MAX);
        assert_eq!(one_num("1.7976931348623159e308").as_f64(), f64::INFINITY);

        assert_eq!(one_num("-2.5E-3").to_string(), "-2.5E-3");
    }

    #[test]
    fn escapes_decode() {
        let s = one_str(r#""a\"b\\c\/d\be\ff\ng\rh\ti\u0041\u00e9\u20AC\ud83d\ude00\uD834\uDD1E""#);
        assert!(s.has_escapes());
        assert_eq!(s.as_str(), None);
        let want = "a\"b\\c/d\u{8}e\u{c}f\ng\rh\tiAé€😀𝄞";
        assert_eq!(decoded(s), want);
        assert!(s.eq_str(want));
        assert!(!s.eq_str("a"));
        assert!(!s.eq_str(&(want.to_string() + "x")));
        assert_eq!(s.decoded_len(), want.len());
        assert_eq!(s.to_string(), want);

        // Extremes of the escapable range.
        assert_eq!(decoded(one_str(r#""\u0000""#)), "\u{0}");
        assert_eq!(decoded(one_str(r#""\uffff""#)), "\u{ffff}");
        assert_eq!(decoded(one_str(r#""\ud800\udc00""#)), "\u{10000}");
        assert_eq!(decoded(one_str(r#""\udbff\udfff""#)), "\u{10ffff}");
        // Raw text is kept as written.
        assert_eq!(one_str(r#""\u0041""#).raw(), r"\u0041");
        assert!(one_str(r#""\u0041""#).eq_str("A"));
    }

    #[test]
    fn str_helpers_without_escapes() {
        let s = one_str("\"plain é\"");
        assert!(!s.has_escapes());
        assert_eq!(s.as_str(), Some("plain é"));
        assert_eq!(s.raw(), "plain é");
        assert_eq!(s.decoded_len(), "plain é".len());
        assert!(s.eq_str("plain é"));
        assert!(!s.eq_str("plain e"));
        let mut buf = [0u8; 16];
        assert_eq!(s.decode_into(&mut buf), Ok("plain é"));
        let mut small = [0u8; 4];
        assert_eq!(
            s.decode_into(&mut small),
            Err(BufferTooSmall {
                needed: 8,
                available: 4
            })
        );
    }

    #[test]
    fn decode_into_reports_needed_len() {
        let s = one_str(r#""ab\n\u00e9\ud83d\ude00""#);
        let want = "ab\né😀";
        assert_eq!(s.decoded_len(), 9);
        let mut exact = [0u8; 9];
        assert_eq!(s.decode_into(&mut exact), Ok(want));
        for cap in 0..9 {
            let mut buf = std::vec![0u8; cap];
            assert_eq!(
                s.decode_into(&mut buf),
                Err(BufferTooSmall {
                    needed: 9,
                    available: cap
                }),
                "cap {cap}"
            );
        }
        let mut empty: [u8; 0] = [];
        assert_eq!(one_str(r#""""#).decode_into(&mut empty), Ok(""));
        assert_eq!(
            BufferTooSmall {
                needed: 9,
                available: 3
            }
            .to_string(),
            "decoded string needs 9 bytes, buffer has 3"
        );
    }

    #[test]
    fn chars_is_lazy_and_fused() {
        let s = one_str(r#""x\ty""#);
        let mut c = s.chars();
        assert_eq!(c.next(), Some('x'));
        assert_eq!(c.next(), Some('\t'));
        assert_eq!(c.next(), Some('y'));
        assert_eq!(c.next(), None);
        assert_eq!(c.next(), None);
    }
}
