//! The `eval_jsonl` example as conformance tools use it: JSON Lines in, one line out per case,
//! and no input line can stop it.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// The example binary `cargo test` builds beside this test.
fn binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("examples");
    let bin = dir.join(format!("eval_jsonl{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "SKIPPED: {} not built (`cargo test` builds it; `--test tools` alone does not)",
            bin.display()
        );
        None
    }
}

fn run(input: &str) -> Vec<Value> {
    let Some(bin) = binary() else {
        return Vec::new();
    };
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn eval_jsonl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "eval_jsonl exited with {}",
        out.status
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect()
}

#[test]
fn answers_every_line_and_survives_bad_input() {
    let defs = json!({"flags": [
        {"id": 1, "key": "on", "active": true,
         "filters": {"groups": [{"properties": [], "rollout_percentage": 100}],
                     "payloads": {"true": "{\"a\":1}"}}},
        {"id": 2, "key": "plan", "active": true,
         "filters": {"groups": [{"properties": [{"key": "plan", "value": "pro", "type": "person"}], "rollout_percentage": 100}]}},
        {"id": 3, "key": "mv", "active": true,
         "filters": {"groups": [{"properties": [], "rollout_percentage": 100, "variant": "b"}],
                     "multivariate": {"variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}}}
    ]});
    let lines = [
        json!({"id": 1, "flags": defs, "flag_key": "on", "distinct_id": "u", "groups": {}, "person_properties": {}, "group_properties": {}}).to_string(),
        json!({"id": 2, "flags": defs, "flag_key": "plan", "distinct_id": "u", "groups": {}, "person_properties": {}, "group_properties": {}}).to_string(),
        "this is not json".to_owned(),
        json!({"id": 4, "flags": {"nope": 1}, "flag_key": "on", "distinct_id": "u"}).to_string(),
        json!({"id": 5, "flags": defs, "flag_key": "mv", "distinct_id": "u", "now": "2026-01-02T03:04:05Z"}).to_string(),
        "{\"id\": 6, \"flags\": ".to_owned(),
        json!({"id": 7, "flags": defs, "flag_key": "plan", "distinct_id": "u", "person_properties": {"plan": "PRO"}}).to_string(),
        json!({"id": 8, "flags": defs, "flag_key": "missing", "distinct_id": "u"}).to_string(),
        json!({"id": 9, "flags": defs, "flag_key": "on"}).to_string(),
        json!({"id": 10, "flags": defs, "flag_key": "on", "distinct_id": "u", "now": "yesterday"}).to_string(),
    ];
    let out = run(&(lines.join("\n") + "\n"));
    if out.is_empty() {
        return;
    }
    assert_eq!(out.len(), lines.len());
    assert_eq!(
        out[0],
        json!({"id": 1, "value": true, "payload": {"a": 1}, "inconclusive": null})
    );
    assert_eq!(
        out[1],
        json!({"id": 2, "value": null, "payload": null, "inconclusive": "missing_context"})
    );
    assert_eq!(out[2]["id"], Value::Null);
    assert!(out[2]["error"].as_str().unwrap().contains("invalid JSON"));
    assert_eq!(out[3]["id"], 4);
    assert!(out[3]["error"].as_str().is_some());
    assert_eq!(
        out[4],
        json!({"id": 5, "value": "b", "payload": null, "inconclusive": null})
    );
    assert!(out[5]["error"].as_str().is_some());
    assert_eq!(out[6]["value"], true);
    assert_eq!(
        out[7],
        json!({"id": 8, "value": null, "payload": null, "inconclusive": "unsupported_definition"})
    );
    assert!(out[8]["error"].as_str().unwrap().contains("distinct_id"));
    assert!(out[9]["error"].as_str().unwrap().contains("now"));
    // Every line has either an answer or an error, and value is null exactly when inconclusive.
    for o in &out {
        if o.get("error").is_none() {
            assert_eq!(o["value"].is_null(), !o["inconclusive"].is_null(), "{o}");
        }
    }
}

/// Every full-flag conformance case through the command line, as a conformance tool would
/// send it, agrees with the library (the same cases `tests/flags/conformance.rs` checks).
#[test]
fn local_evaluation_cases_through_the_command_line() {
    let v = common::load("local_evaluation_cases.json");
    let mut input = String::new();
    let cases = v["cases"].as_array().unwrap();
    for case in cases {
        let flags = case
            .get("all_flags")
            .cloned()
            .unwrap_or_else(|| json!([case["flag"]]));
        let mut defs = json!({"flags": flags, "group_type_mapping": case["group_type_mapping"], "cohorts": case["cohorts"]});
        if let Some(p) = case.get("property_matching_version") {
            defs["property_matching_version"] = p.clone();
        }
        let mut line = json!({
            "id": case["id"], "flags": defs, "flag_key": case["flag"]["key"],
            "distinct_id": case["distinct_id"], "groups": case["groups"],
            "person_properties": case["person_properties"], "group_properties": case["group_properties"],
        });
        if let Some(d) = case.get("device_id") {
            line["device_id"] = d.clone();
        }
        if let Some(n) = case.get("now_utc") {
            line["now"] = n.clone();
        }
        input.push_str(&line.to_string());
        input.push('\n');
    }
    let out = run(&input);
    if out.is_empty() {
        return;
    }
    assert_eq!(out.len(), cases.len());
    let mut agree = 0;
    for (case, o) in cases.iter().zip(&out) {
        let e = &case["expected"];
        let ok = if let Some(v) = e.get("value") {
            &o["value"] == v
        } else if let Some(r) = e.get("inconclusive") {
            o["value"].is_null() && (r.is_null() || &o["inconclusive"] == r)
        } else {
            o["inconclusive"] == "requires_server_evaluation"
        };
        // Cases that call the evaluator directly (no distinct_id in the person properties) may
        // differ: the command line prepares the context as the SDK's public API does (it adds
        // `distinct_id` to the person properties and `$group_key` to each group's).
        let direct = !case["person_properties"]
            .as_object()
            .is_some_and(|p| p.contains_key("distinct_id"));
        assert!(ok || direct, "{}: {o} vs expected {e}", case["id"]);
        agree += usize::from(ok);
    }
    println!(
        "eval_jsonl: {agree}/{} local_evaluation_cases agree",
        cases.len()
    );
}
