//! The network seen as data, sans-IO: what a client sends and receives, HTTP/1.1 heads and
//! responses in bounded buffers, and the traits a network plugs in through.
//!
//! - [`wire`]: the request a client hands a transport ([`Transmit`]) and the answer it takes
//!   back ([`ResponseInfo`], or a [`TransportError`]).
//! - [`http`]: the request-head writer and a bounded, push-based response parser (status,
//!   headers including `Retry-After` and `ETag`, `Content-Length` and chunked bodies,
//!   keep-alive).
//! - [`transport`]: the [`Transport`](transport::Transport) (HTTP level) and
//!   [`Connect`](transport::Connect) (byte stream) traits users implement.
//!
//! The I/O over these traits (the HTTP exchange on a stream, `StreamTransport`, `send_due`) is
//! in [`adapters`](crate::adapters), beside the drivers.

pub mod http;
pub mod transport;
pub mod wire;

pub use wire::{
    Header, RequestKind, ResponseInfo, Transmit, TransportError, MAX_BEARER, MAX_ETAG, MAX_PATH,
};
