//! Clocks of the std driver: [`StdClock`] (real time), [`ManualClock`] (virtual time, moved by
//! hand) and [`HostClock`], what a [`StdClient`](super::StdClient) needs of its clock.

use core::fmt;
use core::task::Waker;
use core::time::Duration as StdDuration;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use crate::time::{Clock, Instant, Now, UnixMillis};

use super::config::to_core;

/// [`Clock`] over `std::time`: monotonic time since the clock was created, and the system wall
/// clock (assumed trusted; hosts normally run NTP).
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    start: std::time::Instant,
}

impl StdClock {
    /// A clock whose monotonic epoch is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn wall(&self) -> Option<UnixMillis> {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(UnixMillis::from_millis(u64::try_from(d.as_millis()).ok()?))
    }
}

/// Follows real time: the defaults.
impl HostClock for StdClock {}

/// The clock of a [`StdClient`](super::StdClient) ([`StdClient::with_clock`]): the core
/// [`Clock`], shared with the client's background thread, and how the client waits for it.
///
/// The client reads it for everything it schedules itself: event timestamps, the flush
/// interval, back-off and `Retry-After`, definitions polling, the `/flags` retry delay, and the
/// times in [`RequestRecord`](super::RequestRecord)s. To wait until the clock reaches a
/// deadline, the client sleeps for the difference when the clock
/// [follows real time](Self::follows_real_time), and otherwise waits until the clock tells it
/// it moved (through the wakers given to [`on_change`](Self::on_change)).
///
/// [`StdClock`] is the real-time implementation (the defaults); [`ManualClock`] the virtual one.
///
/// # Implementing it
///
/// A clock that moves by itself with real time needs only `impl HostClock for MyClock {}`. A
/// clock that jumps (is set, advanced, or corrected) must wake every waker given to
/// [`on_change`](Self::on_change) after each jump, once [`now`](Clock::now) and
/// [`wall`](Clock::wall) return the new reading, and without holding any lock that `now` or
/// `wall` take: a waker takes the client's lock, under which the client reads the clock.
///
/// [`StdClient::with_clock`]: super::StdClient::with_clock
pub trait HostClock: Clock + Send + Sync {
    /// Whether the clock moves by itself at the pace of real time. `true` (the default): the
    /// client sleeps until the clock reaches its next deadline. `false`: the client sleeps
    /// until the clock says it moved (it would otherwise wait for ever).
    fn follows_real_time(&self) -> bool {
        true
    }

    /// Registers `waker`, to be woken after every jump of the clock (see the trait docs).
    /// Called once by each client built on the clock, before its background thread starts. The
    /// default ignores it: a clock that only follows real time never jumps.
    fn on_change(&self, waker: Waker) {
        drop(waker);
    }
}

/// A virtual [`Clock`] that moves only when told: for tests of a
/// [`StdClient`](super::StdClient) ([`StdClient::with_clock`]), and of anything else driven by a
/// clock, that must not depend on how fast the machine is.
///
/// Clones share one reading: give the client a clone and keep one to move it with
/// [`advance`](Self::advance) or [`set`](Self::set). Every move wakes the clients built on it
/// (see [`HostClock`]), so a back-off, a flush interval or a definitions poll that the move makes
/// due is acted on at once, however little real time passed; and nothing the client schedules
/// happens before the clock is moved past it.
///
/// It starts at monotonic zero without wall time (events then carry `offset` instead of
/// `timestamp`); [`starting_at`](Self::starting_at) sets both.
///
/// ```
/// use posthog_embedded::adapters::std::ManualClock;
/// use posthog_embedded::{Clock, Instant, Now, UnixMillis};
/// use std::time::Duration;
///
/// let clock = ManualClock::starting_at(Now::with_wall(
///     Instant::ZERO,
///     UnixMillis::from_secs(1_800_000_000),
/// ));
/// let handle = clock.clone();
/// handle.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now(), Instant::from_millis(1500));
/// assert_eq!(clock.wall(), Some(UnixMillis::from_millis(1_800_000_001_500)));
/// ```
///
/// Do not move it from inside [`StdClient::with_client`] or [`StdClient::with_flags`]: waking a
/// client takes the lock those hold (it would deadlock).
///
/// It keeps the waker of every client built on it for as long as it lives (a waker of a client
/// that is gone does nothing): it is meant for tests, one clock per test, not for a clock
/// shared by an unbounded number of clients.
///
/// [`StdClient::with_clock`]: super::StdClient::with_clock
/// [`StdClient::with_client`]: super::StdClient::with_client
/// [`StdClient::with_flags`]: super::StdClient::with_flags
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Manual>,
}

#[derive(Default)]
struct Manual {
    now: Mutex<Now>,
    /// Woken after every move; never locked together with `now`.
    wakers: Mutex<Vec<Waker>>,
}

impl ManualClock {
    /// A clock at monotonic zero, without wall time.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock reading `now` (both clocks).
    #[must_use]
    pub fn starting_at(now: Now) -> Self {
        Self {
            inner: Arc::new(Manual {
                now: Mutex::new(now),
                wakers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Moves both clocks forward by `d` (in whole milliseconds, rounded up; the wall clock only
    /// when it is known), then wakes the clients built on this clock.
    pub fn advance(&self, d: StdDuration) {
        let d = to_core(d);
        {
            let mut now = self.lock_now();
            now.mono = now.mono + d;
            now.wall = now
                .wall
                .map(|w| UnixMillis::from_millis(w.as_millis().saturating_add(d.as_millis())));
        }
        self.wake();
    }

    /// Sets the reading (the wall clock may jump either way, or become unknown), then wakes the
    /// clients built on this clock.
    ///
    /// # Panics
    /// If `now.mono` is earlier than the current monotonic reading: a monotonic clock never goes
    /// backwards.
    pub fn set(&self, now: Now) {
        {
            let mut current = self.lock_now();
            assert!(
                now.mono >= current.mono,
                "ManualClock::set: the monotonic clock cannot go back from {} to {}",
                current.mono,
                now.mono
            );
            *current = now;
        }
        self.wake();
    }

    fn lock_now(&self) -> MutexGuard<'_, Now> {
        self.inner
            .now
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        let wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for w in &wakers {
            w.wake_by_ref();
        }
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.lock_now())
            .finish_non_exhaustive()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.lock_now().mono
    }

    fn wall(&self) -> Option<UnixMillis> {
        self.lock_now().wall
    }

    /// Both clocks from one reading.
    fn read(&self) -> Now {
        *self.lock_now()
    }
}

impl HostClock for ManualClock {
    fn follows_real_time(&self) -> bool {
        false
    }

    fn on_change(&self, waker: Waker) {
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[test]
    fn std_clock_reads_both_clocks() {
        let c = StdClock::new();
        let a = c.now();
        let now = c.read();
        assert!(now.mono >= a);
        // Any machine running this test is past 2020.
        assert!(now.wall.unwrap().as_millis() > 1_577_836_800_000);
        assert!(c.follows_real_time());
    }

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_wakes_its_clients() {
        let clock = ManualClock::new();
        assert!(!clock.follows_real_time());
        assert_eq!(clock.read(), Now::mono(Instant::ZERO));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        clock.on_change(Waker::from(Arc::clone(&count)));

        let handle = clock.clone();
        handle.advance(StdDuration::from_micros(1500));
        assert_eq!(clock.now(), Instant::from_millis(2), "rounded up");
        assert_eq!(clock.wall(), None);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);

        let wall = UnixMillis::from_secs(1_800_000_000);
        clock.set(Now::with_wall(Instant::from_millis(10), wall));
        clock.advance(StdDuration::from_secs(1));
        assert_eq!(
            handle.read(),
            Now::with_wall(
                Instant::from_millis(1010),
                UnixMillis::from_millis(wall.as_millis() + 1000)
            )
        );
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        // The wall clock may jump back; the monotonic one stays.
        clock.set(Now::mono(Instant::from_millis(1010)));
        assert_eq!(clock.wall(), None);
        assert_eq!(clock.now() - Instant::ZERO, Duration::from_millis(1010));
    }

    #[test]
    #[should_panic(expected = "cannot go back")]
    fn a_manual_clock_never_goes_backwards() {
        let clock = ManualClock::starting_at(Now::mono(Instant::from_millis(5)));
        clock.set(Now::mono(Instant::from_millis(4)));
    }
}
