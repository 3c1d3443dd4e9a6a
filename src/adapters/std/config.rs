//! Settings of the std driver: [`StdConfig`] and its validation, [`StdError`],
//! [`normalize_host`], [`os_seed`], and the sizes and types of the core it drives
//! ([`StdCore`], [`StdFlagStore`], [`StdRemoteFlags`]).

use core::fmt;
use core::hash::{BuildHasher, Hasher};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration as StdDuration;
use std::borrow::ToOwned;

use std::string::String;

use std::vec::Vec;

use crate::capture::{EncoderConfig, OverflowPolicy};
use crate::client::{Client, Config, ConfigError, GiveUp, Setting};
use crate::flags::remote::{RemoteFlags, RemoteRequirements};
use crate::flags::{FlagTables, Requirements};
use crate::resources::Capacities;
use crate::time::Duration;

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
/// Size of the worker's request-body buffer with the default capacities: the whole queue plus
/// room for the envelope, so any queued event fits in a request.
pub const BODY_BYTES: usize = QUEUE_BYTES + 4096;

/// Capacities of the core a [`StdClient`](super::StdClient) drives, by default
/// ([`StdConfig::capacities`]): 1 MiB of queue; 512 flags, 16 384 nodes and 1 MiB of text in
/// the flag store; 4096 `$feature_flag_called` de-duplication entries. About 3 MiB, allocated on
/// the heap directly.
pub const STD_CAPACITIES: Capacities = Capacities {
    queue: QUEUE_BYTES,
    flags: Requirements {
        flags: MAX_FLAGS,
        nodes: MAX_NODES,
        bytes: FLAG_TEXT_BYTES,
    },
    called: 4096,
};

/// The core client [`StdClient`](super::StdClient) drives: its storage is on the heap
/// ([`Client::with_capacity`]).
pub type StdCore = Client<'static>;

/// A flag store on the heap, sized at run time ([`FlagTables::with_capacity`]); with
/// [`STD_CAPACITIES`]`.flags` it is the store of [`StdCore`].
pub type StdFlagStore = FlagTables<'static>;

/// Flags a `/flags` answer may hold in a [`StdClient`](super::StdClient) ([`StdRemoteFlags`]).
pub const MAX_REMOTE_FLAGS: usize = 4096;
/// Bytes of text (keys, variants, payloads, reasons) a `/flags` answer may hold in a
/// [`StdClient`](super::StdClient) (1 MiB).
pub const REMOTE_TEXT_BYTES: usize = 1 << 20;

/// The parsed `/flags` answer of a [`StdClient`](super::StdClient): 4096 flags and 1 MiB of
/// text ([`STD_REMOTE_CAPACITY`]), about 1.3 MiB, allocated on the heap once per client.
pub type StdRemoteFlags = RemoteFlags<'static>;

/// The capacities of a [`StdClient`](super::StdClient)'s `/flags` answer.
pub const STD_REMOTE_CAPACITY: RemoteRequirements = RemoteRequirements {
    flags: MAX_REMOTE_FLAGS,
    bytes: REMOTE_TEXT_BYTES,
};

/// Settings of a [`StdClient`](super::StdClient) (and of a
/// [`UreqTransport`](super::UreqTransport)). Start from [`StdConfig::new`]; the client knobs
/// default to the core's [`Config::new`] values.
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
    /// The default distinct id, used by calls given
    /// [`Id::Default`](crate::client::Id::Default) (see [`Config::distinct_id`]). Default none.
    pub distinct_id: Option<String>,
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
    /// The core's storage (queue, flag store, de-duplication), allocated on the heap when the
    /// client starts. Default [`STD_CAPACITIES`]. The request-body buffer is the queue's size
    /// plus 4 KiB, so any queued event fits in a request.
    pub capacities: Capacities,
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
    /// [`TransportError::BadResponse`](crate::client::TransportError::BadResponse). Default
    /// 4 MiB.
    pub max_response_bytes: usize,
    /// Honour `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` from the environment. Default true.
    pub proxy_from_env: bool,
    /// Seed for uuids and jitter: [`os_seed`] unless you need reproducible uuids (see
    /// [`Config::new`]).
    pub seed: u64,
    /// How long dropping a [`StdClient`](super::StdClient) that was not shut down may spend
    /// flushing (real time, whatever the client's clock). Default 1 s.
    pub drop_timeout: StdDuration,
    /// Timeout of one remote flag evaluation attempt (`POST /flags/?v=2`). Default 3 s, as in
    /// posthog-python, posthog-node and posthog-go.
    pub flags_request_timeout: StdDuration,
    /// Retries of a failed `/flags` request (only transport failures other than a refused
    /// connection, 502 and 504 are retried; see [`FlagsRetry`](crate::client::FlagsRetry)).
    /// Default 1; values above 9 count as 9.
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
            .field("distinct_id", &self.distinct_id)
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

/// A core duration as a `std` one.
pub(super) fn to_std(d: Duration) -> StdDuration {
    StdDuration::from_millis(d.as_millis())
}

/// Whole milliseconds, rounded up: a non-zero duration never becomes zero.
pub(super) fn to_core(d: StdDuration) -> Duration {
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
            distinct_id: None,
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
            capacities: STD_CAPACITIES,
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

    /// Sets [`distinct_id`](Self::distinct_id).
    #[must_use]
    pub fn distinct_id(mut self, id: impl Into<String>) -> Self {
        self.distinct_id = Some(id.into());
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

    /// Sets [`capacities`](Self::capacities).
    #[must_use]
    pub const fn capacities(mut self, c: Capacities) -> Self {
        self.capacities = c;
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
        if let Some(d) = &self.distinct_id {
            core = core.distinct_id(d);
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

    /// The core configuration.
    pub(super) fn core_config(&self) -> Config<'_> {
        let mut c = Config::new(&self.api_key, self.seed)
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
            c = c.secret_key(s);
        }
        if let Some(d) = &self.distinct_id {
            c = c.distinct_id(d);
        }
        c
    }
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

/// Why a [`StdClient`](super::StdClient) or [`UreqTransport`](super::UreqTransport) could not
/// be built. Never carries a key.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

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
    fn secrets_stay_out_of_the_config_debug() {
        let c = StdConfig::new("phc_public_token", 0x5eed).secret_key("phx_very_secret");
        let s = format!("{c:?}");
        assert!(
            !s.contains("phc_public_token") && !s.contains("phx_very_secret"),
            "{s}"
        );
    }

    #[test]
    fn durations_convert_in_whole_milliseconds_rounded_up() {
        assert_eq!(
            to_core(StdDuration::from_micros(1)),
            Duration::from_millis(1)
        );
        assert_eq!(
            to_core(StdDuration::from_millis(7)),
            Duration::from_millis(7)
        );
        assert_eq!(to_core(StdDuration::ZERO), Duration::ZERO);
        assert_eq!(
            to_std(Duration::from_millis(7)),
            StdDuration::from_millis(7)
        );
    }
}
