//! The flag-definitions store: a `/flags/definitions` document compiled into fixed-capacity
//! tables.
//!
//! # Memory
//!
//! A [`FlagStore<F, N, B>`] holds up to `F` flags, `N` nodes (conditions, filters, variants,
//! payloads, cohort groups, cohorts, group types and dependency-chain entries, 40 bytes each on
//! Cortex-M) and `B` bytes of text (flag keys, property keys, filter values, payload JSON).
//! [`FlagStore::requirements`] tells what a document needs, so capacities can be sized from
//! real definitions (the CLI's `check` prints the same numbers).
//!
//! # Loading
//!
//! [`FlagStore::load`] parses in two passes over the same bytes. The first pass validates the
//! whole document and measures it without writing anything; only if it succeeds and fits does
//! the second pass replace the store's contents, and the second pass cannot fail. So a
//! malformed, truncated, too-deep or too-large document leaves the store exactly as it was.
//!
//! Loading compiles each filter value into the form its operator needs (numbers parsed, dates
//! and semver parsed, regex patterns classified, values stringified the way PostHog compares
//! them), so evaluation parses nothing.
//!
//! Structural oddities the server could send (a rollout that is not a number, a filter that is
//! not an object, an unknown operator, a malformed cohort group) are **not** load errors: they
//! are kept as markers and make only the affected flag inconclusive at evaluation, as PostHog's
//! SDKs do.

use core::fmt;

use super::date::DateFilter;
use super::hash::{RolloutThreshold, VariantBounds};
use super::semver::{SemverFilter, SemverOp};
use super::value::{self, PropertyValue};
use crate::json::read::{raw_value, Elements, Members, ReadError, Reader, Str, Token};

/// Deepest nesting of cohort property groups accepted (PostHog uses two or three levels).
pub const MAX_GROUP_DEPTH: usize = 16;

/// Marks "no node" in node links.
const NONE: u32 = u32::MAX;

/// A span of text in the store's byte arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Text {
    start: u32,
    len: u32,
}

/// A 60-bit hash bound kept as two `u32` words, so nodes need only 4-byte alignment (they are
/// 40 bytes on Cortex-M instead of 88). `u32::MAX` in the high word means "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit([u32; 2]);

impl Limit {
    pub(crate) const NONE: Self = Self([u32::MAX, u32::MAX]);

    pub(crate) const fn new(v: u64) -> Self {
        Self([(v >> 32) as u32, v as u32])
    }

    pub(crate) const fn get(self) -> Option<u64> {
        if self.0[0] == u32::MAX {
            None
        } else {
            Some(((self.0[0] as u64) << 32) | self.0[1] as u64)
        }
    }
}

/// Encodes a [`DateFilter`] for the arena: a tag byte, then the payload little-endian.
fn encode_date(f: DateFilter, out: &mut [u8; 9]) -> &[u8] {
    use super::date::RelativeUnit;
    match f {
        DateFilter::Relative(r) => {
            let unit = match r.unit {
                RelativeUnit::Hours => 0,
                RelativeUnit::Days => 1,
                RelativeUnit::Weeks => 2,
                RelativeUnit::Months => 3,
                RelativeUnit::Years => 4,
            };
            let a = r.amount.to_le_bytes();
            *out = [0, unit, a[0], a[1], 0, 0, 0, 0, 0];
            out.get(..4).unwrap_or_default()
        }
        DateFilter::Absolute(t) => {
            let b = t.as_micros().to_le_bytes();
            *out = [1, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
            &out[..]
        }
        DateFilter::BareYear(y) => {
            let b = y.to_le_bytes();
            *out = [2, b[0], b[1], 0, 0, 0, 0, 0, 0];
            out.get(..3).unwrap_or_default()
        }
    }
}

/// Decodes what [`encode_date`] wrote.
pub(crate) fn decode_date(b: &[u8]) -> Option<DateFilter> {
    use super::date::{DateInstant, RelativeDate, RelativeUnit};
    let u16_at = |i: usize| Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]));
    Some(match *b.first()? {
        0 => DateFilter::Relative(RelativeDate {
            amount: u16_at(2)?,
            unit: match *b.get(1)? {
                0 => RelativeUnit::Hours,
                1 => RelativeUnit::Days,
                2 => RelativeUnit::Weeks,
                3 => RelativeUnit::Months,
                _ => RelativeUnit::Years,
            },
        }),
        1 => DateFilter::Absolute(DateInstant::from_micros(i64::from_le_bytes(
            b.get(1..9)?.try_into().ok()?,
        ))),
        _ => DateFilter::BareYear(u16_at(1)?),
    })
}

const SEMVER_OPS: [SemverOp; 9] = [
    SemverOp::Eq,
    SemverOp::Neq,
    SemverOp::Gt,
    SemverOp::Gte,
    SemverOp::Lt,
    SemverOp::Lte,
    SemverOp::Tilde,
    SemverOp::Caret,
    SemverOp::Wildcard,
];

/// Encodes a [`SemverFilter`] for the arena: tag, op or depth, then versions as `u64` LE.
fn encode_semver(f: SemverFilter, out: &mut [u8; 50]) -> &[u8] {
    use super::semver::{Depth, Version};
    let mut put = |at: usize, v: Version| {
        for (i, x) in [v.major, v.minor, v.patch].into_iter().enumerate() {
            if let Some(dst) = out.get_mut(at + i * 8..at + i * 8 + 8) {
                dst.copy_from_slice(&x.to_le_bytes());
            }
        }
    };
    let (tag, sub, n) = match f {
        SemverFilter::Compare { op, version } => {
            put(2, version);
            (
                0,
                SEMVER_OPS.iter().position(|o| *o == op).unwrap_or(0) as u8,
                26,
            )
        }
        SemverFilter::Range { lower, last, depth } => {
            put(2, lower);
            put(26, last);
            let d = match depth {
                Depth::Major => 0,
                Depth::Minor => 1,
                Depth::Patch => 2,
            };
            (1, d, 50)
        }
    };
    out[0] = tag;
    out[1] = sub;
    out.get(..n).unwrap_or_default()
}

/// Decodes what [`encode_semver`] wrote.
pub(crate) fn decode_semver(b: &[u8]) -> Option<SemverFilter> {
    use super::semver::{Depth, Version};
    let word = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
    let version = |at: usize| {
        Some(Version {
            major: word(at)?,
            minor: word(at + 8)?,
            patch: word(at + 16)?,
        })
    };
    Some(match *b.first()? {
        0 => SemverFilter::Compare {
            op: *SEMVER_OPS.get(usize::from(*b.get(1)?))?,
            version: version(2)?,
        },
        _ => SemverFilter::Range {
            lower: version(2)?,
            last: version(26)?,
            depth: match *b.get(1)? {
                0 => Depth::Major,
                1 => Depth::Minor,
                _ => Depth::Patch,
            },
        },
    })
}

/// Where a condition takes its context from (§1.9 mixed targeting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CondAggregation {
    /// Field absent: inherit the flag's.
    Inherit,
    /// Explicit `null`.
    Null,
    /// A group type index.
    Index(u32),
    /// Present but not an integer.
    Invalid,
}

/// Operators of property filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Exact,
    IsNot,
    IsSet,
    IsNotSet,
    IContains,
    NotIContains,
    Regex,
    NotRegex,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    DateBefore,
    DateAfter,
    Semver(SemverOp),
    Unknown,
}

impl Operator {
    fn parse(s: &str) -> Self {
        match s {
            "exact" => Self::Exact,
            "is_not" => Self::IsNot,
            "is_set" => Self::IsSet,
            "is_not_set" => Self::IsNotSet,
            "icontains" => Self::IContains,
            "not_icontains" => Self::NotIContains,
            "regex" => Self::Regex,
            "not_regex" => Self::NotRegex,
            "starts_with" => Self::StartsWith,
            "not_starts_with" => Self::NotStartsWith,
            "ends_with" => Self::EndsWith,
            "not_ends_with" => Self::NotEndsWith,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "is_date_before" => Self::DateBefore,
            "is_date_after" => Self::DateAfter,
            other => SemverOp::from_operator(other).map_or(Self::Unknown, Self::Semver),
        }
    }
}

/// A filter value compiled for its operator.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Compiled {
    /// exact / is_not: `items` are the stringified candidates (one for a scalar filter value).
    Exact {
        items: u32,
        /// The filter value is the empty array.
        empty_array: bool,
        /// Legacy boolean-like handling applies (§1.10.4 step 2).
        bool_like: Option<bool>,
    },
    /// String operators and regex: the stringified filter value.
    Text(Text),
    /// Regex that cannot be decided locally (unsupported or too big), or invalid.
    RegexInvalid,
    RegexUnsupported,
    /// gt/gte/lt/lte: the number, 8 bytes little-endian in the arena.
    Number(Text),
    /// is_date_before/after: a [`DateFilter`], encoded in the arena (see [`encode_date`]).
    Date(Text),
    /// semver operators: a [`SemverFilter`], encoded in the arena (see [`encode_semver`]).
    Semver(Text),
    /// The filter value cannot be used with the operator: inconclusive (unsupported_definition).
    Unusable,
    /// is_set / is_not_set / unknown operators: nothing to compile.
    None,
}

/// Expected value of a flag dependency.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expected {
    Bool(bool),
    Variant(Text),
}

/// A filter of a condition or cohort group.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FilterKind {
    Property {
        key: Text,
        op: Operator,
        value: Compiled,
    },
    Cohort {
        id: Text,
        /// `in`/`exact`/absent: false; `not_in`: true; other operators: unsupported.
        negate: bool,
        unsupported_op: bool,
    },
    Flag {
        key: Text,
        /// `None`: malformed filter (wrong operator, empty key, null value): never matches.
        expected: Option<Expected>,
        /// First chain entry, or `None` when `dependency_chain` is missing or not an array.
        chain: Option<u32>,
        chain_len: u32,
    },
    /// Not an object, or unusable: inconclusive (unsupported_definition).
    Broken,
}

/// One node of the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub(crate) next: u32,
    pub(crate) kind: NodeKind,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum NodeKind {
    Condition {
        filters: u32,
        rollout: Limit,
        variant: Option<Text>,
        aggregation: CondAggregation,
        /// A field had an unusable type.
        broken: bool,
    },
    Filter {
        kind: FilterKind,
        negation: bool,
    },
    Variant {
        key: Text,
        start: Limit,
        end: Limit,
    },
    Payload {
        key: Text,
        json: Text,
    },
    /// A cohort property group: AND/OR over `children` (filters or groups).
    Group {
        and: bool,
        children: u32,
        /// Type not AND/OR, values not a list, or an entry not an object: requires server.
        malformed: bool,
    },
    Cohort {
        id: Text,
        group: u32,
    },
    GroupType {
        index: Text,
        name: Text,
    },
    Chain {
        key: Text,
    },
    /// An exact/is_not candidate string.
    Item {
        text: Text,
    },
}

/// One flag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag {
    pub(crate) key: Text,
    pub(crate) id: Option<i64>,
    pub(crate) version: Option<i64>,
    pub(crate) active: bool,
    pub(crate) continuity: bool,
    pub(crate) has_experiment: Option<bool>,
    pub(crate) aggregation: Option<u32>,
    pub(crate) aggregation_invalid: bool,
    pub(crate) device_bucketing: bool,
    pub(crate) feature_enrollment: bool,
    pub(crate) early_exit: bool,
    pub(crate) holdout: Option<(i64, RolloutThreshold)>,
    pub(crate) conditions: u32,
    pub(crate) variants: u32,
    pub(crate) payloads: u32,
    /// Something in the definition could not be understood: inconclusive.
    pub(crate) broken: bool,
}

/// Why a definitions document was refused. The store is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LoadError {
    /// Not valid JSON (or nested deeper than the reader allows); carries the position.
    Json(ReadError),
    /// Valid JSON, but not a definitions document (no `flags` array, a flag that is not an
    /// object, ...). `offset` is the byte where it was noticed.
    Shape {
        /// Byte offset in the document.
        offset: usize,
    },
    /// Cohort property groups nest deeper than [`MAX_GROUP_DEPTH`].
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The document does not fit the store's capacities.
    Capacity {
        /// What the document needs.
        needed: Requirements,
        /// What the store has.
        available: Requirements,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "flag definitions are not valid JSON: {e}"),
            Self::Shape { offset } => write!(
                f,
                "flag definitions have an unexpected shape at byte {offset}"
            ),
            Self::TooDeep { max } => {
                write!(f, "cohort groups nest deeper than the limit of {max}")
            }
            Self::Capacity { needed, available } => write!(
                f,
                "flag definitions need {needed}, the store has {available}"
            ),
        }
    }
}

impl core::error::Error for LoadError {}

impl From<ReadError> for LoadError {
    fn from(e: ReadError) -> Self {
        Self::Json(e)
    }
}

/// Sizes a definitions document needs (or a store has).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Requirements {
    /// Flags.
    pub flags: usize,
    /// Nodes (conditions, filters, variants, payloads, cohort groups, ...).
    pub nodes: usize,
    /// Bytes of text.
    pub bytes: usize,
}

impl Requirements {
    /// RAM a [`FlagStore`] with these capacities takes on this target, in bytes
    /// (`size_of::<FlagStore<F, N, B>>()`).
    #[must_use]
    pub const fn store_bytes(&self) -> usize {
        store_size(
            self,
            Layout {
                word: size_of::<usize>(),
                flag: size_of::<Flag>(),
                flag_align: align_of::<Flag>(),
                node: size_of::<Node>(),
                node_align: align_of::<Node>(),
                settings: size_of::<Settings>(),
            },
        )
    }

    /// RAM a [`FlagStore`] with these capacities takes on a 32-bit Arm Cortex-M target
    /// (`thumbv6m`, `thumbv7em`, ...), in bytes, whatever target this runs on: what a host tool
    /// tells a firmware engineer. Checked against the real layout at compile time when building
    /// for Arm.
    #[must_use]
    pub const fn cortex_m_store_bytes(&self) -> usize {
        store_size(self, CORTEX_M_LAYOUT)
    }

    fn fits(&self, cap: &Self) -> bool {
        self.flags <= cap.flags && self.nodes <= cap.nodes && self.bytes <= cap.bytes
    }
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} flags, {} nodes, {} bytes of text",
            self.flags, self.nodes, self.bytes
        )
    }
}

/// Sizes that make up a [`FlagStore`]'s layout on some target.
#[derive(Clone, Copy)]
struct Layout {
    word: usize,
    flag: usize,
    flag_align: usize,
    node: usize,
    node_align: usize,
    settings: usize,
}

/// The layout on 32-bit Arm (AAPCS: 8-byte alignment for `i64`/`u64`).
const CORTEX_M_LAYOUT: Layout = Layout {
    word: 4,
    flag: 96,
    flag_align: 8,
    node: 40,
    node_align: 4,
    settings: 12,
};

/// `n` rounded up to a multiple of `align` (saturating at `usize::MAX`).
const fn round_up(n: usize, align: usize) -> usize {
    n.div_ceil(align).saturating_mul(align)
}

/// `size_of::<FlagStore<F, N, B>>()` from its parts: three `heapless::Vec`s (a length word,
/// then the items), the settings and the `loaded` flag, padded to the largest alignment.
/// Saturates at `usize::MAX` for capacities no target could hold.
const fn store_size(r: &Requirements, l: Layout) -> usize {
    let flags = round_up(
        round_up(l.word, l.flag_align).saturating_add(r.flags.saturating_mul(l.flag)),
        l.flag_align,
    );
    let nodes = round_up(
        round_up(l.word, l.node_align).saturating_add(r.nodes.saturating_mul(l.node)),
        l.node_align,
    );
    let bytes = round_up(l.word.saturating_add(r.bytes), l.word);
    let align = if l.flag_align > l.word {
        l.flag_align
    } else {
        l.word
    };
    round_up(
        flags
            .saturating_add(nodes)
            .saturating_add(bytes)
            .saturating_add(l.settings)
            .saturating_add(1),
        align,
    )
}

// The host-side figure must match the real layout on the targets it describes.
#[cfg(all(target_arch = "arm", target_pointer_width = "32"))]
const _: () = {
    let l = CORTEX_M_LAYOUT;
    assert!(
        size_of::<Flag>() == l.flag
            && align_of::<Flag>() == l.flag_align
            && size_of::<Node>() == l.node
            && align_of::<Node>() == l.node_align
            && size_of::<Settings>() == l.settings,
        "update CORTEX_M_LAYOUT"
    );
    let r = Requirements {
        flags: 20,
        nodes: 75,
        bytes: 856,
    };
    assert!(size_of::<FlagStore<20, 75, 856>>() == r.cortex_m_store_bytes());
    let r = Requirements {
        flags: 3,
        nodes: 7,
        bytes: 5,
    };
    assert!(size_of::<FlagStore<3, 7, 5>>() == r.cortex_m_store_bytes());
};

/// Metadata of one flag definition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct FlagInfo {
    /// The flag's id.
    pub id: Option<i64>,
    /// The definition's version.
    pub version: Option<i64>,
    /// Whether the flag runs an experiment, when the server said.
    pub has_experiment: Option<bool>,
}

/// The head of a node list, stored plus one so that "none" is zero: an empty store is all
/// zeros, and a `static` store lands in `.bss` (no flash image, no copy at boot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Head(u32);

impl Head {
    pub(crate) const NONE: Self = Self(0);

    const fn new(head: u32) -> Self {
        Self(head.wrapping_add(1))
    }

    /// The head (the `NONE` link when there is none).
    pub(crate) const fn get(self) -> u32 {
        self.0.wrapping_sub(1)
    }
}

/// Document-level settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) property_matching_v2: bool,
    pub(crate) minimal_flag_called_events: bool,
    pub(crate) group_types: Head,
    pub(crate) cohorts: Head,
}

/// Compiled flag definitions with fixed capacities: `F` flags, `N` nodes, `B` bytes of text.
/// See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FlagStore<const F: usize, const N: usize, const B: usize> {
    pub(crate) flags: heapless::Vec<Flag, F>,
    pub(crate) nodes: heapless::Vec<Node, N>,
    pub(crate) bytes: heapless::Vec<u8, B>,
    pub(crate) settings: Settings,
    loaded: bool,
}

impl<const F: usize, const N: usize, const B: usize> Default for FlagStore<F, N, B> {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes into the store, or (dry run) only measures.
struct Builder<'s, const F: usize, const N: usize, const B: usize> {
    store: Option<&'s mut FlagStore<F, N, B>>,
    need: Requirements,
}

impl<const F: usize, const N: usize, const B: usize> Builder<'_, F, N, B> {
    fn text(&mut self, s: &str) -> Text {
        let t = Text {
            start: self.need.bytes as u32,
            len: s.len() as u32,
        };
        self.need.bytes += s.len();
        if let Some(st) = self.store.as_deref_mut() {
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
        if let Some(st) = self.store.as_deref_mut() {
            let _ = st.bytes.extend_from_slice(bytes);
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
        if let Some(st) = self.store.as_deref_mut() {
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
        if let Some(st) = self.store.as_deref_mut() {
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
        if let Some(st) = self.store.as_deref_mut() {
            let _ = st.nodes.push(Node { next: NONE, kind });
        }
        i
    }

    /// Links `i` after `prev` (or makes it the head).
    fn link(&mut self, head: &mut u32, prev: &mut u32, i: u32) {
        if *head == NONE {
            *head = i;
        } else if let Some(st) = self.store.as_deref_mut() {
            if let Some(n) = st.nodes.get_mut(*prev as usize) {
                n.next = i;
            }
        }
        *prev = i;
    }

    fn flag(&mut self, f: Flag) {
        self.need.flags += 1;
        if let Some(st) = self.store.as_deref_mut() {
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
struct Appender<'v, const B: usize>(&'v mut heapless::Vec<u8, B>);

impl<const B: usize> fmt::Write for Appender<'_, B> {
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
fn store_str<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Option<Text> {
    let mut r = Reader::new(raw.as_bytes());
    match r.next() {
        Ok(Some(Token::Str(s))) => Some(b.json_str(s)),
        _ => None,
    }
}

/// Like [`store_str`], but `None` for the empty string too.
fn store_nonempty_str<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Option<Text> {
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

impl<const F: usize, const N: usize, const B: usize> FlagStore<F, N, B> {
    /// An empty store. `const`, so it can live in a `static`.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            flags: heapless::Vec::new(),
            nodes: heapless::Vec::new(),
            bytes: heapless::Vec::new(),
            settings: Settings {
                property_matching_v2: false,
                minimal_flag_called_events: false,
                group_types: Head::NONE,
                cohorts: Head::NONE,
            },
            loaded: false,
        }
    }

    /// The capacities of this store type.
    #[must_use]
    pub const fn capacity() -> Requirements {
        Requirements {
            flags: F,
            nodes: N,
            bytes: B,
        }
    }

    /// Whether definitions have been loaded (an empty `flags` list counts).
    #[must_use]
    pub const fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Number of flags.
    #[must_use]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are no flags.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// What the store currently uses.
    #[must_use]
    pub fn usage(&self) -> Requirements {
        Requirements {
            flags: self.flags.len(),
            nodes: self.nodes.len(),
            bytes: self.bytes.len(),
        }
    }

    /// Whether the server asked for minimal `$feature_flag_called` events.
    #[must_use]
    pub const fn minimal_flag_called_events(&self) -> bool {
        self.settings.minimal_flag_called_events
    }

    /// Removes all definitions (as after a 401 or 402 from the definitions endpoint).
    pub fn clear(&mut self) {
        self.flags.clear();
        self.nodes.clear();
        self.bytes.clear();
        self.settings = Settings {
            property_matching_v2: false,
            minimal_flag_called_events: false,
            group_types: Head::NONE,
            cohorts: Head::NONE,
        };
        self.loaded = false;
    }

    /// Measures what `doc` needs without changing anything.
    ///
    /// # Errors
    /// The same parse errors as [`load`](Self::load) (never [`LoadError::Capacity`]).
    pub fn requirements(doc: &[u8]) -> Result<Requirements, LoadError> {
        let mut b: Builder<'_, F, N, B> = Builder {
            store: None,
            need: Requirements::default(),
        };
        parse_document(doc, &mut b)?;
        Ok(b.need)
    }

    /// Replaces the definitions with those in `doc` (a `/flags/definitions` or
    /// `/api/feature_flag/local_evaluation` response body, or a snapshot in flash).
    ///
    /// On error nothing changes. Returns what loading the document needs (what
    /// [`requirements`](Self::requirements) says; a flag key defined twice takes a slot while
    /// loading, then the later definition replaces the earlier, as in PostHog's SDKs).
    ///
    /// # Errors
    /// [`LoadError`]: malformed JSON, a document that is not definitions, cohort groups nested
    /// too deep, or a document larger than the store.
    pub fn load(&mut self, doc: &[u8]) -> Result<Requirements, LoadError> {
        let needed = Self::requirements(doc)?;
        if !needed.fits(&Self::capacity()) {
            return Err(LoadError::Capacity {
                needed,
                available: Self::capacity(),
            });
        }
        self.clear();
        let mut b = Builder {
            store: Some(self),
            need: Requirements::default(),
        };
        // Cannot fail: the same bytes parsed successfully above and everything fits.
        if let Err(e) = parse_document(doc, &mut b) {
            self.clear();
            return Err(e);
        }
        self.loaded = true;
        // Sorted by key for binary search; a later duplicate key wins, as in PostHog's SDKs
        // (their flags-by-key maps keep the last), so keep the last of equal keys.
        let bytes = &self.bytes;
        let text = |t: &Text| -> &[u8] {
            bytes
                .get(t.start as usize..(t.start + t.len) as usize)
                .unwrap_or_default()
        };
        // Stable sort keeps document order among equal keys.
        let flags = &mut self.flags;
        insertion_sort_by_key(flags, |a, b| text(&a.key).cmp(text(&b.key)));
        let mut w = 0usize;
        for r in 0..flags.len() {
            let (Some(cur), next) = (flags.get(r).copied(), flags.get(r + 1).copied()) else {
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
        Ok(needed)
    }

    /// The raw bytes of `t` (an encoded compiled value).
    pub(crate) fn blob(&self, t: Text) -> &[u8] {
        self.bytes
            .get(t.start as usize..(t.start as usize + t.len as usize))
            .unwrap_or_default()
    }

    /// The text of `t`.
    pub(crate) fn text(&self, t: Text) -> &str {
        self.bytes
            .get(t.start as usize..(t.start as usize + t.len as usize))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or_default()
    }

    pub(crate) fn node(&self, i: u32) -> Option<&Node> {
        self.nodes.get(i as usize)
    }

    /// Iterates a linked list of nodes starting at `head`.
    pub(crate) fn list(&self, head: u32) -> impl Iterator<Item = &Node> + '_ {
        self.entries(head).map(|(_, n)| n)
    }

    /// Iterates a linked list of nodes starting at `head`, with their indices.
    pub(crate) fn entries(&self, head: u32) -> NodeIter<'_, F, N, B> {
        NodeIter {
            store: self,
            at: head,
            left: self.nodes.len(),
        }
    }

    /// Index of the flag with `key`.
    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        self.flags
            .binary_search_by(|f| self.text(f.key).as_bytes().cmp(key.as_bytes()))
            .ok()
    }

    pub(crate) fn flag(&self, i: usize) -> Option<&Flag> {
        self.flags.get(i)
    }

    /// Group type name for index `i` (from `group_type_mapping`).
    pub(crate) fn group_type_name(&self, i: u32) -> Option<&str> {
        let mut digits = [0u8; 20];
        let want = crate::json::write::fmt_u64(u64::from(i), &mut digits);
        self.list(self.settings.group_types.get())
            .find_map(|n| match n.kind {
                NodeKind::GroupType { index, name } if self.text(index).as_bytes() == want => {
                    Some(self.text(name))
                }
                _ => None,
            })
    }

    /// The property group of cohort `id`.
    pub(crate) fn cohort(&self, id: &str) -> Option<u32> {
        self.list(self.settings.cohorts.get())
            .find_map(|n| match n.kind {
                NodeKind::Cohort { id: i, group } if self.text(i) == id => Some(group),
                _ => None,
            })
    }

    /// What the definition of flag `key` says about itself (for `$feature_flag_called`).
    #[must_use]
    pub fn flag_info(&self, key: &str) -> Option<FlagInfo> {
        let f = self.flag(self.find(key)?)?;
        Some(FlagInfo {
            id: f.id,
            version: f.version,
            has_experiment: f.has_experiment,
        })
    }

    /// Every flag key, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.flags.iter().map(|f| self.text(f.key))
    }
}

fn insertion_sort_by_key<T: Copy>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> core::cmp::Ordering) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (v.get(j - 1).copied(), v.get(j).copied()) else {
                break;
            };
            if cmp(&a, &b) != core::cmp::Ordering::Greater {
                break;
            }
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Iterator over a linked node list; bounded by the node count even on a corrupt link.
pub(crate) struct NodeIter<'s, const F: usize, const N: usize, const B: usize> {
    store: &'s FlagStore<F, N, B>,
    at: u32,
    left: usize,
}

impl<'s, const F: usize, const N: usize, const B: usize> Iterator for NodeIter<'s, F, N, B> {
    type Item = (u32, &'s Node);
    fn next(&mut self) -> Option<(u32, &'s Node)> {
        if self.at == NONE || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = self.at;
        let n = self.store.node(i)?;
        self.at = n.next;
        Some((i, n))
    }
}

fn is_object(raw: &str) -> bool {
    raw.starts_with('{')
}

fn parse_document<const F: usize, const N: usize, const B: usize>(
    doc: &[u8],
    b: &mut Builder<'_, F, N, B>,
) -> Result<(), LoadError> {
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
    if let Some(st) = b.store.as_deref_mut() {
        st.settings = settings;
    }
    Ok(())
}

fn parse_group_types<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
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

fn parse_cohorts<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
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
fn parse_group<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
    depth: usize,
) -> Result<u32, LoadError> {
    if depth >= MAX_GROUP_DEPTH {
        return Err(LoadError::TooDeep {
            max: MAX_GROUP_DEPTH,
        });
    }
    let group = |b: &mut Builder<'_, F, N, B>, and, children, malformed| {
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
fn parse_filter<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
    let broken = |b: &mut Builder<'_, F, N, B>, negation| {
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

fn parse_flag_filter<const F: usize, const N: usize, const B: usize>(
    key: Option<&str>,
    value: Option<&str>,
    op: Option<&str>,
    chain: Option<&str>,
    b: &mut Builder<'_, F, N, B>,
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

/// Compiles a property filter's value for its operator.
fn compile_value<const F: usize, const N: usize, const B: usize>(
    op: Operator,
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<Compiled, LoadError> {
    Ok(match op {
        Operator::Exact | Operator::IsNot => {
            let bool_like = value::is_boolean_like_json(raw).then(|| value::truthy_json(raw));
            let (mut head, mut prev) = (NONE, NONE);
            let mut ok = true;
            let mut push = |b: &mut Builder<'_, F, N, B>, item: &str| match b.py_string(item) {
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
        Operator::Regex | Operator::NotRegex => match b.py_string(raw) {
            Some(t) => {
                // Classified in the committing pass only: the dry run has no text to read.
                let pattern_ok = match b.store.as_deref() {
                    Some(st) => {
                        super::regex::Regex::<{ super::regex::DEFAULT_CAPACITY }>::new(st.text(t))
                            .map(|_| ())
                    }
                    None => Ok(()),
                };
                match pattern_ok {
                    Ok(()) => Compiled::Text(t),
                    Err(super::regex::RegexError::Invalid) => Compiled::RegexInvalid,
                    Err(_) => Compiled::RegexUnsupported,
                }
            }
            None => Compiled::Unusable,
        },
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

fn parse_flag<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<(), LoadError> {
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

fn parse_filters<'a, const F: usize, const N: usize, const B: usize>(
    raw: &'a str,
    flag: &mut Flag,
    bucketing: &mut Option<&'a str>,
    b: &mut Builder<'_, F, N, B>,
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

fn parse_payloads<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
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

fn parse_variants<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    flag: &mut Flag,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
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

fn parse_conditions<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    flag: &mut Flag,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
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

fn parse_condition<const F: usize, const N: usize, const B: usize>(
    raw: &str,
    b: &mut Builder<'_, F, N, B>,
) -> Result<u32, LoadError> {
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
