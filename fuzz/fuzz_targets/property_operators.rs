//! Every property operator with a fuzzed filter value and property value, through a
//! one-condition flag: never a panic, always a value or an inconclusive reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::flags::{EvalContext, FlagStore, PropertyValue};
use posthog_embedded::UnixMillis;

const OPS: &[&str] = &[
    "exact",
    "is_not",
    "is_set",
    "is_not_set",
    "icontains",
    "not_icontains",
    "regex",
    "not_regex",
    "starts_with",
    "not_starts_with",
    "ends_with",
    "not_ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_date_before",
    "is_date_after",
    "semver_eq",
    "semver_neq",
    "semver_gt",
    "semver_gte",
    "semver_lt",
    "semver_lte",
    "semver_tilde",
    "semver_caret",
    "semver_wildcard",
    "bogus",
];

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let op = OPS[usize::from(op) % OPS.len()];
    let text = String::from_utf8_lossy(rest);
    let (filter, value) = text.split_once('\u{0}').unwrap_or((&text, ""));
    // The filter value as JSON: raw if it parses, else a string.
    let filter_json = if serde_json::from_str::<serde_json::Value>(filter).is_ok() {
        filter.to_owned()
    } else {
        serde_json::Value::from(filter).to_string()
    };
    let doc = format!(
        r#"{{"flags":[{{"key":"f","active":true,"filters":{{"groups":[{{"properties":[{{"key":"p","operator":"{op}","value":{filter_json}}}],"rollout_percentage":100}}]}}}}]}}"#
    );
    let mut store = Box::new(FlagStore::<2, 64, 8192>::new());
    if store.load(doc.as_bytes()).is_err() {
        return;
    }
    let v = PropertyValue::from_json(value).unwrap_or(PropertyValue::Str(value));
    let person = [("p", v)];
    let ctx = EvalContext {
        distinct_id: "d",
        device_id: None,
        person: &person,
        groups: &[],
    };
    for now in [None, Some(UnixMillis::from_millis(1_767_323_045_000))] {
        let _ = store.evaluate("f", &ctx, now);
    }
});
