//! I/O: the HTTP exchange over any `embedded-io-async` stream, one send cycle of a client, and
//! the drivers that glue the sans-IO core to a runtime.
//!
//! - Always built: [`stream::request`] (one HTTP/1.1 exchange over a stream),
//!   [`StreamTransport`] (a [`Transport`](crate::net::transport::Transport) over a
//!   [`Connect`](crate::net::transport::Connect) stream, with keep-alive and reconnects) and
//!   [`send_due`] (ask the client what is due, send it, report the answer).
//!
//! Drivers read clocks, move bytes and wait. Delivery policy (batching, retries, back-off,
//! definitions polling) lives in [`crate::client::Client`], and every back-off rule in
//! [`crate::retry`]. Two pieces of flag-read logic still live in the drivers: the remote
//! `/flags` read runs its retry loop (the rule, [`FlagsRetry`](crate::retry::FlagsRetry), is
//! the core's) in both the embassy handle and the std client, and the merge of local and remote
//! values behind `get_all_flags` exists in the std driver only.
//!
//! The drivers:
//!
//! - `std` feature: `std::StdClient` (a background thread, HTTPS through rustls with
//!   certificate verification, gzip), `std::UreqTransport`, and its clocks: `std::StdClock`,
//!   `std::ManualClock` (virtual time for tests) and the `std::HostClock` trait.
//! - `embassy` feature: `embassy::new` splits a client into `embassy::Posthog` (a cheap `Copy`
//!   handle for every task) and `embassy::Runner` (one task moving requests over any
//!   `embedded-io-async` stream: embassy-net TCP, a UART modem, TLS); `embassy::EmbassyClock`
//!   for hand-written loops.
//! - `embassy-net` feature: `embassy_net::TcpConnect`, the runner's stream over an embassy-net
//!   `TcpSocket` (connect, graceful close with a bounded wait, reconnect).

#[cfg(feature = "storage")]
pub mod persist;
mod send;
pub mod stream;

pub use send::send_due;
pub use stream::StreamTransport;

#[cfg(feature = "embassy")]
pub mod embassy;
#[cfg(feature = "embassy-net")]
pub mod embassy_net;
#[cfg(feature = "std")]
pub mod std;
