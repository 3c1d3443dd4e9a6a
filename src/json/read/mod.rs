//! A bounded pull tokenizer for JSON (RFC 8259) over a byte slice.
//!
//! [`Reader`] hands out one [`Token`] per call to [`Reader::next`] and never allocates:
//! strings and numbers are borrowed from the input, raw (escapes intact), and decoded on demand
//! ([`Str::chars`], [`Str::eq_str`], [`Str::decode_into`]). It is built to run on untrusted
//! input (flag definitions, `/flags` responses) on a microcontroller:
//!
//! - **Strict.** The full grammar is enforced: commas, colons, keys only in objects, no trailing
//!   commas, exact literals and number syntax (no leading zeros, no `+1`, `.5` or `1.`),
//!   whitespace limited to space, tab, CR and LF, no raw control characters in strings, UTF-8
//!   validated inside strings, escapes validated as they are scanned (a lone or mismatched UTF-16
//!   surrogate is an error, as in `serde_json`), and nothing but whitespace after the single
//!   top-level value. A UTF-8 byte-order mark at the start is **rejected** (as
//!   [`ReadErrorKind::ExpectedValue`] at offset 0), as RFC 8259 allows.
//! - **Bounded.** Nesting depth is capped ([`DEFAULT_MAX_DEPTH`], at most [`MAX_DEPTH`]); the
//!   open containers live in one `u128` bitset. There is no recursion anywhere.
//! - **Terminating.** Every call to [`Reader::next`] either consumes at least one byte or
//!   returns `Ok(None)` / an error, so any loop over it ends after at most `input.len() + 1`
//!   tokens. Errors are sticky: once `next` fails it returns the same error forever.
//!
//! Because escapes and UTF-8 are checked while scanning, decoding a [`Str`] later cannot fail
//! (except for a too-small buffer in [`Str::decode_into`]).
//!
//! ```
//! use posthog_embedded::json::read::{Reader, Token};
//!
//! let mut r = Reader::new(br#"{"key": "beta", "rollout": 50, "extra": [1, {"x": null}]}"#);
//! let mut rollout = None;
//! assert_eq!(r.next()?, Some(Token::ObjectStart));
//! while let Some(tok) = r.next()? {
//!     match tok {
//!         Token::Key(k) if k.eq_str("rollout") => {
//!             if let Some(Token::Number(n)) = r.next()? {
//!                 rollout = n.as_u64();
//!             }
//!         }
//!         Token::Key(_) => r.skip_value()?,
//!         Token::ObjectEnd => break,
//!         _ => unreachable!("an object holds only keys and values"),
//!     }
//! }
//! assert_eq!(r.next()?, None);
//! assert_eq!(rollout, Some(50));
//! # Ok::<(), posthog_embedded::json::read::ReadError>(())
//! ```

use core::fmt;

/// Nesting depth a [`Reader::new`] accepts: up to this many containers may be open at once.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// The largest nesting depth any [`Reader`] supports (the width of its container bitset).
pub const MAX_DEPTH: usize = 128;

/// What went wrong while reading JSON. See [`ReadError`] for where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The input ended inside a value (or was empty). The offset is the input length.
    UnexpectedEnd,
    /// A value was expected but this byte cannot start one (also a trailing comma in an array,
    /// `[1,]`, a missing value, `{"a":}`, or a byte-order mark at the start).
    ExpectedValue,
    /// An object key (a string) was expected (also a trailing comma in an object, `{"a":1,}`).
    ExpectedKey,
    /// A `:` was expected after an object key.
    ExpectedColon,
    /// A `,` or the container's closing bracket was expected after a value.
    ExpectedComma,
    /// `true`, `false` or `null` was misspelled. The offset is the first wrong byte.
    InvalidLiteral,
    /// A number breaks the JSON number grammar (leading zero, no digit after `-`, `.`, or `e`).
    /// The offset is the offending byte.
    InvalidNumber,
    /// A string holds an unknown escape (`\x`) or a `\u` without four hex digits. The offset is
    /// the escape's backslash.
    InvalidEscape,
    /// A `\u` escape encodes half of a UTF-16 surrogate pair without its other half (a lone
    /// `\ud800`, a `\udc00` first, or a high surrogate followed by anything but a low one). The
    /// offset is the backslash of the first escape of the (attempted) pair.
    LoneSurrogate,
    /// A string holds a raw control character (below U+0020); it must be escaped. The offset is
    /// that byte.
    ControlCharacter,
    /// A string is not valid UTF-8. The offset is the first byte of the invalid sequence.
    InvalidUtf8,
    /// Containers are nested deeper than the reader allows. The offset is the opening bracket
    /// that went too deep.
    TooDeep {
        /// The reader's depth limit.
        max: usize,
    },
    /// Something other than whitespace follows the top-level value. The offset is that byte.
    TrailingData,
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnexpectedEnd => f.write_str("unexpected end of JSON input"),
            Self::ExpectedValue => f.write_str("expected a JSON value"),
            Self::ExpectedKey => f.write_str("expected a string key"),
            Self::ExpectedColon => f.write_str("expected `:` after key"),
            Self::ExpectedComma => f.write_str("expected `,` or a closing bracket"),
            Self::InvalidLiteral => f.write_str("invalid literal (expected true, false or null)"),
            Self::InvalidNumber => f.write_str("invalid number"),
            Self::InvalidEscape => f.write_str("invalid escape in string"),
            Self::LoneSurrogate => f.write_str("unpaired UTF-16 surrogate in \\u escape"),
            Self::ControlCharacter => f.write_str("unescaped control character in string"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8 in string"),
            Self::TooDeep { max } => write!(f, "JSON nested deeper than {max} levels"),
            Self::TrailingData => f.write_str("trailing data after the JSON value"),
        }
    }
}

impl core::error::Error for ReadErrorKind {}

/// JSON input was rejected: what went wrong and at which byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadError {
    /// What went wrong.
    pub kind: ReadErrorKind,
    /// Byte offset into the input where it went wrong.
    pub offset: usize,
}

impl ReadError {
    const fn new(kind: ReadErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl core::error::Error for ReadError {}

/// [`Str::decode_into`] was given a buffer too small for the decoded string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct BufferTooSmall {
    /// Bytes the decoded string needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "decoded string needs {} bytes, buffer has {}",
            self.needed, self.available
        )
    }
}

impl core::error::Error for BufferTooSmall {}

mod token;
mod walk;

pub use token::{Chars, Number, Str, Token};
pub(crate) use walk::{raw_value, value_text, Elements, Members};

/// Where the reader is in the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A value is expected: at the start, or after a `,` in an array.
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// Just after a key: `:` then a value.
    Colon,
    /// Just after a complete value: `,` or the closing bracket, or the end at depth 0.
    AfterValue,
    /// A previous call failed; it is returned again.
    Failed(ReadError),
}

/// Whether `b` is JSON whitespace: a space, or tab, line feed or carriage return (bits of a
/// set over the byte values below the space).
#[inline(always)]
const fn is_ws(b: u8) -> bool {
    const BELOW_SPACE: u32 = 1 << b'\t' | 1 << b'\n' | 1 << b'\r';
    b == b' ' || (b < b' ' && (BELOW_SPACE >> b) & 1 == 1)
}

/// What [`Reader::advance`] read: a token's kind, without its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ObjectStart,
    ObjectEnd,
    ArrayStart,
    ArrayEnd,
    Key,
    Str,
    Number,
    True,
    False,
    Null,
    /// The document is complete.
    End,
    /// The input is not valid JSON; [`Reader::error`] says why.
    Failed,
}

/// A pull tokenizer over one JSON document; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    /// `input` as text when it is all valid UTF-8 (checked once, up front), so strings and
    /// numbers are sliced from it without being validated again.
    text: Option<&'a str>,
    /// The text of the last key, string (between the quotes) or number token.
    raw: &'a str,
    /// For that token: whether a string has escapes, or whether a number is an integer.
    flag: bool,
    pos: usize,
    state: State,
    /// Open containers: bit `i` is set if the container at depth `i` is an object.
    stack: u128,
    depth: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `input` that allows [`DEFAULT_MAX_DEPTH`] levels of nesting.
    #[must_use]
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_max_depth(input, DEFAULT_MAX_DEPTH)
    }

    /// A reader over text, which is UTF-8 already, so nothing is validated twice; otherwise
    /// the same as [`new`](Self::new).
    #[must_use]
    pub fn of_str(input: &'a str) -> Self {
        let mut r = Self::new(&[]);
        r.input = input.as_bytes();
        r.text = Some(input);
        r
    }

    /// A reader over `input` that allows `max_depth` open containers at once (clamped to
    /// [`MAX_DEPTH`]; `0` accepts only a scalar top-level value).
    #[must_use]
    pub fn with_max_depth(input: &'a [u8], max_depth: usize) -> Self {
        Self {
            input,
            text: core::str::from_utf8(input).ok(),
            raw: "",
            flag: false,
            pos: 0,
            state: State::Value,
            stack: 0,
            depth: 0,
            max_depth: max_depth.min(MAX_DEPTH),
        }
    }

    /// Byte offset of the next unread byte.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// How many containers are open (0 at the top level).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The nesting limit this reader enforces.
    #[must_use]
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The next token, or `Ok(None)` once the top-level value is complete and only whitespace
    /// follows it (and on every call after that).
    ///
    /// Each `Ok(Some(_))` consumes at least one byte.
    ///
    /// # Errors
    /// The first violation of the JSON grammar, UTF-8 or the depth limit, with its offset. The
    /// error is sticky: every later call returns it again.
    #[allow(clippy::should_implement_trait)] // Fallible and fused; `Result<Option<_>>` suits `?`.
    pub fn next(&mut self) -> Result<Option<Token<'a>>, ReadError> {
        let k = self.advance();
        self.token(k)
    }

    /// The token [`advance`](Self::advance) just returned as `k`, as [`next`](Self::next)
    /// returns it.
    fn token(&self, k: Kind) -> Result<Option<Token<'a>>, ReadError> {
        Ok(Some(match k {
            Kind::ObjectStart => Token::ObjectStart,
            Kind::ObjectEnd => Token::ObjectEnd,
            Kind::ArrayStart => Token::ArrayStart,
            Kind::ArrayEnd => Token::ArrayEnd,
            Kind::Key => Token::Key(self.str()),
            Kind::Str => Token::Str(self.str()),
            Kind::Number => Token::Number(self.number()),
            Kind::True => Token::Bool(true),
            Kind::False => Token::Bool(false),
            Kind::Null => Token::Null,
            Kind::End => return Ok(None),
            Kind::Failed => return Err(self.error()),
        }))
    }

    /// Reads the next token and returns only its kind, which fits in a register; a key's or
    /// string's text is then [`str`](Self::str), a number's [`number`](Self::number), and after [`Kind::Failed`],
    /// [`error`](Self::error) says why. The same grammar and errors as [`next`](Self::next).
    pub(crate) fn advance(&mut self) -> Kind {
        self.step()
    }

    /// The last key or string token.
    pub(crate) fn str(&self) -> Str<'a> {
        Str {
            raw: self.raw,
            escaped: self.flag,
        }
    }

    /// The last number token.
    pub(crate) fn number(&self) -> Number<'a> {
        Number {
            raw: self.raw,
            integer: self.flag,
        }
    }

    /// The error that stopped the reader (only meaningful after [`Kind::Failed`]).
    pub(crate) fn error(&self) -> ReadError {
        match self.state {
            State::Failed(e) => e,
            _ => ReadError::new(ReadErrorKind::ExpectedValue, self.pos),
        }
    }

    /// Records `kind` at `offset` as the reader's (sticky) error.
    #[cold]
    fn fail(&mut self, kind: ReadErrorKind, offset: usize) -> Kind {
        self.state = State::Failed(ReadError::new(kind, offset));
        Kind::Failed
    }

    fn fail_with(&mut self, e: ReadError) -> Kind {
        self.state = State::Failed(e);
        Kind::Failed
    }

    /// Skips the next value, validating it, including everything inside it if it is a
    /// container. Call it after a [`Token::Key`], at the start, or where an array element may
    /// follow.
    ///
    /// # Errors
    /// Whatever [`next`](Self::next) reports while skipping. If no value can follow here (the
    /// next token would be a key, a closing bracket or the end of the document), returns
    /// [`ReadErrorKind::ExpectedValue`] at the next non-whitespace byte, consumes nothing, and
    /// leaves the reader usable.
    pub fn skip_value(&mut self) -> Result<(), ReadError> {
        if !self.at_value()? {
            let offset = self
                .peek_from(self.pos)
                .map_or(self.input.len(), |(i, _)| i);
            return Err(ReadError::new(ReadErrorKind::ExpectedValue, offset));
        }
        let depth = self.depth;
        match self.advance() {
            Kind::Failed => Err(self.error()),
            Kind::ObjectStart | Kind::ArrayStart => self.skip_until(depth),
            _ => Ok(()),
        }
    }

    /// Skips the rest of the innermost open container, validating it, up to and including its
    /// closing bracket. Does nothing at depth 0.
    ///
    /// # Errors
    /// Whatever [`next`](Self::next) reports while skipping.
    pub fn skip_container(&mut self) -> Result<(), ReadError> {
        match self.depth.checked_sub(1) {
            Some(d) => self.skip_until(d),
            None => Ok(()),
        }
    }

    fn skip_until(&mut self, depth: usize) -> Result<(), ReadError> {
        while self.depth > depth {
            match self.advance() {
                Kind::Failed => return Err(self.error()),
                Kind::End => break,
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the next token starts a value (errors already seen are returned).
    fn at_value(&self) -> Result<bool, ReadError> {
        let next = self.peek_from(self.pos).map(|(_, b)| b);
        Ok(match self.state {
            State::Failed(e) => return Err(e),
            State::Value | State::Colon => true,
            State::ObjectFirst => false,
            State::ArrayFirst => next != Some(b']'),
            State::AfterValue => self.top() == Some(false) && next != Some(b']'),
        })
    }

    /// The first non-whitespace byte at or after `i`, with its offset.
    fn peek_from(&self, i: usize) -> Option<(usize, u8)> {
        self.input
            .get(i..)?
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .and_then(|n| Some((i + n, *self.input.get(i + n)?)))
    }

    fn end(&mut self) -> Kind {
        self.fail(ReadErrorKind::UnexpectedEnd, self.input.len())
    }

    fn skip_ws(&mut self) {
        // Tokens mostly follow at once, or after a newline and indentation: one test per byte,
        // with a single comparison for the bytes that end the run.
        while let Some(&b) = self.input.get(self.pos) {
            if !is_ws(b) {
                break;
            }
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// `Some(true)` if the innermost open container is an object, `Some(false)` if an array.
    fn top(&self) -> Option<bool> {
        let i = u32::try_from(self.depth.checked_sub(1)?).ok()?;
        Some(self.stack.checked_shr(i)? & 1 == 1)
    }

    fn step(&mut self) -> Kind {
        match self.state {
            State::Failed(_) => Kind::Failed,
            State::Value => {
                self.skip_ws();
                self.value()
            }
            State::ArrayFirst => {
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.close(Kind::ArrayEnd)
                } else {
                    self.value()
                }
            }
            State::ObjectFirst => {
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.close(Kind::ObjectEnd)
                } else {
                    self.key()
                }
            }
            State::Colon => {
                self.skip_ws();
                match self.peek() {
                    Some(b':') => {
                        self.pos += 1;
                        self.skip_ws();
                        self.value()
                    }
                    Some(_) => self.fail(ReadErrorKind::ExpectedColon, self.pos),
                    None => self.end(),
                }
            }
            State::AfterValue => {
                self.skip_ws();
                let Some(is_object) = self.top() else {
                    return match self.peek() {
                        None => Kind::End,
                        Some(_) => self.fail(ReadErrorKind::TrailingData, self.pos),
                    };
                };
                match (self.peek(), is_object) {
                    (Some(b','), _) => {
                        self.pos += 1;
                        self.skip_ws();
                        if is_object {
                            self.key()
                        } else {
                            self.value()
                        }
                    }
                    (Some(b']'), false) => self.close(Kind::ArrayEnd),
                    (Some(b'}'), true) => self.close(Kind::ObjectEnd),
                    (Some(_), _) => self.fail(ReadErrorKind::ExpectedComma, self.pos),
                    (None, _) => self.end(),
                }
            }
        }
    }

    /// Consumes the closing bracket at `pos` and pops its container.
    fn close(&mut self, kind: Kind) -> Kind {
        self.pos += 1;
        self.depth = self.depth.saturating_sub(1);
        self.state = State::AfterValue;
        kind
    }

    fn open(&mut self, is_object: bool) -> Kind {
        if self.depth >= self.max_depth {
            return self.fail(
                ReadErrorKind::TooDeep {
                    max: self.max_depth,
                },
                self.pos,
            );
        }
        let bit = u32::try_from(self.depth)
            .ok()
            .and_then(|d| 1u128.checked_shl(d))
            .unwrap_or(0);
        if is_object {
            self.stack |= bit;
        } else {
            self.stack &= !bit;
        }
        self.depth += 1;
        self.pos += 1;
        if is_object {
            self.state = State::ObjectFirst;
            Kind::ObjectStart
        } else {
            self.state = State::ArrayFirst;
            Kind::ArrayStart
        }
    }

    /// A value starting at `pos` (whitespace already skipped).
    fn value(&mut self) -> Kind {
        let r = match self.peek() {
            None => return self.end(),
            Some(b'{') => return self.open(true),
            Some(b'[') => return self.open(false),
            Some(b'"') => self.string().map(|()| Kind::Str),
            Some(b'-' | b'0'..=b'9') => self.scan_number().map(|()| Kind::Number),
            Some(b't') => self.literal(b"true").map(|()| Kind::True),
            Some(b'f') => self.literal(b"false").map(|()| Kind::False),
            Some(b'n') => self.literal(b"null").map(|()| Kind::Null),
            Some(_) => return self.fail(ReadErrorKind::ExpectedValue, self.pos),
        };
        match r {
            Ok(k) => {
                self.state = State::AfterValue;
                k
            }
            Err(e) => self.fail_with(e),
        }
    }

    /// A key starting at `pos` (whitespace already skipped).
    fn key(&mut self) -> Kind {
        match self.peek() {
            Some(b'"') => match self.string() {
                Ok(()) => {
                    self.state = State::Colon;
                    Kind::Key
                }
                Err(e) => self.fail_with(e),
            },
            Some(_) => self.fail(ReadErrorKind::ExpectedKey, self.pos),
            None => self.end(),
        }
    }

    fn end_error(&self) -> ReadError {
        ReadError::new(ReadErrorKind::UnexpectedEnd, self.input.len())
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), ReadError> {
        for (i, &want) in lit.iter().enumerate() {
            match self.input.get(self.pos + i) {
                Some(&b) if b == want => {}
                Some(_) => return Err(ReadError::new(ReadErrorKind::InvalidLiteral, self.pos + i)),
                None => return Err(self.end_error()),
            }
        }
        self.pos += lit.len();
        Ok(())
    }

    fn digits(&self, mut i: usize) -> usize {
        while let Some(b'0'..=b'9') = self.input.get(i) {
            i += 1;
        }
        i
    }

    /// At least one digit at `i`, then any more; returns the offset after them.
    fn some_digits(&self, i: usize) -> Result<usize, ReadError> {
        match self.input.get(i) {
            Some(b'0'..=b'9') => Ok(self.digits(i + 1)),
            Some(_) => Err(ReadError::new(ReadErrorKind::InvalidNumber, i)),
            None => Err(self.end_error()),
        }
    }

    /// A number starting at `pos`; leaves its text in `raw` and whether it is an integer
    /// literal in `flag`.
    fn scan_number(&mut self) -> Result<(), ReadError> {
        let start = self.pos;
        let mut i = start;
        if self.input.get(i) == Some(&b'-') {
            i += 1;
        }
        match self.input.get(i) {
            Some(b'0') => {
                i += 1;
                if let Some(b'0'..=b'9') = self.input.get(i) {
                    return Err(ReadError::new(ReadErrorKind::InvalidNumber, i));
                }
            }
            _ => i = self.some_digits(i)?,
        }
        let mut integer = true;
        if self.input.get(i) == Some(&b'.') {
            integer = false;
            i = self.some_digits(i + 1)?;
        }
        if let Some(b'e' | b'E') = self.input.get(i) {
            integer = false;
            i += 1;
            if let Some(b'+' | b'-') = self.input.get(i) {
                i += 1;
            }
            i = self.some_digits(i)?;
        }
        self.raw = self
            .slice(start, i)
            .ok_or(ReadError::new(ReadErrorKind::InvalidNumber, start))?;
        self.flag = integer;
        self.pos = i;
        Ok(())
    }

    /// A string whose opening quote is at `pos`; leaves `pos` after the closing quote, the raw
    /// text between the quotes in `raw`, and whether it has escapes in `flag`.
    fn string(&mut self) -> Result<(), ReadError> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let rest = self.input.get(i..).unwrap_or_default();
            // Plain text four bytes at a time, then the byte that ends it.
            let mut n = 0;
            for word in rest.chunks_exact(4) {
                let Ok(word) = <[u8; 4]>::try_from(word) else {
                    break;
                };
                if super::may_need_escape(u32::from_le_bytes(word)) {
                    break;
                }
                n += 4;
            }
            let Some(m) = rest
                .get(n..)
                .and_then(|r| r.iter().position(|&b| super::is_special(b)))
            else {
                return Err(self.end_error());
            };
            let n = n + m;
            i += n;
            match rest.get(n) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i = self.escape(i)?;
                }
                _ => return Err(ReadError::new(ReadErrorKind::ControlCharacter, i)),
            }
        }
        self.raw = match self.text {
            Some(text) => text
                .get(start..i)
                .ok_or(ReadError::new(ReadErrorKind::InvalidUtf8, start))?,
            None => {
                let body = self.input.get(start..i).unwrap_or_default();
                core::str::from_utf8(body).map_err(|e| {
                    ReadError::new(ReadErrorKind::InvalidUtf8, start + e.valid_up_to())
                })?
            }
        };
        self.flag = escaped;
        self.pos = i + 1;
        Ok(())
    }

    /// `input[start..end]` as text (`None` if it is not UTF-8 or not on char boundaries).
    pub(crate) fn slice(&self, start: usize, end: usize) -> Option<&'a str> {
        match self.text {
            Some(text) => text.get(start..end),
            None => core::str::from_utf8(self.input.get(start..end)?).ok(),
        }
    }

    /// Validates the escape whose backslash is at `i`; returns the offset after it.
    fn escape(&self, i: usize) -> Result<usize, ReadError> {
        match self.input.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') => match self.hex4(i)? {
                0xD800..=0xDBFF => match (self.input.get(i + 6), self.input.get(i + 7)) {
                    (Some(b'\\'), Some(b'u')) => match self.hex4(i + 6)? {
                        0xDC00..=0xDFFF => Ok(i + 12),
                        _ => Err(ReadError::new(ReadErrorKind::LoneSurrogate, i)),
                    },
                    (None, _) | (Some(b'\\'), None) => Err(self.end_error()),
                    _ => Err(ReadError::new(ReadErrorKind::LoneSurrogate, i)),
                },
                0xDC00..=0xDFFF => Err(ReadError::new(ReadErrorKind::LoneSurrogate, i)),
                _ => Ok(i + 6),
            },
            Some(_) => Err(ReadError::new(ReadErrorKind::InvalidEscape, i)),
            None => Err(self.end_error()),
        }
    }

    /// The four hex digits of the `\u` escape whose backslash is at `i`.
    fn hex4(&self, i: usize) -> Result<u32, ReadError> {
        let mut v = 0;
        for k in 2..6 {
            let d = match self.input.get(i + k) {
                Some(&b) => char::from(b).to_digit(16),
                None => return Err(self.end_error()),
            };
            match d {
                Some(d) => v = v * 16 + d,
                None => return Err(ReadError::new(ReadErrorKind::InvalidEscape, i)),
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
