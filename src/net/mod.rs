//! Pluggable I/O: HTTP/1.1 over any `embedded-io-async` byte stream.
//!
//! - [`http`]: request head writer and a bounded, sans-IO response parser (status, headers
//!   including `Retry-After` and `ETag`, `Content-Length` and chunked bodies, keep-alive), plus
//!   an async request function over any `embedded_io_async::{Read, Write}` stream.
//! - [`transport`]: the [`Transport`](transport::Transport) (HTTP level) and
//!   [`Connect`](transport::Connect) (byte stream) traits users implement, the
//!   [`StreamTransport`](transport::StreamTransport) that joins the two, and
//!   [`send_due`](transport::send_due), one send cycle of a client.

pub mod http;
pub mod transport;
