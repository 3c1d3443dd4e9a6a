//! The loader: a `/flags/definitions` document parsed twice, first to validate and measure
//! (writing nothing), then to fill the store, compiling each filter value for its operator.

use core::fmt;

use super::packed::{encode_date, encode_semver};
use super::sizing::Requirements;
use super::{
    Compiled, CondAggregation, Expected, FilterKind, Flag, Head, Limit, LoadError, Node, NodeKind,
    Operator, Settings, TablesMut, Text, MAX_GROUP_DEPTH, NONE, REGEX_PATTERN_MAX,
};
use crate::flags::date::DateFilter;
use crate::flags::hash::{RolloutThreshold, VariantBounds};
use crate::flags::semver::SemverFilter;
use crate::flags::value::{self, PropertyValue};
use crate::json::read::{raw_value, Elements, Members, Reader, Str, Token};

/// Writes into the store, or (dry run) only measures.
pub(super) struct Builder<'s> {
    pub(super) store: Option<TablesMut<'s>>,
    pub(super) need: Requirements,
}

impl Builder<'_> {
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

fn shape<T>(r: &Reader<'_>) -> Result<T, LoadError> {
    Err(LoadError::Shape { offset: r.offset() })
}

/// A JSON scalar as seen by the loader.
fn as_f64(raw: &str) -> Option<f64> {
    match PropertyValue::from_json(raw).ok()? {
        PropertyValue::Int(i) => Some(i as f64),
        PropertyValue::UInt(u) => Some(u as f64),
        PropertyValue::Float(f) => Some(f),
        _ => None,
    }
}

fn as_i64(raw: &str) -> Option<i64> {
    match PropertyValue::from_json(raw).ok()? {
        PropertyValue::Int(i) => Some(i),
        _ => None,
    }
}

fn as_bool(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn is_null(raw: &str) -> bool {
    raw == "null"
}

/// Stores the decoded content of a raw JSON string value (`None` if not a string).
fn store_str(raw: &str, b: &mut Builder<'_>) -> Option<Text> {
    let mut r = Reader::new(raw.as_bytes());
    match r.next() {
        Ok(Some(Token::Str(s))) => Some(b.json_str(s)),
        _ => None,
    }
}

/// Like [`store_str`], but `None` for the empty string too.
fn store_nonempty_str(raw: &str, b: &mut Builder<'_>) -> Option<Text> {
    if raw == "\"\"" {
        return None;
    }
    store_str(raw, b)
}

/// Runs `f` on the decoded content of a short raw JSON string value (operator names, types);
/// `None` if it is not a string or longer than 256 bytes decoded.
fn with_str<R>(raw: &str, f: impl FnOnce(&str) -> R) -> Option<R> {
    let mut r = Reader::new(raw.as_bytes());
    let Ok(Some(Token::Str(s))) = r.next() else {
        return None;
    };
    if let Some(plain) = s.as_str() {
        return Some(f(plain));
    }
    let mut buf = [0u8; 256];
    s.decode_into(&mut buf).ok().map(f)
}

fn is_object(raw: &str) -> bool {
    raw.starts_with('{')
}

pub(super) fn parse_document(doc: &[u8], b: &mut Builder<'_>) -> Result<(), LoadError> {
    let mut r = Reader::new(doc);
    if r.next()? != Some(Token::ObjectStart) {
        return shape(&r);
    }
    let mut saw_flags = false;
    let mut settings = Settings::default();
    while let Some(tok) = r.next()? {
        let Token::Key(key) = tok else { break };
        let raw = raw_value(&mut r, doc)?;
        if key.eq_str("flags") {
            let Some(mut flags) = Elements::of(raw)? else {
                return shape(&r);
            };
            saw_flags = true;
            while let Some(flag) = flags.next()? {
                // A flag that is not an object cannot be referenced: skip it.
                if is_object(flag) {
                    parse_flag(flag, b)?;
                }
            }
        } else if key.eq_str("group_type_mapping") {
            settings.group_types = Head::new(parse_group_types(raw, b)?);
        } else if key.eq_str("cohorts") {
            settings.cohorts = Head::new(parse_cohorts(raw, b)?);
        } else if key.eq_str("property_matching_version") {
            settings.property_matching_v2 = as_i64(raw) == Some(2);
        } else if key.eq_str("minimal_flag_called_events") {
            settings.minimal_flag_called_events = raw == "true";
        }
    }
    if r.next()?.is_some() || !saw_flags {
        return shape(&r);
    }
    if let Some(st) = b.store.as_mut() {
        *st.settings = settings;
    }
    Ok(())
}

fn parse_group_types(raw: &str, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let (mut head, mut prev) = (NONE, NONE);
    // null or anything else: no mapping.
    let Some(mut m) = Members::of(raw)? else {
        return Ok(NONE);
    };
    while let Some((k, v)) = m.next()? {
        if let Some(name) = store_str(v, b) {
            let index = b.json_str(k);
            let i = b.node(NodeKind::GroupType { index, name });
            b.link(&mut head, &mut prev, i);
        }
    }
    Ok(head)
}

fn parse_cohorts(raw: &str, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let (mut head, mut prev) = (NONE, NONE);
    let Some(mut m) = Members::of(raw)? else {
        return Ok(NONE);
    };
    while let Some((k, body)) = m.next()? {
        let id = b.json_str(k);
        let group = parse_group(body, b, 0)?;
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
            parse_filter(entry, b)?
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

/// Parses one filter object into a node.
fn parse_filter(raw: &str, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let broken = |b: &mut Builder<'_>, negation| {
        b.node(NodeKind::Filter {
            kind: FilterKind::Broken,
            negation,
        })
    };
    let Some(mut m) = Members::of(raw)? else {
        return Ok(broken(b, false));
    };
    let (mut key, mut value, mut op, mut ty, mut negation, mut chain) =
        (None, None, None, None, false, None);
    while let Some((k, v)) = m.next()? {
        if k.eq_str("key") {
            key = Some(v);
        } else if k.eq_str("value") {
            value = Some(v);
        } else if k.eq_str("operator") {
            op = Some(v);
        } else if k.eq_str("type") {
            ty = Some(v);
        } else if k.eq_str("negation") {
            negation = v == "true";
        } else if k.eq_str("dependency_chain") {
            chain = Some(v);
        }
    }
    let op = op.filter(|o| !is_null(o));
    #[derive(PartialEq)]
    enum Ty {
        Cohort,
        Flag,
        Other,
    }
    let ty = ty.and_then(|t| {
        with_str(t, |s| match s {
            "cohort" => Ty::Cohort,
            "flag" => Ty::Flag,
            _ => Ty::Other,
        })
    });
    let kind = match ty {
        Some(Ty::Cohort) => {
            // The cohort id is `str(value)`: a string's content, or a number's JSON text.
            let id = match value {
                Some(v) if !is_null(v) => store_str(v, b).or_else(|| Some(b.text(v))),
                _ => None,
            };
            let (negate, unsupported_op) = match op {
                None => (false, false),
                Some(o) => with_str(o, |s| match s {
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
        Some(Ty::Flag) => parse_flag_filter(key, value, op, chain, b)?,
        _ => {
            let Some(key) = key.and_then(|k| store_str(k, b)) else {
                return Ok(broken(b, negation));
            };
            let op = match op {
                None => Operator::Exact,
                Some(o) => with_str(o, Operator::parse).unwrap_or(Operator::Unknown),
            };
            let value = compile_value(op, value.unwrap_or("null"), b)?;
            FilterKind::Property { key, op, value }
        }
    };
    Ok(b.node(NodeKind::Filter { kind, negation }))
}

fn parse_flag_filter(
    key: Option<&str>,
    value: Option<&str>,
    op: Option<&str>,
    chain: Option<&str>,
    b: &mut Builder<'_>,
) -> Result<FilterKind, LoadError> {
    let key_text = key.and_then(|k| store_nonempty_str(k, b));
    let op_ok = op.and_then(|o| with_str(o, |s| s == "flag_evaluates_to")) == Some(true);
    let expected = match value {
        Some("true") => Some(Expected::Bool(true)),
        Some("false") => Some(Expected::Bool(false)),
        Some(v) => store_str(v, b).map(Expected::Variant),
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
    match &Regex::<DEFAULT_CAPACITY>::new(pattern) {
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

fn parse_flag(raw: &str, b: &mut Builder<'_>) -> Result<(), LoadError> {
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
    let Some(mut m) = Members::of(raw)? else {
        return Ok(());
    };
    let mut have_key = false;
    let (mut top_bucketing, mut filters_bucketing) = (None, None);
    while let Some((k, v)) = m.next()? {
        if k.eq_str("key") {
            if let Some(t) = store_str(v, b) {
                flag.key = t;
                have_key = true;
            }
        } else if k.eq_str("id") {
            flag.id = as_i64(v);
        } else if k.eq_str("version") {
            flag.version = as_i64(v);
        } else if k.eq_str("active") {
            flag.active = v == "true";
        } else if k.eq_str("ensure_experience_continuity") {
            flag.continuity = v == "true";
        } else if k.eq_str("has_experiment") {
            flag.has_experiment = as_bool(v);
        } else if k.eq_str("bucketing_identifier") {
            top_bucketing = Some(v);
        } else if k.eq_str("filters") {
            parse_filters(v, &mut flag, &mut filters_bucketing, b)?;
        }
    }
    // posthog-python reads the flag's `bucketing_identifier`, then the one in `filters`.
    let set = |v: &&str| !is_null(v) && *v != "\"\"";
    let bucketing = top_bucketing.filter(set).or(filters_bucketing.filter(set));
    flag.device_bucketing = bucketing == Some("\"device_id\"");
    if have_key {
        b.flag(flag);
    }
    Ok(())
}

fn parse_filters<'a>(
    raw: &'a str,
    flag: &mut Flag,
    bucketing: &mut Option<&'a str>,
    b: &mut Builder<'_>,
) -> Result<(), LoadError> {
    let Some(mut m) = Members::of(raw)? else {
        flag.broken |= !is_null(raw);
        return Ok(());
    };
    let (mut groups, mut variants) = (None, None);
    while let Some((k, v)) = m.next()? {
        if k.eq_str("groups") {
            groups = Some(v);
        } else if k.eq_str("multivariate") {
            variants = Some(v);
        } else if k.eq_str("payloads") {
            flag.payloads = parse_payloads(v, b)?;
        } else if k.eq_str("aggregation_group_type_index") {
            if !is_null(v) {
                match as_i64(v).and_then(|i| u32::try_from(i).ok()) {
                    Some(i) => flag.aggregation = Some(i),
                    None => flag.aggregation_invalid = true,
                }
            }
        } else if k.eq_str("early_exit") {
            flag.early_exit = v == "true";
        } else if k.eq_str("feature_enrollment") {
            flag.feature_enrollment = v == "true";
        } else if k.eq_str("bucketing_identifier") {
            *bucketing = Some(v);
        } else if k.eq_str("holdout") {
            flag.holdout = parse_holdout(v)?;
        }
    }
    if let Some(v) = variants {
        flag.variants = parse_variants(v, flag, b)?;
    }
    if let Some(g) = groups {
        flag.conditions = parse_conditions(g, flag, b)?;
    }
    Ok(())
}

fn parse_holdout(raw: &str) -> Result<Option<(i64, RolloutThreshold)>, LoadError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(None);
    };
    let (mut id, mut pct) = (None, None);
    while let Some((k, v)) = m.next()? {
        if k.eq_str("id") {
            id = as_i64(v);
        } else if k.eq_str("exclusion_percentage") {
            pct = as_f64(v);
        }
    }
    Ok(match (id, pct) {
        (Some(id), Some(p)) if p.is_finite() => {
            Some((id, RolloutThreshold::from_holdout_percentage(p)))
        }
        _ => None,
    })
}

fn parse_payloads(raw: &str, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(NONE);
    };
    let (mut head, mut prev) = (NONE, NONE);
    while let Some((k, v)) = m.next()? {
        if is_null(v) {
            continue;
        }
        let key = b.json_str(k);
        // A JSON-encoded string is stored decoded (its content is the payload's JSON text);
        // older data holding raw JSON is stored as is.
        let json = store_str(v, b).unwrap_or_else(|| b.text(v));
        let i = b.node(NodeKind::Payload { key, json });
        b.link(&mut head, &mut prev, i);
    }
    Ok(head)
}

fn parse_variants(raw: &str, flag: &mut Flag, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(NONE);
    };
    let mut list = None;
    while let Some((k, v)) = m.next()? {
        if k.eq_str("variants") {
            list = Some(v);
        }
    }
    let Some(mut entries) = list.map(Elements::of).transpose()?.flatten() else {
        return Ok(NONE);
    };
    let (mut head, mut prev) = (NONE, NONE);
    let mut bounds = VariantBounds::new();
    while let Some(entry) = entries.next()? {
        let Some(mut m) = Members::of(entry)? else {
            flag.broken = true;
            continue;
        };
        let (mut key, mut pct) = (None, None);
        while let Some((k, v)) = m.next()? {
            if k.eq_str("key") {
                key = store_str(v, b);
            } else if k.eq_str("rollout_percentage") {
                pct = as_f64(v);
            }
        }
        match (key, pct) {
            (Some(key), Some(p)) => {
                let range = bounds.push(p);
                let i = b.node(NodeKind::Variant {
                    key,
                    start: Limit::new(range.start),
                    end: Limit::new(range.end),
                });
                b.link(&mut head, &mut prev, i);
            }
            _ => flag.broken = true,
        }
    }
    Ok(head)
}

fn parse_conditions(raw: &str, flag: &mut Flag, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let Some(mut entries) = Elements::of(raw)? else {
        flag.broken |= !is_null(raw);
        return Ok(NONE);
    };
    let (mut head, mut prev) = (NONE, NONE);
    while let Some(entry) = entries.next()? {
        if !is_object(entry) {
            flag.broken = true;
            continue;
        }
        let i = parse_condition(entry, b)?;
        b.link(&mut head, &mut prev, i);
    }
    Ok(head)
}

fn parse_condition(raw: &str, b: &mut Builder<'_>) -> Result<u32, LoadError> {
    let mut filters = NONE;
    let mut rollout = Limit::NONE;
    let mut variant = None;
    let mut aggregation = CondAggregation::Inherit;
    let mut broken = false;
    if let Some(mut m) = Members::of(raw)? {
        while let Some((k, v)) = m.next()? {
            if k.eq_str("properties") {
                match Elements::of(v)? {
                    Some(mut entries) => {
                        let mut prev = NONE;
                        while let Some(entry) = entries.next()? {
                            let i = parse_filter(entry, b)?;
                            b.link(&mut filters, &mut prev, i);
                        }
                    }
                    None => broken |= !is_null(v),
                }
            } else if k.eq_str("rollout_percentage") {
                if !is_null(v) {
                    match as_f64(v) {
                        Some(p) => {
                            rollout = Limit::new(RolloutThreshold::from_percentage(p).limit());
                        }
                        None => broken = true,
                    }
                }
            } else if k.eq_str("variant") {
                variant = store_nonempty_str(v, b);
            } else if k.eq_str("aggregation_group_type_index") {
                aggregation = if is_null(v) {
                    CondAggregation::Null
                } else {
                    match as_i64(v).and_then(|i| u32::try_from(i).ok()) {
                        Some(i) => CondAggregation::Index(i),
                        None => CondAggregation::Invalid,
                    }
                };
            }
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
