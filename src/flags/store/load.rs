//! The loader: one recursive-descent pass over a `/flags/definitions` document with a single
//! [`Reader`], filling the store and compiling each filter value for its operator. `load`
//! runs the pass twice, first to validate and measure (writing nothing, computing no
//! thresholds), then to fill, so that a failed load changes nothing; `load_or_clear` runs it
//! once, counting on past a full capacity so that its error still names the exact size.

use core::fmt;

use super::packed::{encode_date, encode_semver};
use super::sizing::Requirements;
use super::{
    Compiled, CondAggregation, Expected, FilterKind, Flag, Head, Limit, LoadError, Node, NodeKind,
    Operator, Settings, TablesMut, Text, MAX_GROUP_DEPTH, NONE, REGEX_PATTERN_MAX,
};
use crate::flags::date::DateFilter;
use crate::flags::hash::{RolloutThreshold, VariantBounds, VariantRange};
use crate::flags::semver::SemverFilter;
use crate::flags::value::{self, PropertyValue};
use crate::json::read::{value_text, Elements, Kind, Members, Reader, Str, Token};

/// Writes into the store, or (dry run) only measures.
pub(super) struct Builder<'s> {
    pub(super) store: Option<TablesMut<'s>>,
    pub(super) need: Requirements,
}

impl Builder<'_> {
    /// Whether this is the measuring pass, which writes nothing.
    fn measuring(&self) -> bool {
        self.store.is_none()
    }

    fn text(&mut self, s: &str) -> Text {
        let t = Text {
            start: self.need.bytes as u32,
            len: s.len() as u32,
        };
        self.need.bytes += s.len();
        if let Some(st) = self.store.as_mut() {
            // Capacity was checked by the dry run.
            let _ = st.bytes.extend_from_slice(s.as_bytes());
        }
        t
    }

    /// Writes raw bytes (encoded compiled values); read back with [`FlagStore::blob`].
    fn blob(&mut self, bytes: &[u8]) -> Text {
        let t = Text {
            start: self.need.bytes as u32,
            len: bytes.len() as u32,
        };
        self.need.bytes += bytes.len();
        if let Some(st) = self.store.as_mut() {
            let _ = st.bytes.extend_from_slice(bytes);
        }
        t
    }

    /// Writes `len` bytes given as chunks (an encoded regex program, instruction by
    /// instruction), without a buffer for the whole.
    fn blob_from<const C: usize>(
        &mut self,
        len: usize,
        chunks: impl Iterator<Item = [u8; C]>,
    ) -> Text {
        let t = Text {
            start: self.need.bytes as u32,
            len: len as u32,
        };
        self.need.bytes += len;
        if let Some(st) = self.store.as_mut() {
            for chunk in chunks {
                let _ = st.bytes.extend_from_slice(&chunk);
            }
        }
        t
    }

    /// Writes a decoded JSON string.
    fn json_str(&mut self, s: Str<'_>) -> Text {
        if let Some(raw) = s.as_str() {
            return self.text(raw);
        }
        let start = self.need.bytes;
        let len = s.decoded_len();
        self.need.bytes += len;
        if let Some(st) = self.store.as_mut() {
            let mut tmp = [0u8; 4];
            for c in s.chars() {
                let _ = st
                    .bytes
                    .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
        Text {
            start: start as u32,
            len: len as u32,
        }
    }

    /// Writes the Python stringification of a raw JSON value (`None` if it has none, e.g. a
    /// non-finite number or nesting beyond the stringifier's limit).
    fn py_string(&mut self, raw: &str) -> Option<Text> {
        let v = PropertyValue::from_json(raw).ok()?;
        let start = self.need.bytes;
        let mut counter = Counter(0);
        value::write_py_str(&v, &mut counter).ok()?;
        let len = counter.0;
        self.need.bytes += len;
        if let Some(st) = self.store.as_mut() {
            let mut app = Appender(&mut st.bytes);
            let _ = value::write_py_str(&v, &mut app);
        }
        Some(Text {
            start: start as u32,
            len: len as u32,
        })
    }

    fn node(&mut self, kind: NodeKind) -> u32 {
        let i = self.need.nodes as u32;
        self.need.nodes += 1;
        if let Some(st) = self.store.as_mut() {
            let _ = st.nodes.push(Node { next: NONE, kind });
        }
        i
    }

    /// Links `i` after `prev` (or makes it the head).
    fn link(&mut self, head: &mut u32, prev: &mut u32, i: u32) {
        if *head == NONE {
            *head = i;
        } else if let Some(st) = self.store.as_mut() {
            if let Some(n) = st.nodes.get_mut(*prev as usize) {
                n.next = i;
            }
        }
        *prev = i;
    }

    fn flag(&mut self, f: Flag) {
        self.need.flags += 1;
        if let Some(st) = self.store.as_mut() {
            let _ = st.flags.push(f);
        }
    }
}

/// Counts the bytes a `fmt::Write` consumer would receive.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Appends to the arena (capacity checked by the dry run).
struct Appender<'v, 's>(&'v mut super::Arena<'s, u8>);

impl fmt::Write for Appender<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

/// A load stopped; the error is in [`Cur::err`]. One byte, so results stay in registers.
struct Stop;

type Step<T> = Result<T, Stop>;

/// The loader's cursor: one reader that reads the document once, front to back. Members are
/// interpreted as they are read; only a value whose meaning depends on a later sibling (a
/// filter's `value` before its `operator`) is kept as its raw text and read a second time.
struct Cur<'a> {
    r: Reader<'a>,
    /// Why the load stopped, once a [`Step`] is `Err(Stop)`.
    err: LoadError,
}

/// A value already read past, with where it is in the document.
#[derive(Clone, Copy)]
struct Raw<'a> {
    /// Its first token (a container's opening bracket for a container).
    tok: Token<'a>,
    /// From before the separator ahead of the value to just after it.
    span: (usize, usize),
}

impl<'a> Cur<'a> {
    fn new(r: Reader<'a>) -> Self {
        Self {
            r,
            err: LoadError::Shape { offset: 0 },
        }
    }

    /// Records why the load stops.
    #[cold]
    fn fail(&mut self, e: impl Into<LoadError>) -> Stop {
        self.err = e.into();
        Stop
    }

    /// The document is valid JSON but not definitions.
    #[cold]
    fn shape(&mut self) -> Stop {
        let offset = self.r.offset();
        self.fail(LoadError::Shape { offset })
    }

    fn next(&mut self) -> Step<Kind> {
        match self.r.advance() {
            Kind::Failed => {
                let e = self.r.error();
                Err(self.fail(e))
            }
            k => Ok(k),
        }
    }

    /// Reads the next key of the open object (then [`Reader::str`]); `false` at its end.
    fn key(&mut self) -> Step<bool> {
        Ok(self.next()? == Kind::Key)
    }

    /// The next element of the open array (its first token); `None` at its end.
    fn element(&mut self) -> Step<Option<Kind>> {
        match self.next()? {
            Kind::ArrayEnd | Kind::End => Ok(None),
            k => Ok(Some(k)),
        }
    }

    /// The first token of the value after a key (or at the start).
    fn value(&mut self) -> Step<Kind> {
        match self.next()? {
            Kind::End => Err(self.shape()),
            k => Ok(k),
        }
    }

    /// Reads the rest of a value whose first token is `k` (nothing for a scalar).
    fn finish(&mut self, k: Kind) -> Step<()> {
        if matches!(k, Kind::ObjectStart | Kind::ArrayStart) {
            if let Err(e) = self.r.skip_container() {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    /// Given a value's first token `k`: `Ok(())` if it opens the container `want` (which the
    /// caller then reads), otherwise the value is read past and its kind returned.
    fn enter(&mut self, k: Kind, want: Kind) -> Step<Result<(), Kind>> {
        if k == want {
            return Ok(Ok(()));
        }
        self.finish(k)?;
        Ok(Err(k))
    }

    /// [`enter`](Self::enter) for the value after a key.
    fn open(&mut self, want: Kind) -> Step<Result<(), Kind>> {
        let k = self.value()?;
        self.enter(k, want)
    }

    /// Skips the value after a key, validating it.
    fn skip(&mut self) -> Step<()> {
        let k = self.value()?;
        self.finish(k)
    }

    /// The value after a key as one token: a scalar, or a container's opening bracket (the
    /// container is read past, so it only tells that the value is not a scalar).
    fn scalar(&mut self) -> Step<Kind> {
        let k = self.value()?;
        self.finish(k)?;
        Ok(k)
    }

    /// The token just read as `k` (a scalar, or an opening bracket). Not `Reader::token`, whose
    /// `Result<Option<Token>>` a Cortex-M returns through memory.
    fn tok(&self, k: Kind) -> Token<'a> {
        match k {
            Kind::Str | Kind::Key => Token::Str(self.r.str()),
            Kind::Number => Token::Number(self.r.number()),
            Kind::True => Token::Bool(true),
            Kind::False => Token::Bool(false),
            Kind::ObjectStart => Token::ObjectStart,
            Kind::ArrayStart => Token::ArrayStart,
            _ => Token::Null,
        }
    }

    /// [`scalar`](Self::scalar), as a token.
    fn scalar_tok(&mut self) -> Step<Token<'a>> {
        let k = self.scalar()?;
        Ok(self.tok(k))
    }

    /// The value after a key, read past, kept for a second look.
    fn raw(&mut self) -> Step<Raw<'a>> {
        let start = self.r.offset();
        let tok = self.scalar_tok()?;
        Ok(Raw {
            tok,
            span: (start, self.r.offset()),
        })
    }

    /// The JSON text of a value read with [`raw`](Self::raw).
    fn text(&mut self, v: Raw<'a>) -> Step<&'a str> {
        Ok(match v.tok {
            Token::Number(n) => n.as_str(),
            Token::Bool(true) => "true",
            Token::Bool(false) => "false",
            Token::Null => "null",
            _ => {
                let (a, b) = v.span;
                match value_text(&self.r, a, b) {
                    Ok(s) => s,
                    Err(e) => return Err(self.fail(e)),
                }
            }
        })
    }
}

/// A scalar token as a number, as Python reads it (`None` for anything else).
fn tok_f64(t: Token<'_>) -> Option<f64> {
    match value::scalar(t).ok()? {
        PropertyValue::Int(i) => Some(i as f64),
        PropertyValue::UInt(u) => Some(u as f64),
        PropertyValue::Float(f) => Some(f),
        _ => None,
    }
}

/// An integer literal within `i64`.
fn tok_i64(t: Token<'_>) -> Option<i64> {
    match t {
        Token::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Stores a string token's decoded content (`None` if it is not a string).
fn store_tok(t: Token<'_>, b: &mut Builder<'_>) -> Option<Text> {
    match t {
        Token::Str(s) => Some(b.json_str(s)),
        _ => None,
    }
}

/// Like [`store_tok`], but `None` for the empty string too.
fn store_nonempty_tok(t: Token<'_>, b: &mut Builder<'_>) -> Option<Text> {
    match t {
        Token::Str(s) if s.raw().is_empty() => None,
        _ => store_tok(t, b),
    }
}

/// Runs `f` on the decoded content of a short string token (operator names, types); `None`
/// if it is not a string or longer than 256 bytes decoded.
fn with_tok_str<R>(t: Token<'_>, f: impl FnOnce(&str) -> R) -> Option<R> {
    let Token::Str(s) = t else {
        return None;
    };
    if let Some(plain) = s.as_str() {
        return Some(f(plain));
    }
    let mut buf = [0u8; 256];
    s.decode_into(&mut buf).ok().map(f)
}

/// Stores the decoded content of a raw JSON string value (`None` if not a string).
fn store_str(raw: &str, b: &mut Builder<'_>) -> Option<Text> {
    let mut r = Reader::of_str(raw);
    match r.next() {
        Ok(Some(t)) => store_tok(t, b),
        _ => None,
    }
}

fn is_object(raw: &str) -> bool {
    raw.starts_with('{')
}

pub(super) fn parse_document(doc: &[u8], b: &mut Builder<'_>) -> Result<(), LoadError> {
    let mut c = Cur::new(Reader::new(doc));
    match document(&mut c, b) {
        Ok(()) => Ok(()),
        Err(Stop) => Err(c.err),
    }
}

fn document(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<()> {
    if c.next()? != Kind::ObjectStart {
        return Err(c.shape());
    }
    let mut saw_flags = false;
    let mut settings = Settings::default();
    while c.key()? {
        let key = c.r.str();
        if key.eq_str("flags") {
            if c.open(Kind::ArrayStart)?.is_err() {
                return Err(c.shape());
            }
            saw_flags = true;
            while let Some(k) = c.element()? {
                // A flag that is not an object cannot be referenced: skip it.
                if c.enter(k, Kind::ObjectStart)?.is_ok() {
                    parse_flag(c, b)?;
                }
            }
        } else if key.eq_str("group_type_mapping") {
            settings.group_types = Head::new(parse_group_types(c, b)?);
        } else if key.eq_str("cohorts") {
            settings.cohorts = Head::new(parse_cohorts(c, b)?);
        } else if key.eq_str("property_matching_version") {
            let t = c.scalar_tok()?;
            settings.property_matching_v2 = tok_i64(t) == Some(2);
        } else if key.eq_str("minimal_flag_called_events") {
            settings.minimal_flag_called_events = c.scalar()? == Kind::True;
        } else {
            c.skip()?;
        }
    }
    if c.next()? != Kind::End || !saw_flags {
        return Err(c.shape());
    }
    if let Some(st) = b.store.as_mut() {
        *st.settings = settings;
    }
    Ok(())
}

fn parse_group_types(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<u32> {
    if c.open(Kind::ObjectStart)?.is_err() {
        // null or anything else: no mapping.
        return Ok(NONE);
    }
    let (mut head, mut prev) = (NONE, NONE);
    while c.key()? {
        let key = c.r.str();
        if let Some(name) = store_tok(c.scalar_tok()?, b) {
            let index = b.json_str(key);
            let i = b.node(NodeKind::GroupType { index, name });
            b.link(&mut head, &mut prev, i);
        }
    }
    Ok(head)
}

fn parse_cohorts(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<u32> {
    if c.open(Kind::ObjectStart)?.is_err() {
        return Ok(NONE);
    }
    let (mut head, mut prev) = (NONE, NONE);
    while c.key()? {
        let id = b.json_str(c.r.str());
        // Whether an entry is a group or a filter depends on its members, so cohort groups
        // are read from their text (a small part of a document).
        let body = c.raw()?;
        let body = c.text(body)?;
        let group = parse_group(body, b, 0).map_err(|e| c.fail(e))?;
        let i = b.node(NodeKind::Cohort { id, group });
        b.link(&mut head, &mut prev, i);
    }
    Ok(head)
}

/// Parses a cohort property group (or `{}`), recursively up to [`MAX_GROUP_DEPTH`].
fn parse_group(raw: &str, b: &mut Builder<'_>, depth: usize) -> Result<u32, LoadError> {
    if depth >= MAX_GROUP_DEPTH {
        return Err(LoadError::TooDeep {
            max: MAX_GROUP_DEPTH,
        });
    }
    let group = |b: &mut Builder<'_>, and, children, malformed| {
        b.node(NodeKind::Group {
            and,
            children,
            malformed,
        })
    };
    let Some(mut m) = Members::of(raw)? else {
        return Ok(group(b, true, NONE, true));
    };
    let (mut ty, mut values, mut any_key) = (None, None, false);
    while let Some((k, v)) = m.next()? {
        any_key = true;
        if k.eq_str("type") {
            ty = Some(v);
        } else if k.eq_str("values") {
            values = Some(v);
        }
    }
    if !any_key {
        // `{}` always matches.
        return Ok(group(b, true, NONE, false));
    }
    let and = match ty {
        Some("\"AND\"") => true,
        Some("\"OR\"") => false,
        _ => return Ok(group(b, true, NONE, true)),
    };
    let Some(mut entries) = values.map(Elements::of).transpose()?.flatten() else {
        return Ok(group(b, and, NONE, true));
    };
    let (mut head, mut prev) = (NONE, NONE);
    let mut malformed = false;
    while let Some(entry) = entries.next()? {
        if !is_object(entry) {
            malformed = true;
            continue;
        }
        let i = if is_group_entry(entry)? {
            parse_group(entry, b, depth + 1)?
        } else {
            parse_filter_text(entry, b)?
        };
        b.link(&mut head, &mut prev, i);
    }
    Ok(group(b, and, head, malformed))
}

/// An entry is a nested group when it is `{}`, has `values`, or has type AND/OR.
fn is_group_entry(raw: &str) -> Result<bool, LoadError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(false);
    };
    let mut empty = true;
    while let Some((k, v)) = m.next()? {
        empty = false;
        if k.eq_str("values") || (k.eq_str("type") && (v == "\"AND\"" || v == "\"OR\"")) {
            return Ok(true);
        }
    }
    Ok(empty)
}

/// Parses one filter given as its JSON text (inside a cohort group).
fn parse_filter_text(raw: &str, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let mut c = Cur::new(Reader::of_str(raw));
    let parsed = match c.value() {
        Ok(k) => parse_filter(&mut c, k, b),
        Err(Stop) => Err(Stop),
    };
    parsed.map_err(|Stop| c.err)
}

/// Parses one filter (whose first token `first` was just read) into a node.
fn parse_filter<'a>(c: &mut Cur<'a>, first: Kind, b: &mut Builder<'_>) -> Step<u32> {
    let broken = |b: &mut Builder<'_>, negation| {
        b.node(NodeKind::Filter {
            kind: FilterKind::Broken,
            negation,
        })
    };
    if c.enter(first, Kind::ObjectStart)?.is_err() {
        return Ok(broken(b, false));
    }
    let (mut key, mut value, mut op, mut ty, mut negation, mut chain) =
        (None, None, None, None, false, None);
    while c.key()? {
        let k = c.r.str();
        if k.eq_str("key") {
            key = Some(c.scalar_tok()?);
        } else if k.eq_str("value") {
            value = Some(c.raw()?);
        } else if k.eq_str("operator") {
            op = Some(c.scalar_tok()?);
        } else if k.eq_str("type") {
            ty = Some(c.scalar_tok()?);
        } else if k.eq_str("negation") {
            negation = c.scalar()? == Kind::True;
        } else if k.eq_str("dependency_chain") {
            chain = Some(c.raw()?);
        } else {
            c.skip()?;
        }
    }
    let op = op.filter(|o| !matches!(*o, Token::Null));
    #[derive(PartialEq)]
    enum Ty {
        Cohort,
        Flag,
        Other,
    }
    let ty = ty.and_then(|t| {
        with_tok_str(t, |s| match s {
            "cohort" => Ty::Cohort,
            "flag" => Ty::Flag,
            _ => Ty::Other,
        })
    });
    let kind = match ty {
        Some(Ty::Cohort) => {
            // The cohort id is `str(value)`: a string's content, or a number's JSON text.
            let id = match value {
                Some(v) if !matches!(v.tok, Token::Null) => match store_tok(v.tok, b) {
                    Some(id) => Some(id),
                    None => Some(b.text(c.text(v)?)),
                },
                _ => None,
            };
            let (negate, unsupported_op) = match op {
                None => (false, false),
                Some(o) => with_tok_str(o, |s| match s {
                    "in" | "exact" => (false, false),
                    "not_in" => (true, false),
                    _ => (false, true),
                })
                .unwrap_or((false, true)),
            };
            match id {
                Some(id) => FilterKind::Cohort {
                    id,
                    negate,
                    unsupported_op,
                },
                None => FilterKind::Broken,
            }
        }
        Some(Ty::Flag) => {
            let chain = chain.map(|v| c.text(v)).transpose()?;
            parse_flag_filter(key, value.map(|v| v.tok), op, chain, b).map_err(|e| c.fail(e))?
        }
        _ => {
            let Some(key) = key.and_then(|k| store_tok(k, b)) else {
                return Ok(broken(b, negation));
            };
            let op = match op {
                None => Operator::Exact,
                Some(o) => with_tok_str(o, Operator::parse).unwrap_or(Operator::Unknown),
            };
            let raw = match value {
                Some(v) => c.text(v)?,
                None => "null",
            };
            let value = compile_value(op, raw, b).map_err(|e| c.fail(e))?;
            FilterKind::Property { key, op, value }
        }
    };
    Ok(b.node(NodeKind::Filter { kind, negation }))
}

fn parse_flag_filter(
    key: Option<Token<'_>>,
    value: Option<Token<'_>>,
    op: Option<Token<'_>>,
    chain: Option<&str>,
    b: &mut Builder<'_>,
) -> Result<FilterKind, LoadError> {
    let key_text = key.and_then(|k| store_nonempty_tok(k, b));
    let op_ok = op.and_then(|o| with_tok_str(o, |s| s == "flag_evaluates_to")) == Some(true);
    let expected = match value {
        Some(Token::Bool(v)) => Some(Expected::Bool(v)),
        Some(t) => store_tok(t, b).map(Expected::Variant),
        None => None,
    };
    let (expected, key) = match (key_text, op_ok, expected) {
        (Some(k), true, Some(e)) => (Some(e), k),
        (k, _, _) => (None, k.unwrap_or_default()),
    };
    let (mut head, mut prev, mut len) = (NONE, NONE, 0u32);
    let mut well_formed = false;
    if let Some(mut entries) = chain.map(Elements::of).transpose()?.flatten() {
        well_formed = true;
        while let Some(entry) = entries.next()? {
            match store_str(entry, b) {
                Some(key) => {
                    let i = b.node(NodeKind::Chain { key });
                    b.link(&mut head, &mut prev, i);
                    len += 1;
                }
                None => well_formed = false,
            }
        }
    }
    Ok(FilterKind::Flag {
        key,
        expected,
        chain: well_formed.then_some(head),
        chain_len: len,
    })
}

/// Compiles a regex filter's pattern (the Python stringification of its value) once, here, so
/// that evaluation only runs the program. Both passes compile it, so the dry run measures the
/// program's exact size. A pattern with JSON escapes whose unescaped form is longer than
/// [`REGEX_PATTERN_MAX`] bytes is left to the server (inconclusive), like a pattern over the
/// matcher's size bounds.
// Never inlined: its pattern buffer and compiled program (about 2.5 KiB) then take stack only
// while a regex compiles, not in every `parse_filter` frame.
#[inline(never)]
fn compile_regex(raw: &str, b: &mut Builder<'_>) -> Compiled {
    use crate::flags::regex::{Regex, RegexError, DEFAULT_CAPACITY};
    let Ok(v) = PropertyValue::from_json(raw) else {
        return Compiled::Unusable;
    };
    let mut buf = [0u8; REGEX_PATTERN_MAX];
    let pattern = match value::py_str(&v, &mut buf) {
        Ok(p) => p,
        Err(value::StringifyError::Overflow { .. }) => return Compiled::RegexUnsupported,
        Err(_) => return Compiled::Unusable,
    };
    if pattern.is_empty() {
        // Matches everything; the evaluator answers it without a program.
        return Compiled::Text(b.text(""));
    }
    // Matched by reference: moving the 2 KiB program out of the result would copy it.
    match &Regex::<DEFAULT_CAPACITY>::compile(pattern) {
        Ok(re) => Compiled::Regex(b.blob_from(re.encoded_len(), re.encoded())),
        Err(RegexError::Invalid) => Compiled::RegexInvalid,
        Err(_) => Compiled::RegexUnsupported,
    }
}

/// Compiles a property filter's value for its operator.
fn compile_value(op: Operator, raw: &str, b: &mut Builder<'_>) -> Result<Compiled, LoadError> {
    Ok(match op {
        Operator::Exact | Operator::IsNot => {
            let bool_like = value::is_boolean_like_json(raw).then(|| value::truthy_json(raw));
            let (mut head, mut prev) = (NONE, NONE);
            let mut ok = true;
            let mut push = |b: &mut Builder<'_>, item: &str| match b.py_string(item) {
                Some(text) => {
                    let i = b.node(NodeKind::Item { text });
                    b.link(&mut head, &mut prev, i);
                }
                None => ok = false,
            };
            let mut empty_array = false;
            match Elements::of(raw)? {
                Some(mut items) => {
                    empty_array = true;
                    while let Some(item) = items.next()? {
                        empty_array = false;
                        push(b, item);
                    }
                }
                None => push(b, raw),
            }
            if ok {
                Compiled::Exact {
                    items: head,
                    empty_array,
                    bool_like,
                }
            } else {
                Compiled::Unusable
            }
        }
        Operator::IContains
        | Operator::NotIContains
        | Operator::StartsWith
        | Operator::NotStartsWith
        | Operator::EndsWith
        | Operator::NotEndsWith => b.py_string(raw).map_or(Compiled::Unusable, Compiled::Text),
        Operator::Regex | Operator::NotRegex => compile_regex(raw, b),
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
            match PropertyValue::from_json(raw)
                .ok()
                .and_then(|v| v.as_number())
            {
                Some(n) => Compiled::Number(b.blob(&n.to_le_bytes())),
                None => Compiled::Unusable,
            }
        }
        Operator::DateBefore | Operator::DateAfter => {
            let mut buf = [0u8; 128];
            let parsed = PropertyValue::from_json(raw).ok().and_then(|v| {
                if matches!(v, PropertyValue::Bool(_)) {
                    return None;
                }
                DateFilter::parse(value::py_str(&v, &mut buf).ok()?).ok()
            });
            match parsed {
                Some(f) => Compiled::Date(b.blob(encode_date(f, &mut [0; 9]))),
                None => Compiled::Unusable,
            }
        }
        Operator::Semver(sop) => {
            let mut buf = [0u8; 128];
            let parsed = PropertyValue::from_json(raw)
                .ok()
                .and_then(|v| SemverFilter::parse(sop, value::py_str(&v, &mut buf).ok()?).ok());
            match parsed {
                Some(f) => Compiled::Semver(b.blob(encode_semver(f, &mut [0; 50]))),
                None => Compiled::Unusable,
            }
        }
        Operator::IsSet | Operator::IsNotSet | Operator::Unknown => Compiled::None,
    })
}

/// Parses one flag object (its `{` just read) and adds it to the store if it has a key.
fn parse_flag(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<()> {
    let mut flag = Flag {
        key: Text::default(),
        id: None,
        version: None,
        active: false,
        continuity: false,
        has_experiment: None,
        aggregation: None,
        aggregation_invalid: false,
        device_bucketing: false,
        feature_enrollment: false,
        early_exit: false,
        holdout: None,
        conditions: NONE,
        variants: NONE,
        payloads: NONE,
        broken: false,
    };
    let mut have_key = false;
    let (mut top_bucketing, mut filters_bucketing) = (None, None);
    while c.key()? {
        let k = c.r.str();
        if k.eq_str("key") {
            if let Some(t) = store_tok(c.scalar_tok()?, b) {
                flag.key = t;
                have_key = true;
            }
        } else if k.eq_str("id") {
            flag.id = tok_i64(c.scalar_tok()?);
        } else if k.eq_str("version") {
            flag.version = tok_i64(c.scalar_tok()?);
        } else if k.eq_str("active") {
            flag.active = c.scalar()? == Kind::True;
        } else if k.eq_str("ensure_experience_continuity") {
            flag.continuity = c.scalar()? == Kind::True;
        } else if k.eq_str("has_experiment") {
            flag.has_experiment = match c.scalar()? {
                Kind::True => Some(true),
                Kind::False => Some(false),
                _ => None,
            };
        } else if k.eq_str("bucketing_identifier") {
            top_bucketing = Some(c.scalar_tok()?);
        } else if k.eq_str("filters") {
            parse_filters(c, &mut flag, &mut filters_bucketing, b)?;
        } else {
            c.skip()?;
        }
    }
    // posthog-python reads the flag's `bucketing_identifier`, then the one in `filters`; null
    // and "" count as unset.
    let set = |t: &Token<'_>| {
        !matches!(t, Token::Null) && !matches!(t, Token::Str(s) if s.raw().is_empty())
    };
    let bucketing = top_bucketing.filter(set).or(filters_bucketing.filter(set));
    flag.device_bucketing = matches!(bucketing, Some(Token::Str(s)) if s.raw() == "device_id");
    if have_key {
        b.flag(flag);
    }
    Ok(())
}

/// Parses a flag's `filters`. `groups` and `multivariate` given twice count the last time (as
/// Python's `json.loads` keeps it), as they did when the loader read them last; other
/// repeated members keep the behaviour they always had here (a later `null` does not undo an
/// earlier value).
fn parse_filters<'a>(
    c: &mut Cur<'a>,
    flag: &mut Flag,
    bucketing: &mut Option<Token<'a>>,
    b: &mut Builder<'_>,
) -> Step<()> {
    if let Err(k) = c.open(Kind::ObjectStart)? {
        flag.broken |= k != Kind::Null;
        return Ok(());
    }
    let (mut groups_broken, mut variants_broken) = (false, false);
    while c.key()? {
        let k = c.r.str();
        if k.eq_str("groups") {
            (flag.conditions, groups_broken) = parse_conditions(c, b)?;
        } else if k.eq_str("multivariate") {
            (flag.variants, variants_broken) = parse_variants(c, b)?;
        } else if k.eq_str("payloads") {
            flag.payloads = parse_payloads(c, b)?;
        } else if k.eq_str("aggregation_group_type_index") {
            let v = c.scalar_tok()?;
            if !matches!(v, Token::Null) {
                match tok_i64(v).and_then(|i| u32::try_from(i).ok()) {
                    Some(i) => flag.aggregation = Some(i),
                    None => flag.aggregation_invalid = true,
                }
            }
        } else if k.eq_str("early_exit") {
            flag.early_exit = c.scalar()? == Kind::True;
        } else if k.eq_str("feature_enrollment") {
            flag.feature_enrollment = c.scalar()? == Kind::True;
        } else if k.eq_str("bucketing_identifier") {
            *bucketing = Some(c.scalar_tok()?);
        } else if k.eq_str("holdout") {
            flag.holdout = parse_holdout(c, b.measuring())?;
        } else {
            c.skip()?;
        }
    }
    flag.broken |= groups_broken | variants_broken;
    Ok(())
}

/// A flag's `holdout`; the measuring pass (`measuring`) computes no threshold.
fn parse_holdout(c: &mut Cur<'_>, measuring: bool) -> Step<Option<(i64, RolloutThreshold)>> {
    if c.open(Kind::ObjectStart)?.is_err() {
        return Ok(None);
    }
    let (mut id, mut pct) = (None, None);
    while c.key()? {
        let k = c.r.str();
        if k.eq_str("id") {
            id = tok_i64(c.scalar_tok()?);
        } else if k.eq_str("exclusion_percentage") {
            pct = tok_f64(c.scalar_tok()?);
        } else {
            c.skip()?;
        }
    }
    Ok(match (id, pct) {
        (Some(id), Some(p)) if p.is_finite() => Some((
            id,
            if measuring {
                RolloutThreshold::NOBODY
            } else {
                RolloutThreshold::from_holdout_percentage(p)
            },
        )),
        _ => None,
    })
}

fn parse_payloads(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<u32> {
    if c.open(Kind::ObjectStart)?.is_err() {
        return Ok(NONE);
    }
    let (mut head, mut prev) = (NONE, NONE);
    while c.key()? {
        let k = c.r.str();
        let v = c.raw()?;
        if matches!(v.tok, Token::Null) {
            continue;
        }
        let key = b.json_str(k);
        // A JSON-encoded string is stored decoded (its content is the payload's JSON text);
        // older data holding raw JSON is stored as is.
        let json = match store_tok(v.tok, b) {
            Some(json) => json,
            None => b.text(c.text(v)?),
        };
        let i = b.node(NodeKind::Payload { key, json });
        b.link(&mut head, &mut prev, i);
    }
    Ok(head)
}

/// A flag's `multivariate`: the head of its variant list and whether an entry was broken.
fn parse_variants(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<(u32, bool)> {
    if c.open(Kind::ObjectStart)?.is_err() {
        return Ok((NONE, false));
    }
    let mut out = (NONE, false);
    while c.key()? {
        let k = c.r.str();
        if k.eq_str("variants") {
            out = parse_variant_list(c, b)?;
        } else {
            c.skip()?;
        }
    }
    Ok(out)
}

fn parse_variant_list(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<(u32, bool)> {
    if c.open(Kind::ArrayStart)?.is_err() {
        return Ok((NONE, false));
    }
    let (mut head, mut prev, mut broken) = (NONE, NONE, false);
    let mut bounds = VariantBounds::new();
    while let Some(k) = c.element()? {
        if c.enter(k, Kind::ObjectStart)?.is_err() {
            broken = true;
            continue;
        }
        let (mut key, mut pct) = (None, None);
        while c.key()? {
            let k = c.r.str();
            if k.eq_str("key") {
                key = store_tok(c.scalar_tok()?, b);
            } else if k.eq_str("rollout_percentage") {
                pct = tok_f64(c.scalar_tok()?);
            } else {
                c.skip()?;
            }
        }
        match (key, pct) {
            (Some(key), Some(p)) => {
                // The measuring pass needs no bounds (they take float searches).
                let range = if b.measuring() {
                    VariantRange { start: 0, end: 0 }
                } else {
                    bounds.push(p)
                };
                let i = b.node(NodeKind::Variant {
                    key,
                    start: Limit::new(range.start),
                    end: Limit::new(range.end),
                });
                b.link(&mut head, &mut prev, i);
            }
            _ => broken = true,
        }
    }
    Ok((head, broken))
}

/// A flag's `groups`: the head of its condition list and whether an entry was broken.
fn parse_conditions(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<(u32, bool)> {
    if let Err(k) = c.open(Kind::ArrayStart)? {
        return Ok((NONE, k != Kind::Null));
    }
    let (mut head, mut prev, mut broken) = (NONE, NONE, false);
    while let Some(k) = c.element()? {
        if c.enter(k, Kind::ObjectStart)?.is_err() {
            broken = true;
            continue;
        }
        let i = parse_condition(c, b)?;
        b.link(&mut head, &mut prev, i);
    }
    Ok((head, broken))
}

/// Parses one condition object (its `{` just read) into a node.
fn parse_condition(c: &mut Cur<'_>, b: &mut Builder<'_>) -> Step<u32> {
    let mut filters = NONE;
    let mut rollout = Limit::NONE;
    let mut variant = None;
    let mut aggregation = CondAggregation::Inherit;
    let mut broken = false;
    while c.key()? {
        let k = c.r.str();
        if k.eq_str("properties") {
            match c.open(Kind::ArrayStart)? {
                Ok(()) => {
                    let mut prev = NONE;
                    while let Some(first) = c.element()? {
                        let i = parse_filter(c, first, b)?;
                        b.link(&mut filters, &mut prev, i);
                    }
                }
                Err(k) => broken |= k != Kind::Null,
            }
        } else if k.eq_str("rollout_percentage") {
            let v = c.scalar_tok()?;
            if !matches!(v, Token::Null) {
                match tok_f64(v) {
                    Some(p) => {
                        // The measuring pass needs no threshold (it takes float searches).
                        if !b.measuring() {
                            rollout = Limit::new(RolloutThreshold::from_percentage(p).limit());
                        }
                    }
                    None => broken = true,
                }
            }
        } else if k.eq_str("variant") {
            variant = store_nonempty_tok(c.scalar_tok()?, b);
        } else if k.eq_str("aggregation_group_type_index") {
            let v = c.scalar_tok()?;
            aggregation = if matches!(v, Token::Null) {
                CondAggregation::Null
            } else {
                match tok_i64(v).and_then(|i| u32::try_from(i).ok()) {
                    Some(i) => CondAggregation::Index(i),
                    None => CondAggregation::Invalid,
                }
            };
        } else {
            c.skip()?;
        }
    }
    Ok(b.node(NodeKind::Condition {
        filters,
        rollout,
        variant,
        aggregation,
        broken,
    }))
}
