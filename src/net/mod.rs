//! Pluggable I/O: HTTP/1.1 over any `embedded-io-async` byte stream.
//!
//! - [`http`]: request head writer and a bounded, sans-IO response parser (status, headers
//!   including `Retry-After` and `ETag`, `Content-Length` and chunked bodies, keep-alive), plus
//!   an async request function over any `embedded_io_async::{Read, Write}` stream.

pub mod http;
