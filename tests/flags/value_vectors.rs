//! `flags::value` against PostHog's recorded property-match cases
//! (`tests/vectors/property_match_cases.json`, posthog-python 7.91.1).
//!
//! `match_case` is a reference dispatcher for the operators whose semantics live entirely in
//! `flags::value` (exact, is_not, the substring operators, the numeric comparisons, is_set and
//! is_not_set), written against the public API only and following posthog-python's order
//! (`_match_property_value`: unknown operator, absent key, is_set / is_not_set, numeric
//! operators, the null rule, then the operator). Cases with an unknown operator go through it
//! too. Regex, date and semver cases are left to their own modules' vector tests.

use crate::common;

use std::collections::BTreeMap;

use posthog_embedded::flags::value::{
    ascii_icontains, ascii_iends_with, ascii_istarts_with, lower_eq, py_str, Properties,
    PropertyValue,
};
use serde_json::Value;

/// The operators posthog-python 7.91 supports (`feature_flags.py`, `PROPERTY_OPERATORS`).
const SUPPORTED: &[&str] = &[
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
];

/// The operators this test dispatches.
const CHECKED: &[&str] = &[
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "starts_with",
    "not_starts_with",
    "ends_with",
    "not_ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
];

/// Operators for which a null property value is stringified as `"null"`; with any other
/// operator except the numeric ones a null is `false` (posthog-python `_is_unmatchable_null`).
const NULL_STRINGIFIED: &[&str] = &[
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "starts_with",
    "not_starts_with",
    "ends_with",
    "not_ends_with",
    "regex",
    "not_regex",
];

const UNSUPPORTED: &str = "unsupported_definition";
const MISSING: &str = "missing_context";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Match(bool),
    Inconclusive(&'static str),
}

/// Scratch space for one stringification. A real evaluator would size this to its needs and
/// turn `StringifyError::Overflow` into an inconclusive result.
const SCRATCH: usize = 1024;

/// One property filter against a property map, with posthog-python's checks in its order
/// (`_match_property_value`).
///
/// `filter` is `None` when the filter object has no `value`; `Some(Err(()))` when its JSON could
/// not be classified (an integer beyond 64 bits).
fn match_case(
    op: &str,
    key: &str,
    filter: Option<Result<PropertyValue<'_>, ()>>,
    props: &impl Properties,
    version2: bool,
) -> Outcome {
    use Outcome::{Inconclusive, Match};

    // 1. Unknown operator.
    if !SUPPORTED.contains(&op) {
        return Inconclusive(UNSUPPORTED);
    }
    let filter = match filter {
        Some(Ok(f)) => Some(f),
        Some(Err(())) => return Inconclusive(UNSUPPORTED),
        None => None,
    };
    // 2. The filter is checked before the context is blamed: numeric operators need a number.
    let numeric = matches!(op, "gt" | "gte" | "lt" | "lte");
    let filter_number = if numeric {
        match filter.and_then(|f| f.as_number()) {
            Some(n) => Some(n),
            None => return Inconclusive(UNSUPPORTED),
        }
    } else {
        None
    };
    let Some(value) = props.get(key) else {
        return Inconclusive(MISSING);
    };
    // 3. Presence operators.
    match op {
        "is_set" => return Match(true),
        "is_not_set" => return Match(false),
        _ => {}
    }
    // 4. Numeric operators, before the null rule.
    if let Some(f) = filter_number {
        let Some(v) = value.as_number() else {
            return Match(false);
        };
        return Match(match op {
            "gt" => v > f,
            "gte" => v >= f,
            "lt" => v < f,
            _ => v <= f,
        });
    }
    // 5. Null rule.
    if value.is_null() && !NULL_STRINGIFIED.contains(&op) {
        return Match(false);
    }
    // An absent filter value reads as None in Python: it stringifies as "null".
    let filter = filter.unwrap_or(PropertyValue::Null);
    // 6. The operator.
    let result = match op {
        "exact" => exact(filter, value, version2),
        "is_not" => exact(filter, value, version2).map(|m| !m),
        "icontains" | "not_icontains" | "starts_with" | "not_starts_with" | "ends_with"
        | "not_ends_with" => {
            let mut fbuf = [0u8; SCRATCH];
            let mut vbuf = [0u8; SCRATCH];
            let (Ok(f), Ok(v)) = (py_str(&filter, &mut fbuf), py_str(&value, &mut vbuf)) else {
                return Inconclusive(UNSUPPORTED);
            };
            let hit = match op.trim_start_matches("not_") {
                "icontains" => ascii_icontains(v, f),
                "starts_with" => ascii_istarts_with(v, f),
                _ => ascii_iends_with(v, f),
            };
            Ok(hit != op.starts_with("not_"))
        }
        other => panic!("operator {other} is not dispatched by this test"),
    };
    match result {
        Ok(m) => Match(m),
        Err(reason) => Inconclusive(reason),
    }
}

/// `exact` (posthog-python `_match_exact_property`); `is_not` is its negation.
fn exact(
    filter: PropertyValue<'_>,
    value: PropertyValue<'_>,
    version2: bool,
) -> Result<bool, &'static str> {
    // 1. An empty array filter matches truthy values, in both modes.
    if filter.is_empty_array() {
        return Ok(value.truthy());
    }
    // 2. Legacy mode: boolean-like filters compare truthiness.
    if !version2 && filter.is_boolean_like() {
        return Ok(filter.truthy() == value.truthy());
    }
    let mut vbuf = [0u8; SCRATCH];
    let v = py_str(&value, &mut vbuf).map_err(|_| UNSUPPORTED)?;
    let mut fbuf = [0u8; SCRATCH];
    // 3. An array filter matches if any item does.
    if let Some(items) = filter.array_items() {
        let mut undecided = false;
        for item in items {
            let item = item.map_err(|_| UNSUPPORTED)?;
            let f = py_str(&item, &mut fbuf).map_err(|_| UNSUPPORTED)?;
            match lower_eq(f, v) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(_) => undecided = true,
            }
        }
        return if undecided {
            Err(UNSUPPORTED)
        } else {
            Ok(false)
        };
    }
    // 4. Scalars compare their lowercased string forms.
    let f = py_str(&filter, &mut fbuf).map_err(|_| UNSUPPORTED)?;
    lower_eq(f, v).map_err(|_| UNSUPPORTED)
}

fn expected(case: &Value) -> Outcome {
    let e = &case["expected"];
    if let Some(m) = e.get("match").and_then(Value::as_bool) {
        return Outcome::Match(m);
    }
    match e.get("inconclusive").and_then(Value::as_str) {
        Some(UNSUPPORTED) => Outcome::Inconclusive(UNSUPPORTED),
        Some(MISSING) => Outcome::Inconclusive(MISSING),
        _ => panic!("unexpected outcome {e} in {}", case["id"]),
    }
}

/// A JSON value's text, with floats kept apart from integers: serde_json (without
/// `arbitrary_precision`) prints every f64 with a `.` or an exponent (`1.0`, `1e-7`).
fn json_text(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap();
    if let Value::Number(n) = v {
        assert_eq!(n.is_f64(), s.contains(['.', 'e', 'E']), "{s}");
    }
    s
}

#[test]
fn property_match_cases() {
    let doc = common::load("property_match_cases.json");
    let cases = doc["cases"].as_array().unwrap();
    let mut passed: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut skipped = 0;
    for case in cases {
        let prop = &case["property"];
        let op = prop
            .get("operator")
            .map_or("exact", |o| o.as_str().unwrap());
        if !CHECKED.contains(&op) && SUPPORTED.contains(&op) {
            skipped += 1;
            continue;
        }
        let key = prop["key"].as_str().unwrap();
        let filter_text = prop.get("value").map(json_text);
        let filter = filter_text
            .as_deref()
            .map(|t| PropertyValue::from_json(t).map_err(|_| ()));
        let texts: Vec<(String, String)> = case["property_values"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json_text(v)))
            .collect();
        let props: Vec<(&str, PropertyValue<'_>)> = texts
            .iter()
            .map(|(k, t)| (k.as_str(), PropertyValue::from_json(t).unwrap()))
            .collect();
        // Only the JSON integer 2 selects the new matching; the string "2" does not.
        let version2 = case
            .get("property_matching_version")
            .is_some_and(|v| v.is_number() && v.as_f64() == Some(2.0));
        let got = match_case(op, key, filter, &props.as_slice(), version2);
        let want = expected(case);
        let label = if SUPPORTED.contains(&op) {
            op.to_owned()
        } else {
            "(unknown operator)".to_owned()
        };
        if got == want {
            *passed.entry(label).or_default() += 1;
        } else if cfg!(feature = "compact")
            && got == Outcome::Inconclusive(UNSUPPORTED)
            && matches!(want, Outcome::Match(_))
            && !(prop.to_string() + &case["property_values"].to_string()).is_ascii()
        {
            // The compact profile leaves out the Unicode data that decides these (never a
            // different value, only inconclusive, and only for non-ASCII text).
            *passed
                .entry("(compact: inconclusive)".to_owned())
                .or_default() += 1;
        } else {
            failures.push(format!(
                "{} {op}: filter {:?} props {} version2={version2}: got {got:?}, want {want:?}",
                case["id"], filter_text, case["property_values"]
            ));
        }
    }
    let total: usize = passed.values().sum();
    eprintln!("property_match_cases: {total} passed, {skipped} left to other modules' tests");
    for (op, n) in &passed {
        eprintln!("  {op:<20} {n}");
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total > 1000, "too few cases checked: {total}");
}
