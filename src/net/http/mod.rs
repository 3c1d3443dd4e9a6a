//! HTTP/1.1 as plain data, in bounded memory: no I/O here.
//!
//! - [`write_request_head`] renders a [`RequestHead`] (method, `Host`, path, caller headers, an
//!   optional bearer secret, `Content-Length`, `Connection`) into a caller buffer, byte-exact.
//!   Names and values that could inject a header (CR, LF, other control bytes) are refused.
//! - [`ResponseParser`] is a sans-IO, push-based response parser. Feed it bytes as they arrive,
//!   in any split down to one byte at a time ([`ResponseParser::feed`]), or let it pick where the
//!   next read should land ([`ResponseParser::read_buf`] + [`ResponseParser::advance`]), which
//!   reads a `Content-Length` body straight into the body buffer with no copy. The head is parsed
//!   with `httparse`; the body is framed by `Content-Length`, `chunked` (extensions and trailers
//!   are skipped) or the end of the connection. `1xx` interim responses are skipped; `HEAD`,
//!   `204` and `304` have no body.
//!
//! [`adapters::stream::request`](crate::adapters::stream::request) writes a request to any
//! `embedded_io_async::{Read, Write}` stream (TCP socket, UART modem, TLS session) and drives
//! the parser until the response is complete.
//!
//! # Memory
//!
//! Everything lives in caller buffers; nothing is allocated.
//!
//! | What | Size | Notes |
//! |---|---|---|
//! | `rx_buf` | ≥ the request head, ≥ the response head | Holds the rendered request head, then the response head (the whole header section must fit: its length **is** the header size limit), then serves as the read buffer for chunked and discarded bodies. 1 KiB is ample for PostHog; give 2 KiB behind proxies that add many headers. |
//! | body buffer | the largest body you accept | `/flags/` responses and flag definitions. Use [`BodySink::Discard`] for `/batch/`, whose body nobody reads. |
//! | [`ResponseParser`] | 270 bytes on 32-bit targets | Half of it the [`ETag`] (`ETAG_MAX` bytes). |
//! | [`request`](crate::adapters::stream::request)'s future | 360 bytes on 32-bit targets (plus the stream's own futures) | The parser, the arguments and the await state. |
//! | stack while parsing a head | `MAX_HEADERS` × 16 bytes on 32-bit targets (512 bytes) | The `httparse` header table, only during the (synchronous) parse, never held across an await. |
//!
//! Code size: the whole module (with `httparse` and one `request` instantiation) is about
//! 11 KiB of flash on `thumbv7em-none-eabihf` at `opt-level = "s"`.
//!
//! # Limits
//!
//! | Limit | Value | Error |
//! |---|---|---|
//! | response head (status line + headers) | `rx_buf.len()` | [`HttpError::HeadTooLarge`] |
//! | header fields per response | [`MAX_HEADERS`] | [`HttpError::TooManyHeaders`] |
//! | chunk-size line, extensions included | [`CHUNK_LINE_MAX`] | [`HttpError::ChunkLineTooLong`] |
//! | chunked trailer section | [`TRAILERS_MAX`] | [`HttpError::TrailersTooLarge`] |
//! | body | the body buffer | [`HttpError::BodyTooLarge`] (never truncated) |
//! | `ETag` | [`ETAG_MAX`] | longer (or non-ASCII) tags are ignored |
//!
//! Sizes are `u64` on every target; a `Content-Length` or chunk size that does not fit in 64 bits
//! is [`Malformed`], never wrapped.
//!
//! # Connection reuse
//!
//! [`Response::connection_close`] tells the driver to drop the connection: the server said
//! `Connection: close` (or spoke HTTP/1.0 without keep-alive), the body ran to the end of the
//! stream, or bytes arrived after the response (we never pipeline, so the stream's state is then
//! unknown). After **any** error the connection's state is unknown too: close it.
//! [`HttpError::ConnectionClosed`] with `received: 0` is the usual sign of a keep-alive
//! connection the server had already closed: reconnect and send again.
//!
//! # Example
//!
//! ```
//! use posthog_embedded::net::http::{BodySink, Method, ResponseParser};
//!
//! let mut rx = [0u8; 512];
//! let mut body = [0u8; 64];
//! let mut parser = ResponseParser::new(&mut rx, BodySink::Buffer(&mut body), Method::Post);
//! let mut complete = false;
//! for piece in [&b"HTTP/1.1 200 OK\r\nContent-Le"[..], b"ngth: 2\r\n\r\n{", b"}"] {
//!     complete = parser.feed(piece)?.complete;
//! }
//! assert!(complete);
//! let response = parser.into_response().expect("complete");
//! assert_eq!((response.status, response.body), (200, &b"{}"[..]));
//! # Ok::<(), posthog_embedded::net::http::HttpError>(())
//! ```

use core::fmt;

use embedded_io_async::ErrorKind;

mod body;
mod header;
mod request;
mod response;

pub use body::BodySink;
pub use header::{parse_http_date, parse_retry_after, ContentEncoding, RetryAfter};
pub use request::{write_request_head, Method, RequestHead};
pub use response::{Progress, Response, ResponseParser};

/// Most header fields a response head may carry.
pub const MAX_HEADERS: usize = 32;

/// Longest `ETag` kept, in bytes (quotes and any `W/` prefix included).
pub const ETAG_MAX: usize = 128;

/// Longest chunk-size line, in bytes: size, extensions and line ending.
pub const CHUNK_LINE_MAX: usize = 256;

/// Largest trailer section after the last chunk, in bytes (line endings included).
pub const TRAILERS_MAX: usize = 1024;

/// An entity tag as the server sent it (`"abc"` or `W/"abc"`), ready to send back in
/// `If-None-Match`.
pub type ETag = heapless::String<ETAG_MAX>;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The part of a [`RequestHead`] that was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestField {
    /// The host was empty or contained a space, a control byte or non-ASCII.
    Host,
    /// The path did not start with `/` or contained a space, a control byte or non-ASCII.
    Path,
    /// The name of caller header number `index` was empty or not a token.
    HeaderName {
        /// Position in [`RequestHead::headers`].
        index: usize,
    },
    /// The value of caller header number `index` contained CR, LF or another control byte.
    HeaderValue {
        /// Position in [`RequestHead::headers`].
        index: usize,
    },
    /// Caller header number `index` is one the writer sets itself (`Host`, `Content-Length`,
    /// `Transfer-Encoding`, `Connection`).
    ReservedHeader {
        /// Position in [`RequestHead::headers`].
        index: usize,
    },
    /// The bearer secret was empty or contained a space or a control byte.
    Bearer,
}

impl fmt::Display for RequestField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Host => f.write_str("host"),
            Self::Path => f.write_str("path"),
            Self::HeaderName { index } => write!(f, "name of header #{index}"),
            Self::HeaderValue { index } => write!(f, "value of header #{index}"),
            Self::ReservedHeader { index } => {
                write!(f, "header #{index} (set by the HTTP layer itself)")
            }
            Self::Bearer => f.write_str("bearer secret"),
        }
    }
}

/// What was wrong with a malformed response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Malformed {
    /// The status line is not `HTTP/1.x NNN reason` (or the code is not 100-599).
    StatusLine,
    /// The HTTP version is not `HTTP/1.0` or `HTTP/1.1`.
    Version,
    /// A header name contains a byte that is not allowed.
    HeaderName,
    /// A header value contains a byte that is not allowed.
    HeaderValue,
    /// A line does not end in CRLF (or LF).
    LineEnding,
    /// `Content-Length` is not a number, overflows 64 bits, or disagrees with another one.
    ContentLength,
    /// `Transfer-Encoding` is empty or applies `chunked` twice.
    TransferEncoding,
    /// A chunk-size line is not hex digits (plus extensions), or the size overflows 64 bits.
    ChunkSize,
    /// Chunk data is not followed by CRLF.
    ChunkEnd,
    /// A trailer line has a CR not followed by LF.
    Trailer,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::StatusLine => "invalid status line",
            Self::Version => "unsupported HTTP version",
            Self::HeaderName => "invalid header name",
            Self::HeaderValue => "invalid header value",
            Self::LineEnding => "invalid line ending",
            Self::ContentLength => "invalid Content-Length",
            Self::TransferEncoding => "invalid Transfer-Encoding",
            Self::ChunkSize => "invalid chunk size",
            Self::ChunkEnd => "chunk data not followed by CRLF",
            Self::Trailer => "invalid trailer line",
        })
    }
}

/// An HTTP exchange failed. None of these ever contains a secret, a header value or a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HttpError {
    /// The request head does not fit in the output buffer.
    BufferTooSmall {
        /// Bytes the request head needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A request field was refused (header injection, empty name, ...).
    InvalidRequest(RequestField),
    /// The stream reported an error.
    Transport(#[cfg_attr(feature = "defmt", defmt(Debug2Format))] ErrorKind),
    /// The stream ended before the response was complete. `received: 0` means the server closed
    /// the connection before answering at all (typically an idle keep-alive connection):
    /// reconnect and retry.
    ConnectionClosed {
        /// Response bytes received before the end of the stream.
        received: u64,
    },
    /// The response is not valid HTTP/1.1.
    Malformed(Malformed),
    /// The response head (status line and headers) does not fit in the receive buffer.
    HeadTooLarge {
        /// The receive buffer's length, in bytes.
        limit: usize,
    },
    /// The response head has more header fields than [`MAX_HEADERS`].
    TooManyHeaders {
        /// The most header fields accepted.
        max: usize,
    },
    /// A chunk-size line is longer than [`CHUNK_LINE_MAX`].
    ChunkLineTooLong {
        /// The longest line accepted, in bytes.
        max: usize,
    },
    /// The chunked trailer section is larger than [`TRAILERS_MAX`].
    TrailersTooLarge {
        /// The largest trailer section accepted, in bytes.
        max: usize,
    },
    /// The response uses a transfer coding other than `chunked` (`gzip`, `compress`, ...).
    UnsupportedTransferEncoding,
    /// The body does not fit in the body buffer. Nothing is truncated.
    BodyTooLarge {
        /// The body buffer's length, in bytes.
        limit: usize,
        /// Body bytes the response needs, at least (exact for a `Content-Length` body).
        at_least: u64,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "request head needs {needed} bytes, only {available} bytes available"
            ),
            Self::InvalidRequest(field) => write!(f, "invalid request {field}"),
            Self::Transport(kind) => write!(f, "transport error: {kind:?}"),
            Self::ConnectionClosed { received: 0 } => {
                f.write_str("connection closed before any response byte")
            }
            Self::ConnectionClosed { received } => write!(
                f,
                "connection closed after {received} bytes, before the response was complete"
            ),
            Self::Malformed(m) => write!(f, "malformed response: {m}"),
            Self::HeadTooLarge { limit } => {
                write!(f, "response head is larger than the {limit}-byte buffer")
            }
            Self::TooManyHeaders { max } => {
                write!(f, "response has more than {max} header fields")
            }
            Self::ChunkLineTooLong { max } => {
                write!(f, "chunk-size line is longer than {max} bytes")
            }
            Self::TrailersTooLarge { max } => {
                write!(f, "chunked trailers are larger than {max} bytes")
            }
            Self::UnsupportedTransferEncoding => {
                f.write_str("unsupported Transfer-Encoding (only chunked is accepted)")
            }
            Self::BodyTooLarge { limit, at_least } => write!(
                f,
                "response body needs at least {at_least} bytes, the buffer holds {limit}"
            ),
        }
    }
}

impl core::error::Error for HttpError {}

impl From<Malformed> for HttpError {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

impl From<RequestField> for HttpError {
    fn from(f: RequestField) -> Self {
        Self::InvalidRequest(f)
    }
}
