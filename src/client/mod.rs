//! The client: a sans-IO state machine that owns the event queue, the flag store, timers and
//! statistics, and tells a driver what to send and when.
//!
//! # Driving it
//!
//! ```text
//! loop {
//!     if client.poll_timeout().is_some_and(|t| t <= clock.read().mono) {
//!         transport.prepare()?;                                     // connect before rendering
//!     }
//!     let now = clock.read();
//!     while let Some(tx) = client.poll_transmit(now, &mut buf) {   // what to send now
//!         match transport.send(&tx) {                               // the driver's only job
//!             Ok(resp) => client.handle_response(clock.read(), &resp.info(), resp.body()),
//!             Err(e) => client.handle_transport_error(clock.read(), e),
//!         }
//!     }
//!     sleep_until(client.poll_timeout());                           // or until a capture/flush
//! }
//! ```
//!
//! - [`poll_transmit`](Client::poll_transmit) renders at most one request (one is in flight at a
//!   time) into the caller's buffer: a `/batch/` body when `flush_at` events are queued, the
//!   oldest unsent event is `flush_interval` old, or [`flush`](Client::flush) was called, and no
//!   back-off is running; or a definitions poll when it is due.
//! - [`handle_response`](Client::handle_response) /
//!   [`handle_transport_error`](Client::handle_transport_error) settle the request in flight:
//!   a 2xx commits exactly the events it carried; 408, 429, 5xx and transport errors keep the
//!   events queued and retry them (same uuids, `offset` recomputed) after a capped exponential
//!   back-off with seeded jitter, `Retry-After` taken as a minimum up to a cap, **for as long as
//!   it takes** unless the application chose a [`GiveUp`] policy; 413 halves the batch (a single
//!   event still too large is dropped); any other 4xx drops the batch. Every drop is counted.
//! - [`set_online`](Client::set_online) tells the client the link is down (no request is
//!   started) or back (delivery resumes at once).
//! - [`poll_timeout`](Client::poll_timeout) says when to call `poll_transmit` next.
//!
//! Nothing here reads a clock, touches a socket or allocates.

use core::fmt;

use crate::capture::{
    render_batch, BatchLimits, DropReason, Encoder, EventOptions, Person, Queue, QueueStats,
    SeqRange, Uuid, BATCH_PATH,
};
pub use crate::config::{Config, ConfigError, GiveUp, KeyKind, Setting, MAX_KEY_LEN};
use crate::error::{BatchError, CaptureError, PropertyError};
use crate::flags::called::CalledTracker;
use crate::flags::FlagStore;
use crate::json::write::Object;
pub use crate::net::http::{Method, RetryAfter};
pub use crate::net::{Header, RequestKind, ResponseInfo, Transmit, TransportError, MAX_PATH};
use crate::retry;
use crate::rng::Rng;
use crate::time::{Duration, Instant, Now};

mod flags;
pub use crate::retry::{FlagsAttempt, FlagsRetry};
pub use flags::{OwnedFlagValue, FLAGS_PATH, MAX_EVENT_FLAGS, MAX_EVENT_GROUPS};

/// Longest `ETag` kept for definitions polling; a longer one is not sent back.
pub const MAX_ETAG: usize = 128;

/// The last delivery problem, for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DeliveryError {
    /// The server answered with this status.
    Status(u16),
    /// No response.
    Transport(TransportError),
    /// A request could not be built.
    Build(BatchError),
    /// New definitions could not be used (the old ones are kept).
    Definitions(crate::flags::LoadError),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "server answered {s}"),
            Self::Transport(e) => write!(f, "no response: {e}"),
            Self::Build(e) => write!(f, "request not built: {e}"),
            Self::Definitions(e) => write!(f, "definitions not loaded: {e}"),
        }
    }
}

impl core::error::Error for DeliveryError {}

/// How a batch ended, reported to the optional callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BatchOutcome {
    /// Delivered: the server answered 2xx.
    Delivered {
        /// The records.
        records: SeqRange,
    },
    /// Dropped for good (terminal 4xx, too large for any request, or the give-up policy the
    /// application chose; never by an outage with the default policy).
    Dropped {
        /// The records.
        records: SeqRange,
        /// Why.
        error: DeliveryError,
    },
    /// Evicted by the overflow policy ([`OverflowPolicy::DropOldest`](crate::capture::OverflowPolicy::DropOldest)) to make room for newer
    /// events, and never delivered. Reported after the capture that evicted them, or, while a
    /// batch is in flight, once it is settled (events of that batch only if it was not
    /// delivered).
    Evicted {
        /// The records.
        records: SeqRange,
    },
    /// Discarded by [`Client::opt_out_and_clear`].
    Cleared {
        /// The records.
        records: SeqRange,
    },
    /// Will be retried.
    Retrying {
        /// The records.
        records: SeqRange,
        /// Why it failed.
        error: DeliveryError,
        /// Not before this instant.
        at: Instant,
    },
}

/// What became of a captured event (see [`Client::fate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fate {
    /// Still queued (waiting, in flight, or in back-off).
    Queued,
    /// Delivered: the server answered 2xx.
    Delivered,
    /// Dropped and counted (evicted, refused by the server, given up, too large).
    Dropped,
    /// Not known: never captured, or settled too long ago to remember.
    Unknown,
}

/// How many recent settlements [`Client::fate`] remembers.
pub const FATE_HISTORY: usize = 16;

/// Decision of a before-send filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Queue the event.
    Keep,
    /// Drop it (counted in [`ClientStats::filtered`]).
    Drop,
}

/// What a before-send filter sees of an event.
#[derive(Clone, Copy, Debug)]
pub struct EventInfo<'e> {
    /// The event name (`$identify`, `$set`, ... for the built-in kinds).
    pub event: &'e str,
    /// The distinct id.
    pub distinct_id: &'e str,
}

/// Counters of everything the client did. All saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ClientStats {
    /// Events accepted into the queue.
    pub captured: u32,
    /// Events delivered (2xx).
    pub sent: u32,
    /// Events the queue evicted while their batch was in flight, which the server then
    /// acknowledged: counted in [`QueueStats::evicted`] and in [`sent`](Self::sent). So
    /// `captured + evicted_then_delivered == sent + dropped + pending`.
    pub evicted_then_delivered: u32,
    /// Events refused at the gate (opted out or shut down).
    pub gated: u32,
    /// Events dropped by the before-send filter.
    pub filtered: u32,
    /// Events refused by validation (empty names or ids, bad properties).
    pub invalid: u32,
    /// Retries scheduled.
    pub retries: u32,
    /// Requests sent (batches and definitions polls).
    pub requests: u32,
    /// Definitions loads that succeeded.
    pub definitions_loaded: u32,
    /// Definitions refreshes that failed (old definitions kept).
    pub definitions_failed: u32,
    /// The queue's own counters (evictions, rejections, discards by reason).
    pub queue: QueueStats,
    /// The last delivery problem.
    pub last_error: Option<DeliveryError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlight {
    Idle,
    Batch { records: SeqRange },
    Definitions,
}

/// The client. `Q` bytes of event queue; a flag store of `F` flags, `N` nodes and `B` bytes of
/// text; a `$feature_flag_called` de-duplication tracker of `T` entries (8 bytes each).
/// An empty client is all zeros but for its configuration: keep it in a `StaticCell` (or a
/// `Box` on a host) initialised at run time with the boot's seed.
pub struct Client<
    'a,
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const T: usize = 256,
> {
    config: Config<'a>,
    queue: Queue<[u8; Q]>,
    encoder: Encoder,
    flags: FlagStore<F, N, B>,
    tracker: CalledTracker<T>,
    rng: Rng,
    stats: ClientStats,
    in_flight: InFlight,
    /// Current batch size cap (halved on 413, grown back on success).
    batch_limit: usize,
    /// Retryable batch failures in a row (the back-off exponent); reset by a 2xx or by the
    /// link coming back ([`Client::set_online`]).
    failures: u32,
    /// The record [`GiveUp::AfterAttempts`] counts for, and its failed attempts.
    attempt_seq: u64,
    attempts: u16,
    /// No batch before this instant (back-off).
    not_before: Option<Instant>,
    flush_requested: bool,
    /// The application's connectivity hint: no request is started while false.
    online: bool,
    /// The last request was a definitions poll: a due batch goes next.
    last_was_definitions: bool,
    /// The end of the server's `Retry-After`, which coming back online does not cut short.
    server_not_before: Option<Instant>,
    /// `opt_out_and_clear` ran while a batch was in flight: once it is settled, the records
    /// below this still queued go.
    clear_until: Option<u64>,
    /// Recent settlements (record ranges, delivered?) and where that memory begins.
    settled: heapless::Deque<(SeqRange, bool), FATE_HISTORY>,
    history_from: u64,
    /// Every record below this was reported to the batch callback (delivered, dropped,
    /// evicted or cleared), or belongs to the batch in flight.
    reported_to: u64,
    opted_out: bool,
    shut_down: bool,
    // Definitions polling.
    next_poll: Option<Instant>,
    poll_errors: u8,
    /// The last definitions poll got no answer or a 5xx: coming back online retries it.
    poll_failed: bool,
    etag: heapless::String<MAX_ETAG>,
    before_send: Option<fn(&EventInfo<'_>) -> Verdict>,
    on_batch: Option<fn(&BatchOutcome)>,
}

impl<const Q: usize, const F: usize, const N: usize, const B: usize, const T: usize> fmt::Debug
    for Client<'_, Q, F, N, B, T>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("queued", &self.queue.len())
            .field("flags", &self.flags.len())
            .field("in_flight", &self.in_flight)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn bump(c: &mut u32, n: usize) {
    *c = c.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
}

impl<'a, const Q: usize, const F: usize, const N: usize, const B: usize, const T: usize>
    Client<'a, Q, F, N, B, T>
{
    /// A client with `config`, unchecked: `const`, for statics whose configuration was checked
    /// with [`Config::validate`] (at compile time, in a `const` block). Otherwise use
    /// [`Client::try_new`].
    #[must_use]
    pub const fn new(config: Config<'a>) -> Self {
        Self {
            queue: Queue::new([0; Q], config.overflow),
            encoder: Encoder::new(config.encoder, config.seed),
            flags: FlagStore::new(),
            tracker: CalledTracker::new(),
            rng: Rng::new(config.seed.rotate_left(17) ^ 0x6a09_e667_f3bc_c908),
            stats: ClientStats {
                captured: 0,
                sent: 0,
                evicted_then_delivered: 0,
                gated: 0,
                filtered: 0,
                invalid: 0,
                retries: 0,
                requests: 0,
                definitions_loaded: 0,
                definitions_failed: 0,
                queue: QueueStats {
                    enqueued: 0,
                    committed: 0,
                    evicted: 0,
                    rejected: 0,
                    too_large: 0,
                    discarded_too_large_for_body: 0,
                    discarded_rejected: 0,
                    discarded_gave_up: 0,
                },
                last_error: None,
            },
            in_flight: InFlight::Idle,
            batch_limit: config.max_batch_events,
            failures: 0,
            attempt_seq: 0,
            attempts: 0,
            not_before: None,
            flush_requested: false,
            online: true,
            last_was_definitions: false,
            server_not_before: None,
            clear_until: None,
            settled: heapless::Deque::new(),
            history_from: 0,
            reported_to: 0,
            opted_out: config.opted_out,
            shut_down: false,
            next_poll: if config.secret_key.is_some() {
                Some(Instant::ZERO)
            } else {
                None
            },
            poll_errors: 0,
            poll_failed: false,
            etag: heapless::String::new(),
            before_send: None,
            on_batch: None,
            config,
        }
    }

    /// Checks `config` (see [`Config::validate`]).
    ///
    /// # Errors
    /// As [`Config::validate`].
    pub const fn validate(config: &Config<'_>) -> Result<(), ConfigError> {
        config.validate()
    }

    /// A validated client.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn try_new(config: Config<'a>) -> Result<Self, ConfigError> {
        Self::validate(&config)?;
        Ok(Self::new(config))
    }

    /// Installs a before-send filter: it sees every event before it is queued and may drop it.
    pub fn set_before_send(&mut self, f: Option<fn(&EventInfo<'_>) -> Verdict>) {
        self.before_send = f;
    }

    /// Installs a callback told how every batch ended.
    pub fn set_on_batch(&mut self, f: Option<fn(&BatchOutcome)>) {
        self.on_batch = f;
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &Config<'a> {
        &self.config
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        let mut s = self.stats;
        s.queue = *self.queue.stats();
        s
    }

    /// Events waiting to be delivered.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The event queue (read-only).
    #[must_use]
    pub const fn queue(&self) -> &Queue<[u8; Q]> {
        &self.queue
    }

    /// The flag definitions.
    #[must_use]
    pub const fn flags(&self) -> &FlagStore<F, N, B> {
        &self.flags
    }

    /// Whether flag definitions are loaded (from the network or [`load_definitions`]).
    ///
    /// [`load_definitions`]: Self::load_definitions
    #[must_use]
    pub const fn is_local_evaluation_ready(&self) -> bool {
        self.flags.is_loaded()
    }

    /// Loads definitions from bytes (a snapshot in flash, or a gateway's copy). On error the
    /// definitions in use are kept.
    ///
    /// # Errors
    /// [`crate::flags::LoadError`].
    pub fn load_definitions(
        &mut self,
        doc: &[u8],
    ) -> Result<crate::flags::Requirements, crate::flags::LoadError> {
        let r = self.flags.load(doc);
        match r {
            Ok(_) => bump(&mut self.stats.definitions_loaded, 1),
            Err(e) => {
                bump(&mut self.stats.definitions_failed, 1);
                self.stats.last_error = Some(DeliveryError::Definitions(e));
            }
        }
        r
    }

    /// Asks for a definitions poll at the next [`poll_transmit`](Self::poll_transmit), ignoring
    /// the polling interval and back-off.
    pub fn reload(&mut self) {
        if self.config.secret_key.is_some() && !self.shut_down {
            self.next_poll = Some(Instant::ZERO);
            self.poll_errors = 0;
        }
    }

    /// Stops capturing: every event producer drops its call (counted in
    /// [`ClientStats::gated`]) until [`opt_in`](Self::opt_in). Queued events are kept and
    /// sent; use [`opt_out_and_clear`](Self::opt_out_and_clear) to drop them too.
    pub fn opt_out(&mut self) {
        self.opted_out = true;
    }

    /// Opts out and discards every queued event (reported as [`BatchOutcome::Cleared`]).
    ///
    /// While a batch is in flight, the discard waits for its answer (the queue is a ring that
    /// only gives up its oldest records, and the oldest are that batch's): the server may still
    /// take that batch, and everything else queued now goes when the answer is handled.
    pub fn opt_out_and_clear(&mut self) {
        self.opted_out = true;
        self.report_evictions();
        let all = self.queue.seqs();
        if let InFlight::Batch { .. } = self.in_flight {
            self.clear_until = Some(all.end);
        } else {
            self.clear(all);
        }
    }

    fn clear(&mut self, records: SeqRange) {
        if records.is_empty() {
            return;
        }
        self.queue.discard(records, DropReason::Rejected);
        self.settle(records, false);
        self.report(BatchOutcome::Cleared { records });
    }

    /// Resumes capturing.
    pub fn opt_in(&mut self) {
        self.opted_out = false;
    }

    /// Whether capturing is off (opted out or shut down).
    #[must_use]
    pub const fn is_opted_out(&self) -> bool {
        self.opted_out || self.shut_down
    }

    /// Asks for every queued event to be sent, ignoring `flush_at` and the interval. The flush
    /// lasts until the queue is empty: a failed request pauses it for the back-off, and the
    /// events stay queued meanwhile.
    pub fn flush(&mut self) {
        if !self.queue.is_empty() {
            self.flush_requested = true;
        }
    }

    /// Begins shutdown: later captures are refused, definitions polling stops, and a final
    /// flush is requested. Drive [`poll_transmit`](Self::poll_transmit) until
    /// [`pending`](Self::pending) is zero or your deadline passes. Idempotent.
    pub fn shutdown(&mut self) {
        if !self.shut_down {
            self.shut_down = true;
            self.next_poll = None;
            self.tracker.clear();
            self.flush();
        }
    }

    /// The application's connectivity hint. While offline the client starts no request at all
    /// (no batch, no definitions poll, and [`check_remote_read`](Self::check_remote_read)
    /// refuses remote flag reads): an offline device spends no power on connection attempts,
    /// and captures go on filling the queue. Coming back online (a call with `true` after one
    /// with `false`; repeated `true`s change nothing, so a flapping report cannot hammer a
    /// failing server) ends the back-off, except what remains of a server's `Retry-After`:
    /// what is queued is sent at the next [`poll_transmit`](Self::poll_transmit), and a
    /// definitions poll that got no answer is retried. Wake the driver after calling it (the
    /// drivers' own `set_online` do). The client starts online.
    pub fn set_online(&mut self, online: bool) {
        if online && !self.online {
            self.not_before = self.server_not_before;
            self.failures = 0;
            if !self.queue.is_empty() {
                self.flush_requested = true;
            }
            if self.poll_failed && self.next_poll.is_some() {
                self.next_poll = Some(Instant::ZERO);
            }
        }
        self.online = online;
    }

    /// Whether the client may start requests (see [`set_online`](Self::set_online)).
    #[must_use]
    pub const fn is_online(&self) -> bool {
        self.online
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    #[must_use]
    pub const fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// The gate and the before-send filter, shared by every event producer.
    fn admit(&mut self, event: &str, distinct_id: &str) -> Result<(), CaptureError> {
        if self.opted_out || self.shut_down {
            bump(&mut self.stats.gated, 1);
            return Err(CaptureError::Disabled);
        }
        if let Some(f) = self.before_send {
            if f(&EventInfo { event, distinct_id }) == Verdict::Drop {
                bump(&mut self.stats.filtered, 1);
                return Err(CaptureError::Filtered);
            }
        }
        Ok(())
    }

    fn account<R>(&mut self, r: Result<R, CaptureError>) -> Result<R, CaptureError> {
        self.report_evictions();
        account(&mut self.stats, r)
    }

    /// Queues a custom event (see [`Encoder::capture`]). Returns its uuid.
    ///
    /// # Errors
    /// [`CaptureError`]: validation, the gate ([`CaptureError::Disabled`]), the filter
    /// ([`CaptureError::Filtered`]) or the queue. Every refusal is counted.
    pub fn capture<P>(
        &mut self,
        now: Now,
        event: &str,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.admit(event, distinct_id)?;
        let r = self
            .encoder
            .capture(&mut self.queue, now, event, distinct_id, opts, props);
        self.account(r)
    }

    /// Queues `$identify` (see [`Encoder::identify`]).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn identify<P>(
        &mut self,
        now: Now,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.admit("$identify", distinct_id)?;
        let r = self
            .encoder
            .identify(&mut self.queue, now, distinct_id, opts, person);
        self.account(r)
    }

    /// Queues a `$set` event (see [`Encoder::set`]); `Ok(None)` when nothing was set.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn set<P>(
        &mut self,
        now: Now,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Option<Uuid>, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.admit("$set", distinct_id)?;
        let r = self
            .encoder
            .set(&mut self.queue, now, distinct_id, opts, person);
        match r {
            Ok(None) => Ok(None),
            other => self.account(other),
        }
    }

    /// Queues `$create_alias` (see [`Encoder::alias`]).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn alias(
        &mut self,
        now: Now,
        previous_id: &str,
        alias: &str,
        opts: &EventOptions<'_>,
    ) -> Result<Uuid, CaptureError> {
        self.admit("$create_alias", previous_id)?;
        let r = self
            .encoder
            .alias(&mut self.queue, now, previous_id, alias, opts);
        self.account(r)
    }

    /// Queues `$groupidentify` (see [`Encoder::group_identify`]).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    #[allow(clippy::too_many_arguments)]
    pub fn group_identify<P>(
        &mut self,
        now: Now,
        group_type: &str,
        group_key: &str,
        distinct_id: Option<&str>,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.admit("$groupidentify", distinct_id.unwrap_or(group_key))?;
        let r = self.encoder.group_identify(
            &mut self.queue,
            now,
            group_type,
            group_key,
            distinct_id,
            opts,
            props,
        );
        self.account(r)
    }

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
        if let Some((_, delivered)) = self.settled.iter().find(|(r, _)| r.contains(seq)) {
            return if *delivered {
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

    fn settle(&mut self, records: SeqRange, delivered: bool) {
        if records.is_empty() {
            return;
        }
        self.reported_to = self.reported_to.max(records.end);
        if self.settled.is_full() {
            if let Some((old, _)) = self.settled.pop_front() {
                self.history_from = old.end;
            }
        }
        let _ = self.settled.push_back((records, delivered));
    }

    /// Reports the records the overflow policy evicted since the last report. While a batch is
    /// in flight nothing is reported (eviction takes the oldest records, that batch's first):
    /// its settlement reports them.
    fn report_evictions(&mut self) {
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
    fn batch_due(&self, now: Instant) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        self.flush_requested
            || self.queue.len() >= self.config.flush_at
            || self.queue.front().is_some_and(|r| {
                now.saturating_duration_since(r.captured) >= self.config.flush_interval
            })
    }

    /// The next request to send, rendered into `buf`, or `None` when nothing is due (see
    /// [`poll_timeout`](Self::poll_timeout)). At most one request is in flight: after a
    /// `Some`, call [`handle_response`](Self::handle_response) or
    /// [`handle_transport_error`](Self::handle_transport_error) before polling again.
    #[must_use]
    pub fn poll_transmit<'b>(&mut self, now: Now, buf: &'b mut [u8]) -> Option<Transmit<'_, 'b>> {
        if self.in_flight != InFlight::Idle {
            return None;
        }
        self.report_evictions();
        if !self.online {
            return None;
        }
        let batch_ready = self.not_before.is_none_or(|t| now.mono >= t) && self.batch_due(now.mono);
        let poll_due = self.next_poll.is_some_and(|t| now.mono >= t);
        // A due poll goes first unless the last request was a poll too: neither can starve
        // the other, whatever the intervals.
        if poll_due && !(batch_ready && self.last_was_definitions) {
            self.last_was_definitions = true;
            return self.definitions_request(buf);
        }
        if !batch_ready {
            return None;
        }
        self.last_was_definitions = false;
        self.not_before = None;
        // Oversize records are dropped (counted) so the queue never sticks; bounded by its length.
        for _ in 0..=self.queue.len() {
            let limits = BatchLimits {
                max_events: self.batch_limit.max(1),
                max_bytes: usize::MAX,
            };
            match render_batch(&self.queue, now, self.config.api_key, &limits, buf) {
                Ok(Some(batch)) => {
                    self.in_flight = InFlight::Batch {
                        records: batch.records,
                    };
                    bump(&mut self.stats.requests, 1);
                    let mut path = heapless::String::new();
                    let _ = path.push_str(BATCH_PATH);
                    let body = buf.get(..batch.len).unwrap_or_default();
                    return Some(Transmit::from_parts(
                        RequestKind::Batch {
                            records: batch.records,
                        },
                        Method::Post,
                        path,
                        body,
                        None,
                        None,
                    ));
                }
                Ok(None) => {
                    self.flush_requested = false;
                    return None;
                }
                Err(BatchError::RecordTooLarge { seq, .. }) => {
                    ph_warn!("event #{} larger than the request buffer: dropped", seq);
                    let records = SeqRange {
                        start: seq,
                        end: seq + 1,
                    };
                    self.queue.drop_oldest(DropReason::TooLargeForBody);
                    self.settle(records, false);
                    self.report(BatchOutcome::Dropped {
                        records,
                        error: DeliveryError::Build(BatchError::RecordTooLarge {
                            seq,
                            needed: 0,
                            available: buf.len(),
                        }),
                    });
                }
                Err(e) => {
                    // The buffer cannot hold even an empty body: it will not grow by itself.
                    // Try again after the longest back-off rather than spin.
                    ph_warn!("request buffer too small: {}", e);
                    self.stats.last_error = Some(DeliveryError::Build(e));
                    self.flush_requested = false;
                    self.not_before = Some(now.mono + self.config.retry_cap);
                    return None;
                }
            }
        }
        None
    }

    fn definitions_request<'b>(&mut self, buf: &'b mut [u8]) -> Option<Transmit<'_, 'b>> {
        let secret = self.config.secret_key?;
        let mut path = heapless::String::new();
        let ok = path.push_str("/flags/definitions?token=").is_ok()
            && push_query_value(&mut path, self.config.api_key)
            && path.push_str("&send_cohorts").is_ok();
        if !ok {
            self.next_poll = None;
            return None;
        }
        self.in_flight = InFlight::Definitions;
        bump(&mut self.stats.requests, 1);
        Some(Transmit::from_parts(
            RequestKind::Definitions,
            Method::Get,
            path,
            buf.get(..0).unwrap_or_default(),
            Some(secret),
            (!self.etag.is_empty()).then_some(self.etag.as_str()),
        ))
    }

    /// When to call [`poll_transmit`](Self::poll_transmit) next: `None` when nothing will be
    /// due without a new capture, flush or [`set_online`](Self::set_online) (or while a request
    /// is in flight, or while offline).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight != InFlight::Idle || !self.online {
            return None;
        }
        let batch = if self.queue.is_empty() {
            None
        } else if self.flush_requested || self.queue.len() >= self.config.flush_at {
            Some(self.not_before.unwrap_or(Instant::ZERO))
        } else {
            self.queue.front().map(|r| {
                let due = r.captured + self.config.flush_interval;
                self.not_before.map_or(due, |nb| nb.max(due))
            })
        };
        match (batch, self.next_poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn report(&mut self, outcome: BatchOutcome) {
        if let BatchOutcome::Dropped { error, .. } | BatchOutcome::Retrying { error, .. } = outcome
        {
            self.stats.last_error = Some(error);
        }
        if let Some(f) = self.on_batch {
            f(&outcome);
        }
    }

    /// Settles the request in flight with the server's answer. `body` is the response body
    /// (needed for definitions; ignored for batches).
    pub fn handle_response(&mut self, now: Now, resp: &ResponseInfo<'_>, body: &[u8]) {
        match core::mem::replace(&mut self.in_flight, InFlight::Idle) {
            InFlight::Idle => {}
            InFlight::Batch { records } => {
                self.batch_response(now, records, resp);
                self.finish_clear();
            }
            InFlight::Definitions => self.definitions_response(now, resp, body),
        }
    }

    /// After a batch that was in flight during `opt_out_and_clear` is settled: what was queued
    /// then and is still queued goes.
    fn finish_clear(&mut self) {
        if let Some(end) = self.clear_until.take() {
            let rest = SeqRange {
                start: self.queue.front_seq(),
                end,
            };
            self.clear(rest);
        }
    }

    /// Settles the request in flight when no response arrived.
    pub fn handle_transport_error(&mut self, now: Now, error: TransportError) {
        match core::mem::replace(&mut self.in_flight, InFlight::Idle) {
            InFlight::Idle => {}
            InFlight::Batch { records } => {
                self.retry_batch(now, records, DeliveryError::Transport(error), None);
                self.finish_clear();
            }
            InFlight::Definitions => {
                self.stats.last_error = Some(DeliveryError::Transport(error));
                bump(&mut self.stats.definitions_failed, 1);
                self.poll_failed = true;
                self.schedule_poll(now.mono + self.config.poll_interval);
            }
        }
    }

    fn batch_response(&mut self, now: Now, records: SeqRange, resp: &ResponseInfo<'_>) {
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
    fn refuse(&mut self, records: SeqRange, reason: DropReason, status: u16) {
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
    fn retry_batch(
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
        match self.config.give_up {
            GiveUp::Never => {}
            GiveUp::AfterAttempts(n) => {
                if self.attempts >= n {
                    self.give_up(records, error);
                    return self.schedule_retry(now, None, retry_after);
                }
            }
            GiveUp::OlderThan(age) => {
                // Records are in capture order: the expired ones are a prefix of the batch.
                let mut end = records.start;
                for rec in self.queue.iter() {
                    if rec.seq >= records.end
                        || now.mono.saturating_duration_since(rec.captured) < age
                    {
                        break;
                    }
                    if rec.seq >= records.start {
                        end = rec.seq + 1;
                    }
                }
                if end > records.start {
                    let expired = SeqRange {
                        start: records.start,
                        end,
                    };
                    self.give_up(expired, error);
                    if end >= records.end {
                        return self.schedule_retry(now, None, retry_after);
                    }
                    records = SeqRange {
                        start: end,
                        end: records.end,
                    };
                }
            }
        }
        bump(&mut self.stats.retries, 1);
        self.schedule_retry(now, Some((records, error)), retry_after);
    }

    fn give_up(&mut self, records: SeqRange, error: DeliveryError) {
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
    fn schedule_retry(
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
    fn backoff_delay(&mut self, now: Now, retry_after: Option<RetryAfter>) -> (Duration, Duration) {
        let c = &self.config;
        let delay = retry::batch_backoff(c.retry_base, c.retry_cap, self.failures, &mut self.rng);
        let server = retry::server_wait(retry_after, now.wall, c.retry_after_cap);
        (delay.max(server), server)
    }

    fn definitions_response(&mut self, now: Now, resp: &ResponseInfo<'_>, body: &[u8]) {
        let interval = self.config.poll_interval;
        match resp.status {
            200 => {
                match self.flags.load(body) {
                    Ok(_) => {
                        bump(&mut self.stats.definitions_loaded, 1);
                        self.etag.clear();
                        if let Some(e) = resp.etag {
                            let _ = self.etag.push_str(e);
                            if self.etag.len() != e.len() {
                                self.etag.clear();
                            }
                        }
                    }
                    Err(e) => {
                        ph_warn!("flag definitions refused: {}", e);
                        bump(&mut self.stats.definitions_failed, 1);
                        self.stats.last_error = Some(DeliveryError::Definitions(e));
                    }
                }
                self.poll_errors = 0;
                self.poll_failed = false;
                self.schedule_poll(now.mono + interval);
            }
            304 => {
                if let Some(e) = resp.etag {
                    self.etag.clear();
                    let _ = self.etag.push_str(e);
                }
                self.poll_errors = 0;
                self.poll_failed = false;
                self.schedule_poll(now.mono + interval);
            }
            status => {
                bump(&mut self.stats.definitions_failed, 1);
                self.stats.last_error = Some(DeliveryError::Status(status));
                if matches!(status, 401 | 402) {
                    // posthog-python: an invalid key or an exhausted quota clears everything.
                    self.flags.clear();
                    self.etag.clear();
                }
                let delay = if matches!(status, 401 | 403 | 429) {
                    self.poll_errors = self.poll_errors.saturating_add(1);
                    self.poll_failed = false;
                    retry::poll_backoff(interval, self.poll_errors)
                } else {
                    self.poll_failed = status >= 500;
                    interval
                };
                self.schedule_poll(now.mono + delay);
            }
        }
    }

    /// The next definitions poll, unless the client was shut down meanwhile.
    fn schedule_poll(&mut self, at: Instant) {
        self.next_poll = (!self.shut_down).then_some(at);
    }
}

/// Counts the outcome of an event producer.
fn account<R>(stats: &mut ClientStats, r: Result<R, CaptureError>) -> Result<R, CaptureError> {
    match &r {
        Ok(_) => bump(&mut stats.captured, 1),
        Err(
            CaptureError::TooLarge { .. }
            | CaptureError::QueueFull { .. }
            | CaptureError::Disabled
            | CaptureError::Filtered,
        ) => {}
        Err(e) => {
            ph_debug!("event rejected: {}", e);
            bump(&mut stats.invalid, 1);
        }
    }
    r
}

/// Appends `v` percent-encoded for a query value (unreserved characters kept).
fn push_query_value<const M: usize>(out: &mut heapless::String<M>, v: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in v.bytes() {
        let ok = if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b)).is_ok()
        } else {
            let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
            let lo = HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0');
            out.push('%').is_ok()
                && out.push(char::from(hi)).is_ok()
                && out.push(char::from(lo)).is_ok()
        };
        if !ok {
            return false;
        }
    }
    true
}
