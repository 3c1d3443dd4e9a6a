//! Every configuration the core refuses, with the error it must give: shared by the tests of
//! each constructor (core, embassy).

use posthog_embedded::client::{Config, ConfigError, GiveUp, KeyKind, Setting, MAX_KEY_LEN};
use posthog_embedded::config::MAX_DISTINCT_ID;
use posthog_embedded::Duration;

/// `(configuration, the error every constructor must give)`, one per rule.
pub(crate) fn rejected() -> Vec<(Config<'static>, ConfigError)> {
    // Leaked: the configurations borrow their keys, and the tests keep them for good.
    let long: &'static str = "k".repeat(MAX_KEY_LEN + 1).leak();
    let long_id: &'static str = "d".repeat(MAX_DISTINCT_ID + 1).leak();
    let secs = Duration::from_secs;
    vec![
        (
            Config::new("", 1),
            ConfigError::EmptyKey { key: KeyKind::Api },
        ),
        (
            Config::new(" \t\n", 1),
            ConfigError::EmptyKey { key: KeyKind::Api },
        ),
        (
            Config::new("phc_ok", 1).secret_key("  "),
            ConfigError::EmptyKey {
                key: KeyKind::Secret,
            },
        ),
        (
            Config::new("phc_ok", 1).secret_key("phc_project"),
            ConfigError::ProjectKeyAsSecretKey,
        ),
        (
            Config::new(long, 1),
            ConfigError::KeyTooLong {
                key: KeyKind::Api,
                len: MAX_KEY_LEN + 1,
                max: MAX_KEY_LEN,
            },
        ),
        (
            Config::new("phc_ok", 1).secret_key(long),
            ConfigError::KeyTooLong {
                key: KeyKind::Secret,
                len: MAX_KEY_LEN + 1,
                max: MAX_KEY_LEN,
            },
        ),
        (
            Config::new("phc ok", 1),
            ConfigError::KeyCharacter {
                key: KeyKind::Api,
                at: 3,
            },
        ),
        (
            Config::new("phc_ok", 1).secret_key("phx_a\r\nX-Injected: 1"),
            ConfigError::KeyCharacter {
                key: KeyKind::Secret,
                at: 5,
            },
        ),
        (
            Config::new("phc_ok", 1).distinct_id(" \t"),
            ConfigError::DistinctId { len: 2 },
        ),
        (
            Config::new("phc_ok", 1).distinct_id(""),
            ConfigError::DistinctId { len: 0 },
        ),
        (
            Config::new("phc_ok", 1).distinct_id(long_id),
            ConfigError::DistinctId {
                len: MAX_DISTINCT_ID + 1,
            },
        ),
        (
            Config::new("phc_ok", 1).flush_at(0),
            ConfigError::Zero {
                setting: Setting::FlushAt,
            },
        ),
        (
            Config::new("phc_ok", 1).max_batch_events(0),
            ConfigError::Zero {
                setting: Setting::MaxBatchEvents,
            },
        ),
        (
            Config::new("phc_ok", 1).flush_interval(secs(0)),
            ConfigError::Zero {
                setting: Setting::FlushInterval,
            },
        ),
        (
            Config::new("phc_ok", 1).poll_interval(secs(0)),
            ConfigError::Zero {
                setting: Setting::PollInterval,
            },
        ),
        (
            Config::new("phc_ok", 1).retry(secs(0), secs(10)),
            ConfigError::Zero {
                setting: Setting::RetryBase,
            },
        ),
        (
            Config::new("phc_ok", 1).retry_after_cap(secs(0)),
            ConfigError::Zero {
                setting: Setting::RetryAfterCap,
            },
        ),
        (
            Config::new("phc_ok", 1).give_up(GiveUp::AfterAttempts(0)),
            ConfigError::Zero {
                setting: Setting::GiveUpAttempts,
            },
        ),
        (
            Config::new("phc_ok", 1).give_up(GiveUp::OlderThan(secs(0))),
            ConfigError::Zero {
                setting: Setting::GiveUpAge,
            },
        ),
        (
            Config::new("phc_ok", 1).retry(secs(10), secs(5)),
            ConfigError::RetryCapBelowBase {
                base_ms: 10_000,
                cap_ms: 5_000,
            },
        ),
    ]
}
