//! What PostHog's ingestion would make of a capture request: the envelope, each event's
//! problems, and each event's time.
//!
//! [`parse_capture`] reads a `/batch/` (or `/capture/`, `/e/`, `/i/v0/e/`) body into an
//! [`Envelope`]; [`check_event`] lists what is wrong with one event in plain words, each
//! [`Problem`] either fatal (PostHog rejects the whole request with 400) or a warning; and
//! [`event_time`] derives the event's time as PostHog's ingestion does (the plugin server's
//! `parseEventTimestamp`): `offset` wins, then `timestamp` corrected by `sent_at`, then
//! `timestamp`, then the time of receipt.

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::{Map, Value};

use posthog_embedded::capture::Uuid;
use posthog_embedded::error::ParseTimestampError;
use posthog_embedded::time::timestamp::{format_iso8601, parse_rfc3339, ISO_LEN};
use posthog_embedded::time::UnixMillis;

/// The outer shape of a capture request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    /// The project token (`api_key`, or `token`), top level or from the first event.
    pub api_key: Option<String>,
    /// `sent_at`, parsed, when present and valid.
    pub sent_at: Option<UnixMillis>,
    /// The events, without their project token (`api_key`, `token`, `$token`, at the top
    /// level and in `properties`).
    pub events: Vec<Value>,
    /// Problems with the envelope itself (not fatal).
    pub problems: Vec<String>,
}

/// Largest future skew PostHog accepts before clamping an event to the time of receipt.
pub const MAX_FUTURE_MS: u64 = 23 * 3600 * 1000;

/// Where an event may carry the project token; removed from every stored event.
const TOKEN_KEYS: [&str; 3] = ["api_key", "token", "$token"];

/// Reads a capture body, consuming it. `/batch/` takes `{"api_key", "batch": [...],
/// "sent_at"?}`; the single-event paths also take one event object (with `api_key` inside) or
/// an array. The project token is taken out of every event ([`Envelope::events`]).
///
/// # Errors
/// A one-line reason when the body is not something PostHog would ingest at all (PostHog
/// answers 400): not an object or array, no events array, no project token.
pub fn parse_capture(body: Value) -> Result<Envelope, String> {
    let mut env = Envelope::default();
    let token_of = |o: &Map<String, Value>| {
        TOKEN_KEYS
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    match body {
        Value::Object(mut o) if o.contains_key("batch") => {
            env.api_key = token_of(&o);
            match o.get("sent_at") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => match parse_event_timestamp(s) {
                    Ok(t) => env.sent_at = Some(t),
                    Err(e) => env
                        .problems
                        .push(format!("`sent_at` {s:?} is not an ISO 8601 time ({e})")),
                },
                Some(_) => env
                    .problems
                    .push("`sent_at` is not a string (it is ignored)".into()),
            }
            if let Some(h) = o.get("historical_migration") {
                if !h.is_boolean() {
                    env.problems
                        .push("`historical_migration` is not a boolean".into());
                }
            }
            let Some(Value::Array(batch)) = o.remove("batch") else {
                return Err("`batch` is not an array".into());
            };
            env.events = batch;
        }
        Value::Object(o) if o.contains_key("event") => {
            env.api_key = token_of(&o).or_else(|| {
                o.get("properties")
                    .and_then(|p| p.as_object())
                    .and_then(token_of)
            });
            env.events.push(Value::Object(o));
        }
        Value::Object(_) => return Err("neither a `batch` array nor an `event`".into()),
        Value::Array(a) => {
            env.api_key = a.first().and_then(Value::as_object).and_then(token_of);
            env.events = a;
        }
        _ => return Err("the body is not a JSON object or array".into()),
    }
    if env.api_key.as_deref().is_none_or(str::is_empty) {
        env.api_key = env
            .events
            .first()
            .and_then(|e| e.get("properties"))
            .and_then(Value::as_object)
            .and_then(token_of);
    }
    match env.api_key.as_deref() {
        None => return Err("no project API key (`api_key`)".into()),
        Some("") => return Err("the project API key (`api_key`) is empty".into()),
        Some(_) => {}
    }
    for e in &mut env.events {
        strip_token(e);
    }
    Ok(env)
}

/// Removes the project token (`api_key`, `token`, `$token`) from an event, at the top level
/// and in its `properties`, so that it is never stored or printed.
pub fn strip_token(event: &mut Value) {
    let Some(o) = event.as_object_mut() else {
        return;
    };
    for k in TOKEN_KEYS {
        o.remove(k);
    }
    if let Some(Value::Object(p)) = o.get_mut("properties") {
        for k in TOKEN_KEYS {
            p.remove(k);
        }
    }
}

/// One thing wrong with an event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// PostHog rejects the whole request (400, nothing ingested) because of it; otherwise it is
    /// a warning and the event is ingested.
    pub fatal: bool,
    /// What is wrong, in plain words.
    pub message: String,
}

impl Problem {
    /// A problem that makes PostHog reject the request.
    #[must_use]
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            fatal: true,
            message: message.into(),
        }
    }

    /// A problem PostHog ingests the event with.
    #[must_use]
    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            fatal: false,
            message: message.into(),
        }
    }
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses a UUID as PostHog's capture does: hyphenated (`8-4-4-4-12`), the 32-hex-digit simple
/// form, braced (`{…}`) or `urn:uuid:…`, either case.
#[must_use]
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let inner = if let Some(rest) = s.strip_prefix("urn:uuid:") {
        rest
    } else if let Some(rest) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        rest
    } else if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hyphenated = String::with_capacity(36);
        for (i, c) in s.chars().enumerate() {
            if matches!(i, 8 | 12 | 16 | 20) {
                hyphenated.push('-');
            }
            hyphenated.push(c);
        }
        return Uuid::parse(&hyphenated).ok();
    } else {
        s
    };
    Uuid::parse(inner).ok()
}

/// Parses an event time as PostHog's ingestion does: RFC 3339, a date-time without an offset
/// (read as UTC, with or without fractional seconds), a date alone (midnight UTC), and offsets
/// `Z`, `±HH`, `±HHMM` or `±HH:MM`.
///
/// # Errors
/// [`ParseTimestampError`] when it is none of these.
pub fn parse_event_timestamp(s: &str) -> Result<UnixMillis, ParseTimestampError> {
    let b = s.as_bytes();
    if b.len() == 10 {
        return parse_rfc3339(&format!("{s}T00:00:00Z"));
    }
    // `YYYY-MM-DDTHH:MM:SS` then optional fraction, then the offset.
    let mut end = 19;
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    let Some(offset) = s.get(end..) else {
        return parse_rfc3339(s);
    };
    let hours_only = offset.len() == 3
        && matches!(offset.as_bytes().first(), Some(b'+' | b'-'))
        && offset.bytes().skip(1).all(|c| c.is_ascii_digit());
    if offset.is_empty() {
        parse_rfc3339(&format!("{s}Z"))
    } else if hours_only {
        parse_rfc3339(&format!("{s}:00"))
    } else {
        parse_rfc3339(s)
    }
}

/// The event's distinct id as PostHog reads it: `distinct_id` (or `$distinct_id`) at the top
/// level, else in `properties`; `null` counts as absent.
fn distinct_id_of<'a>(
    e: &'a Map<String, Value>,
    props: Option<&'a Map<String, Value>>,
) -> Option<&'a Value> {
    let present = |v: Option<&'a Value>| v.filter(|v| !v.is_null());
    present(e.get("distinct_id"))
        .or_else(|| present(e.get("$distinct_id")))
        .or_else(|| present(props.and_then(|m| m.get("distinct_id"))))
        .or_else(|| present(props.and_then(|m| m.get("$distinct_id"))))
}

/// The distinct id PostHog stores for `event` (a number or other JSON value as its text), if
/// it has one.
#[must_use]
pub fn distinct_id(event: &Value) -> Option<String> {
    let e = event.as_object()?;
    let props = e.get("properties").and_then(Value::as_object);
    match distinct_id_of(e, props)? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Checks one event the way PostHog's capture and ingestion read it. Returns the problems, in
/// plain words; empty when the event is fine. A [fatal](Problem::fatal) problem makes PostHog
/// reject the whole request.
#[must_use]
pub fn check_event(event: &Value) -> Vec<Problem> {
    let mut p = Vec::new();
    let Some(e) = event.as_object() else {
        p.push(Problem::fatal("the event is not a JSON object"));
        return p;
    };
    let name = match e.get("event") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        Some(Value::String(_)) => {
            p.push(Problem::fatal("`event` is empty"));
            None
        }
        Some(_) => {
            p.push(Problem::fatal("`event` is not a string"));
            None
        }
        None => {
            p.push(Problem::fatal("`event` is missing"));
            None
        }
    };
    let props = match e.get("properties") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            p.push(Problem::fatal("`properties` is not an object"));
            None
        }
    };
    match distinct_id_of(e, props) {
        None => p.push(Problem::fatal("`distinct_id` is missing")),
        Some(Value::String(s)) if s.is_empty() => {
            p.push(Problem::fatal("`distinct_id` is empty"));
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            p.push(Problem::warning("`distinct_id` is blank"));
        }
        Some(Value::String(s)) if s.chars().count() > 200 => {
            p.push(Problem::warning(format!(
                "`distinct_id` is {} characters (PostHog truncates it to 200)",
                s.chars().count()
            )));
        }
        Some(Value::String(_)) => {}
        Some(Value::Number(_)) => p.push(Problem::warning(
            "`distinct_id` is a number (PostHog turns it into a string)",
        )),
        Some(_) => p.push(Problem::warning(
            "`distinct_id` is not a string (PostHog stores its JSON text)",
        )),
    }
    match e.get("uuid") {
        None | Some(Value::Null) => p.push(Problem::warning(
            "no `uuid` (PostHog cannot de-duplicate retries)",
        )),
        Some(Value::String(s)) if s.is_empty() => p.push(Problem::warning(
            "no `uuid` (it is empty; PostHog cannot de-duplicate retries)",
        )),
        Some(Value::String(s)) if parse_uuid(s).is_some() => {}
        Some(Value::String(s)) => p.push(Problem::fatal(format!("`uuid` {s:?} is not a UUID"))),
        Some(_) => p.push(Problem::fatal("`uuid` is not a string")),
    }
    match e.get("timestamp") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if let Err(err) = parse_event_timestamp(s) {
                p.push(Problem::warning(format!(
                    "`timestamp` {s:?} is not an ISO 8601 time ({err}; PostHog uses the time of receipt)"
                )));
            }
        }
        Some(_) => p.push(Problem::fatal(
            "`timestamp` is not an ISO 8601 string (a number is not read as a time)",
        )),
    }
    match e.get("offset") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_i64().is_some() => {}
        Some(_) => p.push(Problem::fatal("`offset` is not an integer of milliseconds")),
    }
    for key in ["$set", "$set_once"] {
        match e.get(key) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(_) => p.push(Problem::fatal(format!(
                "`{key}` (top level) is not an object"
            ))),
        }
    }
    for deprecated in ["type", "library", "library_version"] {
        if e.contains_key(deprecated) {
            p.push(Problem::warning(format!(
                "`{deprecated}` is deprecated: do not send it"
            )));
        }
    }
    if let Some(m) = props {
        check_properties(name.unwrap_or_default(), e, m, &mut p);
    }
    p
}

fn check_properties(
    name: &str,
    e: &Map<String, Value>,
    m: &Map<String, Value>,
    p: &mut Vec<Problem>,
) {
    let mut warn = |msg: String| p.push(Problem::warning(msg));
    if m.keys().any(String::is_empty) {
        warn("a property has an empty name".into());
    }
    for key in ["$lib", "$lib_version"] {
        if m.get(key).is_some_and(|v| !v.is_string()) {
            warn(format!("`{key}` is not a string"));
        }
    }
    for key in ["$set", "$set_once", "$group_set"] {
        if m.get(key).is_some_and(|v| !v.is_object()) {
            warn(format!("`{key}` in properties is not an object"));
        }
    }
    if e.get("$group_set").is_some_and(|v| !v.is_object()) {
        warn("`$group_set` (top level) is not an object".into());
    }
    if let Some(v) = m.get("$unset") {
        if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            warn("`$unset` is not an array of property names".into());
        }
    }
    if let Some(g) = m.get("$groups") {
        match g.as_object() {
            Some(o) => {
                for (group_type, key) in o {
                    if !key.is_string() {
                        warn(format!(
                            "`$groups`: the group key of `{group_type}` is not a string"
                        ));
                    }
                }
            }
            None => warn("`$groups` is not an object".into()),
        }
    }
    if let Some(v) = m.get("$geoip_disable") {
        if !v.is_boolean() {
            warn("`$geoip_disable` is not a boolean".into());
        }
    }
    if let Some(v) = m.get("$ignore_sent_at") {
        if !v.is_boolean() {
            warn("`$ignore_sent_at` is not a boolean (it is ignored)".into());
        }
    }
    let mut need_str = |key: &str| match m.get(key) {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(_) => warn(format!("`{key}` of {name} is not a non-empty string")),
        None => warn(format!("{name} without `{key}`")),
    };
    match name {
        "$create_alias" => need_str("alias"),
        "$groupidentify" => {
            need_str("$group_type");
            need_str("$group_key");
        }
        "$feature_flag_called" => {
            need_str("$feature_flag");
            if !m.contains_key("$feature_flag_response") {
                p.push(Problem::warning(
                    "$feature_flag_called without `$feature_flag_response`",
                ));
            }
        }
        "$set" => {
            let has = |k: &str| m.contains_key(k) || e.contains_key(k);
            if !has("$set") && !has("$set_once") && !has("$unset") {
                p.push(Problem::warning(
                    "$set without `$set`, `$set_once` or `$unset`",
                ));
            }
        }
        _ => {}
    }
}

/// How an event's time was derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeSource {
    /// `received - offset`.
    Offset,
    /// `received + (timestamp - sent_at)`.
    TimestampSentAt,
    /// `timestamp` as is.
    Timestamp,
    /// Neither: the time of receipt.
    Received,
    /// More than 23 hours in the future: clamped to the time of receipt.
    ClampedFuture,
}

/// The event's time as PostHog's ingestion derives it (the plugin server's
/// `parseEventTimestamp`), with how it was derived.
///
/// `offset` (an integer of milliseconds, negative for the future) wins; then `timestamp`
/// (any form [`parse_event_timestamp`] reads) corrected by `sent_at` unless the event's
/// `$ignore_sent_at` property is `true`; then `timestamp` as is; then `received`. A time more
/// than 23 hours after `received` is clamped to it.
#[must_use]
pub fn event_time(
    event: &Value,
    sent_at: Option<UnixMillis>,
    received: UnixMillis,
) -> (UnixMillis, TimeSource) {
    let r = received.as_millis();
    let to_millis = |t: i128| u64::try_from(t.max(0)).unwrap_or(u64::MAX);
    let ignore_sent_at = event
        .get("properties")
        .and_then(|p| p.get("$ignore_sent_at"))
        .and_then(Value::as_bool)
        == Some(true);
    let sent_at = sent_at.filter(|_| !ignore_sent_at);
    let (t, source) = if let Some(offset) = event.get("offset").and_then(Value::as_i64) {
        (
            to_millis(i128::from(r) - i128::from(offset)),
            TimeSource::Offset,
        )
    } else if let Some(ts) = event
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|s| parse_event_timestamp(s).ok())
    {
        match sent_at {
            Some(sent) => (
                to_millis(
                    i128::from(r) + i128::from(ts.as_millis()) - i128::from(sent.as_millis()),
                ),
                TimeSource::TimestampSentAt,
            ),
            None => (ts.as_millis(), TimeSource::Timestamp),
        }
    } else {
        (r, TimeSource::Received)
    };
    if t > r.saturating_add(MAX_FUTURE_MS) {
        return (received, TimeSource::ClampedFuture);
    }
    (UnixMillis::from_millis(t), source)
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
#[must_use]
pub fn iso(t: UnixMillis) -> String {
    let mut buf = [0u8; ISO_LEN];
    format_iso8601(t, &mut buf)
        .map(str::to_owned)
        .unwrap_or_else(|| t.as_millis().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"event": "reading", "distinct_id": "d", "uuid": "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01",
            "offset": 1500, "properties": {"$lib": "posthog-embedded", "$lib_version": "0.1.0", "t": 1}})
    }

    fn messages(event: &Value, fatal: bool) -> Vec<String> {
        check_event(event)
            .into_iter()
            .filter(|p| p.fatal == fatal)
            .map(|p| p.message)
            .collect()
    }

    #[test]
    fn a_good_event_has_no_problems() {
        assert_eq!(check_event(&good()), Vec::<Problem>::new());
        // PostHog does not require `$lib`.
        let bare = json!({"event": "x", "distinct_id": "d", "uuid": "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01"});
        assert_eq!(check_event(&bare), Vec::<Problem>::new());
    }

    #[test]
    fn fatal_problems_are_named() {
        let cases: &[(Value, &str)] = &[
            (json!({"distinct_id": "d"}), "`event` is missing"),
            (
                json!({"distinct_id": "d", "event": 3}),
                "`event` is not a string",
            ),
            (json!({"distinct_id": "d", "event": ""}), "`event` is empty"),
            (json!({"event": "x"}), "`distinct_id` is missing"),
            (
                json!({"event": "x", "distinct_id": null}),
                "`distinct_id` is missing",
            ),
            (
                json!({"event": "x", "distinct_id": ""}),
                "`distinct_id` is empty",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "uuid": "nope"}),
                "is not a UUID",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "uuid": 5}),
                "`uuid` is not a string",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "timestamp": 1}),
                "not an ISO 8601 string",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "offset": 1.5}),
                "not an integer",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "offset": "5"}),
                "not an integer",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "properties": []}),
                "`properties` is not an object",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "properties": null}),
                "`properties` is not an object",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "$set": "a"}),
                "`$set` (top level) is not an object",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "$set_once": [1]}),
                "`$set_once` (top level) is not an object",
            ),
            (json!([1]), "not a JSON object"),
        ];
        for (event, want) in cases {
            let fatal = messages(event, true);
            assert!(
                fatal.iter().any(|p| p.contains(want)),
                "{event}: {fatal:?} lacks fatal {want:?}"
            );
        }
    }

    #[test]
    fn warnings_are_named() {
        let cases: &[(Value, &str)] = &[
            (
                json!({"event": "x", "distinct_id": "d", "timestamp": "yesterday"}),
                "is not an ISO 8601 time",
            ),
            (json!({"event": "x", "distinct_id": "d"}), "no `uuid`"),
            (
                json!({"event": "x", "distinct_id": "d", "uuid": ""}),
                "no `uuid`",
            ),
            (json!({"event": "x", "distinct_id": 42}), "is a number"),
            (
                json!({"event": "x", "distinct_id": "d", "type": "capture"}),
                "deprecated",
            ),
            (
                json!({"event": "$create_alias", "distinct_id": "d", "properties": {}}),
                "without `alias`",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "properties": {"$groups": {"company": 1}}}),
                "`$groups`: the group key of `company` is not a string",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "properties": {"$lib": 1}}),
                "`$lib` is not a string",
            ),
            (
                json!({"event": "x", "distinct_id": "é".repeat(201)}),
                "201 characters",
            ),
        ];
        for (event, want) in cases {
            assert!(
                messages(event, true).is_empty(),
                "{event}: {:?}",
                check_event(event)
            );
            let warnings = messages(event, false);
            assert!(
                warnings.iter().any(|p| p.contains(want)),
                "{event}: {warnings:?} lacks {want:?}"
            );
        }
        // 200 characters of two bytes each: within PostHog's limit.
        let long = json!({"event": "x", "distinct_id": "é".repeat(200), "uuid": "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01"});
        assert_eq!(check_event(&long), Vec::<Problem>::new());
    }

    #[test]
    fn distinct_id_aliases() {
        for event in [
            json!({"event": "x", "$distinct_id": "d"}),
            json!({"event": "x", "properties": {"distinct_id": "d"}}),
            json!({"event": "x", "properties": {"$distinct_id": "d"}}),
            json!({"event": "x", "distinct_id": null, "properties": {"$distinct_id": "d"}}),
        ] {
            assert!(messages(&event, true).is_empty(), "{event}");
            assert_eq!(distinct_id(&event).as_deref(), Some("d"));
        }
        assert_eq!(
            distinct_id(&json!({"event": "x", "distinct_id": 42})).as_deref(),
            Some("42")
        );
        assert_eq!(distinct_id(&json!({"event": "x", "distinct_id": ""})), None);
    }

    #[test]
    fn uuids_in_every_form_posthog_reads() {
        let want = Uuid::parse("0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01").ok();
        for s in [
            "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01",
            "0190A8F4-1C2B-7D3E-8F4A-5B6C7D8E9F01",
            "0190a8f41c2b7d3e8f4a5b6c7d8e9f01",
            "{0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01}",
            "urn:uuid:0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01",
        ] {
            assert_eq!(parse_uuid(s), want, "{s}");
        }
        for s in [
            "",
            "nope",
            "0190a8f41c2b7d3e8f4a5b6c7d8e9f0",
            "{0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01",
        ] {
            assert_eq!(parse_uuid(s), None, "{s}");
        }
    }

    #[test]
    fn envelopes() {
        let env = parse_capture(
            json!({"api_key": "phc", "batch": [good()], "sent_at": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(env.api_key.as_deref(), Some("phc"));
        assert_eq!(env.events.len(), 1);
        assert!(env.sent_at.is_some());
        let single = parse_capture(json!({"api_key": "phc_s", "event": "x", "distinct_id": "d",
            "properties": {"token": "phc_s", "$token": "phc_s", "a": 1}}))
        .unwrap();
        assert_eq!(single.api_key.as_deref(), Some("phc_s"));
        assert_eq!(single.events.len(), 1);
        assert!(!single.events[0].to_string().contains("phc_s"));
        assert_eq!(single.events[0]["properties"], json!({"a": 1}));
        let array =
            parse_capture(json!([{"token": "phc_a", "event": "x", "distinct_id": "d"}])).unwrap();
        assert_eq!(array.api_key.as_deref(), Some("phc_a"));
        assert!(array.events[0].get("token").is_none());
        assert!(parse_capture(json!({"batch": [good()]})).is_err());
        assert!(parse_capture(json!({"api_key": "", "batch": []})).is_err());
        assert!(parse_capture(json!({"api_key": "k", "batch": {}})).is_err());
        assert!(parse_capture(json!("x")).is_err());
        let bad_sent = parse_capture(json!({"api_key": "k", "batch": [], "sent_at": 5})).unwrap();
        assert_eq!(bad_sent.problems.len(), 1);
        let naive_sent =
            parse_capture(json!({"api_key": "k", "batch": [], "sent_at": "2026-01-02T03:04:05"}))
                .unwrap();
        assert_eq!(
            naive_sent.sent_at,
            UnixMillis::parse_rfc3339("2026-01-02T03:04:05Z").ok()
        );
    }

    #[test]
    fn timestamps_in_every_form_posthog_reads() {
        let t = |s: &str| parse_event_timestamp(s).map(UnixMillis::as_millis);
        let z = |s: &str| UnixMillis::parse_rfc3339(s).unwrap().as_millis();
        assert_eq!(t("2026-01-02T03:04:05Z"), Ok(z("2026-01-02T03:04:05Z")));
        assert_eq!(t("2026-01-02T03:04:05"), Ok(z("2026-01-02T03:04:05Z")));
        assert_eq!(
            t("2026-01-02T03:04:05.250"),
            Ok(z("2026-01-02T03:04:05.250Z"))
        );
        assert_eq!(t("2026-01-02 03:04:05"), Ok(z("2026-01-02T03:04:05Z")));
        assert_eq!(t("2026-01-02"), Ok(z("2026-01-02T00:00:00Z")));
        assert_eq!(t("2026-01-02T03:04:05+02"), Ok(z("2026-01-02T01:04:05Z")));
        assert_eq!(t("2026-01-02T03:04:05-0130"), Ok(z("2026-01-02T04:34:05Z")));
        assert_eq!(
            t("2026-01-02T03:04:05.5+01:00"),
            Ok(z("2026-01-02T02:04:05.500Z"))
        );
        for bad in [
            "",
            "yesterday",
            "2026-01-02T",
            "2026-13-02",
            "2026-01-02T03:04:05+2",
            "2026-01-02Tx",
            "é",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_times_follow_the_server() {
        let received = UnixMillis::from_millis(1_000_000);
        assert_eq!(
            event_time(&json!({"offset": 1500}), None, received),
            (UnixMillis::from_millis(998_500), TimeSource::Offset)
        );
        // A negative offset is in the future, still subject to the 23 h clamp.
        assert_eq!(
            event_time(&json!({"offset": -1500}), None, received),
            (UnixMillis::from_millis(1_001_500), TimeSource::Offset)
        );
        assert_eq!(
            event_time(&json!({"offset": -(24 * 3600 * 1000)}), None, received),
            (received, TimeSource::ClampedFuture)
        );
        let ts = json!({"timestamp": "1970-01-01T00:16:00.000Z"});
        assert_eq!(
            event_time(&ts, None, received),
            (UnixMillis::from_millis(960_000), TimeSource::Timestamp)
        );
        // The device clock runs 100 s behind: sent_at corrects it.
        let sent = UnixMillis::from_millis(900_000);
        assert_eq!(
            event_time(&ts, Some(sent), received),
            (
                UnixMillis::from_millis(1_060_000),
                TimeSource::TimestampSentAt
            )
        );
        // ... unless the event says to ignore sent_at.
        let ignore =
            json!({"timestamp": "1970-01-01T00:16:00", "properties": {"$ignore_sent_at": true}});
        assert_eq!(
            event_time(&ignore, Some(sent), received),
            (UnixMillis::from_millis(960_000), TimeSource::Timestamp)
        );
        assert_eq!(
            event_time(&json!({"timestamp": "1970-01-01"}), None, received),
            (UnixMillis::from_millis(0), TimeSource::Timestamp)
        );
        assert_eq!(
            event_time(&json!({}), None, received),
            (received, TimeSource::Received)
        );
        let future = json!({"timestamp": "2099-01-01T00:00:00Z"});
        assert_eq!(
            event_time(&future, None, received),
            (received, TimeSource::ClampedFuture)
        );
        assert_eq!(
            iso(UnixMillis::from_millis(1_500)),
            "1970-01-01T00:00:01.500Z"
        );
    }
}
