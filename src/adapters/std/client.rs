//! [`StdClient`], the threaded client: construction (on [`StdClock`] or an injected
//! [`HostClock`]), the capture calls, flush, shutdown and the accessors. Its flag reads are in
//! `flags.rs`, its background thread in `worker.rs`.

use core::fmt;
use core::time::Duration as StdDuration;
use std::boxed::Box;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::capture::{EventOptions, Person, Uuid};
use crate::client::Id;
use crate::client::{ClientStats, Fate};
use crate::error::{CaptureError, PropertyError};
use crate::flags::{LoadError, Requirements};
use crate::json::write::Object;
use crate::time::Now;

use super::clock::{HostClock, StdClock};
use super::config::{StdConfig, StdCore, StdError, StdFlagStore, STD_REMOTE_CAPACITY};
use super::observer::RequestObserver;
use super::transport::UreqTransport;
use super::worker::{clock_waker, run, Shared, State, MIN_IDLE_WAIT};
use crate::flags::remote::RemoteFlags;

/// What [`StdClient::flush`] and [`StdClient::shutdown`] achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushResult {
    /// Events delivered while the call waited.
    pub sent: u32,
    /// Events still queued when it returned (0: drained).
    pub pending: usize,
}

/// A consistent reading of a [`StdClient`]'s queue ([`StdClient::queue_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStatus {
    /// The counters.
    pub stats: ClientStats,
    /// Events waiting to be delivered.
    pub pending: usize,
    /// Bytes of queue they take (record headers included).
    pub bytes_used: usize,
    /// Bytes of queue in all.
    pub capacity: usize,
}

/// A ready-to-use PostHog client for hosts: the core [`Client`](crate::client::Client) driven by
/// a background thread over [`UreqTransport`]. `Sync`: share it with `Arc`.
///
/// ```no_run
/// use posthog_embedded::adapters::std::{StdClient, StdConfig};
/// use std::time::Duration;
///
/// let client = StdClient::new(StdConfig::new("phc_project_token", 0x5eed))?;
/// client.capture("door opened", "device-42", |p| {
///     p.prop("door", "front")?.prop("battery", 87u32)?;
///     Ok(())
/// })?;
/// let r = client.flush(Duration::from_secs(5));
/// println!("sent {}, pending {}", r.sent, r.pending);
/// client.shutdown(Duration::from_secs(5));
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
///
/// # Time
///
/// The client runs on its clock: [`StdClock`] with [`new`](Self::new), any [`HostClock`] with
/// [`with_clock`](Self::with_clock) (a [`ManualClock`](super::ManualClock) in tests). Everything
/// it schedules itself is measured on that clock: event timestamps, the flush interval,
/// back-off and `Retry-After`, definitions polling, the delay before a `/flags` retry, and the
/// times of each [`RequestRecord`](super::RequestRecord).
///
/// The timeouts a caller gives ([`flush`](Self::flush), [`shutdown`](Self::shutdown),
/// [`immediate`](Self::immediate), [`StdConfig::drop_timeout`]) and the request timeouts of
/// the transport ([`StdConfig::request_timeout`], [`StdConfig::flags_request_timeout`]) are
/// **real time**, whatever the clock: they bound how long a thread blocks. On a stopped
/// `ManualClock` the one wait measured on the clock alone is the delay before a `/flags`
/// retry: that read returns once the clock is moved past the delay, or the client shuts down.
pub struct StdClient {
    pub(super) shared: Arc<Shared>,
    pub(super) clock: Arc<dyn HostClock>,
    worker: Mutex<Option<JoinHandle<()>>>,
    drop_timeout: StdDuration,
    pub(super) flags_max_retries: u8,
}

impl fmt::Debug for StdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.shared.lock();
        f.debug_struct("StdClient")
            .field("core", &g.core)
            .field("exited", &g.exited)
            .finish_non_exhaustive()
    }
}

impl StdClient {
    /// Validates `config`, builds the core client and starts the background thread, on a
    /// [`StdClock`] (real time; see [`with_clock`](Self::with_clock)).
    ///
    /// The core's storage ([`StdConfig::capacities`], about 3 MiB by default) is allocated on
    /// the heap directly.
    ///
    /// # Errors
    /// [`StdError`]: invalid settings or host, or a thread that could not be started.
    pub fn new(config: StdConfig) -> Result<Self, StdError> {
        Self::with_clock(config, StdClock::new())
    }

    /// [`new`](Self::new), on `clock` instead of a [`StdClock`] (see the type's docs on time).
    ///
    /// The client registers a waker with the clock ([`HostClock::on_change`]) before its
    /// background thread starts. With a [`ManualClock`](super::ManualClock), nothing the client
    /// schedules happens until the clock is moved past it, and everything does as soon as it
    /// is, with no real waiting:
    ///
    /// ```no_run
    /// use posthog_embedded::adapters::std::{ManualClock, StdClient, StdConfig};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let config = StdConfig::new("phc_project_token", 0x5eed)
    ///     .flush_interval(Duration::from_secs(10));
    /// let client = StdClient::with_clock(config, clock.clone())?;
    /// client.capture("tick", "device-1", |_| Ok(()))?;
    /// // Sent now, ten virtual seconds after the capture; not before.
    /// clock.advance(Duration::from_secs(10));
    /// # Ok::<(), Box<dyn core::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_clock(
        config: StdConfig,
        clock: impl HostClock + 'static,
    ) -> Result<Self, StdError> {
        // Checked before anything is allocated or started.
        config.validate()?;
        let transport = UreqTransport::new(&config)?;
        let core_config = config.core_config();
        let mut core = Box::new(StdCore::with_capacity(core_config, config.capacities)?);
        // The `/flags` query's storage: request bodies, then answers.
        core.attach_remote(RemoteFlags::with_capacity(STD_REMOTE_CAPACITY));
        let shared = Arc::new(Shared::new(core));
        let clock: Arc<dyn HostClock> = Arc::new(clock);
        clock.on_change(clock_waker(&shared));
        let (worker_shared, worker_clock) = (Arc::clone(&shared), Arc::clone(&clock));
        let flags_timeout = config.flags_request_timeout;
        let worker = std::thread::Builder::new()
            .name("posthog".into())
            .spawn(move || run(&worker_shared, &transport, &*worker_clock, flags_timeout))
            .map_err(|_| StdError::Spawn)?;
        Ok(Self {
            shared,
            clock,
            worker: Mutex::new(Some(worker)),
            drop_timeout: config.drop_timeout,
            flags_max_retries: config.flags_max_retries,
        })
    }

    /// Installs (or with `None` removes) an observer told about every HTTP attempt: batches
    /// (retries included), definitions polls and `/flags` requests (see
    /// [`RequestRecord`](super::RequestRecord)).
    ///
    /// It runs on the thread that made the request (the background thread, or the caller of a
    /// remote flag read), after the response was read and before the core settles it, with no
    /// lock of the client held: it may call this client, but should return quickly, since the
    /// next request waits for it. A flush that returns has seen the observer called for every
    /// batch it waited for.
    ///
    /// ```no_run
    /// use posthog_embedded::adapters::std::{RecordKind, StdClient, StdConfig};
    ///
    /// let client = StdClient::new(StdConfig::new("phc_project_token", 0x5eed))?;
    /// client.on_request(Some(Box::new(|r| {
    ///     if let RecordKind::Batch { records } = r.kind {
    ///         println!("{} events, attempt {}: {:?}", records.len(), r.attempt, r.result);
    ///     }
    /// })));
    /// # Ok::<(), posthog_embedded::adapters::std::StdError>(())
    /// ```
    pub fn on_request(&self, observer: Option<Box<RequestObserver>>) {
        *self
            .shared
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = observer.map(Arc::from);
    }

    /// Runs `f` on the core with a fresh clock reading, then wakes the worker.
    pub(super) fn produce<R>(&self, f: impl FnOnce(&mut StdCore, Now) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.core, self.clock.read());
        drop(g);
        self.shared.wake.notify_one();
        r
    }

    /// Queues a custom event; `props` writes its properties (`|p| { p.prop("k", 1)?; Ok(()) }`,
    /// or `|_| Ok(())` for none). Returns its uuid. Never waits for the network.
    ///
    /// # Errors
    /// [`CaptureError`] (see [`Client::capture`](crate::client::Client::capture)); after
    /// [`shutdown`](Self::shutdown), [`CaptureError::Disabled`].
    pub fn capture<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.capture_with(event, distinct_id, &EventOptions::new(), props)
    }

    /// [`capture`](Self::capture) with [`EventOptions`] (groups, timestamp, uuid, GeoIP).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_with<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| c.capture(now, event, distinct_id, opts, props))
    }

    /// Queues `$identify`; `person` sets `$set` / `$set_once` properties.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn identify<'i, P>(
        &self,
        distinct_id: impl Into<Id<'i>>,
        person: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| c.identify(now, distinct_id, &EventOptions::new(), person))
    }

    /// Queues `$create_alias` linking `alias` to `previous_id`.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn alias(&self, previous_id: &str, alias: &str) -> Result<Uuid, CaptureError> {
        self.produce(|c, now| c.alias(now, previous_id, alias, &EventOptions::new()))
    }

    /// Queues `$groupidentify` for group `group_type`/`group_key` with its properties.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn group_identify<P>(
        &self,
        group_type: &str,
        group_key: &str,
        distinct_id: Option<&str>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| {
            c.group_identify(
                now,
                group_type,
                group_key,
                distinct_id,
                &EventOptions::new(),
                props,
            )
        })
    }

    /// Queues a `$set` event; `Ok(None)` when `person` set nothing.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn set<'i, P>(
        &self,
        distinct_id: impl Into<Id<'i>>,
        person: P,
    ) -> Result<Option<Uuid>, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| c.set(now, distinct_id, &EventOptions::new(), person))
    }

    /// Waits on the worker's progress until `done` holds, the worker stopped, or `deadline`
    /// (real time: see the type's docs).
    fn wait_until<'g>(
        &'g self,
        g: MutexGuard<'g, State>,
        deadline: std::time::Instant,
        mut done: impl FnMut(&State) -> bool,
    ) -> MutexGuard<'g, State> {
        self.shared
            .wait_progress(g, Some(deadline), None, |s| done(s) || s.exit || s.exited)
    }

    /// Waits until nothing is pending, the worker stopped, or `deadline` (real time).
    fn wait_drained<'g>(
        &'g self,
        g: MutexGuard<'g, State>,
        deadline: std::time::Instant,
    ) -> MutexGuard<'g, State> {
        self.wait_until(g, deadline, |s| s.core.pending() == 0)
    }

    /// Queues an event with `produce` (any producer of the core: `capture`, `identify`, ...),
    /// sends it now and blocks until it is delivered or dropped, or `timeout` (real time) passes,
    /// like posthog-node's `*Immediate` methods. Returns the event's [`Fate`]: `Delivered`,
    /// `Dropped`, or `Queued` when the timeout passed first (it stays queued and is retried).
    ///
    /// ```no_run
    /// # use posthog_embedded::adapters::std::{StdClient, StdConfig};
    /// # use posthog_embedded::capture::EventOptions;
    /// # use std::time::Duration;
    /// let client = StdClient::new(StdConfig::new("phc_token", 0x5eed))?;
    /// let fate = client.immediate(Duration::from_secs(10), |c, now| {
    ///     c.capture(now, "door opened", "device-7", &EventOptions::new(), |_| Ok(()))
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The producer's [`CaptureError`]: nothing was queued or sent.
    pub fn immediate<R>(
        &self,
        timeout: StdDuration,
        produce: impl FnOnce(&mut StdCore, Now) -> Result<R, CaptureError>,
    ) -> Result<Fate, CaptureError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.lock();
        produce(&mut g.core, self.clock.read())?;
        let Some(seq) = g.core.last_seq() else {
            return Ok(Fate::Unknown);
        };
        g.core.flush();
        self.shared.wake.notify_one();
        let g = self.wait_until(g, deadline, |s| s.core.fate(seq) != Fate::Queued);
        Ok(g.core.fate(seq))
    }

    /// [`capture`](Self::capture), sent at once: blocks until the event is delivered, dropped,
    /// or `timeout` passes (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_immediate<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        props: P,
        timeout: StdDuration,
    ) -> Result<Fate, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.immediate(timeout, |c, now| {
            c.capture(now, event, distinct_id, &EventOptions::new(), props)
        })
    }

    /// [`identify`](Self::identify), sent at once (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`identify`](Self::identify).
    pub fn identify_immediate<'i, P>(
        &self,
        distinct_id: impl Into<Id<'i>>,
        person: P,
        timeout: StdDuration,
    ) -> Result<Fate, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.immediate(timeout, |c, now| {
            c.identify(now, distinct_id, &EventOptions::new(), person)
        })
    }

    /// [`alias`](Self::alias), sent at once (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`alias`](Self::alias).
    pub fn alias_immediate(
        &self,
        previous_id: &str,
        alias: &str,
        timeout: StdDuration,
    ) -> Result<Fate, CaptureError> {
        self.immediate(timeout, |c, now| {
            c.alias(now, previous_id, alias, &EventOptions::new())
        })
    }

    /// Tells the client whether the network is up (see
    /// [`Client::set_online`](crate::client::Client::set_online)): while it is down the
    /// background thread sends nothing; when it comes back, queued events go out at once instead
    /// of waiting out the back-off.
    pub fn set_online(&self, online: bool) {
        self.produce(|c, _| c.set_online(online));
        // A flag read waiting for a query that going offline just ended returns now.
        self.shared.progress.notify_all();
    }

    /// Sends every queued event, ignoring `flush_at` and the interval, and blocks until the
    /// queue is empty or `timeout` (real time) passes. The core's back-off still applies
    /// (on the client's clock): after a 503 the events stay queued and are retried later, and
    /// this returns when `timeout` passes with them counted in [`FlushResult::pending`]. Never
    /// fails; an empty queue returns at once.
    pub fn flush(&self, timeout: StdDuration) -> FlushResult {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.lock();
        let sent = g.core.stats().sent;
        g.core.flush();
        self.shared.wake.notify_one();
        let g = self.wait_drained(g, deadline);
        FlushResult {
            sent: g.core.stats().sent.saturating_sub(sent),
            pending: g.core.pending(),
        }
    }

    /// Ends the client: refuses further captures, stops definitions polling, flushes what is
    /// queued until `timeout` (real time), then stops and joins the background thread. Events
    /// not delivered stay queued (counted in [`FlushResult::pending`], with a warning). If a
    /// request is still in flight at the deadline the thread is detached instead of joined; it
    /// exits when that request ends (bounded by [`StdConfig::request_timeout`]). Idempotent:
    /// later calls return at once.
    pub fn shutdown(&self, timeout: StdDuration) -> FlushResult {
        let deadline = std::time::Instant::now() + timeout;
        // Held throughout: concurrent shutdowns are serialised.
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        let mut g = self.shared.lock();
        let sent = g.core.stats().sent;
        let Some(handle) = worker.take() else {
            return FlushResult {
                sent: 0,
                pending: g.core.pending(),
            };
        };
        g.core.shutdown();
        self.shared.wake.notify_one();
        // A flag read waiting for a query that shutdown just ended returns now.
        self.shared.progress.notify_all();
        g = self.wait_drained(g, deadline);
        g.exit = true;
        self.shared.wake.notify_one();
        let mut detach = false;
        while !g.exited {
            let now = std::time::Instant::now();
            if g.in_request && now >= deadline {
                detach = true;
                break;
            }
            // An idle worker exits as soon as it wakes; a busy one after its request.
            let wait = if g.in_request {
                deadline - now
            } else {
                MIN_IDLE_WAIT
            };
            g = self
                .shared
                .progress
                .wait_timeout(g, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let result = FlushResult {
            sent: g.core.stats().sent.saturating_sub(sent),
            pending: g.core.pending(),
        };
        drop(g);
        if detach {
            ph_warn!("shutdown deadline passed with a request in flight: worker detached");
            drop(handle);
        } else {
            let _ = handle.join();
        }
        if result.pending > 0 {
            ph_warn!(
                "shutdown deadline passed: {} events not delivered",
                result.pending
            );
        }
        result
    }

    /// The core's counters (with [`ClientStats::last_error`] for diagnostics).
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.shared.lock().core.stats()
    }

    /// The counters, the events waiting and the queue's fill, read together (one lock), so
    /// they add up: an event is counted in [`ClientStats::sent`] or in `pending`, never in both
    /// or neither.
    #[must_use]
    pub fn queue_status(&self) -> QueueStatus {
        let g = self.shared.lock();
        QueueStatus {
            stats: g.core.stats(),
            pending: g.core.pending(),
            bytes_used: g.core.queue().bytes_used(),
            capacity: g.core.queue().capacity(),
        }
    }

    /// Events waiting to be delivered.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.shared.lock().core.pending()
    }

    /// Loads flag definitions from bytes (a snapshot, or a gateway's copy). On error the
    /// definitions in use are kept.
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load_definitions(&self, doc: &[u8]) -> Result<Requirements, LoadError> {
        self.shared.lock().core.load_definitions(doc)
    }

    /// Polls the definitions now (when a secret key is configured), ignoring the interval.
    pub fn reload(&self) {
        self.produce(|c, _| c.reload());
    }

    /// Whether flag definitions are loaded.
    #[must_use]
    pub fn is_local_evaluation_ready(&self) -> bool {
        self.shared.lock().core.is_local_evaluation_ready()
    }

    /// Runs `f` with the flag store, under the client's lock: keep it short, and do not call
    /// this client from inside `f` (it would deadlock).
    pub fn with_flags<R>(&self, f: impl FnOnce(&StdFlagStore) -> R) -> R {
        f(self.shared.lock().core.flags())
    }

    /// Runs `f` with the core client itself (filters, callbacks, opt-out, ...) under the
    /// client's lock, then wakes the worker. Same caveats as [`with_flags`](Self::with_flags).
    pub fn with_client<R>(&self, f: impl FnOnce(&mut StdCore) -> R) -> R {
        self.produce(|c, _| f(c))
    }

    /// Adds `hook` at the end of the before-send chain (see
    /// [`BeforeSend`](crate::client::BeforeSend)): it can drop events and remove or redact
    /// their properties; a failing hook drops the event.
    ///
    /// # Errors
    /// [`HooksFull`](crate::client::HooksFull) when the chain is full.
    pub fn add_before_send(
        &self,
        hook: &'static (dyn crate::client::BeforeSend + Sync),
    ) -> Result<(), crate::client::HooksFull> {
        self.shared.lock().core.add_before_send(hook)
    }
}

impl Drop for StdClient {
    /// A best-effort shutdown bounded by [`StdConfig::drop_timeout`] (nothing if
    /// [`shutdown`](StdClient::shutdown) already ran).
    fn drop(&mut self) {
        let _ = self.shutdown(self.drop_timeout);
    }
}
