//! The client's settings: [`Config`], its builder methods and its compile-time check
//! ([`Config::validate`], typed [`ConfigError`]s that name the setting and never carry a key).

use core::fmt;

use crate::capture::{EncoderConfig, OverflowPolicy};
use crate::net::MAX_PATH;
use crate::time::Duration;

/// Longest API key or secret key accepted (PostHog's keys are about 50 characters).
pub const MAX_KEY_LEN: usize = crate::net::MAX_BEARER;

/// When the client stops retrying a batch that keeps failing with a retryable error (no
/// response, 408, 429, 5xx). The default, [`GiveUp::Never`], keeps events queued for as long as
/// an outage lasts: only a 2xx, a terminal answer or the queue's overflow policy removes them.
/// The other policies trade data for fresher queues; events they drop are counted in
/// [`QueueStats::discarded_gave_up`](crate::capture::QueueStats::discarded_gave_up) and reported through the batch callback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GiveUp {
    /// Retry for as long as it takes (the default).
    #[default]
    Never,
    /// Drop a batch after this many failed attempts in a row (posthog-python, -node and -go
    /// make 4: the first and 3 retries). Counted for the batch at the head of the queue.
    AfterAttempts(u16),
    /// When a batch fails, drop those of its events captured at least this long ago.
    OlderThan(Duration),
}

/// A key borrowed from the caller: up to [`MAX_KEY_LEN`] bytes (checked by
/// [`Config::validate`]). On a device the key is usually a `&'static str` in flash, so it costs
/// the client no RAM. `const`: `Key::new("phc_…")` works in a `const` or `static`.
///
/// Its `Debug` output is redacted; `defmt` never sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key<'a>(&'a str);

impl<'a> Key<'a> {
    /// `key`, borrowed.
    #[must_use]
    pub const fn new(key: &'a str) -> Self {
        Self(key)
    }

    /// The key's bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.0.as_bytes()
    }

    /// The key.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The length of the key, in bytes.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Client settings. Everything but the API key and the seed has a default (see
/// [`Config::new`]). It borrows its keys and default `distinct_id` for `'a` (on a device,
/// `&'static str` constants in flash: no RAM), and can be built in a `const`.
///
/// Its `Debug` output redacts both keys.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Config<'a> {
    /// Project API key (`phc_…`). Sent in request bodies, never logged.
    pub api_key: Key<'a>,
    /// Secret key (`phx_…` / `phs_…`) for definitions polling; `None` turns polling off.
    /// Never logged.
    pub secret_key: Option<Key<'a>>,
    /// The `distinct_id` of events and flag reads that don't name one (the common
    /// one-device-one-id case); `None` (the default) makes such calls fail with a typed error.
    pub distinct_id: Option<DistinctId<'a>>,
    /// Send when this many events are queued. Default 20.
    pub flush_at: usize,
    /// Send when the oldest unsent event is this old. Default 10 s.
    pub flush_interval: Duration,
    /// At most this many events per request. Default 100.
    pub max_batch_events: usize,
    /// First back-off delay after a retryable failure; doubles with each failure in a row.
    /// Default 1 s.
    pub retry_base: Duration,
    /// Longest back-off delay. Default 5 min: an outage of hours costs a connection attempt
    /// every 3¾ to 5 minutes (12 to 16 an hour), and delivery resumes within 5 minutes of the
    /// link coming back ([`Client::set_online`](crate::client::Client::set_online) resumes it at once).
    pub retry_cap: Duration,
    /// Longest `Retry-After` honoured; a server asking for more is asked again after this
    /// long. Default 5 min, the same as [`retry_cap`](Self::retry_cap): a device's queue is
    /// small, and an hour of silence on one proxy's say-so would evict what it holds.
    pub retry_after_cap: Duration,
    /// When to stop retrying a failing batch. Default [`GiveUp::Never`].
    pub give_up: GiveUp,
    /// Definitions polling interval. Default 5 min (a device is not a server).
    pub poll_interval: Duration,
    /// What to do when the queue is full. Default drop oldest.
    pub overflow: OverflowPolicy,
    /// Event encoding settings (GeoIP, key length).
    pub encoder: EncoderConfig,
    /// Start opted out (restore the user's stored choice here). Default false.
    pub opted_out: bool,
    /// Seed of the uuid generator and the back-off jitter (see [`Config::new`]).
    pub seed: u64,
}

impl fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &"<redacted>")
            .field("secret_key", &self.secret_key.map(|_| "<redacted>"))
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
            .field("seed", &self.seed)
            .finish()
    }
}

impl<'a> Config<'a> {
    /// Defaults with `api_key` and `seed`.
    ///
    /// `seed` must differ per boot and per device: it draws the boot id that keeps event uuids
    /// unique across reboots (PostHog silently drops an event whose uuid it has seen). On a
    /// device, take 64 bits from the hardware RNG (`embassy_stm32::rng::Rng`,
    /// `esp_hal::rng::Rng`, the RP2040's ROSC, the nRF RNG peripheral), or, without one, hash
    /// the chip's unique id together with a boot counter kept in flash and incremented at every
    /// boot. On a host, [`adapters::std::os_seed`](crate::adapters) gives one from the OS.
    #[must_use]
    pub const fn new(api_key: &'a str, seed: u64) -> Self {
        Self {
            api_key: Key::new(api_key),
            secret_key: None,
            distinct_id: None,
            flush_at: 20,
            flush_interval: Duration::from_secs(10),
            max_batch_events: 100,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(300),
            retry_after_cap: Duration::from_secs(300),
            give_up: GiveUp::Never,
            poll_interval: Duration::from_secs(300),
            overflow: OverflowPolicy::DropOldest,
            encoder: EncoderConfig::DEFAULT,
            opted_out: false,
            seed,
        }
    }

    /// Sets [`secret_key`](Self::secret_key).
    #[must_use]
    pub const fn secret_key(mut self, key: &'a str) -> Self {
        self.secret_key = Some(Key::new(key));
        self
    }

    /// Sets [`distinct_id`](Self::distinct_id), the default `distinct_id`.
    #[must_use]
    pub const fn distinct_id(mut self, id: &'a str) -> Self {
        self.distinct_id = Some(DistinctId::new(id));
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
    pub const fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// Sets [`max_batch_events`](Self::max_batch_events).
    #[must_use]
    pub const fn max_batch_events(mut self, n: usize) -> Self {
        self.max_batch_events = n;
        self
    }

    /// Sets [`retry_base`](Self::retry_base) and [`retry_cap`](Self::retry_cap).
    #[must_use]
    pub const fn retry(mut self, base: Duration, cap: Duration) -> Self {
        self.retry_base = base;
        self.retry_cap = cap;
        self
    }

    /// Sets [`retry_after_cap`](Self::retry_after_cap).
    #[must_use]
    pub const fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// Sets [`give_up`](Self::give_up).
    #[must_use]
    pub const fn give_up(mut self, policy: GiveUp) -> Self {
        self.give_up = policy;
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval).
    #[must_use]
    pub const fn poll_interval(mut self, d: Duration) -> Self {
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

    /// Checks the settings; `const`, so a configuration can be checked at compile time (in a
    /// `const` block).
    ///
    /// # Errors
    /// [`ConfigError`]: a blank, over-long or malformed key, a project key (`phc_…`) given as
    /// the secret key, a zero size, interval or back-off, or a back-off cap below its base.
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = check_key(&self.api_key, KeyKind::Api) {
            return Err(e);
        }
        // The API key also goes, percent-encoded, into the definitions path.
        let encoded = encoded_len(self.api_key.as_bytes());
        if encoded + DEFINITIONS_PATH_OVERHEAD > MAX_PATH {
            return Err(ConfigError::KeyTooLong {
                key: KeyKind::Api,
                len: encoded,
                max: MAX_PATH - DEFINITIONS_PATH_OVERHEAD,
            });
        }
        if let Some(secret) = &self.secret_key {
            if let Err(e) = check_key(secret, KeyKind::Secret) {
                return Err(e);
            }
            if starts_with(secret.as_bytes(), b"phc_") {
                return Err(ConfigError::ProjectKeyAsSecretKey);
            }
        }
        if let Some(id) = &self.distinct_id {
            if let Err(e) = id.check() {
                return Err(e);
            }
        }
        let zero = if self.flush_at == 0 {
            Some(Setting::FlushAt)
        } else if self.max_batch_events == 0 {
            Some(Setting::MaxBatchEvents)
        } else if self.flush_interval.as_millis() == 0 {
            Some(Setting::FlushInterval)
        } else if self.poll_interval.as_millis() == 0 {
            Some(Setting::PollInterval)
        } else if self.retry_base.as_millis() == 0 {
            Some(Setting::RetryBase)
        } else if self.retry_after_cap.as_millis() == 0 {
            Some(Setting::RetryAfterCap)
        } else {
            match self.give_up {
                GiveUp::AfterAttempts(0) => Some(Setting::GiveUpAttempts),
                GiveUp::OlderThan(d) if d.as_millis() == 0 => Some(Setting::GiveUpAge),
                _ => None,
            }
        };
        if let Some(setting) = zero {
            return Err(ConfigError::Zero { setting });
        }
        if self.retry_cap.as_millis() < self.retry_base.as_millis() {
            return Err(ConfigError::RetryCapBelowBase {
                base_ms: self.retry_base.as_millis(),
                cap_ms: self.retry_cap.as_millis(),
            });
        }
        Ok(())
    }
}

/// Longest default `distinct_id` [`Config::validate`] accepts.
pub const MAX_DISTINCT_ID: usize = 64;

/// A default `distinct_id`, borrowed from the caller (see [`Config::distinct_id`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DistinctId<'a>(&'a str);

impl<'a> DistinctId<'a> {
    /// `id`, borrowed (checked by [`Config::validate`]: not blank, at most
    /// [`MAX_DISTINCT_ID`] bytes).
    #[must_use]
    pub const fn new(id: &'a str) -> Self {
        Self(id)
    }

    /// The id.
    #[must_use]
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    const fn check(&self) -> Result<(), ConfigError> {
        if self.0.len() > MAX_DISTINCT_ID || self.0.trim_ascii().is_empty() {
            Err(ConfigError::DistinctId { len: self.0.len() })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for DistinctId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DistinctId<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
    }
}

/// `/flags/definitions?token=` and `&send_cohorts` around the percent-encoded API key.
const DEFINITIONS_PATH_OVERHEAD: usize = "/flags/definitions?token=&send_cohorts".len();

const fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    let (mut s, mut p) = (s, prefix);
    loop {
        match (s.split_first(), p.split_first()) {
            (_, None) => return true,
            (Some((a, sr)), Some((b, pr))) if *a == *b => {
                s = sr;
                p = pr;
            }
            _ => return false,
        }
    }
}

/// Bytes of `s` percent-encoded as a query value (unreserved characters kept).
const fn encoded_len(s: &[u8]) -> usize {
    let mut b = s;
    let mut n = 0;
    while let Some((c, rest)) = b.split_first() {
        n += if c.is_ascii_alphanumeric() || matches!(*c, b'-' | b'_' | b'.' | b'~') {
            1
        } else {
            3
        };
        b = rest;
    }
    n
}

/// A key must be non-blank, at most [`MAX_KEY_LEN`] bytes of visible ASCII.
const fn check_key(key: &Key<'_>, kind: KeyKind) -> Result<(), ConfigError> {
    if key.len() > MAX_KEY_LEN {
        return Err(ConfigError::KeyTooLong {
            key: kind,
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    let b = key.as_bytes();
    if b.trim_ascii().is_empty() {
        return Err(ConfigError::EmptyKey { key: kind });
    }
    let mut rest = b;
    let mut at = 0;
    while let Some((c, r)) = rest.split_first() {
        if !c.is_ascii_graphic() {
            return Err(ConfigError::KeyCharacter { key: kind, at });
        }
        rest = r;
        at += 1;
    }
    Ok(())
}

/// Which key a [`ConfigError`] is about. The key itself is never carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyKind {
    /// The project API key.
    Api,
    /// The secret key.
    Secret,
}

impl KeyKind {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "API key",
            Self::Secret => "secret key",
        }
    }
}

/// A setting that must not be zero (core settings and the drivers' own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Setting {
    /// [`Config::flush_at`].
    FlushAt,
    /// [`Config::max_batch_events`].
    MaxBatchEvents,
    /// [`Config::flush_interval`].
    FlushInterval,
    /// [`Config::poll_interval`].
    PollInterval,
    /// [`Config::retry_base`].
    RetryBase,
    /// [`Config::retry_after_cap`].
    RetryAfterCap,
    /// The attempts of [`GiveUp::AfterAttempts`].
    GiveUpAttempts,
    /// The age of [`GiveUp::OlderThan`].
    GiveUpAge,
    /// A driver's request timeout.
    RequestTimeout,
    /// A driver's `/flags` request timeout.
    FlagsRequestTimeout,
    /// A driver's largest response body.
    MaxResponseBytes,
    /// The event queue's capacity (`Resources`' `Q`, or `Capacities::queue`).
    QueueBytes,
}

impl Setting {
    /// The setting's name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FlushAt => "flush_at",
            Self::MaxBatchEvents => "max_batch_events",
            Self::FlushInterval => "flush_interval",
            Self::PollInterval => "poll_interval",
            Self::RetryBase => "retry_base",
            Self::RetryAfterCap => "retry_after_cap",
            Self::GiveUpAttempts => "give_up attempts",
            Self::GiveUpAge => "give_up age",
            Self::RequestTimeout => "request timeout",
            Self::FlagsRequestTimeout => "flags request timeout",
            Self::MaxResponseBytes => "max_response_bytes",
            Self::QueueBytes => "queue capacity",
        }
    }
}

/// The configuration cannot work. Never carries a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// A key is empty or only whitespace.
    EmptyKey {
        /// Which.
        key: KeyKind,
    },
    /// A key is longer than allowed (for the API key: percent-encoded into the definitions
    /// path).
    KeyTooLong {
        /// Which.
        key: KeyKind,
        /// Its length in bytes (for the API key's path limit: percent-encoded).
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A key holds a byte that is not visible ASCII (a space, a control character, non-ASCII).
    KeyCharacter {
        /// Which.
        key: KeyKind,
        /// The byte offset of the first such byte.
        at: usize,
    },
    /// The secret key is a project key (`phc_…`): definitions need a personal (`phx_…`) or
    /// project secret (`phs_…`) key.
    ProjectKeyAsSecretKey,
    /// A size, interval or back-off is zero.
    Zero {
        /// Which.
        setting: Setting,
    },
    /// `retry_cap` is below `retry_base`.
    RetryCapBelowBase {
        /// `retry_base` in ms.
        base_ms: u64,
        /// `retry_cap` in ms.
        cap_ms: u64,
    },
    /// A driver was given a blank host.
    EmptyHost,
    /// The default `distinct_id` is blank or longer than [`MAX_DISTINCT_ID`] bytes.
    DistinctId {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EmptyKey { key } => write!(f, "{} is empty", key.as_str()),
            Self::KeyTooLong { key, len, max } => {
                write!(f, "{} is {len} bytes, at most {max} allowed", key.as_str())
            }
            Self::KeyCharacter { key, at } => write!(
                f,
                "{} has a byte that is not visible ASCII at offset {at}",
                key.as_str()
            ),
            Self::ProjectKeyAsSecretKey => f.write_str(
                "secret key is a project key (phc_...): use a personal (phx_) or secret (phs_) key",
            ),
            Self::Zero { setting } => write!(f, "{} must not be zero", setting.as_str()),
            Self::RetryCapBelowBase { base_ms, cap_ms } => write!(
                f,
                "retry cap ({cap_ms} ms) is below the retry base ({base_ms} ms)"
            ),
            Self::EmptyHost => f.write_str("host is empty"),
            Self::DistinctId { len } => write!(
                f,
                "default distinct_id is blank or too long ({len} bytes, at most {MAX_DISTINCT_ID})"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}
