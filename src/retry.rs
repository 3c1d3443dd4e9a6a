//! Every retry and back-off rule of the client, as pure functions of their inputs.
//!
//! - **Batches** ([`batch_backoff`]): after the `n`th failure in a row, `base × 2^(n−1)` capped
//!   at `cap`, less a seeded jitter of up to a quarter, so the delay never exceeds the cap and
//!   devices that lost the link together do not all come back in the same millisecond. A
//!   failure streak (not a batch) sets the exponent: evictions during an outage do not restart
//!   it at `base`.
//! - **`Retry-After`** ([`server_wait`]): the server's wait is a minimum, capped, so one proxy
//!   answering `Retry-After: 3600` cannot stop delivery for an hour.
//! - **Definitions polls** ([`poll_backoff`]): after 401, 403 or 429, `min(interval × 2^n,
//!   max(60 s, 2 × interval))`.
//! - **Remote `/flags` reads** ([`FlagsRetry`]): transport failures, 502 and 504 only; 300 ms,
//!   then doubling; one retry by default.
//!
//! - **Giving up** ([`given_up`]): what the application's [`GiveUp`] policy removes from a
//!   batch that failed again (nothing, with the default [`GiveUp::Never`]).
//!
//! Which answers are retryable at all is the client's; this module says how long to wait and
//! what a give-up policy drops.

use crate::capture::SeqRange;
use crate::config::GiveUp;
use crate::flags::remote::FlagErrorKind;
use crate::net::http::RetryAfter;
use crate::rng::Rng;
use crate::time::{Duration, Instant, UnixMillis};

/// The wait before retrying a batch after `failures` failures in a row (at least 1): `base ×
/// 2^(failures − 1)`, capped at `cap`, less a jitter drawn from `rng` of up to a quarter.
#[must_use]
pub fn batch_backoff(base: Duration, cap: Duration, failures: u32, rng: &mut Rng) -> Duration {
    let shift = failures.saturating_sub(1).min(40);
    let exp = base
        .as_millis()
        .saturating_mul(1u64 << shift)
        .min(cap.as_millis());
    Duration::from_millis(exp - rng.below(exp / 4 + 1))
}

/// The wait a `Retry-After` asks for, capped at `cap` (zero without one). An HTTP-date needs the
/// wall clock: without one (`wall: None`) it is ignored.
#[must_use]
pub fn server_wait(
    retry_after: Option<RetryAfter>,
    wall: Option<UnixMillis>,
    cap: Duration,
) -> Duration {
    let wait = match retry_after {
        Some(RetryAfter::Delay(d)) => d.as_millis(),
        Some(RetryAfter::At(t)) => wall.map_or(0, |w| t.as_millis().saturating_sub(w.as_millis())),
        None => 0,
    };
    Duration::from_millis(wait.min(cap.as_millis()))
}

/// The records of `batch` that the `policy` gives up after its `attempts`th failed attempt
/// (counted from 1), at `now`: none, the whole batch ([`GiveUp::AfterAttempts`]), or the prefix
/// captured longer than the age ago ([`GiveUp::OlderThan`]). `captured` yields `(seq, capture
/// instant)` of the queued records in capture order (records outside `batch` are skipped).
#[must_use]
pub fn given_up(
    policy: GiveUp,
    attempts: u16,
    now: Instant,
    batch: SeqRange,
    captured: impl IntoIterator<Item = (u64, Instant)>,
) -> Option<SeqRange> {
    match policy {
        GiveUp::Never => None,
        GiveUp::AfterAttempts(n) => (attempts >= n && !batch.is_empty()).then_some(batch),
        GiveUp::OlderThan(age) => {
            // Records are in capture order: the expired ones are a prefix of the batch.
            let mut end = batch.start;
            for (seq, at) in captured {
                if seq >= batch.end || now.saturating_duration_since(at) < age {
                    break;
                }
                if seq >= batch.start {
                    end = seq + 1;
                }
            }
            (end > batch.start).then_some(SeqRange {
                start: batch.start,
                end,
            })
        }
    }
}

/// The next definitions poll after `errors` 401, 403 or 429 answers in a row: posthog-node's
/// `min(60 s, interval × 2^n)` for the intervals it is meant for (up to 30 s), and never more
/// often than the interval itself: `min(interval × 2^n, max(60 s, 2 × interval))`. So a 5 min
/// interval backs off to 10 min.
#[must_use]
pub fn poll_backoff(interval: Duration, errors: u8) -> Duration {
    let i = interval.as_millis();
    let factor = 1u64 << u32::from(errors.min(16));
    Duration::from_millis(
        i.saturating_mul(factor)
            .min(i.saturating_mul(2).max(60_000)),
    )
}

/// The remote `/flags` retry policy of PostHog's SDKs: only transport failures, 502 and 504
/// are retried (a refused connection is not: posthog-python and posthog-node); 300 ms before the first retry, doubling after; `max_retries` (default 1) bounded to
/// 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlagsRetry {
    max_retries: u8,
    retries: u8,
}

/// How one `/flags` attempt ended, for [`FlagsRetry::next_delay`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlagsAttempt {
    /// An HTTP response with this status.
    Status(u16),
    /// No response (timeout, reset, TLS, ...).
    Transport,
    /// The connection was refused: not retried (posthog-python and posthog-node).
    Refused,
}

impl Default for FlagsRetry {
    fn default() -> Self {
        Self::new(1)
    }
}

impl FlagsRetry {
    /// A policy allowing `max_retries` retries (clamped to 9).
    #[must_use]
    pub const fn new(max_retries: u8) -> Self {
        Self {
            max_retries: if max_retries > 9 { 9 } else { max_retries },
            retries: 0,
        }
    }

    /// How long to wait before retrying after `attempt`, or `None` to stop (success, a status
    /// that is not retried, or no retries left).
    pub fn next_delay(&mut self, attempt: FlagsAttempt) -> Option<Duration> {
        let retryable = matches!(
            attempt,
            FlagsAttempt::Transport | FlagsAttempt::Status(502 | 504)
        );
        if !retryable || self.retries >= self.max_retries {
            return None;
        }
        let delay = 300u64 << self.retries;
        self.retries += 1;
        Some(Duration::from_millis(delay))
    }

    /// The `$feature_flag_error` kind for a final failed attempt.
    #[must_use]
    pub const fn error_kind(attempt: FlagsAttempt) -> FlagErrorKind {
        match attempt {
            FlagsAttempt::Status(s) => FlagErrorKind::ApiError(s),
            FlagsAttempt::Transport => FlagErrorKind::Timeout,
            FlagsAttempt::Refused => FlagErrorKind::ConnectionError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000;

    #[test]
    fn batch_backoff_doubles_to_the_cap_and_jitters_below_it() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        let mut rng = Rng::new(7);
        for failures in 1..=64u32 {
            let nominal = (S << (failures - 1).min(40)).min(300 * S);
            for _ in 0..50 {
                let d = batch_backoff(base, cap, failures, &mut rng).as_millis();
                assert!(d <= nominal, "failure {failures}: {d} > {nominal}");
                assert!(
                    d >= nominal - nominal / 4,
                    "failure {failures}: {d} jittered too far"
                );
            }
        }
        // Saturates instead of overflowing on an absurd streak or base.
        let huge = Duration::from_millis(u64::MAX / 2);
        assert!(batch_backoff(huge, huge, u32::MAX, &mut rng).as_millis() <= u64::MAX / 2);
    }

    #[test]
    fn batch_backoff_jitter_spreads_devices_apart() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        let mut seen = [false; 64];
        for seed in 0..256u64 {
            let d = batch_backoff(base, cap, 10, &mut Rng::new(seed)).as_millis();
            seen[((300 * S - d) * 63 / (75 * S)) as usize] = true;
        }
        assert!(
            seen.iter().filter(|s| **s).count() > 48,
            "jitter should cover the quarter"
        );
    }

    #[test]
    fn server_wait_is_capped_and_needs_a_wall_clock_for_dates() {
        let cap = Duration::from_secs(300);
        assert_eq!(server_wait(None, None, cap), Duration::ZERO);
        let delay = |s| Some(RetryAfter::Delay(Duration::from_secs(s)));
        assert_eq!(server_wait(delay(7), None, cap), Duration::from_secs(7));
        assert_eq!(server_wait(delay(3_600), None, cap), cap);
        let at = Some(RetryAfter::At(UnixMillis::from_millis(1_000_000 + 30 * S)));
        assert_eq!(server_wait(at, None, cap), Duration::ZERO);
        let now = Some(UnixMillis::from_millis(1_000_000));
        assert_eq!(server_wait(at, now, cap), Duration::from_secs(30));
        let past = Some(UnixMillis::from_millis(2_000_000));
        assert_eq!(server_wait(at, past, cap), Duration::ZERO);
    }

    #[test]
    fn give_up_policies_pick_what_they_drop() {
        let batch = SeqRange { start: 10, end: 14 };
        let at = |ms| Instant::from_millis(ms);
        // Records 8..16 queued, captured 1 s apart; the batch is 10..14.
        let queued = || (8u64..16).map(|seq| (seq, at(seq * 1_000)));
        let now = at(20_000);
        assert_eq!(given_up(GiveUp::Never, 1_000, now, batch, queued()), None);
        assert_eq!(
            given_up(GiveUp::AfterAttempts(3), 2, now, batch, queued()),
            None
        );
        assert_eq!(
            given_up(GiveUp::AfterAttempts(3), 3, now, batch, queued()),
            Some(batch)
        );
        // Older than 8 s at 20 s: captured at or before 12 s, so 10, 11 and 12 of the batch.
        let older = GiveUp::OlderThan(Duration::from_secs(8));
        assert_eq!(
            given_up(older, 1, now, batch, queued()),
            Some(SeqRange { start: 10, end: 13 })
        );
        // Nothing that old yet, or everything.
        assert_eq!(given_up(older, 1, at(17_999), batch, queued()), None);
        assert_eq!(given_up(older, 1, at(60_000), batch, queued()), Some(batch));
    }

    #[test]
    fn poll_backoff_matches_posthog_node_for_short_intervals_and_never_polls_faster() {
        let s = Duration::from_secs;
        // posthog-node: min(60 s, interval × 2^n).
        assert_eq!(poll_backoff(s(5), 1), s(10));
        assert_eq!(poll_backoff(s(5), 3), s(40));
        assert_eq!(poll_backoff(s(5), 4), s(60));
        assert_eq!(poll_backoff(s(30), 5), s(60));
        // Longer intervals back off to twice themselves.
        assert_eq!(poll_backoff(s(300), 1), s(600));
        assert_eq!(poll_backoff(s(300), 200), s(600));
        assert_eq!(
            poll_backoff(Duration::from_millis(u64::MAX), 16).as_millis(),
            u64::MAX
        );
    }

    #[test]
    fn flags_retry_retries_transport_502_and_504_only() {
        let ms = Duration::from_millis;
        let mut r = FlagsRetry::new(3);
        assert_eq!(r.next_delay(FlagsAttempt::Transport), Some(ms(300)));
        assert_eq!(r.next_delay(FlagsAttempt::Status(502)), Some(ms(600)));
        assert_eq!(r.next_delay(FlagsAttempt::Status(504)), Some(ms(1_200)));
        assert_eq!(r.next_delay(FlagsAttempt::Transport), None);
        for attempt in [
            FlagsAttempt::Status(200),
            FlagsAttempt::Status(500),
            FlagsAttempt::Status(503),
            FlagsAttempt::Status(429),
            FlagsAttempt::Refused,
        ] {
            assert_eq!(
                FlagsRetry::default().next_delay(attempt),
                None,
                "{attempt:?}"
            );
        }
        assert_eq!(FlagsRetry::new(200), FlagsRetry::new(9));
        assert_eq!(
            FlagsRetry::error_kind(FlagsAttempt::Status(503)),
            FlagErrorKind::ApiError(503)
        );
        assert_eq!(
            FlagsRetry::error_kind(FlagsAttempt::Transport),
            FlagErrorKind::Timeout
        );
        assert_eq!(
            FlagsRetry::error_kind(FlagsAttempt::Refused),
            FlagErrorKind::ConnectionError
        );
    }
}
