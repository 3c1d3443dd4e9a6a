//! Delivery: the fate of every event, building batches, settling their answers (commit,
//! refuse, retry with back-off or give up) and reporting each outcome once.

use super::{bump, BatchOutcome, Client, DeliveryError, Fate, InFlight, ResponseInfo, RetryAfter};
use crate::capture::{DropReason, SeqRange};
use crate::retry;
use crate::time::{Duration, Instant, Now};

impl Client<'_> {
    /// Sequence number of the newest queued event (the one a capture just returned).
    #[must_use]
    pub fn last_seq(&self) -> Option<u64> {
        self.queue.seqs().end.checked_sub(1)
    }

    /// What became of event `seq` (from [`last_seq`](Self::last_seq) right after capturing it).
    /// Drivers use it for immediate sends: capture, flush, and wait until the fate is no
    /// longer [`Fate::Queued`].
    #[must_use]
    pub fn fate(&self, seq: u64) -> Fate {
        let live = self.queue.seqs();
        if seq >= live.end {
            return Fate::Unknown;
        }
        if seq >= live.start {
            return Fate::Queued;
        }
        if let Some(s) = self.settled.iter().find(|s| s.contains(seq)) {
            return if s.delivered() {
                Fate::Delivered
            } else {
                Fate::Dropped
            };
        }
        // Records leave the queue only by a recorded settlement or by eviction.
        if seq >= self.history_from {
            Fate::Dropped
        } else {
            Fate::Unknown
        }
    }

    pub(super) fn settle(&mut self, records: SeqRange, delivered: bool) {
        if records.is_empty() {
            return;
        }
        self.reported_to = self.reported_to.max(records.end);
        let mut start = records.start;
        while start < records.end {
            let entry = Settled::new(start, records.end, delivered);
            start = entry.end();
            if self.settled.is_full() {
                if let Some(old) = self.settled.pop_front() {
                    self.history_from = old.end();
                }
            }
            let _ = self.settled.push_back(entry);
        }
    }

    /// Reports the records the overflow policy evicted since the last report. While a batch is
    /// in flight nothing is reported (eviction takes the oldest records, that batch's first):
    /// its settlement reports them.
    pub(super) fn report_evictions(&mut self) {
        let mut front = self.queue.front_seq();
        if let InFlight::Batch { records } = self.in_flight {
            front = front.min(records.start);
        }
        if front > self.reported_to {
            let records = SeqRange {
                start: self.reported_to,
                end: front,
            };
            self.reported_to = front;
            self.report(BatchOutcome::Evicted { records });
        }
    }

    /// Whether event `seq` has left the queue (delivered or dropped).
    #[must_use]
    pub fn is_settled(&self, seq: u64) -> bool {
        seq < self.queue.front_seq()
    }

    /// The end of the current back-off (no batch is sent before it), if one is running.
    #[must_use]
    pub const fn backoff_until(&self) -> Option<Instant> {
        self.not_before
    }

    /// Whether a batch is due: a flush was requested, `flush_at` events wait, or the oldest
    /// waited `flush_interval`.
    pub(super) fn batch_due(&self, now: Instant) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        self.flush_requested
            || self.queue.len() >= self.config.flush_at
            || self.queue.front().is_some_and(|r| {
                now.saturating_duration_since(r.captured) >= self.config.flush_interval
            })
    }

    pub(super) fn report(&mut self, outcome: BatchOutcome) {
        if let BatchOutcome::Dropped { error, .. } | BatchOutcome::Retrying { error, .. } = outcome
        {
            self.stats.last_error = Some(error);
        }
        if let Some(f) = self.on_batch {
            f(&outcome);
        }
    }

    /// After a batch that was in flight during `opt_out_and_clear` is settled: what was queued
    /// then and is still queued goes.
    pub(super) fn finish_clear(&mut self) {
        if let Some(end) = self.clear_until.take() {
            let rest = SeqRange {
                start: self.queue.front_seq(),
                end,
            };
            self.clear(rest);
        }
    }

    pub(super) fn batch_response(&mut self, now: Now, records: SeqRange, resp: &ResponseInfo<'_>) {
        let status = resp.status;
        match status {
            200..=299 => {
                let n = self.queue.commit(records);
                self.settle(records, true);
                // The server has every event of the batch, including any the queue evicted
                // while the request was in flight.
                let all = usize::try_from(records.len()).unwrap_or(usize::MAX);
                bump(&mut self.stats.sent, all);
                bump(
                    &mut self.stats.evicted_then_delivered,
                    all.saturating_sub(n),
                );
                self.failures = 0;
                self.attempts = 0;
                self.batch_limit = self
                    .batch_limit
                    .saturating_mul(2)
                    .min(self.config.max_batch_events);
                if self.queue.is_empty() {
                    self.flush_requested = false;
                }
                self.report(BatchOutcome::Delivered { records });
            }
            413 => {
                if records.len() <= 1 {
                    self.failures = 0;
                    self.refuse(records, DropReason::TooLargeForBody, 413);
                } else {
                    // Resend fewer events at once, now; not counted as a retry.
                    self.batch_limit = (records.len() as usize / 2).max(1);
                    self.flush_requested = true;
                }
            }
            408 | 429 | 500..=599 => {
                self.retry_batch(
                    now,
                    records,
                    DeliveryError::Status(status),
                    resp.retry_after,
                );
            }
            _ => {
                ph_warn!("batch refused with status {}: dropped", status);
                // The server answered: the link works.
                self.failures = 0;
                self.attempts = 0;
                self.refuse(records, DropReason::Rejected, status);
            }
        }
        // Evictions beyond what this answer settled (reported, or retried).
        self.report_evictions();
    }

    /// A terminal answer: the batch's events still queued are dropped (those the overflow
    /// policy evicted meanwhile are reported as evicted).
    pub(super) fn refuse(&mut self, records: SeqRange, reason: DropReason, status: u16) {
        self.report_evictions();
        let records = SeqRange {
            start: records.start.max(self.queue.front_seq()),
            end: records.end,
        };
        if records.is_empty() {
            return;
        }
        self.queue.discard(records, reason);
        self.settle(records, false);
        self.report(BatchOutcome::Dropped {
            records,
            error: DeliveryError::Status(status),
        });
    }

    /// A retryable failure (no response, 408, 429, 5xx): the events stay queued, unless the
    /// application's [`GiveUp`] policy says otherwise, and the next attempt waits out a capped,
    /// jittered exponential back-off, and `Retry-After` (capped) when the server sent one.
    pub(super) fn retry_batch(
        &mut self,
        now: Now,
        records: SeqRange,
        error: DeliveryError,
        retry_after: Option<RetryAfter>,
    ) {
        self.failures = self.failures.saturating_add(1);
        // Events the overflow policy evicted while the batch was in flight are gone: report
        // them, and retry the rest.
        self.report_evictions();
        let mut records = SeqRange {
            start: records.start.max(self.queue.front_seq()),
            end: records.end,
        };
        if records.is_empty() {
            return self.schedule_retry(now, None, retry_after);
        }
        if self.attempt_seq != records.start {
            self.attempt_seq = records.start;
            self.attempts = 0;
        }
        self.attempts = self.attempts.saturating_add(1);
        let expired = retry::given_up(
            self.config.give_up,
            self.attempts,
            now.mono,
            records,
            self.queue.iter().map(|r| (r.seq, r.captured)),
        );
        if let Some(expired) = expired {
            self.give_up(expired, error);
            if expired.end >= records.end {
                return self.schedule_retry(now, None, retry_after);
            }
            records = SeqRange {
                start: expired.end,
                end: records.end,
            };
        }
        bump(&mut self.stats.retries, 1);
        self.schedule_retry(now, Some((records, error)), retry_after);
    }

    pub(super) fn give_up(&mut self, records: SeqRange, error: DeliveryError) {
        ph_warn!(
            "give-up policy: events {}..{} dropped",
            records.start,
            records.end
        );
        self.queue.discard(records, DropReason::GaveUp);
        self.settle(records, false);
        self.attempts = 0;
        self.report(BatchOutcome::Dropped { records, error });
    }

    /// Starts the back-off after a failure: `retry_base × 2^(failures − 1)` capped at
    /// `retry_cap`, less a seeded jitter of up to a quarter (so it never exceeds the cap), and
    /// at least the server's `Retry-After` capped at `retry_after_cap`. Reports the retry of
    /// `retrying` (the events still queued), if any.
    pub(super) fn schedule_retry(
        &mut self,
        now: Now,
        retrying: Option<(SeqRange, DeliveryError)>,
        retry_after: Option<RetryAfter>,
    ) {
        let (delay, server) = self.backoff_delay(now, retry_after);
        let at = now.mono + delay;
        self.not_before = Some(at);
        self.server_not_before = (server.as_millis() > 0).then(|| now.mono + server);
        if let Some((records, error)) = retrying {
            self.report(BatchOutcome::Retrying { records, error, at });
        }
    }

    /// The back-off, and the part of it the server asked for (`Retry-After`, capped).
    pub(super) fn backoff_delay(
        &mut self,
        now: Now,
        retry_after: Option<RetryAfter>,
    ) -> (Duration, Duration) {
        let c = &self.config;
        let delay = retry::batch_backoff(c.retry_base, c.retry_cap, self.failures, &mut self.rng);
        let server = retry::server_wait(retry_after, now.wall, c.retry_after_cap);
        (delay.max(server), server)
    }
}

/// A settled record range, as [`Client::fate`] remembers it: 12 bytes (its start, and its
/// length with "delivered" in the top bit), so the history costs little RAM.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed(4))]
pub(super) struct Settled {
    start: u64,
    len_delivered: u32,
}

impl Settled {
    const DELIVERED: u32 = 1 << 31;

    /// `start..end` (not empty), or its first `2^31 - 1` records when it is longer: the caller
    /// records the rest as further entries.
    fn new(start: u64, end: u64, delivered: bool) -> Self {
        debug_assert!(start < end);
        let len = u32::try_from(end.saturating_sub(start))
            .unwrap_or(u32::MAX)
            .min(Self::DELIVERED - 1);
        Self {
            start,
            len_delivered: len | if delivered { Self::DELIVERED } else { 0 },
        }
    }

    fn end(self) -> u64 {
        self.start
            .saturating_add(u64::from(self.len_delivered & !Self::DELIVERED))
    }

    fn contains(self, seq: u64) -> bool {
        self.start <= seq && seq < self.end()
    }

    fn delivered(self) -> bool {
        self.len_delivered & Self::DELIVERED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::Settled;

    #[test]
    fn a_settled_range_answers_for_its_records_only() {
        for delivered in [false, true] {
            let s = Settled::new(5, 10, delivered);
            assert_eq!(s.end(), 10);
            assert_eq!(s.delivered(), delivered);
            assert!(!s.contains(4) && s.contains(5) && s.contains(9) && !s.contains(10));
        }
        assert_eq!(size_of::<Settled>(), 12);
    }

    #[test]
    fn a_range_too_long_for_one_entry_is_cut_where_the_next_begins() {
        let start = u64::MAX - (1 << 33);
        let first = Settled::new(start, u64::MAX, true);
        assert_eq!(first.end(), start + (1 << 31) - 1);
        assert!(first.delivered() && first.contains(first.end() - 1));
        let last = Settled::new(u64::MAX - 1, u64::MAX, false);
        assert_eq!(last.end(), u64::MAX);
        assert!(!last.delivered() && last.contains(u64::MAX - 1));
    }
}
