//! The `posthog-embedded` CLI, run as a user runs it: `serve` on loopback fed by the std
//! driver and by `capture`, `fetch-definitions` against it, `eval` and `check` over the shared
//! conformance vectors, fault injection, and bad input (one clear line, a non-zero exit, never
//! a panic).

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posthog_embedded::adapters::std::{StdClient, StdConfig};
use posthog_embedded::capture::Uuid;
use posthog_embedded::flags::{FlagStore, Requirements};
use posthog_embedded_devtools::server::{Faults, LocalServer, ServerConfig};
use serde_json::{json, Value};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_posthog-embedded");
const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/sample_definitions.json"
);

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "posthog-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `posthog-embedded serve --port 0 ...`, killed on drop. Its stdout lines are collected.
pub(crate) struct Serve {
    child: Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, url, lines }
    }

    /// The URL it printed first (`http://…`, or `https://…` with `--tls`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn addr(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    pub(crate) fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Sends it `SIGTERM`, as a service manager stops it.
    pub(crate) fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }

    /// Waits until it exits.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for serve")
    }

    /// Waits until a log line contains `needle`.
    pub(crate) fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run the CLI")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Events written to `--events-out`, once at least `n` are there.
fn events_file(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("events-out lines are JSON"))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One raw HTTP/1.1 exchange; returns the whole response text (read until the server closes
/// or `Content-Length` bytes of body arrived).
pub(crate) fn raw_http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len && !head.to_ascii_lowercase().contains("connection: close") {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// `POST path` with `body` on a fresh connection (closed after the answer).
pub(crate) fn post(addr: &str, path: &str, body: &str) -> String {
    raw_http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The body of a raw HTTP response.
fn body_of(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A header's value in a raw HTTP response (name in lower case).
fn header_of<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split_once("\r\n\r\n").map_or(resp, |(h, _)| h);
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An in-process server whose log lines are collected.
fn local_server(config: ServerConfig) -> (LocalServer, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let server =
        LocalServer::start(config.log(move |l| sink.lock().unwrap().push(l.to_owned()))).unwrap();
    (server, lines)
}

/// Whether the server closes `s` within `within` (reads until EOF or a reset).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
        if start.elapsed() > within {
            return false;
        }
    }
}

#[test]
fn serve_records_what_the_std_driver_and_capture_send() {
    let dir = Scratch::new();
    let out = dir.path("events.jsonl");
    let server = Serve::start(&[
        "--definitions",
        SAMPLE,
        "--events-out",
        out.to_str().unwrap(),
    ]);

    let client =
        StdClient::new(StdConfig::new("phc_cli_test", 0x5eed).host(server.url.clone())).unwrap();
    client
        .identify("device-1", |p| {
            p.set(|s| {
                s.prop("firmware_version", "1.4.2")?;
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
    for i in 0..3u32 {
        client
            .capture("reading", "device-1", |p| {
                p.prop("n", i)?;
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(client.flush(Duration::from_secs(10)).pending, 0);
    client.shutdown(Duration::from_secs(2));

    let sent = run(&[
        "capture",
        "--host",
        &server.url,
        "--api-key",
        "phc_cli_test",
        "--distinct-id",
        "device-2",
        "--event",
        "door opened",
        "--prop",
        "door=front",
        "--prop",
        "battery:=87",
    ]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(
        stdout(&sent).contains("delivered `door opened`"),
        "{}",
        stdout(&sent)
    );
    assert!(
        !stdout(&sent).contains("phc_cli_test"),
        "the key is never printed"
    );

    let events = events_file(&out, 5);
    assert_eq!(events.len(), 5);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["$identify", "reading", "reading", "reading", "door opened"]
    );
    let mut uuids = std::collections::HashSet::new();
    for e in &events {
        assert_eq!(e["problems"], json!([]), "{e}");
        assert_eq!(e["duplicate"], false);
        assert_eq!(e["path"], "/batch/");
        assert_eq!(e["event"]["properties"]["$lib"], "posthog-embedded");
        let u = e["event"]["uuid"].as_str().unwrap();
        assert!(Uuid::parse(u).is_ok(), "{u}");
        assert!(uuids.insert(u.to_owned()));
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(e.get("api_key").is_none() && !e.to_string().contains("phc_cli_test"));
    }
    assert_eq!(events[4]["event"]["properties"]["battery"], 87);
    assert_eq!(events[4]["event"]["properties"]["door"], "front");
    assert_eq!(
        events[0]["event"]["properties"]["$set"]["firmware_version"],
        "1.4.2"
    );
    assert!(
        server.wait_log("POST /batch/ 200  1 event"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("phc_cli_test"));
}

#[test]
fn serve_answers_flags_decide_and_definitions_with_etags() {
    let server = Serve::start(&["--definitions", SAMPLE]);
    let addr = server.addr();
    let defs = std::fs::read_to_string(SAMPLE).unwrap();

    // Definitions need a secret key, and honour If-None-Match.
    let no_auth = raw_http(addr, "GET /flags/definitions?token=t&send_cohorts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(no_auth.starts_with("HTTP/1.1 401"), "{no_auth}");
    let project_key = raw_http(addr, "GET /flags/definitions?token=t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer phc_x\r\nConnection: close\r\n\r\n");
    assert!(project_key.starts_with("HTTP/1.1 401"), "{project_key}");
    let ok = raw_http(addr, "GET /flags/definitions?token=t&send_cohorts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer phs_secret\r\nConnection: close\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let (head, body) = ok.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, defs);
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .to_owned();
    let again = raw_http(addr, &format!("GET /flags/definitions?token=t&send_cohorts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer phs_secret\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"));
    assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    let no_cohorts = raw_http(addr, "GET /flags/definitions?token=t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer phs_secret\r\nConnection: close\r\n\r\n");
    let doc: Value = serde_json::from_str(no_cohorts.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert!(doc.get("cohorts").is_none() && doc["flags"].as_array().unwrap().len() == 20);

    // A std client polls them from the server and evaluates locally.
    let client = StdClient::new(
        StdConfig::new("phc_cli_test", 0x5eed)
            .host(server.url.clone())
            .secret_key("phs_secret"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.is_local_evaluation_ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(client.is_local_evaluation_ready());
    client.shutdown(Duration::from_secs(1));

    // /flags answers with our evaluator; /decide with the legacy shape.
    let body = json!({"token": "phc_x", "distinct_id": "device-8c1f-42",
        "person_properties": {"firmware_version": "1.4.2"},
        "flag_keys_to_evaluate": ["new-sampling-rate", "ota-updates", "lab-devices"]})
    .to_string();
    let flags = raw_http(addr, &format!("POST /flags/?v=2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    let v: Value = serde_json::from_str(flags.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(v["flags"]["new-sampling-rate"]["enabled"], true);
    assert_eq!(
        v["flags"]["new-sampling-rate"]["reason"]["code"],
        "condition_match"
    );
    assert_eq!(
        v["flags"]["new-sampling-rate"]["metadata"]["payload"],
        r#"{"interval_ms": 5000}"#
    );
    assert_eq!(v["flags"]["lab-devices"]["failed"], true);
    assert_eq!(v["errorsWhileComputingFlags"], true);
    assert_eq!(v["flags"].as_object().unwrap().len(), 3);
    assert!(Uuid::parse(v["requestId"].as_str().unwrap()).is_ok());

    let decide = raw_http(addr, &format!("POST /decide/?v=3 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    let v: Value = serde_json::from_str(decide.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(v["featureFlags"]["ota-updates"], true);
    assert_eq!(
        v["featureFlagPayloads"]["ota-updates"],
        r#"{"channel": "beta"}"#
    );

    // Bad requests get a JSON error, and the server goes on.
    let bad = raw_http(
        addr,
        "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{nope",
    );
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("not JSON"),
        "{bad}"
    );
    let no_key = r#"{"batch": []}"#;
    let bad = raw_http(addr, &format!("POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{no_key}", no_key.len()));
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("api_key"),
        "{bad}"
    );
    let lost = raw_http(
        addr,
        "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(lost.starts_with("HTTP/1.1 404"), "{lost}");
    let wrong = raw_http(
        addr,
        "GET /batch/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(wrong.starts_with("HTTP/1.1 405"), "{wrong}");
    assert!(server.wait_log("GET /nowhere 404"));
}

#[test]
fn serve_takes_gzip_keeps_connections_alive_and_flags_problems() {
    use flate2::write::GzEncoder;
    let dir = Scratch::new();
    let out = dir.path("events.jsonl");
    let server = Serve::start(&["--events-out", out.to_str().unwrap()]);
    // The second event has only warnings: PostHog ingests it.
    let batch = json!({"api_key": "phc_x", "batch": [
        {"event": "ok", "distinct_id": "d", "uuid": "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01", "offset": 2000,
         "properties": {"$lib": "posthog-embedded", "$lib_version": "0.1.0"}},
        {"event": "warned", "distinct_id": "d", "timestamp": "yesterday", "type": "capture",
         "properties": {"$groups": {"company": 5}, "$lib": 1}}]})
    .to_string();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(batch.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();

    // Two requests over one kept-alive connection.
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        let head = format!("POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", gz.len());
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&gz).unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains("{\"status\":1}") {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "the connection was closed");
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    }
    let events = events_file(&out, 4);
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["problems"], json!([]));
    assert_eq!(events[0]["duplicate"], false);
    // offset 2000: the event time is 2 s before arrival.
    let received =
        posthog_embedded::UnixMillis::parse_rfc3339(events[0]["received_at"].as_str().unwrap())
            .unwrap();
    let time =
        posthog_embedded::UnixMillis::parse_rfc3339(events[0]["timestamp"].as_str().unwrap())
            .unwrap();
    assert_eq!(received.as_millis() - time.as_millis(), 2000);
    let problems = events[1]["problems"].to_string();
    for p in [
        "no `uuid`",
        "is not an ISO 8601 time",
        "`type` is deprecated",
        "`$groups`: the group key of `company` is not a string",
        "`$lib` is not a string",
    ] {
        assert!(problems.contains(p), "{problems} lacks {p}");
    }
    assert!(!problems.contains("no `$lib"), "{problems}");
    // The same uuid again: a retry PostHog de-duplicates.
    assert_eq!(events[2]["duplicate"], true);
    assert!(server.wait_log("(gzip"), "{}", server.log());
    assert!(server.wait_log("! event 2 (warned)"), "{}", server.log());

    // An event with fatal problems: PostHog rejects the whole request, good events included.
    let bad = json!({"api_key": "phc_x", "batch": [
        {"event": "fine", "distinct_id": "d", "uuid": "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f02"},
        {"event": "bad", "uuid": "not-a-uuid", "timestamp": 1700000000,
         "properties": {"$lib": "posthog-embedded", "$lib_version": "0.1.0"}}]})
    .to_string();
    let resp = post(server.addr(), "/batch/", &bad);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    let detail: Value = serde_json::from_str(body_of(&resp)).unwrap();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("event 2 (bad): `distinct_id` is missing"),
        "{detail}"
    );
    assert!(server.wait_log("POST /batch/ 400"), "{}", server.log());
    for p in [
        "! event 2 (bad): `distinct_id` is missing",
        "is not a UUID",
        "not an ISO 8601 string",
        "nothing recorded",
    ] {
        assert!(server.log().contains(p), "{} lacks {p}", server.log());
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        events_file(&out, 0).len(),
        4,
        "nothing of a rejected request is recorded"
    );
}

#[test]
fn fault_injection() {
    // Every request fails with 400: a terminal error, so `capture` reports it at once.
    let server = Serve::start(&["--status", "400"]);
    let o = run(&[
        "capture",
        "--host",
        &server.url,
        "--api-key",
        "phc_x",
        "--distinct-id",
        "d",
        "--event",
        "e",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("400"), "{}", stderr(&o));
    assert!(server.wait_log("fault injected"));
    drop(server);

    // Retry-After on failures, and Connection: close.
    let server = Serve::start(&[
        "--fail-rate",
        "1.0",
        "--retry-after",
        "7",
        "--close-connections",
    ]);
    let resp = raw_http(
        server.addr(),
        "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    );
    let lower = resp.to_ascii_lowercase();
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(lower.contains("retry-after: 7"), "{resp}");
    assert!(lower.contains("connection: close"), "{resp}");
    drop(server);

    // A delay holds every answer back.
    let server = Serve::start(&["--delay-ms", "300"]);
    let t = Instant::now();
    let resp = raw_http(
        server.addr(),
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn fetch_definitions_with_etag() {
    let dir = Scratch::new();
    let file = dir.path("defs.json");
    let server = Serve::start(&["--definitions", SAMPLE]);
    let fetch = |key: &str, extra: &[&str]| {
        let mut args = vec![
            "fetch-definitions",
            "--host",
            &server.url,
            "--secret-key",
            key,
            "--api-key",
            "phc_x",
            "-o",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = fetch("phs_secret", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("saved 20 flags"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("FlagStore<20, 75, 1077>"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(SAMPLE).unwrap()
    );
    let mut etag_file = file.clone().into_os_string();
    etag_file.push(".etag");
    assert!(std::fs::read_to_string(&etag_file)
        .unwrap()
        .starts_with('"'));

    let o = fetch("phs_secret", &[]);
    assert!(
        o.status.success() && stdout(&o).contains("up to date"),
        "{}",
        stdout(&o)
    );
    let o = fetch("phs_secret", &["--force"]);
    assert!(stdout(&o).contains("saved 20 flags"));

    let o = fetch("phc_not_a_secret", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("phc_not_a_secret"));
    assert!(server.wait_log("304  not modified"));
}

/// What `eval --json` says for one conformance case, as `{"value": ..}` or
/// `{"inconclusive": reason}`.
fn eval_case(dir: &Scratch, case: &Value) -> Value {
    let doc = common::case_definitions(case);
    let path = dir.path("case.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let key = case["flag"]["key"].as_str().unwrap();
    let mut args: Vec<String> = vec![
        "eval".into(),
        "--json".into(),
        "-d".into(),
        path.to_str().unwrap().into(),
        "--distinct-id".into(),
        case["distinct_id"].as_str().unwrap().into(),
        "--flag".into(),
        key.into(),
    ];
    for (k, v) in case["person_properties"].as_object().into_iter().flatten() {
        args.push("--prop".into());
        args.push(format!("{k}:={v}"));
    }
    for (t, k) in case["groups"].as_object().into_iter().flatten() {
        args.push("--group".into());
        args.push(format!(
            "{t}={}",
            k.as_str().map_or_else(|| k.to_string(), str::to_owned)
        ));
        for (pk, pv) in case["group_properties"][t]
            .as_object()
            .into_iter()
            .flatten()
        {
            args.push("--group-prop".into());
            args.push(format!("{t}:{pk}:={pv}"));
        }
    }
    if let Some(d) = case.get("device_id").and_then(Value::as_str) {
        args.push("--device-id".into());
        args.push(d.into());
    }
    match case.get("now_utc").and_then(Value::as_str) {
        Some(now) => {
            args.push("--now".into());
            args.push(now.into());
        }
        None => args.push("--no-wall-clock".into()),
    }
    let o = Command::new(BIN).args(&args).output().unwrap();
    assert!(o.status.success(), "{}: {}", case["id"], stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v["flags"][key];
    if r["inconclusive"].is_null() {
        json!({"value": r["value"]})
    } else {
        json!({"inconclusive": r["inconclusive"]})
    }
}

#[test]
fn eval_agrees_with_the_conformance_cases() {
    let v = common::load("local_evaluation_cases.json");
    let dir = Scratch::new();
    let cases = v["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let got = eval_case(&dir, case);
        // The CLI prepares the context as the SDKs' client layer does (posthog-python's
        // `_add_local_person_and_group_properties`): every
        // group passed gets `{"$group_key": key}` properties. posthog-python's
        // test_group_flag_is_inconclusive_when_group_properties_missing calls the evaluator
        // below that layer; posthog-node, which goes through it, observed the CLI's answer.
        let want = if case["id"] == "le-0121" {
            &case["node_observed"]
        } else {
            &case["expected"]
        };
        let ok = match (
            want.get("value"),
            want.get("inconclusive"),
            want.get("requires_server_evaluation"),
        ) {
            (Some(value), _, _) => got.get("value") == Some(value),
            (_, Some(reason), _) => got
                .get("inconclusive")
                .is_some_and(|g| reason.is_null() || g == reason),
            (_, _, Some(_)) => {
                got.get("inconclusive") == Some(&json!("requires_server_evaluation"))
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {got}, expected {want}", case["id"]));
        }
    }
    println!(
        "eval CLI: {}/{} local evaluation cases agree",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn check_sizes_every_definitions_example() {
    let v = common::load("definitions_payload_examples.json");
    let dir = Scratch::new();
    let mut server_only = 0;
    let mut local = 0;
    for (i, case) in v["cases"].as_array().unwrap().iter().enumerate() {
        let doc = case["payload"].to_string();
        let path = dir.path(&format!("defs-{i}.json"));
        std::fs::write(&path, &doc).unwrap();
        let Ok(need) = FlagStore::<512, 16384, 1_048_576>::requirements(doc.as_bytes()) else {
            // The library refuses it: so must the CLI, clearly.
            let o = run(&["check", "-d", path.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(2), "{}", case["fixture"]);
            continue;
        };
        let o = run(&["check", "--json", "-d", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}: {}", case["fixture"], stderr(&o));
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["requirements"]["flags"], need.flags);
        assert_eq!(r["requirements"]["nodes"], need.nodes);
        assert_eq!(r["requirements"]["bytes"], need.bytes);
        assert_eq!(
            r["requirements"]["cortex_m_store_bytes"],
            need.cortex_m_store_bytes()
        );
        assert_eq!(r["analyzed"], true);
        let s = r["server_only"].as_object().unwrap().len();
        let l = r["local"].as_object().unwrap().len();
        assert_eq!(s + l, need.flags, "{}", case["fixture"]);
        server_only += s;
        local += l;
        // Exactly the flags the library cannot decide for lack of data are listed as such.
        let text = run(&["check", "-d", path.to_str().unwrap()]);
        assert!(stdout(&text).contains("Only the server can decide"));
    }
    println!("check CLI: {local} flags decidable on a device, {server_only} server-only");
    assert!(local > 0 && server_only > 0);

    // --capacity: exit 1 when the definitions do not fit, naming what is over.
    let o = run(&["check", "-d", SAMPLE, "--capacity", "32,128,2048"]);
    assert!(
        o.status.success() && stdout(&o).contains("fits"),
        "{}",
        stdout(&o)
    );
    let o = run(&["check", "-d", SAMPLE, "--capacity", "16,128,512"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("flags: needs 20, has 16"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("bytes of text: needs 1077, has 512"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_prints_a_table_for_a_device() {
    let o = run(&[
        "eval",
        "-d",
        SAMPLE,
        "--distinct-id",
        "device-8c1f-42",
        "--prop",
        "firmware_version=1.4.2",
        "--flag",
        "new-sampling-rate",
        "--flag",
        "watchdog-tuning",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let row = text
        .lines()
        .find(|l| l.starts_with("new-sampling-rate"))
        .unwrap();
    assert!(
        row.contains("true")
            && row.contains(r#"{"interval_ms": 5000}"#)
            && row.contains("Matched condition set 1"),
        "{row}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("watchdog-tuning"))
        .unwrap();
    assert!(
        row.contains("missing_context") && row.contains("uptime_s"),
        "{row}"
    );
}

#[test]
fn bad_input_is_one_clear_line_and_a_nonzero_exit() {
    let dir = Scratch::new();
    let malformed = dir.path("bad.json");
    std::fs::write(&malformed, "{\"flags\": [").unwrap();
    let missing = dir.path("missing.json");
    // Command lines, split on spaces; `{missing}`, `{malformed}` and `{sample}` stand for
    // paths (which may contain spaces themselves).
    const SEND: &str = "capture --host http://127.0.0.1:1 --api-key k --distinct-id d --event e";
    let cases: Vec<(String, i32, &str)> = vec![
        (
            "eval -d {missing} --distinct-id d".into(),
            2,
            "missing.json",
        ),
        ("check -d {missing}".into(), 2, "No such file"),
        (
            "eval -d {malformed} --distinct-id d".into(),
            2,
            "not valid JSON",
        ),
        ("check -d {malformed}".into(), 2, "not valid JSON"),
        (
            "eval -d {sample} --distinct-id d --flag nope".into(),
            2,
            "unknown flag `nope`",
        ),
        (
            "eval -d {sample} --distinct-id d --prop novalue".into(),
            2,
            "expected key=value",
        ),
        (
            "eval -d {sample} --distinct-id d --prop n:=nope".into(),
            2,
            "not JSON",
        ),
        (
            "eval -d {sample} --distinct-id d --group-prop fleet:plan=x".into(),
            2,
            "no --group fleet",
        ),
        (
            "eval -d {sample} --distinct-id d --now yesterday".into(),
            2,
            "--now",
        ),
        (
            "check -d {sample} --capacity 1,2".into(),
            2,
            "FLAGS,NODES,BYTES",
        ),
        (
            "check -d {sample} --capacity 18446744073709551615,1,1".into(),
            2,
            "larger than 2147483648",
        ),
        (
            format!("{SEND} --timeout 18446744073709551615"),
            2,
            "1..=86400",
        ),
        (format!("{SEND} --timeout 0"), 2, "1..=86400"),
        (
            "serve --port 0 --definitions {missing}".into(),
            2,
            "missing.json",
        ),
        (
            "serve --port 0 --fail-rate 2".into(),
            2,
            "between 0.0 and 1.0",
        ),
        (
            "capture --host ftp://x --api-key k --distinct-id d --event e".into(),
            2,
            "--host",
        ),
        (format!("{SEND} --timeout 2"), 1, "not delivered"),
        ("frobnicate".into(), 2, "unrecognized subcommand"),
    ];
    for (line, code, needle) in cases {
        let args: Vec<&str> = line
            .split(' ')
            .map(|w| match w {
                "{missing}" => missing.to_str().unwrap(),
                "{malformed}" => malformed.to_str().unwrap(),
                "{sample}" => SAMPLE,
                w => w,
            })
            .collect();
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{line}: {err}");
        assert!(err.contains(needle), "{line}: {err:?} lacks {needle:?}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{line}: {err}"
        );
        // Our own errors are one line; clap's usage errors (bad values, unknown commands)
        // add a usage hint.
        let clap_error = ["frobnicate", "--capacity", "--fail-rate", "--timeout"]
            .iter()
            .any(|w| args.contains(w));
        if code == 2 && !clap_error {
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{line}: one line, got {err:?}"
            );
        }
    }
}

#[test]
fn serve_never_prints_or_keeps_the_project_token() {
    let dir = Scratch::new();
    let out = dir.path("events.jsonl");
    let server = Serve::start(&[
        "--definitions",
        SAMPLE,
        "--events-out",
        out.to_str().unwrap(),
    ]);
    let addr = server.addr();
    let defs = raw_http(addr, "GET /flags/definitions?token=phc_SECRET&send_cohorts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer phs_x\r\nConnection: close\r\n\r\n");
    assert!(defs.starts_with("HTTP/1.1 200"), "{defs}");
    // A single event on /capture/, with the token inside the event and its properties.
    let event = json!({"api_key": "phc_SECRET", "$token": "phc_SECRET", "event": "single",
        "distinct_id": "d", "uuid": "0190a8f4-1c2b-7d3e-8f4a-5b6c7d8e9f01",
        "properties": {"token": "phc_SECRET", "$token": "phc_SECRET", "api_key": "phc_SECRET", "kept": 1}});
    let resp = post(addr, "/capture/?api_key=phc_SECRET", &event.to_string());
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let events = events_file(&out, 1);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"]["event"], "single");
    assert_eq!(events[0]["event"]["properties"], json!({"kept": 1}));
    assert!(
        server.wait_log("POST /capture/?api_key=<redacted> 200"),
        "{}",
        server.log()
    );
    assert!(
        server.wait_log("GET /flags/definitions?token=<redacted>&send_cohorts 200"),
        "{}",
        server.log()
    );
    assert!(!server.log().contains("SECRET"), "{}", server.log());
    assert!(!std::fs::read_to_string(&out).unwrap().contains("SECRET"));
}

#[test]
fn serve_derives_event_times_like_posthog() {
    let dir = Scratch::new();
    let out = dir.path("events.jsonl");
    let server = Serve::start(&["--events-out", out.to_str().unwrap()]);
    // The device clock says 2024-01-02T03:04:05 (no offset: UTC) when it sends.
    let ignore = json!({"$ignore_sent_at": true});
    let batch = json!({"api_key": "phc_x", "sent_at": "2024-01-02T03:04:05", "batch": [
        {"event": "naive", "distinct_id": "d", "timestamp": "2024-01-02T03:04:05.250", "properties": ignore},
        {"event": "date", "distinct_id": "d", "timestamp": "2024-01-02", "properties": ignore},
        {"event": "hours", "distinct_id": "d", "timestamp": "2024-01-02T05:04:05+02", "properties": ignore},
        {"event": "compact", "distinct_id": "d", "timestamp": "2024-01-02T01:34:05-0130", "properties": ignore},
        {"event": "future", "distinct_id": "d", "offset": -60000},
        {"event": "skewed", "distinct_id": "d", "timestamp": "2024-01-02T03:04:00"},
    ]})
    .to_string();
    let resp = post(server.addr(), "/batch/", &batch);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let events = events_file(&out, 6);
    let ms = |v: &Value| {
        posthog_embedded::UnixMillis::parse_rfc3339(v.as_str().unwrap())
            .unwrap()
            .as_millis()
    };
    let at = |i: usize| events[i]["timestamp"].as_str().unwrap().to_owned();
    assert_eq!(at(0), "2024-01-02T03:04:05.250Z");
    assert_eq!(at(1), "2024-01-02T00:00:00.000Z");
    assert_eq!(at(2), "2024-01-02T03:04:05.000Z");
    assert_eq!(at(3), "2024-01-02T03:04:05.000Z");
    for e in &events {
        assert!(!e["problems"].to_string().contains("ISO 8601"), "{e}");
    }
    // A negative offset is in the future.
    assert_eq!(
        ms(&events[4]["timestamp"]) - ms(&events[4]["received_at"]),
        60_000
    );
    // timestamp 5 s before sent_at: 5 s before arrival.
    assert_eq!(
        ms(&events[5]["received_at"]) - ms(&events[5]["timestamp"]),
        5_000
    );

    // A slow upload: the request arrives when its body has, not when it started.
    let body =
        json!({"api_key": "phc_x", "batch": [{"event": "slow", "distinct_id": "d", "offset": 0}]})
            .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(
        format!(
            "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let before_rest = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    s.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let events = events_file(&out, 7);
    assert_eq!(events[6]["event"]["event"], "slow");
    assert!(
        ms(&events[6]["received_at"]) >= before_rest,
        "{} was stamped before its body arrived ({before_rest})",
        events[6]["received_at"]
    );
}

#[test]
fn huge_numbers_do_not_panic() {
    assert_eq!(
        Requirements {
            flags: usize::MAX,
            nodes: usize::MAX,
            bytes: usize::MAX,
        }
        .cortex_m_store_bytes(),
        usize::MAX
    );
    // The largest capacity `check` takes is sized without overflow.
    let big = "2147483648,2147483648,2147483648";
    let o = run(&["check", "-d", SAMPLE, "--capacity", big]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("fits"), "{}", stdout(&o));

    // Waiting "forever" does not overflow the deadline.
    let (server, _) = local_server(ServerConfig::default());
    let url = server.addr().to_string();
    let waiter = std::thread::spawn(move || {
        let resp = post(
            &url,
            "/batch/",
            r#"{"api_key": "phc_x", "batch": [{"event": "e", "distinct_id": "d"}]}"#,
        );
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    });
    assert!(server.wait_for_events(1, Duration::MAX));
    waiter.join().unwrap();
}

#[test]
fn check_makes_dependents_of_server_only_flags_server_only() {
    let dir = Scratch::new();
    let path = dir.path("deps.json");
    let flag = |id: u32, key: &str, props: Value| {
        json!({"id": id, "key": key, "active": true,
            "filters": {"groups": [{"properties": props, "rollout_percentage": 100}]}})
    };
    let doc = json!({"flags": [
        // Cohort 99 is not in the definitions: a static cohort only the server knows.
        flag(1, "a", json!([{"key": "id", "type": "cohort", "value": 99}])),
        flag(2, "b", json!([{"key": "a", "type": "flag", "value": true,
            "operator": "flag_evaluates_to", "dependency_chain": ["a"]}])),
        flag(3, "c", json!([{"key": "b", "type": "flag", "value": true,
            "operator": "flag_evaluates_to", "dependency_chain": ["a", "b"]}])),
        flag(4, "d", json!([])),
    ], "cohorts": {}});
    std::fs::write(&path, doc.to_string()).unwrap();
    let p = path.to_str().unwrap();
    let o = run(&["check", "--json", "-d", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let server_only = r["server_only"].as_object().unwrap();
    let mut keys: Vec<&str> = server_only.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["a", "b", "c"], "{r}");
    assert_eq!(
        server_only["b"],
        json!(["depends on flag `a`, which only the server can decide"])
    );
    assert_eq!(
        server_only["c"],
        json!(["depends on flag `b`, which only the server can decide"])
    );
    assert_eq!(r["local"].as_object().unwrap().len(), 1);
    // `eval` agrees: the device cannot decide them.
    let o = run(&["eval", "--json", "-d", p, "--distinct-id", "x"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["a", "b", "c"] {
        assert!(!v["flags"][k]["inconclusive"].is_null(), "{k}: {v}");
    }
    assert!(v["flags"]["d"]["inconclusive"].is_null());
    let text = run(&["check", "-d", p]);
    assert!(
        stdout(&text).contains("Only the server can decide (3)"),
        "{}",
        stdout(&text)
    );
}

#[test]
fn connections_time_out_and_malformed_http_is_logged() {
    let (server, log) =
        local_server(ServerConfig::default().header_read_timeout(Duration::from_millis(300)));
    let addr = server.addr().to_string();
    // Connected and never sending anything.
    let mut silent = TcpStream::connect(&addr).unwrap();
    // Idle after a request on a kept-alive connection.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"ok\"") {
        let n = kept.read(&mut chunk).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&chunk[..n]);
    }
    // Half a request head, then nothing.
    let mut partial = TcpStream::connect(&addr).unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    for (what, s) in [
        ("silent", &mut silent),
        ("kept", &mut kept),
        ("partial", &mut partial),
    ] {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "{what}: the connection was not closed"
        );
    }
    // Not HTTP at all.
    let garbage = raw_http(&addr, "NOT HTTP AT ALL\r\n\r\n");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"),
        "{garbage}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let errors = || -> Vec<String> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("connection from 127.0.0.1:"))
            .cloned()
            .collect()
    };
    while errors().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let errors = errors();
    // The half-sent head and the garbage; an idle connection closing is not news.
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().any(|l| l.contains("timeout")), "{errors:#?}");
    assert!(errors.iter().all(|l| !l.contains('\n')), "{errors:#?}");
}

#[test]
fn fault_dice_do_not_depend_on_flags_traffic() {
    let pattern = |path: &str, body: &str| -> Vec<bool> {
        let (server, _) = local_server(
            ServerConfig::default().faults(Faults::none().fail_rate(Some(0.5)).seed(7)),
        );
        let addr = server.addr().to_string();
        (0..24)
            .map(|_| post(&addr, path, body).starts_with("HTTP/1.1 200"))
            .collect()
    };
    let batches = pattern(
        "/batch/",
        r#"{"api_key": "phc_x", "batch": [{"event": "e", "distinct_id": "d"}]}"#,
    );
    let flags = pattern("/flags/?v=2", r#"{"token": "phc_x", "distinct_id": "d"}"#);
    assert!(
        batches.contains(&true) && batches.contains(&false),
        "{batches:?}"
    );
    assert_eq!(batches, flags);
}

#[test]
fn local_server_speaks_the_protocol_details() {
    use flate2::write::GzEncoder;
    let dir = Scratch::new();
    let path = dir.path("defs.json");
    let cohorts = r#", "cohorts": {"5": {"type": "OR", "values": []}}"#;
    let doc = format!(
        r#"{{"flags": [
  {{"id": 1, "key": "on", "active": true, "filters": {{"groups": [{{"properties": [], "rollout_percentage": 100}}]}}}},
  {{"id": 2, "key": "variant", "active": true, "filters": {{"groups": [{{"properties": [], "rollout_percentage": 100}}],
    "multivariate": {{"variants": [{{"key": "blue", "rollout_percentage": 100}}]}}}}}}
 ],
 "zeta": 123456789012345678901234567890{cohorts}, "group_type_mapping": {{}},
 "minimal_flag_called_events": true, "alpha": 1.50}}
"#
    );
    std::fs::write(&path, &doc).unwrap();
    let (server, log) = local_server(ServerConfig::default().definitions(&path));
    let addr = server.addr().to_string();
    let get_defs = |query: &str, extra: &str| {
        raw_http(
            &addr,
            &format!("GET /flags/definitions{query} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"),
        )
    };

    // Without cohorts: the member is cut out and every other byte is kept.
    let plain = get_defs("?token=phc_SECRET", "authorization: bearer phs_x\r\n");
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
    assert_eq!(body_of(&plain), doc.replace(cohorts, ""));
    let no = get_defs("?send_cohorts=false", "Authorization: BEARER phs_x\r\n");
    assert_eq!(body_of(&no), doc.replace(cohorts, ""));
    let with = get_defs("?send_cohorts", "Authorization: Bearer phs_x\r\n");
    assert_eq!(body_of(&with), doc);
    let any = get_defs("", "Authorization: Bearer phs_x\r\nIf-None-Match: *\r\n");
    assert!(any.starts_with("HTTP/1.1 304"), "{any}");
    let summary = server.requests();
    assert!(
        summary[0].path == "/flags/definitions?token=<redacted>",
        "{summary:?}"
    );

    // /flags v4: a typed value; the definitions' minimal_flag_called_events passed on.
    let body = json!({"token": "phc_x", "distinct_id": "d",
        "flag_keys_to_evaluate": ["on", "variant", "nope"]})
    .to_string();
    let v4: Value = serde_json::from_str(body_of(&post(&addr, "/flags/?v=4", &body))).unwrap();
    assert_eq!(v4["flags"]["on"]["value"], true, "{v4}");
    assert_eq!(v4["flags"]["variant"]["value"], "blue", "{v4}");
    assert_eq!(v4["minimalFlagCalledEvents"], true);
    let one =
        json!({"token": "phc_x", "distinct_id": "d", "flag_keys_to_evaluate": ["on"]}).to_string();
    let v2: Value = serde_json::from_str(body_of(&post(&addr, "/flags/?v=2", &one))).unwrap();
    assert!(v2["flags"]["on"].get("value").is_none(), "{v2}");
    // /decide v4 answers the flags map, v3 the legacy shape.
    let d4: Value = serde_json::from_str(body_of(&post(&addr, "/decide/?v=4", &one))).unwrap();
    assert_eq!(d4["flags"]["on"]["enabled"], true, "{d4}");
    assert!(d4.get("featureFlags").is_none());
    let d3: Value = serde_json::from_str(body_of(&post(&addr, "/decide/?v=3", &one))).unwrap();
    assert_eq!(d3["featureFlags"]["on"], true, "{d3}");

    // 405 names the method to use.
    let wrong = raw_http(
        &addr,
        "GET /batch/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(wrong.starts_with("HTTP/1.1 405"), "{wrong}");
    assert_eq!(header_of(&wrong, "allow"), Some("POST"), "{wrong}");
    let wrong = post(&addr, "/flags/definitions", "{}");
    assert_eq!(header_of(&wrong, "allow"), Some("GET"), "{wrong}");

    // A body declared larger than the limit is refused before it is read: only the head is
    // sent, and the connection stays open, so the answer can only come from the declared length
    // (a server waiting for the body would answer nothing).
    let big = raw_http(
        &addr,
        "POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n",
    );
    assert!(big.starts_with("HTTP/1.1 413"), "{big:?}");
    assert!(body_of(&big).contains("body larger than"), "{big:?}");

    // A gzip body of several members (as streaming compressors write).
    let text = json!({"api_key": "phc_x", "batch": [
        {"event": "a", "distinct_id": "d1"}, {"event": "b", "distinct_id": "d2"},
        {"event": "c", "distinct_id": "d1"}]})
    .to_string();
    let (x, y) = text.split_at(text.len() / 2);
    let mut gz = Vec::new();
    for part in [x, y] {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(part.as_bytes()).unwrap();
        gz.extend_from_slice(&e.finish().unwrap());
    }
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(format!("POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", gz.len()).as_bytes()).unwrap();
    s.write_all(&gz).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(server.total_events(), 3);

    // Many problems: the first 20 lines, then a count.
    let many: Vec<Value> = (0..30)
        .map(|i| json!({"event": format!("e{i}"), "distinct_id": "d"}))
        .collect();
    let resp = post(
        &addr,
        "/batch/",
        &json!({"api_key": "phc_x", "batch": many}).to_string(),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let lines = log.lock().unwrap().join("\n");
    assert!(lines.contains("3 events, "), "{lines}");
    assert!(lines.contains("2 distinct ids: a, b, c"), "{lines}");
    assert!(
        lines.contains("d: 2 flags evaluated, 2 on, 1 unknown"),
        "{lines}"
    );
    assert!(lines.contains("! unknown flags: nope"), "{lines}");
    assert!(!lines.contains("not decidable here"), "{lines}");
    assert!(lines.contains("d: 1 flag evaluated, 1 on"), "{lines}");
    let many_line = lines
        .split("\n")
        .skip_while(|l| !l.contains("30 events"))
        .take_while(|l| !l.contains("POST") || l.contains("30 events"))
        .collect::<Vec<_>>();
    let shown = many_line.iter().filter(|l| l.contains("! event")).count();
    assert_eq!(shown, 20, "{many_line:#?}");
    assert!(lines.contains("… and 10 more"), "{lines}");
    assert!(!lines.contains("SECRET"));
}

#[test]
fn eval_names_a_missing_wall_clock_only_without_one() {
    let row = |clock: &[&str]| {
        let mut args = vec![
            "eval",
            "-d",
            SAMPLE,
            "--distinct-id",
            "d",
            "--flag",
            "calibration-v2",
        ];
        args.extend_from_slice(clock);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .find(|l| l.starts_with("calibration-v2"))
            .unwrap()
            .to_owned()
    };
    let with = row(&["--now", "2026-03-01T00:00:00Z"]);
    assert!(
        with.contains("installed_at") && !with.contains("wall clock"),
        "{with}"
    );
    let without = row(&["--no-wall-clock"]);
    assert!(without.contains("a wall clock"), "{without}");
}

#[test]
fn serve_startup_lines() {
    // No faults in effect: no "faults:" line at all.
    let server = Serve::start(&["--fail-rate", "0", "--status", "500"]);
    assert!(server.wait_log("press Ctrl-C"), "{}", server.log());
    assert!(!server.log().contains("faults:"), "{}", server.log());
    drop(server);
    // Listening beyond loopback is worth a warning.
    let server = Serve::start(&["--bind", "0.0.0.0"]);
    assert!(server.wait_log("press Ctrl-C"), "{}", server.log());
    assert!(
        server
            .log()
            .contains("warning: 0.0.0.0 is not a loopback address"),
        "{}",
        server.log()
    );
    drop(server);
    // Only error statuses can be injected (a serve that started would run until killed).
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--status", "302"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "--status 302 was taken");
    assert!(stderr(&o).contains("400..=599"), "{}", stderr(&o));
    // A port in use: the error names the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = run(&["serve", "--port", &port]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&o)
    );
}

/// A server that answers one connection with `answer` and hands back the request head.
fn canned_server(answer: Vec<u8>) -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        s.write_all(&answer).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (url, t)
}

#[test]
fn fetch_definitions_takes_large_documents_and_new_etags() {
    let dir = Scratch::new();
    let file = dir.path("defs.json");
    let mut etag_file = file.clone().into_os_string();
    etag_file.push(".etag");
    let fetch = |url: &str| {
        run(&[
            "fetch-definitions",
            "--host",
            url,
            "--secret-key",
            "phs_x",
            "-o",
            file.to_str().unwrap(),
        ])
    };
    // More flags than this tool's own store holds (512): still a document a device may use.
    let flags: Vec<Value> = (0..600)
        .map(|i| {
            json!({"id": i, "key": format!("f{i}"), "active": true,
            "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}})
        })
        .collect();
    let doc = json!({"flags": flags}).to_string();
    let (url, t) = canned_server(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"big\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{doc}",
            doc.len()
        )
        .into_bytes(),
    );
    let o = fetch(&url);
    t.join().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("saved 600 flags"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), doc);
    assert_eq!(std::fs::read_to_string(&etag_file).unwrap(), "\"big\"");

    // 304 with a new ETag for the same document: the new one is kept.
    let (url, t) = canned_server(
        b"HTTP/1.1 304 Not Modified\r\nETag: \"renamed\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    );
    let o = fetch(&url);
    let head = t.join().unwrap();
    assert!(
        head.to_ascii_lowercase().contains("if-none-match: \"big\""),
        "{head}"
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("up to date (ETag \"renamed\")"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read_to_string(&etag_file).unwrap(), "\"renamed\"");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), doc);
}
