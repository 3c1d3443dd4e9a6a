//! The drivers against real loopback servers: the embassy runner and handle (embassy-time's
//! std driver), embassy-net's TCP socket over a loopback device, and the std client (HTTPS,
//! gzip, timeouts) on real and virtual clocks.

#[cfg(feature = "embassy")]
#[path = "../support/config_cases.rs"]
mod config_cases;

mod embassy;
mod embassy_net;
#[cfg(all(feature = "embassy", feature = "storage", feature = "std"))]
mod embassy_storage;
mod std_client;
mod tls;
