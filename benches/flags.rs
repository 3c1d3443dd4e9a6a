//! Flag benchmarks: loading a 20-flag definitions document, and one evaluation of each kind of
//! flag.
//!
//! Run: `cargo bench --bench flags`. Results are recorded in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use posthog_embedded::flags::store::FlagStore;
use posthog_embedded::flags::value::PropertyValue;
use posthog_embedded::flags::{EvalContext, GroupContext};
use posthog_embedded::UnixMillis;
use std::hint::black_box;

const DOC: &[u8] = include_bytes!("../examples/data/sample_definitions.json");
type Store = FlagStore<32, 512, 4096>;

fn benches(c: &mut Criterion) {
    let need = Store::requirements(DOC).unwrap();
    eprintln!(
        "sample_definitions.json: {} bytes of JSON need {need}; FlagStore<32, 512, 4096> is {} bytes",
        DOC.len(),
        size_of::<Store>()
    );
    c.bench_function("flags/load_20_flags", |b| {
        let mut store = Box::new(Store::new());
        b.iter(|| store.load(black_box(DOC)).unwrap());
    });
    // One pass, as into a staging store.
    c.bench_function("flags/load_once_20_flags", |b| {
        let mut store = Box::new(Store::new());
        b.iter(|| store.load_or_clear(black_box(DOC)).unwrap());
    });

    let mut store = Box::new(Store::new());
    store.load(DOC).unwrap();
    let person: [(&str, PropertyValue<'_>); 12] = [
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
    ];
    let fleet: [(&str, PropertyValue<'_>); 2] = [
        ("$group_key", PropertyValue::Str("eu-cold-storage")),
        ("plan", PropertyValue::Str("enterprise")),
    ];
    let groups = [GroupContext {
        group_type: "fleet",
        key: "eu-cold-storage",
        properties: Some(&fleet),
    }];
    let ctx = EvalContext {
        distinct_id: "device-8c1f-42",
        device_id: None,
        person: &person,
        groups: &groups,
    };
    let now = Some(UnixMillis::from_millis(1_795_000_000_000));

    let mut g = c.benchmark_group("flags/evaluate");
    for (name, key) in [
        ("simple_rollout", "ota-updates"),
        ("multivariate", "display-theme"),
        ("five_filter_condition", "battery-saver"),
        ("regex", "verbose-logging"),
        ("cohort", "lab-devices"),
        ("dependency", "fast-reconnect"),
        ("group_flag", "fleet-dashboard"),
        ("relative_date", "calibration-v2"),
        ("holdout", "holdout-experiment"),
    ] {
        // Every benchmarked flag must evaluate conclusively.
        store
            .evaluate(key, &ctx, now)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        g.bench_function(name, |b| {
            b.iter(|| store.evaluate(black_box(key), black_box(&ctx), now));
        });
    }
    g.finish();
}

criterion_group!(flags, benches);
criterion_main!(flags);
