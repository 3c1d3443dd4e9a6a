//! Deterministic simulation of the client against a scripted server on a virtual clock.
//!
//! Thousands of seeded scenarios mix captures, flushes and every kind of server answer: 200,
//! 400, 401, 403, 408, 413, 429 with `Retry-After`, 500, 502, 503, 504, timeouts, resets,
//! truncated responses, and answers lost after the server stored the batch. In every scenario:
//!
//! - every captured event is delivered (acknowledged by a 2xx) at most once, and in the end is
//!   either delivered or counted as dropped: nothing is silently lost;
//! - an event keeps its uuid on every attempt;
//! - the counters add up;
//! - retries never come before the back-off (nor before `Retry-After`).

use std::collections::{BTreeMap, BTreeSet};

use posthog_embedded::capture::{EventOptions, OverflowPolicy};
use posthog_embedded::client::{
    Client, Config, GiveUp, RequestKind, ResponseInfo, RetryAfter, TransportError,
};
use posthog_embedded::resources::Resources;
use posthog_embedded::{CaptureError, Duration, Instant, Now};
use serde_json::Value;

/// The storage of one scenario's client.
type SimResources = Resources<4096, 4, 64, 1024>;

/// SplitMix64, as in the crate, for reproducible scenarios.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16, Option<u64>),
    Transport(TransportError),
    /// The server stored the batch but the answer never arrived.
    Lost,
}

#[derive(Default, Debug)]
struct Outcome {
    scenarios: usize,
    captured: usize,
    delivered: usize,
    dropped: usize,
    requests: usize,
    retries: usize,
    evicted_then_delivered: usize,
}

fn pick_answer(rng: &mut Rng, events: usize, limit_413: usize, healthy: bool) -> Answer {
    if healthy {
        return Answer::Status(200, None);
    }
    if events > limit_413 {
        return Answer::Status(413, None);
    }
    match rng.below(20) {
        0..=7 => Answer::Status(200, None),
        8 => Answer::Status(204, None),
        9 => Answer::Status(500, None),
        10 => Answer::Status(502, None),
        11 => Answer::Status(503, None),
        12 => Answer::Status(504, None),
        13 => Answer::Status(429, Some(rng.below(90))),
        14 => Answer::Status(408, None),
        15 => Answer::Transport(TransportError::Timeout),
        16 => Answer::Transport(if rng.below(2) == 0 {
            TransportError::Io
        } else {
            TransportError::BadResponse
        }),
        17 => Answer::Lost,
        _ => Answer::Status([400, 401, 403][rng.below(3) as usize], None),
    }
}

fn run_scenario(seed: u64, out: &mut Outcome) {
    let mut rng = Rng(seed);
    let policy = if rng.below(2) == 0 {
        OverflowPolicy::DropOldest
    } else {
        OverflowPolicy::RejectNewest
    };
    let config = Config::new("phc_sim", seed)
        .flush_at(1 + rng.below(12) as usize)
        .flush_interval(Duration::from_millis(500 + rng.below(20_000)))
        .max_batch_events(1 + rng.below(30) as usize)
        .give_up(match rng.below(4) {
            0 => GiveUp::Never,
            1 => GiveUp::OlderThan(Duration::from_millis(1 + rng.below(30_000))),
            n => GiveUp::AfterAttempts(n as u16),
        })
        .retry(
            Duration::from_millis(100 + rng.below(2000)),
            Duration::from_secs(30),
        )
        .overflow(policy);
    let mut res = Box::new(SimResources::new());
    let mut client = Client::new(config, &mut res).unwrap();
    let limit_413 = 1 + rng.below(40) as usize;
    let mut buf = vec![0u8; 2048 + rng.below(4096) as usize];
    let mut t = 0u64;
    let mut uuid_of: BTreeMap<u64, String> = BTreeMap::new();
    let mut captured: BTreeSet<u64> = BTreeSet::new();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut earliest_retry: Option<u64> = None;
    let steps = 200 + rng.below(300);
    let mut n = 0u64;
    for step in 0..steps + 10_000 {
        let healthy = step >= steps;
        if !healthy {
            // Captures.
            for _ in 0..rng.below(3) {
                let big = rng.below(50) == 0;
                let pad = "x".repeat(rng.below(if big { 3000 } else { 60 }) as usize);
                let now = Now::mono(Instant::from_millis(t));
                match client.capture(now, "tick", "device-1", &EventOptions::new(), |p| {
                    p.prop("n", n)?.prop("pad", pad.as_str())?;
                    Ok(())
                }) {
                    Ok(_) => {
                        captured.insert(n);
                    }
                    Err(CaptureError::QueueFull { .. } | CaptureError::TooLarge { .. }) => {}
                    Err(e) => panic!("seed {seed}: unexpected capture error {e}"),
                }
                n += 1;
            }
            if rng.below(10) == 0 {
                client.flush();
            }
        } else if client.pending() == 0 {
            break;
        } else {
            client.flush();
        }
        let now = Now::mono(Instant::from_millis(t));
        let answer = {
            let Some(tx) = client.poll_transmit(now, &mut buf) else {
                // Nothing to send: sleep until the client's deadline (or a bit, to capture more).
                let next = client.poll_timeout().map(Instant::as_millis);
                t = match next {
                    Some(d) if d > t => d.min(t + 1 + rng.below(3000)),
                    _ => t + 1 + rng.below(3000),
                };
                continue;
            };
            let RequestKind::Batch { records } = tx.kind else {
                panic!("unexpected request")
            };
            if let Some(e) = earliest_retry {
                assert!(
                    t >= e,
                    "seed {seed}: retried at {t} before the back-off ended at {e}"
                );
            }
            let body: Value = serde_json::from_slice(tx.body).expect("valid body");
            let events = body["batch"].as_array().unwrap();
            assert_eq!(events.len() as u64, records.len());
            let mut uuids = Vec::new();
            for e in events {
                let n = e["properties"]["n"].as_u64().unwrap();
                let u = e["uuid"].as_str().unwrap().to_owned();
                // Same event, same uuid, on every attempt.
                let prev = uuid_of.entry(n).or_insert_with(|| u.clone());
                assert_eq!(*prev, u, "seed {seed}: uuid of event {n} changed");
                // offset = now - capture time, never negative.
                assert!(e["offset"].as_u64().is_some());
                uuids.push(u);
            }
            out.requests += 1;
            (
                pick_answer(&mut rng, events.len(), limit_413, healthy),
                uuids,
            )
        };
        let (answer, uuids) = answer;
        // Events captured while the request is in flight (they may evict its records).
        if !healthy {
            for _ in 0..rng.below(3) {
                let now = Now::mono(Instant::from_millis(t));
                let big = rng.below(20) == 0;
                let pad = "y".repeat(rng.below(if big { 1500 } else { 60 }) as usize);
                match client.capture(now, "in-flight", "device-1", &EventOptions::new(), |p| {
                    p.prop("n", n)?.prop("pad", pad.as_str())?;
                    Ok(())
                }) {
                    Ok(_) => {
                        captured.insert(n);
                    }
                    Err(CaptureError::QueueFull { .. } | CaptureError::TooLarge { .. }) => {}
                    Err(e) => panic!("seed {seed}: unexpected capture error {e}"),
                }
                n += 1;
            }
        }
        t += 1 + rng.below(200);
        let now = Now::mono(Instant::from_millis(t));
        let retries_before = client.stats().retries;
        match answer {
            Answer::Status(status, retry_after) => {
                if (200..300).contains(&status) {
                    for u in &uuids {
                        assert!(
                            acked.insert(u.clone()),
                            "seed {seed}: event {u} acknowledged twice"
                        );
                    }
                }
                let info = ResponseInfo {
                    status,
                    retry_after: retry_after.map(|s| RetryAfter::Delay(Duration::from_secs(s))),
                    etag: None,
                };
                client.handle_response(now, &info, b"{}");
                if client.stats().retries > retries_before {
                    let min = retry_after.map_or(0, |s| s * 1000);
                    let at = client.backoff_until().unwrap().as_millis();
                    assert!(
                        at >= t + min,
                        "seed {seed}: Retry-After {min} ms not respected"
                    );
                    earliest_retry = Some(at);
                } else {
                    earliest_retry = None;
                }
            }
            Answer::Transport(e) => {
                client.handle_transport_error(now, e);
                earliest_retry = (client.stats().retries > retries_before)
                    .then(|| client.backoff_until().unwrap().as_millis());
            }
            Answer::Lost => {
                client.handle_transport_error(now, TransportError::Timeout);
                earliest_retry = (client.stats().retries > retries_before)
                    .then(|| client.backoff_until().unwrap().as_millis());
            }
        }
    }
    assert_eq!(
        client.pending(),
        0,
        "seed {seed}: events left after the healthy phase"
    );
    let s = client.stats();
    // Every captured event was delivered (acknowledged once) or counted as dropped.
    assert_eq!(s.captured as usize, captured.len(), "seed {seed}");
    assert_eq!(
        s.sent as usize,
        acked.len(),
        "seed {seed}: sent counter vs acknowledgements"
    );
    let dropped = (s.queue.evicted
        + s.queue.discarded_rejected
        + s.queue.discarded_gave_up
        + s.queue.discarded_too_large_for_body) as usize;
    assert_eq!(
        s.captured as usize + s.evicted_then_delivered as usize,
        s.sent as usize + dropped,
        "seed {seed}: {s:?}"
    );
    // Acknowledged events are captured ones, each with its own uuid.
    let acked_n: BTreeSet<u64> = uuid_of
        .iter()
        .filter(|(_, u)| acked.contains(*u))
        .map(|(n, _)| *n)
        .collect();
    assert!(acked_n.is_subset(&captured));
    assert_eq!(acked_n.len(), acked.len());
    out.scenarios += 1;
    out.captured += captured.len();
    out.delivered += acked.len();
    out.dropped += dropped - s.evicted_then_delivered as usize;
    out.evicted_then_delivered += s.evicted_then_delivered as usize;
    out.retries += s.retries as usize;
}

#[test]
fn every_event_is_delivered_once_or_counted_as_dropped() {
    let mut out = Outcome::default();
    for seed in 0..2000 {
        run_scenario(seed, &mut out);
    }
    println!(
        "client simulation: {} scenarios, {} events captured, {} delivered once ({} of them evicted \
         while in flight), {} counted as dropped, {} requests, {} retries; 0 lost, 0 duplicated",
        out.scenarios,
        out.captured,
        out.delivered,
        out.evicted_then_delivered,
        out.dropped,
        out.requests,
        out.retries
    );
    assert_eq!(out.captured, out.delivered + out.dropped);
}

/// Re-runs one scenario: `SEED=70 cargo test --test client sim::one_seed -- --ignored`.
#[test]
#[ignore]
fn one_seed() {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    run_scenario(seed, &mut Outcome::default());
}
