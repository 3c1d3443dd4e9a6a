//! The definitions loader: any document loads or fails with a typed error; a failed load
//! leaves the store in use exactly as it was; a successful load evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::flags::{EvalContext, FlagStore, PropertyValue};

const BASE: &[u8] = br#"{"flags":[{"id":1,"key":"keep","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;

fuzz_target!(|data: &[u8]| {
    let mut store = Box::new(FlagStore::<16, 256, 4096>::new());
    store.load(BASE).unwrap();
    let before = store.usage();
    let need = FlagStore::<16, 256, 4096>::requirements(data);
    match store.load(data) {
        Ok(n) => {
            assert_eq!(Ok(n), need);
            // A duplicate key takes a flag slot while loading, then the later one replaces it.
            let used = store.usage();
            assert!(used.flags <= n.flags);
            assert_eq!((used.nodes, used.bytes), (n.nodes, n.bytes));
            let person = [
                ("email", PropertyValue::Str("a@b.c")),
                ("n", PropertyValue::Int(3)),
            ];
            let ctx = EvalContext {
                distinct_id: "d",
                device_id: Some("dev"),
                person: &person,
                groups: &[],
            };
            let keys: Vec<String> = store.keys().map(str::to_owned).collect();
            for k in &keys {
                let _ = store.evaluate(k, &ctx, None);
            }
        }
        Err(_) => {
            assert_eq!(store.usage(), before, "a failed load changed the store");
            let ctx = EvalContext {
                distinct_id: "d",
                device_id: None,
                person: &[] as &[(&str, PropertyValue<'_>); 0],
                groups: &[],
            };
            assert!(store.evaluate("keep", &ctx, None).is_ok());
        }
    }
});
