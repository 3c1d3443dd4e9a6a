//! The gateway: a [`Forwarder`] relays every event the local server accepted to an upstream
//! PostHog host (`https://us.i.posthog.com`, `https://eu.i.posthog.com`, or a self-hosted one),
//! for devices that never speak IP themselves (BLE, LoRa, a UART to a Linux box) or that send
//! plain HTTP on a local network.
//!
//! Each project key the devices use gets its own [`StdClient`] (this crate's std driver), so
//! the relay has the SDK's own delivery rules:
//!
//! - HTTPS with certificate verification (the webpki roots, or the roots given), gzip bodies;
//! - the **outage semantics**: a failed batch (no connection, a timeout, 408, 429, 5xx) stays
//!   spooled and is retried with capped exponential back-off and `Retry-After`, until it is
//!   delivered; nothing is given up by age or attempts;
//! - a **bounded spool** ([`ForwardConfig::spool_bytes`] per project key, in memory) with
//!   **back-pressure**: a request whose events do not fit in what is left is answered `503`
//!   with `Retry-After` and nothing of it is taken, so the device keeps its events and sends
//!   them again later ([`Forwarder::room`]); an answer that refuses a batch for good (400,
//!   401, 413 for a single event, ...) drops it, **counted** ([`ForwardStats::dropped`]);
//! - the device's uuid is kept, so PostHog keeps exactly one copy of an event even when the
//!   device retried it.
//!
//! An event is relayed with the JSON values the device sent (read and written again by
//! serde_json: key order and number spelling may change, values do not), with two changes: its time becomes absolute
//! (the `offset` a device without a wall clock sends is turned into a `timestamp`, computed
//! from when the gateway received it, as PostHog would have; PostHog then corrects the
//! gateway's own clock by the batch's `sent_at`, as for any SDK), and `$set` / `$set_once` sent at
//! the top level move into `properties`. Its properties, `$lib` and `$lib_version` included,
//! are kept (`EventOptions::relayed`: the relay adds none of its own). The local validation
//! still runs first: an event the local server rejects is never relayed.
//!
//! The spool lives in memory: `serve --forward` delivers what is spooled before it exits on
//! Ctrl-C or `SIGTERM` ([`Forwarder::shutdown`], bounded) and reports what is left; a process
//! killed outright loses it. At most [`MAX_PROJECTS`] project keys are relayed (each has its
//! own client and spool); events for more are refused, counted.

use core::time::Duration;
use std::borrow::ToOwned;
use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Vec;

use posthog_embedded::adapters::std::{normalize_host, os_seed, StdClient, StdConfig, StdError};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::ClientStats;
use posthog_embedded::flags::Requirements;
use posthog_embedded::json::write::RawJson;
use posthog_embedded::resources::Capacities;
use posthog_embedded::time::UnixMillis;
use serde_json::Value;

use super::server::ReceivedEvent;
use super::validate::{distinct_id, parse_uuid};

/// Default of [`ForwardConfig::spool_bytes`]: 8 MiB of events per project key.
pub const DEFAULT_SPOOL_BYTES: usize = 8 << 20;

/// Most project keys one gateway relays.
pub const MAX_PROJECTS: usize = 64;

/// Bytes an event takes in the spool besides its JSON (record header, the relay's framing),
/// for [`Forwarder::room`] estimates.
pub const SPOOL_OVERHEAD: usize = 64;

/// Settings of a [`Forwarder`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ForwardConfig {
    /// The upstream host (`https://us.i.posthog.com`).
    pub upstream: String,
    /// Bytes of events spooled per project key while the upstream cannot be reached.
    pub spool_bytes: usize,
    /// Extra root certificates (DER) to trust, instead of the webpki roots (a self-hosted
    /// PostHog behind a private CA, or a test).
    pub root_certificates: Vec<Vec<u8>>,
    /// How long events wait to be batched (default 1 s).
    pub flush_interval: Duration,
    /// First retry delay and its cap (default 1 s and 60 s).
    pub retry: (Duration, Duration),
}

impl ForwardConfig {
    /// Defaults, relaying to `upstream`.
    #[must_use]
    pub fn new(upstream: impl Into<String>) -> Self {
        Self {
            upstream: upstream.into(),
            spool_bytes: DEFAULT_SPOOL_BYTES,
            root_certificates: Vec::new(),
            flush_interval: Duration::from_secs(1),
            retry: (Duration::from_secs(1), Duration::from_secs(60)),
        }
    }

    /// Sets [`spool_bytes`](Self::spool_bytes).
    #[must_use]
    pub const fn spool_bytes(mut self, n: usize) -> Self {
        self.spool_bytes = n;
        self
    }

    /// Adds a root certificate (DER) to [`root_certificates`](Self::root_certificates).
    #[must_use]
    pub fn root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(der.into());
        self
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    #[must_use]
    pub const fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d;
        self
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub const fn retry(mut self, base: Duration, cap: Duration) -> Self {
        self.retry = (base, cap);
        self
    }
}

/// Why a [`Forwarder`] could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum ForwardError {
    /// The upstream host is not a usable URL.
    Upstream(StdError),
}

impl core::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Upstream(e) => write!(f, "upstream host: {e}"),
        }
    }
}

impl core::error::Error for ForwardError {}

/// What the gateway did with the events it accepted, over every project key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardStats {
    /// Project keys seen.
    pub projects: usize,
    /// Events handed to the relay.
    pub accepted: u64,
    /// Events the relay refused at once (no project key, too many keys, not relayable),
    /// counted.
    pub refused: u64,
    /// Events delivered upstream.
    pub delivered: u64,
    /// Events dropped after they were spooled: the upstream refused them for good, or (when
    /// the back-pressure estimate fell short) the spool overflowed.
    pub dropped: u64,
    /// Events spooled, not yet delivered.
    pub pending: usize,
    /// Failed attempts that were retried.
    pub retries: u64,
}

impl core::fmt::Display for ForwardStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "forwarded {} of {} events ({} pending, {} dropped, {} refused, {} retries)",
            self.delivered, self.accepted, self.pending, self.dropped, self.refused, self.retries
        )
    }
}

struct Inner {
    clients: BTreeMap<String, Arc<StdClient>>,
    accepted: u64,
    refused: u64,
}

/// Relays accepted events upstream, one [`StdClient`] per project key. See the
/// [module docs](self).
pub struct Forwarder {
    config: ForwardConfig,
    inner: Mutex<Inner>,
}

impl core::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Forwarder")
            .field("upstream", &self.config.upstream)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder for `config`; nothing is sent until events arrive.
    ///
    /// # Errors
    /// [`ForwardError::Upstream`] when the upstream is not an `http(s)://host[:port]` URL.
    pub fn new(config: ForwardConfig) -> Result<Self, ForwardError> {
        normalize_host(&config.upstream).map_err(ForwardError::Upstream)?;
        Ok(Self {
            config,
            inner: Mutex::new(Inner {
                clients: BTreeMap::new(),
                accepted: 0,
                refused: 0,
            }),
        })
    }

    /// The upstream host.
    #[must_use]
    pub fn upstream(&self) -> &str {
        &self.config.upstream
    }

    /// Bytes of spool per project key ([`ForwardConfig::spool_bytes`]).
    #[must_use]
    pub const fn spool_bytes(&self) -> usize {
        self.config.spool_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client(&self, api_key: &str) -> Result<StdClient, StdError> {
        let c = &self.config;
        let mut config = StdConfig::new(api_key, os_seed())
            .host(&c.upstream)
            .gzip(true)
            .flush_interval(c.flush_interval)
            .retry(c.retry.0, c.retry.1)
            .capacities(Capacities {
                queue: c.spool_bytes,
                // The relay evaluates no flags.
                flags: Requirements {
                    flags: 1,
                    nodes: 1,
                    bytes: 1,
                },
                called: 1,
            });
        for der in &c.root_certificates {
            config = config.root_certificate(der.clone());
        }
        StdClient::new(config)
    }

    /// Relays `records` (events the local server accepted in one request, for project
    /// `api_key`); events already seen (`duplicate`) are not relayed again. Returns how many
    /// were spooled.
    pub fn forward(&self, api_key: Option<&str>, records: &[ReceivedEvent]) -> usize {
        let fresh: Vec<&ReceivedEvent> = records.iter().filter(|r| !r.duplicate).collect();
        let mut g = self.lock();
        g.accepted += fresh.len() as u64;
        let Some(key) = api_key.filter(|k| !k.trim().is_empty()) else {
            g.refused += fresh.len() as u64;
            return 0;
        };
        if !g.clients.contains_key(key) {
            if g.clients.len() >= MAX_PROJECTS {
                g.refused += fresh.len() as u64;
                return 0;
            }
            match self.client(key) {
                Ok(c) => {
                    g.clients.insert(key.to_owned(), Arc::new(c));
                }
                Err(_) => {
                    g.refused += fresh.len() as u64;
                    return 0;
                }
            }
        }
        let Some(client) = g.clients.get(key) else {
            return 0;
        };
        let mut spooled = 0;
        let mut refused = 0;
        for r in fresh {
            match relay(client, r) {
                Ok(()) => spooled += 1,
                Err(()) => refused += 1,
            }
        }
        g.refused += refused;
        spooled
    }

    /// Bytes of spool left for `api_key`'s events (its whole spool before its first event).
    #[must_use]
    pub fn room(&self, api_key: &str) -> usize {
        match self.lock().clients.get(api_key) {
            Some(c) => {
                let q = c.queue_status();
                q.capacity.saturating_sub(q.bytes_used)
            }
            None => self.config.spool_bytes,
        }
    }

    /// Totals over every project key. Each event is in exactly one of `delivered`, `dropped`,
    /// `refused` and `pending` (each key's client is read under one lock).
    #[must_use]
    pub fn stats(&self) -> ForwardStats {
        let g = self.lock();
        let mut s = ForwardStats {
            projects: g.clients.len(),
            accepted: g.accepted,
            // Refusals at the client (invalid, too large, queue full) are counted here, by
            // `forward`, once.
            refused: g.refused,
            ..ForwardStats::default()
        };
        for c in g.clients.values() {
            let q = c.queue_status();
            let cs: ClientStats = q.stats;
            let qs = cs.queue;
            s.delivered += cs.sent as u64;
            // What left the spool undelivered (an evicted event whose batch was in flight and
            // then delivered is in `delivered`).
            s.dropped += u64::from(qs.evicted).saturating_sub(cs.evicted_then_delivered as u64)
                + u64::from(qs.discarded_too_large_for_body)
                + u64::from(qs.discarded_rejected)
                + u64::from(qs.discarded_gave_up);
            s.retries += cs.retries as u64;
            s.pending += q.pending;
        }
        s
    }

    /// Sends what is spooled now and waits until it is delivered or `timeout` passes; returns
    /// the events still pending.
    pub fn flush(&self, timeout: Duration) -> usize {
        let clients: Vec<Arc<StdClient>> = self.lock().clients.values().cloned().collect();
        for c in &clients {
            c.flush(timeout);
        }
        clients.iter().map(|c| c.pending()).sum()
    }

    /// [`flush`](Self::flush), then stops the relay's clients; returns the events left.
    pub fn shutdown(&self, timeout: Duration) -> usize {
        let clients: Vec<Arc<StdClient>> = self.lock().clients.values().cloned().collect();
        for c in &clients {
            c.shutdown(timeout);
        }
        clients.iter().map(|c| c.pending()).sum()
    }
}

/// Spools one event: its name, distinct id, uuid and absolute time; its properties verbatim.
fn relay(client: &StdClient, r: &ReceivedEvent) -> Result<(), ()> {
    let e = &r.event;
    let name = e.get("event").and_then(Value::as_str).ok_or(())?;
    let id = distinct_id(e).ok_or(())?;
    let mut opts = EventOptions::new()
        .timestamp(UnixMillis::from_millis(r.time.as_millis()))
        .relayed(true);
    if let Some(u) = e.get("uuid").and_then(Value::as_str).and_then(parse_uuid) {
        opts = opts.uuid(u);
    }
    let empty = serde_json::Map::new();
    let props = e
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // `$set` / `$set_once` sent beside `properties` go inside it (PostHog reads them there).
    let lifted: Vec<(&str, &Value)> = ["$set", "$set_once"]
        .into_iter()
        .filter(|k| !props.contains_key(*k))
        .filter_map(|k| e.get(k).map(|v| (k, v)))
        .collect();
    client
        .capture_with(name, id.as_str(), &opts, |p| {
            for (k, v) in props
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .chain(lifted.clone())
            {
                p.prop(k, RawJson(&v.to_string()))?;
            }
            Ok(())
        })
        .map(drop)
        .map_err(|_| ())
}

/// `forward to <upstream>: <stats>`, for logs.
#[must_use]
pub fn describe(f: &Forwarder) -> String {
    format!("forward to {}: {}", f.upstream(), f.stats())
}
