//! The std driver: [`StdClock`], an HTTPS transport over `ureq` ([`UreqTransport`]) and a
//! ready-to-use threaded client ([`StdClient`]).
//!
//! The driver holds no policy. Batching, retries, back-off and definitions polling all live in
//! [`Client`]; this module reads clocks, moves bytes and waits.
//!
//! # Threading
//!
//! [`StdClient`] keeps the core [`Client`] (boxed: it is several megabytes) behind a
//! `Mutex`, with two condition variables: `wake` (the worker waits on it) and `progress` (callers
//! of [`flush`](StdClient::flush) and [`shutdown`](StdClient::shutdown) wait on it). One
//! background thread loops:
//!
//! 1. lock; [`poll_transmit`](Client::poll_transmit) with a fresh clock reading;
//! 2. if a request is due: copy it out ([`OwnedTransmit`]), **unlock**, send it, lock again,
//!    settle it with [`handle_response`](Client::handle_response) or
//!    [`handle_transport_error`](Client::handle_transport_error), wake the waiters;
//! 3. otherwise wait on `wake` until [`poll_timeout`](Client::poll_timeout) (or forever when it is
//!    `None`); every capture, flush, reload and shutdown notifies `wake`.
//!
//! Captures never wait for the network: they hold the lock only while the event is encoded.
//!
//! Flag reads ([`get_feature_flag`](StdClient::get_feature_flag) and friends) evaluate locally
//! under the lock. When they need the server, they copy the `/flags` request body out, **unlock**,
//! send it from the caller's thread (retrying per [`FlagsRetry`]), parse the answer into the
//! client's boxed [`StdRemoteFlags`] (its own lock), and lock the core again only to report the
//! read ([`Client::remote_flag_called`] / [`Client::failed_flag_called`]).
//!
//! An observer installed with [`on_request`](StdClient::on_request) is told about every HTTP
//! attempt, on the thread that made it, with no lock of the client held.
//!
//! # Secrets
//!
//! The API key and the secret key live in the core [`Config`] and in the request headers the
//! worker copies out. No `Debug`, `Display` or log line of this module prints them:
//! [`StdConfig`]'s and [`OwnedTransmit`]'s `Debug` redact them, [`StdError`] never carries them,
//! and `ureq` errors are mapped to [`TransportError`] without their text. (`ureq` itself logs
//! full request URIs, which carry the project token for definitions polls, only at `trace` level
//! of the `log` facade.)
//!
//! # Keys and `'static`
//!
//! The core [`Client`] borrows its keys for `'a`; the background thread needs `'static`. The
//! driver therefore leaks the key strings, **once per distinct key per process** (they are
//! interned: creating many clients with the same keys leaks nothing more). A key is a few dozen
//! bytes.

use core::fmt;
use core::hash::{BuildHasher, Hasher};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration as StdDuration;
use std::borrow::ToOwned;
use std::boxed::Box;
use std::collections::BTreeMap;
use std::format;
use std::io;
use std::string::String;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::vec::Vec;

use crate::capture::SeqRange;
use crate::capture::{EncoderConfig, EventOptions, OverflowPolicy, Person, Uuid};
use crate::client::{
    Client, ClientStats, Config, ConfigError, Fate, FlagsAttempt, FlagsRetry, GiveUp, Method,
    RequestKind, ResponseInfo, RetryAfter, Setting, Transmit, TransportError, FLAGS_PATH,
};
use crate::error::{CaptureError, PropertyError};
use crate::flags::remote::{FlagErrorKind, FlagErrors, RemoteFlags, RequestError};
use crate::flags::{EvalContext, FlagStore, FlagValue, Inconclusive, LoadError, Requirements};
use crate::json::write::Object;
use crate::time::{Clock, Duration, Instant, Now, UnixMillis};

/// [`Clock`] over `std::time`: monotonic time since the clock was created, and the system wall
/// clock (assumed trusted; hosts normally run NTP).
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    start: std::time::Instant,
}

impl StdClock {
    /// A clock whose monotonic epoch is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn wall(&self) -> Option<UnixMillis> {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(UnixMillis::from_millis(u64::try_from(d.as_millis()).ok()?))
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The default host: PostHog Cloud US ingestion.
pub const DEFAULT_HOST: &str = "https://us.i.posthog.com";

/// Bytes of event queue in [`StdCore`] (1 MiB).
pub const QUEUE_BYTES: usize = 1 << 20;
/// Flags the [`StdCore`] flag store holds.
pub const MAX_FLAGS: usize = 512;
/// Compiled filter nodes the [`StdCore`] flag store holds.
pub const MAX_NODES: usize = 16_384;
/// Bytes of flag-definition text the [`StdCore`] flag store holds (1 MiB).
pub const FLAG_TEXT_BYTES: usize = 1 << 20;
/// Size of the worker's request-body buffer: the whole queue plus room for the envelope, so any
/// queued event fits in a request.
pub const BODY_BYTES: usize = QUEUE_BYTES + 4096;

/// The core client [`StdClient`] drives: 1 MiB of queue; 512 flags, 16 384 nodes and 1 MiB of
/// text in the flag store. About 3 MiB; always boxed (see [`StdClient::new`]).
pub type StdCore = Client<'static, QUEUE_BYTES, MAX_FLAGS, MAX_NODES, FLAG_TEXT_BYTES>;

/// The flag store of [`StdCore`].
pub type StdFlagStore = FlagStore<MAX_FLAGS, MAX_NODES, FLAG_TEXT_BYTES>;

/// Flags a `/flags` answer may hold in a [`StdClient`] ([`StdRemoteFlags`]).
pub const MAX_REMOTE_FLAGS: usize = 4096;
/// Bytes of text (keys, variants, payloads, reasons) a `/flags` answer may hold in a
/// [`StdClient`] (1 MiB).
pub const REMOTE_TEXT_BYTES: usize = 1 << 20;

/// The parsed `/flags` answer of a [`StdClient`]: 4096 flags and 1 MiB of text, about 1.3 MiB,
/// allocated once per client (boxed, never on the stack).
pub type StdRemoteFlags = RemoteFlags<MAX_REMOTE_FLAGS, REMOTE_TEXT_BYTES>;

/// First size tried for a `/flags` request body; a larger body gets a buffer of its exact size.
const FLAGS_BODY_BYTES: usize = 4096;

/// Settings of a [`StdClient`] (and of a [`UreqTransport`]). Start from [`StdConfig::new`]; the
/// client knobs default to the core's [`Config::new`] values.
#[derive(Clone)]
#[non_exhaustive]
pub struct StdConfig {
    /// Host URL, `https://` (or `http://` for local tools and tests). Default
    /// [`DEFAULT_HOST`]. App hosts are rewritten to ingestion hosts (see [`normalize_host`]).
    pub host: String,
    /// Project API key (`phc_…`). Never logged.
    pub api_key: String,
    /// Secret key for definitions polling; `None` turns polling off. Never logged.
    pub secret_key: Option<String>,
    /// Send when this many events are queued.
    pub flush_at: usize,
    /// Send when the oldest unsent event is this old.
    pub flush_interval: StdDuration,
    /// At most this many events per request.
    pub max_batch_events: usize,
    /// First back-off delay after a retryable failure; doubles with each failure in a row.
    pub retry_base: StdDuration,
    /// Longest back-off delay (see [`Config::retry_cap`]).
    pub retry_cap: StdDuration,
    /// Longest `Retry-After` honoured (see [`Config::retry_after_cap`]).
    pub retry_after_cap: StdDuration,
    /// When to stop retrying a failing batch. Default [`GiveUp::Never`]: events stay queued
    /// through any outage.
    pub give_up: GiveUp,
    /// Definitions polling interval.
    pub poll_interval: StdDuration,
    /// What to do when the queue is full.
    pub overflow: OverflowPolicy,
    /// Event encoding settings (GeoIP, key length).
    pub encoder: EncoderConfig,
    /// Start opted out.
    pub opted_out: bool,
    /// Gzip `/batch/` bodies (`Content-Encoding: gzip`). Default off.
    pub gzip: bool,
    /// Timeout of one whole request (connect, send, receive). Default 10 s.
    pub request_timeout: StdDuration,
    /// Trusted root certificates (DER). When empty (the default) the Mozilla roots bundled with
    /// `webpki-roots` are used; when not, **these replace them** (a private CA, or a test CA).
    /// Certificates that do not parse are ignored, so a bad list makes every TLS handshake fail
    /// rather than the construction.
    pub root_certificates: Vec<Vec<u8>>,
    /// Largest response body read (definitions can be large); a larger one is a
    /// [`TransportError::BadResponse`]. Default 4 MiB.
    pub max_response_bytes: usize,
    /// Honour `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` from the environment. Default true.
    pub proxy_from_env: bool,
    /// Seed for uuids and jitter: [`os_seed`] unless you need reproducible uuids (see
    /// [`Config::new`]).
    pub seed: u64,
    /// How long dropping a [`StdClient`] that was not shut down may spend flushing. Default 1 s.
    pub drop_timeout: StdDuration,
    /// Timeout of one remote flag evaluation attempt (`POST /flags/?v=2`). Default 3 s, as in
    /// posthog-python, posthog-node and posthog-go.
    pub flags_request_timeout: StdDuration,
    /// Retries of a failed `/flags` request (only transport failures other than a refused
    /// connection, 502 and 504 are retried; see [`FlagsRetry`]). Default 1; values above 9
    /// count as 9.
    pub flags_max_retries: u8,
}

impl fmt::Debug for StdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdConfig")
            .field("host", &self.host)
            .field("api_key", &"<redacted>")
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("flush_at", &self.flush_at)
            .field("flush_interval", &self.flush_interval)
            .field("max_batch_events", &self.max_batch_events)
            .field("retry_base", &self.retry_base)
            .field("retry_cap", &self.retry_cap)
            .field("retry_after_cap", &self.retry_after_cap)
            .field("give_up", &self.give_up)
            .field("poll_interval", &self.poll_interval)
            .field("overflow", &self.overflow)
            .field("encoder", &self.encoder)
            .field("opted_out", &self.opted_out)
            .field("gzip", &self.gzip)
            .field("request_timeout", &self.request_timeout)
            .field("root_certificates", &self.root_certificates.len())
            .field("max_response_bytes", &self.max_response_bytes)
            .field("proxy_from_env", &self.proxy_from_env)
            .field("seed", &self.seed)
            .field("drop_timeout", &self.drop_timeout)
            .field("flags_request_timeout", &self.flags_request_timeout)
            .field("flags_max_retries", &self.flags_max_retries)
            .finish()
    }
}

fn to_std(d: Duration) -> StdDuration {
    StdDuration::from_millis(d.as_millis())
}

/// Whole milliseconds, rounded up: a non-zero duration never becomes zero.
fn to_core(d: StdDuration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

impl StdConfig {
    /// Defaults with `api_key` and `seed` (use [`os_seed`], unless you need reproducible
    /// uuids: see [`Config::new`]).
    #[must_use]
    pub fn new(api_key: impl Into<String>, seed: u64) -> Self {
        let core = Config::new("", seed);
        Self {
            host: DEFAULT_HOST.to_owned(),
            api_key: api_key.into(),
            secret_key: None,
            flush_at: core.flush_at,
            flush_interval: to_std(core.flush_interval),
            max_batch_events: core.max_batch_events,
            retry_base: to_std(core.retry_base),
            retry_cap: to_std(core.retry_cap),
            retry_after_cap: to_std(core.retry_after_cap),
            give_up: core.give_up,
            poll_interval: to_std(core.poll_interval),
            overflow: core.overflow,
            encoder: core.encoder,
            opted_out: core.opted_out,
            gzip: false,
            request_timeout: StdDuration::from_secs(10),
            root_certificates: Vec::new(),
            max_response_bytes: 4 << 20,
            proxy_from_env: true,
            seed,
            drop_timeout: StdDuration::from_secs(1),
            flags_request_timeout: StdDuration::from_secs(3),
            flags_max_retries: 1,
        }
    }

    /// Sets [`host`](Self::host).
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Sets [`secret_key`](Self::secret_key).
    #[must_use]
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// Sets [`flush_at`](Self::flush_at).
    #[must_use]
    pub const fn flush_at(mut self, n: usize) -> Self {
        self.flush_at = n;
        self
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    #[must_use]
    pub const fn flush_interval(mut self, d: StdDuration) -> Self {
        self.flush_interval = d;
        self
    }

    /// Sets [`max_batch_events`](Self::max_batch_events).
    #[must_use]
    pub const fn max_batch_events(mut self, n: usize) -> Self {
        self.max_batch_events = n;
        self
    }

    /// Sets [`retry_after_cap`](Self::retry_after_cap).
    #[must_use]
    pub const fn retry_after_cap(mut self, cap: StdDuration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// Sets [`give_up`](Self::give_up).
    #[must_use]
    pub const fn give_up(mut self, policy: GiveUp) -> Self {
        self.give_up = policy;
        self
    }

    /// Sets [`retry_base`](Self::retry_base) and [`retry_cap`](Self::retry_cap).
    #[must_use]
    pub const fn retry(mut self, base: StdDuration, cap: StdDuration) -> Self {
        self.retry_base = base;
        self.retry_cap = cap;
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval).
    #[must_use]
    pub const fn poll_interval(mut self, d: StdDuration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Sets [`overflow`](Self::overflow).
    #[must_use]
    pub const fn overflow(mut self, p: OverflowPolicy) -> Self {
        self.overflow = p;
        self
    }

    /// Sets [`encoder`](Self::encoder).
    #[must_use]
    pub const fn encoder(mut self, e: EncoderConfig) -> Self {
        self.encoder = e;
        self
    }

    /// Sets [`opted_out`](Self::opted_out).
    #[must_use]
    pub const fn opted_out(mut self, v: bool) -> Self {
        self.opted_out = v;
        self
    }

    /// Sets [`gzip`](Self::gzip).
    #[must_use]
    pub const fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    #[must_use]
    pub const fn request_timeout(mut self, d: StdDuration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Adds a trusted root certificate (DER) to [`root_certificates`](Self::root_certificates).
    #[must_use]
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(der.into());
        self
    }

    /// Sets [`max_response_bytes`](Self::max_response_bytes).
    #[must_use]
    pub const fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// Sets [`proxy_from_env`](Self::proxy_from_env).
    #[must_use]
    pub const fn proxy_from_env(mut self, on: bool) -> Self {
        self.proxy_from_env = on;
        self
    }

    /// Sets [`drop_timeout`](Self::drop_timeout).
    #[must_use]
    pub const fn drop_timeout(mut self, d: StdDuration) -> Self {
        self.drop_timeout = d;
        self
    }

    /// Sets [`flags_request_timeout`](Self::flags_request_timeout).
    #[must_use]
    pub const fn flags_request_timeout(mut self, d: StdDuration) -> Self {
        self.flags_request_timeout = d;
        self
    }

    /// Sets [`flags_max_retries`](Self::flags_max_retries).
    #[must_use]
    pub const fn flags_max_retries(mut self, n: u8) -> Self {
        self.flags_max_retries = n;
        self
    }

    /// Checks the settings: the core's ([`Config::validate`]), the host, and this driver's
    /// timeouts and response limit (none may be zero).
    ///
    /// # Errors
    /// [`StdError::Config`] or [`StdError::InvalidHost`].
    pub fn validate(&self) -> Result<(), StdError> {
        normalize_host(&self.host)?;
        let mut core = Config::new(&self.api_key, self.seed)
            .flush_at(self.flush_at)
            .flush_interval(to_core(self.flush_interval))
            .max_batch_events(self.max_batch_events)
            .retry(to_core(self.retry_base), to_core(self.retry_cap))
            .retry_after_cap(to_core(self.retry_after_cap))
            .give_up(self.give_up)
            .poll_interval(to_core(self.poll_interval));
        if let Some(s) = &self.secret_key {
            core = core.secret_key(s);
        }
        core.validate()?;
        let zero = if self.request_timeout.is_zero() {
            Some(Setting::RequestTimeout)
        } else if self.flags_request_timeout.is_zero() {
            Some(Setting::FlagsRequestTimeout)
        } else if self.max_response_bytes == 0 {
            Some(Setting::MaxResponseBytes)
        } else {
            None
        };
        match zero {
            Some(setting) => Err(StdError::Config(ConfigError::Zero { setting })),
            None => Ok(()),
        }
    }

    /// The core configuration, with `'static` keys (interned; see the module docs).
    fn core_config(&self) -> Config<'static> {
        let mut c = Config::new(intern(&self.api_key), self.seed)
            .flush_at(self.flush_at)
            .flush_interval(to_core(self.flush_interval))
            .max_batch_events(self.max_batch_events)
            .retry(to_core(self.retry_base), to_core(self.retry_cap))
            .retry_after_cap(to_core(self.retry_after_cap))
            .give_up(self.give_up)
            .poll_interval(to_core(self.poll_interval))
            .overflow(self.overflow)
            .encoder(self.encoder)
            .opted_out(self.opted_out);
        if let Some(s) = &self.secret_key {
            c = c.secret_key(intern(s));
        }
        c
    }
}

/// A `'static` copy of `s`, leaked once per distinct string per process.
fn intern(s: &str) -> &'static str {
    static INTERNED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut all = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(k) = all.iter().find(|k| **k == s) {
        return k;
    }
    let k: &'static str = Box::leak(Box::<str>::from(s));
    all.push(k);
    k
}

/// A seed for [`StdConfig::new`] that differs per process and per call: SipHash with the
/// OS-seeded keys of `RandomState`, over the system time, the process id and a counter.
#[must_use]
pub fn os_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(t);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The host requests go to, per the PostHog SDKs: blank means [`DEFAULT_HOST`]; surrounding
/// whitespace and one trailing slash are removed; the app hosts `https://app.posthog.com` and
/// `https://us.posthog.com` become `https://us.i.posthog.com`, and `https://eu.posthog.com`
/// becomes `https://eu.i.posthog.com`.
///
/// # Errors
/// [`StdError::InvalidHost`] unless the result is an `http://` or `https://` URL with a host
/// and no path, query or fragment.
pub fn normalize_host(host: &str) -> Result<String, StdError> {
    let h = host.trim();
    let h = if h.is_empty() { DEFAULT_HOST } else { h };
    let h = h.strip_suffix('/').unwrap_or(h);
    let h = match h {
        "https://app.posthog.com" | "https://us.posthog.com" => "https://us.i.posthog.com",
        "https://eu.posthog.com" => "https://eu.i.posthog.com",
        other => other,
    };
    let uri: ureq::http::Uri = h.parse().map_err(|_| StdError::InvalidHost)?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none() && !h.contains('#');
    if !scheme_ok || uri.host().is_none_or(str::is_empty) || !path_ok || h.ends_with('/') {
        return Err(StdError::InvalidHost);
    }
    Ok(h.to_owned())
}

/// Why a [`StdClient`] or [`UreqTransport`] could not be built. Never carries a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StdError {
    /// The client settings are invalid.
    Config(ConfigError),
    /// The host is not an `http://` or `https://` URL without a path.
    InvalidHost,
    /// The background thread could not be started.
    Spawn,
}

impl fmt::Display for StdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::InvalidHost => {
                f.write_str("host must be an http:// or https:// URL without a path")
            }
            Self::Spawn => f.write_str("could not start the background thread"),
        }
    }
}

impl core::error::Error for StdError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for StdError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

/// A [`Transmit`] copied out of the core, so the client's lock can be released while it is
/// sent. Its `Debug` omits header values (the `Authorization` header carries the secret key).
#[derive(Clone)]
pub struct OwnedTransmit {
    /// What it is for.
    pub kind: RequestKind,
    /// The method.
    pub method: Method,
    /// Path and query, to append to the host.
    pub path: String,
    /// The body (uncompressed; empty for `GET`).
    pub body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl OwnedTransmit {
    /// Copies `tx`. `Header::Bearer` values become `Bearer <secret>`.
    #[must_use]
    pub fn from_transmit(tx: &Transmit<'_, '_>) -> Self {
        let headers = tx
            .headers()
            .map(|(name, value)| {
                let mut v = String::new();
                let _ = value.write(|s| {
                    v.push_str(s);
                    Ok::<(), core::convert::Infallible>(())
                });
                (name, v)
            })
            .collect();
        Self {
            kind: tx.kind,
            method: tx.method,
            path: tx.path.as_str().to_owned(),
            body: tx.body.to_vec(),
            headers,
        }
    }

    /// The headers to send (see [`Transmit::headers`]). The `Authorization` value carries the
    /// secret key: never log it.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.headers.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

impl fmt::Debug for OwnedTransmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("OwnedTransmit")
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A response, owned. [`info`](Self::info) gives what [`Client::handle_response`] takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After`, if present and valid.
    pub retry_after: Option<RetryAfter>,
    /// `ETag`, if present (and ASCII).
    pub etag: Option<String>,
    /// The body, at most [`StdConfig::max_response_bytes`].
    pub body: Vec<u8>,
}

impl Response {
    /// The part the core needs.
    #[must_use]
    pub fn info(&self) -> ResponseInfo<'_> {
        ResponseInfo {
            status: self.status,
            retry_after: self.retry_after,
            etag: self.etag.as_deref(),
        }
    }
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 850 or
/// asctime). `None` for anything else (and for dates before 1970).
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Overlong numbers saturate: "retry much later".
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(RetryAfter::Delay(Duration::from_secs(secs)));
    }
    let t = httpdate::parse_http_date(v).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(RetryAfter::At(UnixMillis::from_millis(
        u64::try_from(ms).unwrap_or(u64::MAX),
    )))
}

/// Blocking HTTPS transport over `ureq` with rustls: certificate verification on (webpki roots,
/// or [`StdConfig::root_certificates`]), no redirects followed (a 3xx comes back as a
/// response), every status returned as a response, one timeout for the whole request, bodies
/// read up to [`StdConfig::max_response_bytes`]. `/batch/` bodies are gzipped when
/// [`StdConfig::gzip`] is on. Holds no policy: the caller settles every outcome with the core.
///
/// Reusable on its own (CLI, compliance adapter):
///
/// ```no_run
/// use posthog_embedded::adapters::std::{StdClock, StdConfig, UreqTransport};
/// use posthog_embedded::client::{Client, Config};
/// use posthog_embedded::Clock;
///
/// let transport = UreqTransport::new(&StdConfig::new("phc_project_token", 0x5eed))?;
/// let mut client = Client::<'static, 8192, 16, 256, 4096>::new(Config::new("phc_project_token", 0x5eed));
/// let clock = StdClock::new();
/// let mut buf = vec![0u8; 1 << 16];
/// while let Some(tx) = client.poll_transmit(clock.read(), &mut buf) {
///     match transport.send_transmit(&tx) {
///         Ok(resp) => client.handle_response(clock.read(), &resp.info(), &resp.body),
///         Err(e) => client.handle_transport_error(clock.read(), e),
///     }
/// }
/// # Ok::<(), posthog_embedded::adapters::std::StdError>(())
/// ```
pub struct UreqTransport {
    agent: ureq::Agent,
    host: String,
    gzip: bool,
    max_response_bytes: u64,
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("host", &self.host)
            .field("gzip", &self.gzip)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl UreqTransport {
    /// A transport for `config`'s host, timeout, roots, gzip and response cap (the keys are not
    /// used: they travel inside each [`Transmit`]).
    ///
    /// # Errors
    /// [`StdError::InvalidHost`] (see [`normalize_host`]).
    pub fn new(config: &StdConfig) -> Result<Self, StdError> {
        let host = normalize_host(&config.host)?;
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .disable_verification(false);
        if !config.root_certificates.is_empty() {
            let roots: Vec<ureq::tls::Certificate<'static>> = config
                .root_certificates
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(config.request_timeout))
            // Our User-Agent comes from the Transmit's headers.
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .tls_config(tls.build());
        if !config.proxy_from_env {
            builder = builder.proxy(None);
        }
        Ok(Self {
            agent: builder.build().new_agent(),
            host,
            gzip: config.gzip,
            max_response_bytes: u64::try_from(config.max_response_bytes).unwrap_or(u64::MAX),
        })
    }

    /// The normalized host requests go to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends `tx` and reads the whole response.
    ///
    /// # Errors
    /// [`TransportError`] when no complete response arrived (or it was larger than the cap).
    pub fn send_transmit(&self, tx: &Transmit<'_, '_>) -> Result<Response, TransportError> {
        self.send(&OwnedTransmit::from_transmit(tx))
    }

    /// Sends `req` and reads the whole response.
    ///
    /// # Errors
    /// [`TransportError`] when no complete response arrived (or it was larger than the cap).
    pub fn send(&self, req: &OwnedTransmit) -> Result<Response, TransportError> {
        let url = format!("{}{}", self.host, req.path);
        let result = match req.method {
            Method::Head => with_headers(self.agent.head(&url), req).call(),
            Method::Get => with_headers(self.agent.get(&url), req).call(),
            Method::Post => {
                let b = with_headers(self.agent.post(&url), req);
                if self.gzip && matches!(req.kind, RequestKind::Batch { .. }) {
                    let body = gzip(&req.body).map_err(|_| TransportError::Io)?;
                    b.header("Content-Encoding", "gzip").send(&body[..])
                } else {
                    b.send(&req.body[..])
                }
            }
        };
        self.read_response(result).map_err(map_error)
    }

    /// Sends a remote flag evaluation request (`POST` [`FLAGS_PATH`] with `body`, the
    /// `Content-Type` and `User-Agent` headers, no `Authorization`, never compressed) with its
    /// own `timeout`, and reads the whole response. A refused connection is told apart from other
    /// transport errors because the flags retry policy does not retry it.
    fn send_flags(&self, body: &[u8], timeout: StdDuration) -> Result<Response, FlagsFailure> {
        let url = format!("{}{}", self.host, FLAGS_PATH);
        let result = self
            .agent
            .post(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json")
            .header("User-Agent", crate::USER_AGENT)
            .send(body);
        self.read_response(result).map_err(|e| {
            let refused =
                matches!(&e, ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused);
            FlagsFailure {
                error: map_error(e),
                refused,
            }
        })
    }

    /// Reads status, `Retry-After`, `ETag` and the body (up to the cap) of a response.
    fn read_response(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response, ureq::Error> {
        let mut resp = result?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let status = resp.status().as_u16();
        let retry_after = header("retry-after").and_then(parse_retry_after);
        let etag = header("etag").map(str::to_owned);
        let body = resp
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()?;
        Ok(Response {
            status,
            retry_after,
            etag,
            body,
        })
    }
}

/// A `/flags` attempt that got no response.
#[derive(Clone, Copy, Debug)]
struct FlagsFailure {
    error: TransportError,
    /// The connection was refused (not retried).
    refused: bool,
}

fn with_headers<B>(mut b: ureq::RequestBuilder<B>, req: &OwnedTransmit) -> ureq::RequestBuilder<B> {
    for (name, value) in req.headers() {
        b = b.header(name, value);
    }
    b
}

fn gzip(body: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// Maps a `ureq` error to the core's vocabulary, dropping its text (it may hold the URL).
fn map_error(e: ureq::Error) -> TransportError {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => TransportError::Timeout,
        E::HostNotFound | E::ConnectionFailed => TransportError::Connect,
        E::Io(io) => map_io(&io),
        E::Tls(_) | E::Rustls(_) | E::Pem(_) => TransportError::Tls,
        E::BodyExceedsLimit(_) | E::Protocol(_) | E::TooManyRedirects | E::RedirectFailed => {
            TransportError::BadResponse
        }
        E::BadUri(_) | E::Http(_) | E::InvalidProxyUrl => TransportError::Connect,
        _ => TransportError::Io,
    }
}

fn map_io(e: &io::Error) -> TransportError {
    // rustls reports handshake failures (bad certificate, unknown issuer, alerts) as an
    // `io::Error` wrapping a `rustls::Error`; recognise that type through ureq's own variant.
    if wraps(ureq::Error::Rustls, e) {
        return TransportError::Tls;
    }
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportError::Timeout,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => TransportError::Connect,
        io::ErrorKind::InvalidData => TransportError::BadResponse,
        _ => TransportError::Io,
    }
}

/// Whether `e` wraps a `T`, the payload type of the ureq error variant `_variant` (this names a
/// type of a crate we do not depend on directly).
fn wraps<T: core::error::Error + 'static>(_variant: fn(T) -> ureq::Error, e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<T>())
}

// ---------------------------------------------------------------------------------------------
// The threaded client
// ---------------------------------------------------------------------------------------------

/// What [`StdClient::flush`] and [`StdClient::shutdown`] achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushResult {
    /// Events delivered while the call waited.
    pub sent: u32,
    /// Events still queued when it returned (0: drained).
    pub pending: usize,
}

/// A flag's value, owned (see [`FlagValue`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StdFlagValue {
    /// A boolean flag's value (or `false` for any flag that did not match).
    Bool(bool),
    /// The variant of a multivariate flag.
    Variant(String),
    /// The user is in holdout `id`.
    Holdout(i64),
}

impl StdFlagValue {
    /// Whether the flag is on (anything but `false`).
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        !matches!(self, Self::Bool(false))
    }
}

impl From<FlagValue<'_>> for StdFlagValue {
    fn from(v: FlagValue<'_>) -> Self {
        match v {
            FlagValue::Bool(b) => Self::Bool(b),
            FlagValue::Variant(s) => Self::Variant(s.to_owned()),
            FlagValue::Holdout(id) => Self::Holdout(id),
        }
    }
}

/// Options of one flag read ([`StdClient::get_feature_flag`] and friends).
///
/// ```
/// use posthog_embedded::adapters::std::FlagOptions;
/// let opts = FlagOptions::new().send_event(false);
/// assert!(!opts.send_event && !opts.only_local && !opts.force_remote);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlagOptions {
    /// Never ask the server: a flag local evaluation cannot decide is `None`. Default false.
    pub only_local: bool,
    /// Queue a `$feature_flag_called` event for the read (de-duplicated). Default true.
    pub send_event: bool,
    /// Skip local evaluation and ask the server (wins over [`only_local`](Self::only_local)).
    /// Default false.
    pub force_remote: bool,
    /// Override the client's GeoIP setting for the `/flags` request. Default `None`.
    pub disable_geoip: Option<bool>,
}

impl Default for FlagOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl FlagOptions {
    /// The defaults: local first, remote fallback, with the `$feature_flag_called` event.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            only_local: false,
            send_event: true,
            force_remote: false,
            disable_geoip: None,
        }
    }

    /// Sets [`only_local`](Self::only_local).
    #[must_use]
    pub const fn only_local(mut self, v: bool) -> Self {
        self.only_local = v;
        self
    }

    /// Sets [`send_event`](Self::send_event).
    #[must_use]
    pub const fn send_event(mut self, v: bool) -> Self {
        self.send_event = v;
        self
    }

    /// Sets [`force_remote`](Self::force_remote).
    #[must_use]
    pub const fn force_remote(mut self, v: bool) -> Self {
        self.force_remote = v;
        self
    }

    /// Sets [`disable_geoip`](Self::disable_geoip).
    #[must_use]
    pub const fn disable_geoip(mut self, v: bool) -> Self {
        self.disable_geoip = Some(v);
        self
    }
}

/// What an observed request was for (see [`RequestRecord`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKind {
    /// A `/batch/` of events: the records it carried.
    Batch {
        /// The events' sequence numbers (`records.len()` events).
        records: SeqRange,
    },
    /// A flag definitions poll.
    Definitions,
    /// A remote flag evaluation (`POST /flags/?v=2`).
    Flags,
}

/// One HTTP attempt of a [`StdClient`], as told to the observer installed with
/// [`StdClient::on_request`]: every batch, definitions poll and `/flags` attempt, retries
/// included, once its outcome is known.
///
/// The body carries the project API key (batches and `/flags` requests): do not log it. The
/// `Debug` output shows only its length.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RequestRecord<'a> {
    /// What the request was for.
    pub kind: RecordKind,
    /// The request body as built (JSON, before any gzip); empty for `GET`.
    pub body: &'a [u8],
    /// 0 for the first attempt; then 1, 2, ... for each resend after a failure. A batch counts
    /// as resent when it starts with the same event as the failed one (the core may add newer
    /// events to a retried batch); a `/flags` request counts its retries; a definitions poll is
    /// always 0.
    pub attempt: u32,
    /// The HTTP status, or why no response arrived.
    pub result: Result<u16, TransportError>,
    /// Wall-clock time the request was started.
    pub started: std::time::SystemTime,
    /// How long it took until the whole response was read (or the failure).
    pub elapsed: StdDuration,
}

impl fmt::Debug for RequestRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRecord")
            .field("kind", &self.kind)
            .field("body_len", &self.body.len())
            .field("attempt", &self.attempt)
            .field("result", &self.result)
            .field("started", &self.started)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

/// The observer [`StdClient::on_request`] installs.
pub type RequestObserver = dyn Fn(&RequestRecord<'_>) + Send + Sync;

struct State {
    core: Box<StdCore>,
    /// The worker must stop at its next iteration.
    exit: bool,
    /// The worker has stopped (set by a drop guard, so also on panic).
    exited: bool,
    /// The worker is sending a request (the lock is released meanwhile).
    in_request: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The worker waits here; notified by every call that may make work due.
    wake: Condvar,
    /// Flush and shutdown wait here; notified after every settled request and on exit.
    progress: Condvar,
    /// Told about every request (see [`StdClient::on_request`]).
    observer: Mutex<Option<Arc<RequestObserver>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the observer, if any, without holding any lock of the client.
    fn observe(&self, record: &RequestRecord<'_>) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(f) = observer {
            f(record);
        }
    }
}

/// Shortest idle wait when the core says work is due but produced none (a request that cannot
/// be built): keeps the worker from spinning.
const MIN_IDLE_WAIT: StdDuration = StdDuration::from_millis(20);

/// A ready-to-use PostHog client for hosts: the core [`Client`] driven by a background thread
/// over [`UreqTransport`]. `Sync`: share it with `Arc`.
///
/// ```no_run
/// use posthog_embedded::adapters::std::{StdClient, StdConfig};
/// use std::time::Duration;
///
/// let client = StdClient::new(StdConfig::new("phc_project_token", 0x5eed))?;
/// client.capture("door opened", "device-42", |p| {
///     p.prop("door", "front")?.prop("battery", 87u32)?;
///     Ok(())
/// })?;
/// let r = client.flush(Duration::from_secs(5));
/// println!("sent {}, pending {}", r.sent, r.pending);
/// client.shutdown(Duration::from_secs(5));
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
pub struct StdClient {
    shared: Arc<Shared>,
    clock: StdClock,
    worker: Mutex<Option<JoinHandle<()>>>,
    drop_timeout: StdDuration,
    /// Shared with the worker; `/flags` requests are sent from the caller's thread.
    transport: Arc<UreqTransport>,
    /// The last parsed `/flags` answer, reused by every remote read (locked only to parse and
    /// report, never across a request).
    remote: Mutex<Box<StdRemoteFlags>>,
    flags_timeout: StdDuration,
    flags_max_retries: u8,
}

impl fmt::Debug for StdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.shared.lock();
        f.debug_struct("StdClient")
            .field("core", &g.core)
            .field("exited", &g.exited)
            .finish_non_exhaustive()
    }
}

impl StdClient {
    /// Validates `config`, builds the core client and starts the background thread.
    ///
    /// The core is about 3 MiB. Built on the caller's stack it could overflow it (debug builds
    /// construct before boxing), so it is built on a short-lived thread with a stack large
    /// enough, and only the `Box` comes back.
    ///
    /// # Errors
    /// [`StdError`]: invalid settings or host, or a thread that could not be started.
    pub fn new(config: StdConfig) -> Result<Self, StdError> {
        // Checked before anything is interned or started.
        config.validate()?;
        let transport = UreqTransport::new(&config)?;
        let core_config = config.core_config();
        // Unoptimised builds may hold several temporaries of each value in one frame.
        let stack = (size_of::<StdCore>() + size_of::<StdRemoteFlags>())
            .saturating_mul(4)
            .saturating_add(1 << 20);
        let (core, remote) = std::thread::Builder::new()
            .name("posthog-init".into())
            .stack_size(stack)
            .spawn(move || {
                (
                    Box::new(StdCore::new(core_config)),
                    Box::new(StdRemoteFlags::new()),
                )
            })
            .map_err(|_| StdError::Spawn)?
            .join()
            .map_err(|_| StdError::Spawn)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core,
                exit: false,
                exited: false,
                in_request: false,
            }),
            wake: Condvar::new(),
            progress: Condvar::new(),
            observer: Mutex::new(None),
        });
        let clock = StdClock::new();
        let transport = Arc::new(transport);
        let (worker_shared, worker_transport) = (Arc::clone(&shared), Arc::clone(&transport));
        let worker = std::thread::Builder::new()
            .name("posthog".into())
            .spawn(move || run(&worker_shared, &worker_transport, clock))
            .map_err(|_| StdError::Spawn)?;
        Ok(Self {
            shared,
            clock,
            worker: Mutex::new(Some(worker)),
            drop_timeout: config.drop_timeout,
            transport,
            remote: Mutex::new(remote),
            flags_timeout: config.flags_request_timeout,
            flags_max_retries: config.flags_max_retries,
        })
    }

    /// Installs (or with `None` removes) an observer told about every HTTP attempt: batches
    /// (retries included), definitions polls and `/flags` requests (see [`RequestRecord`]).
    ///
    /// It runs on the thread that made the request (the background thread, or the caller of a
    /// remote flag read), after the response was read and before the core settles it, with no
    /// lock of the client held: it may call this client, but should return quickly, since the
    /// next request waits for it. A flush that returns has seen the observer called for every
    /// batch it waited for.
    ///
    /// ```no_run
    /// use posthog_embedded::adapters::std::{RecordKind, StdClient, StdConfig};
    ///
    /// let client = StdClient::new(StdConfig::new("phc_project_token", 0x5eed))?;
    /// client.on_request(Some(Box::new(|r| {
    ///     if let RecordKind::Batch { records } = r.kind {
    ///         println!("{} events, attempt {}: {:?}", records.len(), r.attempt, r.result);
    ///     }
    /// })));
    /// # Ok::<(), posthog_embedded::adapters::std::StdError>(())
    /// ```
    pub fn on_request(&self, observer: Option<Box<RequestObserver>>) {
        *self
            .shared
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = observer.map(Arc::from);
    }

    /// Runs `f` on the core with a fresh clock reading, then wakes the worker.
    fn produce<R>(&self, f: impl FnOnce(&mut StdCore, Now) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.core, self.clock.read());
        drop(g);
        self.shared.wake.notify_one();
        r
    }

    /// Queues a custom event; `props` writes its properties (`|p| { p.prop("k", 1)?; Ok(()) }`,
    /// or `|_| Ok(())` for none). Returns its uuid. Never waits for the network.
    ///
    /// # Errors
    /// [`CaptureError`] (see [`Client::capture`]); after [`shutdown`](Self::shutdown),
    /// [`CaptureError::Disabled`].
    pub fn capture<P>(&self, event: &str, distinct_id: &str, props: P) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.capture_with(event, distinct_id, &EventOptions::new(), props)
    }

    /// [`capture`](Self::capture) with [`EventOptions`] (groups, timestamp, uuid, GeoIP).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_with<P>(
        &self,
        event: &str,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| c.capture(now, event, distinct_id, opts, props))
    }

    /// Queues `$identify`; `person` sets `$set` / `$set_once` properties.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn identify<P>(&self, distinct_id: &str, person: P) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| c.identify(now, distinct_id, &EventOptions::new(), person))
    }

    /// Queues `$create_alias` linking `alias` to `previous_id`.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn alias(&self, previous_id: &str, alias: &str) -> Result<Uuid, CaptureError> {
        self.produce(|c, now| c.alias(now, previous_id, alias, &EventOptions::new()))
    }

    /// Queues `$groupidentify` for group `group_type`/`group_key` with its properties.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn group_identify<P>(
        &self,
        group_type: &str,
        group_key: &str,
        distinct_id: Option<&str>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| {
            c.group_identify(
                now,
                group_type,
                group_key,
                distinct_id,
                &EventOptions::new(),
                props,
            )
        })
    }

    /// Queues a `$set` event; `Ok(None)` when `person` set nothing.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn set<P>(&self, distinct_id: &str, person: P) -> Result<Option<Uuid>, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| c.set(now, distinct_id, &EventOptions::new(), person))
    }

    /// Waits on the worker's progress until `done` holds, the worker stopped, or `deadline`.
    fn wait_until<'g>(
        &'g self,
        mut g: MutexGuard<'g, State>,
        deadline: std::time::Instant,
        mut done: impl FnMut(&State) -> bool,
    ) -> MutexGuard<'g, State> {
        loop {
            let now = std::time::Instant::now();
            if done(&g) || g.exit || g.exited || now >= deadline {
                return g;
            }
            g = self
                .shared
                .progress
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until nothing is pending, the worker stopped, or `deadline`.
    fn wait_drained<'g>(
        &'g self,
        g: MutexGuard<'g, State>,
        deadline: std::time::Instant,
    ) -> MutexGuard<'g, State> {
        self.wait_until(g, deadline, |s| s.core.pending() == 0)
    }

    /// Queues an event with `produce` (any producer of the core: `capture`, `identify`, ...),
    /// sends it now and blocks until it is delivered or dropped, or `timeout` passes, like
    /// posthog-node's `*Immediate` methods. Returns the event's [`Fate`]: `Delivered`,
    /// `Dropped`, or `Queued` when the timeout passed first (it stays queued and is retried).
    ///
    /// ```no_run
    /// # use posthog_embedded::adapters::std::{StdClient, StdConfig};
    /// # use posthog_embedded::capture::EventOptions;
    /// # use std::time::Duration;
    /// let client = StdClient::new(StdConfig::new("phc_token", 0x5eed))?;
    /// let fate = client.immediate(Duration::from_secs(10), |c, now| {
    ///     c.capture(now, "door opened", "device-7", &EventOptions::new(), |_| Ok(()))
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The producer's [`CaptureError`]: nothing was queued or sent.
    pub fn immediate<R>(
        &self,
        timeout: StdDuration,
        produce: impl FnOnce(&mut StdCore, Now) -> Result<R, CaptureError>,
    ) -> Result<Fate, CaptureError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.lock();
        produce(&mut g.core, self.clock.read())?;
        let Some(seq) = g.core.last_seq() else {
            return Ok(Fate::Unknown);
        };
        g.core.flush();
        self.shared.wake.notify_one();
        let g = self.wait_until(g, deadline, |s| s.core.fate(seq) != Fate::Queued);
        Ok(g.core.fate(seq))
    }

    /// [`capture`](Self::capture), sent at once: blocks until the event is delivered, dropped,
    /// or `timeout` passes (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_immediate<P>(
        &self,
        event: &str,
        distinct_id: &str,
        props: P,
        timeout: StdDuration,
    ) -> Result<Fate, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.immediate(timeout, |c, now| {
            c.capture(now, event, distinct_id, &EventOptions::new(), props)
        })
    }

    /// [`identify`](Self::identify), sent at once (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`identify`](Self::identify).
    pub fn identify_immediate<P>(
        &self,
        distinct_id: &str,
        person: P,
        timeout: StdDuration,
    ) -> Result<Fate, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.immediate(timeout, |c, now| {
            c.identify(now, distinct_id, &EventOptions::new(), person)
        })
    }

    /// [`alias`](Self::alias), sent at once (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`alias`](Self::alias).
    pub fn alias_immediate(
        &self,
        previous_id: &str,
        alias: &str,
        timeout: StdDuration,
    ) -> Result<Fate, CaptureError> {
        self.immediate(timeout, |c, now| {
            c.alias(now, previous_id, alias, &EventOptions::new())
        })
    }

    /// Tells the client whether the network is up (see [`Client::set_online`]): while it is
    /// down the background thread sends nothing; when it comes back, queued events go out at
    /// once instead of waiting out the back-off.
    pub fn set_online(&self, online: bool) {
        self.produce(|c, _| c.set_online(online));
    }

    /// Sends every queued event, ignoring `flush_at` and the interval, and blocks until the
    /// queue is empty or `timeout` passes. The core's back-off still applies: after a 503 the
    /// events stay queued and are retried later, and this returns when `timeout` passes with
    /// them counted in [`FlushResult::pending`]. Never fails; an empty queue returns at once.
    pub fn flush(&self, timeout: StdDuration) -> FlushResult {
        let deadline = std::time::Instant::now() + timeout;
        let mut g = self.shared.lock();
        let sent = g.core.stats().sent;
        g.core.flush();
        self.shared.wake.notify_one();
        let g = self.wait_drained(g, deadline);
        FlushResult {
            sent: g.core.stats().sent.saturating_sub(sent),
            pending: g.core.pending(),
        }
    }

    /// Ends the client: refuses further captures, stops definitions polling, flushes what is
    /// queued until `timeout`, then stops and joins the background thread. Events not delivered
    /// stay queued (counted in [`FlushResult::pending`], with a warning). If a request is still
    /// in flight at the deadline the thread is detached instead of joined; it exits when that
    /// request ends (bounded by [`StdConfig::request_timeout`]). Idempotent: later calls return
    /// at once.
    pub fn shutdown(&self, timeout: StdDuration) -> FlushResult {
        let deadline = std::time::Instant::now() + timeout;
        // Held throughout: concurrent shutdowns are serialised.
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        let mut g = self.shared.lock();
        let sent = g.core.stats().sent;
        let Some(handle) = worker.take() else {
            return FlushResult {
                sent: 0,
                pending: g.core.pending(),
            };
        };
        g.core.shutdown();
        self.shared.wake.notify_one();
        g = self.wait_drained(g, deadline);
        g.exit = true;
        self.shared.wake.notify_one();
        let mut detach = false;
        while !g.exited {
            let now = std::time::Instant::now();
            if g.in_request && now >= deadline {
                detach = true;
                break;
            }
            // An idle worker exits as soon as it wakes; a busy one after its request.
            let wait = if g.in_request {
                deadline - now
            } else {
                MIN_IDLE_WAIT
            };
            g = self
                .shared
                .progress
                .wait_timeout(g, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let result = FlushResult {
            sent: g.core.stats().sent.saturating_sub(sent),
            pending: g.core.pending(),
        };
        drop(g);
        if detach {
            ph_warn!("shutdown deadline passed with a request in flight: worker detached");
            drop(handle);
        } else {
            let _ = handle.join();
        }
        if result.pending > 0 {
            ph_warn!(
                "shutdown deadline passed: {} events not delivered",
                result.pending
            );
        }
        result
    }

    /// The core's counters (with [`ClientStats::last_error`] for diagnostics).
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.shared.lock().core.stats()
    }

    /// Events waiting to be delivered.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.shared.lock().core.pending()
    }

    /// Loads flag definitions from bytes (a snapshot, or a gateway's copy). On error the
    /// definitions in use are kept.
    ///
    /// # Errors
    /// [`LoadError`].
    pub fn load_definitions(&self, doc: &[u8]) -> Result<Requirements, LoadError> {
        self.shared.lock().core.load_definitions(doc)
    }

    /// Polls the definitions now (when a secret key is configured), ignoring the interval.
    pub fn reload(&self) {
        self.produce(|c, _| c.reload());
    }

    /// Whether flag definitions are loaded.
    #[must_use]
    pub fn is_local_evaluation_ready(&self) -> bool {
        self.shared.lock().core.is_local_evaluation_ready()
    }

    /// Evaluates flag `key` locally for `ctx`, with the system wall clock for date filters.
    ///
    /// # Errors
    /// [`Inconclusive`] when the local definitions cannot decide (unknown flag included).
    pub fn evaluate(&self, key: &str, ctx: &EvalContext<'_>) -> Result<StdFlagValue, Inconclusive> {
        let wall = self.clock.wall();
        self.with_flags(|store| store.evaluate(key, ctx, wall).map(StdFlagValue::from))
    }

    /// Runs `f` with the flag store, under the client's lock: keep it short, and do not call
    /// this client from inside `f` (it would deadlock).
    pub fn with_flags<R>(&self, f: impl FnOnce(&StdFlagStore) -> R) -> R {
        f(self.shared.lock().core.flags())
    }

    /// Runs `f` with the core client itself (filters, callbacks, opt-out, ...) under the
    /// client's lock, then wakes the worker. Same caveats as [`with_flags`](Self::with_flags).
    pub fn with_client<R>(&self, f: impl FnOnce(&mut StdCore) -> R) -> R {
        self.produce(|c, _| f(c))
    }

    // -----------------------------------------------------------------------------------------
    // Feature flags, local first with the remote fallback
    // -----------------------------------------------------------------------------------------

    /// The value of flag `key` for `ctx` (protocol §1.13, contracts §3.3):
    ///
    /// 1. local evaluation ([`Client::feature_flag`]); a value is final;
    /// 2. when it cannot decide (unknown flag, inconclusive, needs the server), `None` with
    ///    [`FlagOptions::only_local`]; otherwise one `POST /flags/?v=2` scoped to `key` (no
    ///    `Authorization`; [`StdConfig::flags_request_timeout`] per attempt; retried per
    ///    [`FlagsRetry`] up to [`StdConfig::flags_max_retries`]). A flag missing from the
    ///    answer, marked failed, or a failed request gives `None`.
    ///
    /// With [`FlagOptions::send_event`] a `$feature_flag_called` event is queued (once per
    /// distinct id, flag, value and groups), with `$feature_flag_error` when the server did not
    /// answer normally (`api_error_503`, `timeout`, `connection_error`, `unknown_error` for an
    /// unusable answer, `flag_missing`, ...). An empty or whitespace distinct id gives `None` at
    /// once, with no request and no event; after [`shutdown`](Self::shutdown) no request is
    /// sent (a local value is still returned); while offline ([`set_online`](Self::set_online))
    /// no request is sent and the read is reported with `connection_error`.
    ///
    /// Blocks the calling thread during the remote request (at most about
    /// `(flags_max_retries + 1) × flags_request_timeout` plus the retry delays), but never holds
    /// the client's lock meanwhile: captures and the background thread go on.
    #[must_use]
    pub fn get_feature_flag(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<StdFlagValue> {
        let allowed = self.shared.lock().core.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            return None;
        }
        if !opts.force_remote {
            let local = self.produce(|c, now| {
                c.feature_flag(now, key, ctx, opts.send_event)
                    .map(StdFlagValue::from)
            });
            match local {
                Ok(v) => return Some(v),
                Err(_) if opts.only_local => {
                    self.produce(|c, now| {
                        c.failed_flag_called(now, key, ctx, FlagErrors::new(), opts.send_event);
                    });
                    return None;
                }
                Err(_) => {}
            }
        }
        match allowed {
            Ok(()) => {}
            Err(RequestError::Offline) => {
                // No connection attempt while the network is down.
                let errors = FlagErrors::from(FlagErrorKind::ConnectionError);
                self.produce(|c, now| c.failed_flag_called(now, key, ctx, errors, opts.send_event));
                return None;
            }
            // Shut down: no request, no event.
            Err(_) => return None,
        }
        match self.remote_flags(ctx, Some(&[key]), opts.disable_geoip) {
            Ok(remote) => self.produce(|c, now| {
                c.remote_flag_called(now, key, ctx, &**remote, opts.send_event)
                    .map(StdFlagValue::from)
            }),
            Err(errors) => {
                self.produce(|c, now| c.failed_flag_called(now, key, ctx, errors, opts.send_event));
                None
            }
        }
    }

    /// Whether flag `key` is on for `ctx` (anything but `false`): `None` when it has no value.
    /// Same resolution and event as [`get_feature_flag`](Self::get_feature_flag).
    #[must_use]
    pub fn is_feature_enabled(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<bool> {
        self.get_feature_flag(key, ctx, opts)
            .map(|v| v.is_enabled())
    }

    /// The payload (JSON text, as stored) of the value flag `key` takes for `ctx`, resolved like
    /// [`get_feature_flag`](Self::get_feature_flag) but never sending an event
    /// ([`FlagOptions::send_event`] is ignored). `None`: no value, or the value has no payload.
    #[must_use]
    pub fn get_feature_flag_payload(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: FlagOptions,
    ) -> Option<String> {
        let allowed = self.shared.lock().core.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            return None;
        }
        if !opts.force_remote {
            let wall = self.clock.wall();
            let local = self.with_flags(|store| {
                store
                    .evaluate(key, ctx, wall)
                    .map(|v| store.payload(key, &v).map(str::to_owned))
            });
            match local {
                Ok(p) => return p,
                Err(_) if opts.only_local => return None,
                Err(_) => {}
            }
        }
        allowed.ok()?;
        let remote = self
            .remote_flags(ctx, Some(&[key]), opts.disable_geoip)
            .ok()?;
        let flag = remote.get(key).filter(|f| !f.failed)?;
        flag.payload.map(str::to_owned)
    }

    /// Every flag's value for `ctx`, without `$feature_flag_called` events (protocol §1.13,
    /// contracts §3.4):
    ///
    /// 1. every locally defined flag is evaluated;
    /// 2. when there are no local flags or any is inconclusive, and `only_local` is false, one
    ///    `/flags` request (for every flag) is made and, as posthog-python does, **its answer
    ///    replaces the local values**, except for the flags the server marked `failed`, which
    ///    keep their local value (or are left out when there is none). A quota-limited answer
    ///    gives an empty map. When the request fails, the local values are returned;
    /// 3. with `only_local`, inconclusive flags are left out.
    ///
    /// An empty or whitespace distinct id gives an empty map; after
    /// [`shutdown`](Self::shutdown) or while offline only local values are returned (no
    /// request).
    #[must_use]
    pub fn get_all_flags(
        &self,
        ctx: &EvalContext<'_>,
        only_local: bool,
    ) -> BTreeMap<String, StdFlagValue> {
        let allowed = self.shared.lock().core.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            return BTreeMap::new();
        }
        let wall = self.clock.wall();
        let (mut local, fallback) = self.with_flags(|store| {
            let mut values = BTreeMap::new();
            let mut inconclusive = false;
            for key in store.keys() {
                match store.evaluate(key, ctx, wall) {
                    Ok(v) => {
                        values.insert(key.to_owned(), StdFlagValue::from(v));
                    }
                    Err(_) => inconclusive = true,
                }
            }
            (values, inconclusive || store.is_empty())
        });
        if !fallback || only_local || allowed.is_err() {
            return local;
        }
        let Ok(remote) = self.remote_flags(ctx, None, None) else {
            return local;
        };
        let mut all = BTreeMap::new();
        for flag in remote.iter() {
            if flag.failed {
                if let Some(v) = local.remove(flag.key) {
                    all.insert(flag.key.to_owned(), v);
                }
            } else {
                all.insert(flag.key.to_owned(), StdFlagValue::from(flag.value));
            }
        }
        all
    }

    /// The `/flags` request body for `ctx` (and `keys`), built under the client's lock.
    fn flags_body(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        geoip: Option<bool>,
    ) -> Result<Vec<u8>, RequestError> {
        let g = self.shared.lock();
        let mut buf = std::vec![0u8; FLAGS_BODY_BYTES];
        let len = match g.core.flags_request_with(ctx, keys, geoip, &mut buf) {
            Err(RequestError::BufferTooSmall { needed, .. }) => {
                buf.resize(needed, 0);
                g.core.flags_request_with(ctx, keys, geoip, &mut buf)?
            }
            other => other?,
        };
        drop(g);
        buf.truncate(len);
        Ok(buf)
    }

    /// Asks the server (`POST /flags/?v=2`) with the retry policy and returns the parsed answer,
    /// or the `$feature_flag_error` of the failure. No lock is held during the request.
    fn remote_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        geoip: Option<bool>,
    ) -> Result<MutexGuard<'_, Box<StdRemoteFlags>>, FlagErrors> {
        let Ok(body) = self.flags_body(ctx, keys, geoip) else {
            // Not representable as JSON: not sent, not retried.
            return Err(FlagErrorKind::UnknownError.into());
        };
        let mut retry = FlagsRetry::new(self.flags_max_retries);
        let mut attempt_no = 0u32;
        let resp = loop {
            let started = std::time::SystemTime::now();
            let t0 = std::time::Instant::now();
            let result = self.transport.send_flags(&body, self.flags_timeout);
            self.shared.observe(&RequestRecord {
                kind: RecordKind::Flags,
                body: &body,
                attempt: attempt_no,
                result: result.as_ref().map(|r| r.status).map_err(|f| f.error),
                started,
                elapsed: t0.elapsed(),
            });
            let (attempt, error) = match result {
                Ok(resp) if (200..300).contains(&resp.status) => break resp,
                Ok(resp) => (
                    FlagsAttempt::Status(resp.status),
                    FlagErrorKind::ApiError(resp.status),
                ),
                Err(f) => (
                    if f.refused {
                        FlagsAttempt::Refused
                    } else {
                        FlagsAttempt::Transport
                    },
                    match f.error {
                        TransportError::Timeout => FlagErrorKind::Timeout,
                        TransportError::BadResponse => FlagErrorKind::UnknownError,
                        _ => FlagErrorKind::ConnectionError,
                    },
                ),
            };
            match retry.next_delay(attempt) {
                Some(delay) => {
                    ph_debug!(
                        "/flags attempt failed: retrying in {} ms",
                        delay.as_millis()
                    );
                    std::thread::sleep(to_std(delay));
                    attempt_no += 1;
                }
                None => {
                    ph_warn!("/flags request failed: {}", FlagErrors::from(error));
                    return Err(error.into());
                }
            }
        };
        let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        match remote.parse(&resp.body) {
            Ok(()) => Ok(remote),
            Err(e) => {
                ph_warn!("/flags answer unusable: {}", e);
                Err(FlagErrorKind::UnknownError.into())
            }
        }
    }
}

impl Drop for StdClient {
    /// A best-effort shutdown bounded by [`StdConfig::drop_timeout`] (nothing if
    /// [`shutdown`](StdClient::shutdown) already ran).
    fn drop(&mut self) {
        let _ = self.shutdown(self.drop_timeout);
    }
}

/// Marks the worker stopped when it returns or unwinds, and wakes the waiters.
struct ExitGuard<'s>(&'s Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.exited = true;
        g.in_request = false;
        drop(g);
        self.0.progress.notify_all();
    }
}

/// The background thread.
fn run(shared: &Shared, transport: &UreqTransport, clock: StdClock) {
    let _guard = ExitGuard(shared);
    let mut buf = std::vec![0u8; BODY_BYTES];
    // The first event of the last batch that failed, and how many attempts it has had.
    let mut failed_batch: Option<(u64, u32)> = None;
    let mut g = shared.lock();
    loop {
        if g.exit {
            return;
        }
        let now = clock.read();
        let req = g
            .core
            .poll_transmit(now, &mut buf)
            .map(|tx| OwnedTransmit::from_transmit(&tx));
        if let Some(req) = req {
            g.in_request = true;
            drop(g);
            let (kind, attempt) = match req.kind {
                RequestKind::Batch { records } => (
                    RecordKind::Batch { records },
                    match failed_batch {
                        Some((start, n)) if start == records.start => n,
                        _ => 0,
                    },
                ),
                RequestKind::Definitions => (RecordKind::Definitions, 0),
                RequestKind::Flags => (RecordKind::Flags, 0),
            };
            let started = std::time::SystemTime::now();
            let t0 = std::time::Instant::now();
            let result = transport.send(&req);
            shared.observe(&RequestRecord {
                kind,
                body: &req.body,
                attempt,
                result: result.as_ref().map(|r| r.status).map_err(|e| *e),
                started,
                elapsed: t0.elapsed(),
            });
            if let RecordKind::Batch { records } = kind {
                let delivered = matches!(&result, Ok(r) if (200..300).contains(&r.status));
                failed_batch = (!delivered).then_some((records.start, attempt.saturating_add(1)));
            }
            drop(req);
            g = shared.lock();
            g.in_request = false;
            let now = clock.read();
            match &result {
                Ok(resp) => g.core.handle_response(now, &resp.info(), &resp.body),
                Err(e) => g.core.handle_transport_error(now, *e),
            }
            shared.progress.notify_all();
            continue;
        }
        g = match g.core.poll_timeout() {
            Some(at) => {
                let wait = to_std(at - now.mono).max(if at <= now.mono {
                    MIN_IDLE_WAIT
                } else {
                    StdDuration::ZERO
                });
                shared
                    .wake
                    .wait_timeout(g, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => shared.wake.wait(g).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_clock_reads_both_clocks() {
        let c = StdClock::new();
        let a = c.now();
        let now = c.read();
        assert!(now.mono >= a);
        // Any machine running this test is past 2020.
        assert!(now.wall.unwrap().as_millis() > 1_577_836_800_000);
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(normalize_host("").unwrap(), DEFAULT_HOST);
        assert_eq!(
            normalize_host("https://app.posthog.com/").unwrap(),
            "https://us.i.posthog.com"
        );
        assert_eq!(
            normalize_host("https://us.posthog.com").unwrap(),
            "https://us.i.posthog.com"
        );
        assert_eq!(
            normalize_host("https://eu.posthog.com/").unwrap(),
            "https://eu.i.posthog.com"
        );
        assert_eq!(
            normalize_host(" https://ph.example.com:8443/ ").unwrap(),
            "https://ph.example.com:8443"
        );
        assert_eq!(
            normalize_host("http://127.0.0.1:9000").unwrap(),
            "http://127.0.0.1:9000"
        );
        for bad in [
            "ftp://x.example",
            "us.i.posthog.com",
            "https://x.example/ingest",
            "https://x.example//",
            "https://x.example?q=1",
            "https://",
        ] {
            assert_eq!(normalize_host(bad), Err(StdError::InvalidHost), "{bad}");
        }
    }

    #[test]
    fn retry_after_parses_both_forms() {
        assert_eq!(
            parse_retry_after(" 7 "),
            Some(RetryAfter::Delay(Duration::from_secs(7)))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(RetryAfter::Delay(Duration::from_secs(u64::MAX)))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RetryAfter::At(UnixMillis::from_secs(784_111_777)))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = StdConfig::new("phc_public_token", 0x5eed).secret_key("phx_very_secret");
        let s = format!("{c:?}");
        assert!(
            !s.contains("phc_public_token") && !s.contains("phx_very_secret"),
            "{s}"
        );
        // A small core: the test thread's stack is too small for a `StdCore`.
        let mut core = Client::<'static, 1024, 4, 16, 256>::new(c.core_config());
        let mut buf = [0u8; 64];
        let tx = core
            .poll_transmit(Now::mono(Instant::ZERO), &mut buf)
            .unwrap();
        let owned = OwnedTransmit::from_transmit(&tx);
        assert!(owned
            .headers()
            .any(|(n, v)| n == "Authorization" && v == "Bearer phx_very_secret"));
        let s = format!("{owned:?}");
        assert!(
            !s.contains("phx_very_secret") && !s.contains("phc_public_token"),
            "{s}"
        );
    }

    #[test]
    fn keys_are_interned_once() {
        let a = intern("phc_interned");
        let b = intern(&String::from("phc_interned"));
        assert!(core::ptr::eq(a, b));
    }
}
