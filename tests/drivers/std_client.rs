//! The std driver against real loopback servers (plain HTTP/1.1 and HTTPS with a CA generated
//! at test time). No external network; every server stops by itself.
//!
//! No test asserts how long anything took. Schedules (flush interval, back-off, `Retry-After`,
//! polling, the `/flags` retry delay) are checked on a [`ManualClock`]: nothing happens before
//! the clock is moved past a deadline, and it happens once it is. Real time appears only as
//! lower bounds that hold by construction (a real-time timeout did run out), and as liveness
//! guards ([`SETTLE`]) that turn a hang into a failure.
#![cfg(feature = "std")]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use posthog_embedded::adapters::std::{
    ManualClock, Response, StdClient, StdConfig, StdError, UreqTransport,
};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{
    Client, Config, ConfigError, DeliveryError, RetryAfter, TransportError,
};
use posthog_embedded::flags::{EvalContext, FlagValue, PropertyValue};
use posthog_embedded::resources::Resources;
use posthog_embedded::{CaptureError, Instant as CoreInstant, Now, UnixMillis};

const API_KEY: &str = "phc_std_driver_test";
const SECRET: &str = "phs_std_driver_secret";

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 server: one request per connection, `Connection: close`, scripted answers.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, gunzipped when `Content-Encoding: gzip`.
    fn json(&self) -> serde_json::Value {
        let raw = if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("gzip body");
            out
        } else {
            self.body.clone()
        };
        serde_json::from_slice(&raw).expect("JSON body")
    }
}

struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn ok() -> Self {
        Self::status(200).body(br#"{"status":1}"#)
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }
}

type Handler = Box<dyn FnMut(&Req) -> Resp + Send>;

/// Turns an accepted TCP stream into the stream requests are read from (plain or TLS).
type Wrap = Arc<dyn Fn(TcpStream) -> Option<Box<dyn ReadWrite>> + Send + Sync>;

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A loopback server. Stops when dropped, and by itself after `LIFETIME`.
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const LIFETIME: Duration = Duration::from_secs(30);

impl Server {
    fn start(handler: impl FnMut(&Req) -> Resp + Send + 'static) -> Self {
        Self::start_with(Box::new(handler), Arc::new(|s| Some(Box::new(s) as _)))
    }

    fn start_with(mut handler: Handler, wrap: Wrap) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let born = Instant::now();
            while !stopped.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        tcp.set_nonblocking(false).unwrap();
                        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        tcp.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                        if let Some(mut stream) = wrap(tcp) {
                            // Failed handshakes and broken clients are just skipped.
                            if let Ok(req) = read_request(&mut stream) {
                                let resp = handler(&req);
                                reqs.lock().unwrap().push(req);
                                let _ = write_response(&mut stream, &resp);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => break,
                }
            }
        });
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut dyn ReadWrite) -> io::Result<Req> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    if method.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut headers = Vec::new();
    for _ in 0..100 {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Req {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

fn write_response(stream: &mut dyn ReadWrite, resp: &Resp) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        resp.body.len()
    );
    for (n, v) in &resp.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    stream.write_all(&resp.body)?;
    stream.flush()
}

fn config(server: &Server) -> StdConfig {
    StdConfig::new(API_KEY, 0x5eed)
        .host(server.url())
        .proxy_from_env(false)
        .flush_at(100)
        .flush_interval(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(3))
}

/// How long a liveness wait gives the background thread (or a blocked call) to get somewhere
/// before the test fails instead of hanging. Never a measure of speed: a passing test waits only
/// as long as it takes.
const SETTLE: Duration = Duration::from_secs(10);

/// A timeout longer than any test run: a call given it that returns did not wait it out.
const FOREVER: Duration = Duration::from_secs(3600);

/// Wall time of [`manual_clock`] at its monotonic zero: 2027-01-15T08:00:00Z.
const T0: u64 = 1_800_000_000;

/// A stopped clock at monotonic zero and wall time [`T0`].
fn manual_clock() -> ManualClock {
    ManualClock::starting_at(Now::with_wall(CoreInstant::ZERO, UnixMillis::from_secs(T0)))
}

/// The wall time `ms` after [`T0`], as a request record carries it.
fn at_ms(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_millis(ms)
}

/// Runs `f` on its own thread and returns its result: fails (instead of hanging) if it is still
/// blocked after [`SETTLE`], for instance waiting out a timeout it should not wait, or a
/// [`ManualClock`] nobody moves.
fn returns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(SETTLE).expect("the call is still blocked")
}

/// The next deadline of the client's core, on its clock.
fn next_deadline(client: &StdClient) -> Option<CoreInstant> {
    client.with_client(|c| c.poll_timeout())
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

fn event_names(batch: &serde_json::Value) -> Vec<String> {
    batch["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Capture and flush
// ---------------------------------------------------------------------------------------------

#[test]
fn capture_and_flush_deliver_one_batch() {
    let server = Server::start(|_| Resp::ok());
    let client = Arc::new(StdClient::new(config(&server)).unwrap());

    let first = client
        .capture("First", "user-123", |p| {
            p.prop("plan", "pro")?.prop("seats", 3u32)?;
            Ok(())
        })
        .unwrap();
    let second = client.capture("Second", "user-123", |_| Ok(())).unwrap();
    let id = client
        .identify("user-123", |person| {
            person.set(|p| {
                p.prop("email", "u@example.com")?;
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
    // Below flush_at and inside the interval: nothing is sent on its own.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(server.count(), 0);

    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (3, 0));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/batch/")
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some(posthog_embedded::USER_AGENT));
    assert_eq!(req.header("content-encoding"), None);
    assert_eq!(req.header("authorization"), None);

    let json = req.json();
    assert_eq!(json["api_key"], API_KEY);
    assert_eq!(event_names(&json), ["First", "Second", "$identify"]);
    let uuids: Vec<&str> = json["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uuids,
        [first.to_string(), second.to_string(), id.to_string()]
    );
    assert_eq!(json["batch"][0]["properties"]["plan"], "pro");
    assert_eq!(json["batch"][0]["properties"]["seats"], 3);
    assert_eq!(
        json["batch"][2]["properties"]["$set"]["email"],
        "u@example.com"
    );
    // The std clock knows the wall time: events carry timestamps.
    assert!(json["batch"][0]["timestamp"].is_string());

    // An empty queue flushes at once, without a request: the call returns, long before its
    // timeout.
    let c = Arc::clone(&client);
    let r = returns(move || c.flush(FOREVER));
    assert_eq!((r.sent, r.pending), (0, 0));
    assert_eq!(server.count(), 1);

    let stats = client.stats();
    assert_eq!((stats.captured, stats.sent, stats.requests), (3, 3, 1));
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn gzip_bodies_carry_content_encoding_and_decode_to_the_batch() {
    let server = Server::start(|_| Resp::ok());
    let client = StdClient::new(config(&server).gzip(true)).unwrap();
    client.alias("device-1", "user-9").unwrap();
    client
        .group_identify("company", "acme", None, |p| {
            p.prop("size", 42u32)?;
            Ok(())
        })
        .unwrap();
    client
        .set("user-9", |person| {
            person.set_once(|p| {
                p.prop("first_seen", "today")?;
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (3, 0));

    let req = &server.requests()[0];
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    assert_eq!(&req.body[..2], [0x1f, 0x8b], "gzip magic");
    let json = req.json();
    assert_eq!(json["api_key"], API_KEY);
    assert_eq!(
        event_names(&json),
        ["$create_alias", "$groupidentify", "$set"]
    );
    assert_eq!(json["batch"][1]["properties"]["$group_set"]["size"], 42);
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn flush_at_triggers_a_send_without_flush() {
    let server = Server::start(|_| Resp::ok());
    let client = StdClient::new(config(&server).flush_at(2)).unwrap();
    client.capture("a", "u", |_| Ok(())).unwrap();
    client.capture("b", "u", |_| Ok(())).unwrap();
    assert!(wait_until(SETTLE, || client.pending() == 0));
    assert_eq!(event_names(&server.requests()[0].json()), ["a", "b"]);
    client.shutdown(Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

#[test]
fn a_retry_after_date_counts_from_the_servers_date_without_a_wall_clock() {
    let mut calls = 0;
    let server = Server::start(move |_| {
        calls += 1;
        if calls == 1 {
            Resp::status(503)
                .header("Date", "Sun, 06 Nov 1994 08:49:07 GMT")
                .header("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT")
        } else {
            Resp::ok()
        }
    });
    // A monotonic clock only: the date can only be read against the server's own `Date`.
    let clock = ManualClock::new();
    let client = StdClient::with_clock(
        config(&server).retry(Duration::from_millis(20), Duration::from_millis(50)),
        clock.clone(),
    )
    .unwrap();
    client.capture("Retry Me", "user-123", |_| Ok(())).unwrap();
    client.flush(Duration::ZERO);
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    // 30 s after the attempt (the back-off alone would be at most 50 ms).
    assert_eq!(
        next_deadline(&client),
        Some(CoreInstant::from_millis(30_000))
    );
    clock.advance(Duration::from_millis(29_999));
    assert_eq!(server.count(), 1);
    clock.advance(Duration::from_millis(1));
    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (1, 0));
    assert_eq!(server.count(), 2);
    client.shutdown(Duration::ZERO);
}

#[test]
fn a_503_keeps_the_event_pending_and_retry_after_is_respected() {
    let mut calls = 0;
    let server = Server::start(move |_| {
        calls += 1;
        if calls == 1 {
            Resp::status(503).header("Retry-After", "1")
        } else {
            Resp::ok()
        }
    });
    let clock = manual_clock();
    let client = StdClient::with_clock(
        config(&server).retry(Duration::from_millis(20), Duration::from_millis(50)),
        clock.clone(),
    )
    .unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&started);
    client.on_request(Some(Box::new(move |r| {
        seen.lock().unwrap().push(r.started);
    })));
    let uuid = client.capture("Retry Me", "user-123", |_| Ok(())).unwrap();

    // The first attempt gets a 503.
    client.flush(Duration::ZERO);
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    // The back-off (Retry-After: 1 s, on the client's clock, which stands still) outlasts this
    // flush, whose timeout is real time: it runs out with the event pending.
    let t = Instant::now();
    let r = client.flush(Duration::from_millis(100));
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!((r.sent, r.pending), (0, 1));
    assert_eq!(server.count(), 1);
    let stats = client.stats();
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.last_error, Some(DeliveryError::Status(503)));

    // Not before the server's Retry-After: one millisecond short, nothing is due.
    assert_eq!(next_deadline(&client), Some(CoreInstant::from_millis(1000)));
    clock.advance(Duration::from_millis(999));
    assert_eq!(next_deadline(&client), Some(CoreInstant::from_millis(1000)));
    assert_eq!(server.count(), 1);
    // At it: delivered, without any real waiting for the back-off.
    clock.advance(Duration::from_millis(1));
    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (1, 0));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(*started.lock().unwrap(), [at_ms(0), at_ms(1000)]);
    // Same event, same uuid.
    for req in &reqs {
        assert_eq!(req.json()["batch"][0]["uuid"], uuid.to_string());
    }
    client.shutdown(SETTLE);
}

#[test]
fn connection_refused_is_a_transport_error_and_retried() {
    // Bind then drop: nothing listens on that port any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // On a stopped clock the back-off never ends: one attempt, and the event stays queued.
    let client = StdClient::with_clock(
        StdConfig::new(API_KEY, 0x5eed)
            .host(format!("http://{addr}"))
            .proxy_from_env(false)
            .retry(Duration::from_millis(100), Duration::from_millis(200)),
        manual_clock(),
    )
    .unwrap();
    client.capture("x", "u", |_| Ok(())).unwrap();
    let r = client.flush(Duration::ZERO);
    assert_eq!(r.pending, 1);
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    assert_eq!(
        client.stats().last_error,
        Some(DeliveryError::Transport(TransportError::Connect))
    );
    let r = client.shutdown(Duration::ZERO);
    assert_eq!(r.pending, 1, "undelivered events stay queued");
    assert_eq!(client.stats().retries, 1, "no retry before the back-off");
}

// ---------------------------------------------------------------------------------------------
// Definitions polling
// ---------------------------------------------------------------------------------------------

const DEFS: &[u8] = br#"{"flags":[{"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;

#[test]
fn definitions_polling_sends_the_secret_and_round_trips_the_etag() {
    let server = Server::start(|req| {
        if req.header("if-none-match") == Some("\"v1\"") {
            Resp::status(304).header("ETag", "\"v1\"")
        } else {
            Resp::ok().header("ETag", "\"v1\"").body(DEFS)
        }
    });
    let client = StdClient::new(
        config(&server)
            .secret_key(SECRET)
            .poll_interval(Duration::from_secs(60)),
    )
    .unwrap();
    // The first poll is due at once.
    assert!(wait_until(SETTLE, || {
        client.is_local_evaluation_ready()
    }));
    let person: [(&str, PropertyValue<'_>); 0] = [];
    let ctx = EvalContext {
        distinct_id: "user-1",
        device_id: None,
        person: &person,
        groups: &[],
    };
    assert_eq!(client.evaluate("beta-ui", &ctx), Ok(FlagValue::Bool(true)));
    assert!(client.with_flags(|s| s.len()) == 1);

    client.reload();
    assert!(wait_until(SETTLE, || server.count() == 2));
    // Let the worker settle the 304.
    assert!(wait_until(SETTLE, || {
        client.stats().requests == 2 && client.stats().last_error.is_none()
    }));

    let reqs = server.requests();
    for req in &reqs {
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.path,
            format!("/flags/definitions?token={API_KEY}&send_cohorts")
        );
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
        assert_eq!(req.header("user-agent"), Some(posthog_embedded::USER_AGENT));
        assert_eq!(req.header("content-type"), None);
    }
    assert_eq!(reqs[0].header("if-none-match"), None);
    assert_eq!(reqs[1].header("if-none-match"), Some("\"v1\""));
    let stats = client.stats();
    assert_eq!((stats.definitions_loaded, stats.definitions_failed), (1, 0));
    assert!(client.is_local_evaluation_ready(), "304 keeps the store");
    client.shutdown(Duration::from_secs(2));
    // Nothing in any Debug output gives the secret away.
    let debug = format!("{client:?} {:?}", config(&server).secret_key(SECRET));
    assert!(
        !debug.contains(SECRET) && !debug.contains(API_KEY),
        "{debug}"
    );
}

#[test]
fn local_definitions_load_without_a_secret() {
    let server = Server::start(|_| Resp::ok());
    let client = StdClient::new(config(&server)).unwrap();
    assert!(!client.is_local_evaluation_ready());
    client.load_definitions(DEFS).unwrap();
    assert!(client.is_local_evaluation_ready());
    assert!(client.load_definitions(b"{").is_err());
    assert!(
        client.is_local_evaluation_ready(),
        "a bad load keeps the store"
    );
    client.shutdown(Duration::from_secs(1));
    assert_eq!(server.count(), 0, "no polling without a secret key");
}

// ---------------------------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn shutdown_flushes_joins_and_refuses_later_captures() {
    let server = Server::start(|_| Resp::ok());
    let client = Arc::new(StdClient::new(config(&server)).unwrap());
    client.capture("Save", "user-123", |_| Ok(())).unwrap();
    let r = client.shutdown(SETTLE);
    assert_eq!((r.sent, r.pending), (1, 0));
    assert_eq!(event_names(&server.requests()[0].json()), ["Save"]);
    // The background thread has stopped and was joined.
    assert!(format!("{client:?}").contains("exited: true"), "{client:?}");

    assert_eq!(
        client.capture("After Shutdown", "user-123", |_| Ok(())),
        Err(CaptureError::Disabled)
    );
    assert_eq!(client.pending(), 0);
    assert_eq!(client.stats().gated, 1);

    // Idempotent; flush after shutdown returns at once: neither waits out its timeout.
    let c = Arc::clone(&client);
    let (again, flushed) = returns(move || (c.shutdown(FOREVER), c.flush(FOREVER)));
    assert_eq!((again.sent, again.pending), (0, 0));
    assert_eq!((flushed.sent, flushed.pending), (0, 0));
    // No thread is left to send anything.
    assert_eq!(server.count(), 1);
}

#[test]
fn shutdown_against_a_failing_server_returns_by_its_deadline() {
    let server = Server::start(|_| Resp::status(503));
    // On a stopped clock the back-off after the first 503 never ends: only shutdown's own
    // (real-time) deadline can end the wait.
    let client = StdClient::with_clock(config(&server), manual_clock()).unwrap();
    client.capture("Save", "user-123", |_| Ok(())).unwrap();
    client.flush(Duration::ZERO);
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    let t = Instant::now();
    let r = client.shutdown(Duration::from_millis(300));
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "it waited for its deadline"
    );
    assert_eq!((r.sent, r.pending), (0, 1));
    assert_eq!(client.stats().last_error, Some(DeliveryError::Status(503)));
    assert_eq!(server.count(), 1, "no retry before the back-off");
    // It returned with the worker stopped and joined, not detached.
    assert!(format!("{client:?}").contains("exited: true"), "{client:?}");
}

#[test]
fn drop_does_a_best_effort_shutdown() {
    let server = Server::start(|_| Resp::ok());
    let client = StdClient::new(config(&server).drop_timeout(Duration::from_secs(3))).unwrap();
    let opts = EventOptions::new().groups(&[("company", "acme")]);
    client
        .capture_with("Bye", "user-1", &opts, |_| Ok(()))
        .unwrap();
    drop(client);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let json = reqs[0].json();
    assert_eq!(json["batch"][0]["properties"]["$groups"]["company"], "acme");
}

#[test]
fn clients_are_shared_across_threads() {
    let server = Server::start(|_| Resp::ok());
    let client = Arc::new(StdClient::new(config(&server).max_batch_events(7)).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = Arc::clone(&client);
            std::thread::spawn(move || {
                for i in 0..10u32 {
                    c.capture("tick", "user", |p| {
                        p.prop("t", t)?.prop("i", i)?;
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (40, 0));
    let total: usize = server
        .requests()
        .iter()
        .map(|r| r.json()["batch"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 40);
    assert!(server.count() >= 6, "batches of at most 7");
}

// ---------------------------------------------------------------------------------------------
// Construction and the transport on its own
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_settings_are_typed_errors_without_secrets() {
    let e = StdClient::new(StdConfig::new(API_KEY, 0x5eed).host("ftp://example.com")).unwrap_err();
    assert_eq!(e, StdError::InvalidHost);
    let e = StdClient::new(StdConfig::new("  ", 0x5eed)).unwrap_err();
    assert!(matches!(e, StdError::Config(_)));
    let e = StdClient::new(StdConfig::new(API_KEY, 0x5eed).secret_key(API_KEY)).unwrap_err();
    assert_eq!(e, StdError::Config(ConfigError::ProjectKeyAsSecretKey));
    assert!(!e.to_string().contains(API_KEY));
}

/// One batch request rendered by a small core client, sent through `t`.
fn send_batch(t: &UreqTransport) -> Result<Response, TransportError> {
    let mut resources = Box::new(Resources::<4096, 4, 16, 256, 8>::new());
    let mut core = Client::new(Config::new(API_KEY, 0x5eed), &mut resources).unwrap();
    let now = Now::with_wall(
        CoreInstant::from_millis(5),
        UnixMillis::from_secs(1_800_000_000),
    );
    core.capture(now, "e", "u", &EventOptions::new(), |_| Ok(()))
        .unwrap();
    core.flush();
    let mut buf = [0u8; 2048];
    let tx = core.poll_transmit(now, &mut buf).unwrap();
    t.send(&tx)
}

#[test]
fn transport_reads_status_retry_after_and_etag() {
    let server = Server::start(|_| {
        Resp::status(429)
            .header("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")
            .header("ETag", "W/\"abc\"")
            .body(b"slow down")
    });
    let t = UreqTransport::new(&config(&server)).unwrap();
    let resp = send_batch(&t).unwrap();
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.retry_after,
        Some(RetryAfter::At(UnixMillis::from_secs(1_445_412_480)))
    );
    assert_eq!(resp.etag.as_deref(), Some("W/\"abc\""));
    assert_eq!(resp.body, b"slow down");
    assert_eq!(resp.info().etag, Some("W/\"abc\""));
}

#[test]
fn transport_does_not_follow_redirects() {
    let server = Server::start(|_| Resp::status(301).header("Location", "http://127.0.0.1:9/"));
    let t = UreqTransport::new(&config(&server)).unwrap();
    assert_eq!(send_batch(&t).unwrap().status, 301);
    assert_eq!(server.count(), 1);
}

#[test]
fn transport_caps_the_response_body() {
    let server = Server::start(|_| Resp::ok().body(&[b' '; 5000]));
    let t = UreqTransport::new(&config(&server).max_response_bytes(4096)).unwrap();
    assert_eq!(send_batch(&t), Err(TransportError::BadResponse));
    let t = UreqTransport::new(&config(&server).max_response_bytes(5000)).unwrap();
    assert_eq!(send_batch(&t).unwrap().body.len(), 5000);
}

#[test]
fn transport_times_out() {
    // Accepts the connection and holds it, silent, until the client has given up: only the
    // client's own timeout can end the request, and it must say so.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, released) = mpsc::channel::<()>();
    let hold = std::thread::spawn(move || {
        let conn = listener.accept();
        let _ = released.recv();
        drop(conn);
    });
    let cfg = StdConfig::new(API_KEY, 0x5eed)
        .host(format!("http://{addr}"))
        .proxy_from_env(false)
        .request_timeout(Duration::from_millis(200));
    let t = UreqTransport::new(&cfg).unwrap();
    assert_eq!(send_batch(&t), Err(TransportError::Timeout));
    release.send(()).unwrap();
    hold.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// HTTPS with a CA generated at test time
// ---------------------------------------------------------------------------------------------

struct TestPki {
    ca_der: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "posthog-embedded test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    TestPki {
        ca_der: ca.der().to_vec(),
        server: Arc::new(server),
    }
}

fn tls_server(pki: &TestPki) -> Server {
    let cfg = Arc::clone(&pki.server);
    let wrap: Wrap = Arc::new(move |tcp| {
        let conn = rustls::ServerConnection::new(Arc::clone(&cfg)).ok()?;
        Some(Box::new(rustls::StreamOwned::new(conn, tcp)) as Box<dyn ReadWrite>)
    });
    Server::start_with(Box::new(|_| Resp::ok()), wrap)
}

#[test]
fn https_with_a_private_ca_delivers_and_verification_is_on() {
    let pki = test_pki();
    let server = tls_server(&pki);
    let https = format!("https://{}", server.addr);

    // Trusting the test CA: delivered over TLS.
    let trusted = StdClient::new(
        config(&server)
            .host(https.clone())
            .root_certificate(pki.ca_der.clone()),
    )
    .unwrap();
    trusted.capture("Secure", "user-1", |_| Ok(())).unwrap();
    let r = trusted.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (1, 0));
    assert_eq!(event_names(&server.requests()[0].json()), ["Secure"]);
    trusted.shutdown(Duration::from_secs(1));

    // Default roots (webpki) do not know the test CA: TLS failure, the event stays queued (on
    // a stopped clock, through one attempt).
    let untrusted = StdClient::with_clock(
        config(&server)
            .host(https)
            .retry(Duration::from_millis(100), Duration::from_millis(200)),
        manual_clock(),
    )
    .unwrap();
    untrusted.capture("Insecure", "user-1", |_| Ok(())).unwrap();
    untrusted.flush(Duration::ZERO);
    assert!(wait_until(SETTLE, || untrusted.stats().retries == 1));
    assert_eq!(untrusted.pending(), 1);
    assert_eq!(
        untrusted.stats().last_error,
        Some(DeliveryError::Transport(TransportError::Tls))
    );
    let r = untrusted.shutdown(Duration::ZERO);
    assert_eq!((r.sent, r.pending), (0, 1));
    assert_eq!(server.count(), 1, "nothing reached the server unverified");
}

// ---------------------------------------------------------------------------------------------
// Remote flags (`/flags` fallback) and the request observer
// ---------------------------------------------------------------------------------------------

use posthog_embedded::adapters::std::{FlagOptions, RecordKind};

const FLAGS_DEFS: &[u8] = br#"{"flags":[
  {"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
  {"id":2,"key":"needs-plan","active":true,"filters":{"groups":[{"properties":[{"key":"plan","value":["pro"],"operator":"exact","type":"person"}],"rollout_percentage":100}]}}
]}"#;

const REMOTE_ANSWER: &[u8] = br#"{"flags":{"remote-flag":{"key":"remote-flag","enabled":true,"variant":"blue","reason":{"code":"condition_match","description":"Matched condition set 1"},"metadata":{"id":3,"version":4,"payload":"{\"a\":1}"}}},"errorsWhileComputingFlags":false,"requestId":"req-1"}"#;

fn is_flags(req: &Req) -> bool {
    req.path == "/flags/?v=2"
}

/// Answers `/flags` with `flags(n)` (n counts `/flags` requests from 1) and `/batch/` with 200.
fn flags_server(mut flags: impl FnMut(usize) -> Resp + Send + 'static) -> Server {
    let mut n = 0;
    Server::start(move |req| {
        if is_flags(req) {
            n += 1;
            flags(n)
        } else {
            Resp::ok()
        }
    })
}

fn flags_requests(server: &Server) -> Vec<Req> {
    server.requests().into_iter().filter(is_flags).collect()
}

/// Every event of every `/batch/` the server received.
fn delivered_events(server: &Server) -> Vec<serde_json::Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/batch/")
        .flat_map(|r| r.json()["batch"].as_array().unwrap().clone())
        .collect()
}

fn flag_called_events(server: &Server) -> Vec<serde_json::Value> {
    delivered_events(server)
        .into_iter()
        .filter(|e| e["event"] == "$feature_flag_called")
        .collect()
}

const PLAN_PRO: [(&str, PropertyValue<'static>); 1] = [("plan", PropertyValue::Str("pro"))];
const NO_PROPS: [(&str, PropertyValue<'static>); 0] = [];

fn ctx<'a>(person: &'a dyn posthog_embedded::flags::Properties) -> EvalContext<'a> {
    EvalContext {
        distinct_id: "user-123",
        device_id: None,
        person,
        groups: &[],
    }
}

#[test]
fn a_local_value_sends_no_flags_request() {
    let server = flags_server(|_| Resp::ok().body(REMOTE_ANSWER));
    let client = StdClient::new(config(&server)).unwrap();
    client.load_definitions(FLAGS_DEFS).unwrap();
    let person = NO_PROPS;
    let v = client.get_feature_flag("beta-ui", &ctx(&person), FlagOptions::new());
    assert_eq!(v, Some(FlagValue::Bool(true)));
    assert_eq!(
        client.is_feature_enabled("beta-ui", &ctx(&person), FlagOptions::new()),
        Some(true)
    );
    client.flush(SETTLE);
    assert!(flags_requests(&server).is_empty());
    let events = flag_called_events(&server);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["properties"]["locally_evaluated"], true);
    assert_eq!(events[0]["properties"]["$feature_flag_response"], true);
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn an_inconclusive_flag_asks_flags_once_with_the_right_body() {
    let server = flags_server(|_| Resp::ok().body(REMOTE_ANSWER));
    let client = StdClient::new(config(&server)).unwrap();
    let person = PLAN_PRO;
    let v = client.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new());
    assert_eq!(v, Some(FlagValue::variant("blue").unwrap()));

    let reqs = flags_requests(&server);
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some(posthog_embedded::USER_AGENT));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.header("content-encoding"), None);
    let body = req.json();
    assert_eq!(body["token"], API_KEY);
    assert_eq!(body["distinct_id"], "user-123");
    assert_eq!(
        body["flag_keys_to_evaluate"],
        serde_json::json!(["remote-flag"])
    );
    assert_eq!(
        body["person_properties"],
        serde_json::json!({"plan": "pro"})
    );

    // The event carries the server's metadata.
    client.flush(SETTLE);
    let events = flag_called_events(&server);
    assert_eq!(events.len(), 1);
    let p = &events[0]["properties"];
    assert_eq!(p["$feature_flag"], "remote-flag");
    assert_eq!(p["$feature_flag_response"], "blue");
    assert_eq!(p["locally_evaluated"], false);
    assert_eq!(p["$feature_flag_request_id"], "req-1");
    assert_eq!(p["$feature_flag_id"], 3);
    assert!(p.get("$feature_flag_error").is_none(), "{p}");

    // Payload reads ask again but send no event.
    assert_eq!(
        client
            .get_feature_flag_payload("remote-flag", &ctx(&person), FlagOptions::new())
            .as_deref(),
        Some(r#"{"a":1}"#)
    );
    assert_eq!(flags_requests(&server).len(), 2);
    client.flush(SETTLE);
    assert_eq!(flag_called_events(&server).len(), 1);
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn a_502_is_retried_after_300_ms() {
    let server = flags_server(|n| {
        if n == 1 {
            Resp::status(502)
        } else {
            Resp::ok().body(REMOTE_ANSWER)
        }
    });
    let client = StdClient::new(config(&server)).unwrap();
    let person = NO_PROPS;
    let v = client.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new());
    assert_eq!(v, Some(FlagValue::variant("blue").unwrap()));
    let reqs = flags_requests(&server);
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(300), "retried after {gap:?}");
    assert_eq!(reqs[0].body, reqs[1].body, "the same body is resent");
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn a_503_is_not_retried_and_reported_on_the_event() {
    let server = flags_server(|_| Resp::status(503));
    let client = StdClient::new(config(&server)).unwrap();
    let person = NO_PROPS;
    let v = client.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new());
    assert_eq!(v, None);
    assert_eq!(flags_requests(&server).len(), 1);
    client.flush(SETTLE);
    let events = flag_called_events(&server);
    assert_eq!(events.len(), 1);
    let p = &events[0]["properties"];
    assert_eq!(p["$feature_flag_error"], "api_error_503");
    assert!(p["$feature_flag_response"].is_null());
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn only_local_never_asks_the_server() {
    let server = flags_server(|_| Resp::ok().body(REMOTE_ANSWER));
    let client = StdClient::new(config(&server)).unwrap();
    client.load_definitions(FLAGS_DEFS).unwrap();
    let person = NO_PROPS;
    let local = FlagOptions::new().only_local(true);
    assert_eq!(
        client.get_feature_flag("needs-plan", &ctx(&person), local),
        None
    );
    assert_eq!(
        client.get_feature_flag("remote-flag", &ctx(&person), local),
        None
    );
    assert_eq!(
        client.get_feature_flag_payload("remote-flag", &ctx(&person), local),
        None
    );
    let all = client.get_all_flags(&ctx(&person), None, true);
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        ["beta-ui"],
        "inconclusive left out"
    );
    assert!(flags_requests(&server).is_empty());
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn identical_reads_send_one_event() {
    let server = flags_server(|_| Resp::ok().body(REMOTE_ANSWER));
    let client = StdClient::new(config(&server)).unwrap();
    client.load_definitions(FLAGS_DEFS).unwrap();
    let person = NO_PROPS;
    for _ in 0..2 {
        assert!(client
            .get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new())
            .is_some());
        assert!(client
            .get_feature_flag("beta-ui", &ctx(&person), FlagOptions::new())
            .is_some());
    }
    // Tracking off: no event at all.
    let other = EvalContext {
        distinct_id: "user-other",
        ..ctx(&person)
    };
    let opts = FlagOptions::new().send_event(false);
    assert_eq!(
        client.get_feature_flag("beta-ui", &other, opts),
        Some(FlagValue::Bool(true))
    );
    client.flush(SETTLE);
    let events = flag_called_events(&server);
    let flags: Vec<&str> = events
        .iter()
        .map(|e| e["properties"]["$feature_flag"].as_str().unwrap())
        .collect();
    assert_eq!(flags, ["remote-flag", "beta-ui"], "{events:?}");
    assert_eq!(flags_requests(&server).len(), 2, "each remote read asks");
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn force_remote_skips_local_evaluation() {
    let server = flags_server(|_| {
        Resp::ok().body(br#"{"flags":{"beta-ui":{"key":"beta-ui","enabled":false}}}"#)
    });
    let client = StdClient::new(config(&server)).unwrap();
    client.load_definitions(FLAGS_DEFS).unwrap();
    let person = NO_PROPS;
    let v = client.get_feature_flag(
        "beta-ui",
        &ctx(&person),
        FlagOptions::new().force_remote(true).only_local(true),
    );
    assert_eq!(v, Some(FlagValue::Bool(false)));
    assert_eq!(flags_requests(&server).len(), 1);
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn get_all_flags_merges_like_posthog_python() {
    let server = flags_server(|_| {
        Resp::ok().body(
            br#"{"flags":{
                "beta-ui":{"key":"beta-ui","enabled":false,"failed":true},
                "needs-plan":{"key":"needs-plan","enabled":true,"variant":"gold"},
                "remote-only":{"key":"remote-only","enabled":true}
            }}"#,
        )
    });
    let client = StdClient::new(config(&server)).unwrap();
    let person = NO_PROPS;
    // No local flags at all: one request, the server's answer.
    let all = client.get_all_flags(&ctx(&person), None, false);
    assert_eq!(
        all.len(),
        2,
        "failed flags without a local value are left out: {all:?}"
    );
    assert_eq!(all["needs-plan"], FlagValue::variant("gold").unwrap());
    assert_eq!(flags_requests(&server).len(), 1);

    // needs-plan is inconclusive locally: one request; beta-ui failed remotely keeps its local
    // value; the remote answer replaces the rest.
    client.load_definitions(FLAGS_DEFS).unwrap();
    let all = client.get_all_flags(&ctx(&person), None, false);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all["beta-ui"], FlagValue::Bool(true));
    assert_eq!(all["needs-plan"], FlagValue::variant("gold").unwrap());
    assert_eq!(all["remote-only"], FlagValue::Bool(true));
    let reqs = flags_requests(&server);
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].json().get("flag_keys_to_evaluate").is_none());

    // Everything decided locally: no request.
    let person = PLAN_PRO;
    let all = client.get_all_flags(&ctx(&person), None, false);
    assert_eq!(all.len(), 2);
    assert_eq!(all["needs-plan"], FlagValue::Bool(true));
    assert_eq!(flags_requests(&server).len(), 2);

    // Bulk reads send no event.
    client.flush(SETTLE);
    assert!(flag_called_events(&server).is_empty());
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn a_refused_flags_connection_is_not_retried() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // On a stopped clock a retry would wait for ever (until the clock is moved): that the read
    // returns shows it waited no retry delay.
    let client = Arc::new(
        StdClient::with_clock(
            StdConfig::new(API_KEY, 0x5eed)
                .host(format!("http://{addr}"))
                .proxy_from_env(false),
            manual_clock(),
        )
        .unwrap(),
    );
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    client.on_request(Some(Box::new(move |r| {
        seen.lock().unwrap().push((r.kind, r.attempt, r.result));
    })));
    let c = Arc::clone(&client);
    let v = returns(move || {
        let person = NO_PROPS;
        c.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new())
    });
    assert_eq!(v, None);
    assert_eq!(
        *attempts.lock().unwrap(),
        [(RecordKind::Flags, 0, Err(TransportError::Refused))]
    );
    let r = client.shutdown(Duration::ZERO);
    assert_eq!(r.pending, 1, "the $feature_flag_called event is queued");
}

/// A server that accepts connections and holds them, silent, until stopped: every request to
/// it times out.
struct SilentServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hold: JoinHandle<usize>,
}

impl SilentServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let hold = std::thread::spawn(move || {
            let mut conns = Vec::new();
            listener.set_nonblocking(true).unwrap();
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(c) = listener.accept() {
                    conns.push(c);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            conns.len()
        });
        Self { addr, stop, hold }
    }

    /// Stops it; returns how many connections it accepted.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.hold.join().unwrap()
    }
}

/// A client on `clock` whose `/flags` requests to `addr` time out after 150 ms (real time).
fn flags_client(addr: SocketAddr, clock: &ManualClock) -> StdClient {
    StdClient::with_clock(
        StdConfig::new(API_KEY, 0x5eed)
            .host(format!("http://{addr}"))
            .proxy_from_env(false)
            .flags_request_timeout(Duration::from_millis(150)),
        clock.clone(),
    )
    .unwrap()
}

#[test]
fn shutdown_ends_a_flags_retry_wait_and_sends_no_retry() {
    let silent = SilentServer::start();
    let clock = manual_clock();
    let client = Arc::new(flags_client(silent.addr, &clock));
    let attempts = Arc::new(Mutex::new(0usize));
    let seen = Arc::clone(&attempts);
    client.on_request(Some(Box::new(move |r| {
        if r.kind == RecordKind::Flags {
            *seen.lock().unwrap() += 1;
        }
    })));
    let c = Arc::clone(&client);
    let read = std::thread::spawn(move || {
        let person = NO_PROPS;
        c.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new())
    });
    // The first attempt times out; the retry waits on a clock that never moves.
    assert!(wait_until(SETTLE, || *attempts.lock().unwrap() == 1));
    assert!(!read.is_finished());
    // Shutting down ends the wait, and no retry is sent after it.
    client.shutdown(Duration::from_millis(100));
    assert!(wait_until(SETTLE, || read.is_finished()));
    assert_eq!(read.join().unwrap(), None);
    assert_eq!(*attempts.lock().unwrap(), 1);
    assert_eq!(silent.stop(), 1);
}

#[test]
fn a_flags_timeout_is_retried_and_reported() {
    let silent = SilentServer::start();
    let clock = manual_clock();
    let client = Arc::new(flags_client(silent.addr, &clock));
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    client.on_request(Some(Box::new(move |r| {
        if r.kind == RecordKind::Flags {
            seen.lock()
                .unwrap()
                .push((r.attempt, r.result, r.started, r.elapsed));
        }
    })));
    let c = Arc::clone(&client);
    let read = std::thread::spawn(move || {
        let person = NO_PROPS;
        c.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new())
    });
    // The first attempt times out (the request timeout is real time); the retry then waits
    // 300 ms on the client's clock, which stands still until moved.
    assert!(wait_until(SETTLE, || attempts.lock().unwrap().len() == 1));
    clock.advance(Duration::from_millis(299));
    assert!(!read.is_finished(), "the read waits for the retry delay");
    assert_eq!(
        attempts.lock().unwrap().len(),
        1,
        "no retry before the delay"
    );
    // At 300 ms the retry goes out, and times out too.
    clock.advance(Duration::from_millis(1));
    assert!(wait_until(SETTLE, || read.is_finished()));
    assert_eq!(read.join().unwrap(), None);
    assert_eq!(
        *attempts.lock().unwrap(),
        [
            (0, Err(TransportError::Timeout), at_ms(0), Duration::ZERO),
            (1, Err(TransportError::Timeout), at_ms(300), Duration::ZERO)
        ]
    );
    let events = client.with_client(|c| {
        c.queue()
            .iter()
            .map(|r| String::from_utf8_lossy(r.json).into_owned())
            .collect::<Vec<_>>()
    });
    assert_eq!(events.len(), 1);
    assert!(
        events[0].contains(r#""$feature_flag_error":"timeout""#),
        "{}",
        events[0]
    );
    client.shutdown(Duration::ZERO);
    assert!(silent.stop() >= 2);
}

#[test]
fn an_unusable_flags_answer_is_an_unknown_error() {
    let server = flags_server(|_| Resp::ok().body(b"<html>oops</html>"));
    let client = StdClient::new(config(&server)).unwrap();
    let person = NO_PROPS;
    assert_eq!(
        client.get_feature_flag("remote-flag", &ctx(&person), FlagOptions::new()),
        None
    );
    client.flush(SETTLE);
    let events = flag_called_events(&server);
    assert_eq!(
        events[0]["properties"]["$feature_flag_error"],
        "unknown_error"
    );
    assert_eq!(flags_requests(&server).len(), 1);
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn the_request_observer_sees_every_batch_attempt() {
    let mut calls = 0;
    let server = Server::start(move |_| {
        calls += 1;
        if calls == 1 {
            Resp::status(503)
        } else {
            Resp::ok()
        }
    });
    let client =
        StdClient::new(config(&server).retry(Duration::from_millis(20), Duration::from_millis(50)))
            .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    client.on_request(Some(Box::new(move |r| {
        let body: serde_json::Value = serde_json::from_slice(r.body).unwrap();
        let uuids: Vec<String> = body["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["uuid"].as_str().unwrap().to_owned())
            .collect();
        s.lock().unwrap().push((r.kind, r.attempt, r.result, uuids));
        // Debug never shows the body (it carries the API key).
        assert!(!format!("{r:?}").contains(API_KEY));
    })));
    let uuid = client.capture("Observed", "user-1", |_| Ok(())).unwrap();
    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (1, 0));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (i, (kind, attempt, result, uuids)) in seen.iter().enumerate() {
        assert!(matches!(kind, RecordKind::Batch { records } if records.len() == 1));
        assert_eq!(*attempt as usize, i);
        assert_eq!(*result, Ok(if i == 0 { 503 } else { 200 }));
        assert_eq!(uuids, &[uuid.to_string()]);
    }
    client.on_request(None);
    client.shutdown(Duration::from_secs(2));
}

#[test]
fn immediate_sends_block_until_delivered_or_dropped() {
    use posthog_embedded::client::Fate;
    let mut calls = 0;
    let server = Server::start(move |_| {
        calls += 1;
        match calls {
            1 => Resp::ok(),
            2 => Resp::status(400),
            _ => Resp::status(503).header("Retry-After", "5"),
        }
    });
    // On a stopped clock: the 503's Retry-After never ends, so nothing is retried.
    let client = StdClient::with_clock(config(&server).flush_at(100), manual_clock()).unwrap();
    // Delivered: returns once the server acknowledged it, without a flush call.
    let fate = client.capture_immediate(
        "door opened",
        "device-7",
        |_| Ok(()),
        Duration::from_secs(5),
    );
    assert_eq!(fate, Ok(Fate::Delivered));
    assert_eq!(server.count(), 1);
    // Refused for good: dropped.
    let fate = client.alias_immediate("device-7", "serial-123", Duration::from_secs(5));
    assert_eq!(fate, Ok(Fate::Dropped));
    // Retrying past the timeout (real time): still queued.
    let t = Instant::now();
    let fate =
        client.capture_immediate("later", "device-7", |_| Ok(()), Duration::from_millis(300));
    assert_eq!(fate, Ok(Fate::Queued));
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    // Validation errors come back without waiting (the liveness guard fails the test long
    // before the hour-long timeout); nothing is sent.
    let client = Arc::new(client);
    let c = Arc::clone(&client);
    assert_eq!(
        returns(move || c.capture_immediate("", "device-7", |_| Ok(()), FOREVER)),
        Err(CaptureError::EmptyEventName)
    );
    assert_eq!(server.count(), 3);
    // Any producer, through the generic form.
    let c = Arc::clone(&client);
    let fate = returns(move || {
        c.immediate(FOREVER, |c, now| {
            c.identify(now, "", &EventOptions::new(), |_| Ok(()))
        })
    });
    assert_eq!(fate, Err(CaptureError::EmptyDistinctId));
    let c = Arc::clone(&client);
    assert_eq!(
        returns(move || c.identify_immediate("", |_| Ok(()), FOREVER)),
        Err(CaptureError::EmptyDistinctId)
    );
    let r = client.shutdown(Duration::ZERO);
    assert_eq!((r.sent, r.pending), (0, 1));
}

// ---------------------------------------------------------------------------------------------
// Outages: configuration, the connectivity hint, flag reads that must ask nobody
// ---------------------------------------------------------------------------------------------

/// `StdClient::new` rejects every bad setting with a typed error naming it, never the key.
#[test]
fn every_bad_setting_is_rejected_by_the_std_constructor() {
    use posthog_embedded::adapters::std::StdConfig as Cfg;
    use posthog_embedded::client::{GiveUp, KeyKind, Setting};
    let zero = |setting| StdError::Config(ConfigError::Zero { setting });
    let cases: Vec<(Cfg, StdError)> = vec![
        (
            Cfg::new("", 1),
            StdError::Config(ConfigError::EmptyKey { key: KeyKind::Api }),
        ),
        (
            Cfg::new(" \t", 1),
            StdError::Config(ConfigError::EmptyKey { key: KeyKind::Api }),
        ),
        (
            Cfg::new(API_KEY, 1).secret_key(" "),
            StdError::Config(ConfigError::EmptyKey {
                key: KeyKind::Secret,
            }),
        ),
        (
            Cfg::new(API_KEY, 1).secret_key("phc_also_a_project_key"),
            StdError::Config(ConfigError::ProjectKeyAsSecretKey),
        ),
        (
            Cfg::new("phc_".to_owned() + &"x".repeat(200), 1),
            StdError::Config(ConfigError::KeyTooLong {
                key: KeyKind::Api,
                len: 204,
                max: 128,
            }),
        ),
        (Cfg::new(API_KEY, 1).flush_at(0), zero(Setting::FlushAt)),
        (
            Cfg::new(API_KEY, 1).max_batch_events(0),
            zero(Setting::MaxBatchEvents),
        ),
        (
            Cfg::new(API_KEY, 1).flush_interval(Duration::ZERO),
            zero(Setting::FlushInterval),
        ),
        (
            Cfg::new(API_KEY, 1).poll_interval(Duration::ZERO),
            zero(Setting::PollInterval),
        ),
        (
            Cfg::new(API_KEY, 1).retry(Duration::ZERO, Duration::from_secs(1)),
            zero(Setting::RetryBase),
        ),
        (
            Cfg::new(API_KEY, 1).retry(Duration::from_secs(2), Duration::from_secs(1)),
            StdError::Config(ConfigError::RetryCapBelowBase {
                base_ms: 2000,
                cap_ms: 1000,
            }),
        ),
        (
            Cfg::new(API_KEY, 1).retry_after_cap(Duration::ZERO),
            zero(Setting::RetryAfterCap),
        ),
        (
            Cfg::new(API_KEY, 1).give_up(GiveUp::AfterAttempts(0)),
            zero(Setting::GiveUpAttempts),
        ),
        (
            Cfg::new(API_KEY, 1).request_timeout(Duration::ZERO),
            zero(Setting::RequestTimeout),
        ),
        (
            Cfg::new(API_KEY, 1).flags_request_timeout(Duration::ZERO),
            zero(Setting::FlagsRequestTimeout),
        ),
        (
            Cfg::new(API_KEY, 1).max_response_bytes(0),
            zero(Setting::MaxResponseBytes),
        ),
        (
            Cfg::new(API_KEY, 1).host("not a url"),
            StdError::InvalidHost,
        ),
    ];
    for (cfg, want) in cases {
        let e = StdClient::new(cfg).unwrap_err();
        assert_eq!(e, want);
        assert!(!e.to_string().contains(API_KEY), "{e}");
    }
}

/// Offline, the background thread sends nothing (no connection attempt); back online, the
/// queued events go out at once, whatever back-off was running.
#[test]
fn offline_sends_nothing_and_online_delivers_at_once() {
    // The first batch fails: a 60 s back-off starts.
    let mut n = 0;
    let server = Server::start(move |_| {
        n += 1;
        if n == 1 {
            Resp::status(503)
        } else {
            Resp::ok()
        }
    });
    // The clock stands still: the back-off can end only by coming back online.
    let client = StdClient::with_clock(
        config(&server).retry(Duration::from_secs(60), Duration::from_secs(300)),
        manual_clock(),
    )
    .unwrap();
    client.capture("first", "device-1", |_| Ok(())).unwrap();
    client.flush(Duration::ZERO);
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    assert_eq!(client.pending(), 1);
    assert_eq!(server.count(), 1);
    client.set_online(false);
    client
        .capture("while offline", "device-1", |_| Ok(()))
        .unwrap();
    let r = client.flush(Duration::from_millis(300));
    assert_eq!((r.sent, r.pending), (0, 2));
    assert_eq!(server.count(), 1, "no request while offline");
    // Back online: both go at once, though the back-off has not ended.
    client.set_online(true);
    let r = client.flush(SETTLE);
    assert_eq!((r.sent, r.pending), (2, 0));
    assert_eq!(
        event_names(&server.requests()[1].json()),
        ["first", "while offline"]
    );
    client.shutdown(Duration::from_secs(1));
}

/// An empty or whitespace distinct id: no value, no request, no event, on every flag read.
/// Offline or after shutdown: local values only, never a `/flags` request.
#[test]
fn flag_reads_without_an_id_or_after_shutdown_ask_nobody() {
    let server = flags_server(|_| Resp::ok().body(REMOTE_ANSWER));
    let client = StdClient::new(config(&server)).unwrap();
    client.load_definitions(FLAGS_DEFS).unwrap();
    let person = NO_PROPS;
    for id in ["", "  ", "\n"] {
        let c = EvalContext {
            distinct_id: id,
            ..ctx(&person)
        };
        for key in ["beta-ui", "remote-flag"] {
            assert_eq!(client.get_feature_flag(key, &c, FlagOptions::new()), None);
            assert_eq!(
                client.get_feature_flag(key, &c, FlagOptions::new().force_remote(true)),
                None
            );
            assert_eq!(client.is_feature_enabled(key, &c, FlagOptions::new()), None);
            assert_eq!(
                client.get_feature_flag_payload(key, &c, FlagOptions::new()),
                None
            );
        }
        assert!(client.get_all_flags(&c, None, false).is_empty());
    }
    assert_eq!(client.pending(), 0, "no $feature_flag_called");
    assert_eq!(client.stats().invalid, 0);
    assert!(flags_requests(&server).is_empty());
    // Offline: local values answer; remote reads ask nobody and report a connection error.
    client.set_online(false);
    let c = ctx(&person);
    assert_eq!(
        client.get_feature_flag("beta-ui", &c, FlagOptions::new()),
        Some(FlagValue::Bool(true))
    );
    assert_eq!(
        client.get_feature_flag("remote-flag", &c, FlagOptions::new()),
        None
    );
    assert_eq!(
        client.get_feature_flag_payload("remote-flag", &c, FlagOptions::new()),
        None
    );
    assert!(client
        .get_all_flags(&c, None, false)
        .contains_key("beta-ui"));
    assert!(
        flags_requests(&server).is_empty(),
        "no /flags while offline"
    );
    client.set_online(true);
    client.flush(SETTLE);
    let events = flag_called_events(&server);
    let offline = events
        .iter()
        .find(|e| e["properties"]["$feature_flag"] == "remote-flag")
        .expect("the offline read is reported");
    assert_eq!(
        offline["properties"]["$feature_flag_error"],
        "connection_error"
    );
    client.shutdown(Duration::from_secs(2));
    let c = ctx(&person);
    assert_eq!(
        client.get_feature_flag("beta-ui", &c, FlagOptions::new()),
        Some(FlagValue::Bool(true)),
        "local values still answer"
    );
    assert_eq!(
        client.get_feature_flag("remote-flag", &c, FlagOptions::new()),
        None
    );
    assert_eq!(
        client.get_feature_flag_payload("remote-flag", &c, FlagOptions::new()),
        None
    );
    assert!(client
        .get_all_flags(&c, None, false)
        .contains_key("beta-ui"));
    assert!(
        flags_requests(&server).is_empty(),
        "no /flags after shutdown"
    );
}

// ---------------------------------------------------------------------------------------------
// An injected clock: everything the client schedules runs on it
// ---------------------------------------------------------------------------------------------

/// The flush interval runs on the client's clock: the batch goes out when the clock passes it,
/// not a millisecond before, and carries the clock's wall time.
#[test]
fn the_flush_interval_runs_on_the_injected_clock() {
    let server = Server::start(|_| Resp::ok());
    let clock = manual_clock();
    let client = StdClient::with_clock(
        config(&server).flush_interval(Duration::from_secs(10)),
        clock.clone(),
    )
    .unwrap();
    clock.advance(Duration::from_millis(500));
    client.capture("tick", "device-1", |_| Ok(())).unwrap();
    assert_eq!(
        next_deadline(&client),
        Some(CoreInstant::from_millis(10_500))
    );
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(
        next_deadline(&client),
        Some(CoreInstant::from_millis(10_500))
    );
    assert_eq!((client.pending(), server.count()), (1, 0));
    clock.advance(Duration::from_millis(1));
    assert!(wait_until(SETTLE, || client.pending() == 0));
    let json = server.requests()[0].json();
    assert_eq!(event_names(&json), ["tick"]);
    assert_eq!(json["batch"][0]["timestamp"], "2027-01-15T08:00:00.500Z");
    client.shutdown(SETTLE);
}

/// A jittered back-off fires exactly when the clock reaches it, with no real waiting.
#[test]
fn a_batch_back_off_fires_exactly_when_the_manual_clock_passes_it() {
    let mut n = 0;
    let server = Server::start(move |_| {
        n += 1;
        if n == 1 {
            Resp::status(500)
        } else {
            Resp::ok()
        }
    });
    let clock = manual_clock();
    let client = StdClient::with_clock(
        config(&server).retry(Duration::from_secs(4), Duration::from_secs(60)),
        clock.clone(),
    )
    .unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&started);
    client.on_request(Some(Box::new(move |r| {
        seen.lock().unwrap().push((r.attempt, r.result, r.started));
    })));
    client.capture("e", "device-1", |_| Ok(())).unwrap();
    client.flush(Duration::ZERO);
    assert!(wait_until(SETTLE, || client.stats().retries == 1));
    // 4 s less a jitter of up to a quarter.
    let at = next_deadline(&client).unwrap().as_millis();
    assert!((3_000..=4_000).contains(&at), "{at}");
    clock.advance(Duration::from_millis(at - 1));
    assert_eq!(
        next_deadline(&client),
        Some(CoreInstant::from_millis(at)),
        "not due yet"
    );
    assert_eq!(server.count(), 1);
    clock.advance(Duration::from_millis(1));
    assert!(wait_until(SETTLE, || client.pending() == 0));
    assert_eq!(
        *started.lock().unwrap(),
        [(0, Ok(500), at_ms(0)), (1, Ok(200), at_ms(at))]
    );
    client.shutdown(SETTLE);
}

/// Definitions polls run on the client's clock: the first at once, the next one interval
/// later on that clock.
#[test]
fn definitions_polls_run_on_the_injected_clock() {
    let server = Server::start(|_| Resp::ok().header("ETag", "\"v1\"").body(DEFS));
    let clock = manual_clock();
    let client = StdClient::with_clock(
        config(&server)
            .secret_key(SECRET)
            .poll_interval(Duration::from_secs(60)),
        clock.clone(),
    )
    .unwrap();
    assert!(wait_until(SETTLE, || {
        client.stats().definitions_loaded == 1
    }));
    assert_eq!(
        next_deadline(&client),
        Some(CoreInstant::from_millis(60_000))
    );
    clock.advance(Duration::from_millis(59_999));
    assert_eq!(server.count(), 1);
    clock.advance(Duration::from_millis(1));
    assert!(wait_until(SETTLE, || client.stats().definitions_loaded == 2));
    assert_eq!(server.count(), 2);
    assert_eq!(
        next_deadline(&client),
        Some(CoreInstant::from_millis(120_000))
    );
    client.shutdown(SETTLE);
}

/// PostHog's `get_feature_flag_result`: local results with their payloads, remote results
/// with the server's, `None` for an unknown flag; the exposure event as for the value read.
#[test]
fn feature_flag_results_local_and_remote() {
    const DEFS: &[u8] = br#"{"flags":[
      {"id":1,"key":"checkout","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],
        "multivariate":{"variants":[{"key":"blue","rollout_percentage":100}]},"payloads":{"blue":"{\"copy\":\"new\"}"}}},
      {"id":2,"key":"beta-ui","active":false,"filters":{"groups":[]}}
    ]}"#;
    let server = flags_server(|_| Resp::ok().body(REMOTE_ANSWER));
    let client = StdClient::new(config(&server)).unwrap();
    client.load_definitions(DEFS).unwrap();
    let person = NO_PROPS;
    let c = ctx(&person);
    let r = client
        .get_feature_flag_result("checkout", &c, FlagOptions::new())
        .unwrap();
    assert_eq!(
        (r.key.as_str(), r.enabled, r.variant()),
        ("checkout", true, Some("blue"))
    );
    assert_eq!(r.payload.as_deref(), Some(r#"{"copy":"new"}"#));
    let r = client
        .get_feature_flag_result("beta-ui", &c, FlagOptions::new())
        .unwrap();
    assert_eq!(
        (r.enabled, r.variant(), r.payload.as_deref()),
        (false, None, None)
    );
    let r = client
        .get_feature_flag_result("remote-flag", &c, FlagOptions::new())
        .unwrap();
    assert_eq!((r.enabled, r.variant()), (true, Some("blue")));
    assert_eq!(r.payload.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(
        client.get_feature_flag_result("unknown", &c, FlagOptions::new().only_local(true)),
        None
    );
    // The caller default applies only without a value.
    assert!(!client.is_feature_enabled_or("beta-ui", &c, true, FlagOptions::new()));
    assert!(client.is_feature_enabled_or("unknown", &c, true, FlagOptions::new().only_local(true)));
    assert!(!client.is_feature_enabled_or(
        "unknown",
        &c,
        false,
        FlagOptions::new().only_local(true)
    ));
    // Payload of a given value, without evaluating; of a value the flag does not have: none.
    assert_eq!(
        client.get_feature_flag_payload_matching(
            "checkout",
            &c,
            FlagValue::variant("blue").unwrap(),
            FlagOptions::new()
        ),
        Some(r#"{"copy":"new"}"#.to_owned())
    );
    assert_eq!(
        client.get_feature_flag_payload_matching(
            "checkout",
            &c,
            FlagValue::variant("red").unwrap(),
            FlagOptions::new()
        ),
        None
    );
    client.flush(SETTLE);
    let called: Vec<String> = flag_called_events(&server)
        .iter()
        .map(|e| {
            e["properties"]["$feature_flag"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(called, ["checkout", "beta-ui", "remote-flag", "unknown"]);
    client.shutdown(Duration::from_secs(2));
}

/// PostHog's bulk getters: `keys` scopes the evaluation and the request; values and payloads
/// come from one evaluation; nothing known gives two empty maps; no events.
#[test]
fn get_all_flags_and_payloads_with_keys() {
    const DEFS: &[u8] = br#"{"flags":[
      {"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],"payloads":{"true":"{\"color\":\"green\"}"}}},
      {"id":2,"key":"checkout","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],
        "multivariate":{"variants":[{"key":"blue","rollout_percentage":100}]},"payloads":{"blue":"{\"copy\":\"new\"}"}}},
      {"id":3,"key":"search","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}
    ]}"#;
    let server = flags_server(|_| {
        Resp::ok().body(br#"{"flags":{"remote-only":{"key":"remote-only","enabled":true,"metadata":{"payload":"not json {"}}}}"#)
    });
    let client = StdClient::new(config(&server)).unwrap();
    let person = NO_PROPS;
    let c = ctx(&person);
    // Nothing known locally and only local: both empty.
    let (values, payloads) = client.get_all_flags_and_payloads(&c, None, true);
    assert!(values.is_empty() && payloads.is_empty());
    client.load_definitions(DEFS).unwrap();
    let (values, payloads) =
        client.get_all_flags_and_payloads(&c, Some(&["beta-ui", "checkout"]), false);
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values["beta-ui"], FlagValue::Bool(true));
    assert_eq!(values["checkout"], FlagValue::variant("blue").unwrap());
    assert_eq!(payloads["beta-ui"], r#"{"color":"green"}"#);
    assert_eq!(payloads["checkout"], r#"{"copy":"new"}"#);
    assert!(
        flags_requests(&server).is_empty(),
        "decided locally: no request"
    );
    // A requested key without a definition: one request scoped to the requested keys; an
    // invalid payload is no payload.
    let (values, payloads) =
        client.get_all_flags_and_payloads(&c, Some(&["beta-ui", "remote-only"]), false);
    assert_eq!(
        values.len(),
        1,
        "the server's answer replaces local values: {values:?}"
    );
    assert_eq!(values["remote-only"], FlagValue::Bool(true));
    assert!(payloads.is_empty());
    let reqs = flags_requests(&server);
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].json()["flag_keys_to_evaluate"],
        serde_json::json!(["beta-ui", "remote-only"])
    );
    client.flush(SETTLE);
    assert!(
        flag_called_events(&server).is_empty(),
        "bulk reads send no event"
    );
    client.shutdown(Duration::from_secs(2));
}

/// A before-send hook through the std client: the delivered event carries the redaction.
#[test]
fn before_send_hooks_redact_what_is_delivered() {
    use posthog_embedded::client::{BeforeSend, EventInfo, HookFailed, PropertyVerdict};

    struct RedactEmail;
    impl BeforeSend for RedactEmail {
        fn property(
            &self,
            _: &EventInfo<'_>,
            key: &str,
            _: &str,
        ) -> Result<PropertyVerdict, HookFailed> {
            Ok(if key == "email" {
                PropertyVerdict::Redact
            } else {
                PropertyVerdict::Keep
            })
        }
    }
    static HOOK: RedactEmail = RedactEmail;

    let server = flags_server(|_| Resp::ok());
    let client = StdClient::new(config(&server)).unwrap();
    client.add_before_send(&HOOK).unwrap();
    client
        .capture("signed up", "user-1", |p| {
            p.prop("email", "a@b.c")?.prop("plan", "pro")?;
            Ok(())
        })
        .unwrap();
    client.flush(SETTLE);
    let events = delivered_events(&server);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["properties"]["email"], serde_json::Value::Null);
    assert_eq!(events[0]["properties"]["plan"], "pro");
    client.shutdown(Duration::from_secs(2));
}

/// PostHog's `evaluate_flags` on the std client: one request for the snapshot, lazy
/// de-duplicated exposure, silent payloads, filters and capture without requests.
#[test]
fn evaluate_flags_snapshot_over_the_worker() {
    let server = flags_server(|_| {
        Resp::ok().body(
            br#"{"flags":{"beta-ui":{"key":"beta-ui","enabled":true},"checkout":{"key":"checkout","enabled":true,"variant":"blue","metadata":{"payload":"{\"copy\":\"new\"}"}}},"requestId":"r-7"}"#,
        )
    });
    let client = StdClient::new(config(&server)).unwrap();
    let person = NO_PROPS;
    let c = ctx(&person);
    let mut snap = client.evaluate_flags(&c, None, false);
    assert_eq!(flags_requests(&server).len(), 1);
    assert!(snap.is_enabled("beta-ui"));
    assert_eq!(
        snap.get_flag("checkout"),
        Some(FlagValue::variant("blue").unwrap())
    );
    assert!(snap.is_enabled("beta-ui"));
    assert_eq!(
        snap.get_flag_payload("checkout").as_deref(),
        Some(r#"{"copy":"new"}"#)
    );
    assert!(!snap.is_enabled("missing"));
    let accessed = snap.only_accessed();
    let mut keys = accessed.keys();
    keys.sort();
    assert_eq!(keys, ["beta-ui", "checkout"]);
    assert_eq!(snap.only(&["beta-ui", "nope"]).keys(), ["beta-ui"]);
    client
        .capture_with_snapshot("bought", "user-1", &snap, |_| Ok(()))
        .unwrap();
    assert_eq!(
        flags_requests(&server).len(),
        1,
        "reads and capture ask nobody"
    );
    client.flush(SETTLE);
    let called: Vec<String> = flag_called_events(&server)
        .iter()
        .map(|e| {
            e["properties"]["$feature_flag"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(called, ["beta-ui", "checkout", "missing"]);
    let bought = delivered_events(&server)
        .into_iter()
        .find(|e| e["event"] == "bought")
        .unwrap();
    assert_eq!(bought["properties"]["$feature/checkout"], "blue");
    assert_eq!(
        bought["properties"]["$active_feature_flags"],
        serde_json::json!(["beta-ui", "checkout"])
    );
    client.shutdown(Duration::from_secs(2));
}
