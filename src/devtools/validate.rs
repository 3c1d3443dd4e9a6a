//! What PostHog's ingestion would make of a capture request: the envelope, each event's
//! problems, and each event's time (protocol §3).
//!
//! [`parse_capture`] reads a `/batch/` (or `/capture/`, `/e/`, `/i/v0/e/`) body into an
//! [`Envelope`]; [`check_event`] lists what is wrong with one event in plain words; and
//! [`event_time`] derives the event's time as the server does (§3.9): `offset` wins, then
//! `timestamp` corrected by `sent_at`, then `timestamp`, then the time of receipt.

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::{Map, Value};

use crate::capture::timestamp::{format_iso8601, parse_rfc3339, ISO_LEN};
use crate::capture::Uuid;
use crate::time::UnixMillis;

/// The outer shape of a capture request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    /// The project token (`api_key`, or `token`), top level or from the first event.
    pub api_key: Option<String>,
    /// `sent_at`, parsed, when present and valid.
    pub sent_at: Option<UnixMillis>,
    /// The events.
    pub events: Vec<Value>,
    /// Problems with the envelope itself (not fatal).
    pub problems: Vec<String>,
}

/// Largest future skew PostHog accepts before clamping an event to the time of receipt.
pub const MAX_FUTURE_MS: u64 = 23 * 3600 * 1000;

/// Reads a capture body. `/batch/` takes `{"api_key", "batch": [...], "sent_at"?}`; the
/// single-event paths also take one event object (with `api_key` inside) or an array.
///
/// # Errors
/// A one-line reason when the body is not something PostHog would ingest at all (PostHog
/// answers 400): not an object or array, no events array, no project token.
pub fn parse_capture(body: &Value) -> Result<Envelope, String> {
    let mut env = Envelope::default();
    let token_of = |o: &Map<String, Value>| {
        ["api_key", "token"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    match body {
        Value::Object(o) if o.contains_key("batch") => {
            let Some(batch) = o.get("batch").and_then(Value::as_array) else {
                return Err("`batch` is not an array".into());
            };
            env.events.clone_from(batch);
            env.api_key = token_of(o);
            match o.get("sent_at") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => match parse_rfc3339(s) {
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
        }
        Value::Object(o) if o.contains_key("event") => {
            env.api_key = token_of(o).or_else(|| {
                o.get("properties")
                    .and_then(|p| p.as_object())
                    .and_then(token_of)
            });
            env.events.push(body.clone());
        }
        Value::Object(_) => return Err("neither a `batch` array nor an `event`".into()),
        Value::Array(a) => {
            env.events.clone_from(a);
            env.api_key = a.first().and_then(Value::as_object).and_then(token_of);
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
    Ok(env)
}

/// Checks one event the way PostHog's ingestion reads it. Returns the problems, in plain
/// words; empty when the event is fine.
#[must_use]
pub fn check_event(event: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(e) = event.as_object() else {
        p.push("the event is not a JSON object".into());
        return p;
    };
    let name = match e.get("event") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        Some(Value::String(_)) => {
            p.push("`event` is empty".into());
            None
        }
        Some(_) => {
            p.push("`event` is not a string".into());
            None
        }
        None => {
            p.push("`event` is missing".into());
            None
        }
    };
    let props = match e.get("properties") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            p.push("`properties` is not an object".into());
            None
        }
    };
    let distinct = e
        .get("distinct_id")
        .or_else(|| props.and_then(|m| m.get("distinct_id")));
    match distinct {
        Some(Value::String(s)) if s.trim().is_empty() => p.push("`distinct_id` is blank".into()),
        Some(Value::String(s)) if s.len() > 200 => {
            p.push(format!(
                "`distinct_id` is {} bytes (PostHog truncates at 200)",
                s.len()
            ));
        }
        Some(Value::String(_)) => {}
        Some(Value::Number(_)) => {
            p.push("`distinct_id` is a number (PostHog turns it into a string)".into());
        }
        Some(_) => p.push("`distinct_id` is not a string".into()),
        None => p.push("`distinct_id` is missing (PostHog drops the event)".into()),
    }
    match e.get("uuid") {
        None => p.push("no `uuid` (PostHog cannot de-duplicate retries)".into()),
        Some(Value::String(s)) if Uuid::parse(s).is_ok() => {}
        Some(Value::String(s)) => p.push(format!("`uuid` {s:?} is not a UUID")),
        Some(_) => p.push("`uuid` is not a string".into()),
    }
    match e.get("timestamp") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if let Err(err) = parse_rfc3339(s) {
                p.push(format!("`timestamp` {s:?} is not an ISO 8601 time ({err})"));
            }
        }
        Some(_) => {
            p.push("`timestamp` is not an ISO 8601 string (a number is not read as a time)".into());
        }
    }
    match e.get("offset") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {}
        Some(_) => p.push("`offset` is not a non-negative integer of milliseconds".into()),
    }
    for deprecated in ["type", "library", "library_version"] {
        if e.contains_key(deprecated) {
            p.push(format!("`{deprecated}` is deprecated: do not send it"));
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
    p: &mut Vec<String>,
) {
    if m.keys().any(String::is_empty) {
        p.push("a property has an empty name".into());
    }
    for key in ["$lib", "$lib_version"] {
        match m.get(key) {
            None => p.push(format!("no `{key}` property")),
            Some(Value::String(_)) => {}
            Some(_) => p.push(format!("`{key}` is not a string")),
        }
    }
    for key in ["$set", "$set_once", "$group_set"] {
        for (place, v) in [("", m.get(key)), (" (top level)", e.get(key))] {
            if let Some(v) = v {
                if !v.is_object() {
                    p.push(format!("`{key}`{place} is not an object"));
                }
            }
        }
    }
    if let Some(v) = m.get("$unset") {
        if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
            p.push("`$unset` is not an array of property names".into());
        }
    }
    if let Some(g) = m.get("$groups") {
        match g.as_object() {
            Some(o) if o.values().all(Value::is_string) => {}
            Some(_) => p.push("`$groups` has a key that is not a string".into()),
            None => p.push("`$groups` is not an object".into()),
        }
    }
    if let Some(v) = m.get("$geoip_disable") {
        if !v.is_boolean() {
            p.push("`$geoip_disable` is not a boolean".into());
        }
    }
    let need_str = |key: &str, p: &mut Vec<String>| match m.get(key) {
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(_) => p.push(format!("`{key}` of {name} is not a non-empty string")),
        None => p.push(format!("{name} without `{key}`")),
    };
    match name {
        "$create_alias" => need_str("alias", p),
        "$groupidentify" => {
            need_str("$group_type", p);
            need_str("$group_key", p);
        }
        "$feature_flag_called" => {
            need_str("$feature_flag", p);
            if !m.contains_key("$feature_flag_response") {
                p.push("$feature_flag_called without `$feature_flag_response`".into());
            }
        }
        "$identify" | "$set" => {
            let has = |k: &str| m.contains_key(k) || e.contains_key(k);
            if !has("$set") && !has("$set_once") && !has("$unset") && name == "$set" {
                p.push("$set without `$set`, `$set_once` or `$unset`".into());
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

/// The event's time as PostHog derives it (protocol §3.9), with how it was derived.
#[must_use]
pub fn event_time(
    event: &Value,
    sent_at: Option<UnixMillis>,
    received: UnixMillis,
) -> (UnixMillis, TimeSource) {
    let r = received.as_millis();
    let (t, source) = if let Some(offset) = event.get("offset").and_then(Value::as_u64) {
        (r.saturating_sub(offset), TimeSource::Offset)
    } else if let Some(ts) = event
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|s| parse_rfc3339(s).ok())
    {
        match sent_at {
            Some(sent) => {
                let skewed =
                    i128::from(r) + i128::from(ts.as_millis()) - i128::from(sent.as_millis());
                (
                    u64::try_from(skewed.max(0)).unwrap_or(u64::MAX),
                    TimeSource::TimestampSentAt,
                )
            }
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

    #[test]
    fn a_good_event_has_no_problems() {
        assert_eq!(check_event(&good()), Vec::<String>::new());
    }

    #[test]
    fn problems_are_named() {
        let cases: &[(Value, &str)] = &[
            (json!({"distinct_id": "d"}), "`event` is missing"),
            (json!({"event": "x"}), "`distinct_id` is missing"),
            (
                json!({"event": "x", "distinct_id": "d", "uuid": "nope"}),
                "is not a UUID",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "timestamp": 1}),
                "not an ISO 8601 string",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "timestamp": "yesterday"}),
                "is not an ISO 8601 time",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "offset": -5}),
                "non-negative integer",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "properties": []}),
                "not an object",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "type": "capture"}),
                "deprecated",
            ),
            (
                json!({"event": "$create_alias", "distinct_id": "d", "properties": {}}),
                "without `alias`",
            ),
            (
                json!({"event": "x", "distinct_id": "d", "properties": {"$groups": {"a": 1}}}),
                "not a string",
            ),
        ];
        for (event, want) in cases {
            let problems = check_event(event);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{event}: {problems:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn envelopes() {
        let env = parse_capture(
            &json!({"api_key": "phc", "batch": [good()], "sent_at": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(env.api_key.as_deref(), Some("phc"));
        assert_eq!(env.events.len(), 1);
        assert!(env.sent_at.is_some());
        let single =
            parse_capture(&json!({"api_key": "phc", "event": "x", "distinct_id": "d"})).unwrap();
        assert_eq!(single.events.len(), 1);
        assert!(parse_capture(&json!({"batch": [good()]})).is_err());
        assert!(parse_capture(&json!({"api_key": "", "batch": []})).is_err());
        assert!(parse_capture(&json!({"api_key": "k", "batch": {}})).is_err());
        assert!(parse_capture(&json!("x")).is_err());
        let bad_sent = parse_capture(&json!({"api_key": "k", "batch": [], "sent_at": 5})).unwrap();
        assert_eq!(bad_sent.problems.len(), 1);
    }

    #[test]
    fn event_times_follow_the_server() {
        let received = UnixMillis::from_millis(1_000_000);
        assert_eq!(
            event_time(&json!({"offset": 1500}), None, received),
            (UnixMillis::from_millis(998_500), TimeSource::Offset)
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
