//! Feature flags through the client: local evaluation first, `$feature_flag_called` events
//! (de-duplicated), flag properties on captured events, and the pieces a driver needs for the
//! remote `/flags` fallback (request body, retry policy, reporting the remote answer).
//!
//! The single-flag read of PostHog's SDKs (posthog-python `_get_feature_flag_result_with_context`,
//! posthog-node `_getFeatureFlagResult`):
//!
//! 1. [`Client::feature_flag`]: local evaluation. A value is final (`locally_evaluated: true`)
//!    and its `$feature_flag_called` event is queued (once per distinct id, flag, value and
//!    groups). [`Inconclusive`] means "ask the server" unless the caller wants local-only.
//! 2. The server is asked through the client's own `/flags` query, sent by `poll_transmit`
//!    (see [`Client::begin_flag_read`] and the `query` module); its answer is reported with
//!    [`Client::remote_flag_called`] (or, when the request failed,
//!    [`Client::failed_flag_called`]), which queues the `$feature_flag_called` event with its
//!    `$feature_flag_error`. A hand-written driver can also build the body itself
//!    ([`Client::flags_request`]) and send it over any transport, retrying per [`FlagsRetry`].

use super::Client;
use crate::capture::{EventOptions, Uuid};
use crate::error::{CaptureError, PropertyError};
use crate::flags::called::{write_flag_properties, FlagResponse};
use crate::flags::outcome::ValueRef;
use crate::flags::remote::{FlagErrors, FlagsRequest, RemoteFlags, RequestError, RequestGroup};
use crate::flags::{EvalContext, FlagValue, Inconclusive};
use crate::json::read::Reader;
use crate::json::write::{Object, Value, ValueWriter};
use crate::managed::ManagedSlice;
use crate::time::Now;

/// Path of remote flag evaluation requests.
pub const FLAGS_PATH: &str = "/flags/?v=2";

/// At most this many groups are attached to a `$feature_flag_called` event (PostHog projects
/// have at most five group types).
pub const MAX_EVENT_GROUPS: usize = 8;

/// At most this many flags are attached to a captured event by
/// [`Client::capture_with_flags`].
pub const MAX_EVENT_FLAGS: usize = 64;

/// A JSON payload written as a JSON value when it is valid JSON, else as a string.
struct Payload<'a>(&'a str);

impl Value for Payload<'_> {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        let mut r = Reader::new(self.0.as_bytes());
        let valid = loop {
            match r.next() {
                Ok(Some(_)) => {}
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        if valid {
            w.raw_json(self.0)
        } else {
            w.str(self.0)
        }
    }
}

/// What a `$feature_flag_called` event says about where its value came from.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CalledInfo<'a> {
    pub(super) locally_evaluated: bool,
    pub(super) payload: Option<&'a str>,
    pub(super) id: Option<i64>,
    pub(super) version: Option<i64>,
    pub(super) reason: Option<&'a str>,
    pub(super) request_id: Option<&'a str>,
    pub(super) has_experiment: Option<bool>,
    /// `evaluatedAt` of the answer (Unix ms), for `$feature_flag_evaluated_at`.
    pub(super) evaluated_at: Option<u64>,
    pub(super) error: FlagErrors,
}

/// An empty or whitespace distinct id: the flag is unknown, nobody is asked, no event is sent.
pub(super) use crate::json::is_blank;

/// The `(type, key)` pairs of a context's groups.
fn group_pairs<'c>(ctx: &EvalContext<'c>) -> heapless::Vec<(&'c str, &'c str), MAX_EVENT_GROUPS> {
    ctx.groups
        .iter()
        .take(MAX_EVENT_GROUPS)
        .map(|g| (g.group_type, g.key))
        .collect()
}

impl Client<'_> {
    /// Evaluates flag `key` locally for `ctx` and, when it decides and `send_event` is true,
    /// queues a `$feature_flag_called` event (once per distinct id, flag, value and groups).
    /// `now.wall` serves relative date filters.
    ///
    /// An empty or whitespace distinct id is never evaluated: the flag is unknown
    /// ([`Inconclusive::UnknownFlag`]) and no event is queued; [`check_remote_read`] then tells
    /// the driver not to ask the server either.
    ///
    /// # Errors
    /// [`Inconclusive`]: only the server can decide (or the flag is unknown locally). Ask it
    /// with [`flags_request`](Self::flags_request) unless you want local-only answers.
    ///
    /// [`check_remote_read`]: Self::check_remote_read
    pub fn feature_flag(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        send_event: bool,
    ) -> Result<FlagValue, Inconclusive> {
        if is_blank(ctx.distinct_id) {
            return Err(Inconclusive::UnknownFlag);
        }
        let mut groups = heapless::Vec::new();
        let value = self
            .flags
            .evaluate(key, &ctx.prepared(&mut groups), now.wall)?;
        if send_event {
            let flag = self.flags.flag_info(key).unwrap_or_default();
            let info = CalledInfo {
                locally_evaluated: true,
                payload: self.flags.payload(key, &value),
                id: flag.id,
                version: flag.id.and(flag.version),
                reason: Some("Evaluated locally"),
                request_id: None,
                has_experiment: flag.has_experiment,
                evaluated_at: None,
                error: FlagErrors::new(),
            };
            let minimal = self.flags.minimal_flag_called_events();
            // The value borrows the store; the event goes through the other fields.
            let _ = flag_called(
                &mut self.encoder,
                &mut self.queue,
                &mut self.tracker,
                &mut self.stats,
                self.opted_out || self.shut_down,
                self.before_send,
                &self.hooks,
                now,
                key,
                ctx,
                Some(value),
                &info,
                minimal,
            );
        }
        Ok(value)
    }

    /// Whether flag `key` is on locally (anything but `false`), with the same event as
    /// [`feature_flag`](Self::feature_flag).
    ///
    /// # Errors
    /// As [`feature_flag`](Self::feature_flag).
    pub fn is_feature_enabled(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        send_event: bool,
    ) -> Result<bool, Inconclusive> {
        self.feature_flag(now, key, ctx, send_event)
            .map(|v| v.is_enabled())
    }

    /// The payload of flag `key` for `ctx`, evaluated locally. Sends no event (payload reads
    /// never do). `Ok(None)`: the value has no payload.
    ///
    /// # Errors
    /// As [`feature_flag`](Self::feature_flag).
    pub fn feature_flag_payload(
        &self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
    ) -> Result<Option<&str>, Inconclusive> {
        if is_blank(ctx.distinct_id) {
            return Err(Inconclusive::UnknownFlag);
        }
        let mut groups = heapless::Vec::new();
        let v = self
            .flags
            .evaluate(key, &ctx.prepared(&mut groups), now.wall)?;
        Ok(self.flags.payload(key, &v))
    }

    /// Whether the server may be asked about `ctx`. Drivers check it before a remote read;
    /// [`flags_request`](Self::flags_request) checks it too.
    ///
    /// # Errors
    /// - [`RequestError::NoDistinctId`] for an empty or whitespace distinct id (the flag is
    ///   unknown): send nothing and queue no `$feature_flag_called` event;
    /// - [`RequestError::ShutDown`] after [`shutdown`](Self::shutdown): send nothing (events
    ///   are refused anyway);
    /// - [`RequestError::Offline`] while [`set_online(false)`](Self::set_online): send
    ///   nothing; the read has no value, reported as a connection error
    ///   ([`failed_flag_called`](Self::failed_flag_called)).
    pub fn check_remote_read(&self, ctx: &EvalContext<'_>) -> Result<(), RequestError> {
        if is_blank(ctx.distinct_id) {
            Err(RequestError::NoDistinctId)
        } else if self.shut_down {
            Err(RequestError::ShutDown)
        } else if !self.online {
            Err(RequestError::Offline)
        } else {
            Ok(())
        }
    }

    /// Writes the body of a `POST /flags/?v=2` request for `ctx` into `buf` (send it to
    /// [`FLAGS_PATH`] with `Content-Type: application/json`, no `Authorization`). `flag_keys`
    /// limits the evaluation (single-flag reads pass `&[key]`). Person properties are sent as
    /// the caller gave them, without an injected `distinct_id`; each group gets `$group_key`.
    ///
    /// # Errors
    /// [`RequestError`]: the buffer is too small (with the size needed) or a property is not
    /// representable in JSON.
    pub fn flags_request(
        &self,
        ctx: &EvalContext<'_>,
        flag_keys: Option<&[&str]>,
        buf: &mut [u8],
    ) -> Result<usize, RequestError> {
        self.flags_request_with(ctx, flag_keys, None, buf)
    }

    /// [`flags_request`](Self::flags_request) with a per-call `geoip_disable` (`None`: the
    /// configured [`EncoderConfig::disable_geoip`](crate::capture::EncoderConfig)).
    ///
    /// # Errors
    /// As [`flags_request`](Self::flags_request).
    pub fn flags_request_with(
        &self,
        ctx: &EvalContext<'_>,
        flag_keys: Option<&[&str]>,
        geoip_disable: Option<bool>,
        buf: &mut [u8],
    ) -> Result<usize, RequestError> {
        self.check_remote_read(ctx)?;
        write_flags_request(
            self.api_key.as_str(),
            self.config.encoder.disable_geoip,
            ctx,
            flag_keys,
            geoip_disable,
            buf,
        )
    }

    /// Queues the `$feature_flag_called` event of a single-flag read the server answered
    /// (`remote` is the parsed `/flags` response) and returns the value the read yields
    /// (`None`: the flag is missing, failed, or the project is quota limited).
    pub fn remote_flag_called(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        remote: &RemoteFlags<'_>,
        send_event: bool,
    ) -> Option<FlagValue> {
        let flag = remote.get(key).filter(|_| !remote.quota_limited());
        let info = CalledInfo {
            locally_evaluated: false,
            payload: flag.and_then(|f| f.payload),
            id: flag.and_then(|f| f.id),
            version: flag.and_then(|f| f.version),
            reason: flag.and_then(|f| f.reason()),
            request_id: remote.request_id(),
            has_experiment: flag.and_then(|f| f.has_experiment),
            evaluated_at: remote.evaluated_at(),
            error: remote.errors_for(key),
        };
        let value = flag.filter(|f| !f.failed).map(|f| f.value);
        if send_event {
            self.queue_flag_called(
                now,
                key,
                ctx,
                value,
                &info,
                remote.minimal_flag_called_events(),
            );
        }
        value
    }

    /// Queues the `$feature_flag_called` event of a single-flag read that got no value: the
    /// `/flags` request failed (`errors`, e.g. [`FlagsRetry::error_kind`](crate::retry::FlagsRetry::error_kind) of the last attempt),
    /// or the read was local-only and inconclusive.
    pub fn failed_flag_called(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        errors: FlagErrors,
        send_event: bool,
    ) {
        if send_event {
            let info = CalledInfo {
                error: errors,
                ..CalledInfo::default()
            };
            self.queue_flag_called(now, key, ctx, None, &info, false);
        }
    }

    pub(super) fn queue_flag_called(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        value: Option<FlagValue>,
        info: &CalledInfo<'_>,
        minimal: bool,
    ) {
        let _ = flag_called(
            &mut self.encoder,
            &mut self.queue,
            &mut self.tracker,
            &mut self.stats,
            self.opted_out || self.shut_down,
            self.before_send,
            &self.hooks,
            now,
            key,
            ctx,
            value,
            info,
            minimal,
        );
    }

    /// Like [`capture`](Self::capture), with the flags evaluated locally for `ctx` attached
    /// (`$feature/<key>` for each conclusive flag, `$active_feature_flags`), as PostHog's
    /// `send_feature_flags` does. The caller's own properties win on a clash. At most
    /// [`MAX_EVENT_FLAGS`] flags are attached.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_with_flags<P>(
        &mut self,
        now: Now,
        event: &str,
        ctx: &EvalContext<'_>,
        opts: &EventOptions<'_>,
        mut props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.admit(event, ctx.distinct_id)?;
        // Borrowed values: 64 flags cost 2 KiB of stack here, not the 5.6 KiB of owned ones.
        let mut values: heapless::Vec<(&str, ValueRef<'_>), MAX_EVENT_FLAGS> = heapless::Vec::new();
        let mut groups = heapless::Vec::new();
        let prepared = ctx.prepared(&mut groups);
        let tables = self.flags.tables();
        for key in self.flags.keys() {
            if let Ok((v, _)) = tables.evaluate_ref(key, &prepared, now.wall) {
                if values.push((key, v)).is_err() {
                    break;
                }
            }
        }
        let r = self
            .encoder
            .capture(&mut self.queue, now, event, ctx.distinct_id, opts, |o| {
                // Flags first: a caller key written later wins (the last duplicate is kept).
                // A variant too long for a `FlagValue` is inconclusive, so left out.
                let owned = values
                    .iter()
                    .filter_map(|&(k, v)| v.owned().ok().map(|v| (k, v)));
                write_flag_properties(o, owned)?;
                props(o)
            });
        drop(values);
        let r = self.edit(event, ctx.distinct_id, r);
        self.account(r)
    }
}

/// Writes the `/flags` request body for `ctx` into `buf`; returns its length.
pub(super) fn write_flags_request(
    api_key: &str,
    default_geoip: bool,
    ctx: &EvalContext<'_>,
    flag_keys: Option<&[&str]>,
    geoip_disable: Option<bool>,
    buf: &mut [u8],
) -> Result<usize, RequestError> {
    let mut groups: heapless::Vec<RequestGroup<'_>, MAX_EVENT_GROUPS> = heapless::Vec::new();
    for g in ctx.groups.iter().take(MAX_EVENT_GROUPS) {
        let _ = groups.push(RequestGroup {
            group_type: g.group_type,
            key: g.key,
            properties: g.properties,
        });
    }
    let mut req = FlagsRequest::new(api_key, ctx.distinct_id);
    req.device_id = ctx.device_id;
    req.groups = &groups;
    req.person_properties = ctx.person;
    req.geoip_disable = geoip_disable.unwrap_or(default_geoip);
    req.flag_keys = flag_keys;
    req.write(buf)
}

/// Queues one `$feature_flag_called` event, de-duplicated; the gate and the before-send filter
/// apply as to every event.
#[allow(clippy::too_many_arguments)]
fn flag_called(
    encoder: &mut crate::capture::Encoder,
    queue: &mut crate::capture::Queue<ManagedSlice<'_, u8>>,
    tracker: &mut crate::flags::called::CalledTracker<ManagedSlice<'_, u64>>,
    stats: &mut super::ClientStats,
    gated: bool,
    before_send: Option<fn(&super::EventInfo<'_>) -> super::Verdict>,
    hooks: &super::hooks::Hooks<'_>,
    now: Now,
    key: &str,
    ctx: &EvalContext<'_>,
    value: Option<FlagValue>,
    info: &CalledInfo<'_>,
    minimal_gate: bool,
) -> Result<Option<Uuid>, CaptureError> {
    const EVENT: &str = "$feature_flag_called";
    if gated {
        super::bump(&mut stats.gated, 1);
        return Err(CaptureError::Disabled);
    }
    let groups = group_pairs(ctx);
    if !tracker.first_time(ctx.distinct_id, key, value.as_ref(), &groups) {
        return Ok(None);
    }
    let event = super::EventInfo {
        event: EVENT,
        distinct_id: ctx.distinct_id,
    };
    if let Err(e) = super::admit_hooks(before_send, hooks, &event, stats) {
        // Not sent: the next read may send it.
        tracker.forget(ctx.distinct_id, key, value.as_ref(), &groups);
        return Err(e);
    }
    // Minimal events only when the server asked and the flag surely runs no experiment.
    let minimal = minimal_gate && info.has_experiment == Some(false);
    let response = FlagResponse(value);
    let mut err_buf = [0u8; FlagErrors::MAX_LEN];
    let error = (!info.error.is_empty()).then(|| info.error.render(&mut err_buf));
    let opts = EventOptions::new().groups(&groups);
    let r = encoder.capture(queue, now, EVENT, ctx.distinct_id, &opts, |o| {
        o.prop("$feature_flag", key)?
            .prop("$feature_flag_response", response)?;
        if !minimal {
            o.prop_parts(&["$feature/", key], response)?;
        }
        o.prop("locally_evaluated", info.locally_evaluated)?;
        if let (Some(p), false) = (info.payload, minimal) {
            o.prop("$feature_flag_payload", Payload(p))?;
        }
        if let Some(id) = info.id {
            o.prop("$feature_flag_id", id)?;
        }
        if let Some(v) = info.version {
            o.prop("$feature_flag_version", v)?;
        }
        if let Some(r) = info.reason {
            o.prop("$feature_flag_reason", r)?;
        }
        if let Some(r) = info.request_id {
            o.prop("$feature_flag_request_id", r)?;
        }
        if let Some(t) = info.evaluated_at {
            o.prop("$feature_flag_evaluated_at", t)?;
        }
        if let Some(h) = info.has_experiment {
            o.prop("$feature_flag_has_experiment", h)?;
        }
        if let Some(e) = error {
            o.prop("$feature_flag_error", e)?;
        }
        if let Some(d) = ctx.device_id {
            o.prop("$device_id", d)?;
        }
        Ok(())
    });
    let max_key_len = encoder.config().max_key_len;
    let r = r.and_then(|u| super::edit_last(queue, hooks, &event, stats, max_key_len).map(|()| u));
    if r.is_err() {
        // Not queued: let a later read try again.
        tracker.forget(ctx.distinct_id, key, value.as_ref(), &groups);
    }
    super::account(stats, r).map(Some)
}
