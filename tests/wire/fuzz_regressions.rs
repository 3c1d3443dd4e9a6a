//! Every input the fuzzers ever found a problem with, replayed on stable with the same checks
//! as the fuzz target (`fuzz/regressions/<target>/`), plus the truncation and corruption sweep
//! of issue #7: every prefix and a set of byte mutations of each recorded definitions document
//! and `/flags` response fail cleanly, and never change the store or answer in use.

use crate::common;

use std::path::PathBuf;

use posthog_embedded::flags::remote::{RemoteFlags, RemoteStorage};
use posthog_embedded::flags::{EvalContext, FlagStore, PropertyValue};

type Store = FlagStore<64, 2048, 32768>;

const BASE: &[u8] = br#"{"flags":[{"id":1,"key":"keep","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;

fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    out
}

/// The `definitions_loader` fuzz target's checks.
fn check_definitions(data: &[u8]) {
    let mut store = Box::new(Store::new());
    store.load(BASE).unwrap();
    let before = store.usage();
    let need = Store::requirements(data);
    let none: [(&str, PropertyValue<'_>); 0] = [];
    match store.load(data) {
        Ok(n) => {
            assert_eq!(Ok(n), need);
            let used = store.usage();
            assert!(used.flags <= n.flags);
            assert_eq!((used.nodes, used.bytes), (n.nodes, n.bytes));
            let ctx = EvalContext {
                distinct_id: "d",
                device_id: Some("dev"),
                person: &none,
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
                person: &none,
                groups: &[],
            };
            assert!(store.evaluate("keep", &ctx, None).is_ok());
        }
    }
}

#[test]
fn definitions_loader_regressions() {
    let cases = regressions("definitions_loader");
    assert!(
        !cases.is_empty(),
        "the regression folder is part of the repository"
    );
    for (path, data) in &cases {
        eprintln!("replaying {}", path.display());
        check_definitions(data);
    }
    println!("definitions_loader regressions: {} replayed", cases.len());
}

/// The byte mutations applied at each position.
const MUTATIONS: [u8; 6] = [b'"', b'{', b']', b'\\', b'0', 0xff];

#[test]
fn every_definitions_example_truncated_or_corrupted_fails_cleanly() {
    let v = common::load("definitions_payload_examples.json");
    let mut prefixes = 0;
    let mut mutants = 0;
    for case in v["cases"].as_array().unwrap() {
        let doc = serde_json::to_vec(&case["payload"]).unwrap();
        let mut store = Box::new(Store::new());
        store.load(&doc).unwrap();
        let before = store.usage();
        for n in 0..doc.len() {
            assert!(store.load(&doc[..n]).is_err());
            assert_eq!(store.usage(), before);
            prefixes += 1;
        }
        let mut m = doc.clone();
        for i in (0..m.len()).step_by(3) {
            let old = m[i];
            for b in MUTATIONS {
                m[i] = b;
                check_definitions(&m);
                mutants += 1;
            }
            m[i] = old;
        }
    }
    println!("definitions examples: {prefixes} prefixes and {mutants} mutants, all clean");
}

#[test]
fn every_flags_response_truncated_or_corrupted_fails_cleanly() {
    let v = common::load("remote_flags_response_examples.json");
    let mut checked = 0;
    for case in v["cases"].as_array().unwrap() {
        let body = serde_json::to_vec(&case["response"]).unwrap();
        let mut storage = Box::new(RemoteStorage::<64, 8192>::new());
        let mut flags = RemoteFlags::new(&mut storage);
        flags.parse(&body).unwrap();
        let snapshot = |f: &RemoteFlags<'_>| -> Vec<(String, String)> {
            f.values()
                .map(|(k, v)| (k.to_owned(), v.to_string()))
                .collect()
        };
        let before = snapshot(&flags);
        for n in 0..body.len() {
            assert!(flags.parse(&body[..n]).is_err());
            assert_eq!(snapshot(&flags), before);
            checked += 1;
        }
        let mut m = body.clone();
        for i in 0..m.len() {
            let old = m[i];
            for b in MUTATIONS {
                m[i] = b;
                if flags.parse(&m).is_err() {
                    assert_eq!(snapshot(&flags), before);
                } else {
                    flags.parse(&body).unwrap();
                }
                checked += 1;
            }
            m[i] = old;
        }
    }
    println!("flags responses: {checked} truncations and mutations, all clean");
}
