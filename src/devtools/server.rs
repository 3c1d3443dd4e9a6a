//! A local PostHog-compatible server on loopback, for developing and testing devices without a
//! PostHog account (the CLI's `serve`, the quick start, the firmware end-to-end test).
//!
//! | Route | What it does |
//! |---|---|
//! | `POST /batch/` (also `/capture/`, `/e/`, `/i/v0/e/`) | plain or gzip (`Content-Encoding: gzip` or `?compression=gzip`); every event is checked ([`check_event`]) and its time derived as PostHog does ([`event_time`]); answers `{"status": 1}` |
//! | `POST /flags/?v=2` | evaluates the definitions with this crate's evaluator for the request's context; PostHog's v2 answer ([`flags_response`]) |
//! | `POST /decide/?v=3` | the legacy answer ([`decide_response`]) |
//! | `GET /flags/definitions` (also `/api/feature_flag/local_evaluation`) | the definitions file, with an `ETag` and `304 Not Modified`; needs `Authorization: Bearer <secret key>`; leaves `cohorts` out unless `send_cohorts` is asked for |
//! | `GET /` | a one-line greeting |
//!
//! HTTP/1.1 with keep-alive (hyper). The definitions file is re-read when it changes on disk.
//! Every request is summarised in one readable line (with any problems on the lines below it)
//! given to the configured log function; received events are kept in memory (the last
//! [`KEPT_EVENTS`]) and, with [`ServerConfig::events_out`], appended to a JSON Lines file.
//!
//! **Fault injection** ([`Faults`]) makes a device meet a bad network on purpose: a status for
//! every request or a random fraction of them, a delay before every answer, `Retry-After`, and
//! `Connection: close` on every answer. A failed request's events are not recorded, as a real
//! server would not have ingested them.
//!
//! Secrets: the project token and bearer keys are never printed or written to the events file.

use core::convert::Infallible;
use core::net::SocketAddr;
use core::time::Duration;
use std::borrow::ToOwned;
use std::collections::{HashSet, VecDeque};
use std::format;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;
use std::vec::Vec;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::context::OwnedContext;
use super::definitions::{
    decide_response, flags_response, Definitions, DefinitionsError, FlagOutcome,
};
use super::validate::{check_event, event_time, iso, parse_capture, TimeSource};
use crate::capture::Uuid;
use crate::flags::Inconclusive;
use crate::rng::Rng;
use crate::time::UnixMillis;

/// Largest request body accepted (PostHog's limit is 20 MiB).
pub const MAX_BODY: usize = 20 << 20;

/// Received events kept in memory (older ones are still in the events file).
pub const KEPT_EVENTS: usize = 100_000;

/// The log function: one call per line.
pub type LogFn = dyn Fn(&str) + Send + Sync;

/// Fault injection. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Faults {
    /// Fraction of requests (0.0 to 1.0) answered with [`status`](Self::status) (503 when
    /// unset). When `status` is set and this is `None`, every request fails.
    pub fail_rate: Option<f64>,
    /// The status failing requests get.
    pub status: Option<u16>,
    /// Delay before every answer.
    pub delay: Duration,
    /// `Retry-After` (seconds) on failed answers.
    pub retry_after: Option<u32>,
    /// Answer every request with `Connection: close` and close the connection.
    pub close_connections: bool,
    /// Seed of the fault dice (the same seed fails the same requests).
    pub seed: u64,
}

impl Faults {
    /// No faults.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            fail_rate: None,
            status: None,
            delay: Duration::ZERO,
            retry_after: None,
            close_connections: false,
            seed: 0,
        }
    }

    /// Sets [`fail_rate`](Self::fail_rate).
    #[must_use]
    pub const fn fail_rate(mut self, rate: Option<f64>) -> Self {
        self.fail_rate = rate;
        self
    }

    /// Sets [`status`](Self::status).
    #[must_use]
    pub const fn status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    /// Sets [`delay`](Self::delay).
    #[must_use]
    pub const fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets [`retry_after`](Self::retry_after).
    #[must_use]
    pub const fn retry_after(mut self, secs: Option<u32>) -> Self {
        self.retry_after = secs;
        self
    }

    /// Sets [`close_connections`](Self::close_connections).
    #[must_use]
    pub const fn close_connections(mut self, close: bool) -> Self {
        self.close_connections = close;
        self
    }

    /// Sets [`seed`](Self::seed).
    #[must_use]
    pub const fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Whether any fault is configured.
    #[must_use]
    pub fn any(&self) -> bool {
        self.fail_rate.is_some_and(|r| r > 0.0)
            || self.status.is_some()
            || !self.delay.is_zero()
            || self.close_connections
    }
}

/// Settings of a [`LocalServer`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral port).
    pub bind: SocketAddr,
    /// Flag definitions file to evaluate and serve.
    pub definitions: Option<PathBuf>,
    /// Append every received event to this JSON Lines file.
    pub events_out: Option<PathBuf>,
    /// Fault injection.
    pub faults: Faults,
    /// Where request lines go (`None`: nowhere).
    pub log: Option<Arc<LogFn>>,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("definitions", &self.definitions)
            .field("events_out", &self.events_out)
            .field("faults", &self.faults)
            .field("log", &self.log.is_some())
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            definitions: None,
            events_out: None,
            faults: Faults::none(),
            log: None,
        }
    }
}

impl ServerConfig {
    /// Sets [`bind`](Self::bind).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Sets [`definitions`](Self::definitions).
    #[must_use]
    pub fn definitions(mut self, path: impl Into<PathBuf>) -> Self {
        self.definitions = Some(path.into());
        self
    }

    /// Sets [`events_out`](Self::events_out).
    #[must_use]
    pub fn events_out(mut self, path: impl Into<PathBuf>) -> Self {
        self.events_out = Some(path.into());
        self
    }

    /// Sets [`faults`](Self::faults).
    #[must_use]
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Sets [`log`](Self::log).
    #[must_use]
    pub fn log(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.log = Some(Arc::new(f));
        self
    }
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the address or starting the runtime failed.
    Io(std::io::Error),
    /// The definitions file could not be used.
    Definitions(PathBuf, DefinitionsError),
    /// The events file could not be opened.
    EventsOut(PathBuf, std::io::Error),
}

impl core::fmt::Display for ServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot start the server: {e}"),
            Self::Definitions(p, e) => write!(f, "{}: {e}", p.display()),
            Self::EventsOut(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl core::error::Error for ServerError {}

/// One event the server received.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedEvent {
    /// When the request carrying it arrived (server wall clock).
    pub received_at: UnixMillis,
    /// The event's time as PostHog derives it.
    pub time: UnixMillis,
    /// How [`time`](Self::time) was derived.
    pub time_source: TimeSource,
    /// The request path.
    pub path: String,
    /// What is wrong with it (empty when nothing).
    pub problems: Vec<String>,
    /// An event with this uuid was received before (a retry; PostHog keeps one).
    pub duplicate: bool,
    /// The event as sent.
    pub event: Value,
}

impl ReceivedEvent {
    /// The event's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.event
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Property `key` of the event.
    #[must_use]
    pub fn property(&self, key: &str) -> Option<&Value> {
        self.event.get("properties")?.get(key)
    }

    /// The line written to the events file: `{"received_at", "timestamp", "path", "problems",
    /// "duplicate", "event"}` (times as ISO 8601 UTC with milliseconds).
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "received_at": iso(self.received_at),
            "timestamp": iso(self.time),
            "path": self.path,
            "problems": self.problems,
            "duplicate": self.duplicate,
            "event": self.event,
        })
    }
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestSummary {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Events recorded from it.
    pub events: usize,
    /// Problems found (in the envelope and the events).
    pub problems: usize,
    /// Whether the answer was an injected fault.
    pub fault: bool,
}

struct LoadedDefinitions {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    defs: Arc<Definitions>,
}

struct Inner {
    events: VecDeque<ReceivedEvent>,
    total_events: usize,
    requests: Vec<RequestSummary>,
    uuids: HashSet<String>,
    rng: Rng,
    definitions: Option<LoadedDefinitions>,
    out: Option<File>,
}

struct State {
    inner: Mutex<Inner>,
    /// Notified whenever events are recorded.
    arrived: Condvar,
    faults: Faults,
    log: Option<Arc<LogFn>>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, line: &str) {
        if let Some(f) = &self.log {
            f(line);
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn now_millis() -> UnixMillis {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    UnixMillis::from_millis(ms)
}

/// A running local server. Stops when dropped (or with [`stop`](Self::stop)).
pub struct LocalServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LocalServer {
    /// Loads the definitions, opens the events file, binds the address and starts serving on a
    /// background thread. Connections are accepted as soon as this returns.
    ///
    /// # Errors
    /// [`ServerError`].
    pub fn start(config: ServerConfig) -> Result<Self, ServerError> {
        let definitions = match &config.definitions {
            Some(path) => {
                let defs = Definitions::from_file(path)
                    .map_err(|e| ServerError::Definitions(path.clone(), e))?;
                Some(LoadedDefinitions {
                    path: path.clone(),
                    stamp: stamp(path),
                    defs: Arc::new(defs),
                })
            }
            None => None,
        };
        let out = match &config.events_out {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| ServerError::EventsOut(path.clone(), e))?,
            ),
            None => None,
        };
        let listener = std::net::TcpListener::bind(config.bind).map_err(ServerError::Io)?;
        listener.set_nonblocking(true).map_err(ServerError::Io)?;
        let addr = listener.local_addr().map_err(ServerError::Io)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Io)?;
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                total_events: 0,
                requests: Vec::new(),
                uuids: HashSet::new(),
                rng: Rng::new(config.faults.seed ^ 0x5e21_7e5e),
                definitions,
                out,
            }),
            arrived: Condvar::new(),
            faults: config.faults,
            log: config.log,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let s = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("posthog-local-server".into())
            .spawn(move || runtime.block_on(accept_loop(listener, s, stopped)))
            .map_err(ServerError::Io)?;
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the host to give a client.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The events received so far (the last [`KEPT_EVENTS`]), oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.state.lock().events.iter().cloned().collect()
    }

    /// Events received in total.
    #[must_use]
    pub fn total_events(&self) -> usize {
        self.state.lock().total_events
    }

    /// Every request answered so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RequestSummary> {
        self.state.lock().requests.clone()
    }

    /// Waits until at least `n` events were received in total, or `timeout` passes; returns
    /// whether they were.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.state.lock();
        while g.total_events < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .state
                .arrived
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Stops serving and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        state.log("error: the listening socket could not be registered");
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                state.log(&format!("accept failed: {e}"));
                // Out of descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let s = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let s = Arc::clone(&s);
                async move { Ok::<_, Infallible>(handle(&s, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An answer before headers that apply to every response are added.
struct Answer {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    etag: Option<String>,
    summary: String,
    /// Lines below the summary (problems).
    details: Vec<String>,
    events: usize,
    problems: usize,
    fault: bool,
}

impl Answer {
    fn json(status: u16, body: &Value, summary: String) -> Self {
        Self {
            status,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            etag: None,
            summary,
            details: Vec::new(),
            events: 0,
            problems: 0,
            fault: false,
        }
    }

    fn error(status: u16, detail: &str) -> Self {
        let kind = if status == 401 {
            "authentication_error"
        } else {
            "validation_error"
        };
        Self::json(
            status,
            &json!({"type": kind, "code": "invalid_request", "detail": detail}),
            detail.to_owned(),
        )
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let received = now_millis();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(if e.is::<http_body_util::LengthLimitError>() {
            Answer::error(413, &format!("body larger than {MAX_BODY} bytes"))
        } else {
            Answer::error(400, "the request body could not be read")
        }),
    };
    if !state.faults.delay.is_zero() {
        tokio::time::sleep(state.faults.delay).await;
    }
    let answer = match body {
        Err(a) => a,
        Ok(body) => route(state, &method, &uri, &headers, &body, received),
    };
    let mut line = format!(
        "{} {} {} {}  {}",
        iso(received).get(11..23).unwrap_or_default(),
        method,
        path_query,
        answer.status,
        answer.summary
    );
    for d in &answer.details {
        line.push_str("\n             ! ");
        line.push_str(d);
    }
    state.log(&line);
    {
        let mut g = state.lock();
        g.requests.push(RequestSummary {
            method: method.to_string(),
            path: path_query,
            status: answer.status,
            events: answer.events,
            problems: answer.problems,
            fault: answer.fault,
        });
    }
    let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
    *resp.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    if let Some(tag) = answer.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        h.insert(ETAG, tag);
    }
    if answer.fault {
        if let Some(secs) = state.faults.retry_after {
            h.insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    if state.faults.close_connections {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn route(
    state: &State,
    method: &Method,
    uri: &hyper::Uri,
    headers: &hyper::HeaderMap,
    body: &[u8],
    received: UnixMillis,
) -> Answer {
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    let endpoint = match path.trim_end_matches('/') {
        "/batch" | "/capture" | "/e" | "/i/v0/e" | "/track" => Endpoint::Capture,
        "/flags" => Endpoint::Flags,
        "/decide" => Endpoint::Decide,
        "/flags/definitions" | "/api/feature_flag/local_evaluation" => Endpoint::Definitions,
        "" | "/health" | "/_health" => Endpoint::Health,
        _ => {
            return Answer::error(404, &format!("no such endpoint: {path}"));
        }
    };
    let want = if endpoint == Endpoint::Definitions || endpoint == Endpoint::Health {
        Method::GET
    } else {
        Method::POST
    };
    if *method != want {
        return Answer::error(405, &format!("{path} takes {want}, not {method}"));
    }
    if endpoint != Endpoint::Health {
        if let Some(status) = injected_fault(state) {
            let mut a = Answer::json(
                status,
                &json!({"type": "server_error", "code": "fault_injected", "detail": "fault injected by posthog-embedded serve"}),
                "fault injected (nothing recorded)".into(),
            );
            a.fault = true;
            return a;
        }
    }
    match endpoint {
        Endpoint::Capture => capture(state, path, query, headers, body, received),
        Endpoint::Flags | Endpoint::Decide => {
            flags(state, endpoint, headers, query, body, received)
        }
        Endpoint::Definitions => definitions(state, headers, query),
        Endpoint::Health => Answer::json(200, &json!({"status": "ok"}), "health check".into()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Capture,
    Flags,
    Decide,
    Definitions,
    Health,
}

fn injected_fault(state: &State) -> Option<u16> {
    let f = &state.faults;
    let status = f.status.unwrap_or(503);
    match (f.fail_rate, f.status) {
        (None, Some(s)) => Some(s),
        (Some(rate), _) if rate > 0.0 => {
            let roll = state.lock().rng.next_u64();
            // 53 random bits as a fraction in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let x = (roll >> 11) as f64 / (1u64 << 53) as f64;
            (x < rate).then_some(status)
        }
        _ => None,
    }
}

/// The body, gunzipped when the request says it is compressed.
fn decoded_body(
    headers: &hyper::HeaderMap,
    query: &str,
    body: &[u8],
) -> Result<(Vec<u8>, bool), (u16, &'static str)> {
    let header_gzip = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let query_gzip = query
        .split('&')
        .any(|kv| kv == "compression=gzip" || kv == "compression=gzip-js");
    if !(header_gzip || query_gzip) {
        return Ok((body.to_vec(), false));
    }
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(body).take(MAX_BODY as u64 + 1);
    match dec.read_to_end(&mut out) {
        Ok(_) if out.len() > MAX_BODY => Err((413, "decompressed body too large")),
        Ok(_) => Ok((out, true)),
        Err(_) => Err((400, "the body says gzip but is not valid gzip")),
    }
}

fn capture(
    state: &State,
    path: &str,
    query: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
    received: UnixMillis,
) -> Answer {
    let (raw, gzip) = match decoded_body(headers, query, body) {
        Ok(b) => b,
        Err((status, why)) => return Answer::error(status, why),
    };
    let json: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => return Answer::error(400, &format!("the body is not JSON: {e}")),
    };
    let env = match parse_capture(&json) {
        Ok(env) => env,
        Err(e) => return Answer::error(400, &e),
    };
    let mut details: Vec<String> = env.problems.clone();
    let mut records = Vec::with_capacity(env.events.len());
    let mut g = state.lock();
    for (i, event) in env.events.into_iter().enumerate() {
        let problems = check_event(&event);
        let (time, time_source) = event_time(&event, env.sent_at, received);
        let duplicate = match event.get("uuid").and_then(Value::as_str) {
            Some(u) => !g.uuids.insert(u.to_ascii_lowercase()),
            None => false,
        };
        let name = event.get("event").and_then(Value::as_str).unwrap_or("?");
        for p in &problems {
            details.push(format!("event {} ({name}): {p}", i + 1));
        }
        records.push(ReceivedEvent {
            received_at: received,
            time,
            time_source,
            path: path.to_owned(),
            problems,
            duplicate,
            event,
        });
    }
    let mut write_error = None;
    if let Some(out) = g.out.as_mut() {
        let mut text = String::new();
        for r in &records {
            text.push_str(&r.to_json().to_string());
            text.push('\n');
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            write_error = Some(e);
        }
    }
    let summary = summarize(&records, raw.len(), body.len(), gzip);
    let n = records.len();
    g.total_events += n;
    for r in records {
        if g.events.len() == KEPT_EVENTS {
            g.events.pop_front();
        }
        g.events.push_back(r);
    }
    drop(g);
    state.arrived.notify_all();
    if let Some(e) = write_error {
        details.push(format!("could not write the events file: {e}"));
    }
    let mut a = Answer::json(200, &json!({"status": 1}), summary);
    a.problems = details.len();
    a.details = details;
    a.events = n;
    a
}

/// `5 events, 1.4 KB (gzip 612 B)  device-42: $identify, reading ×3, error`.
fn summarize(records: &[ReceivedEvent], raw: usize, wire: usize, gzip: bool) -> String {
    let mut names: Vec<(String, usize)> = Vec::new();
    for r in records {
        let label = if r.duplicate {
            format!("{} (retry, duplicate uuid)", r.name())
        } else {
            r.name().to_owned()
        };
        match names.last_mut() {
            Some((n, c)) if *n == label => *c += 1,
            _ => names.push((label, 1)),
        }
    }
    let list: Vec<String> = names
        .into_iter()
        .map(|(n, c)| if c > 1 { format!("{n} ×{c}") } else { n })
        .collect();
    let mut ids: Vec<&str> = records
        .iter()
        .filter_map(|r| r.event.get("distinct_id").and_then(Value::as_str))
        .collect();
    ids.dedup();
    let who = match ids.as_slice() {
        [] => String::new(),
        [one] => format!("{one}: "),
        many => format!("{} distinct ids: ", many.len()),
    };
    let size = if gzip {
        format!("{} (gzip {})", bytes(raw), bytes(wire))
    } else {
        bytes(raw)
    };
    let plural = if records.len() == 1 { "" } else { "s" };
    format!(
        "{} event{plural}, {size}  {who}{}",
        records.len(),
        list.join(", ")
    )
}

fn bytes(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        #[allow(clippy::cast_precision_loss)]
        let kb = n as f64 / 1024.0;
        format!("{kb:.1} KB")
    }
}

/// The current definitions, re-read if the file changed (a failed re-read keeps the old ones
/// and says so).
fn current_definitions(state: &State) -> (Option<Arc<Definitions>>, Option<String>) {
    let mut g = state.lock();
    let Some(loaded) = g.definitions.as_mut() else {
        return (None, None);
    };
    let now = stamp(&loaded.path);
    let mut note = None;
    if now != loaded.stamp {
        loaded.stamp = now;
        match Definitions::from_file(&loaded.path) {
            Ok(d) => {
                loaded.defs = Arc::new(d);
                note = Some(format!("reloaded {}", loaded.path.display()));
            }
            Err(e) => {
                note = Some(format!(
                    "{} changed but cannot be used ({e}); serving the previous definitions",
                    loaded.path.display()
                ));
            }
        }
    }
    (Some(Arc::clone(&loaded.defs)), note)
}

fn flags(
    state: &State,
    endpoint: Endpoint,
    headers: &hyper::HeaderMap,
    query: &str,
    body: &[u8],
    received: UnixMillis,
) -> Answer {
    let (raw, _) = match decoded_body(headers, query, body) {
        Ok(b) => b,
        Err((status, why)) => return Answer::error(status, why),
    };
    let json: Value = match serde_json::from_slice(&raw) {
        Ok(v) => v,
        Err(e) => return Answer::error(400, &format!("the body is not JSON: {e}")),
    };
    let token = ["api_key", "token"]
        .iter()
        .find_map(|k| json.get(*k).and_then(Value::as_str))
        .filter(|t| !t.is_empty());
    if token.is_none() {
        return Answer::error(401, "no project API key (`token` or `api_key`) in the body");
    }
    let ctx = match OwnedContext::from_flags_request(&json) {
        Ok(c) => c,
        Err(e) => return Answer::error(400, &e),
    };
    let keys: Option<Vec<String>> = json
        .get("flag_keys_to_evaluate")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    let (defs, note) = current_definitions(state);
    let outcomes: Vec<FlagOutcome> = match &defs {
        Some(d) => match d.evaluate_owned(&ctx, Some(received), keys.as_deref()) {
            Ok(o) => o,
            Err(e) => return Answer::error(400, &e),
        },
        None => Vec::new(),
    };
    let request_id = {
        let mut g = state.lock();
        let hi = g.rng.next_u64().to_le_bytes();
        let lo = g.rng.next_u64().to_le_bytes();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi);
        b[8..].copy_from_slice(&lo);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let mut text = [0u8; crate::capture::UUID_LEN];
        Uuid::from_bytes(b).encode(&mut text).to_owned()
    };
    let response = if endpoint == Endpoint::Decide {
        decide_response(&outcomes)
    } else {
        flags_response(&outcomes, &request_id, received.as_millis())
    };
    let on = outcomes
        .iter()
        .filter(|o| matches!(&o.result, Ok((v, _)) if v.is_enabled()))
        .count();
    // One detail line per reason: `missing_context: a, b, c`.
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for o in &outcomes {
        let reason = match &o.result {
            Ok(_) => continue,
            Err(Inconclusive::UnknownFlag) => "unknown flag",
            Err(e) => e.as_str(),
        };
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, keys)) => keys.push(&o.key),
            None => by_reason.push((reason, std::vec![o.key.as_str()])),
        }
    }
    let undecided_count: usize = by_reason.iter().map(|(_, k)| k.len()).sum();
    let undecided: Vec<String> = by_reason
        .iter()
        .map(|(r, keys)| format!("not decidable here ({r}): {}", keys.join(", ")))
        .collect();
    let mut summary = format!(
        "{}: {} flags evaluated, {on} on",
        ctx.distinct_id,
        outcomes.len()
    );
    if undecided_count > 0 {
        summary.push_str(&format!(", {undecided_count} not decidable here"));
    }
    if defs.is_none() {
        summary.push_str(" (no --definitions given: every flag is unknown)");
    }
    let mut a = Answer::json(200, &response, summary);
    a.details = note.into_iter().chain(undecided).collect();
    a
}

fn definitions(state: &State, headers: &hyper::HeaderMap, query: &str) -> Answer {
    let bearer = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match bearer {
        None => {
            return Answer::error(
                401,
                "flag definitions need `Authorization: Bearer <secret key>` (phs_… or phx_…)",
            )
        }
        Some(k) if k.starts_with("phc_") => {
            return Answer::error(
                401,
                "a project API key (phc_…) cannot read flag definitions: use a secret key (phs_…) or a personal API key (phx_…)",
            )
        }
        Some(_) => {}
    }
    let (defs, note) = current_definitions(state);
    let send_cohorts = query
        .split('&')
        .any(|kv| kv == "send_cohorts" || kv.starts_with("send_cohorts="));
    let doc: Vec<u8> = match &defs {
        None => br#"{"flags":[],"group_type_mapping":{},"cohorts":{}}"#.to_vec(),
        Some(d) if send_cohorts => d.raw().to_vec(),
        Some(d) => match serde_json::from_slice::<Value>(d.raw()) {
            Ok(Value::Object(mut m)) => {
                m.remove("cohorts");
                Value::Object(m).to_string().into_bytes()
            }
            _ => d.raw().to_vec(),
        },
    };
    let etag = super::definitions::etag_of(&doc);
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let flags = defs.as_ref().map_or(0, |d| d.requirements().flags);
    let mut a = if matches {
        let mut a = Answer::json(304, &Value::Null, format!("not modified ({etag})"));
        a.body.clear();
        a
    } else {
        let mut a = Answer::json(
            200,
            &Value::Null,
            format!("{flags} flags, {} ({etag})", bytes(doc.len())),
        );
        a.body = doc;
        a
    };
    if defs.is_none() {
        a.summary
            .push_str(" (no --definitions given: an empty set)");
    }
    a.etag = Some(etag);
    a.details = note.into_iter().collect();
    a
}
