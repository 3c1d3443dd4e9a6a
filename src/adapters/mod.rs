//! Drivers: thin glue between the sans-IO core and a runtime. They read clocks, move bytes and
//! wait; they hold no policy (batching, retries, back-off and polling live in
//! [`crate::client::Client`]).
//!
//! - `std` feature: `std::StdClock`, `std::StdClient` (a background thread, HTTPS through
//!   rustls with certificate verification, gzip) and `std::UreqTransport`.
//! - `embassy` feature: `embassy::Runner` (one task moving requests over any
//!   `embedded-io-async` stream: embassy-net TCP, a UART modem, TLS), `embassy::Handle` (a
//!   cheap `Copy` handle for every other task) and `embassy::EmbassyClock`.
//! - `embassy-net` feature: `embassy_net::TcpConnect`, the runner's stream over an embassy-net
//!   `TcpSocket` (connect, graceful close with a bounded wait, reconnect).

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
