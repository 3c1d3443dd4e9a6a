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

use super::hash::RolloutThreshold;
use super::semver::SemverOp;
use crate::json::read::ReadError;
use crate::managed::ManagedSlice;

mod load;
mod packed;
mod sizing;

use load::{parse_document, Builder};
pub(crate) use packed::{decode_date, decode_semver};
pub use sizing::Requirements;

/// Deepest nesting of cohort property groups accepted (PostHog uses two or three levels).
pub const MAX_GROUP_DEPTH: usize = 16;

/// Longest regex pattern with JSON escapes (`"^\\d+$"`), in bytes once unescaped, that the
/// loader compiles: it unescapes into a stack buffer of this size. A longer one is left to the
/// server (inconclusive). A pattern without escapes is read in place, whatever its length, and
/// bounded only by the matcher's own limits.
pub const REGEX_PATTERN_MAX: usize = 512;

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

/// Where a condition takes its context from (mixed targeting: a condition's own
/// `aggregation_group_type_index`, posthog-python `_get_condition_context`).
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
        /// Legacy boolean-like handling applies unless `property_matching_version` is 2: the
        /// filter value is boolean-like (a bool, `"true"`/`"false"` in any case, or an array of
        /// those), so `exact` compares its truthiness (held here) with the property value's
        /// (posthog-python `_match_exact_property`).
        bool_like: Option<bool>,
    },
    /// String operators, and the empty regex pattern: the stringified filter value.
    Text(Text),
    /// A regex compiled at load: its program, encoded in the arena (see
    /// `regex::EncodedRegex`).
    Regex(Text),
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

impl Node {
    /// An unused slot.
    pub(crate) const EMPTY: Self = Self {
        next: 0,
        kind: NodeKind::Condition {
            filters: 0,
            rollout: Limit([0, 0]),
            variant: None,
            aggregation: CondAggregation::Inherit,
            broken: false,
        },
    };
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

impl Flag {
    /// An unused slot.
    pub(crate) const EMPTY: Self = Self {
        key: Text { start: 0, len: 0 },
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
        conditions: 0,
        variants: 0,
        payloads: 0,
        broken: false,
    };
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

/// Compiled flag definitions with fixed capacities: `F` flags, `N` nodes, `B` bytes of text,
/// owned inline. For standalone use (an evaluator without a client, tests, tools); a
/// [`Client`](crate::client::Client) keeps its definitions in a [`FlagTables`] over the
/// storage of its [`Resources`](crate::resources::Resources). Both have the same methods, and
/// the loader and evaluator behind them are compiled once, whatever the capacities.
/// See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FlagStore<const F: usize, const N: usize, const B: usize> {
    // `heapless::Vec`s, empty until the first load: an empty store is all zeros whatever the
    // layout of `Flag` and `Node`, so a `static` one lands in `.bss`.
    flags: heapless::Vec<Flag, F>,
    nodes: heapless::Vec<Node, N>,
    bytes: [u8; B],
    meta: Meta,
}

impl<const F: usize, const N: usize, const B: usize> Default for FlagStore<F, N, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const F: usize, const N: usize, const B: usize> FlagStore<F, N, B> {
    /// An empty store: all zeros, so a `static` one lands in `.bss`.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            flags: heapless::Vec::new(),
            nodes: heapless::Vec::new(),
            bytes: [0; B],
            meta: Meta::EMPTY,
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

    /// Measures what `doc` needs without changing anything.
    ///
    /// # Errors
    /// The same parse errors as [`load`](Self::load) (never [`LoadError::Capacity`]).
    pub fn requirements(doc: &[u8]) -> Result<Requirements, LoadError> {
        requirements(doc)
    }

    pub(crate) fn tables(&self) -> Tables<'_> {
        Tables::new(&self.flags, &self.nodes, &self.bytes, &self.meta)
    }

    fn tables_mut(&mut self) -> TablesMut<'_> {
        TablesMut::new(
            full(&mut self.flags, Flag::EMPTY),
            full(&mut self.nodes, Node::EMPTY),
            &mut self.bytes,
            &mut self.meta,
        )
    }
}

/// All of `v`'s capacity as a slice, filling unused slots with `empty` first (once).
fn full<T: Copy, const C: usize>(v: &mut heapless::Vec<T, C>, empty: T) -> &mut [T] {
    // Cannot fail: never more than the capacity.
    let _ = v.resize(C, empty);
    v.as_mut_slice()
}

/// A flag store over storage it does not own inline: slices of a
/// [`Resources`](crate::resources::Resources) (or of a [`FlagStorage`]), or, with the `std`
/// feature, heap storage sized at run time ([`FlagTables::with_capacity`]). The same methods as
/// [`FlagStore`].
#[derive(Debug)]
pub struct FlagTables<'r> {
    flags: ManagedSlice<'r, Flag>,
    nodes: ManagedSlice<'r, Node>,
    bytes: ManagedSlice<'r, u8>,
    meta: Meta,
}

/// Zeroed storage for a [`FlagTables`]: `F` flags, `N` nodes and `B` bytes of text. `const`,
/// all zeros, so a `static` one lands in `.bss` (the slots are filled when a
/// [`FlagTables`] takes them).
#[derive(Clone, Debug)]
pub struct FlagStorage<const F: usize, const N: usize, const B: usize> {
    flags: heapless::Vec<Flag, F>,
    nodes: heapless::Vec<Node, N>,
    bytes: [u8; B],
}

impl<const F: usize, const N: usize, const B: usize> Default for FlagStorage<F, N, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const F: usize, const N: usize, const B: usize> FlagStorage<F, N, B> {
    /// Empty storage.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            flags: heapless::Vec::new(),
            nodes: heapless::Vec::new(),
            bytes: [0; B],
        }
    }
}

impl<'r> FlagTables<'r> {
    /// An empty store over `storage`.
    pub fn new<const F: usize, const N: usize, const B: usize>(
        storage: &'r mut FlagStorage<F, N, B>,
    ) -> Self {
        Self {
            flags: ManagedSlice::Borrowed(full(&mut storage.flags, Flag::EMPTY)),
            nodes: ManagedSlice::Borrowed(full(&mut storage.nodes, Node::EMPTY)),
            bytes: ManagedSlice::Borrowed(&mut storage.bytes),
            meta: Meta::EMPTY,
        }
    }

    /// An empty store on the heap with `capacity`, allocated directly (no stack copy).
    #[cfg(feature = "std")]
    #[must_use]
    pub fn with_capacity(capacity: Requirements) -> FlagTables<'static> {
        FlagTables {
            flags: ManagedSlice::owned(Flag::EMPTY, capacity.flags),
            nodes: ManagedSlice::owned(Node::EMPTY, capacity.nodes),
            bytes: ManagedSlice::owned(0, capacity.bytes),
            meta: Meta::EMPTY,
        }
    }

    /// The capacities of this store.
    #[must_use]
    pub fn capacity(&self) -> Requirements {
        Requirements {
            flags: self.flags.len(),
            nodes: self.nodes.len(),
            bytes: self.bytes.len(),
        }
    }

    /// Measures what `doc` needs without changing anything.
    ///
    /// # Errors
    /// The same parse errors as [`load`](Self::load) (never [`LoadError::Capacity`]).
    pub fn requirements(doc: &[u8]) -> Result<Requirements, LoadError> {
        requirements(doc)
    }

    pub(crate) fn tables(&self) -> Tables<'_> {
        Tables::new(&self.flags, &self.nodes, &self.bytes, &self.meta)
    }

    fn tables_mut(&mut self) -> TablesMut<'_> {
        TablesMut::new(
            &mut self.flags,
            &mut self.nodes,
            &mut self.bytes,
            &mut self.meta,
        )
    }
}

/// The methods both store types share, written once over [`Tables`] / [`TablesMut`].
macro_rules! store_methods {
    () => {
        /// Whether definitions have been loaded (an empty `flags` list counts).
        #[must_use]
        pub const fn is_loaded(&self) -> bool {
            self.meta.loaded
        }

        /// Number of flags.
        #[must_use]
        pub const fn len(&self) -> usize {
            self.meta.flags
        }

        /// Whether there are no flags.
        #[must_use]
        pub const fn is_empty(&self) -> bool {
            self.meta.flags == 0
        }

        /// What the store currently uses.
        #[must_use]
        pub const fn usage(&self) -> Requirements {
            Requirements {
                flags: self.meta.flags,
                nodes: self.meta.nodes,
                bytes: self.meta.bytes,
            }
        }

        /// Whether the server asked for minimal `$feature_flag_called` events.
        #[must_use]
        pub const fn minimal_flag_called_events(&self) -> bool {
            self.meta.settings.minimal_flag_called_events
        }

        /// Removes all definitions (as after a 401 or 402 from the definitions endpoint).
        pub fn clear(&mut self) {
            self.meta = Meta::EMPTY;
        }

        /// Replaces the definitions with those in `doc` (a `/flags/definitions` or
        /// `/api/feature_flag/local_evaluation` response body, or a snapshot in flash).
        ///
        /// On error nothing changes. Returns what loading the document needs (what
        /// [`requirements`](Self::requirements) says; a flag key defined twice takes a slot
        /// while loading, then the later definition replaces the earlier, as in PostHog's
        /// SDKs).
        ///
        /// # Errors
        /// [`LoadError`]: malformed JSON, a document that is not definitions, cohort groups
        /// nested too deep, or a document larger than the store.
        pub fn load(&mut self, doc: &[u8]) -> Result<Requirements, LoadError> {
            self.tables_mut().load(doc)
        }

        /// Like [`load`](Self::load), but in one pass over `doc` instead of two (about half
        /// the time), because it does not keep the old definitions on error: **on error the
        /// store is left empty**. For a staging store whose contents only matter after a
        /// successful load (see `Client::install_definitions`); a store in use should call
        /// [`load`](Self::load).
        ///
        /// # Errors
        /// As [`load`](Self::load); [`LoadError::Capacity`] carries the exact size needed.
        pub fn load_or_clear(&mut self, doc: &[u8]) -> Result<Requirements, LoadError> {
            self.tables_mut().load_or_clear(doc)
        }

        /// What the definition of flag `key` says about itself (for `$feature_flag_called`).
        #[must_use]
        pub fn flag_info(&self, key: &str) -> Option<FlagInfo> {
            self.tables().flag_info(key)
        }

        /// Every flag key, in sorted order.
        pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
            self.tables().keys()
        }
    };
}

impl<const F: usize, const N: usize, const B: usize> FlagStore<F, N, B> {
    store_methods!();
}

impl FlagTables<'_> {
    store_methods!();
}

/// Measures what `doc` needs.
fn requirements(doc: &[u8]) -> Result<Requirements, LoadError> {
    let mut b = Builder {
        store: None,
        need: Requirements::default(),
    };
    parse_document(doc, &mut b)?;
    Ok(b.need)
}

/// Lengths and document settings of a store; all zeros when empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    flags: usize,
    nodes: usize,
    bytes: usize,
    settings: Settings,
    loaded: bool,
}

impl Meta {
    const EMPTY: Self = Self {
        flags: 0,
        nodes: 0,
        bytes: 0,
        settings: Settings {
            property_matching_v2: false,
            minimal_flag_called_events: false,
            group_types: Head::NONE,
            cohorts: Head::NONE,
        },
        loaded: false,
    };
}

/// A growable prefix of a slice: what the loader appends to.
pub(crate) struct Arena<'s, T> {
    buf: &'s mut [T],
    len: &'s mut usize,
}

impl<T: Copy> Arena<'_, T> {
    pub(crate) fn push(&mut self, v: T) -> Result<(), T> {
        match self.buf.get_mut(*self.len) {
            Some(slot) => {
                *slot = v;
                *self.len += 1;
                Ok(())
            }
            None => Err(v),
        }
    }

    pub(crate) fn extend_from_slice(&mut self, s: &[T]) -> Result<(), ()> {
        let end = self.len.checked_add(s.len()).ok_or(())?;
        let dst = self.buf.get_mut(*self.len..end).ok_or(())?;
        dst.copy_from_slice(s);
        *self.len = end;
        Ok(())
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i < *self.len {
            self.buf.get_mut(i)
        } else {
            None
        }
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        let n = *self.len;
        self.buf.get_mut(..n).unwrap_or_default()
    }

    fn truncate(&mut self, n: usize) {
        *self.len = (*self.len).min(n);
    }
}

/// A store being written: what [`load`](FlagStore::load) fills.
pub(crate) struct TablesMut<'s> {
    pub(crate) flags: Arena<'s, Flag>,
    pub(crate) nodes: Arena<'s, Node>,
    pub(crate) bytes: Arena<'s, u8>,
    pub(crate) settings: &'s mut Settings,
    loaded: &'s mut bool,
}

impl<'s> TablesMut<'s> {
    fn new(
        flags: &'s mut [Flag],
        nodes: &'s mut [Node],
        bytes: &'s mut [u8],
        meta: &'s mut Meta,
    ) -> Self {
        let Meta {
            flags: nf,
            nodes: nn,
            bytes: nb,
            settings,
            loaded,
        } = meta;
        Self {
            flags: Arena {
                buf: flags,
                len: nf,
            },
            nodes: Arena {
                buf: nodes,
                len: nn,
            },
            bytes: Arena {
                buf: bytes,
                len: nb,
            },
            settings,
            loaded,
        }
    }

    fn capacity(&self) -> Requirements {
        Requirements {
            flags: self.flags.buf.len(),
            nodes: self.nodes.buf.len(),
            bytes: self.bytes.buf.len(),
        }
    }

    fn clear(&mut self) {
        *self.flags.len = 0;
        *self.nodes.len = 0;
        *self.bytes.len = 0;
        *self.settings = Meta::EMPTY.settings;
        *self.loaded = false;
    }

    /// Validates and measures `doc`, then fills the store: on error nothing changes.
    fn load(self, doc: &[u8]) -> Result<Requirements, LoadError> {
        let needed = requirements(doc)?;
        let available = self.capacity();
        if !needed.fits(&available) {
            return Err(LoadError::Capacity { needed, available });
        }
        // Cannot fail: the same bytes parsed successfully above and everything fits.
        self.load_or_clear(doc)
    }

    /// Fills the store from `doc` in one pass; on error the store is left empty.
    fn load_or_clear(mut self, doc: &[u8]) -> Result<Requirements, LoadError> {
        let available = self.capacity();
        self.clear();
        let mut b = Builder {
            store: Some(self),
            need: Requirements::default(),
        };
        let parsed = parse_document(doc, &mut b);
        let needed = b.need;
        let Some(mut st) = b.store else {
            return Err(LoadError::Shape { offset: 0 });
        };
        if let Err(e) = parsed {
            st.clear();
            return Err(e);
        }
        // Writes past a capacity were dropped; the counts went on, so `needed` is exact.
        if !needed.fits(&available) {
            st.clear();
            return Err(LoadError::Capacity { needed, available });
        }
        *st.loaded = true;
        // Sorted by key for binary search; a later duplicate key wins, as in PostHog's SDKs
        // (their flags-by-key maps keep the last), so keep the last of equal keys.
        let bytes: &[u8] = st.bytes.buf.get(..*st.bytes.len).unwrap_or_default();
        let text = |t: &Text| -> &[u8] {
            bytes
                .get(t.start as usize..(t.start + t.len) as usize)
                .unwrap_or_default()
        };
        // Stable sort keeps document order among equal keys.
        let flags = st.flags.as_mut_slice();
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
        st.flags.truncate(w);
        Ok(needed)
    }
}

/// A loaded store, read-only: what the evaluator and the analyzer walk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tables<'s> {
    pub(crate) flags: &'s [Flag],
    pub(crate) nodes: &'s [Node],
    pub(crate) bytes: &'s [u8],
    pub(crate) settings: Settings,
}

impl<'s> Tables<'s> {
    fn new(flags: &'s [Flag], nodes: &'s [Node], bytes: &'s [u8], meta: &Meta) -> Self {
        Self {
            flags: flags.get(..meta.flags).unwrap_or_default(),
            nodes: nodes.get(..meta.nodes).unwrap_or_default(),
            bytes: bytes.get(..meta.bytes).unwrap_or_default(),
            settings: meta.settings,
        }
    }

    /// The raw bytes of `t` (an encoded compiled value).
    pub(crate) fn blob(&self, t: Text) -> &'s [u8] {
        self.bytes
            .get(t.start as usize..(t.start as usize + t.len as usize))
            .unwrap_or_default()
    }

    /// The text of `t`.
    pub(crate) fn text(&self, t: Text) -> &'s str {
        core::str::from_utf8(self.blob(t)).unwrap_or_default()
    }

    pub(crate) fn node(&self, i: u32) -> Option<&'s Node> {
        self.nodes.get(i as usize)
    }

    /// Iterates a linked list of nodes starting at `head`.
    pub(crate) fn list(&self, head: u32) -> impl Iterator<Item = &'s Node> + 's {
        self.entries(head).map(|(_, n)| n)
    }

    /// Iterates a linked list of nodes starting at `head`, with their indices.
    pub(crate) fn entries(&self, head: u32) -> NodeIter<'s> {
        NodeIter {
            nodes: self.nodes,
            at: head,
            left: self.nodes.len(),
        }
    }

    /// Index of the flag with `key`.
    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        self.flags
            .binary_search_by(|f| self.blob(f.key).cmp(key.as_bytes()))
            .ok()
    }

    pub(crate) fn flag(&self, i: usize) -> Option<&'s Flag> {
        self.flags.get(i)
    }

    /// Group type name for index `i` (from `group_type_mapping`).
    pub(crate) fn group_type_name(&self, i: u32) -> Option<&'s str> {
        let mut digits = [0u8; 20];
        let want = crate::json::write::fmt_u64(u64::from(i), &mut digits);
        self.list(self.settings.group_types.get())
            .find_map(|n| match n.kind {
                NodeKind::GroupType { index, name } if self.blob(index) == want => {
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

    fn flag_info(&self, key: &str) -> Option<FlagInfo> {
        let f = self.flag(self.find(key)?)?;
        Some(FlagInfo {
            id: f.id,
            version: f.version,
            has_experiment: f.has_experiment,
        })
    }

    fn keys(self) -> impl Iterator<Item = &'s str> + 's {
        self.flags.iter().map(move |f| self.text(f.key))
    }
}

fn insertion_sort_by_key<T: Copy>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> core::cmp::Ordering) {
    for i in 1..v.len() {
        let Some(&x) = v.get(i) else {
            break;
        };
        // Shift the strictly greater ones up by one (one copy each), then drop `x` in.
        let mut j = i;
        while j > 0 {
            let Some(&prev) = v.get(j - 1) else {
                break;
            };
            if cmp(&prev, &x) != core::cmp::Ordering::Greater {
                break;
            }
            if let Some(slot) = v.get_mut(j) {
                *slot = prev;
            }
            j -= 1;
        }
        if j != i {
            if let Some(slot) = v.get_mut(j) {
                *slot = x;
            }
        }
    }
}

/// Iterator over a linked node list; bounded by the node count even on a corrupt link.
pub(crate) struct NodeIter<'s> {
    nodes: &'s [Node],
    at: u32,
    left: usize,
}

impl<'s> Iterator for NodeIter<'s> {
    type Item = (u32, &'s Node);
    fn next(&mut self) -> Option<(u32, &'s Node)> {
        if self.at == NONE || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = self.at;
        let n = self.nodes.get(i as usize)?;
        self.at = n.next;
        Some((i, n))
    }
}
