//! Delivery through outages, the connectivity hint, `Retry-After` caps, definitions polling that
//! never starves events, every configuration rule, flag reads without a distinct id or after
//! shutdown, and uuids unique across boots: the core client, on a virtual clock.

use std::collections::{BTreeMap, BTreeSet};

use posthog_embedded::capture::{EventOptions, OverflowPolicy, SeqRange};
use posthog_embedded::client::{
    BatchOutcome, Client, Config, ConfigError, GiveUp, RequestKind, ResponseInfo, RetryAfter,
    TransportError, MAX_KEY_LEN,
};
use posthog_embedded::config::MAX_DISTINCT_ID;
use posthog_embedded::flags::remote::RequestError;
use posthog_embedded::flags::{EvalContext, Inconclusive, PropertyValue};
use posthog_embedded::resources::Resources;
use posthog_embedded::{Duration, Instant, Now};
use serde_json::Value;

use crate::config_cases;

type Res = Resources<4096, 8, 128, 2048>;
type C = Client<'static>;

const MIN: u64 = 60_000;

fn at(ms: u64) -> Now {
    Now::mono(Instant::from_millis(ms))
}

fn answer(status: u16, retry_after: Option<RetryAfter>) -> ResponseInfo<'static> {
    ResponseInfo {
        status,
        retry_after,
        etag: None,
    }
}

/// A client over leaked resources (a handful per test).
fn client(config: Config<'static>) -> C {
    Client::new(config, Box::leak(Box::new(Res::new()))).unwrap()
}

fn capture(c: &mut C, t: u64, n: u64) {
    c.capture(at(t), "reading", "device-1", &EventOptions::new(), |p| {
        p.prop("n", n)?;
        Ok(())
    })
    .unwrap();
}

/// An event of a rendered batch: its `n` property, uuid and `offset`.
type Sent = (u64, String, u64);

/// Polls at `t`: the kind of request and, for a batch, its events.
fn poll(c: &mut C, t: u64, buf: &mut [u8]) -> Option<(RequestKind, Vec<Sent>)> {
    let tx = c.poll_transmit(at(t), buf)?;
    let kind = tx.kind;
    let events = match kind {
        RequestKind::Batch { .. } => {
            let body: Value = serde_json::from_slice(tx.body).unwrap();
            body["batch"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["properties"]["n"].as_u64().unwrap(),
                        e["uuid"].as_str().unwrap().to_owned(),
                        e["offset"].as_u64().unwrap(),
                    )
                })
                .collect()
        }
        _ => Vec::new(),
    };
    Some((kind, events))
}

#[test]
fn a_day_long_outage_drops_nothing_and_events_land_at_their_capture_time() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("phc_test", 1).flush_at(1));
    capture(&mut c, 0, 0);
    let mut t = 0;
    let mut uuid = None;
    let mut attempts = 0;
    let errors = [
        TransportError::Connect,
        TransportError::Timeout,
        TransportError::Io,
        TransportError::BadResponse,
        TransportError::Tls,
    ];
    let statuses = [408, 429, 500, 502, 503, 504, 599];
    // 24 hours of every retryable failure in turn.
    while t < 24 * 60 * MIN {
        let (_, events) = poll(&mut c, t, &mut buf).expect("a retry is due");
        assert_eq!(events.len(), 1);
        // Same uuid on every attempt; `offset` places it at its capture time.
        assert_eq!(*uuid.get_or_insert(events[0].1.clone()), events[0].1);
        assert_eq!(events[0].2, t, "offset = now - capture time");
        attempts += 1;
        if attempts % 2 == 0 {
            c.handle_transport_error(at(t + 5), errors[attempts % errors.len()]);
        } else {
            let s = statuses[attempts % statuses.len()];
            c.handle_response(at(t + 5), &answer(s, None), b"");
        }
        let next = c.poll_timeout().unwrap().as_millis();
        // The back-off never exceeds its cap (5 minutes by default) and is never below 3/4 of
        // the exponential delay (1 s doubling).
        let exp = (1000u64 << (attempts - 1).min(20)).min(5 * MIN);
        let delay = next - (t + 5);
        assert!(
            exp * 3 / 4 <= delay && delay <= exp,
            "attempt {attempts}: {delay} ms"
        );
        assert!(c.poll_transmit(at(next - 1), &mut buf).is_none());
        t = next;
    }
    // One attempt every 3 3/4 to 5 minutes once the cap is reached.
    assert!((288..=400).contains(&attempts), "{attempts} attempts");
    assert_eq!(c.pending(), 1);
    let (_, events) = poll(&mut c, t, &mut buf).unwrap();
    assert_eq!(events[0].2, t);
    c.handle_response(at(t + 5), &answer(200, None), b"");
    let s = c.stats();
    assert_eq!((s.sent, s.queue.dropped(), c.pending()), (1, 0, 0));
    assert_eq!(s.retries as usize, attempts);
}

#[test]
fn backoff_doubles_from_the_base_up_to_the_cap_with_jitter_below_it() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("phc_test", 2)
            .flush_at(1)
            .retry(Duration::from_secs(1), Duration::from_secs(60)),
    );
    capture(&mut c, 0, 0);
    let mut t = 0;
    let mut delays = Vec::new();
    for _ in 0..12 {
        poll(&mut c, t, &mut buf).unwrap();
        c.handle_transport_error(at(t), TransportError::Timeout);
        let next = c.backoff_until().unwrap().as_millis();
        delays.push(next - t);
        t = next;
    }
    for (i, d) in delays.iter().enumerate() {
        let exp = (1000u64 << i).min(60_000);
        assert!(exp * 3 / 4 <= *d && *d <= exp, "attempt {i}: {d} ms");
    }
    // A success resets the back-off.
    poll(&mut c, t, &mut buf).unwrap();
    c.handle_response(at(t), &answer(200, None), b"");
    capture(&mut c, t, 1);
    poll(&mut c, t, &mut buf).unwrap();
    c.handle_response(at(t), &answer(503, None), b"");
    assert!(c.backoff_until().unwrap().as_millis() - t <= 1000);
}

#[test]
fn retry_after_is_a_minimum_up_to_its_cap() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("phc_test", 3).flush_at(1));
    capture(&mut c, 0, 0);
    poll(&mut c, 0, &mut buf).unwrap();
    // A proxy asking for an hour is asked again after 5 minutes (the default cap).
    let hour = Some(RetryAfter::Delay(Duration::from_secs(3600)));
    c.handle_response(at(10), &answer(429, hour), b"");
    assert_eq!(c.backoff_until(), Some(Instant::from_millis(10 + 5 * MIN)));
    // Below the cap it is a minimum.
    poll(&mut c, 10 + 5 * MIN, &mut buf).unwrap();
    let t = 10 + 5 * MIN;
    c.handle_response(
        at(t),
        &answer(503, Some(RetryAfter::Delay(Duration::from_secs(90)))),
        b"",
    );
    assert_eq!(c.backoff_until(), Some(Instant::from_millis(t + 90_000)));
    // The cap is configurable.
    let mut c = client(
        Config::new("phc_test", 3)
            .flush_at(1)
            .retry_after_cap(Duration::from_secs(20)),
    );
    capture(&mut c, 0, 0);
    poll(&mut c, 0, &mut buf).unwrap();
    c.handle_response(at(0), &answer(429, hour), b"");
    assert_eq!(c.backoff_until(), Some(Instant::from_millis(20_000)));
    assert_eq!(c.stats().queue.dropped(), 0);
}

#[test]
fn offline_sends_nothing_and_coming_back_online_sends_at_once() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("phc_test", 4)
            .flush_at(1)
            .secret_key("phx_secret"),
    );
    c.set_online(false);
    assert!(!c.is_online());
    capture(&mut c, 0, 0);
    // Neither the batch nor the definitions poll is started; nothing is due.
    assert!(c.poll_transmit(at(0), &mut buf).is_none());
    assert!(c.poll_transmit(at(10 * 60 * MIN), &mut buf).is_none());
    assert_eq!(c.poll_timeout(), None);
    // Captures go on while offline.
    capture(&mut c, 10 * 60 * MIN, 1);
    assert_eq!(c.pending(), 2);
    c.set_online(true);
    let t = 10 * 60 * MIN + 1;
    let (kind, _) = poll(&mut c, t, &mut buf).unwrap();
    assert_eq!(kind, RequestKind::Definitions, "the poll was overdue");
    c.handle_transport_error(at(t), TransportError::Connect);
    let (kind, events) = poll(&mut c, t, &mut buf).unwrap();
    assert_eq!(
        kind,
        RequestKind::Batch {
            records: SeqRange { start: 0, end: 2 }
        }
    );
    // The first event still lands at its capture time, ten hours ago.
    assert_eq!(events[0].2, t);
    // A failure starts a back-off; the link coming back ends it.
    c.handle_transport_error(at(t), TransportError::Connect);
    let until = c.backoff_until().unwrap();
    assert!(until.as_millis() > t);
    assert!(c.poll_transmit(at(t + 1), &mut buf).is_none());
    c.set_online(false);
    c.set_online(true);
    assert_eq!(c.backoff_until(), None);
    // The definitions poll that got no answer goes first, then the batch.
    let (kind, _) = poll(&mut c, t + 1, &mut buf).unwrap();
    assert_eq!(kind, RequestKind::Definitions);
    c.handle_response(at(t + 1), &answer(304, None), b"");
    let (kind, _) = poll(&mut c, t + 1, &mut buf).unwrap();
    assert!(matches!(kind, RequestKind::Batch { .. }));
    c.handle_response(at(t + 2), &answer(200, None), b"");
    assert_eq!((c.pending(), c.stats().queue.dropped()), (0, 0));
}

#[test]
fn definitions_polls_never_starve_event_delivery() {
    let mut buf = vec![0u8; 4096];
    // A poll due all the time (1 ms interval) and failing every time.
    let mut c = client(
        Config::new("phc_test", 5)
            .flush_at(1)
            .secret_key("phx_secret")
            .poll_interval(Duration::from_millis(1)),
    );
    let mut kinds = Vec::new();
    let mut t = 0;
    for n in 0..20 {
        capture(&mut c, t, n);
        for _ in 0..2 {
            let (kind, _) = poll(&mut c, t, &mut buf).unwrap();
            match kind {
                RequestKind::Definitions => c.handle_response(at(t), &answer(500, None), b""),
                _ => c.handle_response(at(t), &answer(200, None), b""),
            }
            kinds.push(matches!(kind, RequestKind::Definitions));
            t += 2;
        }
    }
    // Alternating: every event went out although a poll was always due.
    assert_eq!(c.stats().sent, 20);
    assert!(kinds.windows(2).all(|w| w[0] != w[1]), "{kinds:?}");
}

#[test]
fn definitions_back_off_after_401_403_429_never_faster_than_the_interval() {
    let mut buf = vec![0u8; 4096];
    for (interval, expected) in [
        // posthog-node's min(60 s, interval × 2^n) for its 30 s default ...
        (30_000, [60_000, 60_000, 60_000]),
        (10_000, [20_000, 40_000, 60_000]),
        // ... and never more often than the interval: 5 min backs off to 10 min.
        (5 * MIN, [10 * MIN, 10 * MIN, 10 * MIN]),
    ] {
        let mut c = client(
            Config::new("phc_test", 6)
                .secret_key("phx_secret")
                .poll_interval(Duration::from_millis(interval)),
        );
        let mut t = 0;
        for (status, want) in [403, 429, 401].into_iter().zip(expected) {
            let (kind, _) = poll(&mut c, t, &mut buf).unwrap();
            assert_eq!(kind, RequestKind::Definitions);
            c.handle_response(at(t), &answer(status, None), b"");
            let next = c.poll_timeout().unwrap().as_millis();
            assert_eq!(next - t, want, "interval {interval}, status {status}");
            t = next;
        }
        // A 5xx or no answer: the next poll at the interval.
        poll(&mut c, t, &mut buf).unwrap();
        c.handle_transport_error(at(t), TransportError::Timeout);
        assert_eq!(c.poll_timeout().unwrap().as_millis() - t, interval);
    }
}

#[test]
fn give_up_policies_are_opt_in_counted_and_reported() {
    let mut buf = vec![0u8; 4096];
    // After N attempts.
    let mut c = client(
        Config::new("phc_test", 7)
            .flush_at(1)
            .give_up(GiveUp::AfterAttempts(2)),
    );
    capture(&mut c, 0, 0);
    poll(&mut c, 0, &mut buf).unwrap();
    c.handle_response(at(0), &answer(503, None), b"");
    assert_eq!(c.pending(), 1);
    let t = c.backoff_until().unwrap().as_millis();
    poll(&mut c, t, &mut buf).unwrap();
    c.handle_transport_error(at(t), TransportError::Io);
    assert_eq!(c.pending(), 0);
    assert_eq!(c.stats().queue.discarded_gave_up, 1);
    // Older than an age: only the expired prefix of the batch goes.
    let mut c = client(
        Config::new("phc_test", 8)
            .flush_at(100)
            .give_up(GiveUp::OlderThan(Duration::from_secs(60))),
    );
    capture(&mut c, 0, 0);
    capture(&mut c, 30_000, 1);
    capture(&mut c, 59_000, 2);
    c.flush();
    poll(&mut c, 61_000, &mut buf).unwrap();
    c.handle_transport_error(at(61_000), TransportError::Timeout);
    assert_eq!(c.pending(), 2);
    assert_eq!(c.stats().queue.discarded_gave_up, 1);
    let t = c.backoff_until().unwrap().as_millis().max(95_000);
    let (_, events) = poll(&mut c, t, &mut buf).unwrap();
    assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2]);
    c.handle_transport_error(at(t), TransportError::Timeout);
    assert_eq!(c.pending(), 1, "event 1 expired too");
    assert_eq!(c.stats().queue.discarded_gave_up, 2);
}

#[test]
fn every_rejected_configuration_is_a_typed_error_without_the_key() {
    let cases = config_cases::rejected();
    let mut res = Box::new(Res::new());
    for (config, want) in cases {
        assert_eq!(config.validate(), Err(want), "{config:?}");
        assert_eq!(Client::new(config, &mut res).err(), Some(want));
        let text = want.to_string();
        for key in ["phc_ok", "phc_project", "phx_a", "kkkk", "phc ok"] {
            assert!(!text.contains(key), "{text}");
        }
    }
    // The longest key and distinct id allowed, and a cap equal to its base, are fine.
    let max = "k".repeat(MAX_KEY_LEN);
    let max_id = "d".repeat(MAX_DISTINCT_ID);
    assert_eq!(
        Config::new(&max, 1)
            .secret_key(&max)
            .distinct_id(&max_id)
            .retry(Duration::from_secs(5), Duration::from_secs(5))
            .validate(),
        Ok(())
    );
    // `validate` is `const`: a configuration can be checked at compile time.
    const CHECKED: Result<(), ConfigError> = Config::new("phc_const", 9).validate();
    assert_eq!(CHECKED, Ok(()));
}

const DEFS: &[u8] = br#"{"flags":[{"key":"on","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;

const NO_PROPS: [(&str, PropertyValue<'static>); 0] = [];

fn ctx_of(id: &str) -> EvalContext<'_> {
    EvalContext {
        distinct_id: id,
        device_id: None,
        person: &NO_PROPS,
        groups: &[],
    }
}

#[test]
fn flag_reads_without_a_distinct_id_or_after_shutdown_ask_nobody() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(Config::new("phc_test", 10).flush_at(100));
    c.load_definitions(DEFS).unwrap();
    for id in ["", "   ", "\t\n"] {
        let ctx = ctx_of(id);
        assert_eq!(
            c.feature_flag(at(0), "on", &ctx, true).err(),
            Some(Inconclusive::UnknownFlag),
            "{id:?}"
        );
        assert_eq!(
            c.feature_flag_payload(at(0), "on", &ctx).err(),
            Some(Inconclusive::UnknownFlag)
        );
        assert_eq!(c.check_remote_read(&ctx), Err(RequestError::NoDistinctId));
        assert_eq!(
            c.flags_request(&ctx, Some(&["on"]), &mut buf),
            Err(RequestError::NoDistinctId)
        );
    }
    // No `$feature_flag_called`, nothing counted as invalid.
    assert_eq!((c.pending(), c.stats().invalid), (0, 0));
    let ctx = ctx_of("device-1");
    assert_eq!(c.check_remote_read(&ctx), Ok(()));
    assert!(c.feature_flag(at(0), "on", &ctx, true).is_ok());
    assert_eq!(c.pending(), 1, "one $feature_flag_called");
    c.shutdown();
    assert_eq!(c.check_remote_read(&ctx), Err(RequestError::ShutDown));
    assert_eq!(
        c.flags_request(&ctx, None, &mut buf),
        Err(RequestError::ShutDown)
    );
}

/// 1,000 boots with distinct seeds and identical monotonic timelines (the clock restarts at 0,
/// the same events at the same milliseconds): no uuid repeats. The control: two boots with the
/// same seed repeat every uuid, so the check can see a repeat.
#[test]
fn uuids_are_unique_across_a_thousand_boots_on_identical_timelines() {
    let timeline: Vec<u64> = (0..40u64).map(|i| 1_000 + (i / 4) * 250).collect();
    let boot = |seed: u64| -> Vec<String> {
        let mut res = Box::new(Resources::<16384, 1, 1, 16>::new());
        let mut c = Client::new(
            Config::new("phc_test", seed)
                .flush_at(1000)
                .overflow(OverflowPolicy::RejectNewest),
            &mut res,
        )
        .unwrap();
        timeline
            .iter()
            .map(|&t| {
                c.capture(at(t), "boot", "device-1", &EventOptions::new(), |_| Ok(()))
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let mut seen = BTreeSet::new();
    // Seeds as a device would make them: one device's boot counter mixed into its chip id,
    // and other devices with consecutive ids.
    for device in 0..10u64 {
        for boot_no in 0..100u64 {
            let seed = (0x0042_0000_0000 + device) << 20 | boot_no;
            for u in boot(seed) {
                assert_eq!(&u[14..15], "7");
                assert!(seen.insert(u.clone()), "uuid {u} repeated");
            }
        }
    }
    assert_eq!(seen.len(), 1000 * timeline.len());
    assert_eq!(boot(77), boot(77));
}

thread_local! {
    static REPORTS: std::cell::RefCell<Vec<BatchOutcome>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn record(o: &BatchOutcome) {
    REPORTS.with(|r| r.borrow_mut().push(*o));
}

/// Events the overflow policy evicts and events `opt_out_and_clear` discards are reported to
/// the batch callback too; evictions of the batch in flight only once it is settled, and not at
/// all when it was delivered.
#[test]
fn evictions_and_clears_are_reported_once() {
    let mut buf = vec![0u8; 4096];
    let mut res = Box::new(Resources::<1024, 1, 1, 16>::new());
    let mut c = Client::new(Config::new("phc_test", 11).flush_at(1000), &mut res).unwrap();
    c.set_on_batch(Some(record));
    let big = "x".repeat(150);
    let cap = |c: &mut Client<'_>, n: u64| {
        c.capture(at(n), "e", "d", &EventOptions::new(), |p| {
            p.prop("n", n)?.prop("pad", big.as_str())?;
            Ok(())
        })
        .unwrap();
    };
    for n in 0..3 {
        cap(&mut c, n);
    }
    c.flush();
    let tx = c.poll_transmit(at(3), &mut buf).unwrap();
    let RequestKind::Batch { records } = tx.kind else {
        panic!()
    };
    assert_eq!((records.start, records.end), (0, 3));
    // In flight: three more evict the three in flight.
    for n in 3..6 {
        cap(&mut c, n);
    }
    assert_eq!(c.stats().queue.evicted, 3);
    let seen = || REPORTS.with(|r| r.borrow().clone());
    assert!(seen().is_empty(), "in-flight evictions wait for the answer");
    c.handle_response(at(4), &answer(503, None), b"");
    let reports = seen();
    assert!(
        matches!(reports[0], BatchOutcome::Evicted { records } if (records.start, records.end) == (0, 3)),
        "{reports:?}"
    );
    assert_eq!(
        reports.len(),
        1,
        "nothing left of the failed batch to retry: {reports:?}"
    );
    c.opt_out_and_clear();
    let reports = seen();
    assert!(
        matches!(reports.last(), Some(BatchOutcome::Cleared { records }) if (records.start, records.end) == (3, 6)),
        "{reports:?}"
    );
    assert_eq!(c.stats().queue.evicted, 3);
}

/// `opt_out_and_clear` while a batch is in flight: when its answer comes, the batch's events
/// are delivered if the server took them (refused on a terminal answer), and everything else
/// queued at the clear goes. Every event is reported exactly once either way; events captured
/// after an `opt_in` meanwhile stay.
#[test]
fn clearing_during_a_flight_reports_every_event_once() {
    for status in [200, 503, 400] {
        REPORTS.with(|r| r.borrow_mut().clear());
        let mut buf = vec![0u8; 4096];
        let mut c = client(
            Config::new("phc_test", 12)
                .flush_at(1000)
                .max_batch_events(3),
        );
        c.set_on_batch(Some(record));
        for n in 0..6 {
            capture(&mut c, n, n);
        }
        c.flush();
        poll(&mut c, 10, &mut buf).unwrap(); // events 0..3 in flight
        c.opt_out_and_clear();
        c.opt_in();
        capture(&mut c, 15, 6);
        c.handle_response(at(20), &answer(status, None), b"");
        let mut fate: BTreeMap<u64, &'static str> = BTreeMap::new();
        for o in REPORTS.with(|r| r.borrow().clone()) {
            let (records, what) = match o {
                BatchOutcome::Delivered { records } => (records, "delivered"),
                BatchOutcome::Dropped { records, .. } => (records, "dropped"),
                BatchOutcome::Cleared { records } => (records, "cleared"),
                BatchOutcome::Evicted { records } => (records, "evicted"),
                _ => continue,
            };
            for seq in records.start..records.end {
                assert!(fate.insert(seq, what).is_none(), "{status}: {seq} twice");
            }
        }
        let expected_first = match status {
            200 => "delivered",
            400 => "dropped",
            _ => "cleared",
        };
        for seq in 0..6 {
            let want = if seq < 3 { expected_first } else { "cleared" };
            assert_eq!(fate.get(&seq), Some(&want), "status {status}, event {seq}");
        }
        assert!(!fate.contains_key(&6));
        // Only the event captured after opting in again is left, and it goes out.
        assert_eq!(c.pending(), 1);
        let (_, events) = poll(&mut c, 10 * MIN, &mut buf).unwrap();
        assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), [6]);
    }
}

/// A definitions poll that got no answer during an outage is retried as soon as the link is
/// back; a server's `Retry-After` outlives the reconnection.
#[test]
fn coming_back_online_retries_a_failed_poll_but_honours_retry_after() {
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("phc_test", 13)
            .flush_at(1)
            .secret_key("phx_secret"),
    );
    let (kind, _) = poll(&mut c, 0, &mut buf).unwrap();
    assert_eq!(kind, RequestKind::Definitions);
    c.handle_transport_error(at(10), TransportError::Connect);
    assert_eq!(c.poll_timeout(), Some(Instant::from_millis(10 + 5 * MIN)));
    c.set_online(false);
    c.set_online(true);
    let (kind, _) = poll(&mut c, 20, &mut buf).unwrap();
    assert_eq!(kind, RequestKind::Definitions, "retried at once");
    c.handle_response(at(30), &answer(304, None), b"");

    capture(&mut c, 40, 0);
    poll(&mut c, 40, &mut buf).unwrap();
    let ninety = Some(RetryAfter::Delay(Duration::from_secs(90)));
    c.handle_response(at(50), &answer(429, ninety), b"");
    c.set_online(false);
    c.set_online(true);
    assert_eq!(c.backoff_until(), Some(Instant::from_millis(50 + 90_000)));
    assert!(c.poll_transmit(at(60_000), &mut buf).is_none());
    assert!(poll(&mut c, 90_050, &mut buf).is_some());
}

/// `GiveUp::OlderThan` drops the expired events of a failed batch and retries the others: the
/// callback says so, once each.
#[test]
fn older_than_reports_the_dropped_and_the_retried_apart() {
    REPORTS.with(|r| r.borrow_mut().clear());
    let mut buf = vec![0u8; 4096];
    let mut c = client(
        Config::new("phc_test", 14)
            .flush_at(100)
            .give_up(GiveUp::OlderThan(Duration::from_secs(60))),
    );
    c.set_on_batch(Some(record));
    capture(&mut c, 0, 0);
    capture(&mut c, 50_000, 1);
    c.flush();
    poll(&mut c, 61_000, &mut buf).unwrap();
    c.handle_transport_error(at(61_000), TransportError::Timeout);
    let reports = REPORTS.with(|r| r.borrow().clone());
    assert!(
        matches!(reports[..], [
            BatchOutcome::Dropped { records: d, .. },
            BatchOutcome::Retrying { records: r, .. },
        ] if (d.start, d.end, r.start, r.end) == (0, 1, 1, 2)),
        "{reports:?}"
    );
}
