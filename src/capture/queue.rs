//! The event queue: framed records in a byte ring over caller-owned storage.
//!
//! # Memory model
//!
//! A [`Queue`] owns (or borrows) one byte buffer and nothing else. Each queued event is one
//! **record**: a 12-byte frame header (length, a "has timestamp" bit, and the monotonic capture
//! instant) followed by the event's JSON. A record is always contiguous, so a batch is rendered
//! by copying slices. When the space left at the end of the buffer is too small for a record, the
//! record goes to the start of the buffer instead (the ring "wraps"); the unused tail bytes are
//! simply skipped. The queue's RAM is exactly `size_of::<Queue<S>>()`: the storage plus 64 bytes of
//! bookkeeping on Cortex-M (80 on a 64-bit host).
//!
//! # Identity
//!
//! Records are numbered in arrival order by a 64-bit sequence number that never wraps. The
//! number is implicit (the oldest record's number plus its position), so it costs no storage.
//! A rendered batch names the sequence range it holds, and [`Queue::commit`] removes exactly the
//! records of that range that are still queued: records evicted while the request was in flight
//! are gone already and records captured meanwhile have higher numbers, so neither is touched.
//!
//! # When full
//!
//! The [`OverflowPolicy`] decides: [`DropOldest`](OverflowPolicy::DropOldest) evicts the oldest
//! records until the new one fits; [`RejectNewest`](OverflowPolicy::RejectNewest) refuses the new
//! one with an error. Every drop is counted in [`QueueStats`]. A record larger than the whole
//! buffer is refused under both policies without evicting anything.

use crate::time::{Duration, Instant, UnixMillis};

/// Size of a record's frame header: `u32` length-and-flags, then `u64` capture instant (ms),
/// both little-endian.
pub const RECORD_HEADER_LEN: usize = 12;

const TS_FLAG: u32 = 1 << 31;
/// Restored from flash; the time field is the Unix time of capture.
#[cfg(feature = "storage")]
const WALL_FLAG: u32 = 1 << 30;
/// Restored from flash; the time field is how long before this boot it was captured (at least).
#[cfg(feature = "storage")]
const BEFORE_BOOT_FLAG: u32 = 1 << 29;
/// The low 29 bits: the JSON length (bits 29 and 30 mark restored records).
const LEN_MASK: u32 = (1 << 29) - 1;

/// What to do with a new event when the queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OverflowPolicy {
    /// Evict the oldest events until the new one fits (posthog-node's behaviour). Keeps the most
    /// recent picture of the device. Evictions are counted in [`QueueStats::evicted`].
    #[default]
    DropOldest,
    /// Refuse the new event with [`CaptureError::QueueFull`](crate::CaptureError::QueueFull)
    /// (posthog-python's and posthog-go's behaviour). Counted in [`QueueStats::rejected`].
    RejectNewest,
}

/// Why the caller removed records with [`Queue::discard`] or [`Queue::drop_oldest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DropReason {
    /// The record cannot fit in any request body.
    TooLargeForBody,
    /// The server refused the batch for good (a 4xx other than 408/413/429).
    Rejected,
    /// The application's give-up policy ended the retries (never by default: an outage alone
    /// drops nothing).
    GaveUp,
}

/// Counters of everything that entered and left the queue. All saturate at `u32::MAX`.
///
/// At any time: `enqueued = len + committed + evicted + discarded_*` (while no counter has
/// saturated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct QueueStats {
    /// Records accepted.
    pub enqueued: u32,
    /// Records removed by [`Queue::commit`] (delivered).
    pub committed: u32,
    /// Oldest records evicted to make room ([`OverflowPolicy::DropOldest`]).
    pub evicted: u32,
    /// New records refused because the queue was full ([`OverflowPolicy::RejectNewest`]).
    pub rejected: u32,
    /// New records refused because they are larger than the whole queue.
    pub too_large: u32,
    /// Records dropped because they cannot fit in a request body.
    pub discarded_too_large_for_body: u32,
    /// Records dropped because the server refused them.
    pub discarded_rejected: u32,
    /// Records dropped by the application's give-up policy (after N failed attempts or past an
    /// age; never with the default policy).
    pub discarded_gave_up: u32,
}

impl QueueStats {
    /// Every record that left the queue without being delivered, or was never let in.
    #[must_use]
    pub fn dropped(&self) -> u32 {
        self.evicted
            .saturating_add(self.rejected)
            .saturating_add(self.too_large)
            .saturating_add(self.discarded_too_large_for_body)
            .saturating_add(self.discarded_rejected)
            .saturating_add(self.discarded_gave_up)
    }
}

/// A half-open range of record sequence numbers, `start..end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqRange {
    /// First sequence number in the range.
    pub start: u64,
    /// One past the last sequence number in the range.
    pub end: u64,
}

impl SeqRange {
    /// Number of sequence numbers in the range.
    #[must_use]
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `seq` is in the range.
    #[must_use]
    pub const fn contains(&self, seq: u64) -> bool {
        self.start <= seq && seq < self.end
    }
}

/// One queued event, borrowed from the ring.
#[derive(Clone, Copy, Debug)]
pub struct Record<'q> {
    /// Sequence number (arrival order, never reused).
    pub seq: u64,
    /// Monotonic instant of capture; `offset` is computed from it at send time.
    pub captured: Instant,
    /// Whether the JSON already carries a wall-clock `timestamp` (else `offset` is rendered).
    pub has_timestamp: bool,
    /// For an event restored from flash after a reset: when it happened, as far as is known
    /// (its `captured` is then zero, so it is due at once).
    pub restored: Option<Restored>,
    /// The event object without its closing `}`.
    pub json: &'q [u8],
}

/// When an event restored from flash (captured before this boot, without a wall-clock
/// `timestamp` in its JSON) happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Restored {
    /// Exactly then: its boot learned the wall clock. Sent with this `timestamp`.
    Wall(UnixMillis),
    /// At least this long before the current boot started: its boot never learned the wall
    /// clock. Sent with `offset` (time since this boot started plus this) and the property
    /// `$time_approximate: true`.
    BeforeBoot(Duration),
}

/// Why [`Queue::push_with`] stored nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError<E> {
    /// The writer failed.
    Write(E),
    /// The record (header included) is larger than the whole buffer.
    TooLarge {
        /// Bytes the record needs.
        needed: usize,
        /// Buffer capacity.
        max: usize,
    },
    /// Full, and the policy is [`OverflowPolicy::RejectNewest`].
    Full {
        /// Bytes the record needs.
        needed: usize,
        /// Largest contiguous free space.
        free: usize,
    },
}

/// Framed event records in a byte ring over storage `S` (`[u8; N]`, `&mut [u8]`, ...).
///
/// ```
/// use posthog_embedded::capture::{OverflowPolicy, Queue};
/// // `const fn new` and all zeros when empty: a `static` (behind your mutex of choice) lands
/// // in `.bss`.
/// static _EXAMPLE: std::sync::Mutex<Queue<[u8; 4096]>> =
///     std::sync::Mutex::new(Queue::new([0; 4096], OverflowPolicy::DropOldest));
/// let mut storage = [0u8; 1024];
/// let q = Queue::new(&mut storage[..], OverflowPolicy::RejectNewest);
/// assert!(q.is_empty());
/// ```
#[derive(Debug)]
pub struct Queue<S> {
    storage: S,
    /// Offset of the oldest record.
    head: usize,
    /// Offset where the next record goes.
    tail: usize,
    /// When wrapped: end of the records in the upper segment `[head, wrap)`; the rest are in
    /// `[0, tail)`.
    wrap: usize,
    wrapped: bool,
    count: usize,
    head_seq: u64,
    policy: OverflowPolicy,
    stats: QueueStats,
    /// Where the newest record starts, plus one (0: none, so an empty queue stays all zeros
    /// and lands in `.bss`), and whether writing it wrapped the ring: what
    /// [`edit_last`](Self::edit_last) and [`unpush_last`](Self::unpush_last) need. Cleared when
    /// the newest record is removed.
    last: usize,
    last_wraps: bool,
}

fn bump(c: &mut u32, n: usize) {
    *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

impl<S> Queue<S> {
    /// An empty queue over `storage` with the given overflow policy. `const`, so a queue can be
    /// a `static`.
    pub const fn new(storage: S, policy: OverflowPolicy) -> Self {
        Self {
            storage,
            head: 0,
            tail: 0,
            wrap: 0,
            wrapped: false,
            count: 0,
            head_seq: 0,
            policy,
            stats: QueueStats {
                enqueued: 0,
                committed: 0,
                evicted: 0,
                rejected: 0,
                too_large: 0,
                discarded_too_large_for_body: 0,
                discarded_rejected: 0,
                discarded_gave_up: 0,
            },
            last: 0,
            last_wraps: false,
        }
    }

    /// Number of queued records.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is queued.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The counters.
    #[must_use]
    pub const fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// The overflow policy.
    #[must_use]
    pub const fn policy(&self) -> OverflowPolicy {
        self.policy
    }

    /// Changes the overflow policy for later pushes.
    pub fn set_policy(&mut self, policy: OverflowPolicy) {
        self.policy = policy;
    }

    /// Sequence number the oldest queued record has (or the next record will get).
    #[must_use]
    pub const fn front_seq(&self) -> u64 {
        self.head_seq
    }

    /// Sequence numbers of everything queued now.
    #[must_use]
    pub const fn seqs(&self) -> SeqRange {
        SeqRange {
            start: self.head_seq,
            end: self.head_seq + self.count as u64,
        }
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> Queue<S> {
    /// Total bytes of storage.
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Bytes taken by queued records (headers included).
    pub fn bytes_used(&self) -> usize {
        if self.count == 0 {
            0
        } else if self.wrapped {
            (self.wrap - self.head) + self.tail
        } else {
            self.tail - self.head
        }
    }

    /// Largest contiguous free region: `(offset, len, wraps)`.
    fn largest_region(&self) -> (usize, usize, bool) {
        if self.wrapped {
            (self.tail, self.head - self.tail, false)
        } else {
            let end = self.capacity() - self.tail;
            if end >= self.head {
                (self.tail, end, false)
            } else {
                (0, self.head, true)
            }
        }
    }

    /// A region that holds `total` bytes, if one exists.
    fn region_for(&self, total: usize) -> Option<(usize, bool)> {
        if self.wrapped {
            (self.head - self.tail >= total).then_some((self.tail, false))
        } else if self.capacity() - self.tail >= total {
            Some((self.tail, false))
        } else if self.head >= total {
            Some((0, true))
        } else {
            None
        }
    }

    /// Appends one record whose JSON `write` produces.
    ///
    /// `write` gets a buffer and must return the number of bytes the record's JSON needs, whether
    /// or not they all fit (the JSON [`Sink`](crate::json::write::Sink) counts past its end). If
    /// they did not fit, the queue finds (or, under [`OverflowPolicy::DropOldest`], makes) a
    /// region of that size and calls `write` once more, so `write` must produce the same bytes
    /// each time. Returns the record's sequence number.
    ///
    /// # Errors
    /// The writer's error, [`PushError::TooLarge`], or [`PushError::Full`]. Nothing is stored
    /// on error.
    pub fn push_with<E, F>(
        &mut self,
        captured: Instant,
        has_timestamp: bool,
        mut write: F,
    ) -> Result<u64, PushError<E>>
    where
        F: FnMut(&mut [u8]) -> Result<usize, E>,
    {
        let cap = self.capacity();
        let (off, len, wraps) = self.largest_region();
        let body = self
            .storage
            .as_mut()
            .get_mut(off..off + len)
            .and_then(|r| r.get_mut(RECORD_HEADER_LEN..))
            .unwrap_or_default();
        let needed = write(body).map_err(PushError::Write)?;
        let total = needed.saturating_add(RECORD_HEADER_LEN);
        if total > cap || needed > LEN_MASK as usize {
            bump(&mut self.stats.too_large, 1);
            return Err(PushError::TooLarge {
                needed: total,
                max: cap,
            });
        }
        if total <= len {
            self.finish_push(off, wraps, needed, captured, has_timestamp);
            return Ok(self.head_seq + self.count as u64 - 1);
        }
        let (off, wraps) = match self.region_for(total) {
            Some(r) => r,
            None => match self.policy {
                OverflowPolicy::RejectNewest => {
                    bump(&mut self.stats.rejected, 1);
                    return Err(PushError::Full {
                        needed: total,
                        free: len,
                    });
                }
                OverflowPolicy::DropOldest => loop {
                    if let Some(r) = self.region_for(total) {
                        break r;
                    }
                    if self.pop_front().is_none() {
                        // Unreachable: an empty queue has a region of `cap >= total` bytes.
                        return Err(PushError::Full {
                            needed: total,
                            free: 0,
                        });
                    }
                    bump(&mut self.stats.evicted, 1);
                },
            },
        };
        let body = self
            .storage
            .as_mut()
            .get_mut(off + RECORD_HEADER_LEN..off + total)
            .unwrap_or_default();
        let again = write(body).map_err(PushError::Write)?;
        if again != needed {
            // The writer is not deterministic; refuse rather than store a torn record.
            bump(&mut self.stats.rejected, 1);
            return Err(PushError::Full {
                needed: again.saturating_add(RECORD_HEADER_LEN),
                free: total,
            });
        }
        self.finish_push(off, wraps, needed, captured, has_timestamp);
        Ok(self.head_seq + self.count as u64 - 1)
    }

    /// Appends an event restored from flash after a reset (feature `storage`): its JSON as stored, whether it
    /// carries its own `timestamp`, and, if not, when it happened ([`Restored`]). It takes the
    /// next sequence number. The overflow policy applies as to a capture.
    ///
    /// # Errors
    /// [`PushError::TooLarge`] or [`PushError::Full`]; nothing is stored on error.
    #[cfg(feature = "storage")]
    pub fn push_restored(
        &mut self,
        json: &[u8],
        has_timestamp: bool,
        restored: Option<Restored>,
    ) -> Result<u64, PushError<()>> {
        let (mut flags, time) = match restored {
            None => (0, 0),
            Some(Restored::Wall(t)) => (WALL_FLAG, t.as_millis()),
            Some(Restored::BeforeBoot(d)) => (BEFORE_BOOT_FLAG, d.as_millis()),
        };
        if has_timestamp {
            flags |= TS_FLAG;
        }
        let seq = self.push_with(Instant::ZERO, has_timestamp, |buf| {
            if let Some(dst) = buf.get_mut(..json.len()) {
                dst.copy_from_slice(json);
            }
            Ok::<usize, ()>(json.len())
        })?;
        // Stamp the record just pushed with the restored time.
        self.finish_header(self.last.saturating_sub(1), json.len(), flags, time);
        Ok(seq)
    }

    fn finish_header(&mut self, off: usize, json_len: usize, flags: u32, time: u64) {
        let word = (json_len as u32 & LEN_MASK) | flags;
        if let Some(h) = self.storage.as_mut().get_mut(off..off + RECORD_HEADER_LEN) {
            let (a, b) = h.split_at_mut(4);
            a.copy_from_slice(&word.to_le_bytes());
            b.copy_from_slice(&time.to_le_bytes());
        }
    }

    fn finish_push(
        &mut self,
        off: usize,
        wraps: bool,
        json_len: usize,
        captured: Instant,
        has_timestamp: bool,
    ) {
        let flags = if has_timestamp { TS_FLAG } else { 0 };
        self.finish_header(off, json_len, flags, captured.as_millis());
        if wraps {
            self.wrap = self.tail;
            self.wrapped = true;
        }
        self.tail = off + RECORD_HEADER_LEN + json_len;
        self.count += 1;
        self.last = off + 1;
        self.last_wraps = wraps;
        bump(&mut self.stats.enqueued, 1);
    }

    /// Lets `edit` change the JSON of the record just pushed, in place: it gets the record's
    /// bytes followed by the free space after them, and the record's length, and returns the
    /// new length (at most the slice's), or `None` to leave the record as it was. For
    /// before-send hooks. Returns whether the record was changed.
    pub(crate) fn edit_last(
        &mut self,
        edit: impl FnOnce(&mut [u8], usize) -> Option<usize>,
    ) -> bool {
        let Some(off) = self.last.checked_sub(1) else {
            return false;
        };
        let start = off + RECORD_HEADER_LEN;
        let len = self.tail.saturating_sub(start);
        // Free space after the newest record: up to the oldest one when wrapped, else the end.
        let end = if self.wrapped {
            self.head
        } else {
            self.capacity()
        };
        let Some(area) = self.storage.as_mut().get_mut(start..end.max(start + len)) else {
            return false;
        };
        let Some(new_len) = edit(area, len).filter(|n| *n <= area.len()) else {
            return false;
        };
        let Some(h) = self.storage.as_mut().get_mut(off..off + 4) else {
            return false;
        };
        let Ok(word) = <[u8; 4]>::try_from(&*h) else {
            return false;
        };
        let word = (u32::from_le_bytes(word) & !LEN_MASK) | (new_len as u32 & LEN_MASK);
        h.copy_from_slice(&word.to_le_bytes());
        self.tail = start + new_len;
        true
    }

    /// Removes the record just pushed, as if it had never been (a before-send hook dropped it
    /// after encoding). Returns whether there was one.
    pub(crate) fn unpush_last(&mut self) -> bool {
        let Some(off) = self.last.checked_sub(1) else {
            return false;
        };
        let wraps = self.last_wraps;
        self.last = 0;
        if wraps {
            self.tail = self.wrap;
            self.wrap = 0;
            self.wrapped = false;
        } else {
            self.tail = off;
        }
        self.count = self.count.saturating_sub(1);
        self.stats.enqueued = self.stats.enqueued.saturating_sub(1);
        if self.count == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrap = 0;
            self.wrapped = false;
        }
        true
    }

    /// Reads the record at byte offset `at`: `(record, offset of the next one)`.
    fn record_at(&self, at: usize, seq: u64) -> Option<(Record<'_>, usize)> {
        let s = self.storage.as_ref();
        let h = s.get(at..at + RECORD_HEADER_LEN)?;
        let word = u32::from_le_bytes(h.get(..4)?.try_into().ok()?);
        let ms = u64::from_le_bytes(h.get(4..)?.try_into().ok()?);
        let len = (word & LEN_MASK) as usize;
        let start = at + RECORD_HEADER_LEN;
        let json = s.get(start..start + len)?;
        // Only `push_restored` (feature `storage`) sets these flags: without it, no record is
        // restored and the renderer's restored paths are not linked.
        #[cfg(feature = "storage")]
        let restored = if word & WALL_FLAG != 0 {
            Some(Restored::Wall(UnixMillis::from_millis(ms)))
        } else if word & BEFORE_BOOT_FLAG != 0 {
            Some(Restored::BeforeBoot(Duration::from_millis(ms)))
        } else {
            None
        };
        #[cfg(not(feature = "storage"))]
        let restored = None;
        Some((
            Record {
                seq,
                captured: if restored.is_some() {
                    Instant::ZERO
                } else {
                    Instant::from_millis(ms)
                },
                has_timestamp: word & TS_FLAG != 0,
                restored,
                json,
            },
            start + len,
        ))
    }

    /// Removes the oldest record, without counting it anywhere. Returns its length in bytes.
    fn pop_front(&mut self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let (rec, next) = self.record_at(self.head, self.head_seq)?;
        let size = RECORD_HEADER_LEN + rec.json.len();
        self.count -= 1;
        self.head_seq += 1;
        if self.count == 0 {
            self.last = 0;
        }
        if self.count == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrap = 0;
            self.wrapped = false;
        } else {
            self.head = next;
            if self.wrapped && self.head >= self.wrap {
                self.head = 0;
                self.wrapped = false;
            }
        }
        Some(size)
    }

    /// The oldest record.
    #[must_use]
    pub fn front(&self) -> Option<Record<'_>> {
        self.iter().next()
    }

    /// Every queued record, oldest first.
    pub fn iter(&self) -> Records<'_, S> {
        Records {
            queue: self,
            at: self.head,
            seq: self.head_seq,
            left: self.count,
        }
    }

    /// Removes the records of `range` that are still queued (a delivered batch) and counts them
    /// as committed. Returns how many were removed.
    ///
    /// Only records at the front can be in the range (a batch is always cut from the front), so
    /// this removes from the front while the oldest record's number is inside `range`.
    pub fn commit(&mut self, range: SeqRange) -> usize {
        let n = self.remove_front_in(range);
        bump(&mut self.stats.committed, n);
        n
    }

    /// Removes the records of `range` that are still queued without delivering them, counted
    /// under `reason`. Returns how many were removed.
    pub fn discard(&mut self, range: SeqRange, reason: DropReason) -> usize {
        let n = self.remove_front_in(range);
        self.count_drop(reason, n);
        n
    }

    /// Removes the oldest record without delivering it, counted under `reason` (for example
    /// after [`BatchError::RecordTooLarge`](crate::BatchError::RecordTooLarge)). Returns its
    /// sequence number.
    pub fn drop_oldest(&mut self, reason: DropReason) -> Option<u64> {
        let seq = self.head_seq;
        self.pop_front()?;
        self.count_drop(reason, 1);
        Some(seq)
    }

    fn count_drop(&mut self, reason: DropReason, n: usize) {
        let c = match reason {
            DropReason::TooLargeForBody => &mut self.stats.discarded_too_large_for_body,
            DropReason::Rejected => &mut self.stats.discarded_rejected,
            DropReason::GaveUp => &mut self.stats.discarded_gave_up,
        };
        bump(c, n);
    }

    fn remove_front_in(&mut self, range: SeqRange) -> usize {
        let mut n = 0;
        while self.count > 0 && range.contains(self.head_seq) {
            if self.pop_front().is_none() {
                break;
            }
            n += 1;
        }
        n
    }
}

/// Iterator over queued records, oldest first.
#[derive(Debug)]
pub struct Records<'q, S> {
    queue: &'q Queue<S>,
    at: usize,
    seq: u64,
    left: usize,
}

impl<'q, S: AsRef<[u8]> + AsMut<[u8]>> Iterator for Records<'q, S> {
    type Item = Record<'q>;

    fn next(&mut self) -> Option<Record<'q>> {
        if self.left == 0 {
            return None;
        }
        if self.queue.wrapped && self.at >= self.queue.wrap {
            self.at = 0;
        }
        let (rec, next) = self.queue.record_at(self.at, self.seq)?;
        self.at = next;
        self.seq += 1;
        self.left -= 1;
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn push(q: &mut Queue<[u8; 100]>, payload: &[u8]) -> Result<u64, PushError<()>> {
        q.push_with(Instant::from_millis(payload.len() as u64), false, |buf| {
            if let Some(d) = buf.get_mut(..payload.len()) {
                d.copy_from_slice(payload);
            }
            Ok(payload.len())
        })
    }

    fn contents(q: &Queue<[u8; 100]>) -> Vec<(u64, Vec<u8>)> {
        q.iter().map(|r| (r.seq, r.json.to_vec())).collect()
    }

    #[test]
    fn fifo_with_wraparound() {
        let mut q = Queue::new([0u8; 100], OverflowPolicy::RejectNewest);
        // 3 records of 12 + 18 = 30 bytes: 90 used.
        for i in 0..3u8 {
            assert_eq!(push(&mut q, &[b'a' + i; 18]), Ok(u64::from(i)));
        }
        assert_eq!(q.bytes_used(), 90);
        // 10 bytes left at the end: a 30-byte record does not fit.
        assert_eq!(
            push(&mut q, &[b'x'; 18]),
            Err(PushError::Full {
                needed: 30,
                free: 10
            })
        );
        assert_eq!(q.stats().rejected, 1);
        // Deliver the first: now it wraps to the start.
        assert_eq!(q.commit(SeqRange { start: 0, end: 1 }), 1);
        assert_eq!(push(&mut q, &[b'd'; 18]), Ok(3));
        assert!(q.wrapped);
        let c = contents(&q);
        assert_eq!(c.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(c[2].1, [b'd'; 18]);
        // Drain in order across the wrap.
        assert_eq!(q.commit(SeqRange { start: 1, end: 3 }), 2);
        assert!(!q.wrapped);
        assert_eq!(contents(&q), [(3, [b'd'; 18].to_vec())]);
        assert_eq!(q.commit(SeqRange { start: 3, end: 4 }), 1);
        assert!(q.is_empty());
        assert_eq!(q.bytes_used(), 0);
        assert_eq!(q.stats().committed, 4);
    }

    #[test]
    fn drop_oldest_evicts_until_it_fits_and_counts() {
        let mut q = Queue::new([0u8; 100], OverflowPolicy::DropOldest);
        for i in 0..3u8 {
            push(&mut q, &[i; 18]).unwrap();
        }
        // 60 bytes needed: evicts the two oldest (then the region at the start is 60 bytes).
        assert_eq!(push(&mut q, &[9; 48]), Ok(3));
        assert_eq!(q.stats().evicted, 2);
        let seqs: Vec<u64> = q.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(q.stats().enqueued, 4);
    }

    #[test]
    fn too_large_never_evicts() {
        let mut q = Queue::new([0u8; 100], OverflowPolicy::DropOldest);
        push(&mut q, &[1; 10]).unwrap();
        assert_eq!(
            push(&mut q, &[0; 89]),
            Err(PushError::TooLarge {
                needed: 101,
                max: 100
            })
        );
        assert_eq!(q.len(), 1);
        assert_eq!(q.stats().too_large, 1);
        // Exactly the capacity fits (after evicting).
        assert_eq!(push(&mut q, &[0; 88]), Ok(1));
        assert_eq!(q.stats().evicted, 1);
    }

    #[test]
    fn commit_is_by_identity_when_in_flight_records_were_evicted() {
        // The contract's retry-queue scenario: capacity for 3, a batch of 3 in flight, 3 more
        // captured meanwhile under drop-oldest, then the batch succeeds.
        let mut q = Queue::new([0u8; 100], OverflowPolicy::DropOldest);
        for i in 0..3u8 {
            push(&mut q, &[i; 18]).unwrap();
        }
        let in_flight = q.seqs();
        for i in 3..6u8 {
            push(&mut q, &[i; 18]).unwrap();
        }
        assert_eq!(q.stats().evicted, 3);
        // Committing the old batch must not remove the replacements.
        assert_eq!(q.commit(in_flight), 0);
        assert_eq!(q.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
    }

    #[test]
    fn discard_and_drop_oldest_are_counted() {
        let mut q = Queue::new([0u8; 100], OverflowPolicy::RejectNewest);
        for i in 0..3u8 {
            push(&mut q, &[i; 8]).unwrap();
        }
        assert_eq!(q.drop_oldest(DropReason::TooLargeForBody), Some(0));
        assert_eq!(
            q.discard(SeqRange { start: 1, end: 2 }, DropReason::Rejected),
            1
        );
        assert_eq!(
            q.discard(SeqRange { start: 0, end: 9 }, DropReason::GaveUp),
            1
        );
        assert_eq!(q.drop_oldest(DropReason::Rejected), None);
        let s = q.stats();
        assert_eq!(
            (
                s.discarded_too_large_for_body,
                s.discarded_rejected,
                s.discarded_gave_up
            ),
            (1, 1, 1)
        );
        assert_eq!(s.dropped(), 3);
    }

    #[test]
    fn writer_errors_store_nothing() {
        let mut q = Queue::new([0u8; 100], OverflowPolicy::RejectNewest);
        let r = q.push_with(Instant::ZERO, false, |_| Err::<usize, _>("bad"));
        assert_eq!(r, Err(PushError::Write("bad")));
        assert!(q.is_empty());
        assert_eq!(q.stats().enqueued, 0);
    }

    #[test]
    fn header_keeps_time_and_flag() {
        let mut q = Queue::new([0u8; 100], OverflowPolicy::RejectNewest);
        q.push_with(Instant::from_millis(u64::MAX - 1), true, |b| {
            if let Some(x) = b.get_mut(..2) {
                x.copy_from_slice(b"{}");
            }
            Ok::<_, ()>(2)
        })
        .unwrap();
        let r = q.front().unwrap();
        assert_eq!(r.captured, Instant::from_millis(u64::MAX - 1));
        assert!(r.has_timestamp);
        assert_eq!(r.json, b"{}");
    }

    /// Differential test against a `VecDeque` model over a long pseudo-random workload.
    #[test]
    fn matches_a_simple_model() {
        for policy in [OverflowPolicy::DropOldest, OverflowPolicy::RejectNewest] {
            let mut q = Queue::new([0u8; 100], policy);
            let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
            let mut rng = crate::rng::Rng::new(7);
            let mut next_seq = 0u64;
            for step in 0..20_000u32 {
                match rng.below(4) {
                    0 | 1 => {
                        let len = rng.below(70) as usize;
                        let payload: Vec<u8> =
                            (0..len).map(|i| (step as usize + i) as u8).collect();
                        let total = len + RECORD_HEADER_LEN;
                        let r = push(&mut q, &payload);
                        if total > 100 {
                            assert!(matches!(r, Err(PushError::TooLarge { .. })));
                            continue;
                        }
                        match r {
                            Ok(seq) => {
                                assert_eq!(seq, next_seq);
                                next_seq += 1;
                                // Whatever was evicted came off the front of the model.
                                while model.len() + 1 > q.len() {
                                    model.pop_front();
                                }
                                model.push_back((seq, payload));
                            }
                            Err(PushError::Full { .. }) => {
                                assert_eq!(policy, OverflowPolicy::RejectNewest);
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    2 => {
                        let n = rng.below(3);
                        let range = SeqRange {
                            start: q.front_seq(),
                            end: q.front_seq() + n,
                        };
                        let removed = q.commit(range);
                        for _ in 0..removed {
                            model.pop_front();
                        }
                    }
                    _ => {
                        let got: Vec<(u64, Vec<u8>)> =
                            q.iter().map(|r| (r.seq, r.json.to_vec())).collect();
                        assert_eq!(got, model.iter().cloned().collect::<Vec<_>>());
                    }
                }
                assert_eq!(q.len(), model.len());
                let used: usize = model.iter().map(|m| m.1.len() + RECORD_HEADER_LEN).sum();
                assert_eq!(q.bytes_used(), used);
                let s = q.stats();
                assert_eq!(
                    s.enqueued as usize,
                    q.len() + s.committed as usize + s.evicted as usize
                );
            }
        }
    }

    fn jsons(q: &Queue<[u8; 100]>) -> Vec<Vec<u8>> {
        q.iter().map(|r| r.json.to_vec()).collect()
    }

    #[test]
    fn the_newest_record_can_be_edited_in_place_or_taken_back() {
        let mut q = Queue::new([0; 100], OverflowPolicy::DropOldest);
        assert!(!q.edit_last(|_, n| Some(n)), "nothing pushed yet");
        push(&mut q, b"aaaa").unwrap();
        push(&mut q, b"bbbbbb").unwrap();
        // Shrink, then grow into the free space after it.
        assert!(q.edit_last(|a, n| {
            assert_eq!(&a[..n], b"bbbbbb");
            Some(2)
        }));
        assert_eq!(jsons(&q), [b"aaaa".to_vec(), b"bb".to_vec()]);
        assert!(q.edit_last(|a, _| {
            a[..5].copy_from_slice(b"ccccc");
            Some(5)
        }));
        assert_eq!(jsons(&q), [b"aaaa".to_vec(), b"ccccc".to_vec()]);
        // More than the space there: refused, unchanged.
        assert!(!q.edit_last(|a, _| Some(a.len() + 1)));
        assert_eq!(q.len(), 2);
        // Taken back: as if never pushed; the next push takes its place.
        let enqueued = q.stats().enqueued;
        assert!(q.unpush_last());
        assert!(!q.unpush_last(), "only the newest, once");
        assert_eq!(jsons(&q), [b"aaaa".to_vec()]);
        assert_eq!(q.stats().enqueued, enqueued - 1);
        push(&mut q, b"dd").unwrap();
        assert_eq!(jsons(&q), [b"aaaa".to_vec(), b"dd".to_vec()]);
    }

    #[test]
    fn taking_back_a_record_that_wrapped_restores_the_ring() {
        let mut q = Queue::new([0; 100], OverflowPolicy::RejectNewest);
        let big = [b'x'; 30];
        for _ in 0..2 {
            push(&mut q, &big).unwrap();
        }
        // Free the front, then push a record that only fits at the start (wraps).
        q.commit(SeqRange { start: 0, end: 1 });
        push(&mut q, &[b'w'; 20]).unwrap();
        assert_eq!(jsons(&q).len(), 2);
        assert!(q.unpush_last());
        assert_eq!(jsons(&q), [big.to_vec()]);
        // The ring is consistent: the same record fits again, and draining empties it.
        push(&mut q, &[b'v'; 20]).unwrap();
        assert_eq!(jsons(&q), [big.to_vec(), [b'v'; 20].to_vec()]);
        q.commit(SeqRange { start: 0, end: 10 });
        assert!(q.is_empty());
        assert!(!q.unpush_last(), "a drained queue has no newest record");
    }
}
