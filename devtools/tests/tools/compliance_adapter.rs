//! The compliance adapter example (`examples/compliance_adapter.rs`) driven over HTTP, against a
//! mock PostHog server on loopback.
//!
//! The adapter binary is built by `cargo test` (examples are built with the tests) into
//! `target/<profile>/examples/`. `cargo test --test tools` alone builds no example:
//! then the tests print SKIPPED and pass.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const API_KEY: &str = "phc_compliance_test";

// ---------------------------------------------------------------------------------------------
// The adapter process
// ---------------------------------------------------------------------------------------------

fn adapter_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/compliance_adapter-<hash> → target/<profile>/examples/
    let profile_dir = exe.parent()?.parent()?;
    let name = format!("compliance_adapter{}", std::env::consts::EXE_SUFFIX);
    let path = profile_dir.join("examples").join(name);
    path.is_file().then_some(path)
}

/// Kills and reaps the adapter when dropped, also when a test panics.
struct Adapter {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Adapter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the adapter on a free port and waits (bounded) until `/health` answers. `None` (after
/// a loud message) when the binary was not built.
fn start_adapter() -> Option<Adapter> {
    let Some(bin) = adapter_binary() else {
        // Straight to the process's stderr: the test harness's capture would hide `eprintln!`.
        let _ = writeln!(
            io::stderr(),
            "\n*** SKIPPED: compliance adapter binary not found next to {:?}; \
             build it with `cargo test` (or `cargo build --example compliance_adapter`) ***\n",
            std::env::current_exe().ok()
        );
        return None;
    };
    let port = free_port();
    let child = Command::new(bin)
        .env("PORT", port.to_string())
        .env_remove("BIND")
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the adapter");
    let adapter = Adapter {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, _)) = call_raw(adapter.addr, "GET", "/health", b"") {
            return Some(adapter);
        }
        assert!(Instant::now() < end, "adapter did not answer /health");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 exchange (`Connection: close`); the status and the JSON body.
fn call_raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> io::Result<(u16, Value)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no response head"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("no status"))?;
    let json = serde_json::from_str(body).map_err(io::Error::other)?;
    Ok((status, json))
}

impl Adapter {
    fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        call_raw(self.addr, method, path, body).expect("adapter answers")
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let (status, json) = self.call("POST", path, body.to_string().as_bytes());
        assert_eq!(status, 200, "{path}: {json}");
        assert_eq!(json["success"], true, "{path}: {json}");
        json
    }

    fn state(&self) -> Value {
        let (status, json) = self.call("GET", "/state", b"");
        assert_eq!(status, 200);
        json
    }
}

// ---------------------------------------------------------------------------------------------
// The mock PostHog server
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Req {
    path: String,
    body: Vec<u8>,
}

impl Req {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Answers `/batch/` with the scripted statuses (then 200) and `/flags/?v=2` with a fixed answer.
struct Mock {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Req>>>,
    batch_statuses: Arc<Mutex<VecDeque<u16>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const FLAGS_ANSWER: &str = r#"{"flags":{"remote-flag":{"key":"remote-flag","enabled":true,"variant":"blue","metadata":{"id":9,"version":1}}},"requestId":"req-9"}"#;

impl Mock {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let batch_statuses = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, statuses, stopped) = (
            Arc::clone(&requests),
            Arc::clone(&batch_statuses),
            Arc::clone(&stop),
        );
        let thread = std::thread::spawn(move || {
            let born = Instant::now();
            while !stopped.load(Ordering::Relaxed) && born.elapsed() < Duration::from_secs(60) {
                match listener.accept() {
                    Ok((mut tcp, _)) => {
                        tcp.set_nonblocking(false).unwrap();
                        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let Ok(req) = read_request(&mut tcp) else {
                            continue;
                        };
                        let (status, body) = if req.path.starts_with("/flags") {
                            (200, FLAGS_ANSWER.to_owned())
                        } else {
                            let s = statuses.lock().unwrap().pop_front().unwrap_or(200);
                            (s, r#"{"status":1}"#.to_owned())
                        };
                        reqs.lock().unwrap().push(req);
                        let _ = write!(
                            tcp,
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
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
            batch_statuses,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self, path_prefix: &str) -> Vec<Req> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    /// Every event of every `/batch/` received.
    fn events(&self) -> Vec<Value> {
        self.requests("/batch/")
            .iter()
            .flat_map(|r| r.json()["batch"].as_array().unwrap().clone())
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(stream: &mut TcpStream) -> io::Result<Req> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            if n.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Req { path, body })
}

fn uuids_of(requests_made: &Value) -> Vec<String> {
    requests_made
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["uuid_list"].as_array().unwrap().clone())
        .map(|u| u.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[test]
fn capture_flush_retry_flags_and_reset() {
    let Some(adapter) = start_adapter() else {
        return;
    };
    let mock = Mock::start();

    let (status, health) = adapter.call("GET", "/health", b"");
    assert_eq!(status, 200);
    assert_eq!(health["sdk_name"], "posthog-embedded");
    assert_eq!(health["sdk_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["adapter_version"], "1.0.0");
    let caps = health["capabilities"].as_array().unwrap();
    for c in ["capture_v0", "feature_flags", "encoding_gzip"] {
        assert!(caps.contains(&json!(c)), "{health}");
    }

    adapter.post(
        "/init",
        &json!({"api_key": API_KEY, "host": mock.url(), "flush_at": 1, "flush_interval_ms": 100}),
    );

    // Three captures: properties of every JSON kind, and a timestamp with a +05:30 offset.
    let props = json!({"plan": "pro", "n": 1, "f": 1.5, "one": 1.0, "big": 18446744073709551615u64,
                       "nested": {"a": [1, "x", null, true], "o": {}}});
    let u1 = adapter.post(
        "/capture",
        &json!({"distinct_id": "user-1", "event": "first", "properties": props}),
    )["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let u2 = adapter.post(
        "/capture",
        &json!({"distinct_id": "user-1", "event": "second",
                "timestamp": "2026-01-02T08:34:05.123+05:30"}),
    )["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let u3 = adapter.post(
        "/capture",
        &json!({"distinct_id": "user-2", "event": "third"}),
    )["uuid"]
        .as_str()
        .unwrap()
        .to_owned();

    let flushed = adapter.post("/flush", &json!({}));
    assert_eq!(flushed["events_flushed"], 3, "{flushed}");

    let state = adapter.state();
    assert_eq!(state["total_events_captured"], 3, "{state}");
    assert_eq!(state["total_events_sent"], 3, "{state}");
    assert_eq!(state["pending_events"], 0, "{state}");
    assert_eq!(state["total_retries"], 0, "{state}");
    assert!(state["last_error"].is_null(), "{state}");
    let mut sent = uuids_of(&state["requests_made"]);
    sent.sort();
    let mut captured = vec![u1.clone(), u2.clone(), u3.clone()];
    captured.sort();
    assert_eq!(sent, captured);
    for r in state["requests_made"].as_array().unwrap() {
        assert_eq!(r["status_code"], 200, "{r}");
        assert_eq!(r["retry_attempt"], 0, "{r}");
        assert_eq!(
            r["event_count"].as_u64().unwrap() as usize,
            r["uuid_list"].as_array().unwrap().len()
        );
        assert!(r["timestamp_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }

    // The mock got them, with the timestamp converted to UTC and the properties intact.
    let events = mock.events();
    let by_uuid = |u: &str| {
        events
            .iter()
            .find(|e| e["uuid"] == u)
            .unwrap_or_else(|| panic!("{u} not delivered: {events:?}"))
            .clone()
    };
    let e1 = by_uuid(&u1);
    assert_eq!(e1["event"], "first");
    assert_eq!(e1["distinct_id"], "user-1");
    let p = &e1["properties"];
    assert_eq!(p["plan"], "pro");
    assert!(p["n"].is_i64() && p["n"] == 1, "{p}");
    assert!(p["one"].is_f64() && p["one"] == 1.0, "{p}");
    assert_eq!(p["f"], 1.5);
    assert_eq!(p["big"], json!(u64::MAX));
    assert_eq!(p["nested"], json!({"a": [1, "x", null, true], "o": {}}));
    assert_eq!(by_uuid(&u2)["timestamp"], "2026-01-02T03:04:05.123Z");
    assert_eq!(by_uuid(&u3)["distinct_id"], "user-2");

    // A 503 then a 200: one retry, recorded with the same uuid.
    mock.batch_statuses.lock().unwrap().push_back(503);
    let u4 = adapter.post(
        "/capture",
        &json!({"distinct_id": "user-1", "event": "retried"}),
    )["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    adapter.post("/flush", &json!({}));
    let state = adapter.state();
    assert!(state["total_retries"].as_u64().unwrap() >= 1, "{state}");
    assert_eq!(state["total_events_sent"], 4, "{state}");
    assert_eq!(state["last_error"], "server answered 503", "{state}");
    let attempts: Vec<(u64, u64)> = state["requests_made"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["uuid_list"].as_array().unwrap().contains(&json!(u4)))
        .map(|r| {
            (
                r["status_code"].as_u64().unwrap(),
                r["retry_attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(attempts, [(503, 0), (200, 1)]);

    // force_remote asks the mock's /flags; the $feature_flag_called event is delivered before
    // the adapter answers.
    let flag = adapter.post(
        "/get_feature_flag",
        &json!({"key": "remote-flag", "distinct_id": "user-1", "force_remote": true,
                "person_properties": {"plan": "pro"}, "groups": {"company": "acme"},
                "group_properties": {"company": {"seats": 5}}}),
    );
    assert_eq!(flag["value"], "blue", "{flag}");
    let flags = mock.requests("/flags");
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].path, "/flags/?v=2");
    let body = flags[0].json();
    assert_eq!(body["token"], API_KEY);
    assert_eq!(body["distinct_id"], "user-1");
    assert_eq!(body["flag_keys_to_evaluate"], json!(["remote-flag"]));
    assert_eq!(body["person_properties"], json!({"plan": "pro"}));
    assert_eq!(body["groups"], json!({"company": "acme"}));
    assert_eq!(body["group_properties"]["company"]["seats"], 5);
    let called: Vec<Value> = mock
        .events()
        .into_iter()
        .filter(|e| e["event"] == "$feature_flag_called")
        .collect();
    assert_eq!(called.len(), 1, "{called:?}");
    assert_eq!(called[0]["properties"]["$feature_flag_response"], "blue");
    assert_eq!(called[0]["properties"]["$feature_flag_request_id"], "req-9");

    // An unknown flag the server does not know: null.
    let flag = adapter.post(
        "/get_feature_flag",
        &json!({"key": "nope", "distinct_id": "user-1"}),
    );
    assert!(flag["value"].is_null(), "{flag}");

    // Reset forgets the client and the state.
    adapter.post("/reset", &json!({}));
    let state = adapter.state();
    assert_eq!(state["total_events_sent"], 0, "{state}");
    assert_eq!(state["total_events_captured"], 0, "{state}");
    assert_eq!(state["requests_made"], json!([]), "{state}");
    let (status, json) = adapter.call(
        "POST",
        "/capture",
        br#"{"distinct_id":"u","event":"after reset"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(json["success"], false);
}

#[test]
fn bad_requests_get_errors_and_never_stop_the_adapter() {
    let Some(adapter) = start_adapter() else {
        return;
    };
    let bad: [(&str, &str, &[u8], u16); 9] = [
        ("POST", "/init", b"{not json", 400),
        ("POST", "/init", b"[1,2]", 400),
        ("POST", "/init", br#"{"api_key":"phc_x"}"#, 400),
        (
            "POST",
            "/init",
            br#"{"api_key":"phc_x","host":"ftp://x"}"#,
            400,
        ),
        (
            "POST",
            "/init",
            br#"{"api_key":"phc_x","host":"http://127.0.0.1:9","flush_at":"many"}"#,
            400,
        ),
        (
            "POST",
            "/capture",
            br#"{"distinct_id":"u","event":"e"}"#,
            400,
        ),
        ("GET", "/capture", b"", 405),
        ("GET", "/nowhere", b"", 404),
        ("POST", "/get_feature_flag", b"", 400),
    ];
    for (method, path, body, want) in bad {
        let (status, json) = adapter.call(method, path, body);
        assert_eq!(status, want, "{method} {path} {json}");
        assert_eq!(json["success"], false, "{json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }

    // Oversized bodies are refused from their Content-Length.
    let mut s = TcpStream::connect(adapter.addr).unwrap();
    s.write_all(b"POST /capture HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");

    // Garbage on the socket.
    let mut s = TcpStream::connect(adapter.addr).unwrap();
    s.write_all(b"\x00\x01\x02\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);

    // Initialised against a dead host: captures and invalid timestamps answer, never hang.
    adapter.post(
        "/init",
        &json!({"api_key": "phc_x", "host": "http://127.0.0.1:9", "max_retries": 0}),
    );
    let (status, json) = adapter.call(
        "POST",
        "/capture",
        br#"{"distinct_id":"u","event":"e","timestamp":"yesterday"}"#,
    );
    assert_eq!(
        (status, json["success"].clone()),
        (400, json!(false)),
        "{json}"
    );
    let (status, _) = adapter.call("GET", "/health", b"");
    assert_eq!(status, 200, "still alive");
    adapter.post("/reset", &json!({}));
}
