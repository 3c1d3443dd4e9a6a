//! `relative_date_cases.json` and the `is_date_*` rows of `property_match_cases.json` against
//! `flags::date`.
//!
//! The property rows go through posthog-python's `match_property`, so this test plays the part
//! of the evaluator for the checks that come before the operator (posthog-python
//! `_match_property_value`): a missing key is inconclusive (`missing_context`, or
//! `unsupported_definition` when the filter value is itself unusable), and a `null` property
//! value is `false`.

use crate::common;

use posthog_embedded::flags::date::{
    date_match, resolve_relative, DateFilter, DateInstant, DateOp, DateProperty, Inconclusive,
};
use serde_json::{json, Value};

/// Days since 1970-01-01 (Howard Hinnant's algorithm), written out independently of the crate.
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses the vectors' `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` (Python `isoformat()` in UTC).
fn utc_micros(s: &str) -> DateInstant {
    let s = s.strip_suffix("+00:00").expect("UTC offset");
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("digits");
    let (y, mo, d, h, mi, sec) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    let us = if s.len() > 19 {
        assert_eq!(&s[19..20], ".");
        format!("{:0<6}", &s[20..])
            .parse::<i64>()
            .expect("fraction")
    } else {
        0
    };
    let secs = days(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    DateInstant::from_micros(secs * 1_000_000 + us)
}

#[test]
fn relative_date_cases() {
    let doc = common::load("relative_date_cases.json");
    let cases = doc["cases"].as_array().expect("cases");
    let mut pass = 0;
    for case in cases {
        let input = case["input"].as_str().expect("input");
        let now = utc_micros(case["now_utc"].as_str().expect("now_utc"));
        let got = resolve_relative(input, now);
        let expected = case["expected"].as_str().map(utc_micros);
        assert_eq!(
            got, expected,
            "{}: {input:?} at {}",
            case["id"], case["now_utc"]
        );
        pass += 1;
    }
    println!("relative_date: {pass}/{}", cases.len());
    assert_eq!(pass, 58);
}

use common::py_str;

fn outcome(r: Result<bool, Inconclusive>) -> Value {
    match r {
        Ok(b) => json!({ "match": b }),
        Err(Inconclusive::InvalidFilter(_)) => json!({ "inconclusive": "unsupported_definition" }),
        Err(Inconclusive::InvalidProperty(_)) => json!({ "inconclusive": "missing_context" }),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

/// One property filter with a date operator, as the evaluator will run it.
fn evaluate(op: DateOp, filter: &Value, property: Option<&Value>, now: DateInstant) -> Value {
    let filter = py_str(filter);
    match property {
        // Missing key: inconclusive, but the filter is checked first (posthog-python
        // `match_property` blames an unusable filter before the missing context).
        None => match DateFilter::parse(&filter).and_then(|f| f.resolve(now)) {
            Err(_) => json!({ "inconclusive": "unsupported_definition" }),
            Ok(_) => json!({ "inconclusive": "missing_context" }),
        },
        // A null property value with a date operator is false (posthog-python checks null
        // before the operator, `_is_unmatchable_null`).
        Some(Value::Null) => json!({ "match": false }),
        Some(Value::String(s)) => outcome(date_match(op, DateProperty::Text(s), &filter, now)),
        Some(_) => outcome(date_match(op, DateProperty::NotText, &filter, now)),
    }
}

#[test]
fn date_property_match_cases() {
    let doc = common::load("property_match_cases.json");
    let mut total = 0;
    let mut pass = 0;
    for case in doc["cases"].as_array().expect("cases") {
        let property = &case["property"];
        let Some(op) = property["operator"]
            .as_str()
            .and_then(DateOp::from_operator)
        else {
            continue;
        };
        total += 1;
        let key = property["key"].as_str().expect("key");
        let now = utc_micros(case["now_utc"].as_str().expect("now_utc"));
        let got = evaluate(
            op,
            &property["value"],
            case["property_values"].get(key),
            now,
        );
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
    println!("date_property_match: {pass}/{total}");
    assert_eq!(total, 67, "the file has 67 is_date_* rows");
}
