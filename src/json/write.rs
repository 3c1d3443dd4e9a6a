//! The escaping JSON writer behind event encoding.
//!
//! [`Object`], [`Array`] and [`ValueWriter`] write straight into a caller buffer: no intermediate
//! collections, no allocation. Output is always well-formed JSON: keys and strings are escaped
//! exactly (quotes, backslashes and every control character; all other Unicode passes through
//! as UTF-8, which `&str` guarantees valid), floats must be finite, and the nesting is enforced by
//! the closure structure.
//!
//! The underlying sink never fails for lack of space. Once the buffer is full it keeps counting
//! the bytes it could not place, so after one pass the caller knows the exact size it needs
//! (see [`Sink::needed`]). The capture path uses that to make room in the ring and re-encode once.
//!
//! Implement [`Value`] to write your own types as property values.

use crate::error::PropertyError;

/// A byte buffer being filled with JSON. Counts past its end instead of failing.
#[derive(Debug)]
pub struct Sink<'b> {
    buf: &'b mut [u8],
    /// Logical length: bytes written plus bytes that did not fit.
    len: usize,
    /// While set, writes are discarded and not counted (used to drop a caller value under a key
    /// the SDK owns).
    muted: bool,
    /// Longest property key accepted, in bytes.
    max_key_len: usize,
    /// The first error of a latching write ([`Object::set`], [`Array::add`]).
    latched: Option<PropertyError>,
}

impl<'b> Sink<'b> {
    /// A sink over `buf` that accepts keys up to `max_key_len` bytes.
    pub fn new(buf: &'b mut [u8], max_key_len: usize) -> Self {
        Self {
            buf,
            len: 0,
            muted: false,
            max_key_len,
            latched: None,
        }
    }

    /// The first error a latching write ([`Object::set`], [`Array::add`]) met, if any. The
    /// capture path checks it after the caller's closure, so a latched error fails the event
    /// even when the closure returned `Ok(())`.
    #[must_use]
    pub fn latched(&self) -> Option<PropertyError> {
        self.latched
    }

    fn latch(&mut self, r: Result<(), PropertyError>) {
        if let (Err(e), None) = (r, self.latched) {
            self.latched = Some(e);
        }
    }

    /// Bytes the output needs so far (written or not).
    #[must_use]
    pub fn needed(&self) -> usize {
        self.len
    }

    /// Whether everything written so far fit in the buffer.
    #[must_use]
    pub fn fits(&self) -> bool {
        self.len <= self.buf.len()
    }

    /// The bytes written, or `None` if some did not fit.
    #[must_use]
    pub fn written(&self) -> Option<&[u8]> {
        self.buf.get(..self.len)
    }

    /// Appends raw bytes, which must already be valid JSON in context.
    // Inlined so that the many constant pieces (`,"uuid":"`) become a few stores rather than a
    // call to `memcpy`, which costs about 40 instructions for a short copy on a Cortex-M.
    #[inline(always)]
    pub fn raw(&mut self, bytes: &[u8]) {
        if self.muted {
            return;
        }
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            copy(dst, bytes);
        }
        self.len = end;
    }

    /// Lets `fill` write exactly `N` bytes straight into the buffer (counted, and not written,
    /// when they do not fit), without a scratch copy.
    pub(crate) fn fixed<const N: usize>(&mut self, fill: impl FnOnce(&mut [u8; N])) {
        if self.muted {
            return;
        }
        let end = self.len.saturating_add(N);
        if let Some(window) = self
            .buf
            .get_mut(self.len..end)
            .and_then(|w| <&mut [u8; N]>::try_from(w).ok())
        {
            fill(window);
        }
        self.len = end;
    }

    pub(crate) fn byte(&mut self, b: u8) {
        if self.muted {
            return;
        }
        if let Some(d) = self.buf.get_mut(self.len) {
            *d = b;
        }
        self.len = self.len.saturating_add(1);
    }

    /// Appends `s` as a quoted, escaped JSON string.
    pub fn string(&mut self, s: &str) {
        self.string_parts(&[s]);
    }

    /// Appends the concatenation of `parts` as one quoted, escaped JSON string.
    pub fn string_parts(&mut self, parts: &[&str]) {
        self.byte(b'"');
        for s in parts {
            self.escaped(s);
        }
        self.byte(b'"');
    }

    /// Appends `s` escaped for the inside of a JSON string (no quotes).
    ///
    /// Runs of bytes that need no escape are found with one compare chain per byte and copied
    /// whole; only `"`, `\` and control characters are rewritten.
    pub(crate) fn escaped(&mut self, s: &str) {
        let mut rest = s.as_bytes();
        if !self.muted {
            // The common case, a string with nothing to escape, copied byte by byte straight
            // into the buffer as it is checked (no `memcpy` call, which costs more than the
            // copy for a short string on a Cortex-M). Stops at the first byte to escape, or
            // where the buffer ends; the loop below does the rest.
            let dst = self.buf.get_mut(self.len..).unwrap_or_default();
            let len = dst.len().min(rest.len());
            let dst = dst.get_mut(..len).unwrap_or_default();
            let src = rest.get(..len).unwrap_or_default();
            let mut n = 0;
            // Four bytes at a time while none of them needs escaping (one word test each).
            for (out, from) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                let Ok(word) = <[u8; 4]>::try_from(from) else {
                    break;
                };
                if super::may_need_escape(u32::from_le_bytes(word)) {
                    break;
                }
                out.copy_from_slice(&word);
                n += 4;
            }
            let (dst, tail) = (
                dst.get_mut(n..).unwrap_or_default(),
                src.get(n..).unwrap_or_default(),
            );
            for (d, &b) in dst.iter_mut().zip(tail) {
                if super::is_special(b) {
                    break;
                }
                *d = b;
                n += 1;
            }
            self.len += n;
            rest = rest.get(n..).unwrap_or_default();
            if rest.is_empty() {
                return;
            }
        }
        loop {
            let Some(i) = rest.iter().position(|&b| super::is_special(b)) else {
                if !rest.is_empty() {
                    self.raw(rest);
                }
                return;
            };
            let Some((run, tail)) = rest.split_at_checked(i) else {
                return;
            };
            if !run.is_empty() {
                self.raw(run);
            }
            let Some((&b, tail)) = tail.split_first() else {
                return;
            };
            rest = tail;
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                    let lo = HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0');
                    self.raw(&[b'\\', b'u', b'0', b'0', hi, lo]);
                    continue;
                }
            };
            self.raw(esc);
        }
    }

    /// Appends an unsigned integer.
    pub fn u64(&mut self, v: u64) {
        match u32::try_from(v) {
            Ok(w) => self.u32(w),
            Err(_) => {
                let mut buf = [0u8; 20];
                let s = fmt_u64(v, &mut buf);
                self.raw(s);
            }
        }
    }

    /// Appends an unsigned integer below 2^32: its digits go straight into the buffer (no
    /// scratch buffer to clear and copy).
    fn u32(&mut self, w: u32) {
        if self.muted {
            return;
        }
        let digits = match w {
            0..=9 => 1,
            10..=99 => 2,
            100..=999 => 3,
            1_000..=9_999 => 4,
            10_000..=99_999 => 5,
            100_000..=999_999 => 6,
            1_000_000..=9_999_999 => 7,
            10_000_000..=99_999_999 => 8,
            100_000_000..=999_999_999 => 9,
            _ => 10,
        };
        let end = self.len.saturating_add(digits);
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            let mut x = w;
            for d in dst.iter_mut().rev() {
                *d = b'0' + (x % 10) as u8;
                x /= 10;
            }
        }
        self.len = end;
    }

    /// Appends a signed integer.
    pub fn i64(&mut self, v: i64) {
        if v < 0 {
            self.byte(b'-');
        }
        self.u64(v.unsigned_abs());
    }

    /// Appends a finite float in its shortest round-trip form (`29.5`, `1.0`, `1e16`).
    ///
    /// # Errors
    /// [`PropertyError::NonFiniteNumber`] for NaN and infinities; nothing is written.
    pub fn f64(&mut self, v: f64) -> Result<(), PropertyError> {
        if !v.is_finite() {
            return Err(PropertyError::NonFiniteNumber);
        }
        let mut b = ryu::Buffer::new();
        self.raw(b.format_finite(v).as_bytes());
        Ok(())
    }

    /// Appends a finite `f32` in its shortest round-trip form (`0.1`, not `0.10000000149011612`).
    ///
    /// # Errors
    /// [`PropertyError::NonFiniteNumber`] for NaN and infinities; nothing is written.
    pub fn f32(&mut self, v: f32) -> Result<(), PropertyError> {
        if !v.is_finite() {
            return Err(PropertyError::NonFiniteNumber);
        }
        // Readings like `21.5` take an exact shortcut; the rest go to ryu.
        let mut short = [0u8; super::short_float::SHORT_F32_MAX];
        if let Some(s) = super::short_float::short_f32(v, &mut short) {
            self.raw(s);
            return Ok(());
        }
        let mut b = ryu::Buffer::new();
        self.raw(b.format_finite(v).as_bytes());
        Ok(())
    }
}

/// `dst.copy_from_slice(src)` (equal lengths): inline stores for a constant piece of up to 8
/// bytes, words for a longer one on a microcontroller. A Cortex-M3/M4/M7 loads and stores
/// unaligned words, which `compiler_builtins`' `memcpy` does not use (it copies misaligned
/// data a byte at a time); a host's `memcpy` is faster than any loop here.
#[inline(always)]
fn copy(dst: &mut [u8], src: &[u8]) {
    if cfg!(all(target_arch = "arm", target_os = "none")) && src.len() > 8 {
        copy_words(dst, src);
    } else {
        dst.copy_from_slice(src);
    }
}

#[inline(never)]
fn copy_words(dst: &mut [u8], src: &[u8]) {
    let mut out = dst.chunks_exact_mut(4);
    let mut from = src.chunks_exact(4);
    for (o, f) in (&mut out).zip(&mut from) {
        let Ok(word) = <[u8; 4]>::try_from(f) else {
            break;
        };
        o.copy_from_slice(&word);
    }
    // The last 0 to 3 bytes one by one (a `memcpy` call would cost more than the copy).
    let (out, from) = (out.into_remainder(), from.remainder());
    for i in 0..3 {
        if let (Some(o), Some(f)) = (out.get_mut(i), from.get(i)) {
            *o = *f;
        }
    }
}

/// Formats `v` in decimal into the end of `buf`, returning the digits.
///
/// No 64-bit division, which a 32-bit MCU does in software (and which links a kilobyte of
/// it): values that fit a `u32` (almost all property values, offsets and counters) are
/// written with 32-bit arithmetic, and a larger one first loses four digits at a time through
/// [`div_10k`].
pub(crate) fn fmt_u64(v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut put = |mut w: u32, min_digits: usize, i: &mut usize| {
        let stop = i.saturating_sub(min_digits);
        loop {
            *i -= 1;
            if let Some(d) = buf.get_mut(*i) {
                *d = b'0' + (w % 10) as u8;
            }
            w /= 10;
            if (w == 0 && *i <= stop) || *i == 0 {
                break;
            }
        }
    };
    match u32::try_from(v) {
        Ok(w) => put(w, 1, &mut i),
        Err(_) => {
            // Four digits at a time off the bottom until the rest fits a `u32`: at most three
            // rounds.
            let mut rest = v;
            while rest > u64::from(u32::MAX) {
                let (q, r) = div_10k(rest);
                put(r, 4, &mut i);
                rest = q;
            }
            put(rest as u32, 1, &mut i);
        }
    }
    buf.get(i..).unwrap_or_default()
}

/// `(v / 10_000, v % 10_000)` with 32-bit divisions only: the high word, then the low word in
/// two 16-bit halves (each partial remainder is below 10,000, so `remainder · 2^16 + half`
/// fits a `u32`). Never inlined: values past `u32` are rare, and the callers stay small.
#[inline(never)]
fn div_10k(v: u64) -> (u64, u32) {
    const D: u32 = 10_000;
    let (hi, lo) = ((v >> 32) as u32, v as u32);
    let (q_hi, r) = (hi / D, hi % D);
    let mid = (r << 16) | (lo >> 16);
    let (q_mid, r) = (mid / D, mid % D);
    let low = (r << 16) | (lo & 0xffff);
    let (q_low, r) = (low / D, low % D);
    (
        (u64::from(q_hi) << 32) | u64::from((q_mid << 16) | q_low),
        r,
    )
}

/// A type that can be written as a JSON value (a property value, an array element).
///
/// Implemented for strings, booleans, every integer type, finite floats, `Option<T>` (`None` is
/// `null`), [`Null`], slices and arrays of values, and references to any of these. Implement it
/// for your own types by calling one method of the [`ValueWriter`].
pub trait Value {
    /// Writes `self` through `w`.
    ///
    /// # Errors
    /// Whatever the writer reports (a non-finite float, an invalid nested key).
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError>;
}

/// JSON `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Null;

/// Writes exactly one JSON value.
#[derive(Debug)]
pub struct ValueWriter<'s, 'b> {
    sink: &'s mut Sink<'b>,
}

impl<'s, 'b> ValueWriter<'s, 'b> {
    /// The sink, to write one value through another writer (the `serde` bridge).
    #[cfg(feature = "serde")]
    pub(crate) fn into_sink(self) -> &'s mut Sink<'b> {
        self.sink
    }

    /// A writer for one value into `sink`.
    pub fn new(sink: &'s mut Sink<'b>) -> Self {
        Self { sink }
    }

    /// A string.
    pub fn str(self, s: &str) -> Result<(), PropertyError> {
        self.sink.string(s);
        Ok(())
    }
    /// A boolean.
    pub fn bool(self, v: bool) -> Result<(), PropertyError> {
        self.sink.raw(if v { b"true" } else { b"false" });
        Ok(())
    }
    /// `null`.
    pub fn null(self) -> Result<(), PropertyError> {
        self.sink.raw(b"null");
        Ok(())
    }
    /// An unsigned integer.
    pub fn u64(self, v: u64) -> Result<(), PropertyError> {
        self.sink.u64(v);
        Ok(())
    }
    /// A signed integer.
    pub fn i64(self, v: i64) -> Result<(), PropertyError> {
        self.sink.i64(v);
        Ok(())
    }
    /// A finite `f64`.
    ///
    /// # Errors
    /// [`PropertyError::NonFiniteNumber`] for NaN and infinities.
    pub fn f64(self, v: f64) -> Result<(), PropertyError> {
        self.sink.f64(v)
    }
    /// A finite `f32`.
    ///
    /// # Errors
    /// [`PropertyError::NonFiniteNumber`] for NaN and infinities.
    pub fn f32(self, v: f32) -> Result<(), PropertyError> {
        self.sink.f32(v)
    }
    /// Raw JSON text, which the caller has validated as one complete JSON value.
    pub(crate) fn raw_json(self, json: &str) -> Result<(), PropertyError> {
        self.sink.raw(json.as_bytes());
        Ok(())
    }

    /// A nested object, filled by `f`.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn object<F>(self, f: F) -> Result<(), PropertyError>
    where
        F: FnOnce(&mut Object<'_, 'b>) -> Result<(), PropertyError>,
    {
        let mut o = Object::open(self.sink, &[]);
        f(&mut o)?;
        o.close();
        Ok(())
    }
    /// A nested array, filled by `f`.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn array<F>(self, f: F) -> Result<(), PropertyError>
    where
        F: FnOnce(&mut Array<'_, 'b>) -> Result<(), PropertyError>,
    {
        let mut a = Array::open(self.sink);
        f(&mut a)?;
        a.close();
        Ok(())
    }
}

/// A JSON object being written: call [`prop`](Self::prop) (and friends) once per key.
#[derive(Debug)]
pub struct Object<'s, 'b> {
    sink: &'s mut Sink<'b>,
    first: bool,
    /// Keys owned by the SDK at this level: the caller's values for them are dropped, so the
    /// SDK's value (written later) is the only one on the wire.
    reserved: &'s [&'s str],
    /// Every reserved key starts with `$`, so a key that does not is never looked up.
    reserved_dollar: bool,
}

/// Whether every key in `reserved` starts with `$`.
fn all_dollar(reserved: &[&str]) -> bool {
    reserved.iter().all(|k| k.starts_with('$'))
}

impl<'s, 'b> Object<'s, 'b> {
    /// Writes `{` and returns the open object. Finish with [`close`](Self::close).
    pub fn open(sink: &'s mut Sink<'b>, reserved: &'s [&'s str]) -> Self {
        sink.byte(b'{');
        Self {
            sink,
            first: true,
            reserved,
            reserved_dollar: all_dollar(reserved),
        }
    }

    /// Continues an object whose `{` (and maybe some members) the caller already wrote;
    /// `first` says whether no member has been written yet.
    pub(crate) fn resume(sink: &'s mut Sink<'b>, first: bool, reserved: &'s [&'s str]) -> Self {
        Self {
            sink,
            first,
            reserved,
            reserved_dollar: all_dollar(reserved),
        }
    }

    /// Whether no member has been written yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.first
    }

    /// Writes `}`.
    pub fn close(self) {
        self.sink.byte(b'}');
    }

    /// Writes the key and its colon, then lets `f` write the value. A key the SDK owns at this
    /// level has its value discarded.
    fn member<F>(&mut self, key: &str, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(ValueWriter<'_, 'b>) -> Result<(), PropertyError>,
    {
        self.member_parts(&[key], f)
    }

    /// [`member`](Self::member) with a key given as the concatenation of `parts`.
    fn member_parts<F>(&mut self, parts: &[&str], f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(ValueWriter<'_, 'b>) -> Result<(), PropertyError>,
    {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            return Err(PropertyError::EmptyKey);
        }
        if len > self.sink.max_key_len {
            return Err(PropertyError::KeyTooLong {
                len,
                max: self.sink.max_key_len,
            });
        }
        let muted = match parts {
            [key] if self.reserved_dollar && !key.starts_with('$') => false,
            [key] => self.reserved.contains(key),
            _ => false,
        };
        let was = self.sink.muted;
        self.sink.muted |= muted;
        // `,"key":` as two constant pieces around the escaped key.
        if self.first {
            self.sink.raw(b"\"");
        } else {
            self.sink.raw(b",\"");
        }
        for part in parts {
            self.sink.escaped(part);
        }
        self.sink.raw(b"\":");
        let r = f(ValueWriter::new(self.sink));
        self.sink.muted = was;
        r?;
        if !muted {
            self.first = false;
        }
        Ok(self)
    }

    /// Writes `"key": value`.
    ///
    /// # Errors
    /// An empty or over-long key, or a value error (non-finite float). On error the object may
    /// hold a partial member: the capture path discards the whole record.
    pub fn prop<V: Value>(&mut self, key: &str, value: V) -> Result<&mut Self, PropertyError> {
        self.member(key, |w| value.write_json(w))
    }

    /// Writes `"key": value` and returns the object for the next property, without a `?` on
    /// every line: the first error (an empty or over-long key, a non-finite float) is latched,
    /// later writes are skipped, and the event fails with that error when the closure ends
    /// (whatever it returns). End the closure with [`done`](Self::done) or `Ok(())`.
    ///
    /// ```
    /// # use posthog_embedded::json::write::{Object, Sink};
    /// # let mut buf = [0u8; 64];
    /// # let mut sink = Sink::new(&mut buf, 200);
    /// # let mut p = Object::open(&mut sink, &[]);
    /// p.set("door", "front").set("battery", 87u32).set("temp", 21.5f32);
    /// assert!(p.done().is_ok());
    /// p.set("bad", f64::NAN).set("after", 1u8);
    /// assert!(p.done().is_err());
    /// ```
    pub fn set<V: Value>(&mut self, key: &str, value: V) -> &mut Self {
        if self.sink.latched.is_none() {
            let r = self.prop(key, value).map(drop);
            self.sink.latch(r);
        }
        self
    }

    /// The first error a [`set`](Self::set) met in this event, or `Ok(())`: the closure's
    /// natural last expression (`|p| p.set("a", 1).set("b", 2).done()`).
    ///
    /// # Errors
    /// The latched [`PropertyError`].
    pub fn done(&mut self) -> Result<(), PropertyError> {
        self.sink.latched.map_or(Ok(()), Err)
    }

    /// Writes a property whose key is the concatenation of `parts` (`["$feature/", key]`),
    /// without a buffer.
    ///
    /// # Errors
    /// As [`prop`](Self::prop).
    pub fn prop_parts<V: Value>(
        &mut self,
        parts: &[&str],
        value: V,
    ) -> Result<&mut Self, PropertyError> {
        self.member_parts(parts, |w| value.write_json(w))
    }

    /// Writes `"key": null`.
    ///
    /// # Errors
    /// An empty or over-long key.
    pub fn null(&mut self, key: &str) -> Result<&mut Self, PropertyError> {
        self.member(key, |w| w.null())
    }

    /// Writes `"key": {…}`, the members written by `f`.
    ///
    /// # Errors
    /// An invalid key, or the first error `f` returns.
    pub fn object<F>(&mut self, key: &str, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Object<'_, 'b>) -> Result<(), PropertyError>,
    {
        self.member(key, |w| w.object(f))
    }

    /// Writes `"key": […]`, the elements written by `f`.
    ///
    /// # Errors
    /// An invalid key, or the first error `f` returns.
    pub fn array<F>(&mut self, key: &str, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Array<'_, 'b>) -> Result<(), PropertyError>,
    {
        self.member(key, |w| w.array(f))
    }
}

/// A JSON array being written.
#[derive(Debug)]
pub struct Array<'s, 'b> {
    sink: &'s mut Sink<'b>,
    first: bool,
}

impl<'s, 'b> Array<'s, 'b> {
    /// Writes `[` and returns the open array. Finish with [`close`](Self::close).
    pub fn open(sink: &'s mut Sink<'b>) -> Self {
        sink.byte(b'[');
        Self { sink, first: true }
    }

    /// Writes `]`.
    pub fn close(self) {
        self.sink.byte(b']');
    }

    fn element<F>(&mut self, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(ValueWriter<'_, 'b>) -> Result<(), PropertyError>,
    {
        if !self.first {
            self.sink.byte(b',');
        }
        self.first = false;
        f(ValueWriter::new(self.sink))?;
        Ok(self)
    }

    /// Appends one value.
    ///
    /// # Errors
    /// A value error (non-finite float).
    pub fn push<V: Value>(&mut self, value: V) -> Result<&mut Self, PropertyError> {
        self.element(|w| value.write_json(w))
    }

    /// Appends one value, latching the first error as [`Object::set`] does.
    pub fn add<V: Value>(&mut self, value: V) -> &mut Self {
        if self.sink.latched.is_none() {
            let r = self.push(value).map(drop);
            self.sink.latch(r);
        }
        self
    }

    /// Appends an object written by `f`.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn object<F>(&mut self, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Object<'_, 'b>) -> Result<(), PropertyError>,
    {
        self.element(|w| w.object(f))
    }

    /// Appends an array written by `f`.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn array<F>(&mut self, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Array<'_, 'b>) -> Result<(), PropertyError>,
    {
        self.element(|w| w.array(f))
    }
}

/// Text that already is one JSON value, written as it is: a value kept from elsewhere (a
/// relayed event's property, a stored document). It is checked (one complete value, nothing
/// after it but whitespace, nesting within the reader's default depth) before anything is
/// written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawJson<'a>(pub &'a str);

impl Value for RawJson<'_> {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        use super::read::{Reader, Token};
        let text = self.0;
        let mut r = Reader::of_str(text);
        let mut depth = 0usize;
        let mut values = 0usize;
        loop {
            match r.next() {
                Ok(Some(Token::ObjectStart | Token::ArrayStart)) => {
                    if depth == 0 {
                        values += 1;
                    }
                    depth += 1;
                }
                Ok(Some(Token::ObjectEnd | Token::ArrayEnd)) => depth = depth.saturating_sub(1),
                Ok(Some(Token::Key(_))) => {}
                Ok(Some(_)) => {
                    if depth == 0 {
                        values += 1;
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(PropertyError::InvalidJson { offset: e.offset }),
            }
            if values > 1 {
                return Err(PropertyError::InvalidJson { offset: r.offset() });
            }
        }
        if values != 1 {
            return Err(PropertyError::InvalidJson { offset: text.len() });
        }
        // Around a valid JSON value there is only JSON whitespace, which is ASCII.
        w.raw_json(text.trim_ascii())
    }
}

impl Value for str {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.str(self)
    }
}
impl Value for bool {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.bool(*self)
    }
}
impl Value for Null {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.null()
    }
}
impl Value for f64 {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.f64(*self)
    }
}
impl Value for f32 {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.f32(*self)
    }
}
macro_rules! impl_value_uint {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
                w.u64(*self as u64)
            }
        }
    )*};
}
macro_rules! impl_value_int {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
                w.i64(*self as i64)
            }
        }
    )*};
}
impl_value_uint!(u8, u16, u32, u64, usize);
impl_value_int!(i8, i16, i32, i64, isize);

impl<T: Value + ?Sized> Value for &T {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        (**self).write_json(w)
    }
}
impl<T: Value> Value for Option<T> {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        match self {
            Some(v) => v.write_json(w),
            None => w.null(),
        }
    }
}
impl<T: Value> Value for [T] {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.array(|a| {
            for v in self {
                a.push(v)?;
            }
            Ok(())
        })
    }
}
impl<T: Value, const N: usize> Value for [T; N] {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        self.as_slice().write_json(w)
    }
}
impl<const N: usize> Value for heapless::String<N> {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.str(self.as_str())
    }
}
#[cfg(feature = "std")]
impl Value for std::string::String {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        w.str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::ToOwned;
    use std::string::String;

    /// The reference: the bytes JSON requires escaping in a string.
    fn needs_escape(b: u8) -> bool {
        matches!(b, 0x00..=0x1f | b'"' | b'\\')
    }

    #[test]
    fn the_byte_test_is_the_reference() {
        for b in 0..=255u8 {
            assert_eq!(crate::json::is_special(b), needs_escape(b), "{b:#04x}");
        }
    }

    #[test]
    fn the_word_test_finds_every_byte_to_escape() {
        // Every byte value in every position among clean neighbours, and every combination
        // of four bytes from the values around each threshold.
        let edges: [u8; 20] = [
            0x00, 0x01, 0x0a, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x2f, 0x41, 0x5b, 0x5c, 0x5d, 0x7e,
            0x7f, 0x80, 0xa2, 0xdc, 0xfe, 0xff,
        ];
        let mut words = std::vec::Vec::new();
        for b in 0..=255u8 {
            for p in 0..4 {
                for fill in [b'a', 0x80, 0xff, 0x21, 0x5d] {
                    let mut w = [fill; 4];
                    w[p] = b;
                    words.push(w);
                }
            }
        }
        for a in edges {
            for b in edges {
                for c in edges {
                    for d in edges {
                        words.push([a, b, c, d]);
                    }
                }
            }
        }
        for w in words {
            let any = w.iter().any(|&b| needs_escape(b));
            // Exact both ways on these inputs (a false alarm would only cost the byte loop).
            assert_eq!(
                crate::json::may_need_escape(u32::from_le_bytes(w)),
                any,
                "{w:02x?}"
            );
        }
    }

    #[test]
    fn fixed_windows_write_in_place_or_only_count() {
        for cap in 0..8 {
            let mut buf = std::vec![0u8; cap];
            let mut sink = Sink::new(&mut buf, 200);
            sink.raw(b"ab");
            sink.fixed::<4>(|w| w.copy_from_slice(b"wxyz"));
            sink.byte(b'!');
            assert_eq!(sink.needed(), 7, "cap {cap}");
            match sink.written() {
                Some(w) => assert_eq!(w, b"abwxyz!"),
                None => assert!(cap < 7),
            }
        }
    }

    #[test]
    fn word_copies_copy_every_length() {
        let src: std::vec::Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..=src.len() {
            for offset in 0..4 {
                let mut dst = std::vec![0xAAu8; len + offset];
                copy_words(&mut dst[offset..], &src[..len]);
                assert_eq!(&dst[offset..], &src[..len], "len {len} offset {offset}");
                assert!(dst[..offset].iter().all(|&b| b == 0xAA));
            }
        }
    }

    #[test]
    fn escaping_matches_serde_json_at_every_buffer_size() {
        let samples = [
            "",
            "a",
            "bme280",
            "sensor reading with a longer name",
            "tab\there",
            "quote\" and \\ backslash",
            "\u{1}\u{1f} controls \u{7f}",
            "ünïcödé 温度 🌡️ ok",
            "abc\"",
            "abcd\n",
            "abcdefgh\\ijkl",
        ];
        for text in samples {
            let reference = serde_json::to_string(text).unwrap();
            for cap in 0..reference.len() + 3 {
                let mut buf = std::vec![0u8; cap];
                let mut sink = Sink::new(&mut buf, 200);
                sink.string(text);
                assert_eq!(sink.needed(), reference.len(), "{text:?} cap {cap}");
                match sink.written() {
                    Some(w) => assert_eq!(w, reference.as_bytes(), "{text:?} cap {cap}"),
                    None => assert!(cap < reference.len()),
                }
            }
        }
    }

    fn render(
        cap: usize,
        f: impl FnOnce(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    ) -> (String, usize, bool) {
        let mut buf = std::vec![0u8; cap];
        let mut sink = Sink::new(&mut buf, 200);
        let mut o = Object::open(&mut sink, &["$lib"]);
        f(&mut o).unwrap();
        o.close();
        let needed = sink.needed();
        let fits = sink.fits();
        let s = sink
            .written()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .unwrap_or_default();
        (s, needed, fits)
    }

    #[test]
    fn writes_every_value_kind() {
        let (s, n, fits) = render(512, |o| {
            o.prop("s", "a\"b\\c\n\u{1}\u{7f}é😀")?
                .prop("t", true)?
                .prop("i", -42i32)?
                .prop("u", u64::MAX)?
                .prop("min", i64::MIN)?
                .prop("f", 29.5f64)?
                .prop("one", 1.0f64)?
                .prop("small", 0.1f32)?
                .prop("big", 1e300)?
                .prop("none", None::<u8>)?
                .null("n")?
                .prop("list", [1u8, 2, 3])?
                .object("o", |o| {
                    o.prop("k", "v")?;
                    Ok(())
                })?
                .array("a", |a| {
                    a.push("x")?.object(|o| {
                        o.prop("q", 1u8)?;
                        Ok(())
                    })?;
                    a.array(|_| Ok(()))?;
                    Ok(())
                })?;
            Ok(())
        });
        assert!(fits);
        assert_eq!(n, s.len());
        assert_eq!(
            s,
            "{\"s\":\"a\\\"b\\\\c\\n\\u0001\u{7f}é😀\",".to_owned()
                + r#""t":true,"i":-42,"u":18446744073709551615,"min":-9223372036854775808,"f":29.5,"one":1.0,"small":0.1,"big":1e300,"none":null,"n":null,"list":[1,2,3],"o":{"k":"v"},"a":["x",{"q":1},[]]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["s"], "a\"b\\c\n\u{1}\u{7f}é😀");
    }

    #[test]
    fn every_control_character_round_trips() {
        let all: String = (0u32..0x80).filter_map(char::from_u32).collect();
        let (s, _, _) = render(2048, |o| {
            o.prop(&all, all.as_str())?;
            Ok(())
        });
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v[&all], all.as_str());
    }

    #[test]
    fn counts_past_the_end() {
        let (_, needed, fits) = render(8, |o| {
            o.prop("key", "a long value that does not fit")?;
            Ok(())
        });
        assert!(!fits);
        assert_eq!(needed, r#"{"key":"a long value that does not fit"}"#.len());
    }

    #[test]
    fn rejects_bad_keys_and_numbers() {
        let mut buf = [0u8; 64];
        let mut sink = Sink::new(&mut buf, 4);
        let mut o = Object::open(&mut sink, &[]);
        assert_eq!(o.prop("", 1u8).err(), Some(PropertyError::EmptyKey));
        assert_eq!(
            o.prop("abcde", 1u8).err(),
            Some(PropertyError::KeyTooLong { len: 5, max: 4 })
        );
        assert_eq!(
            o.prop("k", f64::NAN).err(),
            Some(PropertyError::NonFiniteNumber)
        );
        assert_eq!(
            o.prop("k", f32::INFINITY).err(),
            Some(PropertyError::NonFiniteNumber)
        );
        assert_eq!(
            o.prop("k", f64::NEG_INFINITY).err(),
            Some(PropertyError::NonFiniteNumber)
        );
    }

    #[test]
    fn reserved_keys_are_dropped_with_their_values() {
        let (s, n, _) = render(256, |o| {
            o.prop("a", 1u8)?
                .prop("$lib", "spoof")?
                .object("$lib", |o| {
                    o.prop("x", 1u8)?;
                    Ok(())
                })?
                .prop("b", 2u8)?;
            Ok(())
        });
        assert_eq!(s, r#"{"a":1,"b":2}"#);
        assert_eq!(n, s.len());
        let (s, _, _) = render(256, |o| {
            o.prop("$lib", "spoof")?.prop("b", 2u8)?;
            Ok(())
        });
        assert_eq!(s, r#"{"b":2}"#);
    }

    #[test]
    fn integers_format_exactly() {
        let mut values = std::vec![0u64, 1, 9, 10, 99, 100, 12345, u64::MAX, u64::MAX - 1];
        // Every power of ten and its neighbours, the u32 edge and the 10^9 split points.
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1]);
            p = next;
        }
        values.extend([p - 1, p, p + 1]);
        for e in [u64::from(u32::MAX), 1_000_000_000 * u64::from(u32::MAX)] {
            values.extend([e - 1, e, e + 1]);
        }
        values.extend([
            4_000_000_000_000_000_007,
            1_000_000_000_000_000_000 + 1,
            5_000_000_001,
        ]);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.extend([x, x >> (x % 64)]);
        }
        for v in values {
            let mut b = [0u8; 20];
            assert_eq!(fmt_u64(v, &mut b), std::format!("{v}").as_bytes(), "{v}");
        }
    }

    #[test]
    fn strings_escape_exactly_in_every_position() {
        // Each escapable byte at the start, middle and end, alone and in runs, against
        // serde_json's own escaping (the same rules: short forms, else \u00XX in lower case).
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}', 'é',
        ];
        for c in specials {
            for s in [
                std::format!("{c}"),
                std::format!("{c}ab"),
                std::format!("ab{c}"),
                std::format!("a{c}b{c}{c}c"),
                std::format!("{c}{c}"),
            ] {
                let mut buf = [0u8; 64];
                let mut sink = Sink::new(&mut buf, 200);
                sink.string(&s);
                let n = sink.needed();
                assert_eq!(
                    &buf[..n],
                    serde_json::to_string(&s).unwrap().as_bytes(),
                    "{s:?}"
                );
            }
        }
    }
}
