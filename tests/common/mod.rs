//! Shared helpers for the integration tests: PostHog's conformance vectors.
//!
//! The vectors are vendored in `tests/vectors/` (see its README for where each file comes
//! from), so a clone or a crates.io download tests itself. A missing or unreadable file fails
//! the test that needs it. `POSTHOG_VECTORS` points the tests at another copy.
#![allow(dead_code)]

use std::path::PathBuf;

/// The vectors folder: `$POSTHOG_VECTORS`, or the core crate's `tests/vectors` (this file is
/// also compiled into the tests of `devtools/`, one level down).
pub(crate) fn vectors_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("POSTHOG_VECTORS")
        .map(PathBuf::from)
        .or_else(|| {
            [
                manifest.join("tests/vectors"),
                manifest.join("../tests/vectors"),
            ]
            .into_iter()
            .find(|d| d.is_dir())
        })
        .unwrap_or_else(|| manifest.join("tests/vectors"));
    assert!(
        dir.is_dir(),
        "conformance vectors not found at {}",
        dir.display()
    );
    dir
}

/// Parses vector file `name`; a missing or malformed file fails the test.
pub(crate) fn load(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
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
