//! The handle every task uses: capture, identify, flags (local first, then `/flags` over the
//! runner's connection settings), flush and shutdown waits.

use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::RawMutex;

use super::Shared;
use crate::capture::{EventOptions, Person, Uuid};
use crate::client::Id;
use crate::client::{
    BatchOutcome, BeforeSend, Client, ClientStats, EventInfo, Fate, FlagResult, FlagSnapshot,
    HooksFull, LocalFlags, QueryError, QueryStatus, QueryTicket, ReadOptions, ReadStep,
    SnapshotError, SnapshotStep, Verdict,
};
use crate::error::{CaptureError, PropertyError};
use crate::flags::remote::{FlagErrorKind, FlagErrors};
use crate::flags::{EvalContext, FlagTables, FlagValue, Inconclusive, LoadError, Requirements};
use crate::json::write::Object;
use crate::time::{Now, UnixMillis};

/// The handle every task uses (from [`new`](super::new)): `Copy`, so pass it by value to as
/// many tasks as you like. It covers the whole client; [`with`](Self::with) is the escape
/// hatch for anything else. Reads that change nothing (counters, payloads, a de-duplicated
/// flag read) don't wake the runner.
pub struct Posthog<'d, M: RawMutex> {
    shared: &'d Shared<'d, M>,
}

impl<M: RawMutex> Clone for Posthog<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: RawMutex> Copy for Posthog<'_, M> {}

impl<'d, M: RawMutex> Posthog<'d, M> {
    pub(super) const fn new(shared: &'d Shared<'d, M>) -> Self {
        Self { shared }
    }

    #[cfg(feature = "storage")]
    pub(super) const fn shared(&self) -> &'d Shared<'d, M> {
        self.shared
    }

    /// Waits until `done` holds for the client or `deadline` passes, checking after every
    /// settled request and persistence step (no polling); returns whether it holds.
    pub async fn wait_until(
        &self,
        deadline: embassy_time::Instant,
        done: impl Fn(&Client<'d>) -> bool,
    ) -> bool {
        loop {
            let generation = self.shared.settled.generation();
            if self.shared.peek(&done) {
                return true;
            }
            if embassy_time::Instant::now() >= deadline {
                return false;
            }
            self.settled_since(generation, deadline).await;
        }
    }

    /// Runs `f` on the client with the current time, then wakes the runner (an escape hatch:
    /// the handle's own methods cover the client's API).
    pub fn with<R>(&self, f: impl FnOnce(&mut Client<'d>, Now) -> R) -> R {
        let now = self.shared.now();
        self.shared.with(|c| f(c, now))
    }

    /// The wall clock is now `now` (Unix time, from SNTP, GNSS, a cellular network or an RTC):
    /// from here on events carry a `timestamp` and relative date filters are evaluated. Call it
    /// again to correct it; the monotonic clock is unaffected.
    pub fn set_wall_clock(&self, now: UnixMillis) {
        let mono = embassy_time::Instant::now().as_millis();
        let offset = i64::try_from(now.as_millis())
            .ok()
            .zip(i64::try_from(mono).ok())
            .map(|(w, m)| w - m);
        self.shared.wall_offset.lock(|o| o.set(offset));
        // A runner waiting for the clock before it can check certificates goes on.
        self.shared.wake.signal(());
        // The storage runner records the clock anchor once the wall clock is known.
        #[cfg(feature = "storage")]
        self.shared.persist_wake.signal(());
    }

    /// Runs a flag read `f` on the client, waking the runner only when it queued an event (a
    /// `$feature_flag_called`): a read that queues nothing gives the runner nothing to do.
    fn read<R>(&self, f: impl FnOnce(&mut Client<'d>, Now) -> R) -> R {
        let now = self.shared.now();
        let (r, queued) = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            let before = c.last_seq();
            let r = f(&mut c, now);
            (r, c.last_seq() != before)
        });
        if queued {
            self.shared.wake.signal(());
        }
        r
    }

    /// Queues an event (see [`Client::capture`]).
    ///
    /// # Errors
    /// As [`Client::capture`].
    pub fn capture<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.capture(now, event, distinct_id, opts, props))
    }

    /// Queues `$identify` (see [`Client::identify`]).
    ///
    /// # Errors
    /// As [`Client::identify`].
    pub fn identify<'i, P>(
        &self,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.identify(now, distinct_id, opts, person))
    }

    /// Queues a `$set` event (see [`Client::set`]); `Ok(None)` when nothing was set.
    ///
    /// # Errors
    /// As [`Client::set`].
    pub fn set<'i, P>(
        &self,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Option<Uuid>, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.set(now, distinct_id, opts, person))
    }

    /// Queues `$create_alias` (see [`Client::alias`]).
    ///
    /// # Errors
    /// As [`Client::alias`].
    pub fn alias(
        &self,
        previous_id: &str,
        alias: &str,
        opts: &EventOptions<'_>,
    ) -> Result<Uuid, CaptureError> {
        self.with(|c, now| c.alias(now, previous_id, alias, opts))
    }

    /// Queues `$groupidentify` (see [`Client::group_identify`]).
    ///
    /// # Errors
    /// As [`Client::group_identify`].
    pub fn group_identify<P>(
        &self,
        group_type: &str,
        group_key: &str,
        distinct_id: Option<&str>,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.group_identify(now, group_type, group_key, distinct_id, opts, props))
    }

    /// Loads flag definitions from bytes (a snapshot in flash); on error the definitions in
    /// use are kept (see [`Client::load_definitions`]).
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load_definitions(&self, doc: &[u8]) -> Result<Requirements, LoadError> {
        // Changes no request the runner could send: no wake-up.
        self.shared
            .client
            .lock(|c| c.borrow_mut().load_definitions(doc))
    }

    /// Loads flag definitions into `staging` **without holding the client's lock**, in one pass
    /// ([`FlagTables::load_or_clear`]), then swaps
    /// them in under it in O(1) (see [`Client::install_definitions`]): `staging` gets the old
    /// definitions back, ready for the next load. [`load_definitions`](Self::load_definitions)
    /// parses under the lock instead, which a `CriticalSectionRawMutex` holds with interrupts
    /// masked; this costs one more flag store of RAM (`FlagTables::new` over a second
    /// `FlagStorage` with the client's capacities). On error the definitions in use are kept.
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load_definitions_staged(
        &self,
        staging: &mut FlagTables<'d>,
        doc: &[u8],
    ) -> Result<Requirements, LoadError> {
        let loaded = staging.load_or_clear(doc);
        self.shared
            .client
            .lock(|c| c.borrow_mut().install_definitions(staging, loaded))
    }

    /// Asks for a definitions poll now (see [`Client::reload`]).
    pub fn reload_definitions(&self) {
        self.shared.with(Client::reload);
    }

    /// Whether flag definitions are loaded (local evaluation can answer).
    #[must_use]
    pub fn is_local_evaluation_ready(&self) -> bool {
        self.shared.peek(Client::is_local_evaluation_ready)
    }

    /// Stops capturing (see [`Client::opt_out`]).
    pub fn opt_out(&self) {
        self.shared.with(Client::opt_out);
    }

    /// Opts out and discards every queued event (see [`Client::opt_out_and_clear`]).
    pub fn opt_out_and_clear(&self) {
        self.shared.with(Client::opt_out_and_clear);
    }

    /// Resumes capturing.
    pub fn opt_in(&self) {
        self.shared.with(Client::opt_in);
    }

    /// Whether capturing is off (opted out or shut down).
    #[must_use]
    pub fn is_opted_out(&self) -> bool {
        self.shared.peek(Client::is_opted_out)
    }

    /// Installs a before-send filter (see [`Client::set_before_send`]).
    pub fn set_before_send(&self, f: Option<fn(&EventInfo<'_>) -> Verdict>) {
        self.shared
            .client
            .lock(|c| c.borrow_mut().set_before_send(f));
    }

    /// Adds `hook` at the end of the before-send chain (see [`Client::add_before_send`]).
    ///
    /// # Errors
    /// [`HooksFull`] when the chain is full.
    pub fn add_before_send(&self, hook: &'d (dyn BeforeSend + Sync)) -> Result<(), HooksFull> {
        self.shared
            .client
            .lock(|c| c.borrow_mut().add_before_send(hook))
    }

    /// Installs a callback told how every batch ended (see [`Client::set_on_batch`]).
    pub fn set_on_batch(&self, f: Option<fn(&BatchOutcome)>) {
        self.shared.client.lock(|c| c.borrow_mut().set_on_batch(f));
    }

    /// Evaluates flag `key` locally and queues its `$feature_flag_called` event (see
    /// [`Client::feature_flag`]). For a read that may ask the server, see
    /// [`get_feature_flag`](Self::get_feature_flag).
    ///
    /// # Errors
    /// [`Inconclusive`] when only the server can decide.
    pub fn feature_flag(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
    ) -> Result<FlagValue, Inconclusive> {
        self.read(|c, now| c.feature_flag(now, key, ctx, true))
    }

    /// Runs `f` on the payload (JSON text) of flag `key`: of `match_value` when given, else of
    /// the value it takes for `ctx` locally; no event, no wake-up (see
    /// [`Client::feature_flag_payload_for`]; an empty or invalid payload is none). With the `serde` feature,
    /// `json::typed::from_json` reads it into a struct.
    ///
    /// # Errors
    /// [`Inconclusive`] when only the server can decide.
    pub fn feature_flag_payload<R>(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        match_value: Option<FlagValue>,
        f: impl FnOnce(Option<&str>) -> R,
    ) -> Result<R, Inconclusive> {
        let now = self.shared.now();
        self.shared.peek(|c| {
            c.feature_flag_payload_for(now, key, ctx, match_value)
                .map(f)
        })
    }

    /// Whether flag `key` is on for `ctx`, evaluated locally, queuing its
    /// `$feature_flag_called` event; `default` when it has no local value (see
    /// [`Client::is_feature_enabled_or`]). A value, `false` included, beats the default.
    pub fn is_feature_enabled_locally(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        default: bool,
    ) -> bool {
        self.read(|c, now| c.is_feature_enabled_or(now, key, ctx, default, true))
    }

    /// Queues an event with `produce` (any producer of the client), sends it now and waits
    /// until it is delivered or dropped, or `timeout` passes, like posthog-node's `*Immediate`
    /// methods. Returns its [`Fate`] (`Queued` when the timeout passed first; it stays queued).
    ///
    /// # Errors
    /// The producer's [`CaptureError`]: nothing was queued.
    pub async fn immediate<R>(
        &self,
        timeout: embassy_time::Duration,
        produce: impl FnOnce(&mut Client<'d>, Now) -> Result<R, CaptureError>,
    ) -> Result<Fate, CaptureError> {
        let deadline = embassy_time::Instant::now() + timeout;
        let seq = self.with(|c, now| {
            produce(c, now)?;
            c.flush();
            Ok::<_, CaptureError>(c.last_seq())
        })?;
        let Some(seq) = seq else {
            return Ok(Fate::Unknown);
        };
        loop {
            let generation = self.shared.settled.generation();
            let fate = self.shared.peek(|c| c.fate(seq));
            if fate != Fate::Queued || embassy_time::Instant::now() >= deadline {
                return Ok(fate);
            }
            self.settled_since(generation, deadline).await;
        }
    }

    /// [`capture`](Self::capture), sent at once (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`Client::capture`].
    pub async fn capture_immediate<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        props: P,
        timeout: embassy_time::Duration,
    ) -> Result<Fate, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.immediate(timeout, |c, now| {
            c.capture(now, event, distinct_id, opts, props)
        })
        .await
    }

    /// Reads flag `key` for `ctx` as PostHog's SDKs do: locally first (queuing its
    /// `$feature_flag_called` event); when only the server can decide (and `opts` allows it),
    /// the client's `/flags` query (see
    /// [`Client::start_flags_query`](crate::client::Client::start_flags_query)), which the
    /// runner sends over its own connection ahead of any batch, retried per
    /// [`FlagsRetry`](crate::client::FlagsRetry) on transport errors, 502 and 504; its answer
    /// (or error) is reported on the event. `None`: no value (the flag is unknown, or the
    /// request failed).
    ///
    /// Remote reads need query storage attached to the client before [`new`](super::new)
    /// ([`Client::attach_remote`]); without it an inconclusive flag has no value (reported
    /// with `unknown_error`). One query is open at a time: a second remote read waits for
    /// the first. `opts.timeout` bounds the whole wait: past it the query is given up and the
    /// read has no value (reported with `timeout`).
    ///
    /// An empty or whitespace distinct id gives `None` at once, with no request and no event;
    /// after [`begin_shutdown`](Self::begin_shutdown) no request is sent (a local value still
    /// answers); while offline ([`set_online`](Self::set_online)) no request is sent either,
    /// and the read is reported with `$feature_flag_error: connection_error`.
    pub async fn get_feature_flag(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagRead,
    ) -> Option<FlagValue> {
        self.get_feature_flag_result(key, ctx, opts, |r| r.map(|r| r.value))
            .await
    }

    /// [`get_feature_flag`](Self::get_feature_flag) with the payload of the value: PostHog's
    /// `get_feature_flag_result`. Same resolution, event and requests; `f` gets the result
    /// (`None`: no value) while the client is locked, and its answer is returned. `f` must not
    /// call this handle (the client is borrowed while it runs).
    pub async fn get_feature_flag_result<R>(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagRead,
        mut f: impl FnMut(Option<FlagResult<'_>>) -> R,
    ) -> R {
        let deadline = embassy_time::Instant::now() + opts.timeout;
        let read = ReadOptions {
            only_local: opts.only_local,
            force_remote: opts.force_remote,
            send_event: opts.send_event,
            max_retries: opts.max_retries,
            disable_geoip: None,
        };
        let ticket = loop {
            let generation = self.shared.settled.generation();
            // A local value is read under the same lock as its event, so the two agree.
            let step = self.read(|c, now| match c.begin_flag_read(now, key, ctx, read) {
                ReadStep::Local => Err(f(c.feature_flag_result(now, key, ctx, false).ok())),
                step => Ok(step),
            });
            match step {
                Err(r) => return r,
                Ok(ReadStep::Remote(t)) => break t,
                Ok(ReadStep::Busy) if embassy_time::Instant::now() < deadline => {
                    // Another read's query is open: wait until it is closed.
                    self.settled_since(generation, deadline).await;
                }
                Ok(_) => return f(None),
            }
        };
        let guard = OpenQuery::new(self.shared, ticket);
        self.await_query(ticket, deadline).await;
        let now = self.shared.now();
        let r = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            if c.flags_query(ticket) == QueryStatus::Pending {
                // The deadline passed: give the query up and report the read as timed out.
                c.close_flags_query(ticket);
                let errors = FlagErrors::from(FlagErrorKind::Timeout);
                c.failed_flag_called(now, key, ctx, errors, opts.send_event);
                return f(None);
            }
            f(c.finish_flag_read(now, ticket, key, ctx, opts.send_event))
        });
        guard.disarm();
        // The query is closed: a read waiting for it may go; the event may need sending.
        self.shared.settled.notify();
        self.shared.wake.signal(());
        r
    }

    /// PostHog's `evaluate_flags`: evaluates the flags for `ctx` (every flag, or only `keys`)
    /// once into `snapshot` (your storage: [`FlagSnapshot::new`]); local values first and, when
    /// the set is incomplete and `opts` allows it, one `/flags` request over the runner's
    /// connection whose values never replace local ones. No event is sent until a value is
    /// read ([`snapshot_flag`](Self::snapshot_flag), [`snapshot_enabled`](Self::snapshot_enabled));
    /// payload and key reads on the snapshot are silent. A failed or timed-out request keeps
    /// the local values ([`FlagSnapshot::error`]).
    ///
    /// # Errors
    /// [`SnapshotError::Full`] when `snapshot` is too small (it names what is needed).
    pub async fn evaluate_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        opts: FlagRead,
        snapshot: &mut FlagSnapshot<'_>,
    ) -> Result<(), SnapshotError> {
        let deadline = embassy_time::Instant::now() + opts.timeout;
        let read = ReadOptions {
            only_local: opts.only_local,
            force_remote: opts.force_remote,
            send_event: false,
            max_retries: opts.max_retries,
            disable_geoip: None,
        };
        let ticket = loop {
            let generation = self.shared.settled.generation();
            let now = self.shared.now();
            let step = self.shared.client.lock(|c| {
                c.borrow_mut()
                    .evaluate_flags(now, ctx, keys, read, snapshot)
            })?;
            match step {
                SnapshotStep::Remote(t) => break t,
                SnapshotStep::Busy if embassy_time::Instant::now() < deadline => {
                    self.settled_since(generation, deadline).await;
                }
                SnapshotStep::Busy => {
                    // Another read's query never closed in time: local values only.
                    self.shared.client.lock(|c| {
                        c.borrow_mut().abandon_snapshot(
                            None,
                            FlagErrorKind::ConnectionError,
                            snapshot,
                        );
                    });
                    return Ok(());
                }
                _ => return Ok(()),
            }
        };
        let guard = OpenQuery::new(self.shared, ticket);
        self.await_query(ticket, deadline).await;
        let r = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            if c.flags_query(ticket) == QueryStatus::Pending {
                // The deadline passed: local values only, the timeout recorded.
                c.abandon_snapshot(Some(ticket), FlagErrorKind::Timeout, snapshot);
                return Ok(());
            }
            let r = c.complete_snapshot(ticket, keys, snapshot);
            c.close_flags_query(ticket);
            r
        });
        guard.disarm();
        self.shared.settled.notify();
        r
    }

    /// Reads flag `key` from `snapshot` (an access: its `$feature_flag_called` the first
    /// time; a missing key reports `flag_missing`); `None` when it has no value.
    pub fn snapshot_flag(&self, snapshot: &mut FlagSnapshot<'_>, key: &str) -> Option<FlagValue> {
        self.read(|c, now| c.snapshot_flag(now, snapshot, key))
    }

    /// Whether flag `key` is on in `snapshot` (an access, as
    /// [`snapshot_flag`](Self::snapshot_flag)); `default` for a key it lacks.
    pub fn snapshot_enabled(
        &self,
        snapshot: &mut FlagSnapshot<'_>,
        key: &str,
        default: bool,
    ) -> bool {
        self.read(|c, now| c.snapshot_enabled(now, snapshot, key, default))
    }

    /// [`capture`](Self::capture) with the flags of `snapshot` attached (`$feature/<key>`,
    /// `$active_feature_flags`): no evaluation, no request.
    ///
    /// # Errors
    /// As [`Client::capture`].
    pub fn capture_with_snapshot<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        opts: &EventOptions<'_>,
        snapshot: &FlagSnapshot<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.capture_with_snapshot(now, event, distinct_id, opts, snapshot, props))
    }

    /// Whether flag `key` is on for `ctx`, resolved as
    /// [`get_feature_flag`](Self::get_feature_flag) resolves it (local, then the server; its
    /// event), or `default` when it has no value. A value, `false` included, beats the default.
    pub async fn is_feature_enabled(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        default: bool,
        opts: FlagRead,
    ) -> bool {
        self.get_feature_flag_result(key, ctx, opts, |r| r.map_or(default, |r| r.enabled))
            .await
    }

    /// The payload of flag `key`, resolved as [`get_feature_flag`](Self::get_feature_flag)
    /// resolves the value but never sending an event; `f` gets it (`None`: no value, or no
    /// valid payload) while the client is locked. For a given value's payload without any
    /// evaluation, see [`feature_flag_payload`](Self::feature_flag_payload).
    pub async fn get_feature_flag_payload<R>(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagRead,
        mut f: impl FnMut(Option<&str>) -> R,
    ) -> R {
        self.get_feature_flag_result(key, ctx, opts.send_event(false), |r| {
            f(r.and_then(|r| r.payload))
        })
        .await
    }

    /// PostHog's `get_all_flags_and_payloads`: every flag for `ctx` (or only `keys`), each
    /// handed to `out` with its payload while the client is locked, without events. Local
    /// values first; when some flag needs the server (or no definitions are loaded) and
    /// `opts.only_local` is false, one `/flags` request over the runner's connection whose
    /// answer is merged as posthog-python merges it ([`Client::merge_all_flags`]); if it fails,
    /// the local values. Returns how many flags `out` got.
    pub async fn get_all_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        opts: FlagRead,
        mut out: impl FnMut(FlagResult<'_>),
    ) -> usize {
        let deadline = embassy_time::Instant::now() + opts.timeout;
        let read = ReadOptions {
            max_retries: opts.max_retries,
            ..ReadOptions::new()
        };
        let ticket = loop {
            let generation = self.shared.settled.generation();
            let now = self.shared.now();
            let incomplete = self
                .shared
                .peek(|c| c.all_flags(now, ctx, keys, |_| {}).incomplete);
            if !incomplete || opts.only_local {
                return self
                    .shared
                    .peek(|c| c.all_flags(now, ctx, keys, &mut out).decided);
            }
            match self.read(|c, _| c.start_flags_query(ctx, keys, read)) {
                Ok(t) => break t,
                Err(QueryError::Busy) if embassy_time::Instant::now() < deadline => {
                    self.settled_since(generation, deadline).await;
                }
                Err(_) => {
                    return self
                        .shared
                        .peek(|c| c.all_flags(now, ctx, keys, &mut out).decided);
                }
            }
        };
        let guard = OpenQuery::new(self.shared, ticket);
        self.await_query(ticket, deadline).await;
        let now = self.shared.now();
        let n = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            let n = if c.flags_query(ticket) == QueryStatus::Answered {
                c.merge_query_answer(now, ticket, ctx, keys, &mut out)
            } else {
                c.all_flags(now, ctx, keys, &mut out).decided
            };
            c.close_flags_query(ticket);
            n
        });
        guard.disarm();
        self.shared.settled.notify();
        n
    }

    /// Wakes the runner for query `ticket`, then waits until it is no longer pending or
    /// `deadline` passes, woken by each settled request (no polling).
    async fn await_query(&self, ticket: QueryTicket, deadline: embassy_time::Instant) {
        self.shared.wake.signal(());
        loop {
            let generation = self.shared.settled.generation();
            let pending = self.shared.peek(|c| c.flags_query(ticket)) == QueryStatus::Pending;
            if !pending || embassy_time::Instant::now() >= deadline {
                return;
            }
            self.settled_since(generation, deadline).await;
        }
    }

    /// Waits until a request or query settles after `generation`, or `deadline` passes.
    pub(super) async fn settled_since(&self, generation: u32, deadline: embassy_time::Instant) {
        let _ = select(
            self.shared.settled.changed_since(generation),
            embassy_time::Timer::at(deadline),
        )
        .await;
    }

    /// Every locally decided flag for `ctx` (or only `keys`), each handed to `out` with its
    /// payload while the client is locked; no events, no request, no wake-up (see
    /// [`Client::all_flags`]: `incomplete` says some flag needs the server).
    pub fn all_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        out: impl FnMut(FlagResult<'_>),
    ) -> LocalFlags {
        let now = self.shared.now();
        self.shared.peek(|c| c.all_flags(now, ctx, keys, out))
    }

    /// Asks for every queued event to be sent now, without waiting (see
    /// [`flush`](Self::flush) to wait).
    pub fn request_flush(&self) {
        self.shared.with(Client::flush);
    }

    /// Asks for every queued event to be sent now, then waits until the queue is empty or
    /// `deadline` passes, woken by each settled request (no polling; any number of tasks may
    /// wait at once). Returns what was delivered meanwhile and what is still queued;
    /// undelivered events stay queued.
    pub async fn flush(&self, deadline: embassy_time::Instant) -> Drained {
        let before = self.stats().sent;
        self.request_flush();
        self.drain(before, deadline).await
    }

    /// [`begin_shutdown`](Self::begin_shutdown), then waits as [`flush`](Self::flush) does.
    pub async fn shutdown(&self, deadline: embassy_time::Instant) -> Drained {
        let before = self.stats().sent;
        self.begin_shutdown();
        self.drain(before, deadline).await
    }

    async fn drain(&self, sent_before: u32, deadline: embassy_time::Instant) -> Drained {
        loop {
            let generation = self.shared.settled.generation();
            let (sent, pending) = self.shared.peek(|c| (c.stats().sent, c.pending()));
            if pending == 0 || embassy_time::Instant::now() >= deadline {
                return Drained {
                    sent: sent.saturating_sub(sent_before),
                    pending,
                };
            }
            self.settled_since(generation, deadline).await;
        }
    }

    /// Events waiting for delivery.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.shared.peek(Client::pending)
    }

    /// The client's counters.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.shared.peek(Client::stats)
    }

    /// Begins shutdown without waiting: later captures are refused, no `/flags` request is
    /// sent any more, and a final flush is requested ([`shutdown`](Self::shutdown) also waits
    /// for it). Undelivered events stay queued.
    pub fn begin_shutdown(&self) {
        self.shared.with(Client::shutdown);
        // A flag read waiting for a query that shutdown just ended returns now.
        self.shared.settled.notify();
    }

    /// Tells the client whether the link is up (see [`Client::set_online`]): while it is down
    /// the runner opens no connection; when it comes back, queued events go out at once.
    pub fn set_online(&self, online: bool) {
        self.shared.with(|c| c.set_online(online));
        // A flag read waiting for a query that going offline just ended returns now.
        self.shared.settled.notify();
    }
}

/// Closes a `/flags` query when the read waiting for it is dropped before it finished (a
/// `select`, a `with_timeout` around the read): the query must not stay open, or every later
/// remote read would wait for it.
struct OpenQuery<'a, 'd, M: RawMutex> {
    shared: &'d Shared<'d, M>,
    ticket: Option<QueryTicket>,
    _read: core::marker::PhantomData<&'a ()>,
}

impl<'d, M: RawMutex> OpenQuery<'_, 'd, M> {
    fn new(shared: &'d Shared<'d, M>, ticket: QueryTicket) -> Self {
        Self {
            shared,
            ticket: Some(ticket),
            _read: core::marker::PhantomData,
        }
    }

    /// The read finished and closed the query itself.
    fn disarm(mut self) {
        self.ticket = None;
    }
}

impl<M: RawMutex> Drop for OpenQuery<'_, '_, M> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            self.shared
                .client
                .lock(|c| c.borrow_mut().close_flags_query(t));
            self.shared.settled.notify();
        }
    }
}

/// What [`Posthog::flush`] or [`Posthog::shutdown`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Drained {
    /// Events delivered while the call waited.
    pub sent: u32,
    /// Events still queued (0 unless the deadline passed first).
    pub pending: usize,
}

/// Options of [`Posthog::get_feature_flag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct FlagRead {
    /// Never ask the server: an inconclusive flag has no value. Default false.
    pub only_local: bool,
    /// Skip local evaluation. Default false.
    pub force_remote: bool,
    /// Queue a `$feature_flag_called` event. Default true.
    pub send_event: bool,
    /// Retries of the `/flags` request (transport errors, 502, 504). Default 1.
    pub max_retries: u8,
    /// How long the whole read may wait for the server (queued behind a request in flight,
    /// the attempts, the retry delay). Default 10 s. Each attempt is bounded by the runner's
    /// [`Timeouts::flags`](super::Timeouts::flags).
    pub timeout: embassy_time::Duration,
}

impl FlagRead {
    /// The defaults.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            only_local: false,
            force_remote: false,
            send_event: true,
            max_retries: 1,
            timeout: embassy_time::Duration::from_secs(10),
        }
    }

    /// Sets [`only_local`](Self::only_local).
    #[must_use]
    pub const fn only_local(mut self, v: bool) -> Self {
        self.only_local = v;
        self
    }

    /// Sets [`force_remote`](Self::force_remote).
    #[must_use]
    pub const fn force_remote(mut self, v: bool) -> Self {
        self.force_remote = v;
        self
    }

    /// Sets [`send_event`](Self::send_event).
    #[must_use]
    pub const fn send_event(mut self, v: bool) -> Self {
        self.send_event = v;
        self
    }
}

impl Default for FlagRead {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;

    use super::super::{new, Buffers, State};
    use super::*;
    use crate::client::{Config, ConfigError};
    use crate::resources::Resources;

    #[test]
    fn flag_reads_wake_the_runner_only_when_they_queue_an_event() {
        let mut res = Resources::<2048, 4, 32, 512, 8>::new();
        let client = Client::new(Config::new("phc_embassy", 7), &mut res).unwrap();
        let mut state = State::<CriticalSectionRawMutex>::new();
        let (mut tx, mut rx, mut body) = ([0u8; 256], [0u8; 64], [0u8; 64]);
        let bufs = Buffers {
            tx: &mut tx,
            rx: &mut rx,
            body: &mut body,
        };
        let (ph, _runner) = new(client, &mut state, bufs, "127.0.0.1").unwrap();
        let shared = ph.shared;
        ph.load_definitions(
            br#"{"flags":[{"id":1,"key":"beta","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#,
        )
        .unwrap();
        shared.wake.reset();
        let ctx = EvalContext {
            distinct_id: "device-1",
            device_id: None,
            person: &[],
            groups: &[],
        };
        // The first read queues its `$feature_flag_called`: the runner is woken.
        assert!(ph.is_feature_enabled_locally("beta", &ctx, false));
        assert!(shared.wake.signaled());
        assert_eq!(ph.pending(), 1);
        shared.wake.reset();
        // The same read again is de-duplicated: nothing queued, nobody woken.
        assert!(ph.is_feature_enabled_locally("beta", &ctx, false));
        assert!(!shared.wake.signaled());
        assert_eq!(ph.pending(), 1);
        // Counters, the queue and payloads are read without waking either; a capture wakes.
        let _ = (ph.stats(), ph.pending(), ph.is_opted_out());
        assert_eq!(
            ph.feature_flag_payload("beta", &ctx, None, |p| p.is_none()),
            Ok(true)
        );
        assert!(!shared.wake.signaled());
        ph.capture("e", "device-1", &EventOptions::new(), |_| Ok(()))
            .unwrap();
        assert!(shared.wake.signaled());
    }

    #[test]
    fn the_handle_is_copy_and_a_blank_host_is_refused() {
        fn copy<T: Copy>(_: T) {}
        let mut res = Resources::<512, 1, 4, 64, 4>::new();
        let client = Client::new(Config::new("phc_embassy", 7), &mut res).unwrap();
        let mut state = State::<CriticalSectionRawMutex>::new();
        let (mut tx, mut rx, mut body) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        let bufs = Buffers {
            tx: &mut tx,
            rx: &mut rx,
            body: &mut body,
        };
        assert_eq!(
            new(client, &mut state, bufs, "  ").err(),
            Some(ConfigError::EmptyHost)
        );
        let mut res = Resources::<512, 1, 4, 64, 4>::new();
        let client = Client::new(Config::new("phc_embassy", 7), &mut res).unwrap();
        let mut state = State::<CriticalSectionRawMutex>::new();
        let (mut tx, mut rx, mut body) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        let bufs = Buffers {
            tx: &mut tx,
            rx: &mut rx,
            body: &mut body,
        };
        let (ph, _runner) = new(client, &mut state, bufs, "h").unwrap();
        copy(ph);
        let other = ph;
        assert_eq!(other.pending(), ph.pending());
    }

    #[test]
    fn a_wall_clock_set_later_dates_events() {
        let mut res = Resources::<2048, 1, 4, 64, 4>::new();
        let config = Config::new("phc_embassy", 7).flush_at(1);
        let client = Client::new(config, &mut res).unwrap();
        let mut state = State::<CriticalSectionRawMutex>::new();
        let (mut tx, mut rx, mut body) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        let bufs = Buffers {
            tx: &mut tx,
            rx: &mut rx,
            body: &mut body,
        };
        let (ph, _runner) = new(client, &mut state, bufs, "h").unwrap();
        // No wall clock yet: `offset` only.
        assert_eq!(ph.with(|_, now| now.wall), None);
        let wall = UnixMillis::from_secs(1_800_000_000);
        ph.set_wall_clock(wall);
        let now = ph.with(|_, now| now).wall.unwrap().as_millis();
        // The monotonic clock moved on a little since; never backwards.
        assert!((wall.as_millis()..wall.as_millis() + 60_000).contains(&now));
        ph.capture("dated", "device-1", &EventOptions::new(), |_| Ok(()))
            .unwrap();
        let mut buf = [0u8; 1024];
        let text = ph.with(|c, now| {
            let tx = c.poll_transmit(now, &mut buf).expect("flush_at reached");
            std::string::String::from_utf8(tx.body.to_vec()).unwrap()
        });
        assert!(text.contains(r#""timestamp":"2027-01-15T08:"#), "{text}");
    }
}
