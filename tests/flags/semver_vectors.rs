//! The `semver_*` rows of `property_match_cases.json` against `flags::semver`.
//!
//! The rows go through posthog-python's `match_property`, so this test plays the part of the
//! evaluator for the checks that come before the operator (posthog-python
//! `_match_property_value`): a missing key is inconclusive (`missing_context`, or
//! `unsupported_definition` when the filter value itself is unusable), and a `null` property
//! value is `false`.

use crate::common;

use posthog_embedded::flags::semver::{Inconclusive, SemverFilter, SemverOp};
use serde_json::{json, Value};

use common::py_str;

fn outcome(r: Result<bool, Inconclusive>) -> Value {
    match r {
        Ok(b) => json!({ "match": b }),
        Err(Inconclusive::InvalidFilter(_)) => json!({ "inconclusive": "unsupported_definition" }),
        Err(Inconclusive::InvalidProperty(_)) => json!({ "inconclusive": "missing_context" }),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

/// One property filter with a semver operator, as the evaluator will run it.
fn evaluate(op: SemverOp, filter: &Value, property: Option<&Value>) -> Value {
    let parsed = SemverFilter::parse(op, &py_str(filter));
    match (property, parsed) {
        // Missing key: inconclusive, but the filter is checked first (posthog-python
        // `match_property` blames an unusable filter before the missing context).
        (None, Err(_)) => json!({ "inconclusive": "unsupported_definition" }),
        (None, Ok(_)) => json!({ "inconclusive": "missing_context" }),
        // A null property value with a semver operator is false (posthog-python checks null
        // before the operator, `_is_unmatchable_null`).
        (Some(Value::Null), _) => json!({ "match": false }),
        (Some(_), Err(e)) => outcome(Err(Inconclusive::InvalidFilter(e))),
        (Some(v), Ok(f)) => outcome(f.matches_text(&py_str(v))),
    }
}

#[test]
fn semver_property_match_cases() {
    let doc = common::load("property_match_cases.json");
    let mut total = 0;
    let mut pass = 0;
    for case in doc["cases"].as_array().expect("cases") {
        let property = &case["property"];
        let Some(op) = property["operator"]
            .as_str()
            .and_then(SemverOp::from_operator)
        else {
            continue;
        };
        total += 1;
        let key = property["key"].as_str().expect("key");
        let got = evaluate(op, &property["value"], case["property_values"].get(key));
        assert_eq!(
            got,
            case["expected"],
            "{}: {} {} against {}",
            case["id"],
            op.as_str(),
            property["value"],
            case["property_values"]
        );
        pass += 1;
    }
    println!("semver: {pass}/{total}");
    assert_eq!(total, 111, "the file has 111 semver rows");
}
