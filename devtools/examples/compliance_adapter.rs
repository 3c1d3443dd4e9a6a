//! The PostHog SDK compliance adapter for the std driver: a small HTTP/1.1 server through which
//! PostHog's SDK test harness drives a [`StdClient`].
//!
//! ```text
//! PORT=8080 cargo run -p posthog-embedded-devtools --example compliance_adapter
//! ```
//!
//! Listens on `127.0.0.1:$PORT` (default 8080; `BIND=0.0.0.0` for a container). JSON in and out;
//! optional parameters are omitted, never `null`. Errors answer `{"success":false,"error":"…"}`
//! with a 4xx or 5xx status; a malformed request never stops the adapter.
//!
//! | Endpoint | Does |
//! |---|---|
//! | `GET /health` | SDK name and version, adapter version, capabilities |
//! | `POST /init` | `{api_key, host, flush_at?, flush_interval_ms?, max_retries?, enable_compression?, disable_geoip?}`: a fresh client (the previous one is shut down) |
//! | `POST /capture` | `{distinct_id, event, properties?, timestamp?}` → `{uuid}` |
//! | `POST /identify` | `{distinct_id, properties?, properties_set_once?}` → `{uuid}` |
//! | `POST /get_feature_flag` | `{key, distinct_id, person_properties?, groups?, group_properties?, disable_geoip?, force_remote?}` → `{value}` |
//! | `POST /flush` | sends everything queued, waits up to 30 s → `{events_flushed}` |
//! | `GET /state` | counters and every `/batch/` request the client made |
//! | `POST /reset` | shuts the client down and forgets it and the recorded state |
//!
//! Requests are observed with [`StdClient::on_request`]: each batch attempt is recorded with its
//! status (0 when no response arrived), retry attempt, event count and event uuids.
//!
//! Only `std` networking: one thread per connection, one request per connection
//! (`Connection: close`), request heads up to 16 KiB and bodies up to 1 MiB.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use posthog_embedded::adapters::std::{
    os_seed, FlagOptions, RecordKind, RequestRecord, StdClient, StdConfig,
};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::GiveUp;
use posthog_embedded::flags::{EvalContext, FlagValue, GroupContext, Properties, PropertyValue};
use posthog_embedded::{PropertyError, UnixMillis};
use posthog_embedded_devtools::json::Json;
use serde_json::{json, Map, Value};

const ADAPTER_VERSION: &str = "1.0.0";
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_BODY_BYTES: usize = 1 << 20;
const IO_TIMEOUT: Duration = Duration::from_secs(30);
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// A flag read flushes its `$feature_flag_called` event before answering, for this long at most.
const FLAG_EVENT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Adapter state
// ---------------------------------------------------------------------------------------------

/// What the adapter recorded for the current client.
#[derive(Default)]
struct Recorded {
    total_events_captured: u64,
    total_events_sent: u64,
    total_retries: u64,
    last_error: Option<String>,
    requests_made: Vec<Value>,
}

struct Session {
    client: Arc<StdClient>,
    recorded: Arc<Mutex<Recorded>>,
}

/// The current client. Locked only to read or swap it, never across a client call.
static SESSION: Mutex<Option<Session>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn current() -> Result<(Arc<StdClient>, Arc<Mutex<Recorded>>), Reply> {
    lock(&SESSION)
        .as_ref()
        .map(|s| (Arc::clone(&s.client), Arc::clone(&s.recorded)))
        .ok_or_else(|| Reply::error(400, "SDK not initialized: call /init first"))
}

/// Removes the current session and shuts its client down (outside the lock).
fn end_session() {
    let old = lock(&SESSION).take();
    if let Some(s) = old {
        s.client.on_request(None);
        s.client.shutdown(SHUTDOWN_TIMEOUT);
    }
}

/// Records one batch attempt (the observer of every client).
fn record(recorded: &Mutex<Recorded>, r: &RequestRecord<'_>) {
    let RecordKind::Batch { records } = r.kind else {
        return;
    };
    let uuids: Vec<Value> = serde_json::from_slice::<Value>(r.body)
        .ok()
        .and_then(|b| b.get("batch").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("uuid").cloned())
        .collect();
    let status = r.result.unwrap_or(0);
    let timestamp_ms = r
        .started
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut g = lock(recorded);
    if r.attempt > 0 {
        g.total_retries += 1;
    }
    match r.result {
        Ok(s) if (200..300).contains(&s) => g.total_events_sent += records.len(),
        Ok(s) => g.last_error = Some(format!("server answered {s}")),
        Err(e) => g.last_error = Some(format!("no response: {e}")),
    }
    g.requests_made.push(json!({
        "timestamp_ms": timestamp_ms,
        "status_code": status,
        "retry_attempt": r.attempt,
        "event_count": records.len(),
        "uuid_list": uuids,
    }));
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

/// An HTTP answer: status and JSON body.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn ok(mut body: Value) -> Self {
        if let Some(o) = body.as_object_mut() {
            o.insert("success".into(), Value::Bool(true));
        }
        Self { status: 200, body }
    }

    fn error(status: u16, msg: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"success": false, "error": msg.into()}),
        }
    }
}

type Handled = Result<Reply, Reply>;

fn route(method: &str, path: &str, body: &[u8]) -> Reply {
    let path = path.split('?').next().unwrap_or_default();
    let result = match (method, path) {
        ("GET", "/health") => Ok(health()),
        ("GET", "/state") => Ok(state()),
        ("POST", "/reset") => {
            end_session();
            Ok(Reply::ok(json!({})))
        }
        ("POST", "/flush") => flush(),
        ("POST", p @ ("/init" | "/capture" | "/identify" | "/get_feature_flag")) => {
            parse_object(body).and_then(|req| match p {
                "/init" => init(&req),
                "/capture" => capture(&req),
                "/identify" => identify(&req),
                _ => get_feature_flag(&req),
            })
        }
        (
            _,
            "/health" | "/state" | "/reset" | "/flush" | "/init" | "/capture" | "/identify"
            | "/get_feature_flag",
        ) => Err(Reply::error(405, "method not allowed")),
        _ => Err(Reply::error(404, "not found")),
    };
    result.unwrap_or_else(|e| e)
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Reply::error(400, "request body must be a JSON object")),
        Err(e) => Err(Reply::error(400, format!("malformed JSON: {e}"))),
    }
}

fn required_str<'a>(req: &'a Map<String, Value>, key: &str) -> Result<&'a str, Reply> {
    match req.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(Reply::error(400, format!("{key} is required")))
        }
        Some(_) => Err(Reply::error(400, format!("{key} must be a string"))),
    }
}

fn optional<'a>(req: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    req.get(key).filter(|v| !v.is_null())
}

fn optional_u64(req: &Map<String, Value>, key: &str) -> Result<Option<u64>, Reply> {
    optional(req, key)
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| Reply::error(400, format!("{key} must be a non-negative integer")))
        })
        .transpose()
}

fn optional_bool(req: &Map<String, Value>, key: &str) -> Result<Option<bool>, Reply> {
    optional(req, key)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| Reply::error(400, format!("{key} must be a boolean")))
        })
        .transpose()
}

fn optional_object<'a>(
    req: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, Reply> {
    optional(req, key)
        .map(|v| {
            v.as_object()
                .ok_or_else(|| Reply::error(400, format!("{key} must be an object")))
        })
        .transpose()
}

fn health() -> Reply {
    Reply {
        status: 200,
        body: json!({
            "sdk_name": "posthog-embedded",
            "sdk_version": env!("CARGO_PKG_VERSION"),
            "adapter_version": ADAPTER_VERSION,
            "capabilities": ["capture_v0", "feature_flags", "encoding_gzip"],
        }),
    }
}

fn init(req: &Map<String, Value>) -> Handled {
    let api_key = required_str(req, "api_key")?;
    let host = required_str(req, "host")?;
    let mut config = StdConfig::new(api_key, os_seed()).host(host);
    if let Some(n) = optional_u64(req, "flush_at")? {
        config = config.flush_at(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(ms) = optional_u64(req, "flush_interval_ms")? {
        config = config.flush_interval(Duration::from_millis(ms));
    }
    if let Some(n) = optional_u64(req, "max_retries")? {
        // The harness asks for PostHog's bounded retries: the first attempt and `n` more, then
        // the batch is dropped (this SDK's default is to retry for as long as it takes).
        let attempts = u16::try_from(n.saturating_add(1)).unwrap_or(u16::MAX);
        config = config.give_up(GiveUp::AfterAttempts(attempts));
    }
    if let Some(on) = optional_bool(req, "enable_compression")? {
        config = config.gzip(on);
    }
    // As the reference adapters: GeoIP stays on unless the harness turns it off.
    let geoip_off = optional_bool(req, "disable_geoip")?.unwrap_or(false);
    let encoder = config.encoder.disable_geoip(geoip_off);
    config = config.encoder(encoder);

    end_session();
    let client = StdClient::new(config).map_err(|e| Reply::error(400, e.to_string()))?;
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let r = Arc::clone(&recorded);
    client.on_request(Some(Box::new(move |rec| record(&r, rec))));
    *lock(&SESSION) = Some(Session {
        client: Arc::new(client),
        recorded,
    });
    Ok(Reply::ok(json!({})))
}

fn capture(req: &Map<String, Value>) -> Handled {
    let (client, recorded) = current()?;
    let distinct_id = required_str(req, "distinct_id")?;
    let event = required_str(req, "event")?;
    let props = optional_object(req, "properties")?;
    let mut opts = EventOptions::new();
    if let Some(ts) = optional(req, "timestamp") {
        let ts = ts
            .as_str()
            .ok_or_else(|| Reply::error(400, "timestamp must be an RFC 3339 string"))?;
        let t = UnixMillis::parse_rfc3339(ts)
            .map_err(|e| Reply::error(400, format!("invalid timestamp: {e}")))?;
        opts.timestamp = Some(t);
    }
    let uuid = client
        .capture_with(event, distinct_id, &opts, |o| {
            for (k, v) in props.into_iter().flatten() {
                o.prop(k, Json(v))?;
            }
            Ok(())
        })
        .map_err(|e| {
            lock(&recorded).last_error = Some(e.to_string());
            Reply::error(400, format!("capture refused: {e}"))
        })?;
    lock(&recorded).total_events_captured += 1;
    Ok(Reply::ok(json!({"uuid": uuid.to_string()})))
}

fn identify(req: &Map<String, Value>) -> Handled {
    let (client, recorded) = current()?;
    let distinct_id = required_str(req, "distinct_id")?;
    let set = optional_object(req, "properties")?;
    let set_once = optional_object(req, "properties_set_once")?;
    let write = |o: &mut posthog_embedded::json::write::Object<'_, '_>,
                 m: &Map<String, Value>|
     -> Result<(), PropertyError> {
        for (k, v) in m {
            o.prop(k, Json(v))?;
        }
        Ok(())
    };
    let uuid = client
        .identify(distinct_id, |p| {
            if let Some(m) = set {
                p.set(|o| write(o, m))?;
            }
            if let Some(m) = set_once {
                p.set_once(|o| write(o, m))?;
            }
            Ok(())
        })
        .map_err(|e| Reply::error(400, format!("identify refused: {e}")))?;
    lock(&recorded).total_events_captured += 1;
    Ok(Reply::ok(json!({"uuid": uuid.to_string()})))
}

/// A property value owned by the adapter.
enum Owned {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    /// An array or object, as JSON text.
    Json(String),
}

/// Person or group properties from a JSON object.
struct Props(Vec<(String, Owned)>);

impl Props {
    fn from_json(m: &Map<String, Value>) -> Self {
        Self(
            m.iter()
                .map(|(k, v)| {
                    let o = match v {
                        Value::Null => Owned::Null,
                        Value::Bool(b) => Owned::Bool(*b),
                        Value::Number(n) => n
                            .as_i64()
                            .map(Owned::Int)
                            .or_else(|| n.as_u64().map(Owned::UInt))
                            .unwrap_or_else(|| Owned::Float(n.as_f64().unwrap_or(f64::NAN))),
                        Value::String(s) => Owned::Str(s.clone()),
                        other => Owned::Json(other.to_string()),
                    };
                    (k.clone(), o)
                })
                .collect(),
        )
    }
}

impl Properties for Props {
    fn entry(&self, index: usize) -> Option<(&str, PropertyValue<'_>)> {
        let (k, v) = self.0.get(index)?;
        let v = match v {
            Owned::Null => PropertyValue::Null,
            Owned::Bool(b) => PropertyValue::Bool(*b),
            Owned::Int(i) => PropertyValue::Int(*i),
            Owned::UInt(u) => PropertyValue::UInt(*u),
            Owned::Float(f) => PropertyValue::Float(*f),
            Owned::Str(s) => PropertyValue::Str(s),
            Owned::Json(j) => PropertyValue::Json(j),
        };
        Some((k, v))
    }
}

fn get_feature_flag(req: &Map<String, Value>) -> Handled {
    let (client, _) = current()?;
    let key = required_str(req, "key")?;
    let distinct_id = required_str(req, "distinct_id")?;
    let person =
        Props::from_json(optional_object(req, "person_properties")?.unwrap_or(&Map::new()));
    let groups: Vec<(String, String)> = optional_object(req, "groups")?
        .into_iter()
        .flatten()
        .map(|(t, k)| {
            let k = k.as_str().map_or_else(|| k.to_string(), str::to_owned);
            (t.clone(), k)
        })
        .collect();
    let group_props: BTreeMap<String, Props> = optional_object(req, "group_properties")?
        .into_iter()
        .flatten()
        .filter_map(|(t, p)| p.as_object().map(|m| (t.clone(), Props::from_json(m))))
        .collect();
    let disable_geoip = optional_bool(req, "disable_geoip")?;
    let force_remote = optional_bool(req, "force_remote")?.unwrap_or(false);
    let group_ctx: Vec<GroupContext<'_>> = groups
        .iter()
        .map(|(t, k)| GroupContext {
            group_type: t,
            key: k,
            properties: group_props.get(t).map(|p| p as &dyn Properties),
        })
        .collect();
    let ctx = EvalContext {
        distinct_id,
        device_id: None,
        person: &person,
        groups: &group_ctx,
    };
    let mut opts = FlagOptions::new().force_remote(force_remote);
    if let Some(g) = disable_geoip {
        opts = opts.disable_geoip(g);
    }
    let value = client.get_feature_flag(key, &ctx, opts);
    // Deliver the $feature_flag_called event before answering, so it cannot leak into the
    // harness's next test.
    client.flush(FLAG_EVENT_FLUSH_TIMEOUT);
    let value = match value {
        None => Value::Null,
        Some(FlagValue::Bool(b)) => Value::Bool(b),
        Some(FlagValue::Variant(v)) => Value::String(v.to_string()),
        Some(FlagValue::Holdout(id)) => Value::String(format!("holdout-{id}")),
    };
    Ok(Reply::ok(json!({"value": value})))
}

fn flush() -> Handled {
    let (client, recorded) = current()?;
    let r = client.flush(FLUSH_TIMEOUT);
    if r.pending > 0 {
        lock(&recorded).last_error =
            Some(format!("{} events still pending after flush", r.pending));
    }
    let sent = lock(&recorded).total_events_sent;
    Ok(Reply::ok(json!({"events_flushed": sent})))
}

fn state() -> Reply {
    let session = lock(&SESSION)
        .as_ref()
        .map(|s| (Arc::clone(&s.client), Arc::clone(&s.recorded)));
    let Some((client, recorded)) = session else {
        return Reply {
            status: 200,
            body: json!({
                "pending_events": 0,
                "total_events_captured": 0,
                "total_events_sent": 0,
                "total_retries": 0,
                "last_error": null,
                "requests_made": [],
            }),
        };
    };
    let pending = client.pending();
    let g = lock(&recorded);
    Reply {
        status: 200,
        body: json!({
            "pending_events": pending,
            "total_events_captured": g.total_events_captured,
            "total_events_sent": g.total_events_sent,
            "total_retries": g.total_retries,
            "last_error": g.last_error,
            "requests_made": g.requests_made,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// Reads one request: head up to [`MAX_HEAD_BYTES`], body (by `Content-Length`) up to
/// [`MAX_BODY_BYTES`].
fn read_request(stream: &TcpStream) -> Result<Request, Reply> {
    let mut r = BufReader::new(stream.take(u64::try_from(MAX_HEAD_BYTES).unwrap_or(u64::MAX)));
    let mut line = String::new();
    let bad = |_| Reply::error(400, "unreadable request");
    r.read_line(&mut line).map_err(bad)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(Reply::error(400, "malformed request line"));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut content_length = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(bad)? == 0 {
            return Err(Reply::error(431, "request head too large or truncated"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(Reply::error(400, "malformed header"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value
                .parse()
                .map_err(|_| Reply::error(400, "invalid Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Reply::error(411, "send a Content-Length"));
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err(Reply::error(413, "request body too large"));
    }
    // What the head reader buffered beyond the head belongs to the body.
    let mut body = r.buffer().to_vec();
    body.truncate(content_length);
    let mut rest = r.into_inner().into_inner();
    let missing = content_length - body.len();
    let mut tail = vec![0u8; missing];
    rest.read_exact(&mut tail).map_err(bad)?;
    body.extend_from_slice(&tail);
    Ok(Request { method, path, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

fn write_reply(mut stream: &TcpStream, reply: &Reply) -> io::Result<()> {
    let body = reply.body.to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn serve(stream: &TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let reply = match read_request(stream) {
        Ok(req) => {
            // A panic in a handler becomes a 500, never a dead adapter.
            std::panic::catch_unwind(|| route(&req.method, &req.path, &req.body))
                .unwrap_or_else(|_| Reply::error(500, "internal error"))
        }
        Err(reply) => reply,
    };
    let _ = write_reply(stream, &reply);
}

fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let listener = match TcpListener::bind((bind.as_str(), port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("compliance adapter: cannot listen on {bind}:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("compliance adapter listening on {bind}:{port}");
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let spawned = std::thread::Builder::new()
            .name("adapter-conn".into())
            .spawn(move || serve(&stream));
        if spawned.is_err() {
            eprintln!("compliance adapter: cannot start a connection thread");
        }
    }
}
