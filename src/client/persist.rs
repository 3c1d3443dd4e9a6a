//! Persistence bookkeeping, sans-IO: which queued events to write to flash and when, which
//! stored events are done, and the events restored at boot.
//!
//! The flash is driven elsewhere (`storage::EventLog`, through a driver's persistence loop):
//! the client only says what the next step is ([`Client::next_persist_step`]) and takes the
//! result ([`Client::finish_persist_step`]), like `poll_transmit` and `handle_response` for
//! the network.
//!
//! # Rules
//!
//! - The flash log mirrors the queue: events are written in queue order, each once, when the
//!   [`PersistPolicy`] says. An event is never removed from flash before it leaves the queue
//!   (delivered, or dropped by a counted rule); then the log's tail moves past it.
//! - At boot, [`Client::restore`] puts the stored events back in the queue, before anything is
//!   captured, with the time the storage layer could establish for them.
//! - Queue sequence numbers and the log's own numbers differ (the log numbers only what it
//!   stores, across boots). The mapping is kept as a few break points; while they are all in
//!   use, persisting waits for the queue to move on rather than guess.

use super::Client;
use crate::capture::{PushError, Restored};
use crate::managed::ManagedSlice;
use crate::time::{Duration, Instant, Now};

/// Break points of the queue-to-flash numbering kept at once (each a restored event after a
/// gap in the log, or an event too large for flash).
pub const MAX_BREAKS: usize = 8;

/// After a flash error, persisting waits this long before trying again.
pub const FLASH_RETRY: Duration = Duration::from_secs(1);

/// When queued events are written to flash. Each write costs flash wear and time; each event
/// not yet written is lost if the power goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PersistPolicy {
    /// Every event as soon as it is queued: a power cut loses at most the event being written.
    #[default]
    EveryEvent,
    /// When this many events wait to be written, on [`flush`](Client::flush), on
    /// [`shutdown`](Client::shutdown) and on [`persist_now`](Client::persist_now).
    Every(u16),
    /// On flush, shutdown and `persist_now` only.
    OnFlush,
    /// On `persist_now` only (for example just before deep sleep).
    Manual,
}

/// Persistence counters. All saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct PersistStats {
    /// Events written to flash.
    pub persisted: u32,
    /// Events put back in the queue at boot.
    pub restored: u32,
    /// Stored events that did not fit the queue at boot (a smaller queue than the one that
    /// stored them): dropped.
    pub restore_dropped: u32,
    /// Events larger than a flash page: kept in RAM only.
    pub too_large_for_flash: u32,
    /// Times the flash region was found full of undelivered events (writing resumes when
    /// deliveries free it).
    pub full: u32,
    /// Flash errors (each retried after [`FLASH_RETRY`]).
    pub flash_errors: u32,
    /// Tail records written (one per delivered batch, at most).
    pub tail_writes: u32,
}

/// The next persistence step, for a driver to carry out on flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PersistStep {
    /// Append the queued event `seq` (its JSON was copied to the start of the buffer:
    /// `len` bytes) to the log; report the log's number for it.
    Append {
        /// The event's queue sequence number.
        seq: u64,
        /// Its JSON length at the start of the buffer.
        len: usize,
        /// Whether its JSON carries a wall-clock `timestamp`.
        has_timestamp: bool,
        /// Its capture instant.
        captured: Instant,
    },
    /// Record that every stored event below this log number is done.
    SetTail(u64),
    /// Record this boot's clock anchor: wall clock minus monotonic clock, in milliseconds.
    Anchor(i64),
}

/// How a [`PersistStep`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PersistResult {
    /// Done. For [`PersistStep::Append`], the log's number for the event.
    Done(Option<u64>),
    /// The region is full of undelivered events.
    Full,
    /// The event is larger than a flash page can hold.
    TooLarge,
    /// The flash failed.
    Flash,
}

/// Why [`Client::restore`] did not queue an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RestoreError {
    /// Persistence is not attached ([`Client::attach_persistence`]).
    NotAttached,
    /// Events were captured already: restored events must go first.
    AfterCapture,
    /// The log numbers must increase.
    OutOfOrder,
    /// The queue cannot hold it (`needed` bytes): dropped, counted in
    /// [`PersistStats::restore_dropped`].
    Full {
        /// Bytes the record needs.
        needed: usize,
    },
}

impl core::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotAttached => f.write_str("persistence is not attached"),
            Self::AfterCapture => f.write_str("restore before capturing"),
            Self::OutOfOrder => f.write_str("restored events out of order"),
            Self::Full { needed } => {
                write!(f, "restored event of {needed} bytes does not fit the queue")
            }
        }
    }
}

impl core::error::Error for RestoreError {}

/// What the log said at mount, for [`Client::attach_persistence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LogPosition {
    /// The log's tail: stored events below it are done.
    pub tail: u64,
    /// The number the log gives the next event.
    pub next: u64,
    /// This boot's number, kept on flash and one higher at every boot.
    pub boot: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    Unknown,
    Pending(i64),
    Recorded,
}

/// Where a client keeps its persistence bookkeeping: in its
/// [`Resources`](crate::resources::Resources), unused until persistence is attached. Empty, it
/// is all zeros, so a `static` `Resources` stays in `.bss`.
#[derive(Clone, Debug)]
pub(crate) struct PersistSlot {
    attached: bool,
    state: Persist,
}

impl PersistSlot {
    /// Not attached (all zeros).
    pub(crate) const EMPTY: Self = Self {
        attached: false,
        state: Persist::FRESH,
    };
}

/// The client's handle on its [`PersistSlot`].
pub(super) struct PersistCell<'r>(ManagedSlice<'r, PersistSlot>);

impl<'r> PersistCell<'r> {
    /// Not attached, over `storage` (one slot).
    pub(super) fn new(storage: ManagedSlice<'r, PersistSlot>) -> Self {
        let mut cell = Self(storage);
        if let Some(slot) = cell.0.first_mut() {
            slot.attached = false;
        }
        cell
    }

    pub(super) fn as_ref(&self) -> Option<&Persist> {
        self.0.first().filter(|s| s.attached).map(|s| &s.state)
    }

    pub(super) fn as_mut(&mut self) -> Option<&mut Persist> {
        self.0
            .first_mut()
            .filter(|s| s.attached)
            .map(|s| &mut s.state)
    }

    fn set(&mut self, state: Persist) {
        if let Some(slot) = self.0.first_mut() {
            *slot = PersistSlot {
                attached: true,
                state,
            };
        }
    }
}

/// Persistence bookkeeping (see [`PersistSlot`]).
#[derive(Clone, Debug)]
pub(super) struct Persist {
    policy: PersistPolicy,
    /// The next queue sequence number to write.
    next: u64,
    /// `(queue seq, log number)`: from `q` on, queue seq `q + k` is log number `f + k`, until
    /// the next break. An event not stored (too large) starts a break at the number the next
    /// stored event gets, so the tail computed for it never passes a stored event.
    breaks: heapless::Deque<(u64, u64), MAX_BREAKS>,
    /// The log number the next stored event gets.
    log_next: u64,
    /// The tail as recorded on flash.
    tail_recorded: u64,
    /// A tail the log refused for want of room (0: none): asked again only once a higher one
    /// is due.
    tail_refused: u64,
    anchor: Anchor,
    /// `persist_now` was called: write everything queued.
    wanted: bool,
    /// The region was full: wait for the tail to move.
    full: bool,
    retry_at: Option<Instant>,
    /// Events were queued before persistence was attached (restoring is refused).
    captured: bool,
    stats: PersistStats,
}

impl Persist {
    /// Nothing written, nothing counted, every policy field at its first (zero) value.
    const FRESH: Self = Self {
        policy: PersistPolicy::EveryEvent,
        next: 0,
        breaks: heapless::Deque::new(),
        log_next: 0,
        tail_recorded: 0,
        tail_refused: 0,
        anchor: Anchor::Unknown,
        wanted: false,
        full: false,
        retry_at: None,
        captured: false,
        stats: PersistStats {
            persisted: 0,
            restored: 0,
            restore_dropped: 0,
            too_large_for_flash: 0,
            full: 0,
            flash_errors: 0,
            tail_writes: 0,
        },
    };

    /// A flush was asked for.
    pub(super) fn flush(&mut self) {
        if self.policy != PersistPolicy::Manual {
            self.wanted = true;
        }
    }

    /// The log number of queue seq `q` (for a `q` not stored, the next stored one's).
    fn log_of(&self, q: u64) -> Option<u64> {
        self.breaks
            .iter()
            .rev()
            .find(|(bq, _)| *bq <= q)
            .map(|(bq, bf)| bf + (q - bq))
    }

    /// Records that queue seq `q` maps to log number `f`; false when no break point is free.
    fn map(&mut self, q: u64, f: u64) -> bool {
        if self.log_of(q) == Some(f) {
            return true;
        }
        if let Some(last) = self.breaks.back_mut() {
            if last.0 == q {
                last.1 = f;
                return true;
            }
        }
        self.breaks.push_back((q, f)).is_ok()
    }
}

impl Client<'_> {
    /// Turns persistence on: from now on [`next_persist_step`](Self::next_persist_step) says
    /// what to write. `at` is where the mounted log stands. Call it at boot, then
    /// [`restore`](Self::restore) the stored events, before capturing.
    ///
    /// The boot number is mixed into the uuid generator's seed, so event uuids differ across
    /// reboots even when the configured seed does not (a chip id alone, say).
    pub fn attach_persistence(&mut self, policy: PersistPolicy, at: LogPosition) {
        if self.queue.is_empty() && self.stats.captured == 0 {
            let boot = u64::from(at.boot);
            self.encoder
                .reseed(self.config.seed ^ (boot << 32 | boot).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        let front = self.queue.front_seq();
        self.persist.set(Persist {
            policy,
            next: front,
            log_next: at.next.max(at.tail),
            tail_recorded: at.tail,
            captured: !self.queue.is_empty(),
            ..Persist::FRESH
        });
        if let Some(p) = self.persist.as_mut() {
            let next = p.log_next;
            let _ = p.map(front, next);
        }
    }

    /// Changes the persistence policy.
    pub fn set_persist_policy(&mut self, policy: PersistPolicy) {
        if let Some(p) = self.persist.as_mut() {
            p.policy = policy;
        }
    }

    /// Persistence counters (zeros when persistence is not attached).
    #[must_use]
    pub fn persist_stats(&self) -> PersistStats {
        self.persist.as_ref().map(|p| p.stats).unwrap_or_default()
    }

    /// Queued events not yet written to flash.
    #[must_use]
    pub fn unpersisted(&self) -> usize {
        match self.persist.as_ref() {
            Some(p) => {
                let seqs = self.queue.seqs();
                usize::try_from(seqs.end.saturating_sub(p.next.max(seqs.start))).unwrap_or(0)
            }
            None => 0,
        }
    }

    /// Whether flash is up to date: every queued event written (as far as the policy asks, or
    /// after [`persist_now`](Self::persist_now)), every delivery recorded, the clock anchor
    /// recorded. True when persistence is not attached.
    #[must_use]
    pub fn is_persisted(&self) -> bool {
        let Some(p) = self.persist.as_ref() else {
            return true;
        };
        let tail_done = self.desired_tail().is_none_or(|t| t <= p.tail_recorded);
        let anchor_done = !matches!(p.anchor, Anchor::Pending(_));
        self.unpersisted() == 0 && tail_done && anchor_done
    }

    /// When a persistence step that failed may be tried again (after a flash error), if one
    /// waits for that: a driver sleeps until then or until the client changes.
    #[must_use]
    pub fn persist_timeout(&self) -> Option<Instant> {
        self.persist.as_ref().and_then(|p| p.retry_at)
    }

    /// Asks for every queued event to be written to flash now, whatever the policy (for
    /// example before deep sleep). [`unpersisted`](Self::unpersisted) says when it is done.
    pub fn persist_now(&mut self) {
        if let Some(p) = self.persist.as_mut() {
            p.wanted = true;
        }
    }

    /// Queues an event read back from flash at boot: `log_seq` is its number in the log, then
    /// its JSON, whether that JSON carries a wall-clock `timestamp`, and otherwise when it
    /// happened. Call it for every stored event, oldest first, before capturing anything.
    ///
    /// # Errors
    /// See [`RestoreError`]; an event that does not fit is dropped and counted.
    pub fn restore(
        &mut self,
        log_seq: u64,
        json: &[u8],
        has_timestamp: bool,
        restored: Option<Restored>,
    ) -> Result<u64, RestoreError> {
        let Some(p) = self.persist.as_mut() else {
            return Err(RestoreError::NotAttached);
        };
        if p.captured || self.stats.captured > 0 {
            return Err(RestoreError::AfterCapture);
        }
        let end = self.queue.seqs().end;
        if let Some(last) = end.checked_sub(1).and_then(|q| p.log_of(q)) {
            if log_seq <= last && end > self.queue.front_seq() {
                return Err(RestoreError::OutOfOrder);
            }
        }
        let q = end;
        // The mapping first: if no break point is free, the event cannot be tracked.
        if !p.map(q, log_seq) {
            p.stats.restore_dropped = p.stats.restore_dropped.saturating_add(1);
            return Err(RestoreError::Full { needed: json.len() });
        }
        match self.queue.push_restored(json, has_timestamp, restored) {
            Ok(seq) => {
                p.next = seq + 1;
                p.log_next = p.log_next.max(log_seq.saturating_add(1));
                p.stats.restored = p.stats.restored.saturating_add(1);
                Ok(seq)
            }
            Err(e) => {
                p.stats.restore_dropped = p.stats.restore_dropped.saturating_add(1);
                // Nothing was queued: the break point just added must not stay.
                if p.breaks.back().is_some_and(|b| b.0 == q) {
                    let _ = p.breaks.pop_back();
                }
                let needed = match e {
                    PushError::TooLarge { needed, .. } | PushError::Full { needed, .. } => needed,
                    PushError::Write(()) => json.len(),
                };
                Err(RestoreError::Full { needed })
            }
        }
    }

    /// Counts a stored event that could not be read back at boot (larger than the buffer) as
    /// dropped.
    pub fn note_restore_dropped(&mut self) {
        if let Some(p) = self.persist.as_mut() {
            p.stats.restore_dropped = p.stats.restore_dropped.saturating_add(1);
        }
    }

    /// Brings the bookkeeping up to date with the queue: events that left it unwritten are
    /// skipped, and break points the queue has passed are dropped.
    fn persist_sync(&mut self) {
        let seqs = self.queue.seqs();
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        // Break points the queue has passed go first, so the one below can be recorded.
        while p.breaks.len() > 1 && p.breaks.get(1).is_some_and(|b| b.0 <= seqs.start) {
            let _ = p.breaks.pop_front();
        }
        if p.next < seqs.start {
            p.next = seqs.start;
            let n = p.log_next;
            let _ = p.map(seqs.start, n);
        }
    }

    /// The log tail that makes every event that left the queue done on flash.
    fn desired_tail(&self) -> Option<u64> {
        let p = self.persist.as_ref()?;
        let front = self.queue.front_seq();
        if front < p.next {
            p.log_of(front)
        } else {
            Some(p.log_next)
        }
    }

    fn wants_write(&self, p: &Persist) -> bool {
        let seqs = self.queue.seqs();
        let waiting = seqs.end.saturating_sub(p.next.max(seqs.start));
        if waiting == 0 {
            return false;
        }
        // `wanted` is set by `persist_now` and by a flush (not under `Manual`), and latches
        // while events wait.
        match p.policy {
            PersistPolicy::EveryEvent => true,
            PersistPolicy::Every(n) => p.wanted || waiting >= u64::from(n.max(1)),
            PersistPolicy::OnFlush => p.wanted || self.shut_down,
            PersistPolicy::Manual => p.wanted,
        }
    }

    /// The next persistence step, if any: a clock anchor to record (once per boot, when `now`
    /// has a wall clock), a tail to record (after deliveries), or an event to write (when the
    /// policy says). For [`PersistStep::Append`] the event's JSON is copied to the start of
    /// `buf`; an event longer than `buf` is skipped (kept in RAM only, counted). Carry the step
    /// out and report it with [`finish_persist_step`](Self::finish_persist_step) before asking
    /// again: until then the same step comes back.
    #[must_use]
    pub fn next_persist_step(&mut self, now: Now, buf: &mut [u8]) -> Option<PersistStep> {
        self.persist_sync();
        let tail = self.desired_tail();
        let p = self.persist.as_mut()?;
        if p.retry_at.is_some_and(|t| now.mono < t) {
            return None;
        }
        p.retry_at = None;
        if p.anchor == Anchor::Unknown {
            if let Some(wall) = now.wall {
                let a = i64::try_from(wall.as_millis())
                    .unwrap_or(i64::MAX)
                    .saturating_sub(i64::try_from(now.mono.as_millis()).unwrap_or(i64::MAX));
                p.anchor = Anchor::Pending(a);
            }
        }
        // The tail first: it is what frees room when the region is full.
        let floor = p.tail_recorded.max(p.tail_refused);
        if let Some(t) = tail.filter(|t| *t > floor) {
            return Some(PersistStep::SetTail(t));
        }
        if p.full {
            return None;
        }
        if let Anchor::Pending(a) = p.anchor {
            return Some(PersistStep::Anchor(a));
        }
        let p = self.persist.as_ref()?;
        if !self.wants_write(p) {
            if let Some(p) = self.persist.as_mut() {
                p.wanted = false;
            }
            return None;
        }
        if let Some(p) = self.persist.as_mut() {
            p.wanted = true;
        }
        loop {
            let p = self.persist.as_ref()?;
            let next = p.next;
            let rec = self.queue.iter().find(|r| r.seq >= next)?;
            let (seq, len) = (rec.seq, rec.json.len());
            // Only write what can be tracked: continuing the current numbering, or with a
            // break point free for a new one. Otherwise wait for the queue to move on.
            if p.log_of(seq) != Some(p.log_next) && p.breaks.is_full() {
                return None;
            }
            match buf.get_mut(..len) {
                Some(dst) => {
                    dst.copy_from_slice(rec.json);
                    return Some(PersistStep::Append {
                        seq,
                        len,
                        has_timestamp: rec.has_timestamp,
                        captured: rec.captured,
                    });
                }
                None => {
                    // Larger than the driver's staging buffer: RAM only.
                    ph_warn!("event #{} ({} bytes) too large to persist", seq, len);
                    if !self.skip_unstorable(seq) {
                        return None;
                    }
                }
            }
        }
    }

    /// Leaves queued event `seq` in RAM only (too large for flash), counted. False when no
    /// break point is free to record that: it is skipped once the queue has moved on.
    fn skip_unstorable(&mut self, seq: u64) -> bool {
        let Some(p) = self.persist.as_mut() else {
            return false;
        };
        if !p.map(seq + 1, p.log_next) {
            return false;
        }
        p.next = seq + 1;
        p.stats.too_large_for_flash = p.stats.too_large_for_flash.saturating_add(1);
        true
    }

    /// Reports how the step from [`next_persist_step`](Self::next_persist_step) ended.
    pub fn finish_persist_step(&mut self, now: Now, step: &PersistStep, result: PersistResult) {
        let Some(p) = self.persist.as_mut() else {
            return;
        };
        match (step, result) {
            (PersistStep::Anchor(_), PersistResult::Done(_)) => p.anchor = Anchor::Recorded,
            (PersistStep::SetTail(t), PersistResult::Done(_)) => {
                p.tail_recorded = p.tail_recorded.max(*t);
                p.tail_refused = 0;
                p.stats.tail_writes = p.stats.tail_writes.saturating_add(1);
                // Room may have been freed.
                p.full = false;
            }
            (PersistStep::SetTail(t), PersistResult::Full) => {
                // No room even for the tail until deliveries clear the oldest page.
                p.tail_refused = *t;
                p.stats.full = p.stats.full.saturating_add(1);
                p.full = true;
            }
            (&PersistStep::Append { seq, .. }, PersistResult::Done(Some(log_seq))) => {
                if seq == p.next {
                    if p.map(seq, log_seq) {
                        p.next = seq + 1;
                        p.log_next = log_seq.saturating_add(1);
                        p.stats.persisted = p.stats.persisted.saturating_add(1);
                    } else {
                        // Stored under a number that cannot be tracked (the log's numbering
                        // jumped while every break point was in use): write nothing more until
                        // a tail is recorded, rather than risk a tail that passes an
                        // undelivered event. It stays queued in RAM.
                        p.full = true;
                    }
                }
            }
            (&PersistStep::Append { seq, .. }, PersistResult::TooLarge) => {
                if seq == p.next && !self.skip_unstorable(seq) {
                    // No break point free to skip it: ask again later, not at once.
                    if let Some(p) = self.persist.as_mut() {
                        p.retry_at = Some(now.mono + FLASH_RETRY);
                    }
                }
            }
            (PersistStep::Append { .. } | PersistStep::Anchor(_), PersistResult::Full) => {
                p.stats.full = p.stats.full.saturating_add(1);
                p.full = true;
            }
            (PersistStep::Append { .. }, PersistResult::Flash) => {
                // The log never gives a number to two events: the one this write was given is
                // spent (the item may be on flash, whole or torn), and the retry gets the next.
                p.log_next = p.log_next.saturating_add(1);
                p.stats.flash_errors = p.stats.flash_errors.saturating_add(1);
                p.retry_at = Some(now.mono + FLASH_RETRY);
            }
            (_, PersistResult::Flash | PersistResult::TooLarge) => {
                p.stats.flash_errors = p.stats.flash_errors.saturating_add(1);
                p.retry_at = Some(now.mono + FLASH_RETRY);
            }
            (_, PersistResult::Done(_)) => {}
        }
    }
}
