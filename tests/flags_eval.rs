//! Evaluator behaviour the conformance vectors do not pin down on their own: payloads, time,
//! device-id bucketing, groups, and bounded recursion on hostile definitions.

use posthog_embedded::flags::{
    EvalContext, FlagStore, FlagValue, GroupContext, Inconclusive, Properties, PropertyValue,
    Reason,
};
use posthog_embedded::UnixMillis;

const SAMPLE: &[u8] = include_bytes!("../examples/data/sample_definitions.json");

fn store(doc: &[u8]) -> Box<FlagStore<32, 512, 8192>> {
    let mut s = Box::new(FlagStore::new());
    s.load(doc).unwrap();
    s
}

fn ctx<'a>(person: &'a dyn Properties, groups: &'a [GroupContext<'a>]) -> EvalContext<'a> {
    EvalContext {
        distinct_id: "device-8c1f-42",
        device_id: None,
        person,
        groups,
    }
}

#[test]
fn payloads_follow_the_value() {
    let s = store(SAMPLE);
    let person = [("firmware_version", PropertyValue::Str("1.4.2"))];
    let v = s
        .evaluate("new-sampling-rate", &ctx(&person, &[]), None)
        .unwrap();
    assert_eq!(v, FlagValue::Bool(true));
    assert_eq!(
        s.payload("new-sampling-rate", &v),
        Some(r#"{"interval_ms": 5000}"#)
    );
    assert_eq!(
        s.payload("new-sampling-rate", &FlagValue::Bool(false)),
        None
    );
    assert_eq!(
        s.payload("display-theme", &FlagValue::Variant("night")),
        Some(r#"{"brightness": 0.3}"#)
    );
    assert_eq!(s.payload("no-such-flag", &FlagValue::Bool(true)), None);
    let mut buf = [0u8; 28];
    assert_eq!(FlagValue::Holdout(-7).payload_key(&mut buf), "holdout--7");
    assert_eq!(
        FlagValue::Holdout(i64::MAX).to_string(),
        "holdout-9223372036854775807"
    );
}

#[test]
fn relative_dates_need_a_wall_clock() {
    let s = store(SAMPLE);
    let person = [("installed_at", PropertyValue::Str("2026-01-15T08:00:00Z"))];
    assert_eq!(
        s.evaluate("calibration-v2", &ctx(&person, &[]), None),
        Err(Inconclusive::Unresolved(Reason::MissingContext))
    );
    let now = UnixMillis::parse_rfc3339("2026-11-23T00:00:00Z").ok();
    assert_eq!(
        s.evaluate("calibration-v2", &ctx(&person, &[]), now),
        Ok(FlagValue::Bool(true))
    );
    let now = UnixMillis::parse_rfc3339("2026-02-01T00:00:00Z").ok();
    assert_eq!(
        s.evaluate("calibration-v2", &ctx(&person, &[]), now),
        Ok(FlagValue::Bool(false))
    );
    // Absolute dates need no clock.
    let doc = br#"{"flags":[{"key":"d","active":true,"filters":{"groups":[{"properties":[
        {"key":"t","operator":"is_date_after","value":"2024-01-01"}]}]}}]}"#;
    let s = store(doc);
    let person = [("t", PropertyValue::Str("2025-06-01 10:00:00"))];
    assert_eq!(
        s.evaluate("d", &ctx(&person, &[]), None),
        Ok(FlagValue::Bool(true))
    );
}

#[test]
fn device_id_bucketing_and_groups() {
    let doc = br#"{"flags":[
        {"key":"by-device","active":true,"bucketing_identifier":"device_id",
         "filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
        {"key":"fleet","active":true,
         "filters":{"aggregation_group_type_index":0,"groups":[{"properties":[
            {"key":"plan","value":"enterprise","type":"group","group_type_index":0}],"rollout_percentage":100}]}},
        {"key":"unmapped","active":true,
         "filters":{"aggregation_group_type_index":5,"groups":[{"properties":[],"rollout_percentage":100}]}}
    ],"group_type_mapping":{"0":"fleet"}}"#;
    let s = store(doc);
    let none: [(&str, PropertyValue<'_>); 0] = [];
    assert_eq!(
        s.evaluate("by-device", &ctx(&none, &[]), None),
        Err(Inconclusive::Unresolved(Reason::MissingContext))
    );
    let mut c = ctx(&none, &[]);
    c.device_id = Some("dev-1");
    assert_eq!(s.evaluate("by-device", &c, None), Ok(FlagValue::Bool(true)));
    // A group flag without its group is false, with no fallback.
    assert_eq!(
        s.evaluate("fleet", &ctx(&none, &[]), None),
        Ok(FlagValue::Bool(false))
    );
    let props = [("plan", PropertyValue::Str("Enterprise"))];
    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu",
        properties: Some(&props),
    }];
    assert_eq!(
        s.evaluate("fleet", &ctx(&none, &groups), None),
        Ok(FlagValue::Bool(true))
    );
    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu",
        properties: None,
    }];
    assert_eq!(
        s.evaluate("fleet", &ctx(&none, &groups), None),
        Err(Inconclusive::Unresolved(Reason::MissingContext))
    );
    assert_eq!(
        s.evaluate("unmapped", &ctx(&none, &groups), None),
        Err(Inconclusive::Unresolved(Reason::UnsupportedDefinition))
    );
}

#[test]
fn hostile_definitions_stay_bounded() {
    // Cohorts that reference each other in a cycle, and a dependency chain that loops.
    let doc = br#"{"flags":[
        {"key":"cyc","active":true,"filters":{"groups":[{"properties":[
            {"key":"id","type":"cohort","value":1}],"rollout_percentage":100}]}},
        {"key":"a","active":true,"filters":{"groups":[{"properties":[
            {"key":"b","type":"flag","value":true,"operator":"flag_evaluates_to","dependency_chain":["b"]}]}]}},
        {"key":"b","active":true,"filters":{"groups":[{"properties":[
            {"key":"a","type":"flag","value":true,"operator":"flag_evaluates_to","dependency_chain":["a"]}]}]}},
        {"key":"cycle-detected","active":true,"filters":{"groups":[{"properties":[
            {"key":"a","type":"flag","value":true,"operator":"flag_evaluates_to","dependency_chain":[]}]}]}}
    ],"cohorts":{
        "1":{"type":"OR","values":[{"key":"id","type":"cohort","value":2}]},
        "2":{"type":"OR","values":[{"key":"id","type":"cohort","value":1}]}
    }}"#;
    let s = store(doc);
    let none: [(&str, PropertyValue<'_>); 0] = [];
    assert!(s.evaluate("cyc", &ctx(&none, &[]), None).is_err());
    assert!(s.evaluate("a", &ctx(&none, &[]), None).is_err());
    assert_eq!(
        s.evaluate("cycle-detected", &ctx(&none, &[]), None),
        Err(Inconclusive::Unresolved(Reason::UnsupportedDefinition))
    );
}

#[test]
fn every_sample_flag_evaluates_for_a_device() {
    let s = store(SAMPLE);
    let person = [
        ("distinct_id", PropertyValue::Str("device-8c1f-42")),
        ("firmware_version", PropertyValue::Str("1.4.2")),
        ("board", PropertyValue::Str("STM32F429-disco")),
        ("battery_mv", PropertyValue::Int(3512)),
        ("region", PropertyValue::Str("eu-west")),
        ("debug", PropertyValue::Bool(false)),
        ("serial", PropertyValue::Str("SN-2024-BEEF")),
        ("lab", PropertyValue::Bool(true)),
        ("installed_at", PropertyValue::Str("2026-01-15T08:00:00Z")),
        ("uptime_s", PropertyValue::Int(90_000)),
        ("timezone", PropertyValue::Str("Europe/Berlin")),
        ("display", PropertyValue::Str("oled")),
        ("gps", PropertyValue::Bool(true)),
        ("has_imu", PropertyValue::Bool(true)),
        ("email", PropertyValue::Str("ops@fleet.io")),
        ("ring", PropertyValue::Str("beta")),
        ("modem", PropertyValue::Str("BG96")),
    ];
    let fleet = [("plan", PropertyValue::Str("enterprise"))];
    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu",
        properties: Some(&fleet),
    }];
    let now = UnixMillis::parse_rfc3339("2026-11-23T00:00:00Z").ok();
    let c = ctx(&person, &groups);
    for key in s.keys() {
        let v = s.evaluate(key, &c, now);
        assert!(v.is_ok(), "{key}: {v:?}");
    }
    assert_eq!(
        s.evaluate("legacy-protocol", &c, now),
        Ok(FlagValue::Bool(false))
    );
    assert_eq!(
        s.evaluate("sensor-fusion", &c, now),
        Ok(FlagValue::Variant("kalman"))
    );
    assert_eq!(
        s.evaluate("eu-data-residency", &c, now),
        Ok(FlagValue::Bool(true))
    );
    // Cohort 42: (lab AND serial starts with SN-LAB) OR region = test-bench.
    assert_eq!(
        s.evaluate("lab-devices", &c, now),
        Ok(FlagValue::Bool(false))
    );
    let lab = [
        ("lab", PropertyValue::Bool(true)),
        ("serial", PropertyValue::Str("sn-lab-7")),
        ("region", PropertyValue::Str("x")),
    ];
    assert_eq!(
        s.evaluate("lab-devices", &ctx(&lab, &[]), now),
        Ok(FlagValue::Bool(true))
    );
}
