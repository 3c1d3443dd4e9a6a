//! The gateway (`serve --forward`): what a device sends to the local server reaches an
//! upstream standing in for PostHog (a scripted stub that records raw requests, or a second
//! local server), with the device's key, gzip, absolute times, its uuids and properties as
//! sent, through outages (retried until delivered) and with a bounded spool (counted drops).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posthog_embedded_devtools::forward::{ForwardConfig, ForwardStats, Forwarder};
use posthog_embedded_devtools::server::{LocalServer, ServerConfig};
use posthog_embedded_devtools::validate::{iso, TimeSource};
use serde_json::{json, Value};

use super::cli::{post, Serve};

/// One request the stub received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    gzip: bool,
    /// The body, decompressed.
    body: Value,
}

/// A scripted upstream: answers the statuses of `script` in order (then 200, or 503 while
/// `down` is set), every answer with `Connection: close`, and records what it got.
struct Stub {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    down: Arc<AtomicBool>,
}

impl Stub {
    fn start(script: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (s, d) = (Arc::clone(&seen), Arc::clone(&down));
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let status = if d.load(Ordering::SeqCst) {
                    503
                } else {
                    script.next().unwrap_or(200)
                };
                if let Some(req) = read_request(&conn) {
                    s.lock().unwrap().push(req);
                }
                let body = if status == 200 {
                    r#"{"status": 1}"#
                } else {
                    "{}"
                };
                let _ = (&conn).write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Self { addr, seen, down }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The uuids of every event it received (any request, any answer).
    fn uuids(&self) -> BTreeSet<String> {
        uuids_of(&self.events())
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The events of the batches it answered 200 to are not told apart here: every event of
    /// every request, in order.
    fn events(&self) -> Vec<Value> {
        self.seen()
            .iter()
            .flat_map(|s| s.body["batch"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// The uuids of `events`.
fn uuids_of(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .map(|e| e["uuid"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn read_request(conn: &TcpStream) -> Option<Seen> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let (mut len, mut gzip) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "content-encoding" => gzip = v.trim() == "gzip",
            _ => {}
        }
    }
    let mut raw = vec![0u8; len];
    r.read_exact(&mut raw).ok()?;
    let text = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .ok()?;
        out
    } else {
        raw
    };
    Some(Seen {
        path,
        gzip,
        body: serde_json::from_slice(&text).ok()?,
    })
}

/// A device's batch: `n` events `reading` with `offset`s (no wall clock), uuids
/// `…-8000-0000000000<i>`, and the device's own `$lib` / `$lib_version`.
fn device_batch(key: &str, first: usize, n: usize) -> String {
    let events: Vec<Value> = (first..first + n)
        .map(|i| {
            json!({
                "event": "reading",
                "distinct_id": "device-7",
                "uuid": uuid(i),
                "offset": 1_500 + i,
                "properties": {
                    "$lib": "posthog-embedded", "$lib_version": "0.0.9",
                    "sample": i, "temperature_c": 21.5,
                    "nested": {"list": [1, null, "é"]},
                    "padding": "x".repeat(120)
                }
            })
        })
        .collect();
    json!({"api_key": key, "batch": events}).to_string()
}

fn uuid(i: usize) -> String {
    format!("0190a3e1-7a3b-7c4d-8000-{i:012}")
}

/// A gateway relaying to `upstream`, with fast retries for tests.
fn gateway(upstream: &str, spool_bytes: usize) -> (LocalServer, Arc<Forwarder>) {
    let f = Arc::new(
        Forwarder::new(
            ForwardConfig::new(upstream)
                .spool_bytes(spool_bytes)
                .flush_interval(Duration::from_millis(20))
                .retry(Duration::from_millis(20), Duration::from_millis(100)),
        )
        .unwrap(),
    );
    let server = LocalServer::start(ServerConfig::default().forward(Arc::clone(&f))).unwrap();
    (server, f)
}

/// Polls `f`'s stats until `done` holds (never asserting a duration: the bound only keeps a
/// broken run from hanging).
fn wait_stats(f: &Forwarder, done: impl Fn(&ForwardStats) -> bool) -> ForwardStats {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let s = f.stats();
        if done(&s) || Instant::now() > until {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_gateway_relays_with_the_device_key_gzip_absolute_times_and_the_events_as_sent() {
    let stub = Stub::start(vec![]);
    let (gw, f) = gateway(&stub.url(), 1 << 20);
    let resp = post(
        &gw.addr().to_string(),
        "/batch/",
        &device_batch("phc_device_project", 0, 3),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let s = wait_stats(&f, |s| s.delivered == 3);
    assert_eq!(
        (s.accepted, s.delivered, s.dropped, s.refused),
        (3, 3, 0, 0),
        "{s}"
    );

    let seen = stub.seen();
    assert!(
        seen.iter().all(|r| r.gzip && r.path.starts_with("/batch")),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .all(|r| r.body["api_key"] == "phc_device_project"));
    let got = stub.events();
    let received = gw.events();
    assert_eq!(got.len(), 3);
    for (e, r) in got.iter().zip(&received) {
        assert_eq!(e["uuid"], r.event["uuid"], "the device's uuid");
        assert_eq!(e["event"], "reading");
        assert_eq!(e["distinct_id"], "device-7");
        // `offset` became the absolute time the gateway derived on receipt.
        assert!(e.get("offset").is_none());
        assert_eq!(e["timestamp"], iso(r.time));
        assert_eq!(
            r.time.as_millis(),
            r.received_at.as_millis() - r.event["offset"].as_u64().unwrap()
        );
        // Properties byte for byte, the device's `$lib_version` included; none added.
        assert_eq!(e["properties"], r.event["properties"]);
    }
}

#[test]
fn what_the_local_validation_rejects_is_never_relayed() {
    let stub = Stub::start(vec![]);
    let (gw, f) = gateway(&stub.url(), 1 << 20);
    // A uuid PostHog cannot parse rejects the whole request (400), as on PostHog.
    let mut bad: Value = serde_json::from_str(&device_batch("phc_v", 0, 2)).unwrap();
    bad["batch"][1]["uuid"] = json!("u-1");
    let resp = post(&gw.addr().to_string(), "/batch/", &bad.to_string());
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    // A good request afterwards is relayed, alone.
    assert!(post(
        &gw.addr().to_string(),
        "/batch/",
        &device_batch("phc_v", 5, 1)
    )
    .starts_with("HTTP/1.1 200"));
    let s = wait_stats(&f, |s| s.delivered == 1);
    assert_eq!((s.accepted, s.delivered), (1, 1), "{s}");
    let uuids: Vec<Value> = stub.events().iter().map(|e| e["uuid"].clone()).collect();
    assert_eq!(uuids, [json!(uuid(5))]);
}

#[test]
fn a_second_local_server_standing_in_for_posthog_gets_each_event_once_at_its_time() {
    let upstream = LocalServer::start(ServerConfig::default()).unwrap();
    let (gw, f) = gateway(&upstream.url(), 1 << 20);
    // The device retries its first request (same uuids): relayed once.
    for body in [
        device_batch("phc_a", 0, 4),
        device_batch("phc_a", 0, 4),
        device_batch("phc_b", 4, 2),
    ] {
        assert!(post(&gw.addr().to_string(), "/batch/", &body).starts_with("HTTP/1.1 200"));
    }
    let s = wait_stats(&f, |s| s.delivered == 6);
    assert_eq!(
        (s.projects, s.accepted, s.delivered, s.dropped),
        (2, 6, 6, 0),
        "{s}"
    );
    assert!(upstream.wait_for_events(6, Duration::from_secs(20)));
    let up = upstream.events();
    assert_eq!(up.len(), 6);
    let at_gateway = gw.events();
    for e in &up {
        assert!(e.problems.is_empty(), "{:?}", e.problems);
        assert!(!e.duplicate);
        let first = at_gateway
            .iter()
            .find(|g| g.event["uuid"] == e.event["uuid"])
            .unwrap();
        // The time the gateway derived, corrected (as for any SDK) by the gateway's
        // `sent_at`: later by at most the time between the two receipts.
        assert_eq!(e.time_source, TimeSource::TimestampSentAt);
        assert!(e.time >= first.time, "{:?} {:?}", e.time, first.time);
        assert!(
            e.time.as_millis() - first.time.as_millis()
                <= e.received_at.as_millis() - first.received_at.as_millis()
        );
    }
}

#[test]
fn an_outage_keeps_every_event_spooled_until_delivered() {
    // Three failed attempts (503, 502, 429), then the upstream is back.
    let stub = Stub::start(vec![503, 502, 429]);
    let (gw, f) = gateway(&stub.url(), 1 << 20);
    assert!(post(
        &gw.addr().to_string(),
        "/batch/",
        &device_batch("phc_x", 0, 5)
    )
    .starts_with("HTTP/1.1 200"));
    let s = wait_stats(&f, |s| s.delivered == 5);
    assert_eq!((s.delivered, s.dropped, s.pending), (5, 0, 0), "{s}");
    assert!(s.retries >= 3, "{s}");
    // Each attempt carried the same events; the last one was accepted.
    let seen = stub.seen();
    assert!(seen.len() >= 4);
    let last = uuids_of(seen.last().unwrap().body["batch"].as_array().unwrap());
    assert_eq!(last, (0..5).map(uuid).collect());
}

#[test]
fn a_full_spool_answers_503_and_takes_nothing_so_the_device_keeps_its_events() {
    let stub = Stub::start(vec![]);
    stub.down.store(true, Ordering::SeqCst);
    // About 4 KiB: room for a few requests of 5 events (~450 bytes each) during the outage.
    let (gw, f) = gateway(&stub.url(), 4096);
    let addr = gw.addr().to_string();
    let mut taken = 0;
    let refused = loop {
        let resp = post(&addr, "/batch/", &device_batch("phc_x", taken * 5, 5));
        if resp.starts_with("HTTP/1.1 503") {
            break resp;
        }
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        taken += 1;
        assert!(taken < 20, "the spool never filled");
    };
    assert!(taken >= 1);
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: "),
        "{refused}"
    );
    // Nothing of the refused request was taken: not counted, not recorded.
    assert_eq!(f.stats().accepted, taken as u64 * 5);
    assert_eq!(gw.total_events(), taken * 5);
    // The upstream comes back: the spool drains, and the device's resend is taken.
    stub.down.store(false, Ordering::SeqCst);
    let s = wait_stats(&f, |s| s.pending == 0 && s.delivered == taken as u64 * 5);
    assert_eq!((s.dropped, s.refused), (0, 0), "{s}");
    let resend = post(&addr, "/batch/", &device_batch("phc_x", taken * 5, 5));
    assert!(resend.starts_with("HTTP/1.1 200"), "{resend}");
    let total = (taken + 1) as u64 * 5;
    let s = wait_stats(&f, |s| s.delivered == total);
    assert_eq!(
        (s.accepted, s.delivered, s.dropped, s.pending),
        (total, total, 0, 0),
        "{s}"
    );
    assert_eq!(stub.uuids(), (0..(taken + 1) * 5).map(uuid).collect());
}

#[test]
fn every_event_is_counted_once_refused_dropped_or_delivered() {
    // An event larger than the whole spool can never be kept: taken (it would never fit, so
    // no 503 could help), refused by the relay, counted once.
    let stub = Stub::start(vec![]);
    let (gw, f) = gateway(&stub.url(), 2048);
    let mut big: Value = serde_json::from_str(&device_batch("phc_z", 0, 2)).unwrap();
    big["batch"][0]["properties"]["padding"] = json!("x".repeat(4000));
    let resp = post(&gw.addr().to_string(), "/batch/", &big.to_string());
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let s = wait_stats(&f, |s| s.delivered == 1);
    assert_eq!(
        (s.accepted, s.refused, s.delivered, s.dropped, s.pending),
        (2, 1, 1, 0, 0),
        "{s}"
    );

    // A batch the upstream refuses for good (400) is dropped, counted, not retried forever.
    let refusing = Stub::start(vec![400]);
    let (gw, f) = gateway(&refusing.url(), 1 << 20);
    assert!(post(
        &gw.addr().to_string(),
        "/batch/",
        &device_batch("phc_y", 0, 2)
    )
    .starts_with("HTTP/1.1 200"));
    let s = wait_stats(&f, |s| s.dropped == 2);
    assert_eq!(
        (s.accepted, s.delivered, s.dropped, s.refused, s.pending),
        (2, 0, 2, 0, 0),
        "{s}"
    );
}

#[test]
fn serve_forward_relays_from_the_command_line() {
    let stub = Stub::start(vec![]);
    let serve = Serve::start(&["--forward", &stub.url()]);
    assert!(
        serve.wait_log("forwarding accepted events to http://"),
        "{}",
        serve.log()
    );
    assert!(
        post(serve.addr(), "/batch/", &device_batch("phc_cli", 0, 2)).starts_with("HTTP/1.1 200")
    );
    // The totals line, printed when they change.
    assert!(
        serve.wait_log("forwarded 2 of 2 events (0 pending, 0 dropped"),
        "{}",
        serve.log()
    );
    assert_eq!(stub.events().len(), 2);
}

#[test]
fn a_stopping_gateway_delivers_its_spool_before_it_exits() {
    let stub = Stub::start(vec![]);
    stub.down.store(true, Ordering::SeqCst);
    let mut serve = Serve::start(&["--quiet", "--forward", &stub.url()]);
    // Taken while the upstream is down: spooled.
    assert!(
        post(serve.addr(), "/batch/", &device_batch("phc_stop", 0, 2)).starts_with("HTTP/1.1 200")
    );
    // SIGTERM, as a service manager stops it; the upstream comes back while it drains.
    serve.terminate();
    std::thread::sleep(Duration::from_millis(300));
    stub.down.store(false, Ordering::SeqCst);
    let status = serve.wait_exit();
    assert!(status.success(), "{status:?}: {}", serve.log());
    assert!(
        serve.wait_log("stopping: delivering the spool"),
        "{}",
        serve.log()
    );
    assert!(
        serve.wait_log("forwarded 2 of 2 events (0 pending, 0 dropped"),
        "{}",
        serve.log()
    );
    assert_eq!(stub.uuids(), (0..2).map(uuid).collect());
}

#[test]
fn keys_beyond_the_limit_are_refused_and_counted() {
    use posthog_embedded_devtools::forward::MAX_PROJECTS;
    let stub = Stub::start(vec![]);
    let (gw, f) = gateway(&stub.url(), 4096);
    let addr = gw.addr().to_string();
    for k in 0..=MAX_PROJECTS {
        let body = device_batch(&format!("phc_key_{k}"), k, 1);
        assert!(post(&addr, "/batch/", &body).starts_with("HTTP/1.1 200"));
    }
    let n = MAX_PROJECTS as u64;
    let s = wait_stats(&f, |s| s.delivered == n);
    assert_eq!(s.projects, MAX_PROJECTS, "{s}");
    assert_eq!(
        (s.accepted, s.delivered, s.refused, s.pending),
        (n + 1, n, 1, 0),
        "{s}"
    );
    assert!(
        !stub.uuids().contains(&uuid(MAX_PROJECTS)),
        "the key past the limit is not relayed"
    );
}
