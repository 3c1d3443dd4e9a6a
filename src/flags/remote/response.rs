//! A `/flags` answer parsed into bounded storage (`N` flags, `B` bytes of text), from the v2
//! `flags` shape or the legacy `featureFlags` shape.

use core::fmt;

use super::error::{FlagErrorKind, FlagErrors};
use crate::flags::outcome::FlagValue;
use crate::flags::value::PropertyValue;
use crate::json::read::{raw_value, Members, ReadError, Reader, Str, Token};
use crate::managed::{ManagedSlice, SliceVec};

/// A span of text in [`RemoteFlags`]' byte arena; `start == u32::MAX` means "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NONE: Self = Self {
        start: u32::MAX,
        len: 0,
    };

    const fn is_none(self) -> bool {
        self.start == u32::MAX
    }
}

const ENABLED: u8 = 1;
const FAILED: u8 = 2;
const HAS_ID: u8 = 4;
const HAS_VERSION: u8 = 8;
const HAS_EXPERIMENT_KNOWN: u8 = 16;
const HAS_EXPERIMENT: u8 = 32;

/// One stored flag: 60 bytes on 32- and 64-bit targets (every field 4-byte aligned).
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Span,
    variant: Span,
    payload: Span,
    code: Span,
    description: Span,
    /// `i64` as two `u32` words (high, low), keeping the entry 4-byte aligned.
    id: [u32; 2],
    version: [u32; 2],
    bits: u8,
}

impl Entry {
    /// An unused slot (all zeros, so empty storage lands in `.bss`).
    const EMPTY: Self = Self {
        key: Span { start: 0, len: 0 },
        variant: Span { start: 0, len: 0 },
        payload: Span { start: 0, len: 0 },
        code: Span { start: 0, len: 0 },
        description: Span { start: 0, len: 0 },
        id: [0; 2],
        version: [0; 2],
        bits: 0,
    };
}

const fn split(v: i64) -> [u32; 2] {
    let u = v as u64;
    [(u >> 32) as u32, u as u32]
}

const fn join(w: [u32; 2]) -> i64 {
    (((w[0] as u64) << 32) | w[1] as u64) as i64
}

/// What a `/flags` response needs (or a [`RemoteFlags`] holds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RemoteRequirements {
    /// Flags.
    pub flags: usize,
    /// Bytes of text (keys, variants, payloads, reasons, the request id).
    pub bytes: usize,
}

impl RemoteRequirements {
    /// RAM a [`RemoteStorage`] with these capacities takes, plus the [`RemoteFlags`] over it,
    /// in bytes (an upper bound).
    #[must_use]
    pub const fn remote_flags_bytes(&self) -> usize {
        self.flags * size_of::<Entry>() + self.bytes + 128
    }
}

impl fmt::Display for RemoteRequirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} flags, {} bytes of text", self.flags, self.bytes)
    }
}

/// One flag of a `/flags` answer, borrowed from the [`RemoteFlags`] that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct RemoteFlag<'a> {
    /// The flag key.
    pub key: &'a str,
    /// The value: the variant when the server sent a string variant, otherwise `enabled`. A
    /// holdout comes back as the variant string `holdout-<id>` (a [`FlagValue::Variant`]).
    /// `false` when the variant is longer than [`MAX_VARIANT_LEN`](crate::flags::MAX_VARIANT_LEN)
    /// (then `failed` is set).
    pub value: FlagValue,
    /// `enabled` as sent (legacy shape: the value is not `false`).
    pub enabled: bool,
    /// The variant, if the server sent a string.
    pub variant: Option<&'a str>,
    /// The payload's JSON text: the decoded content of `metadata.payload` (a JSON-encoded
    /// string), or the raw JSON when the server sent a non-string value. It is usually, but
    /// not necessarily, valid JSON (`"this is a string"` decodes to `this is a string`).
    pub payload: Option<&'a str>,
    /// `metadata.id`.
    pub id: Option<i64>,
    /// `metadata.version`.
    pub version: Option<i64>,
    /// `reason.code` (`condition_match`, ...).
    pub reason_code: Option<&'a str>,
    /// `reason.description` (`Matched condition set 1`).
    pub reason_description: Option<&'a str>,
    /// `metadata.has_experiment`, when sent as a boolean.
    pub has_experiment: Option<bool>,
    /// `failed: true`: the server could not evaluate this flag; also set when it sent a variant
    /// longer than [`MAX_VARIANT_LEN`](crate::flags::MAX_VARIANT_LEN).
    pub failed: bool,
}

impl<'a> RemoteFlag<'a> {
    /// The `$feature_flag_reason` to report: the description, else the code (NODE's rule).
    #[must_use]
    pub fn reason(&self) -> Option<&'a str> {
        self.reason_description.or(self.reason_code)
    }
}

/// A `/flags` answer, parsed into fixed capacities: up to `N` flags and `B` bytes of text.
///
/// # Memory
///
/// `N × 60 + B + ~56` bytes (see [`RemoteRequirements::remote_flags_bytes`]); text is each
/// flag's key, variant, payload, reason code and description, plus the request id.
///
/// # Parsing
///
/// [`parse`](Self::parse) accepts both response shapes, as posthog-python's
/// `normalize_flags_response` and posthog-node's (`@posthog/core`) `normalizeFlagsResponse` do:
///
/// - **v2**: `flags: {key: {enabled, variant, failed, reason: {code, description},
///   metadata: {id, version, payload, has_experiment}}}`;
/// - **legacy**: `featureFlags: {key: true | false | "variant"}` with
///   `featureFlagPayloads: {key: "<json>"}` (only payloads of listed flags are kept).
///
/// When both are present `flags` wins (as in posthog-node and posthog-python). Top-level
/// `errorsWhileComputingFlags`, `quotaLimited`, `requestId`, `evaluatedAt` and
/// `minimalFlagCalledEvents` are read; everything else is validated and skipped. When
/// `quotaLimited` contains `"feature_flags"` every flag is absent, as posthog-node treats it.
/// Within a flag, fields of the wrong type count as absent; a flag that is not an object is
/// skipped. For duplicate keys the last one wins, as with `JSON.parse`.
///
/// Parsing runs twice over the same bytes: a dry run validates everything and measures it,
/// and only if it succeeds and fits does the second pass replace the contents. So a malformed,
/// truncated or too-large body leaves the previous answer untouched.
#[derive(Debug)]
pub struct RemoteFlags<'r> {
    /// Sorted by key, no duplicates.
    flags: SliceVec<'r, Entry>,
    bytes: SliceVec<'r, u8>,
    request_id: Span,
    evaluated_at: Option<u64>,
    errors_while_computing: bool,
    quota_limited: bool,
    minimal_flag_called_events: bool,
    loaded: bool,
}

/// Zeroed storage for a [`RemoteFlags`]: `N` flags (60 bytes each) and `B` bytes of text.
/// `const` and all zeros, so a `static` one lands in `.bss`.
#[derive(Clone, Debug)]
pub struct RemoteStorage<const N: usize, const B: usize> {
    flags: [Entry; N],
    bytes: [u8; B],
}

impl<const N: usize, const B: usize> Default for RemoteStorage<N, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const B: usize> RemoteStorage<N, B> {
    /// Empty storage.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            flags: [Entry::EMPTY; N],
            bytes: [0; B],
        }
    }
}

impl<'r> RemoteFlags<'r> {
    /// An empty answer (nothing loaded) over `storage`.
    pub fn new<const N: usize, const B: usize>(storage: &'r mut RemoteStorage<N, B>) -> Self {
        Self::from_parts(
            ManagedSlice::Borrowed(&mut storage.flags),
            ManagedSlice::Borrowed(&mut storage.bytes),
        )
    }

    /// An empty answer on the heap with `capacity`, allocated directly (never on the stack).
    #[cfg(feature = "std")]
    #[must_use]
    pub fn with_capacity(capacity: RemoteRequirements) -> RemoteFlags<'static> {
        RemoteFlags::from_parts(
            ManagedSlice::owned(Entry::EMPTY, capacity.flags),
            ManagedSlice::owned(0, capacity.bytes),
        )
    }

    fn from_parts(flags: ManagedSlice<'r, Entry>, bytes: ManagedSlice<'r, u8>) -> Self {
        Self {
            flags: SliceVec::new(flags),
            bytes: SliceVec::new(bytes),
            request_id: Span::NONE,
            evaluated_at: None,
            errors_while_computing: false,
            quota_limited: false,
            minimal_flag_called_events: false,
            loaded: false,
        }
    }

    /// The capacities of this answer's storage.
    #[must_use]
    pub fn capacity(&self) -> RemoteRequirements {
        RemoteRequirements {
            flags: self.flags.capacity(),
            bytes: self.bytes.capacity(),
        }
    }

    /// What the current answer uses.
    #[must_use]
    pub fn usage(&self) -> RemoteRequirements {
        RemoteRequirements {
            flags: self.flags.len(),
            bytes: self.bytes.len(),
        }
    }

    /// Measures what `body` needs without storing anything. The byte count is an upper bound
    /// for the legacy shape (payloads of flags absent from `featureFlags` are counted too).
    ///
    /// # Errors
    /// The same parse errors as [`parse`](Self::parse), never a capacity error.
    pub fn requirements(body: &[u8]) -> Result<RemoteRequirements, RemoteError> {
        let mut b = Builder {
            out: None,
            need: RemoteRequirements::default(),
        };
        parse_body(body, &mut b)?;
        Ok(b.need)
    }

    /// Replaces the contents with the `/flags` (or `/decide`) response `body`. On error
    /// nothing changes.
    ///
    /// # Errors
    /// - [`RemoteError::Json`]: `body` is not valid JSON (or is truncated);
    /// - [`RemoteError::Shape`]: the top level, `flags` or `featureFlags` is not an object;
    /// - [`RemoteError::TooManyFlags`] / [`RemoteError::TextFull`]: the answer exceeds `N` flags
    ///   or `B` bytes of text; the error names the size needed.
    pub fn parse(&mut self, body: &[u8]) -> Result<(), RemoteError> {
        let need = Self::requirements(body)?;
        let cap = self.capacity();
        if need.flags > cap.flags {
            return Err(RemoteError::TooManyFlags {
                needed: need.flags,
                capacity: cap.flags,
            });
        }
        if need.bytes > cap.bytes {
            return Err(RemoteError::TextFull {
                needed: need.bytes,
                capacity: cap.bytes,
            });
        }
        self.clear();
        let mut b = Builder {
            out: Some(&mut *self),
            need: RemoteRequirements::default(),
        };
        // Cannot fail: the same bytes parsed above and everything fits.
        let result = parse_body(body, &mut b);
        if let Err(e) = result {
            self.clear();
            return Err(e);
        }
        self.finish();
        self.loaded = true;
        Ok(())
    }

    /// Sorts by key and removes duplicate keys, keeping the last (document order).
    fn finish(&mut self) {
        let bytes = &self.bytes;
        let text = |s: &Span| -> &[u8] { span_bytes(bytes, *s) };
        let flags = &mut self.flags;
        // Insertion sort: stable, no allocation; N is small.
        for i in 1..flags.len() {
            let mut j = i;
            while j > 0 {
                let (Some(a), Some(b)) = (flags.get(j - 1), flags.get(j)) else {
                    break;
                };
                if text(&a.key) <= text(&b.key) {
                    break;
                }
                flags.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut w = 0usize;
        for r in 0..flags.len() {
            let (Some(cur), next) = (flags.get(r).copied(), flags.get(r + 1)) else {
                break;
            };
            if next.is_some_and(|n| text(&n.key) == text(&cur.key)) {
                continue;
            }
            if let Some(slot) = flags.get_mut(w) {
                *slot = cur;
            }
            w += 1;
        }
        flags.truncate(w);
    }

    /// Forgets the answer and lends the whole text storage as scratch space (the client writes
    /// a `/flags` request body there while its query is open; the answer replaces it).
    pub(crate) fn scratch(&mut self) -> &mut [u8] {
        self.clear();
        self.bytes.spare()
    }

    /// Forgets the answer.
    pub fn clear(&mut self) {
        self.flags.clear();
        self.bytes.clear();
        self.request_id = Span::NONE;
        self.evaluated_at = None;
        self.errors_while_computing = false;
        self.quota_limited = false;
        self.minimal_flag_called_events = false;
        self.loaded = false;
    }

    /// Whether an answer has been parsed (and not cleared since).
    #[must_use]
    pub const fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Number of flags in the answer.
    #[must_use]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether the answer holds no flag.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    fn text(&self, s: Span) -> Option<&str> {
        if s.is_none() {
            return None;
        }
        core::str::from_utf8(span_bytes(&self.bytes, s)).ok()
    }

    fn view(&self, e: &Entry) -> RemoteFlag<'_> {
        let variant = self.text(e.variant);
        let enabled = e.bits & ENABLED != 0;
        // A variant too long for a `FlagValue` reads as a flag the server failed to evaluate
        // (`evaluation_failed`), never as a cut or made-up value.
        let value = variant.map_or(Ok(FlagValue::Bool(enabled)), FlagValue::variant);
        RemoteFlag {
            key: self.text(e.key).unwrap_or_default(),
            value: value.unwrap_or(FlagValue::Bool(false)),
            enabled,
            variant,
            payload: self.text(e.payload),
            id: (e.bits & HAS_ID != 0).then(|| join(e.id)),
            version: (e.bits & HAS_VERSION != 0).then(|| join(e.version)),
            reason_code: self.text(e.code),
            reason_description: self.text(e.description),
            has_experiment: (e.bits & HAS_EXPERIMENT_KNOWN != 0)
                .then_some(e.bits & HAS_EXPERIMENT != 0),
            failed: e.bits & FAILED != 0 || value.is_err(),
        }
    }

    /// The flag `key`, or `None` if the answer does not have it (or was quota limited).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<RemoteFlag<'_>> {
        let i = self
            .flags
            .binary_search_by(|e| span_bytes(&self.bytes, e.key).cmp(key.as_bytes()))
            .ok()?;
        self.flags.get(i).map(|e| self.view(e))
    }

    /// Every flag, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = RemoteFlag<'_>> + Clone + '_ {
        self.flags.iter().map(|e| self.view(e))
    }

    /// Every `(key, value)`, sorted by key: the input of
    /// [`write_flag_properties`](crate::flags::called::write_flag_properties).
    /// A variant too long for a [`FlagValue`] is left out.
    pub fn values(&self) -> impl Iterator<Item = (&str, FlagValue)> + Clone + '_ {
        self.flags.iter().filter_map(|e| {
            let f = self.view(e);
            let cut = e.bits & FAILED == 0 && f.failed;
            (!cut).then_some((f.key, f.value))
        })
    }

    /// Whether `quotaLimited` contained `"feature_flags"` (then every flag is absent).
    #[must_use]
    pub const fn quota_limited(&self) -> bool {
        self.quota_limited
    }

    /// `errorsWhileComputingFlags`: the server failed on some flags (missing ones may be
    /// wrong rather than absent).
    #[must_use]
    pub const fn errors_while_computing(&self) -> bool {
        self.errors_while_computing
    }

    /// `requestId`, for `$feature_flag_request_id`.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.text(self.request_id)
    }

    /// `evaluatedAt` in Unix milliseconds, for `$feature_flag_evaluated_at`.
    #[must_use]
    pub const fn evaluated_at(&self) -> Option<u64> {
        self.evaluated_at
    }

    /// `minimalFlagCalledEvents: true`: the server asks for minimal `$feature_flag_called`
    /// events (for flags whose `has_experiment` is exactly `false`).
    #[must_use]
    pub const fn minimal_flag_called_events(&self) -> bool {
        self.minimal_flag_called_events
    }

    /// The `$feature_flag_error` for a single-flag read of `key` from this answer, following
    /// posthog-python: `quota_limited` alone when quota limited; otherwise
    /// `errors_while_computing_flags` if set, then `flag_missing` (key absent) or
    /// `evaluation_failed` (`failed: true`). (posthog-node reports
    /// `quota_limited,flag_missing` in the quota case.)
    #[must_use]
    pub fn errors_for(&self, key: &str) -> FlagErrors {
        if self.quota_limited {
            return FlagErrors::new().with(FlagErrorKind::QuotaLimited);
        }
        let mut e = FlagErrors::new();
        if self.errors_while_computing {
            e.insert(FlagErrorKind::ErrorsWhileComputing);
        }
        match self.get(key) {
            None => e.insert(FlagErrorKind::FlagMissing),
            Some(f) if f.failed => e.insert(FlagErrorKind::EvaluationFailed),
            Some(_) => {}
        }
        e
    }
}

fn span_bytes(bytes: &[u8], s: Span) -> &[u8] {
    let start = s.start as usize;
    bytes
        .get(start..start.saturating_add(s.len as usize))
        .unwrap_or_default()
}

/// Writes into a [`RemoteFlags`], or (dry run) only measures.
struct Builder<'s, 'r> {
    out: Option<&'s mut RemoteFlags<'r>>,
    need: RemoteRequirements,
}

impl Builder<'_, '_> {
    fn committing(&self) -> bool {
        self.out.is_some()
    }

    fn text(&mut self, s: &str) -> Span {
        let span = Span {
            start: self.need.bytes as u32,
            len: s.len() as u32,
        };
        self.need.bytes += s.len();
        if let Some(out) = self.out.as_deref_mut() {
            // Capacity was checked by the dry run.
            let _ = out.bytes.extend_from_slice(s.as_bytes());
        }
        span
    }

    /// Stores the decoded content of a JSON string.
    fn json_str(&mut self, s: Str<'_>) -> Span {
        if let Some(plain) = s.as_str() {
            return self.text(plain);
        }
        let len = s.decoded_len();
        let span = Span {
            start: self.need.bytes as u32,
            len: len as u32,
        };
        self.need.bytes += len;
        if let Some(out) = self.out.as_deref_mut() {
            let mut tmp = [0u8; 4];
            for c in s.chars() {
                let _ = out
                    .bytes
                    .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
        span
    }

    /// Stores a raw JSON string value decoded (`None` if it is not a string).
    fn str_value(&mut self, raw: &str) -> Option<Span> {
        match Reader::of_str(raw).next() {
            Ok(Some(Token::Str(s))) => Some(self.json_str(s)),
            _ => None,
        }
    }

    /// Stores a payload: a JSON-encoded string decoded, other JSON as is, `null` as none.
    fn payload(&mut self, raw: &str) -> Span {
        if raw == "null" {
            return Span::NONE;
        }
        match self.str_value(raw) {
            Some(s) => s,
            None => self.text(raw),
        }
    }

    fn push(&mut self, e: Entry) {
        self.need.flags += 1;
        if let Some(out) = self.out.as_deref_mut() {
            let _ = out.flags.push(e);
        }
    }
}

fn as_i64(raw: &str) -> Option<i64> {
    match PropertyValue::from_json(raw).ok()? {
        PropertyValue::Int(i) => Some(i),
        _ => None,
    }
}

/// The top-level members the parser reads (last duplicate wins).
#[derive(Default)]
struct Top<'a> {
    flags: Option<&'a str>,
    legacy: Option<&'a str>,
    payloads: Option<&'a str>,
    errors: bool,
    quota: bool,
    request_id: Option<&'a str>,
    evaluated_at: Option<u64>,
    minimal: bool,
}

fn parse_body(doc: &[u8], b: &mut Builder<'_, '_>) -> Result<(), RemoteError> {
    let mut r = Reader::new(doc);
    if r.next()? != Some(Token::ObjectStart) {
        return Err(RemoteError::Shape { offset: 0 });
    }
    let mut top = Top::default();
    while let Some(Token::Key(key)) = r.next()? {
        let raw = raw_value(&mut r)?;
        // The value ends where the reader stopped.
        let start = r.offset().saturating_sub(raw.len());
        if key.eq_str("flags") {
            top.flags = object_or_null(raw, start)?;
        } else if key.eq_str("featureFlags") {
            top.legacy = object_or_null(raw, start)?;
        } else if key.eq_str("featureFlagPayloads") {
            top.payloads = Some(raw).filter(|p| p.starts_with('{'));
        } else if key.eq_str("errorsWhileComputingFlags") {
            top.errors = raw == "true";
        } else if key.eq_str("quotaLimited") {
            top.quota = quota_limits_flags(raw)?;
        } else if key.eq_str("requestId") {
            top.request_id = Some(raw);
        } else if key.eq_str("evaluatedAt") {
            top.evaluated_at = as_i64(raw).and_then(|v| u64::try_from(v).ok());
        } else if key.eq_str("minimalFlagCalledEvents") {
            top.minimal = raw == "true";
        }
    }
    // The reader rejects anything but whitespace after the top-level value.
    if r.next()?.is_some() {
        return Err(RemoteError::Shape { offset: r.offset() });
    }

    let request_id = top.request_id.and_then(|raw| b.str_value(raw));
    if !top.quota {
        if let Some(flags) = top.flags {
            parse_v2_flags(flags, b)?;
        } else if let Some(legacy) = top.legacy {
            parse_legacy_flags(legacy, top.payloads, b)?;
        }
    }
    if let Some(out) = b.out.as_deref_mut() {
        out.request_id = request_id.unwrap_or(Span::NONE);
        out.evaluated_at = top.evaluated_at;
        out.errors_while_computing = top.errors;
        out.quota_limited = top.quota;
        out.minimal_flag_called_events = top.minimal;
    }
    Ok(())
}

/// An object's raw text, `None` for `null`, or a shape error at `offset`.
fn object_or_null(raw: &str, offset: usize) -> Result<Option<&str>, RemoteError> {
    match raw.as_bytes().first() {
        Some(b'{') => Ok(Some(raw)),
        _ if raw == "null" => Ok(None),
        _ => Err(RemoteError::Shape { offset }),
    }
}

/// Whether a `quotaLimited` value (normally an array of strings) lists `"feature_flags"`.
fn quota_limits_flags(raw: &str) -> Result<bool, RemoteError> {
    let mut r = Reader::of_str(raw);
    if r.next()? != Some(Token::ArrayStart) {
        return Ok(false);
    }
    let mut found = false;
    while let Some(tok) = r.next()? {
        match tok {
            Token::Str(s) if r.depth() == 1 => found |= s.eq_str("feature_flags"),
            _ => {}
        }
    }
    Ok(found)
}

const fn new_entry(key: Span) -> Entry {
    Entry {
        key,
        variant: Span::NONE,
        payload: Span::NONE,
        code: Span::NONE,
        description: Span::NONE,
        id: [0; 2],
        version: [0; 2],
        bits: 0,
    }
}

fn parse_v2_flags(raw: &str, b: &mut Builder<'_, '_>) -> Result<(), RemoteError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(());
    };
    while let Some((key, body)) = m.next()? {
        let Some(mut fields) = Members::of(body)? else {
            // A flag that is not an object carries no value: skip it.
            continue;
        };
        let mut e = new_entry(b.json_str(key));
        while let Some((k, v)) = fields.next()? {
            if k.eq_str("enabled") {
                set_bit(&mut e.bits, ENABLED, v == "true");
            } else if k.eq_str("variant") {
                e.variant = b.str_value(v).unwrap_or(Span::NONE);
            } else if k.eq_str("failed") {
                set_bit(&mut e.bits, FAILED, v == "true");
            } else if k.eq_str("metadata") {
                parse_metadata(v, &mut e, b)?;
            } else if k.eq_str("reason") {
                let Some(mut reason) = Members::of(v)? else {
                    e.code = Span::NONE;
                    e.description = Span::NONE;
                    continue;
                };
                while let Some((rk, rv)) = reason.next()? {
                    if rk.eq_str("code") {
                        e.code = b.str_value(rv).unwrap_or(Span::NONE);
                    } else if rk.eq_str("description") {
                        e.description = b.str_value(rv).unwrap_or(Span::NONE);
                    }
                }
            }
        }
        b.push(e);
    }
    Ok(())
}

fn set_bit(bits: &mut u8, bit: u8, on: bool) {
    if on {
        *bits |= bit;
    } else {
        *bits &= !bit;
    }
}

fn parse_metadata(raw: &str, e: &mut Entry, b: &mut Builder<'_, '_>) -> Result<(), RemoteError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(());
    };
    while let Some((k, v)) = m.next()? {
        if k.eq_str("id") {
            let id = as_i64(v);
            set_bit(&mut e.bits, HAS_ID, id.is_some());
            e.id = split(id.unwrap_or(0));
        } else if k.eq_str("version") {
            let version = as_i64(v);
            set_bit(&mut e.bits, HAS_VERSION, version.is_some());
            e.version = split(version.unwrap_or(0));
        } else if k.eq_str("payload") {
            e.payload = b.payload(v);
        } else if k.eq_str("has_experiment") {
            let known = matches!(v, "true" | "false");
            set_bit(&mut e.bits, HAS_EXPERIMENT_KNOWN, known);
            set_bit(&mut e.bits, HAS_EXPERIMENT, v == "true");
        }
    }
    Ok(())
}

fn parse_legacy_flags(
    raw: &str,
    payloads: Option<&str>,
    b: &mut Builder<'_, '_>,
) -> Result<(), RemoteError> {
    let Some(mut m) = Members::of(raw)? else {
        return Ok(());
    };
    let first = b.out.as_deref().map_or(0, |o| o.flags.len());
    while let Some((key, v)) = m.next()? {
        // Normalised as posthog-node does: enabled = value !== false, variant = a string value.
        let mut e = new_entry(b.json_str(key));
        set_bit(&mut e.bits, ENABLED, v != "false");
        e.variant = b.str_value(v).unwrap_or(Span::NONE);
        b.push(e);
    }
    let Some(mut m) = payloads.map(Members::of).transpose()?.flatten() else {
        return Ok(());
    };
    while let Some((key, v)) = m.next()? {
        if v == "null" {
            continue;
        }
        if !b.committing() {
            // Dry run: count it (an upper bound if the flag turns out to be absent).
            b.payload(v);
            continue;
        }
        // Attach to every entry of this key (duplicates collapse later; they share the text).
        let Some(out) = b.out.as_deref() else {
            continue;
        };
        let listed = out
            .flags
            .get(first..)
            .unwrap_or_default()
            .iter()
            .any(|e| key_matches(span_bytes(&out.bytes, e.key), key));
        if !listed {
            continue;
        }
        let span = b.payload(v);
        if let Some(out) = b.out.as_deref_mut() {
            let bytes = &out.bytes;
            for e in out.flags.iter_mut().skip(first) {
                if key_matches(span_bytes(bytes, e.key), key) {
                    e.payload = span;
                }
            }
        }
    }
    Ok(())
}

/// Whether stored (decoded) key bytes equal the decoded content of `key`.
fn key_matches(stored: &[u8], key: Str<'_>) -> bool {
    core::str::from_utf8(stored).is_ok_and(|s| key.eq_str(s))
}

/// A `/flags` response could not be used. The previous answer is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RemoteError {
    /// The body is not valid JSON (or is truncated).
    Json(ReadError),
    /// The body is JSON but not a `/flags` answer: the top level, `flags` or `featureFlags` is
    /// not an object.
    Shape {
        /// Byte offset of the offending value.
        offset: usize,
    },
    /// The answer has more flags than the store holds.
    TooManyFlags {
        /// Flags in the answer.
        needed: usize,
        /// The store's flag capacity (`N`).
        capacity: usize,
    },
    /// The answer's text (keys, variants, payloads, reasons) exceeds the store's text capacity.
    TextFull {
        /// Bytes of text needed.
        needed: usize,
        /// The store's text capacity (`B`).
        capacity: usize,
    },
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Json(e) => write!(f, "invalid /flags response: {e}"),
            Self::Shape { offset } => {
                write!(
                    f,
                    "not a /flags response (unexpected value at byte {offset})"
                )
            }
            Self::TooManyFlags { needed, capacity } => write!(
                f,
                "/flags response has {needed} flags, capacity is {capacity}"
            ),
            Self::TextFull { needed, capacity } => write!(
                f,
                "/flags response needs {needed} bytes of text, capacity is {capacity}"
            ),
        }
    }
}

impl core::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ReadError> for RemoteError {
    fn from(e: ReadError) -> Self {
        Self::Json(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const V2: &str = r#"{
        "flags": {
            "zeta": {"key": "zeta", "enabled": true, "variant": null,
                "reason": {"code": "condition_match", "description": "Matched condition set 1", "condition_index": 0},
                "metadata": {"id": 11, "version": 3, "payload": "{\"a\": 1}", "has_experiment": false}},
            "alpha": {"enabled": true, "variant": "blue",
                "metadata": {"id": 9007199254740993, "payload": null, "has_experiment": true}, "failed": false},
            "off": {"enabled": false, "reason": {"code": "no_condition_match"}, "failed": true},
            "esc\u0061ped": {"enabled": true, "variant": "v\u00e9", "metadata": {"payload": "\"caf\\u00e9\""}},
            "raw": {"enabled": true, "metadata": {"payload": {"x": [1, 2]}, "version": "7"}},
            "notobj": 3,
            "dup": {"enabled": false},
            "dup": {"enabled": true, "variant": "second"}
        },
        "errorsWhileComputingFlags": true,
        "requestId": "req-\u0031",
        "evaluatedAt": 1737312368000,
        "minimalFlagCalledEvents": true,
        "quotaLimited": [],
        "extra": {"ignored": [1, 2, {"deep": null}]}
    }"#;

    #[test]
    fn parses_v2() {
        let mut r_st = RemoteStorage::<8, 512>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        assert!(!r.is_loaded());
        r.parse(V2.as_bytes()).unwrap();
        assert!(r.is_loaded());
        assert_eq!(r.len(), 6);
        let keys: Vec<&str> = r.iter().map(|f| f.key).collect();
        assert_eq!(keys, ["alpha", "dup", "escaped", "off", "raw", "zeta"]);

        let z = r.get("zeta").unwrap();
        assert_eq!(z.value, FlagValue::Bool(true));
        assert_eq!(z.variant, None);
        assert_eq!(z.payload, Some(r#"{"a": 1}"#));
        assert_eq!((z.id, z.version), (Some(11), Some(3)));
        assert_eq!(z.reason_code, Some("condition_match"));
        assert_eq!(z.reason(), Some("Matched condition set 1"));
        assert_eq!(z.has_experiment, Some(false));
        assert!(!z.failed);

        let a = r.get("alpha").unwrap();
        assert_eq!(a.value, FlagValue::variant("blue").unwrap());
        assert_eq!(a.id, Some(9_007_199_254_740_993));
        assert_eq!(
            (a.version, a.payload, a.has_experiment),
            (None, None, Some(true))
        );
        assert_eq!(a.reason(), None);

        let off = r.get("off").unwrap();
        assert_eq!(off.value, FlagValue::Bool(false));
        assert!(off.failed);
        assert_eq!(off.reason(), Some("no_condition_match"));
        assert_eq!(off.has_experiment, None);

        let e = r.get("escaped").unwrap();
        assert_eq!(e.value, FlagValue::variant("vé").unwrap());
        // The payload is a JSON string whose own JSON text keeps its escape.
        assert_eq!(e.payload, Some(r#""caf\u00e9""#));

        let raw = r.get("raw").unwrap();
        assert_eq!(raw.payload, Some(r#"{"x": [1, 2]}"#));
        assert_eq!(raw.version, None);

        assert_eq!(
            r.get("dup").unwrap().value,
            FlagValue::variant("second").unwrap()
        );
        assert!(r.get("notobj").is_none());
        assert!(r.get("missing").is_none());

        assert!(r.errors_while_computing());
        assert!(!r.quota_limited());
        assert_eq!(r.request_id(), Some("req-1"));
        assert_eq!(r.evaluated_at(), Some(1_737_312_368_000));
        assert!(r.minimal_flag_called_events());

        let vals: Vec<(&str, FlagValue)> = r.values().collect();
        assert_eq!(vals[0], ("alpha", FlagValue::variant("blue").unwrap()));
        // The duplicate "dup" collapsed; its text stays in the arena.
        let need = RemoteFlags::requirements(V2.as_bytes()).unwrap();
        assert_eq!(need.flags, r.usage().flags + 1);
        assert_eq!(need.bytes, r.usage().bytes);
    }

    #[test]
    fn parses_legacy_with_payloads_in_any_order() {
        let doc = br#"{"featureFlagPayloads": {"b": "{\"foo\": 1}", "ghost": "[1]", "a": null, "c": {"raw": true}},
            "featureFlags": {"a": true, "b": "variant-2", "c": false, "n": null},
            "errorsWhileComputingFlags": false}"#;
        let mut r_st = RemoteStorage::<8, 256>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(doc).unwrap();
        let b = r.get("b").unwrap();
        assert_eq!(b.value, FlagValue::variant("variant-2").unwrap());
        assert!(b.enabled);
        assert_eq!(b.payload, Some(r#"{"foo": 1}"#));
        let a = r.get("a").unwrap();
        assert_eq!((a.value, a.payload), (FlagValue::Bool(true), None));
        let c = r.get("c").unwrap();
        assert_eq!(
            (c.value, c.payload),
            (FlagValue::Bool(false), Some(r#"{"raw": true}"#))
        );
        // `value !== false`: null counts as enabled in the legacy normalisation.
        assert_eq!(r.get("n").unwrap().value, FlagValue::Bool(true));
        assert!(r.get("ghost").is_none());
        assert_eq!(r.len(), 4);
        // The dry run counts the ghost payload: an upper bound.
        let need = RemoteFlags::requirements(doc).unwrap();
        assert_eq!(need.bytes, r.usage().bytes + 3);
        assert!(r.request_id().is_none());
    }

    #[test]
    fn v2_wins_over_legacy() {
        let mut r_st = RemoteStorage::<4, 64>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(br#"{"featureFlags": {"a": true}, "flags": {"b": {"enabled": true}}}"#)
            .unwrap();
        assert!(r.get("a").is_none());
        assert!(r.get("b").is_some());
    }

    #[test]
    fn quota_limited_means_no_flags() {
        let mut r_st = RemoteStorage::<4, 64>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(br#"{"flags": {"a": {"enabled": true}}, "quotaLimited": ["recordings", "feature_flags"], "requestId": "r"}"#)
            .unwrap();
        assert!(r.quota_limited());
        assert!(r.is_empty());
        assert_eq!(r.request_id(), Some("r"));
        assert_eq!(r.errors_for("a").to_string(), "quota_limited");
        // Nested or non-string mentions do not count.
        r.parse(br#"{"flags": {"a": {"enabled": true}}, "quotaLimited": [["feature_flags"], 1]}"#)
            .unwrap();
        assert!(!r.quota_limited());
        assert_eq!(r.len(), 1);
        r.parse(br#"{"flags": {}, "quotaLimited": "feature_flags"}"#)
            .unwrap();
        assert!(!r.quota_limited());
    }

    #[test]
    fn errors_for_a_key() {
        let mut r_st = RemoteStorage::<4, 64>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(
            br#"{"flags": {"ok": {"enabled": true}, "bad": {"enabled": false, "failed": true}}}"#,
        )
        .unwrap();
        assert!(r.errors_for("ok").is_empty());
        assert_eq!(r.errors_for("bad").to_string(), "evaluation_failed");
        assert_eq!(r.errors_for("nope").to_string(), "flag_missing");
        r.parse(br#"{"flags": {"ok": {"enabled": true}}, "errorsWhileComputingFlags": true}"#)
            .unwrap();
        assert_eq!(
            r.errors_for("ok").to_string(),
            "errors_while_computing_flags"
        );
        assert_eq!(
            r.errors_for("nope").to_string(),
            "errors_while_computing_flags,flag_missing"
        );
    }

    #[test]
    fn a_variant_too_long_for_a_flag_value_reads_as_a_failed_flag() {
        let long = "l".repeat(crate::flags::MAX_VARIANT_LEN + 1);
        let doc = std::format!(
            r#"{{"flags": {{"long": {{"enabled": true, "variant": "{long}"}},
                "ok": {{"enabled": true, "variant": "blue"}}}}}}"#
        );
        let mut r_st = RemoteStorage::<4, 256>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(doc.as_bytes()).unwrap();
        let f = r.get("long").unwrap();
        assert!(f.failed);
        assert_eq!(f.value, FlagValue::Bool(false));
        assert_eq!(
            f.variant,
            Some(long.as_str()),
            "the text is still there to read"
        );
        assert_eq!(r.errors_for("long").to_string(), "evaluation_failed");
        let keys: Vec<&str> = r.values().map(|(k, _)| k).collect();
        assert_eq!(keys, ["ok"]);
    }

    #[test]
    fn empty_and_odd_documents() {
        let mut r_st = RemoteStorage::<4, 64>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        for doc in [
            &b"{}"[..],
            br#"{"flags": null}"#,
            br#"{"featureFlags": null, "featureFlagPayloads": 5}"#,
            br#"{"flags": {}, "requestId": 5, "evaluatedAt": -1}"#,
            br#"{"flags": {}, "evaluatedAt": 1.5e12}"#,
        ] {
            r.parse(doc).unwrap();
            assert!(r.is_loaded() && r.is_empty());
            assert_eq!((r.request_id(), r.evaluated_at()), (None, None));
        }
        for (doc, offset) in [
            (&b"[]"[..], 0),
            (br#"{"flags": 3}"#, 10),
            (br#"{"featureFlags": []}"#, 17),
            (br#""x""#, 0),
        ] {
            assert_eq!(r.parse(doc), Err(RemoteError::Shape { offset }), "{doc:?}");
        }
    }

    #[test]
    fn capacity_errors_keep_the_previous_answer() {
        let mut r_st = RemoteStorage::<2, 16>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(br#"{"flags": {"a": {"enabled": true}}, "requestId": "r1"}"#)
            .unwrap();
        assert_eq!(
            r.parse(br#"{"flags": {"a": {}, "b": {}, "c": {}}}"#),
            Err(RemoteError::TooManyFlags {
                needed: 3,
                capacity: 2
            })
        );
        assert_eq!(
            r.parse(br#"{"flags": {"a": {"variant": "0123456789abcdef"}}}"#),
            Err(RemoteError::TextFull {
                needed: 17,
                capacity: 16
            })
        );
        assert_eq!(r.get("a").unwrap().value, FlagValue::Bool(true));
        assert_eq!(r.request_id(), Some("r1"));
        // Exactly full fits.
        r.parse(br#"{"flags": {"a": {"variant": "0123456789abcde"}}}"#)
            .unwrap();
        assert_eq!(r.usage().bytes, 16);
        assert!(RemoteError::TextFull {
            needed: 17,
            capacity: 16
        }
        .to_string()
        .contains("17 bytes"));
        // A zero-capacity store accepts only empty answers.
        let mut z_st = RemoteStorage::<0, 0>::new();
        let mut z = RemoteFlags::new(&mut z_st);
        z.parse(b"{\"flags\":{}}").unwrap();
        assert!(z.parse(br#"{"flags":{"a":{}}}"#).is_err());
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        let mut r_st = RemoteStorage::<8, 512>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(V2.as_bytes()).unwrap();
        let before: Vec<String> = r.iter().map(|f| std::format!("{f:?}")).collect();
        let trimmed = V2.trim_end();
        for end in 0..trimmed.len() {
            let prefix = &V2.as_bytes()[..end];
            assert!(r.parse(prefix).is_err(), "prefix {end} parsed");
            let after: Vec<String> = r.iter().map(|f| std::format!("{f:?}")).collect();
            assert_eq!(before, after);
            assert_eq!(r.request_id(), Some("req-1"));
        }
    }

    #[test]
    fn clear_forgets() {
        let mut r_st = RemoteStorage::<8, 512>::new();
        let mut r = RemoteFlags::new(&mut r_st);
        r.parse(V2.as_bytes()).unwrap();
        r.clear();
        assert!(!r.is_loaded() && r.is_empty() && r.request_id().is_none());
        assert!(!r.errors_while_computing() && !r.minimal_flag_called_events());
        assert_eq!(r.usage(), RemoteRequirements::default());
        assert_eq!(
            r.capacity(),
            RemoteRequirements {
                flags: 8,
                bytes: 512
            }
        );
    }

    #[test]
    fn entry_is_sixty_bytes() {
        assert_eq!(size_of::<Entry>(), 60);
        let req = RemoteRequirements {
            flags: 10,
            bytes: 100,
        };
        assert!(
            size_of::<RemoteStorage<10, 100>>() + size_of::<RemoteFlags<'_>>()
                <= req.remote_flags_bytes()
        );
    }
}
