//! The regex matcher: pattern and subject both fuzzed. Compilation never panics; matching stays
//! within the documented step bound; where it compiles, it agrees with the `regex` crate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::flags::regex::{Regex, RegexError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pattern, subject) = text.split_once('\u{0}').unwrap_or((&text, "subject"));
    match Regex::<256>::new(pattern) {
        Ok(re) => {
            let (m, steps) = re.is_match_counting(subject);
            assert!(steps <= re.max_steps(subject.len()), "step bound exceeded");
            if let Ok(oracle) = regex::Regex::new(pattern) {
                assert_eq!(
                    m,
                    oracle.is_match(subject),
                    "disagrees with regex on {pattern:?} / {subject:?}"
                );
            }
        }
        Err(RegexError::Invalid) => {
            // The server's engine must reject it too.
            assert!(
                regex::Regex::new(pattern).is_err(),
                "rejected a pattern regex accepts: {pattern:?}"
            );
        }
        Err(_) => {}
    }
});
