//! A local PostHog-compatible server on loopback, for developing and testing devices without a
//! PostHog account (the CLI's `serve`, the quick start, the firmware end-to-end test).
//!
//! | Route | What it does |
//! |---|---|
//! | `POST /batch/` (also `/capture/`, `/e/`, `/i/v0/e/`) | plain or gzip (`Content-Encoding: gzip` or `?compression=gzip`); every event is checked ([`check_event`]) and its time derived as PostHog does ([`event_time`]); answers `{"status": 1}`, or 400 (nothing recorded) when an event has a fatal problem, as PostHog does |
//! | `POST /flags/?v=2` (or `v=4`, with `value` in each record) | evaluates the definitions with this crate's evaluator for the request's context; PostHog's v2 answer ([`flags_response`]) |
//! | `POST /decide/?v=3` | the legacy answer ([`decide_response`]); `v=4` answers the `flags` map |
//! | `GET /flags/definitions` (also `/api/feature_flag/local_evaluation`) | the definitions file, with an `ETag` and `304 Not Modified`; needs `Authorization: Bearer <secret key>`; leaves `cohorts` out unless `send_cohorts` is asked for |
//! | `GET /` | a one-line greeting |
//!
//! HTTP/1.1 with keep-alive (hyper), or HTTPS with [`ServerConfig::tls`] (a private CA from
//! [`crate::tls::generate`]: `serve --tls`); a connection that sends no complete request head for
//! [`ServerConfig::header_read_timeout`] (30 s; idle keep-alive connections included) is
//! closed. The definitions file is re-read when it changes on disk. Every request is summarised
//! in one readable line (with up to [`MAX_DETAIL_LINES`] problems on the lines below it) given
//! to the configured log function, as is a connection that fails (malformed HTTP); received
//! events are kept in memory (the last [`KEPT_EVENTS`]) and, with
//! [`ServerConfig::events_out`], appended to a JSON Lines file.
//!
//! **Fault injection** ([`Faults`]) makes a device meet a bad network on purpose: a status for
//! every request or a random fraction of them, a delay before every answer, `Retry-After`, and
//! `Connection: close` on every answer. A failed request's events are not recorded, as a real
//! server would not have ingested them.
//!
//! Secrets: the project token (`token` and `api_key` query parameters, `api_key`, `token` and
//! `$token` in events and their properties) and bearer keys are never printed, kept or written
//! to the events file.

use core::convert::Infallible;
use core::net::SocketAddr;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use std::borrow::ToOwned;
use std::collections::{BTreeSet, HashSet, VecDeque};
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
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH,
};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::context::OwnedContext;
use super::definitions::{
    decide_response, flags_response, without_cohorts, Definitions, DefinitionsError, FlagOutcome,
};
use super::forward::{Forwarder, SPOOL_OVERHEAD};
use super::validate::{
    check_event, distinct_id, event_time, iso, parse_capture, parse_uuid, TimeSource,
};
use posthog_embedded::capture::Uuid;
use posthog_embedded::flags::Inconclusive;
use posthog_embedded::rng::Rng;
use posthog_embedded::time::UnixMillis;

/// `Retry-After` (seconds) of the gateway's answer when its spool is full.
pub const SPOOL_FULL_RETRY_AFTER: u32 = 5;

/// Largest request body accepted (PostHog's limit is 20 MiB). A request that declares a larger
/// `Content-Length` is answered 413 before its body is read.
pub const MAX_BODY: usize = 20 << 20;

/// Received events kept in memory (older ones are still in the events file).
pub const KEPT_EVENTS: usize = 10_000;

/// Request summaries kept in memory ([`LocalServer::requests`]).
pub const KEPT_REQUESTS: usize = 10_000;

/// Event uuids remembered to recognise retries (duplicates); the oldest are forgotten first.
pub const KEPT_UUIDS: usize = 100_000;

/// Problem lines printed below one request line; the rest are counted (`… and N more`).
pub const MAX_DETAIL_LINES: usize = 20;

/// Default of [`ServerConfig::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// How long a connection may take to send a request head, and how long an idle keep-alive
    /// connection is kept open waiting for the next one (default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`]; zero: no limit).
    pub header_read_timeout: Duration,
    /// The gateway: relay every accepted event upstream (see [`crate::forward`]).
    pub forward: Option<Arc<Forwarder>>,
    /// Serve HTTPS with this configuration (see [`crate::tls::generate`]); plain HTTP when
    /// `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("definitions", &self.definitions)
            .field("events_out", &self.events_out)
            .field("faults", &self.faults)
            .field("log", &self.log.is_some())
            .field("header_read_timeout", &self.header_read_timeout)
            .field("forward", &self.forward)
            .field("tls", &self.tls.is_some())
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
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            forward: None,
            tls: None,
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

    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    #[must_use]
    pub const fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets [`forward`](Self::forward).
    #[must_use]
    pub fn forward(mut self, f: Arc<Forwarder>) -> Self {
        self.forward = Some(f);
        self
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// Starting the runtime failed.
    Io(std::io::Error),
    /// The address could not be listened on.
    Bind(SocketAddr, std::io::Error),
    /// The definitions file could not be used.
    Definitions(PathBuf, DefinitionsError),
    /// The events file could not be opened.
    EventsOut(PathBuf, std::io::Error),
}

impl core::fmt::Display for ServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot start the server: {e}"),
            Self::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
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
    /// What is wrong with it (empty when nothing): warnings only, since an event with a fatal
    /// problem makes the whole request fail with 400 and nothing of it is recorded.
    pub problems: Vec<String>,
    /// An event with this uuid was received before (a retry; PostHog keeps one).
    pub duplicate: bool,
    /// The event as sent, without its project token (`api_key`, `token`, `$token`).
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
    /// Path and query, with the values of `token` and `api_key` parameters redacted.
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

/// A set that remembers the last `cap` values inserted (first in, first out).
struct RecentSet {
    set: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl RecentSet {
    fn new(cap: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// Inserts `v`; returns whether it was new (not among the last `cap` values).
    fn insert(&mut self, v: String) -> bool {
        if self.set.contains(&v) {
            return false;
        }
        self.set.insert(v.clone());
        self.order.push_back(v);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Appends `item`, dropping the oldest beyond `cap`.
fn push_bounded<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    q.push_back(item);
    while q.len() > cap {
        q.pop_front();
    }
}

struct Inner {
    events: VecDeque<ReceivedEvent>,
    total_events: usize,
    requests: VecDeque<RequestSummary>,
    uuids: RecentSet,
    /// Fault dice: only fault decisions draw from it, so they do not depend on other traffic.
    fault_rng: Rng,
    /// Request ids of `/flags` answers.
    id_rng: Rng,
    definitions: Option<LoadedDefinitions>,
    out: Option<File>,
}

struct State {
    inner: Mutex<Inner>,
    /// Notified whenever events are recorded.
    arrived: Condvar,
    faults: Faults,
    log: Option<Arc<LogFn>>,
    header_read_timeout: Duration,
    forward: Option<Arc<Forwarder>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        let listener = std::net::TcpListener::bind(config.bind)
            .map_err(|e| ServerError::Bind(config.bind, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ServerError::Bind(config.bind, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::Bind(config.bind, e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Io)?;
        let state = Arc::new(State {
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                total_events: 0,
                requests: VecDeque::new(),
                uuids: RecentSet::new(KEPT_UUIDS),
                fault_rng: Rng::new(config.faults.seed ^ 0x5e21_7e5e),
                id_rng: Rng::new(config.faults.seed ^ 0x1d5e_ed00_0000_0001),
                definitions,
                out,
            }),
            arrived: Condvar::new(),
            faults: config.faults,
            log: config.log,
            header_read_timeout: config.header_read_timeout,
            forward: config.forward,
            tls: config.tls.map(tokio_rustls::TlsAcceptor::from),
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

    /// `http://<addr>` (`https://` with TLS): the host to give a client.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
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

    /// The requests answered so far (the last [`KEPT_REQUESTS`]), oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RequestSummary> {
        self.state.lock().requests.iter().cloned().collect()
    }

    /// Waits until at least `n` events were received in total, or `timeout` passes (a timeout
    /// too large to add to the current instant waits without a deadline); returns whether they
    /// were.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now().checked_add(timeout);
        let mut g = self.state.lock();
        while g.total_events < n {
            g = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.state
                        .arrived
                        .wait_timeout(g, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .state
                    .arrived
                    .wait(g)
                    .unwrap_or_else(PoisonError::into_inner),
            };
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
        let (stream, peer) = match accepted {
            Ok(a) => a,
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
            match s.tls.clone() {
                None => serve_connection(s, stream, peer).await,
                Some(acceptor) => {
                    // The handshake is bounded like a request head.
                    let limit = if s.header_read_timeout.is_zero() {
                        Duration::from_secs(3600)
                    } else {
                        s.header_read_timeout
                    };
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(s, tls, peer).await,
                        Ok(Err(e)) => s.log(&format!(
                            "{} TLS handshake from {peer} failed: {e}",
                            clock(now_millis())
                        )),
                        Err(_) => s.log(&format!(
                            "{} TLS handshake from {peer} timed out",
                            clock(now_millis())
                        )),
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one accepted connection (plain, or after the TLS handshake).
async fn serve_connection<S>(s: Arc<State>, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let progress = Arc::new(Progress::default());
    let io = Counted {
        inner: stream,
        progress: Arc::clone(&progress),
    };
    let p = Arc::clone(&progress);
    let service_state = Arc::clone(&s);
    let service = hyper::service::service_fn(move |req| {
        let s = Arc::clone(&service_state);
        let p = Arc::clone(&p);
        async move { Ok::<_, Infallible>(handle(&s, req, &p).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    if !s.header_read_timeout.is_zero() {
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(s.header_read_timeout);
    }
    let served = builder
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        // A connection closed or timed out while idle (between requests) is ordinary;
        // anything else (malformed HTTP, a request cut short) is worth a line.
        if !progress.idle() {
            s.log(&format!(
                "{} connection from {peer}: {e}",
                clock(now_millis())
            ));
        }
    }
}

/// Bytes a connection has read, and how many of them belonged to requests already handled:
/// when the two are equal the connection is idle (between requests).
#[derive(Default)]
struct Progress {
    read: AtomicU64,
    handled: AtomicU64,
}

impl Progress {
    fn idle(&self) -> bool {
        self.read.load(Ordering::Relaxed) == self.handled.load(Ordering::Relaxed)
    }

    /// Everything read so far belongs to requests handled.
    fn handled_all(&self) {
        self.handled
            .store(self.read.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// A stream (TCP, or TLS over it) that counts the bytes read from it.
struct Counted<S> {
    inner: S,
    progress: Arc<Progress>,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let n = buf.filled().len().saturating_sub(before);
            this.progress
                .read
                .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// `HH:MM:SS.mmm` of `t` (UTC).
fn clock(t: UnixMillis) -> String {
    iso(t).get(11..23).unwrap_or_default().to_owned()
}

/// An answer before headers that apply to every response are added.
struct Answer {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    etag: Option<String>,
    /// The `Allow` header (405 answers).
    allow: Option<&'static str>,
    summary: String,
    /// Lines below the summary (problems).
    details: Vec<String>,
    events: usize,
    problems: usize,
    fault: bool,
    /// `Retry-After` (seconds) of an answer that is not an injected fault.
    retry_after: Option<u32>,
}

impl Answer {
    fn json(status: u16, body: &Value, summary: String) -> Self {
        Self {
            status,
            body: body.to_string().into_bytes(),
            content_type: "application/json",
            etag: None,
            allow: None,
            summary,
            details: Vec::new(),
            events: 0,
            problems: 0,
            fault: false,
            retry_after: None,
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

/// `path?query` with the values of `token` and `api_key` parameters replaced by `<redacted>`.
fn redact_query(path_query: &str) -> String {
    let Some((path, query)) = path_query.split_once('?') else {
        return path_query.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k == "token" || k == "api_key" => format!("{k}=<redacted>"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// The value of query parameter `name` (`Some("")` when it has none), undecoded.
fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if kv == name => Some(""),
        _ => None,
    })
}

async fn handle(
    state: &State,
    req: Request<Incoming>,
    progress: &Progress,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path_query = redact_query(
        &uri.path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
    );
    let headers = req.headers().clone();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = if declared.is_some_and(|n| n > MAX_BODY as u64) {
        // Refused before reading it.
        Err(Answer::error(
            413,
            &format!("body larger than {MAX_BODY} bytes"),
        ))
    } else {
        match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) => Err(if e.is::<http_body_util::LengthLimitError>() {
                Answer::error(413, &format!("body larger than {MAX_BODY} bytes"))
            } else {
                Answer::error(400, "the request body could not be read")
            }),
        }
    };
    progress.handled_all();
    // The request has arrived once its body has: a slow upload does not shift event times.
    let received = now_millis();
    if !state.faults.delay.is_zero() {
        tokio::time::sleep(state.faults.delay).await;
    }
    let answer = match body {
        Err(a) => a,
        Ok(body) => route(state, &method, &uri, &headers, &body, received),
    };
    let mut line = format!(
        "{} {} {} {}  {}",
        clock(received),
        method,
        path_query,
        answer.status,
        answer.summary
    );
    for d in answer.details.iter().take(MAX_DETAIL_LINES) {
        line.push_str("\n             ! ");
        line.push_str(d);
    }
    if answer.details.len() > MAX_DETAIL_LINES {
        line.push_str(&format!(
            "\n             … and {} more",
            answer.details.len() - MAX_DETAIL_LINES
        ));
    }
    state.log(&line);
    {
        let mut g = state.lock();
        push_bounded(
            &mut g.requests,
            RequestSummary {
                method: method.to_string(),
                path: path_query,
                status: answer.status,
                events: answer.events,
                problems: answer.problems,
                fault: answer.fault,
            },
            KEPT_REQUESTS,
        );
    }
    let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
    *resp.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    if let Some(tag) = answer.etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        h.insert(ETAG, tag);
    }
    if let Some(allow) = answer.allow {
        h.insert(ALLOW, HeaderValue::from_static(allow));
    }
    let retry_after = if answer.fault {
        state.faults.retry_after
    } else {
        answer.retry_after
    };
    if let Some(secs) = retry_after {
        h.insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
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
    let (want, allow) = if endpoint == Endpoint::Definitions || endpoint == Endpoint::Health {
        (Method::GET, "GET")
    } else {
        (Method::POST, "POST")
    };
    if *method != want {
        let mut a = Answer::error(405, &format!("{path} takes {want}, not {method}"));
        a.allow = Some(allow);
        return a;
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
            let roll = state.lock().fault_rng.next_u64();
            // 53 random bits as a fraction in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let x = (roll >> 11) as f64 / (1u64 << 53) as f64;
            (x < rate).then_some(status)
        }
        _ => None,
    }
}

/// The body, gunzipped when the request says it is compressed (every gzip member, as a
/// streaming compressor may write several).
fn decoded_body(
    headers: &hyper::HeaderMap,
    query: &str,
    body: &[u8],
) -> Result<(Vec<u8>, bool), (u16, &'static str)> {
    let header_gzip = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let query_gzip = matches!(query_param(query, "compression"), Some("gzip" | "gzip-js"));
    if !(header_gzip || query_gzip) {
        return Ok((body.to_vec(), false));
    }
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(MAX_BODY as u64 + 1);
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
    let env = match parse_capture(json) {
        Ok(env) => env,
        Err(e) => return Answer::error(400, &e),
    };
    let mut details: Vec<String> = env.problems;
    let mut fatal: Vec<String> = Vec::new();
    let mut checked = Vec::with_capacity(env.events.len());
    for (i, event) in env.events.into_iter().enumerate() {
        let problems = check_event(&event);
        let name = event
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let mut warnings = Vec::new();
        for p in problems {
            if p.fatal {
                let line = format!("event {} ({name}): {}", i + 1, p.message);
                details.push(format!("{line} (rejects the request)"));
                fatal.push(line);
            } else {
                details.push(format!("event {} ({name}): {}", i + 1, p.message));
                warnings.push(p.message);
            }
        }
        checked.push((event, warnings));
    }
    let n = checked.len();
    if !fatal.is_empty() {
        // PostHog rejects the whole request: nothing of it is ingested.
        let mut detail = fatal
            .iter()
            .take(3)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ");
        if fatal.len() > 3 {
            detail.push_str(&format!(" (and {} more)", fatal.len() - 3));
        }
        let mut a = Answer::error(400, &detail);
        let plural = if n == 1 { "" } else { "s" };
        a.summary = format!(
            "{n} event{plural} rejected: {} fatal problem{} (nothing recorded)",
            fatal.len(),
            if fatal.len() == 1 { "" } else { "s" }
        );
        a.problems = details.len();
        a.details = details;
        return a;
    }
    // The gateway takes a request only if its spool has room for all of it: otherwise a 503
    // with `Retry-After`, nothing recorded, and the device keeps its events. (A request larger
    // than the whole spool could never fit: it is taken, and the relay counts what it cannot
    // keep.)
    if let Some(f) = &state.forward {
        let needed: usize = checked
            .iter()
            .map(|(e, _)| e.to_string().len() + SPOOL_OVERHEAD)
            .sum();
        let room = f.room(env.api_key.as_deref().unwrap_or_default());
        if needed > room && needed <= f.spool_bytes() {
            let mut a = Answer::error(
                503,
                &format!(
                    "the gateway's spool is full ({needed} bytes needed, {room} left): retry later"
                ),
            );
            a.summary = format!(
                "{n} event{} refused: the gateway's spool is full, {room} bytes left (nothing recorded)",
                if n == 1 { "" } else { "s" }
            );
            a.retry_after = Some(SPOOL_FULL_RETRY_AFTER);
            return a;
        }
    }
    let mut g = state.lock();
    let mut records = Vec::with_capacity(n);
    for (event, problems) in checked {
        let (time, time_source) = event_time(&event, env.sent_at, received);
        let duplicate = match event
            .get("uuid")
            .and_then(Value::as_str)
            .and_then(parse_uuid)
        {
            Some(u) => !g.uuids.insert(u.to_string()),
            None => false,
        };
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
    let mut summary = summarize(&records, raw.len(), body.len(), gzip);
    // Spooled for the upstream (in memory, quick); duplicates are not relayed again.
    let relay = state.forward.as_ref().map(|f| {
        let spooled = f.forward(env.api_key.as_deref(), &records);
        (spooled, records.iter().filter(|r| !r.duplicate).count())
    });
    if let Some((spooled, fresh)) = relay {
        summary.push_str(&format!("  (relayed {spooled} of {fresh})"));
    }
    g.total_events += n;
    for r in records {
        push_bounded(&mut g.events, r, KEPT_EVENTS);
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
    let ids: BTreeSet<String> = records
        .iter()
        .filter_map(|r| distinct_id(&r.event))
        .collect();
    let who = match ids.len() {
        0 => String::new(),
        1 => format!("{}: ", ids.first().map_or("", String::as_str)),
        many => format!("{many} distinct ids: "),
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
        let hi = g.id_rng.next_u64().to_be_bytes();
        let lo = g.id_rng.next_u64().to_be_bytes();
        let [a0, a1, a2, a3, a4, a5, a6, a7] = hi;
        let [b0, b1, b2, b3, b4, b5, b6, b7] = lo;
        let b = [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            (a6 & 0x0f) | 0x40,
            a7,
            (b0 & 0x3f) | 0x80,
            b1,
            b2,
            b3,
            b4,
            b5,
            b6,
            b7,
        ];
        Uuid::from_bytes(b).to_string()
    };
    let version = query_param(query, "v")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    let minimal = defs
        .as_ref()
        .is_some_and(|d| d.minimal_flag_called_events());
    let response = match endpoint {
        Endpoint::Decide if version < 4 => decide_response(&outcomes),
        Endpoint::Decide => {
            flags_response(&outcomes, &request_id, received.as_millis(), false, minimal)
        }
        _ => flags_response(
            &outcomes,
            &request_id,
            received.as_millis(),
            version >= 4,
            minimal,
        ),
    };
    let on = outcomes
        .iter()
        .filter(|o| matches!(&o.result, Ok((v, _)) if v.is_enabled()))
        .count();
    // One detail line per reason: `missing_context: a, b, c`.
    let mut unknown: Vec<&str> = Vec::new();
    let mut by_reason: Vec<(&str, Vec<&str>)> = Vec::new();
    for o in &outcomes {
        let reason = match &o.result {
            Ok(_) => continue,
            Err(Inconclusive::UnknownFlag) => {
                unknown.push(&o.key);
                continue;
            }
            Err(e) => e.as_str(),
        };
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, keys)) => keys.push(&o.key),
            None => by_reason.push((reason, std::vec![o.key.as_str()])),
        }
    }
    let undecided_count: usize = by_reason.iter().map(|(_, k)| k.len()).sum();
    let mut lines: Vec<String> = by_reason
        .iter()
        .map(|(r, keys)| format!("not decidable here ({r}): {}", keys.join(", ")))
        .collect();
    if !unknown.is_empty() {
        lines.push(format!("unknown flags: {}", unknown.join(", ")));
    }
    let evaluated = outcomes.len() - unknown.len();
    let mut summary = format!(
        "{}: {evaluated} flag{} evaluated, {on} on",
        ctx.distinct_id,
        if evaluated == 1 { "" } else { "s" }
    );
    if undecided_count > 0 {
        summary.push_str(&format!(", {undecided_count} not decidable here"));
    }
    if !unknown.is_empty() {
        summary.push_str(&format!(", {} unknown", unknown.len()));
    }
    if defs.is_none() {
        summary.push_str(" (no --definitions given: every flag is unknown)");
    }
    let mut a = Answer::json(200, &response, summary);
    a.details = note.into_iter().chain(lines).collect();
    a
}

fn definitions(state: &State, headers: &hyper::HeaderMap, query: &str) -> Answer {
    let bearer = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(key)
        })
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
    let send_cohorts = query_param(query, "send_cohorts")
        .is_some_and(|v| !v.eq_ignore_ascii_case("false") && v != "0");
    let doc: Vec<u8> = match &defs {
        None => br#"{"flags":[],"group_type_mapping":{},"cohorts":{}}"#.to_vec(),
        Some(d) if send_cohorts => d.raw().to_vec(),
        Some(d) => without_cohorts(d.raw()).unwrap_or_else(|| d.raw().to_vec()),
    };
    let etag = super::definitions::etag_of(&doc);
    let matches = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == etag
            })
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
            format!(
                "{flags} flag{}, {} ({etag})",
                if flags == 1 { "" } else { "s" },
                bytes(doc.len())
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_uuids_forget_the_oldest_first() {
        let mut set = RecentSet::new(3);
        for u in ["a", "b", "c"] {
            assert!(set.insert(u.into()));
        }
        assert!(!set.insert("a".into()));
        assert!(set.insert("d".into()));
        assert_eq!(set.order.len(), 3);
        assert_eq!(set.set.len(), 3);
        // "a" was the oldest: forgotten, so it is new again.
        assert!(set.insert("a".into()));
        assert!(!set.insert("c".into()));
        assert!(set.insert("b".into()));
    }

    #[test]
    fn kept_requests_and_events_are_bounded() {
        let mut q = VecDeque::new();
        for i in 0..10 {
            push_bounded(&mut q, i, 4);
        }
        assert_eq!(q, [6, 7, 8, 9]);
    }

    #[test]
    fn query_secrets_are_redacted() {
        assert_eq!(
            redact_query("/flags/definitions?token=phc_SECRET&send_cohorts"),
            "/flags/definitions?token=<redacted>&send_cohorts"
        );
        assert_eq!(
            redact_query("/batch/?api_key=phc_S&compression=gzip&token"),
            "/batch/?api_key=<redacted>&compression=gzip&token"
        );
        assert_eq!(redact_query("/batch/"), "/batch/");
        assert_eq!(query_param("a=1&send_cohorts&v=4", "v"), Some("4"));
        assert_eq!(query_param("a=1&send_cohorts", "send_cohorts"), Some(""));
        assert_eq!(query_param("a=1", "v"), None);
    }
}
