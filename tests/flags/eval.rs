//! Evaluator behaviour the conformance vectors do not pin down on their own: payloads, time,
//! device-id bucketing, groups, and bounded recursion on hostile definitions.

use posthog_embedded::flags::{
    EvalContext, FlagStore, FlagValue, GroupContext, Inconclusive, Properties, PropertyValue,
    Reason,
};
use posthog_embedded::UnixMillis;

const SAMPLE: &[u8] = include_bytes!("../../examples/data/sample_definitions.json");

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
        s.payload("display-theme", &FlagValue::variant("night").unwrap()),
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
        Ok(FlagValue::variant("kalman").unwrap())
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

/// The SDKs add `distinct_id` to the person properties and `$group_key` to each group's
/// properties before local evaluation (posthog-python `_person_properties_for_local_evaluation`,
/// `_add_local_person_and_group_properties`); the evaluator implies both, and the caller's own
/// value wins.
#[test]
fn distinct_id_and_group_key_are_implied() {
    let doc = br#"{"flags": [
        {"id": 1, "key": "by-id", "active": true, "filters": {"groups": [{"properties": [
            {"key": "distinct_id", "type": "person", "operator": "exact", "value": ["device-8c1f-42"]}],
            "rollout_percentage": 100}]}},
        {"id": 2, "key": "by-group", "active": true, "filters": {"aggregation_group_type_index": 0,
            "groups": [{"properties": [{"key": "$group_key", "type": "group", "group_type_index": 0,
            "operator": "icontains", "value": "cold"}], "rollout_percentage": 100}]}}],
        "group_type_mapping": {"0": "fleet"}}"#;
    let s = store(doc);
    let none: [(&str, PropertyValue<'_>); 0] = [];
    assert_eq!(
        s.evaluate("by-id", &ctx(&none, &[]), None),
        Ok(FlagValue::Bool(true))
    );
    let other = [("distinct_id", PropertyValue::Str("someone-else"))];
    assert_eq!(
        s.evaluate("by-id", &ctx(&other, &[]), None),
        Ok(FlagValue::Bool(false))
    );

    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu-cold-storage",
        properties: Some(&none),
    }];
    assert_eq!(
        s.evaluate("by-group", &ctx(&none, &groups), None),
        Ok(FlagValue::Bool(true))
    );
    let renamed = [("$group_key", PropertyValue::Str("warm"))];
    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu-cold-storage",
        properties: Some(&renamed),
    }];
    assert_eq!(
        s.evaluate("by-group", &ctx(&none, &groups), None),
        Ok(FlagValue::Bool(false))
    );
    // Unknown group properties stay unknown.
    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu-cold-storage",
        properties: None,
    }];
    assert_eq!(
        s.evaluate("by-group", &ctx(&none, &groups), None),
        Err(Inconclusive::Unresolved(Reason::MissingContext))
    );
}

#[test]
fn detailed_evaluation_names_the_server_reason() {
    use posthog_embedded::flags::MatchReason;
    let s = store(SAMPLE);
    let person = [("firmware_version", PropertyValue::Str("1.4.2"))];
    let e = s
        .evaluate_detailed("new-sampling-rate", &ctx(&person, &[]), None)
        .unwrap();
    assert_eq!(e.value, FlagValue::Bool(true));
    assert_eq!(e.reason, MatchReason::ConditionMatch { condition: 0 });
    assert_eq!(e.reason.code(), "condition_match");
    assert_eq!(e.reason.to_string(), "Matched condition set 1");
    let old = [("firmware_version", PropertyValue::Str("1.3.9"))];
    let e = s
        .evaluate_detailed("new-sampling-rate", &ctx(&old, &[]), None)
        .unwrap();
    assert_eq!(
        (e.value, e.reason),
        (FlagValue::Bool(false), MatchReason::NoConditionMatch)
    );
    let e = s
        .evaluate_detailed("legacy-protocol", &ctx(&person, &[]), None)
        .unwrap();
    assert_eq!(e.reason, MatchReason::Disabled);
    let e = s
        .evaluate_detailed("fleet-dashboard", &ctx(&person, &[]), None)
        .unwrap();
    assert_eq!(e.reason, MatchReason::NoGroup);
    // compression: 1 condition with a partial rollout this device misses.
    let e = s
        .evaluate_detailed("compression", &ctx(&person, &[]), None)
        .unwrap();
    assert_eq!(
        (e.value, e.reason),
        (
            FlagValue::Bool(false),
            MatchReason::OutOfRolloutBound { condition: 0 }
        )
    );
    assert_eq!(e.reason.code(), "out_of_rollout_bound");
    // Every flag: the detailed value is the plain value.
    for key in s.keys() {
        assert_eq!(
            s.evaluate_detailed(key, &ctx(&person, &[]), None)
                .map(|e| e.value),
            s.evaluate(key, &ctx(&person, &[]), None),
            "{key}"
        );
    }
}

#[test]
fn analysis_reports_needs_and_server_only_parts() {
    use posthog_embedded::flags::{Finding, PropertyScope};
    let doc = br#"{"flags": [
        {"id": 1, "key": "f", "active": true, "ensure_experience_continuity": true, "filters": {"groups": [
            {"properties": [{"key": "fw", "type": "person", "operator": "semver_gte", "value": "1.0.0"},
                            {"key": "id", "type": "cohort", "value": 77},
                            {"key": "seen", "type": "person", "operator": "is_date_after", "value": "-7d"},
                            {"key": "x", "type": "person", "operator": "frobnicate", "value": 1},
                            {"key": "other", "type": "flag", "operator": "flag_evaluates_to", "value": true,
                             "dependency_chain": ["other"]}],
             "rollout_percentage": 100}]}},
        {"id": 2, "key": "off", "active": false, "filters": {"groups": []}}]}"#;
    let s = store(doc);
    let mut found = Vec::new();
    assert!(s.analyze("f", |f| found.push(f)));
    assert!(found.contains(&Finding::ExperienceContinuity));
    assert!(found.contains(&Finding::StaticCohort { id: "77" }));
    assert!(found.contains(&Finding::WallClock));
    assert!(found.contains(&Finding::UnknownOperator { property: "x" }));
    assert!(found.contains(&Finding::MissingDependency { flag: "other" }));
    assert!(found.contains(&Finding::Property {
        scope: PropertyScope::Person,
        key: "fw",
        operator: "semver_gte"
    }));
    assert!(found.iter().any(Finding::is_server_only));
    let mut off = Vec::new();
    assert!(s.analyze("off", |f| off.push(f)));
    assert_eq!(off, [Finding::Inactive]);
    assert!(!s.analyze("missing", |_| {}));
}

#[test]
fn a_variant_longer_than_a_flag_value_holds_is_inconclusive_never_cut() {
    let fits = "f".repeat(posthog_embedded::flags::MAX_VARIANT_LEN);
    let long = "l".repeat(posthog_embedded::flags::MAX_VARIANT_LEN + 1);
    let doc = format!(
        r#"{{"flags": [
        {{"id": 1, "key": "fits", "active": true, "filters": {{
            "groups": [{{"properties": [], "rollout_percentage": 100}}],
            "multivariate": {{"variants": [{{"key": "{fits}", "rollout_percentage": 100}}]}}}}}},
        {{"id": 2, "key": "long", "active": true, "filters": {{
            "groups": [{{"properties": [], "rollout_percentage": 100}}],
            "multivariate": {{"variants": [{{"key": "{long}", "rollout_percentage": 100}}]}}}}}},
        {{"id": 3, "key": "after-long", "active": true, "filters": {{
            "groups": [{{"properties": [
                {{"key": "long", "type": "flag", "operator": "flag_evaluates_to",
                 "value": "{long}", "dependency_chain": ["long"]}}],
             "rollout_percentage": 100}}]}}}}]}}"#
    );
    let s = store(doc.as_bytes());
    let c = ctx(&[], &[]);
    let v = s.evaluate("fits", &c, None).unwrap();
    assert_eq!(v.as_variant(), Some(fits.as_str()));
    assert_eq!(
        s.evaluate("long", &c, None),
        Err(Inconclusive::Unresolved(Reason::UnsupportedDefinition))
    );
    // Inside evaluation the long key is still compared exactly: a flag depending on it decides.
    assert_eq!(
        s.evaluate("after-long", &c, None),
        Ok(FlagValue::Bool(true))
    );
}
