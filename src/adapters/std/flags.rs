//! Flag reads of a [`StdClient`]: local evaluation first, then the remote `/flags` fallback
//! (sent from the caller's thread, retried per [`FlagsRetry`] with the delays on the client's
//! clock); and their owned values ([`StdFlagValue`]) and options ([`FlagOptions`]).

use std::borrow::ToOwned;

use std::collections::BTreeMap;
use std::string::String;
use std::sync::{MutexGuard, PoisonError};
use std::vec::Vec;

use crate::client::{valid_payload, FlagResult, FlagsAttempt, FlagsRetry, TransportError};
use crate::flags::remote::{FlagErrorKind, FlagErrors, RequestError};
use crate::flags::{EvalContext, FlagValue, Inconclusive};
use crate::time::{Duration, Instant};

use super::client::StdClient;
use super::config::{to_std, StdRemoteFlags};
use super::observer::{RecordKind, RequestRecord, Stopwatch};

/// First size tried for a `/flags` request body; a larger body gets a buffer of its exact size.
const FLAGS_BODY_BYTES: usize = 4096;

/// A flag's value, owned (see [`FlagValue`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StdFlagValue {
    /// A boolean flag's value (or `false` for any flag that did not match).
    Bool(bool),
    /// The variant of a multivariate flag.
    Variant(String),
    /// The user is in holdout `id`.
    Holdout(i64),
}

impl StdFlagValue {
    /// Whether the flag is on (anything but `false`).
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        !matches!(self, Self::Bool(false))
    }
}

impl From<FlagValue<'_>> for StdFlagValue {
    fn from(v: FlagValue<'_>) -> Self {
        match v {
            FlagValue::Bool(b) => Self::Bool(b),
            FlagValue::Variant(s) => Self::Variant(s.to_owned()),
            FlagValue::Holdout(id) => Self::Holdout(id),
        }
    }
}

/// A flag's value with its payload, owned: what PostHog's `get_feature_flag_result` returns
/// (see [`FlagResult`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StdFlagResult {
    /// The flag key.
    pub key: String,
    /// Whether the flag is on (anything but `false`).
    pub enabled: bool,
    /// The value.
    pub value: StdFlagValue,
    /// The payload's JSON text, when the value has a valid one.
    pub payload: Option<String>,
}

impl StdFlagResult {
    /// The variant of a multivariate flag (`None` for a boolean flag or a holdout).
    #[must_use]
    pub fn variant(&self) -> Option<&str> {
        match &self.value {
            StdFlagValue::Variant(v) => Some(v),
            _ => None,
        }
    }
}

impl From<FlagResult<'_>> for StdFlagResult {
    fn from(r: FlagResult<'_>) -> Self {
        Self {
            key: r.key.to_owned(),
            enabled: r.enabled,
            value: r.value.into(),
            payload: r.payload.map(str::to_owned),
        }
    }
}

/// Options of one flag read ([`StdClient::get_feature_flag`] and friends).
///
/// ```
/// use posthog_embedded::adapters::std::FlagOptions;
/// let opts = FlagOptions::new().send_event(false);
/// assert!(!opts.send_event && !opts.only_local && !opts.force_remote);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlagOptions {
    /// Never ask the server: a flag local evaluation cannot decide is `None`. Default false.
    pub only_local: bool,
    /// Queue a `$feature_flag_called` event for the read (de-duplicated). Default true.
    pub send_event: bool,
    /// Skip local evaluation and ask the server (wins over [`only_local`](Self::only_local)).
    /// Default false.
    pub force_remote: bool,
    /// Override the client's GeoIP setting for the `/flags` request. Default `None`.
    pub disable_geoip: Option<bool>,
}

impl Default for FlagOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl FlagOptions {
    /// The defaults: local first, remote fallback, with the `$feature_flag_called` event.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            only_local: false,
            send_event: true,
            force_remote: false,
            disable_geoip: None,
        }
    }

    /// Sets [`only_local`](Self::only_local).
    #[must_use]
    pub const fn only_local(mut self, v: bool) -> Self {
        self.only_local = v;
        self
    }

    /// Sets [`send_event`](Self::send_event).
    #[must_use]
    pub const fn send_event(mut self, v: bool) -> Self {
        self.send_event = v;
        self
    }

    /// Sets [`force_remote`](Self::force_remote).
    #[must_use]
    pub const fn force_remote(mut self, v: bool) -> Self {
        self.force_remote = v;
        self
    }

    /// Sets [`disable_geoip`](Self::disable_geoip).
    #[must_use]
    pub const fn disable_geoip(mut self, v: bool) -> Self {
        self.disable_geoip = Some(v);
        self
    }
}

impl StdClient {
    /// Evaluates flag `key` locally for `ctx`, with the client clock's wall time for date
    /// filters (the system's, on a [`StdClock`](super::StdClock)).
    ///
    /// # Errors
    /// [`Inconclusive`] when the local definitions cannot decide (unknown flag included).
    pub fn evaluate(&self, key: &str, ctx: &EvalContext<'_>) -> Result<StdFlagValue, Inconclusive> {
        let wall = self.clock.wall();
        let mut groups = heapless::Vec::new();
        let ctx = ctx.prepared(&mut groups);
        self.with_flags(|store| store.evaluate(key, &ctx, wall).map(StdFlagValue::from))
    }

    /// The value of flag `key` for `ctx`, local first and then the server, as posthog-python's
    /// `_get_feature_flag_result_with_context` and posthog-node's `_getFeatureFlagResult` read it:
    ///
    /// 1. local evaluation ([`Client::feature_flag`](crate::client::Client::feature_flag)); a
    ///    value is final;
    /// 2. when it cannot decide (unknown flag, inconclusive, needs the server), `None` with
    ///    [`FlagOptions::only_local`]; otherwise one `POST /flags/?v=2` scoped to `key` (no
    ///    `Authorization`; [`StdConfig::flags_request_timeout`] per attempt; retried per
    ///    [`FlagsRetry`] up to [`StdConfig::flags_max_retries`]). A flag missing from the
    ///    answer, marked failed, or a failed request gives `None`.
    ///
    /// [`StdConfig::flags_request_timeout`]: super::StdConfig::flags_request_timeout
    /// [`StdConfig::flags_max_retries`]: super::StdConfig::flags_max_retries
    ///
    /// With [`FlagOptions::send_event`] a `$feature_flag_called` event is queued (once per
    /// distinct id, flag, value and groups), with `$feature_flag_error` when the server did not
    /// answer normally (`api_error_503`, `timeout`, `connection_error`, `unknown_error` for an
    /// unusable answer, `flag_missing`, ...). An empty or whitespace distinct id gives `None` at
    /// once, with no request and no event; after [`shutdown`](Self::shutdown) no request is
    /// sent (a local value is still returned); while offline ([`set_online`](Self::set_online))
    /// no request is sent and the read is reported with `connection_error`.
    ///
    /// Blocks the calling thread during the remote request (at most about
    /// `(flags_max_retries + 1) × flags_request_timeout` plus the retry delays), but never holds
    /// the client's lock meanwhile: captures and the background thread go on. The request
    /// timeout is real time; the retry delays are on the client's clock (with a
    /// [`ManualClock`](super::ManualClock), a retry waits until the clock is moved past its
    /// delay, counted from the end of the failed attempt).
    #[must_use]
    pub fn get_feature_flag(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<StdFlagValue> {
        self.get_feature_flag_result(key, ctx, opts)
            .map(|r| r.value)
    }

    /// [`get_feature_flag`](Self::get_feature_flag) with the payload of the value (the
    /// configured one locally, the server's remotely; kept only when it is valid JSON): PostHog's
    /// `get_feature_flag_result`. Same resolution, event and blocking. `None` when the flag has
    /// no value (never a partly filled result).
    #[must_use]
    pub fn get_feature_flag_result(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<StdFlagResult> {
        let allowed = self.shared.lock().core.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            return None;
        }
        if !opts.force_remote {
            let local = self.produce(|c, now| {
                c.feature_flag_result(now, key, ctx, opts.send_event)
                    .map(StdFlagResult::from)
            });
            match local {
                Ok(v) => return Some(v),
                Err(_) if opts.only_local => {
                    self.produce(|c, now| {
                        c.failed_flag_called(now, key, ctx, FlagErrors::new(), opts.send_event);
                    });
                    return None;
                }
                Err(_) => {}
            }
        }
        match allowed {
            Ok(()) => {}
            Err(RequestError::Offline) => {
                // No connection attempt while the network is down.
                let errors = FlagErrors::from(FlagErrorKind::ConnectionError);
                self.produce(|c, now| c.failed_flag_called(now, key, ctx, errors, opts.send_event));
                return None;
            }
            // Shut down: no request, no event.
            Err(_) => return None,
        }
        match self.remote_flags(ctx, Some(&[key]), opts.disable_geoip) {
            Ok(remote) => self.produce(|c, now| {
                c.remote_flag_result(now, key, ctx, &remote, opts.send_event)
                    .map(StdFlagResult::from)
            }),
            Err(errors) => {
                self.produce(|c, now| c.failed_flag_called(now, key, ctx, errors, opts.send_event));
                None
            }
        }
    }

    /// Whether flag `key` is on for `ctx` (anything but `false`): `None` when it has no value.
    /// Same resolution and event as [`get_feature_flag`](Self::get_feature_flag).
    #[must_use]
    pub fn is_feature_enabled(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<bool> {
        self.get_feature_flag(key, ctx, opts)
            .map(|v| v.is_enabled())
    }

    /// Whether flag `key` is on for `ctx`, or `default` when it has no value (unknown, not
    /// loaded and the server failed, blank distinct id): PostHog's `is_feature_enabled` with a
    /// caller default. A value, `false` included, always beats the default. Same resolution
    /// and event as [`get_feature_flag`](Self::get_feature_flag).
    #[must_use]
    pub fn is_feature_enabled_or(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        default: bool,
        opts: FlagOptions,
    ) -> bool {
        self.is_feature_enabled(key, ctx, opts).unwrap_or(default)
    }

    /// The payload (JSON text, as stored) of the value flag `key` takes for `ctx`, resolved like
    /// [`get_feature_flag`](Self::get_feature_flag) but never sending an event
    /// ([`FlagOptions::send_event`] is ignored). `None`: no value, or the value has no payload,
    /// or one that is empty or not valid JSON (as posthog-python's single-flag getter reads a
    /// payload it cannot parse).
    #[must_use]
    pub fn get_feature_flag_payload(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<String> {
        let allowed = self.shared.lock().core.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            return None;
        }
        if !opts.force_remote {
            let wall = self.clock.wall();
            let mut groups = heapless::Vec::new();
            let prepared = ctx.prepared(&mut groups);
            let local = self.with_flags(|store| {
                store.evaluate(key, &prepared, wall).map(|v| {
                    store
                        .payload(key, &v)
                        .and_then(valid_payload)
                        .map(str::to_owned)
                })
            });
            match local {
                Ok(p) => return p,
                Err(_) if opts.only_local => return None,
                Err(_) => {}
            }
        }
        allowed.ok()?;
        let remote = self
            .remote_flags(ctx, Some(&[key]), opts.disable_geoip)
            .ok()?;
        let flag = remote
            .get(key)
            .filter(|f| !f.failed && !remote.quota_limited())?;
        flag.payload.and_then(valid_payload).map(str::to_owned)
    }

    /// The payload PostHog configured for value `match_value` of flag `key` (PostHog's
    /// `get_feature_flag_payload(key, match_value=...)`): read from the local definitions
    /// without evaluating when they define the flag; otherwise resolved like
    /// [`get_feature_flag_payload`](Self::get_feature_flag_payload) and returned only when the
    /// flag takes `match_value`. No event.
    #[must_use]
    pub fn get_feature_flag_payload_matching(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        match_value: FlagValue<'_>,
        opts: FlagOptions,
    ) -> Option<String> {
        let local = self.with_flags(|store| {
            store.flag_info(key).map(|_| {
                store
                    .payload(key, &match_value)
                    .and_then(valid_payload)
                    .map(str::to_owned)
            })
        });
        if let Some(found) = local {
            return found;
        }
        let result = self.get_feature_flag_result(key, ctx, opts.send_event(false))?;
        (StdFlagValue::from(match_value) == result.value)
            .then_some(result.payload)
            .flatten()
    }

    /// Every flag's value for `ctx`, without `$feature_flag_called` events, as posthog-python's
    /// `get_all_flags_and_payloads` reads them:
    ///
    /// 1. every locally defined flag is evaluated;
    /// 2. when there are no local flags or any is inconclusive, and `only_local` is false, one
    ///    `/flags` request (for every flag) is made and, as posthog-python does, **its answer
    ///    replaces the local values**, except for the flags the server marked `failed`, which
    ///    keep their local value (or are left out when there is none). A quota-limited answer
    ///    gives an empty map. When the request fails, the local values are returned;
    /// 3. with `only_local`, inconclusive flags are left out.
    ///
    /// `keys` limits both the evaluation and the request to those flags (a requested key with
    /// no local definition makes the request).
    ///
    /// An empty or whitespace distinct id gives an empty map; after
    /// [`shutdown`](Self::shutdown) or while offline only local values are returned (no
    /// request).
    #[must_use]
    pub fn get_all_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        only_local: bool,
    ) -> BTreeMap<String, StdFlagValue> {
        self.get_all_flags_and_payloads(ctx, keys, only_local).0
    }

    /// [`get_all_flags`](Self::get_all_flags) with the payloads (valid JSON only) of the
    /// values, from the same evaluation and at most the same one request: PostHog's
    /// `get_all_flags_and_payloads`. Nothing known: both maps empty.
    #[must_use]
    pub fn get_all_flags_and_payloads(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        only_local: bool,
    ) -> (BTreeMap<String, StdFlagValue>, BTreeMap<String, String>) {
        let mut values = BTreeMap::new();
        let mut payloads = BTreeMap::new();
        let mut put = |r: FlagResult<'_>| {
            if let Some(p) = r.payload {
                payloads.insert(r.key.to_owned(), p.to_owned());
            }
            values.insert(r.key.to_owned(), StdFlagValue::from(r.value));
        };
        let allowed = self.shared.lock().core.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            return (values, payloads);
        }
        let found = {
            let g = self.shared.lock();
            g.core.all_flags(self.clock.read(), ctx, keys, &mut put)
        };
        if !found.incomplete || only_local || allowed.is_err() {
            return (values, payloads);
        }
        let Ok(remote) = self.remote_flags(ctx, keys, None) else {
            return (values, payloads);
        };
        let (mut values, mut payloads) = (BTreeMap::new(), BTreeMap::new());
        let g = self.shared.lock();
        g.core
            .merge_all_flags(self.clock.read(), ctx, keys, &remote, |r| {
                if let Some(p) = r.payload {
                    payloads.insert(r.key.to_owned(), p.to_owned());
                }
                values.insert(r.key.to_owned(), StdFlagValue::from(r.value));
            });
        (values, payloads)
    }

    /// Blocks the calling thread for the retry `delay` of an attempt that ended at `ended`, on
    /// the client's clock: sleeps for it on a clock that follows real time; otherwise waits
    /// until the clock is moved to `ended + delay` or later, or the client shuts down.
    fn retry_delay(&self, ended: Instant, delay: Duration) {
        if self.clock.follows_real_time() {
            std::thread::sleep(to_std(delay));
        } else {
            let g = self.shared.lock();
            let until = Some((&*self.clock, ended + delay));
            drop(
                self.shared
                    .wait_progress(g, None, until, |s| s.exit || s.exited),
            );
        }
    }

    /// The `/flags` request body for `ctx` (and `keys`), built under the client's lock.
    fn flags_body(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        geoip: Option<bool>,
    ) -> Result<Vec<u8>, RequestError> {
        let g = self.shared.lock();
        let mut buf = std::vec![0u8; FLAGS_BODY_BYTES];
        let len = match g.core.flags_request_with(ctx, keys, geoip, &mut buf) {
            Err(RequestError::BufferTooSmall { needed, .. }) => {
                buf.resize(needed, 0);
                g.core.flags_request_with(ctx, keys, geoip, &mut buf)?
            }
            other => other?,
        };
        drop(g);
        buf.truncate(len);
        Ok(buf)
    }

    /// Asks the server (`POST /flags/?v=2`) with the retry policy and returns the parsed answer,
    /// or the `$feature_flag_error` of the failure. No lock is held during the request.
    fn remote_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        geoip: Option<bool>,
    ) -> Result<MutexGuard<'_, StdRemoteFlags>, FlagErrors> {
        let Ok(body) = self.flags_body(ctx, keys, geoip) else {
            // Not representable as JSON: not sent, not retried.
            return Err(FlagErrorKind::UnknownError.into());
        };
        let mut retry = FlagsRetry::new(self.flags_max_retries);
        let mut attempt_no = 0u32;
        let resp = loop {
            let watch = Stopwatch::start(&*self.clock);
            let result = self.transport.send_flags(&body, self.flags_timeout);
            let (ended, elapsed) = watch.lap(&*self.clock);
            self.shared.observe(&RequestRecord {
                kind: RecordKind::Flags,
                body: &body,
                attempt: attempt_no,
                result: result.as_ref().map(|r| r.status).map_err(|f| f.error),
                started: watch.started,
                elapsed,
            });
            let (attempt, error) = match result {
                Ok(resp) if (200..300).contains(&resp.status) => break resp,
                Ok(resp) => (
                    FlagsAttempt::Status(resp.status),
                    FlagErrorKind::ApiError(resp.status),
                ),
                Err(f) => (
                    if f.refused {
                        FlagsAttempt::Refused
                    } else {
                        FlagsAttempt::Transport
                    },
                    match f.error {
                        TransportError::Timeout => FlagErrorKind::Timeout,
                        TransportError::BadResponse => FlagErrorKind::UnknownError,
                        _ => FlagErrorKind::ConnectionError,
                    },
                ),
            };
            match retry.next_delay(attempt) {
                Some(delay) => {
                    ph_debug!(
                        "/flags attempt failed: retrying in {} ms",
                        delay.as_millis()
                    );
                    self.retry_delay(ended, delay);
                    // The core's gate again: no retry after shutdown or while offline.
                    let closed = {
                        let g = self.shared.lock();
                        g.exit || g.core.check_remote_read(ctx).is_err()
                    };
                    if closed {
                        return Err(error.into());
                    }
                    attempt_no += 1;
                }
                None => {
                    ph_warn!("/flags request failed: {}", FlagErrors::from(error));
                    return Err(error.into());
                }
            }
        };
        let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        match remote.parse(&resp.body) {
            Ok(()) => Ok(remote),
            Err(e) => {
                ph_warn!("/flags answer unusable: {}", e);
                Err(FlagErrorKind::UnknownError.into())
            }
        }
    }
}
