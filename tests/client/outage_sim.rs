//! Outages, deterministically: 10,000 seeded scenarios of the core client against a scripted
//! PostHog on a virtual clock.
//!
//! Each scenario strings together healthy stretches and outages of every kind, from a second to
//! 24 hours of virtual time: the link down (connections refused, timeouts, resets, truncated
//! answers), 5xx storms, `429` with `Retry-After` up to an hour, `408`, answers lost after the
//! server stored the batch, and now and then a terminal `400` or a `413`. Events are captured
//! throughout, also while a request is in flight and through outages long enough to overflow the
//! queue; some scenarios have a wall clock, and some tell the client about the link with
//! `set_online` (sometimes late). After the script the server is healthy until the queue drains.
//!
//! Invariants, checked in every scenario:
//! - the batch callback reports every captured event exactly once: delivered, evicted by the
//!   overflow policy, refused by a terminal answer, or cleared when the user opted out (some
//!   scenarios do, now and then); never dropped by retrying (the default give-up policy is
//!   never), and never retried after its final report;
//! - everything the client reports delivered is on the server, with the uuid it got at capture;
//!   every copy the server got (lost answers make duplicates, which PostHog removes by uuid)
//!   carries that uuid;
//! - the server-side time of every copy (arrival minus `offset`, or `timestamp` corrected by
//!   `sent_at`) equals the event's capture time, to the millisecond;
//! - no back-off exceeds its cap (the larger of `retry_cap` and `retry_after_cap`), every
//!   `Retry-After` up to its cap is respected, and no request starts while the client is told
//!   it is offline;
//! - the counters add up.

use std::cell::RefCell;
use std::collections::BTreeMap;

use posthog_embedded::capture::{EventOptions, OverflowPolicy, SeqRange};
use posthog_embedded::client::{
    BatchOutcome, Client, Config, DeliveryError, RequestKind, ResponseInfo, RetryAfter,
    TransportError,
};
use posthog_embedded::resources::Resources;
use posthog_embedded::{CaptureError, Duration, Instant, Now, UnixMillis};

/// The storage of one scenario's client.
type SimResources = Resources<4096, 1, 1, 16>;

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
/// Wall clock of the scenarios that have one: mono 0 is this instant.
const WALL_BASE: u64 = 1_800_000_000_000;

/// SplitMix64, for reproducible scenarios.
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
    /// Log-uniform in `lo..=hi`.
    fn log_between(&mut self, lo: u64, hi: u64) -> u64 {
        let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((l + (h - l) * x).exp() as u64).clamp(lo, hi)
    }
}

/// What the server does during a stretch of the script.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Healthy,
    /// No HTTP answer at all; the application may know (`hint`).
    LinkDown {
        hint: bool,
    },
    /// 500, 502, 503, 504 in turn.
    Storm,
    /// `429` with this `Retry-After` (seconds).
    RateLimited(u64),
    /// 408.
    RequestTimeout,
    /// The server stores each batch, but its answer never arrives.
    LostAnswers,
}

#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16, Option<u64>),
    NoAnswer(TransportError),
}

thread_local! {
    static OUTCOMES: RefCell<Vec<BatchOutcome>> = const { RefCell::new(Vec::new()) };
}

fn record_outcome(o: &BatchOutcome) {
    OUTCOMES.with(|v| v.borrow_mut().push(*o));
}

#[derive(Default, Debug)]
struct Totals {
    scenarios: u64,
    captured: u64,
    delivered: u64,
    evicted: u64,
    terminal: u64,
    cleared: u64,
    requests: u64,
    failed_attempts: u64,
    copies_on_server: u64,
    longest_outage_ms: u64,
    virtual_ms: u64,
    /// Scenarios whose queue never overflowed, and the longest outage among them.
    no_eviction: u64,
    no_eviction_outage_ms: u64,
}

/// What the batch callback reported for an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Delivered,
    Refused,
    Evicted,
    Cleared,
}

/// One captured event, as the test knows it.
struct Captured {
    uuid: String,
    /// Capture time: mono ms, and the wall clock when the scenario has one.
    mono: u64,
    wall: Option<u64>,
}

/// An event as the server reads it: `n`, uuid, `offset`, `timestamp`.
type Received = (u64, String, Option<u64>, Option<String>);

/// Pulls each event of a body out; `sent_at` separately.
fn parse_body(body: &[u8]) -> (Vec<Received>, Option<String>) {
    let text = std::str::from_utf8(body).unwrap();
    let v: serde_json::Value = serde_json::from_str(text).expect("valid JSON body");
    let events = v["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["properties"]["n"].as_u64().unwrap(),
                e["uuid"].as_str().unwrap().to_owned(),
                e["offset"].as_u64(),
                e["timestamp"].as_str().map(str::to_owned),
            )
        })
        .collect();
    (events, v["sent_at"].as_str().map(str::to_owned))
}

fn run_scenario(seed: u64, totals: &mut Totals) {
    let mut rng = Rng(seed);
    let policy = if rng.below(3) == 0 {
        OverflowPolicy::RejectNewest
    } else {
        OverflowPolicy::DropOldest
    };
    let base = 100 + rng.below(5 * SEC);
    let cap = match rng.below(3) {
        0 => 5 * MIN,
        1 => base + rng.below(2 * MIN),
        _ => base + rng.below(20 * MIN),
    };
    let retry_after_cap = match rng.below(3) {
        0 => 5 * MIN,
        _ => 1 + rng.below(15 * MIN),
    };
    let config = Config::new("phc_sim", seed)
        .flush_at(1 + rng.below(20) as usize)
        .flush_interval(Duration::from_millis(200 + rng.below(60 * SEC)))
        .max_batch_events(1 + rng.below(30) as usize)
        .retry(Duration::from_millis(base), Duration::from_millis(cap))
        .retry_after_cap(Duration::from_millis(retry_after_cap))
        .overflow(policy);
    let backoff_bound = cap.max(retry_after_cap);
    let mut res = Box::new(SimResources::new());
    let mut c = Client::new(config, &mut res).unwrap();
    c.set_on_batch(Some(record_outcome));
    OUTCOMES.with(|v| v.borrow_mut().clear());
    let has_wall = rng.below(4) == 0;
    let now_at = |t: u64| {
        if has_wall {
            Now::with_wall(
                Instant::from_millis(t),
                UnixMillis::from_millis(WALL_BASE + t),
            )
        } else {
            Now::mono(Instant::from_millis(t))
        }
    };
    let limit_413 = if rng.below(5) == 0 {
        1 + rng.below(20) as usize
    } else {
        usize::MAX
    };
    let hints = rng.below(2) == 0;
    let clears = rng.below(4) == 0;
    let mut opted_out_until: Option<u64> = None;
    let hint_lag = if rng.below(3) == 0 {
        rng.below(2 * MIN)
    } else {
        0
    };

    // The script: stretches of (mode, end time).
    let mut script: Vec<(Mode, u64)> = Vec::new();
    let mut longest = 0;
    let mut t_end = 0;
    for _ in 0..1 + rng.below(4) {
        t_end += rng.log_between(SEC, 30 * MIN);
        script.push((Mode::Healthy, t_end));
        let len = rng.log_between(SEC, 24 * HOUR);
        longest = longest.max(len);
        t_end += len;
        let mode = match rng.below(6) {
            0 | 1 => Mode::LinkDown {
                hint: hints && rng.below(4) != 0,
            },
            2 => Mode::Storm,
            3 => Mode::RateLimited(rng.log_between(1, 3600)),
            4 => Mode::RequestTimeout,
            _ => Mode::LostAnswers,
        };
        script.push((mode, t_end));
    }
    let mode_at = |t: u64| {
        script
            .iter()
            .find(|(_, end)| t < *end)
            .map_or(Mode::Healthy, |(m, _)| *m)
    };
    // Captures: a mean interval such that a scenario holds a handful to a few thousand events
    // (a handful fits the queue through any outage; thousands overflow it).
    let mean_gap = (t_end / (4 + rng.below(400))).max(50);
    let mut next_capture = rng.below(mean_gap);

    let mut buf = vec![0u8; 1024 + rng.below(4096) as usize];
    let mut captured: BTreeMap<u64, Captured> = BTreeMap::new();
    let mut server: BTreeMap<u64, u64> = BTreeMap::new(); // seq -> copies
    let mut n: u64 = 0;
    let mut t: u64 = 0;
    let mut online_hint = true;
    let mut earliest_retry: Option<u64> = None;
    let mut storm_i = 0u64;
    let drain_limit = t_end + 2 * backoff_bound + 2 * HOUR;

    let capture = |c: &mut Client<'_>,
                   t: u64,
                   n: &mut u64,
                   captured: &mut BTreeMap<u64, Captured>,
                   rng: &mut Rng| {
        let big = rng.below(60) == 0;
        let pad = "x".repeat(rng.below(if big { 4000 } else { 80 }) as usize);
        let now = now_at(t);
        match c.capture(now, "reading", "device-1", &EventOptions::new(), |p| {
            p.prop("n", *n)?.prop("pad", pad.as_str())?;
            Ok(())
        }) {
            Ok(uuid) => {
                let seq = c.last_seq().unwrap();
                assert_eq!(seq, *n, "seed {seed}: seq follows accepted captures");
                captured.insert(
                    seq,
                    Captured {
                        uuid: uuid.to_string(),
                        mono: t,
                        wall: has_wall.then_some(WALL_BASE + t),
                    },
                );
                *n += 1;
            }
            Err(
                CaptureError::QueueFull { .. }
                | CaptureError::TooLarge { .. }
                | CaptureError::Disabled,
            ) => {}
            Err(e) => panic!("seed {seed}: unexpected capture error {e}"),
        }
    };

    loop {
        // The application's connectivity hint follows the link, `hint_lag` late.
        if hints {
            let down = matches!(
                mode_at(t.saturating_sub(hint_lag)),
                Mode::LinkDown { hint: true }
            );
            if down == online_hint {
                online_hint = !down;
                c.set_online(online_hint);
                if online_hint {
                    earliest_retry = None;
                }
            }
        }
        if opted_out_until.is_some_and(|u| t >= u) {
            c.opt_in();
            opted_out_until = None;
        }
        if t < t_end && t >= next_capture {
            if clears && opted_out_until.is_none() && rng.below(300) == 0 {
                // The user withdraws consent, and gives it again a while later.
                c.opt_out_and_clear();
                opted_out_until = Some(t + rng.below(10 * MIN));
            }
            capture(&mut c, t, &mut n, &mut captured, &mut rng);
            next_capture = t + 1 + rng.below(2 * mean_gap);
            continue;
        }
        if t >= t_end && c.pending() == 0 {
            break;
        }
        assert!(
            t < drain_limit,
            "seed {seed}: {} events still queued at {t} ms (script ends at {t_end})",
            c.pending()
        );
        if t >= t_end {
            // The drain: the application flushes what is left.
            c.flush();
        }
        let Some(tx) = c.poll_transmit(now_at(t), &mut buf) else {
            // Sleep until the client's deadline, the next capture, or the next hint change.
            let mut wake = c.poll_timeout().map_or(u64::MAX, Instant::as_millis);
            if t < t_end {
                wake = wake.min(next_capture);
            }
            if hints {
                if let Some((_, end)) = script.iter().find(|(_, end)| t + hint_lag < *end) {
                    wake = wake.min(end + hint_lag);
                }
            }
            if wake == u64::MAX {
                wake = t + MIN;
            }
            t = wake.max(t + 1);
            continue;
        };
        assert!(online_hint, "seed {seed}: a request while offline");
        let RequestKind::Batch { records } = tx.kind else {
            panic!("seed {seed}: unexpected request {:?}", tx.kind)
        };
        if let Some(e) = earliest_retry {
            assert!(
                t >= e,
                "seed {seed}: retried at {t}, before the back-off ended at {e}"
            );
        }
        totals.requests += 1;
        let events_in = records.len() as usize;
        let mode = mode_at(t);
        let stored = matches!(mode, Mode::Healthy | Mode::LostAnswers)
            && events_in <= limit_413
            && rng.below(200) != 0;
        let reply = match mode {
            _ if events_in > limit_413 => Reply::Status(413, None),
            Mode::Healthy if !stored => Reply::Status(400, None),
            Mode::Healthy => Reply::Status([200, 200, 200, 204][rng.below(4) as usize], None),
            Mode::LinkDown { .. } => Reply::NoAnswer(
                [
                    TransportError::Connect,
                    TransportError::Timeout,
                    TransportError::Io,
                    TransportError::BadResponse,
                ][rng.below(4) as usize],
            ),
            Mode::Storm => {
                storm_i += 1;
                Reply::Status([500, 502, 503, 504][(storm_i % 4) as usize], None)
            }
            Mode::RateLimited(s) => Reply::Status(429, Some(s)),
            Mode::RequestTimeout => Reply::Status(408, None),
            Mode::LostAnswers if !stored => Reply::Status(400, None),
            Mode::LostAnswers => Reply::NoAnswer(TransportError::Timeout),
        };
        if stored {
            let (events, sent_at) = parse_body(tx.body);
            assert_eq!(events.len(), events_in);
            for (i, (en, uuid, offset, ts)) in events.into_iter().enumerate() {
                let seq = records.start + i as u64;
                let cap = &captured[&seq];
                assert_eq!(en, seq, "seed {seed}: records in order");
                assert_eq!(uuid, cap.uuid, "seed {seed}: event {seq} changed uuid");
                // The server's time of the event.
                let server_time = match (offset, ts, &sent_at) {
                    (Some(off), None, _) => t - off,
                    (None, Some(ts), Some(sent)) => {
                        let ts = UnixMillis::parse_rfc3339(&ts).unwrap().as_millis();
                        let sent = UnixMillis::parse_rfc3339(sent).unwrap().as_millis();
                        (WALL_BASE + t + ts - sent) - WALL_BASE
                    }
                    other => panic!("seed {seed}: event time fields {other:?}"),
                };
                assert_eq!(
                    server_time, cap.mono,
                    "seed {seed}: event {seq} lands at {server_time}, captured at {}",
                    cap.mono
                );
                if let Some(w) = cap.wall {
                    assert!(offset.is_none(), "seed {seed}: wall clock known, no offset");
                    assert_eq!(w, WALL_BASE + cap.mono);
                }
                *server.entry(seq).or_default() += 1;
                totals.copies_on_server += 1;
            }
        }
        // Captures while the request is in flight.
        let latency = match reply {
            Reply::NoAnswer(TransportError::Timeout) => 10 * SEC,
            _ => 5 + rng.below(800),
        };
        let answer_at = t + latency;
        while t < t_end && next_capture < answer_at {
            capture(&mut c, next_capture, &mut n, &mut captured, &mut rng);
            next_capture += 1 + rng.below(2 * mean_gap);
        }
        t = answer_at;
        let retries_before = c.stats().retries;
        let (failed, retry_after) = match reply {
            Reply::Status(status, ra) => {
                let info = ResponseInfo {
                    status,
                    retry_after: ra.map(|s| RetryAfter::Delay(Duration::from_secs(s))),
                    etag: None,
                };
                c.handle_response(now_at(t), &info, b"");
                (matches!(status, 408 | 429 | 500..=599), ra)
            }
            Reply::NoAnswer(e) => {
                c.handle_transport_error(now_at(t), e);
                (true, None)
            }
        };
        if failed {
            totals.failed_attempts += 1;
            // Retried, unless the overflow policy evicted the whole batch meanwhile.
            let all_evicted = c.queue().front_seq() >= records.end;
            assert!(
                c.stats().retries > retries_before || all_evicted,
                "seed {seed}: a failure not retried"
            );
            let until = c.backoff_until().unwrap().as_millis();
            let delay = until - t;
            assert!(
                delay <= backoff_bound,
                "seed {seed}: back-off {delay} ms above its cap {backoff_bound} ms"
            );
            let min = retry_after.map_or(0, |s| (s * SEC).min(retry_after_cap));
            assert!(
                delay >= min,
                "seed {seed}: Retry-After {min} ms not respected"
            );
            earliest_retry = Some(until);
        } else {
            earliest_retry = None;
        }
    }

    // Every event accounted for exactly once.
    let outcomes = OUTCOMES.with(|v| std::mem::take(&mut *v.borrow_mut()));
    let mut fate: BTreeMap<u64, Fate> = BTreeMap::new();
    for o in &outcomes {
        let (records, fate_of): (SeqRange, Fate) = match *o {
            BatchOutcome::Delivered { records } => (records, Fate::Delivered),
            BatchOutcome::Evicted { records } => {
                assert_eq!(policy, OverflowPolicy::DropOldest, "seed {seed}");
                (records, Fate::Evicted)
            }
            BatchOutcome::Dropped { records, error } => {
                assert!(
                    matches!(
                        error,
                        DeliveryError::Status(400 | 413) | DeliveryError::Build(_)
                    ),
                    "seed {seed}: events {records:?} dropped by {error:?}: only terminal answers drop"
                );
                (records, Fate::Refused)
            }
            BatchOutcome::Cleared { records } => (records, Fate::Cleared),
            BatchOutcome::Retrying { records, error, .. } => {
                for seq in records.start..records.end {
                    assert!(
                        !fate.contains_key(&seq),
                        "seed {seed}: event {seq} retried after its final report"
                    );
                }
                assert!(
                    matches!(
                        error,
                        DeliveryError::Transport(_) | DeliveryError::Status(408 | 429 | 500..=599)
                    ),
                    "seed {seed}: retrying after {error:?}"
                );
                continue;
            }
            _ => continue,
        };
        for seq in records.start..records.end {
            assert!(
                fate.insert(seq, fate_of).is_none(),
                "seed {seed}: event {seq} reported twice"
            );
        }
    }
    let s = c.stats();
    assert_eq!(
        s.queue.discarded_gave_up, 0,
        "seed {seed}: dropped by retrying"
    );
    assert_eq!(s.captured as u64, captured.len() as u64, "seed {seed}");
    let mut delivered = 0;
    let mut terminal = 0;
    let mut evicted = 0;
    let mut cleared = 0;
    for (seq, cap) in &captured {
        match fate.get(seq) {
            Some(Fate::Delivered) => {
                delivered += 1;
                assert!(
                    server.contains_key(seq),
                    "seed {seed}: event {seq} ({}) reported delivered, not on the server",
                    cap.uuid
                );
            }
            Some(Fate::Refused) => terminal += 1,
            Some(Fate::Evicted) => evicted += 1,
            Some(Fate::Cleared) => cleared += 1,
            None => panic!("seed {seed}: event {seq} never reported"),
        }
    }
    assert_eq!(
        fate.len(),
        captured.len(),
        "seed {seed}: reports of unknown events"
    );
    // Every drop is counted. (A refused batch may name events the queue had evicted while it
    // was in flight: compare the sums.)
    assert_eq!(
        evicted + terminal + cleared,
        u64::from(s.queue.evicted) - u64::from(s.evicted_then_delivered)
            + u64::from(s.queue.discarded_rejected)
            + u64::from(s.queue.discarded_too_large_for_body),
        "seed {seed}: {s:?}"
    );
    if policy == OverflowPolicy::RejectNewest {
        assert_eq!(s.queue.evicted, 0);
    }
    assert_eq!(u64::from(s.sent), delivered, "seed {seed}");
    // Copies on the server beyond one per event come only from lost answers, same uuid.
    for (seq, copies) in &server {
        assert!(*copies >= 1 && captured.contains_key(seq));
    }
    totals.scenarios += 1;
    if evicted == 0 {
        totals.no_eviction += 1;
        totals.no_eviction_outage_ms = totals.no_eviction_outage_ms.max(longest);
    }
    totals.captured += captured.len() as u64;
    totals.delivered += delivered;
    totals.evicted += evicted;
    totals.terminal += terminal;
    totals.cleared += cleared;
    totals.virtual_ms += t;
    totals.longest_outage_ms = totals.longest_outage_ms.max(longest);
}

fn run_range(seeds: std::ops::Range<u64>) -> Totals {
    let mut totals = Totals::default();
    for seed in seeds {
        run_scenario(seed, &mut totals);
    }
    totals
}

fn report(name: &str, t: &Totals) {
    println!(
        "outage simulation {name}: {} scenarios, {:.0} h of virtual time, longest outage {:.1} h; \
         {} events captured: {} delivered once, {} evicted by the overflow policy, {} refused by \
         a terminal answer, {} cleared by opting out, 0 dropped by retrying; {} requests, {} failed attempts, {} copies on \
         the server; {} scenarios never overflowed the queue (longest outage among them {:.1} h) \
         and delivered every event neither refused nor cleared",
        t.scenarios,
        t.virtual_ms as f64 / HOUR as f64,
        t.longest_outage_ms as f64 / HOUR as f64,
        t.captured,
        t.delivered,
        t.evicted,
        t.terminal,
        t.cleared,
        t.requests,
        t.failed_attempts,
        t.copies_on_server,
        t.no_eviction,
        t.no_eviction_outage_ms as f64 / HOUR as f64,
    );
    assert_eq!(t.captured, t.delivered + t.evicted + t.terminal + t.cleared);
}

// Four tests of 2,500 scenarios each, so the test harness spreads them over the cores.
#[test]
fn outages_lose_nothing_seeds_0_to_2500() {
    let t = run_range(0..2500);
    report("0..2500", &t);
    assert_eq!(t.scenarios, 2500);
}

#[test]
fn outages_lose_nothing_seeds_2500_to_5000() {
    let t = run_range(2500..5000);
    report("2500..5000", &t);
    assert_eq!(t.scenarios, 2500);
}

#[test]
fn outages_lose_nothing_seeds_5000_to_7500() {
    let t = run_range(5000..7500);
    report("5000..7500", &t);
    assert_eq!(t.scenarios, 2500);
}

#[test]
fn outages_lose_nothing_seeds_7500_to_10000() {
    let t = run_range(7500..10_000);
    report("7500..10000", &t);
    assert_eq!(t.scenarios, 2500);
    assert!(
        t.longest_outage_ms > 20 * HOUR,
        "the scenarios reach day-long outages"
    );
}

/// Re-runs one scenario: `SEED=70 cargo test --test client outage_sim::one_seed -- --ignored`.
#[test]
#[ignore]
fn one_seed() {
    let seed: u64 = std::env::var("SEED").unwrap().parse().unwrap();
    let mut t = Totals::default();
    run_scenario(seed, &mut t);
    report("one seed", &t);
}
