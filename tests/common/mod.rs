//! Shared helpers for the integration tests: locating PostHog's conformance vectors.
//!
//! The vectors live in `../shared/vectors` beside the checkout. A crates.io user has no such
//! folder; then every vector test prints a loud SKIPPED line and passes, so `cargo test` still
//! works. Set `POSTHOG_VECTORS` to point elsewhere.
#![allow(dead_code)]

use std::path::PathBuf;

/// The vectors folder, if present.
pub(crate) fn vectors_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POSTHOG_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"));
    dir.is_dir().then_some(dir)
}

/// Parses vector file `name`, or prints a loud SKIPPED message and returns `None`.
pub(crate) fn load(name: &str) -> Option<serde_json::Value> {
    let Some(dir) = vectors_dir() else {
        eprintln!(
            "SKIPPED: conformance vectors not found (../shared/vectors or $POSTHOG_VECTORS); \
             {name} was not checked"
        );
        return None;
    };
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display())),
    )
}

/// Python's `str()` of a JSON value as far as the semver and date parsers can tell the
/// difference: strings as is, integers as digits, floats in their shortest form, `True`,
/// `False`, `None`, and compact JSON for composites (which never parse as versions or dates).
pub(crate) fn py_str(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// The definitions document of a full-flag conformance case: `all_flags` (or the one `flag`),
/// its `group_type_mapping`, `cohorts` and `property_matching_version`.
pub(crate) fn case_definitions(case: &serde_json::Value) -> serde_json::Value {
    use serde_json::json;
    let flags = case
        .get("all_flags")
        .cloned()
        .unwrap_or_else(|| json!([case["flag"]]));
    let mut doc = json!({
        "flags": flags,
        "group_type_mapping": case.get("group_type_mapping").cloned().unwrap_or(json!({})),
        "cohorts": case.get("cohorts").cloned().unwrap_or(json!({})),
    });
    if let Some(v) = case.get("property_matching_version") {
        doc["property_matching_version"] = v.clone();
    }
    doc
}
