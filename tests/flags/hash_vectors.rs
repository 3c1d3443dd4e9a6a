//! PostHog's bucketing vectors (`hash_simple_flag_consistency.json`,
//! `hash_multivariate_flag_consistency.json`, `hash_misc.json`) against `flags::hash`, which
//! compares hashes in integers only.

use crate::common;

use posthog_embedded::flags::hash::{
    hash60, hash60_with_separator, holdout_hash60, reference_hash, variant_ranges,
    RolloutThreshold, VariantRange, VARIANT_SALT,
};
use serde_json::Value;

/// Whether two floats are equal up to one unit in the last place.
///
/// The helper columns are exact (Python `repr`), but `serde_json` without its `float_roundtrip`
/// feature may parse a decimal one ULP off. The exact check is the hex column and the verdicts.
fn near(a: f64, b: f64) -> bool {
    a == b || a.to_bits().abs_diff(b.to_bits()) <= 1
}

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The single condition's rollout threshold of a vector file's `flag`.
fn condition_threshold(flag: &Value) -> RolloutThreshold {
    let groups = flag["filters"]["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "the consistency flags have one condition");
    assert!(groups[0]["properties"]
        .as_array()
        .expect("props")
        .is_empty());
    match &groups[0]["rollout_percentage"] {
        Value::Null => RolloutThreshold::EVERYONE,
        v => RolloutThreshold::from_percentage(f64_of(v)),
    }
}

#[test]
fn simple_flag_consistency() {
    let doc = common::load("hash_simple_flag_consistency.json");
    let flag = &doc["flag"];
    let key = flag["key"].as_str().expect("key");
    let threshold = condition_threshold(flag);
    let cases = doc["cases"].as_array().expect("cases");
    let mut pass = 0;
    for case in cases {
        let id = case["distinct_id"].as_str().expect("distinct_id");
        let h = hash60(key, id, "");
        // The helper columns pin the intermediate values too.
        assert_eq!(
            format!("{h:015x}"),
            case["sha1_first15_hex"].as_str().expect("hex"),
            "{id}"
        );
        assert!(near(reference_hash(h), f64_of(&case["hash"])), "{id}");
        let enabled = threshold.contains(h);
        assert_eq!(Value::Bool(enabled), case["expected"], "simple-flag {id}");
        pass += 1;
    }
    println!("hash_simple: {pass}/{}", cases.len());
    assert_eq!(pass, 1000);
}

#[test]
fn multivariate_flag_consistency() {
    let doc = common::load("hash_multivariate_flag_consistency.json");
    let flag = &doc["flag"];
    let key = flag["key"].as_str().expect("key");
    let threshold = condition_threshold(flag);
    let variants = flag["filters"]["multivariate"]["variants"]
        .as_array()
        .expect("variants");
    let ranges: Vec<VariantRange> =
        variant_ranges(variants.iter().map(|v| f64_of(&v["rollout_percentage"]))).collect();
    let cases = doc["cases"].as_array().expect("cases");
    let mut pass = 0;
    for case in cases {
        let id = case["distinct_id"].as_str().expect("distinct_id");
        let h = hash60(key, id, "");
        assert!(
            near(reference_hash(h), f64_of(&case["rollout_hash"])),
            "{id}"
        );
        let value = if threshold.contains(h) {
            let vh = hash60(key, id, VARIANT_SALT);
            assert!(
                near(reference_hash(vh), f64_of(&case["variant_hash"])),
                "{id}"
            );
            match ranges.iter().position(|r| r.contains(vh)) {
                Some(i) => variants[i]["key"].clone(),
                None => Value::Bool(true),
            }
        } else {
            Value::Bool(false)
        };
        assert_eq!(value, case["expected"], "multivariate-flag {id}");
        pass += 1;
    }
    println!("hash_multivariate: {pass}/{}", cases.len());
    assert_eq!(pass, 1000);
}

fn sha1_hex(input: &str) -> String {
    let mut s = sha1_smol::Sha1::new();
    s.update(input.as_bytes());
    s.digest().to_string()
}

#[test]
fn misc_hash_cases() {
    let doc = common::load("hash_misc.json");
    let cases = doc["cases"].as_array().expect("cases");
    let mut pass = 0;
    for case in cases {
        let id = case["id"].as_str().expect("id");
        if let Some(input) = case["sha1_input"].as_str() {
            let expected = case["expected_sha1_hex"].as_str().expect("hex");
            assert_eq!(sha1_hex(input), expected, "{id}");
            // The 60-bit hash is its first 15 hex digits, however the input is split.
            let (key, rest) = input.split_once('.').expect("key.id");
            assert_eq!(format!("{:015x}", hash60(key, rest, "")), expected[..15]);
        } else if let Some(flag_key) = case["flag_key"].as_str() {
            let bucketing = case["bucketing_value"].as_str().expect("bucketing_value");
            let t = RolloutThreshold::from_percentage(f64_of(&case["rollout_percentage"]));
            assert_eq!(
                Value::Bool(t.contains(hash60(flag_key, bucketing, ""))),
                case["expected_enabled"],
                "{id}"
            );
        } else if let Some(input) = case["hash_input"].as_str() {
            let h = hash60_with_separator(input, "", "", "");
            let expected = f64_of(&case["expected_hash"]);
            let tolerance = f64_of(&case["tolerance"]);
            assert!(
                (reference_hash(h) - expected).abs() <= tolerance,
                "{id}: {} vs {expected}",
                reference_hash(h)
            );
        } else if let Some(ids) = case["ids"].as_array() {
            // h-8: holdout membership at exclusion_percentage 20.
            let t =
                RolloutThreshold::from_holdout_percentage(f64_of(&case["exclusion_percentage"]));
            assert_eq!(case["holdout_id"], 727);
            for entry in ids {
                let distinct_id = entry["distinct_id"].as_str().expect("distinct_id");
                let h = holdout_hash60(distinct_id);
                assert_eq!(
                    hash60_with_separator(entry["hash_input"].as_str().expect("input"), "", "", ""),
                    h
                );
                assert!(
                    near(reference_hash(h), f64_of(&entry["hash"])),
                    "{id} {distinct_id}"
                );
                assert_eq!(
                    Value::Bool(t.contains(h)),
                    entry["held_out_at_20_percent"],
                    "{id} {distinct_id}"
                );
            }
        } else {
            panic!("{id}: unknown case shape");
        }
        pass += 1;
    }
    println!("hash_misc: {pass}/{}", cases.len());
    assert_eq!(pass, cases.len());
}
