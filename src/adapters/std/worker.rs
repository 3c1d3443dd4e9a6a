//! The background thread of a [`StdClient`](super::StdClient) and the state it shares with the
//! client: the core behind a `Mutex`, the `wake` and `progress` condition variables, the request
//! observer, and the waker through which the client's clock reports its jumps.

use core::task::Waker;
use core::time::Duration as StdDuration;
use std::boxed::Box;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Wake;

use crate::client::{RequestKind, TransportError};
use crate::time::Instant;

use super::clock::HostClock;
use super::config::{to_std, StdCore};
use super::observer::{RecordKind, RequestObserver, RequestRecord, Stopwatch};
use super::transport::UreqTransport;

/// Shortest idle wait when the core says work is due but produced none (a request that cannot
/// be built): keeps the worker from spinning.
pub(super) const MIN_IDLE_WAIT: StdDuration = StdDuration::from_millis(20);

/// What the client and its worker share under the lock.
pub(super) struct State {
    /// The core client (boxed: it is several megabytes).
    pub(super) core: Box<StdCore>,
    /// The worker must stop at its next iteration.
    pub(super) exit: bool,
    /// The worker has stopped (set by a drop guard, so also on panic).
    pub(super) exited: bool,
    /// The worker is sending a request (the lock is released meanwhile).
    pub(super) in_request: bool,
}

/// The client's half and the worker's half of a [`StdClient`](super::StdClient) meet here.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// The worker waits here; notified by every call that may make work due, and by every jump
    /// of the clock.
    pub(super) wake: Condvar,
    /// Flush, shutdown and clock waits wait here; notified after every settled request, on exit,
    /// and by every jump of the clock.
    pub(super) progress: Condvar,
    /// Told about every request (see [`StdClient::on_request`](super::StdClient::on_request)).
    pub(super) observer: Mutex<Option<Arc<RequestObserver>>>,
}

impl Shared {
    /// Shared state around `core`, with no observer.
    pub(super) fn new(core: Box<StdCore>) -> Self {
        Self {
            state: Mutex::new(State {
                core,
                exit: false,
                exited: false,
                in_request: false,
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
            observer: Mutex::new(None),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the observer, if any, without holding any lock of the client.
    pub(super) fn observe(&self, record: &RequestRecord<'_>) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(f) = observer {
            f(record);
        }
    }

    /// Waits on `progress` until `done` holds, the real-time `deadline` passes, or the clock
    /// reaches `until` (`(clock, instant)`). Wakes after every settled request, on the worker's
    /// exit and on every jump of the clock, to check again. The clock is read under the lock,
    /// so a jump is never missed.
    pub(super) fn wait_progress<'g>(
        &self,
        mut g: MutexGuard<'g, State>,
        deadline: Option<std::time::Instant>,
        until: Option<(&dyn HostClock, Instant)>,
        mut done: impl FnMut(&State) -> bool,
    ) -> MutexGuard<'g, State> {
        loop {
            if done(&g) {
                return g;
            }
            let real_left = match deadline {
                Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return g,
                },
                None => None,
            };
            let clock_left = match until {
                Some((clock, at)) => {
                    let now = clock.now();
                    if now >= at {
                        return g;
                    }
                    // A clock that does not follow real time says when it moved.
                    clock.follows_real_time().then(|| to_std(at - now))
                }
                None => None,
            };
            let wait = match (real_left, clock_left) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            g = match wait {
                Some(w) => {
                    self.progress
                        .wait_timeout(g, w)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .progress
                    .wait(g)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// The waker a client registers with its clock ([`HostClock::on_change`]): every jump of the
/// clock wakes the worker and every waiter, which read the clock again.
pub(super) fn clock_waker(shared: &Arc<Shared>) -> Waker {
    Waker::from(Arc::new(ClockWaker(Arc::downgrade(shared))))
}

/// Weak: a clock outliving its clients keeps none of them alive.
struct ClockWaker(Weak<Shared>);

impl Wake for ClockWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        // Taking the lock orders this after any clock reading made under it: a thread that read
        // the old time is already waiting, and is notified.
        drop(shared.lock());
        shared.wake.notify_all();
        shared.progress.notify_all();
    }
}

/// Marks the worker stopped when it returns or unwinds, and wakes the waiters.
struct ExitGuard<'s>(&'s Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.exited = true;
        g.in_request = false;
        drop(g);
        self.0.progress.notify_all();
    }
}

/// The background thread: sends what the core says is due, settles it, and sleeps until the
/// next deadline on `clock` (see the module docs of [`super`]).
pub(super) fn run(
    shared: &Shared,
    transport: &UreqTransport,
    clock: &dyn HostClock,
    flags_timeout: StdDuration,
) {
    let _guard = ExitGuard(shared);
    // The whole queue plus room for the envelope, so any queued event fits in a request.
    let body_bytes = shared.lock().core.queue().capacity().saturating_add(4096);
    let mut buf = std::vec![0u8; body_bytes];
    // The first event of the last batch that failed, and how many attempts it has had.
    let mut failed_batch: Option<(u64, u32)> = None;
    // Attempts of the open `/flags` query so far, and the query generation they belong to
    // (a query that ended or was closed meanwhile starts the count again).
    let mut flags_attempts = 0u32;
    let mut flags_generation = 0u32;
    let mut g = shared.lock();
    loop {
        if g.exit {
            return;
        }
        let now = clock.read();
        // The head is owned: the request leaves the lock, only its body borrows `buf`.
        let generation = g.core.query_generation();
        let req = g.core.poll_transmit(now, &mut buf);
        if req.is_none() && g.core.query_generation() != generation {
            // A `/flags` query ended without a request (too large for the buffer, shutdown):
            // its reader is waiting.
            shared.progress.notify_all();
        }
        if let Some(req) = req {
            if req.kind == RequestKind::Flags && g.core.query_generation() != flags_generation {
                flags_generation = g.core.query_generation();
                flags_attempts = 0;
            }
            g.in_request = true;
            drop(g);
            let (kind, attempt) = match req.kind {
                RequestKind::Batch { records } => (
                    RecordKind::Batch { records },
                    match failed_batch {
                        Some((start, n)) if start == records.start => n,
                        _ => 0,
                    },
                ),
                RequestKind::Definitions => (RecordKind::Definitions, 0),
                RequestKind::Flags => (RecordKind::Flags, flags_attempts),
            };
            let watch = Stopwatch::start(clock);
            let result = match req.kind {
                // Its own timeout; a refused connection is told apart (not retried).
                RequestKind::Flags => transport.send_flags(req.body, flags_timeout).map_err(|f| {
                    if f.refused {
                        TransportError::Refused
                    } else {
                        f.error
                    }
                }),
                _ => transport.send(&req),
            };
            let (_, elapsed) = watch.lap(clock);
            shared.observe(&RequestRecord {
                kind,
                body: req.body,
                attempt,
                result: result.as_ref().map(|r| r.status).map_err(|e| *e),
                started: watch.started,
                elapsed,
            });
            if let RecordKind::Batch { records } = kind {
                let delivered = matches!(&result, Ok(r) if (200..300).contains(&r.status));
                failed_batch = (!delivered).then_some((records.start, attempt.saturating_add(1)));
            }
            drop(req);
            g = shared.lock();
            g.in_request = false;
            let now = clock.read();
            match &result {
                Ok(resp) => g.core.handle_response(now, &resp.info(), &resp.body),
                Err(e) => g.core.handle_transport_error(now, *e),
            }
            if kind == RecordKind::Flags {
                flags_attempts = if g.core.is_query_pending() {
                    flags_attempts.saturating_add(1)
                } else {
                    0
                };
            }
            shared.progress.notify_all();
            continue;
        }
        g = match g.core.poll_timeout() {
            // Due, but nothing to send: do not spin.
            Some(at) if at <= now.mono => {
                shared
                    .wake
                    .wait_timeout(g, MIN_IDLE_WAIT)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            Some(at) if clock.follows_real_time() => {
                shared
                    .wake
                    .wait_timeout(g, to_std(at - now.mono))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            // Nothing scheduled, or a deadline on a clock that says when it moves: sleep until
            // a capture, flush, reload or shutdown, or a jump of the clock.
            _ => shared.wake.wait(g).unwrap_or_else(PoisonError::into_inner),
        };
    }
}
