//! A command-line flag evaluator for conformance tools: JSON Lines in, JSON Lines out.
//!
//! ```text
//! cargo run --release -p posthog-embedded-devtools --example eval_jsonl < cases.jsonl
//! ```
//!
//! Each input line is one case:
//! `{"id", "flags": <definitions body>, "flag_key", "distinct_id", "device_id"?, "groups",
//!   "person_properties", "group_properties", "now"?: ISO 8601}`.
//! Each output line is
//! `{"id", "value": true|false|"variant"|null, "payload": <payload JSON>|null, "inconclusive": null|"<reason>"}`
//! where the reason is `experience_continuity`, `unsupported_definition`,
//! `unresolved_dependency`, `missing_context` or `requires_server_evaluation`, and `value` is
//! null exactly when the case is inconclusive. A flag that is not in the definitions is
//! reported as `unsupported_definition` (the SDKs then ask the server).
//!
//! The context is prepared as PostHog's SDKs do before local evaluation (posthog-python
//! `_person_properties_for_local_evaluation`, `_add_local_person_and_group_properties`):
//! `distinct_id` is added to the person properties and `$group_key` to each group's properties
//! unless the caller set them. A line that cannot be used gives `{"id", "error": "..."}` and
//! the program goes on with the next line.

use std::io::{BufRead, Write};

use posthog_embedded::flags::{FlagTables, FlagValue, Inconclusive, Requirements};
use posthog_embedded::UnixMillis;
use posthog_embedded_devtools::context::OwnedContext;
use serde_json::{json, Value};

/// Generous host-side capacities: 512 flags, 32k nodes, 1 MiB of text.
const CAPACITY: Requirements = Requirements {
    flags: 512,
    nodes: 32768,
    bytes: 1_048_576,
};

/// The store, on the heap ([`FlagTables::with_capacity`] allocates it directly).
type Store = FlagTables<'static>;

fn run(line: &str, store: &mut Store) -> Result<Value, (Value, String)> {
    let case: Value =
        serde_json::from_str(line).map_err(|e| (Value::Null, format!("invalid JSON: {e}")))?;
    let id = case.get("id").cloned().unwrap_or(Value::Null);
    let fail = |msg: String| (id.clone(), msg);
    let flags = case
        .get("flags")
        .ok_or_else(|| fail("missing \"flags\"".into()))?;
    store
        .load(flags.to_string().as_bytes())
        .map_err(|e| fail(format!("flags: {e}")))?;
    let key = case
        .get("flag_key")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("missing \"flag_key\"".into()))?;
    let now = match case.get("now").and_then(Value::as_str) {
        Some(s) => Some(UnixMillis::parse_rfc3339(s).map_err(|e| fail(format!("now: {e}")))?),
        None => None,
    };
    // The case has the fields of a `/flags` request body: distinct_id, device_id, groups,
    // person_properties, group_properties.
    let ctx = OwnedContext::from_flags_request(&case).map_err(fail)?;
    let result = ctx
        .with_eval_context(|c| {
            store
                .evaluate(key, c, now)
                .map(|v| (value_json(&v), store.payload(key, &v).map(str::to_owned)))
        })
        .map_err(fail)?;
    Ok(match result {
        Ok((value, payload)) => {
            let payload = payload
                .map(|p| serde_json::from_str::<Value>(&p).unwrap_or(Value::from(p)))
                .unwrap_or(Value::Null);
            json!({"id": id, "value": value, "payload": payload, "inconclusive": null})
        }
        Err(e) => {
            let reason = match e {
                Inconclusive::UnknownFlag => "unsupported_definition",
                other => other.as_str(),
            };
            json!({"id": id, "value": null, "payload": null, "inconclusive": reason})
        }
    })
}

fn value_json(v: &FlagValue) -> Value {
    match v {
        FlagValue::Bool(b) => Value::from(*b),
        other => Value::from(other.to_string()),
    }
}

fn main() {
    let mut store = Store::with_capacity(CAPACITY);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        let Ok(line) = line else {
            let _ = writeln!(
                out,
                "{}",
                json!({"id": null, "error": "input is not UTF-8"})
            );
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let result = match run(&line, &mut store) {
            Ok(v) => v,
            Err((id, msg)) => json!({"id": id, "error": msg}),
        };
        if writeln!(out, "{result}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}
