//! Flag reads of a [`StdClient`]: local evaluation first, then the core's `/flags` query
//! (see [`Client::start_flags_query`](crate::client::Client::start_flags_query)), which the
//! background thread sends ahead of any batch and retries per
//! [`FlagsRetry`](crate::client::FlagsRetry) with the delays on the client's clock; and their
//! owned results ([`StdFlagResult`]) and options ([`FlagOptions`]).

use std::borrow::ToOwned;

use std::collections::BTreeMap;
use std::string::String;

use crate::client::{valid_payload, FlagResult, QueryError, QueryStatus, ReadOptions, ReadStep};
use crate::flags::remote::RequestError;
use crate::flags::{EvalContext, FlagValue, Inconclusive};

use super::client::StdClient;

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
    pub value: FlagValue,
    /// The payload's JSON text, when the value has a valid one.
    pub payload: Option<String>,
}

impl StdFlagResult {
    /// The variant of a multivariate flag (`None` for a boolean flag or a holdout).
    #[must_use]
    pub fn variant(&self) -> Option<&str> {
        self.value.as_variant()
    }
}

impl From<FlagResult<'_>> for StdFlagResult {
    fn from(r: FlagResult<'_>) -> Self {
        Self {
            key: r.key.to_owned(),
            enabled: r.enabled,
            value: r.value,
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
    pub fn evaluate(&self, key: &str, ctx: &EvalContext<'_>) -> Result<FlagValue, Inconclusive> {
        let wall = self.clock.wall();
        let mut groups = heapless::Vec::new();
        let ctx = ctx.prepared(&mut groups);
        self.with_flags(|store| store.evaluate(key, &ctx, wall))
    }

    /// The value of flag `key` for `ctx`, local first and then the server, as posthog-python's
    /// `_get_feature_flag_result_with_context` and posthog-node's `_getFeatureFlagResult` read it:
    ///
    /// 1. local evaluation ([`Client::feature_flag`](crate::client::Client::feature_flag)); a
    ///    value is final;
    /// 2. when it cannot decide (unknown flag, inconclusive, needs the server), `None` with
    ///    [`FlagOptions::only_local`]; otherwise one `POST /flags/?v=2` scoped to `key` (no
    ///    `Authorization`; [`StdConfig::flags_request_timeout`] per attempt; retried per
    ///    [`FlagsRetry`](crate::client::FlagsRetry) up to [`StdConfig::flags_max_retries`]). A flag missing from the
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
    /// Blocks the calling thread while the background thread asks the server (behind a request
    /// already in flight, and another reader's query; then at most about
    /// `(flags_max_retries + 1) × flags_request_timeout` plus the retry delays), without
    /// holding the client's lock: captures go on. The request timeout is real time; the retry
    /// delays are on the client's clock (with a [`ManualClock`](super::ManualClock), a retry
    /// waits until the clock is moved past its delay, counted from the end of the failed
    /// attempt). A refused connection is not retried.
    #[must_use]
    pub fn get_feature_flag(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<FlagValue> {
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
        let read = ReadOptions {
            only_local: opts.only_local,
            force_remote: opts.force_remote,
            send_event: opts.send_event,
            max_retries: self.flags_max_retries,
            disable_geoip: opts.disable_geoip,
        };
        let mut g = self.shared.lock();
        loop {
            let now = self.clock.read();
            match g.core.begin_flag_read(now, key, ctx, read) {
                ReadStep::Local => {
                    let r = g
                        .core
                        .feature_flag_result(now, key, ctx, false)
                        .ok()
                        .map(StdFlagResult::from);
                    drop(g);
                    self.shared.wake.notify_one();
                    return r;
                }
                ReadStep::Remote(ticket) => {
                    // The worker sends it ahead of any batch; wait for the answer (or the
                    // retries' end), woken after every settled request.
                    self.shared.wake.notify_one();
                    g = self.shared.wait_progress(g, None, None, |s| {
                        s.core.flags_query(ticket) != QueryStatus::Pending || s.exit || s.exited
                    });
                    let now = self.clock.read();
                    let r = g
                        .core
                        .finish_flag_read(now, ticket, key, ctx, opts.send_event)
                        .map(StdFlagResult::from);
                    // Not answered (the client stopped): give the query up.
                    g.core.close_flags_query(ticket);
                    drop(g);
                    self.shared.wake.notify_one();
                    // Readers waiting for the query to close.
                    self.shared.progress.notify_all();
                    return r;
                }
                ReadStep::Busy => {
                    g = self.shared.wait_progress(g, None, None, |s| {
                        !s.core.is_query_open() || s.exit || s.exited
                    });
                    if g.exit || g.exited {
                        return None;
                    }
                }
                // Anything else: no value (its event, if any, is queued).
                _ => {
                    drop(g);
                    self.shared.wake.notify_one();
                    return None;
                }
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
        self.get_feature_flag_result(key, ctx, opts.send_event(false))?
            .payload
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
        match_value: FlagValue,
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
        (match_value == result.value)
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
    ) -> BTreeMap<String, FlagValue> {
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
    ) -> (BTreeMap<String, FlagValue>, BTreeMap<String, String>) {
        let mut values = BTreeMap::new();
        let mut payloads = BTreeMap::new();
        let mut put = |r: FlagResult<'_>| {
            if let Some(p) = r.payload {
                payloads.insert(r.key.to_owned(), p.to_owned());
            }
            values.insert(r.key.to_owned(), r.value);
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
        let read = ReadOptions {
            max_retries: self.flags_max_retries,
            ..ReadOptions::new()
        };
        let mut g = self.shared.lock();
        let ticket = loop {
            match g.core.start_flags_query(ctx, keys, read) {
                Ok(t) => break t,
                Err(QueryError::Busy) => {
                    g = self.shared.wait_progress(g, None, None, |s| {
                        !s.core.is_query_open() || s.exit || s.exited
                    });
                    if g.exit || g.exited {
                        return (values, payloads);
                    }
                }
                Err(_) => return (values, payloads),
            }
        };
        self.shared.wake.notify_one();
        g = self.shared.wait_progress(g, None, None, |s| {
            s.core.flags_query(ticket) != QueryStatus::Pending || s.exit || s.exited
        });
        if g.core.flags_query(ticket) == QueryStatus::Answered {
            let (mut merged, mut merged_payloads) = (BTreeMap::new(), BTreeMap::new());
            g.core
                .merge_query_answer(self.clock.read(), ticket, ctx, keys, |r| {
                    if let Some(p) = r.payload {
                        merged_payloads.insert(r.key.to_owned(), p.to_owned());
                    }
                    merged.insert(r.key.to_owned(), r.value);
                });
            values = merged;
            payloads = merged_payloads;
        }
        g.core.close_flags_query(ticket);
        drop(g);
        self.shared.progress.notify_all();
        (values, payloads)
    }
}
