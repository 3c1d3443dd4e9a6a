//! The std driver: clocks ([`StdClock`], [`ManualClock`]), an HTTPS transport over `ureq`
//! ([`UreqTransport`]) and a ready-to-use threaded client ([`StdClient`]).
//!
//! The driver holds no policy. Batching, retries, back-off and definitions polling all live in
//! [`Client`]; this module reads clocks, moves bytes and waits.
//!
//! Its parts:
//!
//! - `config`: [`StdConfig`] and its validation, [`StdError`], [`normalize_host`],
//!   [`os_seed`], the sizes of the core ([`StdCore`] and friends);
//! - `clock`: [`StdClock`], [`ManualClock`] and [`HostClock`], what the client needs of a clock;
//! - `transport`: [`UreqTransport`], [`Response`], [`parse_retry_after`];
//! - `client`: [`StdClient`] (construction, captures, flush, shutdown) and [`FlushResult`];
//! - `flags`: the client's flag reads, [`StdFlagResult`], [`FlagOptions`];
//! - `observer`: [`RequestRecord`], [`RecordKind`], [`RequestObserver`];
//! - `worker`: the background thread and the state it shares with the client.
//!
//! # Threading
//!
//! [`StdClient`] keeps the core [`Client`] (boxed: it is several megabytes) behind a
//! `Mutex`, with two condition variables: `wake` (the worker waits on it) and `progress` (callers
//! of [`flush`](StdClient::flush) and [`shutdown`](StdClient::shutdown) wait on it). One
//! background thread loops:
//!
//! 1. lock; [`poll_transmit`] with a fresh clock reading;
//! 2. if a request is due: take it out (its head is owned; its body is the worker's buffer),
//!    **unlock**, send it, lock again,
//!    settle it with [`handle_response`] or [`handle_transport_error`], wake the waiters;
//! 3. otherwise wait on `wake` until [`poll_timeout`] (or forever when it is `None`); every
//!    capture, flush, reload and shutdown notifies `wake`.
//!
//! Captures never wait for the network: they hold the lock only while the event is encoded.
//!
//! Flag reads ([`get_feature_flag`](StdClient::get_feature_flag) and friends) evaluate locally
//! under the lock. When they need the server, they open the core's `/flags` query
//! ([`Client::begin_flag_read`]) and wait on `progress`; the background thread sends it ahead of
//! any batch (with [`StdConfig::flags_request_timeout`] per attempt, retried per
//! [`FlagsRetry`] on the client's clock) and the core parses the answer into its
//! [`StdRemoteFlags`]; the reader then reports the read ([`Client::finish_flag_read`]). One
//! query is open at a time: concurrent remote reads take turns.
//!
//! An observer installed with [`on_request`](StdClient::on_request) is told about every HTTP
//! attempt, on the thread that made it, with no lock of the client held.
//!
//! # Time
//!
//! A client runs on one [`HostClock`]: [`StdClock`] unless it was built with
//! [`StdClient::with_clock`]. Step 3 above waits for the clock to reach the core's deadline:
//! on a clock that follows real time, by sleeping for the difference (a client with nothing
//! due sleeps until notified, with no periodic wake-up); on a clock that moves only when told
//! ([`ManualClock`]), until the clock says it moved. The client registers a waker with the clock
//! ([`HostClock::on_change`]); every jump of the clock takes the client's lock and notifies both
//! `wake` and `progress`, so the worker and every waiter read the clock again. Because the
//! worker reads the clock under the lock and waits on `wake` without releasing it in between, a
//! jump is never missed.
//!
//! The timeouts callers pass ([`flush`](StdClient::flush), [`shutdown`](StdClient::shutdown),
//! [`immediate`](StdClient::immediate), [`StdConfig::drop_timeout`]) and the transport's request
//! timeouts are real time, whatever the clock: they bound how long a thread blocks.
//!
//! # Secrets
//!
//! The API key and the secret key live in the core [`Config`] and in the request headers the
//! worker copies out. No `Debug`, `Display` or log line of this module prints them:
//! [`StdConfig`]'s and [`Transmit`](crate::client::Transmit)'s `Debug` redact them, [`StdError`] never carries them,
//! and `ureq` errors are mapped to [`TransportError`] without their text. (`ureq` itself logs
//! full request URIs, which carry the project token for definitions polls, only at `trace` level
//! of the `log` facade.)
//!
//! # Memory
//!
//! The core's storage ([`StdConfig::capacities`]) and the `/flags` answer
//! ([`STD_REMOTE_CAPACITY`]) are allocated on the heap when the client starts, directly (no
//! stack copy, no helper thread), and freed when it is dropped. The core client keeps its own
//! copies of the keys, on the heap, freed with it: nothing is leaked.
//!
//! [`Client`]: crate::client::Client
//! [`poll_transmit`]: crate::client::Client::poll_transmit
//! [`handle_response`]: crate::client::Client::handle_response
//! [`handle_transport_error`]: crate::client::Client::handle_transport_error
//! [`poll_timeout`]: crate::client::Client::poll_timeout
//! [`Client::begin_flag_read`]: crate::client::Client::begin_flag_read
//! [`Client::finish_flag_read`]: crate::client::Client::finish_flag_read
//! [`Config`]: crate::client::Config
//! [`FlagsRetry`]: crate::client::FlagsRetry
//! [`TransportError`]: crate::client::TransportError

mod client;
mod clock;
mod config;
mod flags;
mod observer;
mod snapshot;
mod transport;
mod worker;

pub use client::{FlushResult, QueueStatus, StdClient};
pub use clock::{HostClock, ManualClock, StdClock};
pub use config::{
    normalize_host, os_seed, StdConfig, StdCore, StdError, StdFlagStore, StdRemoteFlags,
    BODY_BYTES, DEFAULT_HOST, FLAG_TEXT_BYTES, MAX_FLAGS, MAX_NODES, MAX_REMOTE_FLAGS, QUEUE_BYTES,
    REMOTE_TEXT_BYTES, STD_CAPACITIES, STD_REMOTE_CAPACITY,
};
pub use flags::{FlagOptions, StdFlagResult};
pub use observer::{RecordKind, RequestObserver, RequestRecord};
pub use snapshot::StdFlagSnapshot;
pub use transport::{parse_retry_after, Response, UreqTransport};
