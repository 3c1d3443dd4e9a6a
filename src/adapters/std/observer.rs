//! The request observer of the std driver: [`RequestRecord`], [`RecordKind`] and
//! [`RequestObserver`] (installed with [`StdClient::on_request`]).
//!
//! [`StdClient::on_request`]: super::StdClient::on_request

use core::fmt;
use core::time::Duration as StdDuration;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::capture::SeqRange;
use crate::client::TransportError;
use crate::time::Instant;

use super::clock::HostClock;
use super::config::to_std;

/// What an observed request was for (see [`RequestRecord`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// A `/batch/` of events: the records it carried.
    Batch {
        /// The events' sequence numbers (`records.len()` events).
        records: SeqRange,
    },
    /// A flag definitions poll.
    Definitions,
    /// A remote flag evaluation (`POST /flags/?v=2`).
    Flags,
}

/// One HTTP attempt of a [`StdClient`](super::StdClient), as told to the observer installed
/// with [`StdClient::on_request`]: every batch, definitions poll and `/flags` attempt, retries
/// included, once its outcome is known.
///
/// Its times are read from the client's clock ([`StdClient::with_clock`]): with a
/// [`ManualClock`](super::ManualClock), a request takes no time unless the clock is moved while
/// it is in flight.
///
/// The body carries the project API key (batches and `/flags` requests): do not log it. The
/// `Debug` output shows only its length.
///
/// [`StdClient::on_request`]: super::StdClient::on_request
/// [`StdClient::with_clock`]: super::StdClient::with_clock
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RequestRecord<'a> {
    /// What the request was for.
    pub kind: RecordKind,
    /// The request body as built (JSON, before any gzip); empty for `GET`.
    pub body: &'a [u8],
    /// 0 for the first attempt; then 1, 2, ... for each resend after a failure. A batch counts
    /// as resent when it starts with the same event as the failed one (the core may add newer
    /// events to a retried batch); a `/flags` request counts its retries; a definitions poll is
    /// always 0.
    pub attempt: u32,
    /// The HTTP status, or why no response arrived.
    pub result: Result<u16, TransportError>,
    /// Wall-clock time the request was started: the client clock's wall time, or the system's
    /// when that clock knows none.
    pub started: SystemTime,
    /// How long it took until the whole response was read (or the failure), on the client
    /// clock's monotonic time (whole milliseconds).
    pub elapsed: StdDuration,
}

impl fmt::Debug for RequestRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRecord")
            .field("kind", &self.kind)
            .field("body_len", &self.body.len())
            .field("attempt", &self.attempt)
            .field("result", &self.result)
            .field("started", &self.started)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

/// The observer [`StdClient::on_request`](super::StdClient::on_request) installs.
pub type RequestObserver = dyn Fn(&RequestRecord<'_>) + Send + Sync;

/// Times one request on the client's clock, for its [`RequestRecord`].
pub(super) struct Stopwatch {
    /// [`RequestRecord::started`].
    pub(super) started: SystemTime,
    start: Instant,
}

impl Stopwatch {
    /// Starts timing now.
    pub(super) fn start(clock: &dyn HostClock) -> Self {
        let now = clock.read();
        let started = now
            .wall
            .and_then(|w| UNIX_EPOCH.checked_add(StdDuration::from_millis(w.as_millis())))
            .unwrap_or_else(SystemTime::now);
        Self {
            started,
            start: now.mono,
        }
    }

    /// The monotonic reading now, and the time since [`start`](Self::start)
    /// ([`RequestRecord::elapsed`]).
    pub(super) fn lap(&self, clock: &dyn HostClock) -> (Instant, StdDuration) {
        let end = clock.now();
        (end, to_std(end - self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::std::ManualClock;
    use crate::time::{Now, UnixMillis};

    #[test]
    fn requests_are_timed_on_the_client_clock() {
        let wall = UnixMillis::from_secs(1_800_000_000);
        let clock = ManualClock::starting_at(Now::with_wall(Instant::from_millis(7), wall));
        let watch = Stopwatch::start(&clock);
        assert_eq!(
            watch.started,
            UNIX_EPOCH + StdDuration::from_secs(1_800_000_000)
        );
        assert_eq!(
            watch.lap(&clock),
            (Instant::from_millis(7), StdDuration::ZERO)
        );
        clock.advance(StdDuration::from_millis(250));
        assert_eq!(
            watch.lap(&clock),
            (Instant::from_millis(257), StdDuration::from_millis(250))
        );
        // Without wall time, the system's.
        let before = SystemTime::now();
        let watch = Stopwatch::start(&ManualClock::new());
        assert!(watch.started >= before);
    }
}
