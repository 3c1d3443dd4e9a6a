//! The client state machine against PostHog's SDK contract scenarios (PostHog/sdk-specs
//! `acceptance/*.feature`: capture, before-send hook, opt-out, event batcher, retry queue, flush,
//! shutdown, flag definition loader), on a virtual clock.

use std::sync::atomic::{AtomicUsize, Ordering};

use posthog_embedded::capture::{EventOptions, OverflowPolicy};
use posthog_embedded::client::{
    BatchOutcome, Client, Config, ConfigError, DeliveryError, EventInfo, GiveUp, KeyKind, Method,
    RequestKind, ResponseInfo, RetryAfter, Setting, Transmit, TransportError, Verdict,
};
use posthog_embedded::resources::Resources;
use posthog_embedded::{CaptureError, Duration, Instant, Now, UnixMillis};
use serde_json::Value;

type Res = Resources<4096, 8, 128, 2048>;
type C = Client<'static>;

fn at(ms: u64) -> Now {
    Now::mono(Instant::from_millis(ms))
}

fn ok() -> ResponseInfo<'static> {
    ResponseInfo {
        status: 200,
        retry_after: None,
        etag: None,
    }
}

fn status(s: u16) -> ResponseInfo<'static> {
    ResponseInfo {
        status: s,
        retry_after: None,
        etag: None,
    }
}

fn capture(c: &mut C, t: u64, name: &str) -> Result<(), CaptureError> {
    c.capture(at(t), name, "user-123", &EventOptions::new(), |_| Ok(()))
        .map(|_| ())
}

/// Polls once; returns the batch's event names.
fn send(c: &mut C, t: u64, buf: &mut [u8]) -> Option<Vec<String>> {
    let tx = c.poll_transmit(at(t), buf)?;
    assert_eq!(tx.method, Method::Post);
    assert_eq!(tx.path.as_str(), "/batch/");
    let headers: Vec<(String, String)> = tx
        .headers()
        .map(|(k, v)| {
            let mut s = String::new();
            v.write(|p| -> Result<(), ()> {
                s.push_str(p);
                Ok(())
            })
            .unwrap();
            (k.to_owned(), s)
        })
        .collect();
    assert_eq!(
        headers[0],
        ("Content-Type".into(), "application/json".into())
    );
    assert!(headers[1].1.starts_with("posthog-embedded/"));
    let body: Value = serde_json::from_slice(tx.body).unwrap();
    assert_eq!(body["api_key"], "test-token");
    Some(
        body["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_owned())
            .collect(),
    )
}

/// The values of `tx`'s headers as they go on the wire (secrets unredacted), concatenated.
fn header_values(tx: &Transmit<'_>) -> String {
    let mut wire = String::new();
    for (_, v) in tx.headers() {
        v.write(|p| -> Result<(), ()> {
            wire.push_str(p);
            Ok(())
        })
        .unwrap();
    }
    wire
}

/// A client over leaked resources (a handful per test).
fn client(config: Config<'static>) -> C {
    Client::new(config, Box::leak(Box::new(Res::new()))).unwrap()
}

#[test]
fn config_is_validated() {
    // Every rule is tested in tests/client/delivery.rs; the constructor applies them.
    let mut res = Box::new(Res::new());
    assert_eq!(
        Client::new(Config::new(" ", 0x5eed), &mut res).err(),
        Some(ConfigError::EmptyKey { key: KeyKind::Api })
    );
    assert_eq!(
        Client::new(Config::new("k", 0x5eed).flush_at(0), &mut res).err(),
        Some(ConfigError::Zero {
            setting: Setting::FlushAt
        })
    );
    // A zero-byte queue cannot hold an event: refused at construction, on the heap too.
    let mut empty = Box::new(Resources::<0, 1, 1, 1, 1>::new());
    assert_eq!(
        Client::new(Config::new("k", 1), &mut empty).err(),
        Some(ConfigError::Zero {
            setting: Setting::QueueBytes
        })
    );
    #[cfg(feature = "std")]
    {
        let caps = posthog_embedded::resources::Capacities {
            queue: 0,
            ..Resources::<1, 1, 1, 1, 1>::capacities()
        };
        assert_eq!(
            Client::with_capacity(Config::new("k", 1), caps).err(),
            Some(ConfigError::Zero {
                setting: Setting::QueueBytes
            })
        );
    }
}

#[test]
fn batcher_thresholds_interval_and_order() {
    let mut buf = vec![0u8; 4096];
    // flush_at = 2: First, Second go together and the queue empties.
    let mut c = client(Config::new("test-token", 0x5eed).flush_at(2));
    capture(&mut c, 0, "First").unwrap();
    assert!(c.poll_transmit(at(0), &mut buf).is_none());
    capture(&mut c, 1, "Second").unwrap();
    assert_eq!(send(&mut c, 1, &mut buf).unwrap(), ["First", "Second"]);
    c.handle_response(at(2), &ok(), b"");
    assert_eq!(c.pending(), 0);
    // Interval 10 s: a lone event is sent once it is 10 s old.
    let mut c = client(Config::new("test-token", 0x5eed).flush_interval(Duration::from_secs(10)));
    capture(&mut c, 1_000, "Delayed").unwrap();
    assert_eq!(c.poll_timeout(), Some(Instant::from_millis(11_000)));
    assert!(c.poll_transmit(at(10_999), &mut buf).is_none());
    assert_eq!(send(&mut c, 11_000, &mut buf).unwrap(), ["Delayed"]);
    // One request in flight: nothing else until it is settled.
    capture(&mut c, 11_001, "Other").unwrap();
    c.flush();
    assert!(c.poll_transmit(at(30_000), &mut buf).is_none());
    assert_eq!(c.poll_timeout(), None);
    c.handle_response(at(11_002), &ok(), b"");
    assert_eq!(send(&mut c, 11_003, &mut buf).unwrap(), ["Other"]);
    // flush_at = 3: arrival order is kept.
    let mut c = client(Config::new("test-token", 0x5eed).flush_at(3));
    for n in ["First", "Second", "Third"] {
        capture(&mut c, 0, n).unwrap();
    }
    assert_eq!(
        send(&mut c, 0, &mut buf).unwrap(),
        ["First", "Second", "Third"]
    );
}

#[test]
fn flush_on_empty_queue_sends_nothing_and_503_keeps_events() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("test-token", 0x5eed));
    c.flush();
    assert!(c.poll_transmit(at(0), &mut buf).is_none());
    capture(&mut c, 0, "Retry Me").unwrap();
    c.flush();
    assert_eq!(send(&mut c, 0, &mut buf).unwrap(), ["Retry Me"]);
    c.handle_response(at(10), &status(503), b"");
    assert_eq!(c.pending(), 1);
    assert_eq!(c.stats().last_error, Some(DeliveryError::Status(503)));
    // Back-off: the 1 s base, less up to a quarter of jitter.
    let until = c.backoff_until().unwrap().as_millis();
    assert!((760..=1_010).contains(&until), "{until}");
    assert!(c.poll_transmit(at(until - 1), &mut buf).is_none());
    assert_eq!(send(&mut c, until, &mut buf).unwrap(), ["Retry Me"]);
    c.handle_response(at(until + 5), &ok(), b"");
    assert_eq!(c.pending(), 0);
    assert_eq!(c.stats().sent, 1);
    assert_eq!(c.stats().retries, 1);
}

#[test]
fn a_chosen_give_up_policy_drops_with_a_counted_failure() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("test-token", 0x5eed)
            .give_up(GiveUp::AfterAttempts(3))
            .retry(Duration::from_millis(100), Duration::from_millis(250)),
    );
    capture(&mut c, 0, "Doomed").unwrap();
    let mut t = 0;
    let mut delays = vec![];
    for _ in 0..3 {
        c.flush();
        assert!(send(&mut c, t, &mut buf).is_some());
        c.handle_transport_error(at(t), TransportError::Timeout);
        if let Some(u) = c.backoff_until() {
            delays.push(u.as_millis() - t);
            t = u.as_millis();
        }
    }
    // 100 ms then 200 ms (less up to 25% jitter), then dropped at the third failure; the
    // link's back-off goes on for the events that come next (250 ms cap).
    assert_eq!(delays.len(), 3);
    assert!(
        (75..=100).contains(&delays[0])
            && (150..=200).contains(&delays[1])
            && (187..=250).contains(&delays[2]),
        "{delays:?}"
    );
    assert_eq!(c.pending(), 0);
    let s = c.stats();
    assert_eq!(s.queue.discarded_gave_up, 1);
    assert_eq!(
        s.last_error,
        Some(DeliveryError::Transport(TransportError::Timeout))
    );
}

#[test]
fn retry_after_is_a_minimum_in_seconds_or_as_a_date() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("test-token", 0x5eed));
    capture(&mut c, 0, "e").unwrap();
    c.flush();
    send(&mut c, 0, &mut buf).unwrap();
    let r = ResponseInfo {
        status: 429,
        retry_after: Some(RetryAfter::Delay(Duration::from_secs(120))),
        etag: None,
    };
    c.handle_response(at(0), &r, b"");
    assert_eq!(c.backoff_until(), Some(Instant::from_millis(120_000)));
    // An HTTP-date needs the wall clock.
    send(&mut c, 120_000, &mut buf).unwrap();
    let wall = UnixMillis::from_millis(1_767_323_045_000);
    let r = ResponseInfo {
        status: 503,
        retry_after: Some(RetryAfter::At(UnixMillis::from_millis(
            wall.as_millis() + 60_000,
        ))),
        etag: None,
    };
    c.handle_response(Now::with_wall(Instant::from_millis(120_000), wall), &r, b"");
    assert_eq!(c.backoff_until(), Some(Instant::from_millis(180_000)));
}

#[test]
fn status_413_halves_then_drops_a_single_event() {
    let mut buf = vec![0u8; 8192];
    let mut c = client(Config::new("test-token", 0x5eed).flush_at(8));
    for i in 0..8 {
        capture(&mut c, 0, &format!("e{i}")).unwrap();
    }
    assert_eq!(send(&mut c, 0, &mut buf).unwrap().len(), 8);
    c.handle_response(at(1), &status(413), b"");
    assert_eq!(c.stats().retries, 0, "413 is not a retry");
    assert_eq!(send(&mut c, 1, &mut buf).unwrap(), ["e0", "e1", "e2", "e3"]);
    c.handle_response(at(2), &status(413), b"");
    assert_eq!(send(&mut c, 2, &mut buf).unwrap(), ["e0", "e1"]);
    c.handle_response(at(3), &status(413), b"");
    assert_eq!(send(&mut c, 3, &mut buf).unwrap(), ["e0"]);
    c.handle_response(at(4), &status(413), b"");
    assert_eq!(c.stats().queue.discarded_too_large_for_body, 1);
    // Success grows the batch back.
    assert_eq!(send(&mut c, 4, &mut buf).unwrap(), ["e1"]);
    c.handle_response(at(5), &ok(), b"");
    assert_eq!(send(&mut c, 5, &mut buf).unwrap(), ["e2", "e3"]);
}

#[test]
fn other_4xx_drop_the_batch() {
    let mut buf = vec![0u8; 4096];
    for s in [400u16, 401, 403, 404] {
        let mut c = client(Config::new("test-token", 0x5eed));
        capture(&mut c, 0, "e").unwrap();
        c.flush();
        send(&mut c, 0, &mut buf).unwrap();
        c.handle_response(at(1), &status(s), b"");
        assert_eq!(c.pending(), 0);
        assert_eq!(c.stats().queue.discarded_rejected, 1);
        assert_eq!(c.backoff_until(), None);
    }
}

#[test]
fn events_captured_in_flight_survive_an_evicting_commit() {
    // The retry-queue contract: three events are sent, three more are captured while that
    // request is in flight (evicting the in-flight ones, drop-oldest), and the success removes
    // only what was sent, by identity, so the newer three stay queued. Here with a queue that
    // holds about three events.
    let mut buf = vec![0u8; 4096];
    let mut res = Box::new(Resources::<700, 1, 1, 1>::new());
    let mut c = Client::new(
        Config::new("test-token", 0x5eed).overflow(OverflowPolicy::DropOldest),
        &mut res,
    )
    .unwrap();
    for i in 1..=3 {
        c.capture(
            at(0),
            &format!("initial-{i}"),
            "u",
            &EventOptions::new(),
            |_| Ok(()),
        )
        .unwrap();
    }
    c.flush();
    let first: Vec<String> = {
        let tx = c.poll_transmit(at(0), &mut buf).unwrap();
        let v: Value = serde_json::from_slice(tx.body).unwrap();
        v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().into())
            .collect()
    };
    assert_eq!(first, ["initial-1", "initial-2", "initial-3"]);
    for i in 1..=3 {
        c.capture(
            at(1),
            &format!("replacement-{i}"),
            "u",
            &EventOptions::new(),
            |_| Ok(()),
        )
        .unwrap();
    }
    c.handle_response(at(2), &ok(), b"");
    assert_eq!(c.pending(), 3, "the replacements are still queued");
    c.flush();
    let tx = c.poll_transmit(at(3), &mut buf).unwrap();
    let v: Value = serde_json::from_slice(tx.body).unwrap();
    let names: Vec<&str> = v["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["replacement-1", "replacement-2", "replacement-3"]);
}

#[test]
fn opt_out_gate_and_before_send_filter() {
    let mut c = client(Config::new("test-token", 0x5eed).opted_out(true));
    assert!(c.is_opted_out());
    assert_eq!(
        capture(&mut c, 0, "Early Event"),
        Err(CaptureError::Disabled)
    );
    c.opt_in();
    capture(&mut c, 0, "Allowed").unwrap();
    c.opt_out();
    assert_eq!(capture(&mut c, 0, "Blocked"), Err(CaptureError::Disabled));
    assert_eq!(
        c.alias(at(0), "a", "b", &EventOptions::new()),
        Err(CaptureError::Disabled)
    );
    assert_eq!(c.pending(), 1, "queued events are kept by default");
    c.opt_out_and_clear();
    assert_eq!(c.pending(), 0);
    assert_eq!(c.stats().gated, 3);

    fn drop_secrets(e: &EventInfo<'_>) -> Verdict {
        if e.event == "Secret Event" {
            Verdict::Drop
        } else {
            Verdict::Keep
        }
    }
    let mut c = client(Config::new("test-token", 0x5eed));
    c.set_before_send(Some(drop_secrets));
    assert_eq!(
        capture(&mut c, 0, "Secret Event"),
        Err(CaptureError::Filtered)
    );
    capture(&mut c, 0, "Checkout Started").unwrap();
    assert_eq!(c.pending(), 1);
    assert_eq!(c.stats().filtered, 1);
    // Validation failures are counted too.
    assert_eq!(capture(&mut c, 0, ""), Err(CaptureError::EmptyEventName));
    assert_eq!(c.stats().invalid, 1);
}

static DELIVERED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn shutdown_flushes_refuses_later_captures_and_is_idempotent() {
    fn on_batch(o: &BatchOutcome) {
        match o {
            BatchOutcome::Delivered { records } => {
                DELIVERED.fetch_add(records.len() as usize, Ordering::SeqCst)
            }
            BatchOutcome::Dropped { records, .. } => {
                DROPPED.fetch_add(records.len() as usize, Ordering::SeqCst)
            }
            _ => 0,
        };
    }
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("test-token", 0x5eed).flush_at(100));
    c.set_on_batch(Some(on_batch));
    capture(&mut c, 0, "Save").unwrap();
    c.shutdown();
    c.shutdown();
    assert_eq!(
        capture(&mut c, 0, "After Shutdown"),
        Err(CaptureError::Disabled)
    );
    assert_eq!(send(&mut c, 0, &mut buf).unwrap(), ["Save"]);
    c.handle_response(at(1), &ok(), b"");
    assert_eq!(c.pending(), 0);
    assert!(c.poll_transmit(at(1), &mut buf).is_none());
    assert_eq!(c.poll_timeout(), None, "no timers after shutdown");
    assert_eq!(DELIVERED.load(Ordering::SeqCst), 1);
    assert_eq!(DROPPED.load(Ordering::SeqCst), 0);
}

const DEFS: &[u8] = br#"{"flags":[{"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;

#[test]
fn definitions_polling_with_etag_and_errors() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("test-token", 0x5eed)
            .secret_key("phx_secret")
            .poll_interval(Duration::from_secs(30)),
    );
    assert!(!c.is_local_evaluation_ready());
    // Neither key shows in the configuration's or the client's Debug output.
    let shown = format!("{:?} {c:?}", c.config());
    assert!(
        !shown.contains("phx_secret") && !shown.contains("test-token"),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"));
    {
        let tx = c.poll_transmit(at(0), &mut buf).unwrap();
        assert_eq!(tx.kind, RequestKind::Definitions);
        assert_eq!(tx.method, Method::Get);
        assert_eq!(
            tx.path.as_str(),
            "/flags/definitions?token=test-token&send_cohorts"
        );
        assert!(tx.body.is_empty());
        let auth: Vec<String> = tx.headers().map(|(k, v)| format!("{k}: {v:?}")).collect();
        // The secret never shows in Debug output.
        assert!(
            auth.iter()
                .any(|h| h == "Authorization: \"Bearer <redacted>\""),
            "{auth:?}"
        );
        assert!(!format!("{tx:?}").contains("phx_secret"));
        let wire = header_values(&tx);
        assert!(wire.contains("Bearer phx_secret"));
    }
    let r = ResponseInfo {
        status: 200,
        retry_after: None,
        etag: Some("\"v1\""),
    };
    c.handle_response(at(10), &r, DEFS);
    assert!(c.is_local_evaluation_ready());
    assert_eq!(c.poll_timeout(), Some(Instant::from_millis(30_010)));
    {
        let tx = c.poll_transmit(at(30_010), &mut buf).unwrap();
        assert!(tx
            .headers()
            .any(|(k, v)| k == "If-None-Match" && format!("{v:?}") == "\"\\\"v1\\\"\""));
    }
    c.handle_response(at(30_020), &status(304), b"");
    assert_eq!(c.flags().len(), 1);
    // A malformed body keeps the old definitions.
    let _ = c.poll_transmit(at(60_020), &mut buf).unwrap();
    c.handle_response(at(60_030), &ok(), b"{\"flags\": [");
    assert_eq!(c.flags().len(), 1);
    assert!(matches!(
        c.stats().last_error,
        Some(DeliveryError::Definitions(_))
    ));
    // 401, 403 and 429 keep them and back off; 402 clears them.
    let _ = c.poll_transmit(at(90_030), &mut buf).unwrap();
    c.handle_response(at(90_040), &status(429), b"");
    assert_eq!(c.flags().len(), 1);
    assert_eq!(
        c.poll_timeout(),
        Some(Instant::from_millis(90_040 + 60_000))
    );
    let _ = c.poll_transmit(at(150_040), &mut buf).unwrap();
    c.handle_response(at(150_050), &status(401), b"");
    assert_eq!(c.flags().len(), 1);
    assert!(c.is_local_evaluation_ready());
    let next = c.poll_timeout().unwrap();
    let _ = c.poll_transmit(Now::mono(next), &mut buf).unwrap();
    c.handle_response(Now::mono(next), &status(402), b"");
    assert_eq!(c.flags().len(), 0);
    assert!(!c.is_local_evaluation_ready());
    // reload() polls at once.
    c.reload();
    assert!(c.poll_transmit(at(150_051), &mut buf).is_some());
    c.handle_transport_error(at(150_060), TransportError::Connect);
    // A snapshot from flash works with no network at all.
    let mut offline = client(Config::new("test-token", 0x5eed));
    offline.load_definitions(DEFS).unwrap();
    assert!(offline.is_local_evaluation_ready());
    assert!(offline.poll_transmit(at(0), &mut buf).is_none());
}

#[test]
fn fate_tells_what_became_of_an_event() {
    use posthog_embedded::client::Fate;
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("test-token", 0x5eed)
            .flush_at(100)
            .give_up(GiveUp::AfterAttempts(1)),
    );
    capture(&mut c, 0, "delivered").unwrap();
    let a = c.last_seq().unwrap();
    assert_eq!(c.fate(a), Fate::Queued);
    assert_eq!(c.fate(a + 1), Fate::Unknown, "never captured");
    c.flush();
    send(&mut c, 0, &mut buf).unwrap();
    assert_eq!(c.fate(a), Fate::Queued, "in flight");
    c.handle_response(at(1), &ok(), b"");
    assert_eq!(c.fate(a), Fate::Delivered);
    capture(&mut c, 2, "refused").unwrap();
    let b = c.last_seq().unwrap();
    c.flush();
    send(&mut c, 2, &mut buf).unwrap();
    c.handle_response(at(3), &status(400), b"");
    assert_eq!(c.fate(b), Fate::Dropped);
    capture(&mut c, 4, "failed").unwrap();
    let d = c.last_seq().unwrap();
    c.flush();
    send(&mut c, 4, &mut buf).unwrap();
    c.handle_transport_error(at(5), TransportError::Io);
    assert_eq!(
        c.fate(d),
        Fate::Dropped,
        "one attempt allowed: dropped at once"
    );
    assert_eq!(c.fate(a), Fate::Delivered);
}

/// Before-send hooks (contract "Before Send Hook"): a chain run in order on every event, after
/// the gate and validation, that can drop events and remove or redact properties; a failing
/// hook drops the event (fail closed), stops the chain and is counted.
mod before_send_hooks {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use posthog_embedded::client::{BeforeSend, EventInfo, HookFailed, PropertyVerdict, Verdict};
    use posthog_embedded::flags::EvalContext;

    use super::*;

    /// Redacts `email` and removes `debug_*` properties.
    struct Scrub;
    impl BeforeSend for Scrub {
        fn property(
            &self,
            _: &EventInfo<'_>,
            key: &str,
            _: &str,
        ) -> Result<PropertyVerdict, HookFailed> {
            Ok(if key == "email" {
                PropertyVerdict::Redact
            } else if key.starts_with("debug_") {
                PropertyVerdict::Remove
            } else {
                PropertyVerdict::Keep
            })
        }
    }

    /// Drops events named `Secret Event`.
    struct DropSecrets;
    impl BeforeSend for DropSecrets {
        fn event(&self, e: &EventInfo<'_>) -> Result<Verdict, HookFailed> {
            Ok(if e.event == "Secret Event" {
                Verdict::Drop
            } else {
                Verdict::Keep
            })
        }
    }

    /// Fails on every property of `Safe Event` (after a hook that transformed it).
    struct FailOnSafe;
    impl BeforeSend for FailOnSafe {
        fn property(
            &self,
            e: &EventInfo<'_>,
            _: &str,
            _: &str,
        ) -> Result<PropertyVerdict, HookFailed> {
            if e.event == "Safe Event" {
                Err(HookFailed)
            } else {
                Ok(PropertyVerdict::Keep)
            }
        }
    }

    /// Records that it ran on `Safe Event`.
    static THIRD_RAN: AtomicBool = AtomicBool::new(false);
    struct Third;
    impl BeforeSend for Third {
        fn property(
            &self,
            e: &EventInfo<'_>,
            _: &str,
            _: &str,
        ) -> Result<PropertyVerdict, HookFailed> {
            if e.event == "Safe Event" {
                THIRD_RAN.store(true, Ordering::SeqCst);
            }
            Ok(PropertyVerdict::Keep)
        }
    }

    /// Counts every event it sees.
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    struct Count;
    impl BeforeSend for Count {
        fn event(&self, _: &EventInfo<'_>) -> Result<Verdict, HookFailed> {
            SEEN.fetch_add(1, Ordering::SeqCst);
            Ok(Verdict::Keep)
        }
    }

    /// Adds `privacy=filtered` to every event (after the other hooks' edits).
    struct Tag;
    impl BeforeSend for Tag {
        fn add(
            &self,
            _: &EventInfo<'_>,
            props: &mut posthog_embedded::json::write::Object<'_, '_>,
        ) -> Result<(), HookFailed> {
            props
                .set("privacy", "filtered")
                .done()
                .map_err(|_| HookFailed)
        }
    }
    static TAG: Tag = Tag;

    #[test]
    fn a_hook_adds_a_property() {
        let mut c = client(Config::new("test-token", 0x5eed));
        c.add_before_send(&SCRUB).unwrap();
        c.add_before_send(&TAG).unwrap();
        c.capture(
            at(0),
            "Checkout Started",
            "user-123",
            &EventOptions::new(),
            |p| p.set("email", "a@b.c").done(),
        )
        .unwrap();
        // An event with no properties of its own gets it too.
        let mut bare = client(
            Config::new("test-token", 0x5eed)
                .encoder(posthog_embedded::capture::EncoderConfig::DEFAULT.disable_geoip(false)),
        );
        bare.add_before_send(&TAG).unwrap();
        capture(&mut bare, 0, "bare").unwrap();
        let events = batch(&mut c);
        assert_eq!(events.len(), 1);
        let props = events[0]["properties"].as_object().unwrap();
        assert_eq!(props["privacy"], "filtered");
        assert_eq!(props["email"], Value::Null);
        assert_eq!(props["$lib"], "posthog-embedded");
        let bare_events = batch(&mut bare);
        assert_eq!(bare_events[0]["properties"]["privacy"], "filtered");
    }

    static SCRUB: Scrub = Scrub;
    static DROP_SECRETS: DropSecrets = DropSecrets;
    static FAIL_ON_SAFE: FailOnSafe = FailOnSafe;
    static THIRD: Third = Third;
    static COUNT: Count = Count;

    fn batch(c: &mut C) -> Vec<Value> {
        c.flush();
        let mut buf = vec![0u8; 8192];
        let tx = c.poll_transmit(at(1), &mut buf).expect("a batch");
        let body: Value = serde_json::from_slice(tx.body).unwrap();
        c.handle_response(at(1), &ok(), b"");
        body["batch"].as_array().unwrap().clone()
    }

    #[test]
    fn hooks_edit_drop_and_fail_closed() {
        let mut c = client(Config::new("test-token", 0x5eed));
        c.add_before_send(&SCRUB).unwrap();
        c.add_before_send(&DROP_SECRETS).unwrap();
        c.add_before_send(&FAIL_ON_SAFE).unwrap();
        c.add_before_send(&THIRD).unwrap();
        assert!(c.add_before_send(&COUNT).is_err(), "at most MAX_HOOKS");

        // Edited: `email` redacted, `debug_trace` removed, the rest (SDK's own keys) kept.
        c.capture(
            at(0),
            "Checkout Started",
            "user-123",
            &EventOptions::new(),
            |p| {
                p.prop("debug_trace", "abc")?
                    .prop("email", "a@b.c")?
                    .prop("plan", "pro")?
                    .prop("debug_more", 1)?;
                Ok(())
            },
        )
        .unwrap();
        // Dropped by a hook: nothing queued, counted as filtered.
        assert_eq!(
            capture(&mut c, 0, "Secret Event"),
            Err(CaptureError::Filtered)
        );
        // A hook fails after another transformed the event: the capture returns normally
        // (a typed, counted drop), nothing is queued, the third hook never ran.
        assert_eq!(
            c.capture(at(0), "Safe Event", "user-123", &EventOptions::new(), |p| {
                p.prop("email", "x@y.z")?;
                Ok(())
            }),
            Err(CaptureError::HookFailed)
        );
        assert!(!THIRD_RAN.load(Ordering::SeqCst));
        let s = c.stats();
        assert_eq!((s.captured, s.filtered, s.hook_failed), (1, 1, 1));
        assert_eq!(c.pending(), 1);
        let events = batch(&mut c);
        assert_eq!(events.len(), 1);
        let props = events[0]["properties"].as_object().unwrap();
        assert_eq!(props["email"], Value::Null);
        assert_eq!(props["plan"], "pro");
        assert!(!props.contains_key("debug_trace") && !props.contains_key("debug_more"));
        assert_eq!(props["$lib"], "posthog-embedded");
    }

    #[test]
    fn hooks_see_flag_events_but_not_gated_ones() {
        let mut c = client(Config::new("test-token", 0x5eed));
        c.load_definitions(
            br#"{"flags":[{"id":1,"key":"beta","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#,
        )
        .unwrap();
        c.add_before_send(&SCRUB).unwrap();
        c.add_before_send(&COUNT).unwrap();
        let before = SEEN.load(Ordering::SeqCst);
        let person = [(
            "email",
            posthog_embedded::flags::PropertyValue::Str("a@b.c"),
        )];
        let ctx = EvalContext {
            distinct_id: "user-123",
            device_id: Some("debug_device"),
            person: &person,
            groups: &[],
        };
        assert_eq!(
            c.feature_flag(at(0), "beta", &ctx, true)
                .map(|v| v.is_enabled()),
            Ok(true)
        );
        assert_eq!(SEEN.load(Ordering::SeqCst), before + 1);
        let events = batch(&mut c);
        assert_eq!(events[0]["event"], "$feature_flag_called");
        assert_eq!(events[0]["properties"]["$feature_flag"], "beta");
        // Opted out: the gate runs first; hooks never see the event.
        c.opt_out();
        assert_eq!(capture(&mut c, 0, "e"), Err(CaptureError::Disabled));
        assert_eq!(SEEN.load(Ordering::SeqCst), before + 1);
        c.clear_before_send();
        c.opt_in();
        capture(&mut c, 0, "e").unwrap();
        assert_eq!(SEEN.load(Ordering::SeqCst), before + 1);
    }
}

/// Properties without a `?` on every line: `set` latches the first error, which fails the
/// event (counted as invalid) whatever the closure returns; nested objects latch too.
#[test]
fn latching_property_writer() {
    use posthog_embedded::PropertyError;
    let mut c = client(Config::new("test-token", 0x5eed).flush_at(100));
    c.capture(at(0), "reading", "device-1", &EventOptions::new(), |p| {
        p.set("door", "front")
            .set("battery", 87u32)
            .object("loc", |o| o.set("lat", 48.1f64).set("lon", 11.5f64).done())?
            .set("tags", ["a", "b"]);
        Ok(())
    })
    .unwrap();
    let bad = |p: &mut posthog_embedded::json::write::Object<'_, '_>| {
        p.set("ok", 1u8).set("t", f64::NAN).set("never", 2u8);
        Ok(())
    };
    assert_eq!(
        c.capture(at(0), "bad", "device-1", &EventOptions::new(), bad),
        Err(CaptureError::Property(PropertyError::NonFiniteNumber))
    );
    // In a nested object, with the closure ending in `Ok(())` rather than `done()`.
    assert_eq!(
        c.capture(at(0), "bad", "device-1", &EventOptions::new(), |p| {
            p.object("inner", |o| {
                o.set("", 1u8);
                Ok(())
            })?;
            Ok(())
        }),
        Err(CaptureError::Property(PropertyError::EmptyKey))
    );
    assert_eq!((c.pending(), c.stats().invalid), (1, 2));
    c.flush();
    let mut buf = vec![0u8; 4096];
    let tx = c.poll_transmit(at(1), &mut buf).unwrap();
    let body: Value = serde_json::from_slice(tx.body).unwrap();
    let props = &body["batch"][0]["properties"];
    assert_eq!(props["door"], "front");
    assert_eq!(props["battery"], 87);
    assert_eq!(props["loc"]["lon"], 11.5);
    assert_eq!(props["tags"], serde_json::json!(["a", "b"]));
}

/// A default distinct id for the one-device-one-id case (`Id::Default`), with a per-call
/// override; without one configured, `Id::Default` is refused and counted.
#[test]
fn default_distinct_id_and_per_call_override() {
    use posthog_embedded::client::Id;
    let mut c = client(Config::new("test-token", 0x5eed).distinct_id("device-42"));
    c.capture(at(0), "boot", Id::Default, &EventOptions::new(), |_| Ok(()))
        .unwrap();
    c.identify(at(0), Id::Default, &EventOptions::new(), |p| {
        p.set(|o| o.set("fw", "1.2").done())?;
        Ok(())
    })
    .unwrap();
    c.capture(at(0), "paired", "user-7", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    c.flush();
    let mut buf = vec![0u8; 4096];
    let tx = c.poll_transmit(at(1), &mut buf).unwrap();
    let body: Value = serde_json::from_slice(tx.body).unwrap();
    let ids: Vec<&str> = body["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["distinct_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["device-42", "device-42", "user-7"]);

    let mut c = client(Config::new("test-token", 0x5eed));
    assert_eq!(
        c.capture(at(0), "boot", Id::Default, &EventOptions::new(), |_| Ok(())),
        Err(CaptureError::EmptyDistinctId)
    );
    assert_eq!((c.pending(), c.stats().invalid), (0, 1));
    let mut res = Box::new(Res::new());
    assert_eq!(
        Client::new(Config::new("k", 1).distinct_id("  "), &mut res).err(),
        Some(ConfigError::DistinctId { len: 2 })
    );
}

/// A client made by `with_capacity` keeps its own copies of the keys and the default
/// `distinct_id`: the strings its configuration borrowed can go.
#[cfg(feature = "std")]
#[test]
fn a_client_with_capacity_keeps_its_own_keys() {
    use posthog_embedded::client::{Id, MAX_DISTINCT_ID};
    let mut c = {
        let key = String::from("test-token");
        let secret = String::from("phx_secret");
        // The longest default id accepted, copied out of the heap at every capture.
        let id = format!("device-{}", "7".repeat(MAX_DISTINCT_ID - 7));
        let config = Config::new(&key, 1).secret_key(&secret).distinct_id(&id);
        Client::with_capacity(config, Res::capacities()).unwrap()
    };
    let config = c.config();
    assert_eq!(config.api_key.as_str(), "test-token");
    assert_eq!(config.secret_key.map(|k| k.as_str()), Some("phx_secret"));
    let id = format!("device-{}", "7".repeat(MAX_DISTINCT_ID - 7));
    assert_eq!(config.distinct_id.map(|d| d.as_str()), Some(id.as_str()));
    let mut buf = vec![0u8; 4096];
    // The definitions poll comes first: the token in its path, the secret in its header.
    {
        let tx = c.poll_transmit(at(0), &mut buf).unwrap();
        assert_eq!(
            tx.path.as_str(),
            "/flags/definitions?token=test-token&send_cohorts"
        );
        let wire = header_values(&tx);
        assert!(wire.contains("Bearer phx_secret"), "{wire}");
    }
    c.handle_response(at(1), &ok(), DEFS);
    c.capture(at(2), "boot", Id::Default, &EventOptions::new(), |_| Ok(()))
        .unwrap();
    c.flush();
    let tx = c.poll_transmit(at(3), &mut buf).unwrap();
    let body: Value = serde_json::from_slice(tx.body).unwrap();
    assert_eq!(body["api_key"], "test-token");
    assert_eq!(body["batch"][0]["distinct_id"], id.as_str());
}

/// The definitions' `ETag` is kept whole or not at all: one longer than [`MAX_ETAG`] would be
/// cut, and a cut `ETag` never matches, so it is dropped; a `304` without one keeps the last.
#[test]
fn an_etag_is_kept_whole_or_not_at_all() {
    use posthog_embedded::client::MAX_ETAG;
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("test-token", 1).secret_key("phx_secret"));
    let longest = format!("\"{}\"", "e".repeat(MAX_ETAG - 2));
    let answer = |etag| ResponseInfo {
        status: 200,
        retry_after: None,
        etag,
    };
    let _ = c.poll_transmit(at(0), &mut buf).unwrap();
    c.handle_response(at(1), &answer(Some(&longest)), DEFS);
    assert_eq!(c.definitions_etag(), Some(longest.as_str()));
    let next = c.poll_timeout().unwrap();
    let _ = c.poll_transmit(Now::mono(next), &mut buf).unwrap();
    c.handle_response(Now::mono(next), &status(304), b"");
    assert_eq!(c.definitions_etag(), Some(longest.as_str()));
    let too_long = format!("\"{}\"", "e".repeat(MAX_ETAG - 1));
    let next = c.poll_timeout().unwrap();
    let _ = c.poll_transmit(Now::mono(next), &mut buf).unwrap();
    c.handle_response(Now::mono(next), &answer(Some(&too_long)), DEFS);
    assert_eq!(c.definitions_etag(), None);
    let next = c.poll_timeout().unwrap();
    let tx = c.poll_transmit(Now::mono(next), &mut buf).unwrap();
    assert!(!tx.headers().any(|(k, _)| k == "If-None-Match"));
    // Kept from flash with the definitions, the same rule.
    c.load_definitions_with_etag(DEFS, "\"v2\"").unwrap();
    assert_eq!(c.definitions_etag(), Some("\"v2\""));
    c.load_definitions_with_etag(DEFS, &too_long).unwrap();
    assert_eq!(c.definitions_etag(), None);
}
