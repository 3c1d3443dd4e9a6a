//! The evaluator with structured input: definitions from the seed corpus (first line), then a
//! context made of the remaining bytes (flag key, ids, properties, groups, `now`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::flags::{EvalContext, FlagStore, GroupContext, Properties, PropertyValue};
use posthog_embedded::UnixMillis;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (defs, rest) = data.split_at(split);
    let mut store = Box::new(FlagStore::<32, 1024, 16384>::new());
    if store.load(defs).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(rest.get(1..).unwrap_or_default()).into_owned();
    let mut parts = text.split('\u{1}');
    let mut next = || parts.next().unwrap_or("");
    let key = next().to_owned();
    let distinct_id = next().to_owned();
    let device = next().to_owned();
    let now = next()
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    let raw: Vec<(String, String)> = (0..6)
        .map(|_| (next().to_owned(), next().to_owned()))
        .collect();
    let person: Vec<(&str, PropertyValue<'_>)> = raw
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                PropertyValue::from_json(v).unwrap_or(PropertyValue::Str(v)),
            )
        })
        .collect();
    let person = person.as_slice();
    let gprops = [("$group_key", PropertyValue::Str("g"))];
    let groups = [GroupContext {
        group_type: "company",
        key: "g",
        properties: Some(&gprops as &dyn Properties),
    }];
    let ctx = EvalContext {
        distinct_id: &distinct_id,
        device_id: (!device.is_empty()).then_some(device.as_str()),
        person: &person,
        groups: &groups,
    };
    let now = (now % 3 != 0).then(|| UnixMillis::from_millis(now % UnixMillis::MAX.as_millis()));
    let keys: Vec<String> = store.keys().map(str::to_owned).chain([key]).collect();
    for k in &keys {
        if let Ok(v) = store.evaluate(k, &ctx, now) {
            let _ = store.payload(k, &v);
        }
    }
});
