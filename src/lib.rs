#![doc = include_str!("../README.md")]
//!
//! # Architecture tour
//!
//! The crate is a sans-IO **core** (no I/O, no clock reads, no allocator) plus thin **drivers**.
//!
//! - [`time`]: [`Instant`] (monotonic), [`UnixMillis`] (wall clock), the [`Clock`] trait that
//!   drivers implement, and the calendar arithmetic and RFC 3339 text of
//!   [`time::timestamp`]. The core never reads a clock: time is always an argument.
//! - [`json`]: the allocation-free JSON writer used by the event encoder, and the bounded pull
//!   reader used by the flag-definition loader.
//! - [`capture`]: events encoded straight into framed records of a byte ring ([`capture::Queue`])
//!   over caller-owned storage, and `/batch/` bodies rendered from the oldest records into a
//!   caller buffer ([`capture::render_batch`]).
//! - [`flags`]: allocation-free local feature-flag evaluation: definitions compiled into a
//!   bounded [`flags::FlagStore`], evaluated bit-for-bit as PostHog does.
//! - [`net`]: the network as data: requests and answers ([`net::Transmit`],
//!   [`net::ResponseInfo`]), HTTP/1.1 heads and a bounded response parser, and the
//!   [`Transport`](net::transport::Transport) / [`Connect`](net::transport::Connect) traits.
//! - [`config`]: the client's settings and their checks; [`retry`]: every back-off rule.
//! - [`client`]: the sans-IO state machine tying it together: flush triggers, one request in
//!   flight, retries, definitions polling, statistics.
//! - [`adapters`]: I/O. The HTTP exchange over any `embedded-io-async` stream and one send cycle
//!   of a client (always built), and the drivers: `std` (a threaded HTTPS client) and embassy
//!   (an async runner), plus embassy-net's TCP socket as a stream (to an address, or to a
//!   name resolved by DNS).
//! - `tls` (feature `tls`): TLS 1.3 sessions over any stream for the embassy runner, with the
//!   server's certificate always verified; `storage` (feature `storage`): the event log and
//!   definitions slot on NOR flash.
//!
//! The developer tools (a local PostHog-compatible server, the `posthog-embedded` CLI, the quick
//! start) are the workspace's other crate, `posthog-embedded-devtools` in `devtools/`: nothing of
//! them is a dependency of this one.
//!
//! Modules depend on each other one way, in these layers (each uses only those before it; CI
//! fails on a cycle, `scripts/check_layers.py`): `error`, `rng` → `json`, `time` → `capture`,
//! `flags` → `net` → `config` → `retry` → `client` → `tls`, `storage` → `adapters`.
//!
//! # Minimum supported Rust version
//!
//! Rust 1.87 (declared once, as `rust-version` in `Cargo.toml`); CI tests the current stable.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable
    )
)]

// The one `std` of the crate: the `std` feature's drivers and tools, and unit tests. The core
// modules never name it outside `#[cfg(test)]`.
#[cfg(any(test, feature = "std"))]
extern crate std;

#[macro_use]
mod fmt;

pub mod adapters;
pub mod capture;
pub mod client;
pub mod config;
pub mod error;
pub mod flags;
pub mod json;
pub mod managed;
pub mod net;
pub use client::resources;
pub mod retry;
pub mod rng;
#[cfg(feature = "storage")]
pub mod storage;
pub mod time;
#[cfg(feature = "tls")]
pub mod tls;

pub use error::{BatchError, CaptureError, PropertyError};
pub use time::{Clock, Duration, Instant, Now, UnixMillis};

/// The name this library reports as `$lib` on every event.
pub const LIB_NAME: &str = "posthog-embedded";

/// This library's version, reported as `$lib_version` on every event.
pub const LIB_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `User-Agent` header value for every request: `posthog-embedded/<version>`.
pub const USER_AGENT: &str = concat!("posthog-embedded/", env!("CARGO_PKG_VERSION"));
