//! The `/flags` response parser: any body parses or fails with a typed error, and a failed
//! parse leaves the previous answer unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::flags::remote::{RemoteFlags, RemoteStorage};

const BASE: &[u8] = br#"{"flags":{"a":{"key":"a","enabled":true,"variant":"v","metadata":{"payload":"{\"x\":1}"}}}}"#;

fuzz_target!(|data: &[u8]| {
    let mut storage = Box::new(RemoteStorage::<16, 2048>::new());
    let mut flags = RemoteFlags::new(&mut storage);
    flags.parse(BASE).unwrap();
    let before: Vec<(String, String)> = flags
        .values()
        .map(|(k, v)| (k.to_owned(), v.to_string()))
        .collect();
    match flags.parse(data) {
        Ok(()) => {
            for f in flags.iter() {
                let _ = (f.reason(), f.payload, flags.errors_for(f.key));
            }
        }
        Err(_) => {
            let after: Vec<(String, String)> = flags
                .values()
                .map(|(k, v)| (k.to_owned(), v.to_string()))
                .collect();
            assert_eq!(before, after, "a failed parse changed the result");
        }
    }
});
