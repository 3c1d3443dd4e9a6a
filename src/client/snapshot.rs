//! PostHog's `evaluate_flags`: evaluate once for one context, then read many times from an
//! immutable, bounded [`FlagSnapshot`].
//!
//! - **Creation** ([`Client::evaluate_flags`]) emits no event. Local values come first; when
//!   the requested set is not fully resolved (a flag inconclusive, a requested key without a
//!   definition, no definitions) and local-only is off, the client's one `/flags` query is
//!   opened with the **original** requested keys; [`Client::complete_snapshot`] adds what the
//!   server answered. A local value is never replaced by the remote one. A failed request keeps
//!   the local values and records the error. No distinct id (or a disabled client): an empty
//!   snapshot, no request, and reads that send nothing.
//! - **Reads**: [`FlagSnapshot::get`], [`FlagSnapshot::payload`] and [`FlagSnapshot::keys`] are
//!   silent. [`Client::snapshot_flag`] and [`Client::snapshot_enabled`] mark the key accessed
//!   and send its `$feature_flag_called` the first time, through the client's de-duplication
//!   (reading a key the snapshot does not hold reports `flag_missing`).
//! - **Filters**: [`FlagSnapshot::only`] and [`FlagSnapshot::only_accessed`] copy a subset into
//!   other storage (accesses there do not mark the parent).
//! - **Capture**: [`Client::capture_with_snapshot`] writes `$feature/<key>` for every flag and
//!   `$active_feature_flags`, with no evaluation and no request.
//!
//! Storage is the caller's ([`SnapshotStorage`], or the heap with the `std` feature): a set that
//! does not fit is a [`SnapshotError::Full`] naming what it needs, never a silent truncation.

use core::fmt;

use super::flags::{is_blank, CalledInfo, MAX_EVENT_FLAGS, MAX_EVENT_GROUPS};
use super::query::{QueryStatus, QueryTicket, ReadOptions};
use super::reads::valid_payload;
use super::Client;
use crate::capture::{EventOptions, Uuid};
use crate::error::{CaptureError, PropertyError};
use crate::flags::called::write_flag_properties;
use crate::flags::remote::{FlagErrorKind, FlagErrors};
use crate::flags::{EvalContext, FlagValue};
use crate::json::write::Object;
use crate::managed::{ManagedSlice, SliceVec};
use crate::time::Now;

/// A span of the snapshot's text; `len == u32::MAX` means none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NONE: Self = Self {
        start: 0,
        len: u32::MAX,
    };
}

/// How a flag's value is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool(bool),
    Variant(Span),
    Holdout(i64),
}

/// One flag of a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct SnapEntry {
    key: Span,
    kind: Kind,
    payload: Span,
    reason: Span,
    id: Option<i64>,
    version: Option<i64>,
    has_experiment: Option<bool>,
    local: bool,
    accessed: bool,
}

impl SnapEntry {
    const EMPTY: Self = Self {
        key: Span::NONE,
        kind: Kind::Bool(false),
        payload: Span::NONE,
        reason: Span::NONE,
        id: None,
        version: None,
        has_experiment: None,
        local: false,
        accessed: false,
    };
}

/// Storage of a [`FlagSnapshot`]: `N` flags and `B` bytes of text (keys, variants, payloads,
/// reasons, the distinct id and groups).
pub struct SnapshotStorage<const N: usize, const B: usize> {
    entries: [SnapEntry; N],
    bytes: [u8; B],
}

impl<const N: usize, const B: usize> Default for SnapshotStorage<N, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const B: usize> SnapshotStorage<N, B> {
    /// Empty storage.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            entries: [SnapEntry::EMPTY; N],
            bytes: [0; B],
        }
    }
}

/// The snapshot did not fit its storage: what it needed. Nothing is truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SnapshotError {
    /// The flags or the text need more room than the storage has.
    Full {
        /// Flags needed.
        flags: usize,
        /// Bytes of text needed.
        bytes: usize,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { flags, bytes } => write!(
                f,
                "flag snapshot needs {flags} flags and {bytes} bytes of text"
            ),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// What [`Client::evaluate_flags`] left to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SnapshotStep {
    /// The snapshot is final.
    Done,
    /// Wait for this query, then call [`Client::complete_snapshot`].
    Remote(QueryTicket),
    /// Another query is open: wait for it to close, then evaluate again.
    Busy,
}

/// One flag as a snapshot holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct SnapshotFlag<'a> {
    /// The flag key.
    pub key: &'a str,
    /// The value.
    pub value: FlagValue,
    /// The payload's JSON text (valid JSON only).
    pub payload: Option<&'a str>,
    /// Decided by the local definitions (else by the server).
    pub locally_evaluated: bool,
}

/// PostHog's `evaluate_flags`: evaluate once for one context, then read many times from an
/// immutable, bounded [`FlagSnapshot`].
///
/// - **Creation** ([`Client::evaluate_flags`]) emits no event. Local values come first; when
///   the requested set is not fully resolved (a flag inconclusive, a requested key without a
///   definition, no definitions) and local-only is off, the client's one `/flags` query is
///   opened with the **original** requested keys; [`Client::complete_snapshot`] adds what the
///   server answered. A local value is never replaced by the remote one. A failed request keeps
///   the local values and records the error. No distinct id (or a disabled client): an empty
///   snapshot, no request, and reads that send nothing.
/// - **Reads**: [`FlagSnapshot::get`], [`FlagSnapshot::payload`] and [`FlagSnapshot::keys`] are
///   silent. [`Client::snapshot_flag`] and [`Client::snapshot_enabled`] mark the key accessed
///   and send its `$feature_flag_called` the first time, through the client's de-duplication
///   (reading a key the snapshot does not hold reports `flag_missing`).
/// - **Filters**: [`FlagSnapshot::only`] and [`FlagSnapshot::only_accessed`] copy a subset into
///   other storage (accesses there do not mark the parent).
/// - **Capture**: [`Client::capture_with_snapshot`] writes `$feature/<key>` for every flag and
///   `$active_feature_flags`, with no evaluation and no request.
///
/// Storage is the caller's ([`SnapshotStorage`], or the heap with the `std` feature): a set that
/// does not fit is a [`SnapshotError::Full`] naming what it needs, never a silent truncation.
pub struct FlagSnapshot<'s> {
    entries: SliceVec<'s, SnapEntry>,
    bytes: SliceVec<'s, u8>,
    distinct_id: Span,
    device_id: Span,
    groups: heapless::Vec<(Span, Span), MAX_EVENT_GROUPS>,
    request_id: Span,
    /// `evaluatedAt` of the server's answer (Unix ms).
    evaluated_at: Option<u64>,
    /// No distinct id or a disabled client: reads send nothing.
    silent: bool,
    /// A filtered copy: reads of keys it lacks report nothing.
    filtered: bool,
    /// What went wrong asking the server (empty: nothing, or not asked).
    error: FlagErrors,
    /// Needs, for [`SnapshotError::Full`].
    need_flags: usize,
    need_bytes: usize,
}

impl fmt::Debug for FlagSnapshot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlagSnapshot")
            .field("flags", &self.entries.len())
            .field("silent", &self.silent)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<'s> FlagSnapshot<'s> {
    /// An empty snapshot over `storage`.
    pub fn new<const N: usize, const B: usize>(storage: &'s mut SnapshotStorage<N, B>) -> Self {
        Self::from_parts(
            ManagedSlice::Borrowed(&mut storage.entries),
            ManagedSlice::Borrowed(&mut storage.bytes),
        )
    }

    /// An empty snapshot on the heap for `flags` flags and `bytes` bytes of text.
    #[cfg(feature = "std")]
    #[must_use]
    pub fn with_capacity(flags: usize, bytes: usize) -> FlagSnapshot<'static> {
        FlagSnapshot::from_parts(
            ManagedSlice::owned(SnapEntry::EMPTY, flags),
            ManagedSlice::owned(0, bytes),
        )
    }

    fn from_parts(entries: ManagedSlice<'s, SnapEntry>, bytes: ManagedSlice<'s, u8>) -> Self {
        Self {
            entries: SliceVec::new(entries),
            bytes: SliceVec::new(bytes),
            distinct_id: Span::NONE,
            device_id: Span::NONE,
            groups: heapless::Vec::new(),
            request_id: Span::NONE,
            evaluated_at: None,
            silent: true,
            filtered: false,
            error: FlagErrors::new(),
            need_flags: 0,
            need_bytes: 0,
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
        self.distinct_id = Span::NONE;
        self.device_id = Span::NONE;
        self.groups.clear();
        self.request_id = Span::NONE;
        self.evaluated_at = None;
        self.silent = true;
        self.filtered = false;
        self.error = FlagErrors::new();
        self.need_flags = 0;
        self.need_bytes = 0;
    }

    fn text(&self, s: Span) -> Option<&str> {
        if s.len == u32::MAX {
            return None;
        }
        let (a, n) = (s.start as usize, s.len as usize);
        self.bytes
            .get(a..a + n)
            .and_then(|b| core::str::from_utf8(b).ok())
    }

    /// Stores `s` (counting what it needs even when it does not fit).
    fn store(&mut self, s: Option<&str>) -> Span {
        let Some(s) = s else {
            return Span::NONE;
        };
        self.need_bytes += s.len();
        let start = self.bytes.len();
        match self.bytes.extend_from_slice(s.as_bytes()) {
            Ok(()) => Span {
                start: start as u32,
                len: s.len() as u32,
            },
            Err(()) => Span::NONE,
        }
    }

    fn push(&mut self, e: SnapEntry) {
        self.need_flags += 1;
        let _ = self.entries.push(e);
    }

    fn check(&self) -> Result<(), SnapshotError> {
        if self.need_flags > self.entries.capacity() || self.need_bytes > self.bytes.capacity() {
            Err(SnapshotError::Full {
                flags: self.need_flags,
                bytes: self.need_bytes,
            })
        } else {
            Ok(())
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| self.text(e.key) == Some(key))
    }

    fn view(&self, e: &SnapEntry) -> Option<SnapshotFlag<'_>> {
        let value = match e.kind {
            Kind::Bool(b) => FlagValue::Bool(b),
            Kind::Variant(v) => FlagValue::variant(self.text(v)?).ok()?,
            Kind::Holdout(id) => FlagValue::Holdout(id),
        };
        Some(SnapshotFlag {
            key: self.text(e.key)?,
            value,
            payload: self.text(e.payload),
            locally_evaluated: e.local,
        })
    }

    /// Flag `key`, silently (no event, not an access).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<SnapshotFlag<'_>> {
        let i = self.position(key)?;
        self.entries.get(i).and_then(|e| self.view(e))
    }

    /// The payload of flag `key`, silently: no event, not an access, no request.
    #[must_use]
    pub fn payload(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|f| f.payload)
    }

    /// The keys present, silently.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().filter_map(|e| self.text(e.key))
    }

    /// Every flag, silently.
    pub fn iter(&self) -> impl Iterator<Item = SnapshotFlag<'_>> + Clone + '_ {
        self.entries.iter().filter_map(|e| self.view(e))
    }

    /// Number of flags.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no flag.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What went wrong asking the server (empty when nothing did, or nobody was asked).
    #[must_use]
    pub const fn error(&self) -> FlagErrors {
        self.error
    }

    /// Copies the flags of `keys` that exist into `into` (an empty snapshot's storage). Keys
    /// it does not hold are dropped (logged as `unknown_flag_key`). No evaluation, no request.
    ///
    /// # Errors
    /// [`SnapshotError::Full`] when `into` is too small.
    pub fn only(&self, keys: &[&str], into: &mut FlagSnapshot<'_>) -> Result<(), SnapshotError> {
        for k in keys {
            if self.position(k).is_none() {
                ph_warn!("unknown_flag_key: a filter named a flag the snapshot lacks");
            }
        }
        self.copy_into(
            into,
            |s, e| s.text(e.key).is_some_and(|k| keys.contains(&k)),
            false,
        )
    }

    /// Copies every flag (and the context) into `into`: to move a snapshot to larger storage.
    ///
    /// # Errors
    /// [`SnapshotError::Full`] when `into` is too small.
    pub fn copy_all(&self, into: &mut FlagSnapshot<'_>) -> Result<(), SnapshotError> {
        self.copy_into(into, |_, _| true, true)?;
        into.filtered = self.filtered;
        Ok(())
    }

    /// Copies the flags whose value was read ([`Client::snapshot_flag`],
    /// [`Client::snapshot_enabled`]; payload reads do not count) into `into`. Before any read
    /// it is empty, never "all".
    ///
    /// # Errors
    /// [`SnapshotError::Full`] when `into` is too small.
    pub fn only_accessed(&self, into: &mut FlagSnapshot<'_>) -> Result<(), SnapshotError> {
        self.copy_into(into, |_, e| e.accessed, false)
    }

    fn copy_into(
        &self,
        into: &mut FlagSnapshot<'_>,
        keep: impl Fn(&Self, &SnapEntry) -> bool,
        keep_access: bool,
    ) -> Result<(), SnapshotError> {
        into.clear();
        into.silent = self.silent;
        into.filtered = true;
        into.error = self.error;
        into.distinct_id = into.store(self.text(self.distinct_id));
        into.device_id = into.store(self.text(self.device_id));
        for (t, k) in &self.groups {
            let pair = (into.store(self.text(*t)), into.store(self.text(*k)));
            let _ = into.groups.push(pair);
        }
        into.request_id = into.store(self.text(self.request_id));
        into.evaluated_at = self.evaluated_at;
        for e in self.entries.iter().filter(|e| keep(self, e)) {
            let copy = SnapEntry {
                key: into.store(self.text(e.key)),
                kind: match e.kind {
                    Kind::Variant(v) => Kind::Variant(into.store(self.text(v))),
                    k => k,
                },
                payload: into.store(self.text(e.payload)),
                reason: into.store(self.text(e.reason)),
                accessed: keep_access && e.accessed,
                ..*e
            };
            into.push(copy);
        }
        into.check()
    }

    /// The context the snapshot was made for, rebuilt for exposure events.
    fn with_context<R>(&self, f: impl FnOnce(&EvalContext<'_>, &[(&str, &str)]) -> R) -> R {
        let mut groups: heapless::Vec<crate::flags::GroupContext<'_>, MAX_EVENT_GROUPS> =
            heapless::Vec::new();
        let mut pairs: heapless::Vec<(&str, &str), MAX_EVENT_GROUPS> = heapless::Vec::new();
        for (t, k) in &self.groups {
            if let (Some(t), Some(k)) = (self.text(*t), self.text(*k)) {
                let _ = groups.push(crate::flags::GroupContext {
                    group_type: t,
                    key: k,
                    properties: None,
                });
                let _ = pairs.push((t, k));
            }
        }
        let ctx = EvalContext {
            distinct_id: self.text(self.distinct_id).unwrap_or_default(),
            device_id: self.text(self.device_id),
            person: &[],
            groups: &groups,
        };
        f(&ctx, &pairs)
    }
}

impl Client<'_> {
    /// Evaluates flags for `ctx` (every local flag, or only `keys`) into `snapshot` (cleared
    /// first), without events. Says whether it is final, which query to wait for before
    /// [`complete_snapshot`](Self::complete_snapshot), or that another query is open (wait for
    /// it to close, then evaluate again).
    ///
    /// # Errors
    /// [`SnapshotError::Full`] when the local values do not fit (the snapshot holds what fit).
    pub fn evaluate_flags(
        &mut self,
        now: Now,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        opts: ReadOptions,
        snapshot: &mut FlagSnapshot<'_>,
    ) -> Result<SnapshotStep, SnapshotError> {
        snapshot.clear();
        // Only a missing identity empties the snapshot: opting out gates the exposure events
        // (as it gates every event), not the flags; after shutdown local values still answer.
        if is_blank(ctx.distinct_id) {
            return Ok(SnapshotStep::Done);
        }
        snapshot.silent = false;
        snapshot.distinct_id = snapshot.store(Some(ctx.distinct_id));
        snapshot.device_id = snapshot.store(ctx.device_id);
        for g in ctx.groups.iter().take(MAX_EVENT_GROUPS) {
            let pair = (
                snapshot.store(Some(g.group_type)),
                snapshot.store(Some(g.key)),
            );
            let _ = snapshot.groups.push(pair);
        }
        let mut incomplete = false;
        if !opts.force_remote {
            let found = self.all_flags(now, ctx, keys, |r| {
                let info = self.flags.flag_info(r.key).unwrap_or_default();
                let key = snapshot.store(Some(r.key));
                let kind = match r.value {
                    FlagValue::Bool(b) => Kind::Bool(b),
                    FlagValue::Variant(v) => Kind::Variant(snapshot.store(Some(&v))),
                    FlagValue::Holdout(id) => Kind::Holdout(id),
                };
                let payload = snapshot.store(r.payload);
                let reason = snapshot.store(Some("Evaluated locally"));
                snapshot.push(SnapEntry {
                    key,
                    kind,
                    payload,
                    reason,
                    id: info.id,
                    version: info.id.and(info.version),
                    has_experiment: info.has_experiment,
                    local: true,
                    accessed: false,
                });
            });
            incomplete = found.incomplete;
        }
        snapshot.check()?;
        if !(incomplete || opts.force_remote) || opts.only_local {
            return Ok(SnapshotStep::Done);
        }
        match self.start_flags_query(ctx, keys, opts) {
            Ok(t) => Ok(SnapshotStep::Remote(t)),
            Err(super::QueryError::Busy) => Ok(SnapshotStep::Busy),
            Err(e) => {
                snapshot.error = match e {
                    super::QueryError::NotAllowed(crate::flags::remote::RequestError::Offline) => {
                        FlagErrorKind::ConnectionError.into()
                    }
                    _ => FlagErrorKind::UnknownError.into(),
                };
                Ok(SnapshotStep::Done)
            }
        }
    }

    /// Adds the server's answer to query `ticket` to `snapshot`: flags it does not hold yet (a
    /// local value is never replaced; failed flags and a quota-limited answer add nothing), and
    /// closes the query. A failed query keeps the local values and records its error. Still
    /// pending: nothing changes.
    ///
    /// # Errors
    /// [`SnapshotError::Full`] when the answer does not fit (the snapshot holds what fit).
    pub fn complete_snapshot(
        &mut self,
        ticket: QueryTicket,
        keys: Option<&[&str]>,
        snapshot: &mut FlagSnapshot<'_>,
    ) -> Result<(), SnapshotError> {
        match self.flags_query(ticket) {
            QueryStatus::Pending | QueryStatus::Unknown => return Ok(()),
            QueryStatus::Failed(e) => snapshot.error = e,
            QueryStatus::Answered => {
                if let Some(remote) = self.remote.as_ref() {
                    // Measured first: a set that does not fit leaves the snapshot and the
                    // query as they are, so the caller can retry with more room.
                    let (mut flags, mut bytes) = (0usize, 0usize);
                    for f in remote.iter().filter(|f| {
                        !(f.failed
                            || remote.quota_limited()
                            || keys.is_some_and(|k| !k.contains(&f.key))
                            || snapshot.position(f.key).is_some())
                    }) {
                        flags += 1;
                        bytes += f.key.len()
                            + f.variant.map_or(0, str::len)
                            + f.payload.and_then(valid_payload).map_or(0, str::len)
                            + f.reason().map_or(0, str::len);
                    }
                    bytes += remote.request_id().map_or(0, str::len);
                    let need = (snapshot.entries.len() + flags, snapshot.bytes.len() + bytes);
                    if need.0 > snapshot.entries.capacity() || need.1 > snapshot.bytes.capacity() {
                        return Err(SnapshotError::Full {
                            flags: need.0,
                            bytes: need.1,
                        });
                    }
                    snapshot.request_id = snapshot.store(remote.request_id());
                    snapshot.evaluated_at = remote.evaluated_at();
                    if remote.quota_limited() {
                        snapshot.error.insert(FlagErrorKind::QuotaLimited);
                    }
                    if remote.errors_while_computing() {
                        snapshot.error.insert(FlagErrorKind::ErrorsWhileComputing);
                    }
                    for f in remote.iter() {
                        if f.failed
                            || remote.quota_limited()
                            || keys.is_some_and(|k| !k.contains(&f.key))
                            || snapshot.position(f.key).is_some()
                        {
                            continue;
                        }
                        let key = snapshot.store(Some(f.key));
                        let kind = match f.value {
                            FlagValue::Bool(b) => Kind::Bool(b),
                            FlagValue::Variant(v) => Kind::Variant(snapshot.store(Some(&v))),
                            FlagValue::Holdout(id) => Kind::Holdout(id),
                        };
                        let payload = snapshot.store(f.payload.and_then(valid_payload));
                        let reason = snapshot.store(f.reason());
                        snapshot.push(SnapEntry {
                            key,
                            kind,
                            payload,
                            reason,
                            id: f.id,
                            version: f.version,
                            has_experiment: f.has_experiment,
                            local: false,
                            accessed: false,
                        });
                    }
                }
            }
        }
        self.close_flags_query(ticket);
        snapshot.check()
    }

    /// Gives up waiting for query `ticket` (a deadline passed): closes it and records `error`
    /// (`timeout`, or `connection_error` when the query could not even start) in `snapshot`,
    /// which keeps its local values.
    pub fn abandon_snapshot(
        &mut self,
        ticket: Option<QueryTicket>,
        error: FlagErrorKind,
        snapshot: &mut FlagSnapshot<'_>,
    ) {
        if let Some(t) = ticket {
            self.close_flags_query(t);
        }
        snapshot.error.insert(error);
    }

    /// Reads flag `key` from `snapshot` as PostHog's `get_flag`: marks it accessed and, the
    /// first time (through the client's de-duplication), sends its `$feature_flag_called`
    /// with the snapshot's value and context. A key the snapshot lacks reads `None` and reports
    /// `flag_missing` (unless the snapshot was filtered or has no distinct id).
    pub fn snapshot_flag<'a>(
        &mut self,
        now: Now,
        snapshot: &'a mut FlagSnapshot<'_>,
        key: &str,
    ) -> Option<FlagValue> {
        let i = snapshot.position(key);
        if let Some(e) = i.and_then(|i| snapshot.entries.get_mut(i)) {
            e.accessed = true;
        }
        if !snapshot.silent {
            let snap: &FlagSnapshot<'_> = snapshot;
            match i.and_then(|i| snap.entries.get(i)) {
                Some(e) => {
                    let flag = snap.view(e);
                    let info = CalledInfo {
                        locally_evaluated: e.local,
                        payload: flag.and_then(|f| f.payload),
                        id: e.id,
                        version: e.version,
                        reason: snap.text(e.reason),
                        request_id: if e.local {
                            None
                        } else {
                            snap.text(snap.request_id)
                        },
                        has_experiment: e.has_experiment,
                        evaluated_at: if e.local { None } else { snap.evaluated_at },
                        // The request's trouble concerns the server's values, not local ones.
                        error: if e.local {
                            FlagErrors::new()
                        } else {
                            snap.error
                        },
                    };
                    let value = flag.map(|f| f.value);
                    snap.with_context(|ctx, _| {
                        self.queue_flag_called(now, key, ctx, value, &info, false);
                    });
                }
                None if !snap.filtered => {
                    let mut error = snap.error;
                    error.insert(FlagErrorKind::FlagMissing);
                    snap.with_context(|ctx, _| self.failed_flag_called(now, key, ctx, error, true));
                }
                None => {}
            }
        }
        let snap: &'a FlagSnapshot<'_> = snapshot;
        snap.get(key).map(|f| f.value)
    }

    /// Whether flag `key` is on in `snapshot` (an access, as [`snapshot_flag`]); `default` for
    /// a key it lacks.
    ///
    /// [`snapshot_flag`]: Self::snapshot_flag
    pub fn snapshot_enabled(
        &mut self,
        now: Now,
        snapshot: &mut FlagSnapshot<'_>,
        key: &str,
        default: bool,
    ) -> bool {
        self.snapshot_flag(now, snapshot, key)
            .map_or(default, |v| v.is_enabled())
    }

    /// [`capture`](Self::capture) with the flags of `snapshot` attached (`$feature/<key>` for
    /// each, `$active_feature_flags` listing the enabled ones): no evaluation, no request, no
    /// access. The caller's own properties win on a clash. At most [`MAX_EVENT_FLAGS`] flags.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_with_snapshot<'i, P>(
        &mut self,
        now: Now,
        event: &str,
        distinct_id: impl Into<super::Id<'i>>,
        opts: &EventOptions<'_>,
        snapshot: &FlagSnapshot<'_>,
        mut props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        let flags = snapshot
            .iter()
            .take(MAX_EVENT_FLAGS)
            .map(|f| (f.key, f.value));
        self.capture(now, event, distinct_id, opts, |o| {
            write_flag_properties(o, flags.clone())?;
            props(o)
        })
    }
}
