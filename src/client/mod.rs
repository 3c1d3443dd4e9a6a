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

#[cfg(feature = "std")]
use self::resources::Capacities;
use self::resources::Resources;
use crate::capture::{
    render_batch, BatchLimits, DropReason, Encoder, EventOptions, Person, Queue, QueueStats,
    SeqRange, Uuid, BATCH_PATH,
};
pub use crate::config::{
    Config, ConfigError, DistinctId, GiveUp, Key, KeyKind, Setting, MAX_DISTINCT_ID, MAX_KEY_LEN,
};
use crate::error::{BatchError, CaptureError, PropertyError};
use crate::flags::called::CalledTracker;
use crate::flags::FlagTables;
use crate::json::write::Object;
use crate::managed::{ManagedSlice, ManagedStr};
pub use crate::net::http::{Method, RetryAfter};
pub use crate::net::{
    Header, RequestKind, ResponseInfo, Transmit, TransportError, MAX_ETAG, MAX_PATH,
};

use crate::rng::Rng;
use crate::time::{Instant, Now};

mod definitions;
mod delivery;
pub use definitions::DefinitionsChange;
mod flags;
mod hooks;
#[cfg(feature = "storage")]
mod persist;
mod query;
mod reads;
pub mod resources;
mod snapshot;
mod stats;
pub use crate::retry::{FlagsAttempt, FlagsRetry};
pub use flags::{FLAGS_PATH, MAX_EVENT_FLAGS, MAX_EVENT_GROUPS};
pub use hooks::{BeforeSend, HookFailed, HooksFull, PropertyVerdict, MAX_HOOKS, MAX_HOOK_KEY};
#[cfg(feature = "storage")]
pub use persist::{
    LogPosition, PersistPolicy, PersistResult, PersistStats, PersistStep, RestoreError,
    FLASH_RETRY, MAX_BREAKS,
};
pub use query::{QueryError, QueryStatus, QueryTicket, ReadOptions, ReadStep};
pub use reads::{valid_payload, FlagResult, LocalFlags};
pub use snapshot::{
    FlagSnapshot, SnapEntry, SnapshotError, SnapshotFlag, SnapshotStep, SnapshotStorage,
};
pub use stats::{BatchOutcome, ClientStats, DeliveryError, EventInfo, Fate, Verdict, FATE_HISTORY};

/// What a client keeps by reference: its keys, and the storage of its `ETag` and persistence
/// state.
struct Parts<'r> {
    /// Storage for the definitions' `ETag` ([`MAX_ETAG`] bytes).
    etag: ManagedSlice<'r, u8>,
    api_key: ManagedStr<'r>,
    secret_key: Option<ManagedStr<'r>>,
    default_id: Option<ManagedStr<'r>>,
    /// Storage for the persistence bookkeeping.
    #[cfg(feature = "storage")]
    persist: ManagedSlice<'r, persist::PersistSlot>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InFlight {
    Idle,
    Batch { records: SeqRange },
    Definitions,
    Flags,
}

/// The client. It borrows its storage (event queue, flag store, `$feature_flag_called`
/// de-duplication, the definitions' `ETag`, persistence bookkeeping) from a [`Resources`] that
/// names the capacities once, so the client's type has none: one `Client<'r>` whatever the
/// sizes, and its code is compiled once. [`new`](Self::new) also borrows the keys and default
/// `distinct_id` of its [`Config`] for `'r`. On a host, [`with_capacity`](Self::with_capacity)
/// (feature `std`) allocates the storage instead and copies the keys.
pub struct Client<'r> {
    /// The settings, keys left out (`api_key` empty, no `secret_key` or `distinct_id`): they
    /// are the three fields below, borrowed for `'r` (or owned, from
    /// [`with_capacity`](Self::with_capacity)).
    config: Config<'static>,
    api_key: ManagedStr<'r>,
    secret_key: Option<ManagedStr<'r>>,
    default_id: Option<ManagedStr<'r>>,
    queue: Queue<ManagedSlice<'r, u8>>,
    encoder: Encoder,
    flags: FlagTables<'r>,
    tracker: CalledTracker<ManagedSlice<'r, u64>>,
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
    settled: heapless::Deque<delivery::Settled, FATE_HISTORY>,
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
    etag: definitions::Etag<'r>,
    /// What the last definitions answer changed, for a copy on flash.
    definitions_change: Option<DefinitionsChange>,
    before_send: Option<fn(&EventInfo<'_>) -> Verdict>,
    /// The before-send hook chain (see [`BeforeSend`]).
    hooks: hooks::Hooks<'r>,
    /// `/flags` query storage (request body, then the answer), when attached.
    remote: Option<crate::flags::remote::RemoteFlags<'r>>,
    /// The open `/flags` query.
    query: query::Query,
    next_ticket: u32,
    /// The query in flight was closed by its reader: its answer is discarded.
    abandoned: bool,
    /// Counts query settlements (see `query_generation`).
    query_generation: u32,
    /// The `/flags` answer parser, installed with the query storage.
    parse_answer: Option<query::ParseAnswer>,
    on_batch: Option<fn(&BatchOutcome)>,
    /// Persistence bookkeeping, when attached.
    #[cfg(feature = "storage")]
    persist: persist::PersistCell<'r>,
}

impl fmt::Debug for Client<'_> {
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

impl<'r> Client<'r> {
    /// A client with `config` (checked first) over `resources`.
    ///
    /// # Errors
    /// [`ConfigError`] (see [`Config::validate`]).
    pub fn new<const Q: usize, const F: usize, const N: usize, const B: usize, const T: usize>(
        config: Config<'r>,
        resources: &'r mut Resources<Q, F, N, B, T>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if Q == 0 {
            return Err(ConfigError::Zero {
                setting: Setting::QueueBytes,
            });
        }
        let parts = Parts {
            etag: ManagedSlice::Borrowed(&mut resources.etag),
            #[cfg(feature = "storage")]
            persist: ManagedSlice::Borrowed(core::slice::from_mut(&mut resources.persist)),
            api_key: ManagedStr::Borrowed(config.api_key.as_str()),
            secret_key: config.secret_key.map(|k| ManagedStr::Borrowed(k.as_str())),
            default_id: config.distinct_id.map(|d| ManagedStr::Borrowed(d.as_str())),
        };
        Ok(Self::from_parts(
            config,
            parts,
            ManagedSlice::Borrowed(&mut resources.queue),
            FlagTables::new(&mut resources.flags),
            ManagedSlice::Borrowed(&mut resources.called),
        ))
    }

    /// A client with `config` (checked first) whose storage is allocated on the heap with
    /// `capacities`, directly (never built on the stack).
    ///
    /// # Errors
    /// [`ConfigError`] (see [`Config::validate`]).
    #[cfg(feature = "std")]
    pub fn with_capacity(
        config: Config<'_>,
        capacities: Capacities,
    ) -> Result<Client<'static>, ConfigError> {
        config.validate()?;
        if capacities.queue == 0 {
            return Err(ConfigError::Zero {
                setting: Setting::QueueBytes,
            });
        }
        let parts = Parts {
            etag: ManagedSlice::owned(0, MAX_ETAG),
            #[cfg(feature = "storage")]
            persist: ManagedSlice::owned(persist::PersistSlot::EMPTY, 1),
            api_key: ManagedStr::owned(config.api_key.as_str()),
            secret_key: config.secret_key.map(|k| ManagedStr::owned(k.as_str())),
            default_id: config.distinct_id.map(|d| ManagedStr::owned(d.as_str())),
        };
        Ok(Client::from_parts(
            config,
            parts,
            ManagedSlice::owned(0, capacities.queue),
            FlagTables::with_capacity(capacities.flags),
            ManagedSlice::owned(0, capacities.called),
        ))
    }

    fn from_parts(
        config: Config<'_>,
        parts: Parts<'r>,
        queue: ManagedSlice<'r, u8>,
        flags: FlagTables<'r>,
        called: ManagedSlice<'r, u64>,
    ) -> Self {
        Self {
            queue: Queue::new(queue, config.overflow),
            encoder: Encoder::new(config.encoder, config.seed),
            flags,
            tracker: CalledTracker::with_storage(called),
            rng: Rng::new(config.seed.rotate_left(17) ^ 0x6a09_e667_f3bc_c908),
            stats: ClientStats {
                captured: 0,
                sent: 0,
                evicted_then_delivered: 0,
                gated: 0,
                filtered: 0,
                hook_failed: 0,
                invalid: 0,
                retries: 0,
                requests: 0,
                definitions_loaded: 0,
                definitions_failed: 0,
                definitions_unchanged: 0,
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
            next_poll: if parts.secret_key.is_some() {
                Some(Instant::ZERO)
            } else {
                None
            },
            poll_errors: 0,
            poll_failed: false,
            etag: definitions::Etag::new(parts.etag),
            definitions_change: None,
            before_send: None,
            hooks: hooks::Hooks::new(),
            remote: None,
            query: query::Query::Idle,
            next_ticket: 0,
            abandoned: false,
            query_generation: 0,
            parse_answer: None,
            on_batch: None,
            #[cfg(feature = "storage")]
            persist: persist::PersistCell::new(parts.persist),
            config: Config {
                api_key: Key::new(""),
                secret_key: None,
                distinct_id: None,
                ..config
            },
            api_key: parts.api_key,
            secret_key: parts.secret_key,
            default_id: parts.default_id,
        }
    }

    /// Installs a before-send filter: it sees every event before it is queued and may drop it.
    /// It runs before the [`BeforeSend`] chain.
    pub fn set_before_send(&mut self, f: Option<fn(&EventInfo<'_>) -> Verdict>) {
        self.before_send = f;
    }

    /// Adds `hook` at the end of the before-send chain: it runs after the hooks added before
    /// it, on every event (`$feature_flag_called` included), and can drop the event or remove
    /// and redact its properties (see [`BeforeSend`]).
    ///
    /// # Errors
    /// [`HooksFull`] when [`MAX_HOOKS`] are installed already.
    pub fn add_before_send(&mut self, hook: &'r (dyn BeforeSend + Sync)) -> Result<(), HooksFull> {
        self.hooks.push(hook)
    }

    /// Removes every [`BeforeSend`] hook.
    pub fn clear_before_send(&mut self) {
        self.hooks.clear();
    }

    /// Installs a callback told how every batch ended.
    pub fn set_on_batch(&mut self, f: Option<fn(&BatchOutcome)>) {
        self.on_batch = f;
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> Config<'_> {
        Config {
            api_key: Key::new(self.api_key.as_str()),
            secret_key: self.secret_key.as_ref().map(|k| Key::new(k.as_str())),
            distinct_id: self
                .default_id
                .as_ref()
                .map(|d| DistinctId::new(d.as_str())),
            ..self.config
        }
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
    pub const fn queue(&self) -> &Queue<ManagedSlice<'r, u8>> {
        &self.queue
    }

    /// The flag definitions.
    #[must_use]
    pub const fn flags(&self) -> &FlagTables<'r> {
        &self.flags
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
        // A flush also writes what waits to be persisted, whatever the policy but `Manual`.
        #[cfg(feature = "storage")]
        if let Some(p) = self.persist.as_mut() {
            p.flush();
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
            self.query_shutdown();
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
        if !online {
            self.query_offline();
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

    /// The distinct id `id` names: the given one, or the configured default (borrowed without
    /// borrowing the client, so it stays free to borrow mutably; an owned default is copied
    /// into `scratch`).
    fn resolve<'a>(
        &mut self,
        id: Id<'a>,
        scratch: &'a mut [u8; MAX_DISTINCT_ID],
    ) -> Result<&'a str, CaptureError>
    where
        'r: 'a,
    {
        let default = match &self.default_id {
            Some(d) => d.copy_out(scratch),
            None => None,
        };
        match (id, default) {
            (Id::Of(s), _) => Ok(s),
            (Id::Default, Some(d)) => Ok(d),
            (Id::Default, None) => {
                bump(&mut self.stats.invalid, 1);
                Err(CaptureError::EmptyDistinctId)
            }
        }
    }

    /// The gate and the before-send filter, shared by every event producer.
    fn admit(&mut self, event: &str, distinct_id: &str) -> Result<(), CaptureError> {
        if self.opted_out || self.shut_down {
            bump(&mut self.stats.gated, 1);
            return Err(CaptureError::Disabled);
        }
        let info = EventInfo { event, distinct_id };
        admit_hooks(self.before_send, &self.hooks, &info, &mut self.stats)
    }

    /// Runs the property step of the hook chain on the event just queued (when `r` is `Ok`);
    /// a failure removes it again.
    fn edit<R>(
        &mut self,
        event: &str,
        distinct_id: &str,
        r: Result<R, CaptureError>,
    ) -> Result<R, CaptureError> {
        let r = r?;
        let info = EventInfo { event, distinct_id };
        let max_key_len = self.config.encoder.max_key_len;
        edit_last(
            &mut self.queue,
            &self.hooks,
            &info,
            &mut self.stats,
            max_key_len,
        )
        .map(|()| r)
    }

    fn account<R>(&mut self, r: Result<R, CaptureError>) -> Result<R, CaptureError> {
        self.report_evictions();
        account(&mut self.stats, r)
    }

    /// Queues a custom event (see [`Encoder::capture`]) for `distinct_id`: a `&str`, or
    /// [`Id::Default`] for the configured [`Config::distinct_id`]. Returns its uuid.
    ///
    /// # Errors
    /// [`CaptureError`]: validation (a blank id, or [`Id::Default`] with no default
    /// configured: [`CaptureError::EmptyDistinctId`]), the gate ([`CaptureError::Disabled`]),
    /// the filter ([`CaptureError::Filtered`]) or the queue. Every refusal is counted.
    pub fn capture<'i, P>(
        &mut self,
        now: Now,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        let mut scratch = [0; MAX_DISTINCT_ID];
        let distinct_id = self.resolve(distinct_id.into(), &mut scratch)?;
        self.admit(event, distinct_id)?;
        let r = self
            .encoder
            .capture(&mut self.queue, now, event, distinct_id, opts, props);
        let r = self.edit(event, distinct_id, r);
        self.account(r)
    }

    /// Queues `$identify` (see [`Encoder::identify`]).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn identify<'i, P>(
        &mut self,
        now: Now,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        let mut scratch = [0; MAX_DISTINCT_ID];
        let distinct_id = self.resolve(distinct_id.into(), &mut scratch)?;
        self.admit("$identify", distinct_id)?;
        let r = self
            .encoder
            .identify(&mut self.queue, now, distinct_id, opts, person);
        let r = self.edit("$identify", distinct_id, r);
        self.account(r)
    }

    /// Queues a `$set` event (see [`Encoder::set`]); `Ok(None)` when nothing was set.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn set<'i, P>(
        &mut self,
        now: Now,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Option<Uuid>, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        let mut scratch = [0; MAX_DISTINCT_ID];
        let distinct_id = self.resolve(distinct_id.into(), &mut scratch)?;
        self.admit("$set", distinct_id)?;
        let r = self
            .encoder
            .set(&mut self.queue, now, distinct_id, opts, person);
        match r {
            Ok(None) => Ok(None),
            other => {
                let r = self.edit("$set", distinct_id, other);
                self.account(r)
            }
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
        let r = self.edit("$create_alias", previous_id, r);
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
        let r = self.edit("$groupidentify", distinct_id.unwrap_or(group_key), r);
        self.account(r)
    }

    /// The next request to send, rendered into `buf`, or `None` when nothing is due (see
    /// [`poll_timeout`](Self::poll_timeout)). At most one request is in flight: after a
    /// `Some`, call [`handle_response`](Self::handle_response) or
    /// [`handle_transport_error`](Self::handle_transport_error) before polling again.
    #[must_use]
    pub fn poll_transmit<'b>(&mut self, now: Now, buf: &'b mut [u8]) -> Option<Transmit<'b>> {
        if self.in_flight != InFlight::Idle {
            return None;
        }
        self.report_evictions();
        if !self.online {
            return None;
        }
        // A `/flags` query goes first: a reader is waiting for it.
        if self.query_due().is_some_and(|t| now.mono >= t) {
            if let Some(tx) = self.query_transmit(now, buf) {
                return Some(tx);
            }
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
            match render_batch(&self.queue, now, self.api_key.as_str(), &limits, buf) {
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
        [batch, self.next_poll, self.query_due()]
            .into_iter()
            .flatten()
            .min()
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
            InFlight::Definitions => self.definitions_response(now, resp, |f| f.load(body)),
            InFlight::Flags => self.query_response(now, resp, body),
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
            InFlight::Flags => self.query_transport_error(now, error),
        }
    }
}

/// Whose event: an explicit distinct id, or the configured default ([`Config::distinct_id`],
/// the one-device-one-id case). A `&str` converts into `Id::Of`.
///
/// ```
/// use posthog_embedded::capture::EventOptions;
/// use posthog_embedded::client::{Client, Config, Id};
/// use posthog_embedded::resources::Resources;
/// use posthog_embedded::{Instant, Now};
///
/// let mut res = Resources::<2048, 1, 4, 64, 8>::new();
/// let config = Config::new("phc_token", 7).distinct_id("device-42");
/// let mut client = Client::new(config, &mut res)?;
/// let now = Now::mono(Instant::from_millis(1));
/// client.capture(now, "boot", Id::Default, &EventOptions::new(), |p| p.set("fw", "1.2").done())?;
/// client.capture(now, "paired", "user-7", &EventOptions::new(), |_| Ok(()))?; // an override
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Id<'a> {
    /// The configured default distinct id.
    Default,
    /// This distinct id.
    Of(&'a str),
}

impl<'a> From<&'a str> for Id<'a> {
    fn from(s: &'a str) -> Self {
        Self::Of(s)
    }
}

#[cfg(feature = "std")]
impl<'a> From<&'a std::string::String> for Id<'a> {
    fn from(s: &'a std::string::String) -> Self {
        Self::Of(s)
    }
}

/// The gate's second half, shared by every producer: the before-send filter, then the event
/// step of the hook chain.
fn admit_hooks(
    filter: Option<fn(&EventInfo<'_>) -> Verdict>,
    hooks: &hooks::Hooks<'_>,
    info: &EventInfo<'_>,
    stats: &mut ClientStats,
) -> Result<(), CaptureError> {
    if filter.is_some_and(|f| f(info) == Verdict::Drop) {
        bump(&mut stats.filtered, 1);
        return Err(CaptureError::Filtered);
    }
    match hooks::run_event(hooks, info) {
        Ok(true) => Ok(()),
        Ok(false) => {
            bump(&mut stats.filtered, 1);
            Err(CaptureError::Filtered)
        }
        Err(HookFailed) => {
            ph_warn!("event dropped: a before-send hook failed");
            bump(&mut stats.hook_failed, 1);
            Err(CaptureError::HookFailed)
        }
    }
}

/// The property step of the hook chain over the record just pushed; on failure the record is
/// removed again and counted.
fn edit_last(
    queue: &mut Queue<ManagedSlice<'_, u8>>,
    hooks: &hooks::Hooks<'_>,
    info: &EventInfo<'_>,
    stats: &mut ClientStats,
    max_key_len: usize,
) -> Result<(), CaptureError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let mut failed = false;
    queue.edit_last(
        |area, len| match hooks::run_properties(hooks, info, area, len, max_key_len) {
            Ok(n) => Some(n),
            Err(HookFailed) => {
                failed = true;
                None
            }
        },
    );
    if failed {
        queue.unpush_last();
        ph_warn!("event dropped: a before-send hook failed");
        bump(&mut stats.hook_failed, 1);
        return Err(CaptureError::HookFailed);
    }
    Ok(())
}

/// Counts the outcome of an event producer.
fn account<R>(stats: &mut ClientStats, r: Result<R, CaptureError>) -> Result<R, CaptureError> {
    match &r {
        Ok(_) => bump(&mut stats.captured, 1),
        Err(
            CaptureError::TooLarge { .. }
            | CaptureError::QueueFull { .. }
            | CaptureError::Disabled
            | CaptureError::Filtered
            | CaptureError::HookFailed,
        ) => {}
        Err(e) => {
            ph_debug!("event rejected: {}", e);
            bump(&mut stats.invalid, 1);
        }
    }
    r
}
