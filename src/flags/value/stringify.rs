//! Stringification as posthog-python's `_value_to_string`: the subject of `exact`, `is_not`,
//! the substring operators and `regex`. Floats are spelled the way the server spells them,
//! composites as compact JSON with object keys sorted.

use core::cmp::Ordering;
use core::fmt::{self, Write};

use super::{PropertyValue, MAX_STRINGIFY_DEPTH};
use crate::json::read::{ReadError, Reader, Str, Token};

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

/// PostHog's string form of `value` (posthog-python `feature_flags.py`, `_value_to_string`),
/// borrowing from the value when it is already a string and written into `buf` otherwise.
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
    let mut r = Reader::of_str(raw);
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
    let mut r = Reader::of_str(raw);
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
        let mut r = Reader::of_str(raw);
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

/// Writes a float the way the server spells it (posthog-python `_format_json_float`): the
/// shortest round-trip digits, plain decimal from `1e-5` up to (not including) `1e16` with a
/// `.0` kept when whole, exponent form with an explicit sign and no padding otherwise;
/// non-finite values are an error.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

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
        // Every example of PostHog's float spelling (posthog-python `_format_json_float`).
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
        // (400,000 such values were also compared with CPython's repr, with an exponent of -5
        // rewritten in fixed notation and the exponent's padding dropped, as the server spells.)
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
}
