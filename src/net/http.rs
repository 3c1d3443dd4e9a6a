//! HTTP/1.1 over any byte stream, in bounded memory.
//!
//! Three pieces, smallest first:
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
//! - [`request`] writes a request to any `embedded_io_async::{Read, Write}` stream (TCP socket,
//!   UART modem, TLS session) and drives the parser until the response is complete. It has no
//!   timeout of its own: wrap the future in the driver's timeout.
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
//! | [`request`]'s future | 360 bytes on 32-bit targets (plus the stream's own futures) | The parser, the arguments and the await state. |
//! | stack while parsing a head | `MAX_HEADERS` × 16 bytes on 32-bit targets (512 bytes) | The `httparse` header table, only during the (synchronous) parse, never held across an await. |
//!
//! Code size: the whole module (with `httparse` and one [`request`] instantiation) is about
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

use embedded_io_async::{ErrorKind, Read, Write};

use crate::capture::timestamp::{days_from_civil, days_in_month};
use crate::json::write::fmt_u64;
use crate::time::{Duration, UnixMillis};

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

// ---------------------------------------------------------------------------------------------
// Request head
// ---------------------------------------------------------------------------------------------

/// A request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`: always sends `Content-Length`, `0` for an empty body.
    Post,
    /// `HEAD`: the response has no body.
    Head,
}

impl Method {
    /// The method as it appears on the request line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Head => "HEAD",
        }
    }
}

/// Everything before the body of a request, borrowed from the caller.
///
/// Rendered by [`write_request_head`] as
///
/// ```text
/// METHOD path HTTP/1.1\r\n
/// Host: host\r\n
/// <caller headers, in order>\r\n
/// Authorization: Bearer <secret>\r\n     (with a bearer secret)
/// Content-Length: n\r\n                  (for a body, and for every POST)
/// Connection: keep-alive | close\r\n
/// \r\n
/// ```
///
/// `Debug` (and `defmt`) never show the bearer secret, nor the value of a caller header named
/// `Authorization`, `Proxy-Authorization` or `Cookie`. [`request`] zeroes the rendered head in
/// its buffer once it is sent.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    method: Method,
    host: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
    bearer: Option<&'a str>,
    keep_alive: bool,
}

impl<'a> RequestHead<'a> {
    /// A request for `path` (origin form: `/flags/?v=2`) on `host` (`us.i.posthog.com`, with
    /// `:port` if not the default), with no extra headers, keeping the connection alive.
    #[must_use]
    pub const fn new(method: Method, host: &'a str, path: &'a str) -> Self {
        Self {
            method,
            host,
            path,
            headers: &[],
            bearer: None,
            keep_alive: true,
        }
    }

    /// Sends these headers, in order, after `Host` (for example `capture::BATCH_HEADERS`).
    #[must_use]
    pub const fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Sends `Authorization: Bearer <secret>`. The secret never appears in `Debug` or errors.
    #[must_use]
    pub const fn bearer(mut self, secret: &'a str) -> Self {
        self.bearer = Some(secret);
        self
    }

    /// Asks the server to keep the connection open (`true`, the default) or to close it after
    /// the response (`false`).
    #[must_use]
    pub const fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// The request method.
    #[must_use]
    pub const fn method(&self) -> Method {
        self.method
    }
}

fn is_sensitive(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

struct RedactedHeaders<'a>(&'a [(&'a str, &'a str)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            let value = if is_sensitive(name) {
                "<redacted>"
            } else {
                value
            };
            list.entry(&(name, value));
        }
        list.finish()
    }
}

impl fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("headers", &RedactedHeaders(self.headers))
            .field("bearer", &self.bearer.map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RequestHead<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "RequestHead {{ method: {}, host: {=str}, path: {=str}, headers: {=usize}, bearer: {=bool}, keep_alive: {=bool} }}",
            self.method,
            self.host,
            self.path,
            self.headers.len(),
            self.bearer.is_some(),
            self.keep_alive
        );
    }
}

const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Visible ASCII: no space, no control byte, no DEL, no non-ASCII.
fn is_visible_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A field value: anything but control bytes (HTAB allowed) and DEL.
fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

const RESERVED: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

fn validate(head: &RequestHead<'_>) -> Result<(), RequestField> {
    if !is_visible_ascii(head.host) {
        return Err(RequestField::Host);
    }
    if !head.path.starts_with('/') || !is_visible_ascii(head.path) {
        return Err(RequestField::Path);
    }
    for (index, (name, value)) in head.headers.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(RequestField::HeaderName { index });
        }
        if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err(RequestField::ReservedHeader { index });
        }
        if !is_field_value(value) {
            return Err(RequestField::HeaderValue { index });
        }
    }
    if let Some(secret) = head.bearer {
        if !is_visible_ascii(secret) {
            return Err(RequestField::Bearer);
        }
    }
    Ok(())
}

/// A byte buffer that keeps counting past its end, so the exact size needed is known.
struct Out<'o> {
    buf: &'o mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn header(&mut self, name: &str, value: &[&str]) {
        self.put(name.as_bytes());
        self.put(b": ");
        for v in value {
            self.put(v.as_bytes());
        }
        self.put(b"\r\n");
    }
}

/// Renders `head`, for a body of `body_len` bytes, into `out` and returns the number of bytes
/// written. `Content-Length` is sent when `body_len > 0` and for every `POST`.
///
/// # Errors
/// - [`HttpError::InvalidRequest`] if the host, the path, a header name or value, or the bearer
///   secret could inject or break a header (CR, LF, control bytes), or a caller header is one the
///   writer sets itself. The error names the field, never its content.
/// - [`HttpError::BufferTooSmall`] with the exact size needed; `out` holds garbage then.
pub fn write_request_head(
    head: &RequestHead<'_>,
    body_len: usize,
    out: &mut [u8],
) -> Result<usize, HttpError> {
    validate(head)?;
    let mut o = Out { buf: out, len: 0 };
    o.put(head.method.as_str().as_bytes());
    o.put(b" ");
    o.put(head.path.as_bytes());
    o.put(b" HTTP/1.1\r\n");
    o.header("Host", &[head.host]);
    for (name, value) in head.headers {
        o.header(name, &[value]);
    }
    if let Some(secret) = head.bearer {
        o.header("Authorization", &["Bearer ", secret]);
    }
    if body_len > 0 || head.method == Method::Post {
        let mut digits = [0u8; 20];
        o.put(b"Content-Length: ");
        o.put(fmt_u64(body_len as u64, &mut digits));
        o.put(b"\r\n");
    }
    let connection = if head.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    o.header("Connection", &[connection]);
    o.put(b"\r\n");
    if o.len > o.buf.len() {
        return Err(HttpError::BufferTooSmall {
            needed: o.len,
            available: o.buf.len(),
        });
    }
    Ok(o.len)
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// When the server wants the next request (`Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetryAfter {
    /// After this long (delta-seconds; absurd values saturate).
    Delay(Duration),
    /// At this wall-clock time (an HTTP-date).
    At(UnixMillis),
}

impl RetryAfter {
    /// The wait this asks for, given the wall clock now: `None` for an HTTP-date when the wall
    /// clock is unknown. A date in the past gives zero.
    #[must_use]
    pub fn delay(self, wall_now: Option<UnixMillis>) -> Option<Duration> {
        match self {
            Self::Delay(d) => Some(d),
            Self::At(at) => wall_now
                .map(|now| Duration::from_millis(at.as_millis().saturating_sub(now.as_millis()))),
        }
    }
}

/// The response body's `Content-Encoding`. The body is returned as sent, not decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ContentEncoding {
    /// No `Content-Encoding` (or `identity`).
    #[default]
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// Anything else, or several codings.
    Other,
}

/// Where the response body goes.
pub enum BodySink<'b> {
    /// Into this buffer. A body larger than it is [`HttpError::BodyTooLarge`].
    Buffer(&'b mut [u8]),
    /// Nowhere: the body is framed (so the connection can be reused) and dropped.
    Discard,
}

impl fmt::Debug for BodySink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Buffer(buf) => write!(f, "Buffer({} bytes)", buf.len()),
            Self::Discard => f.write_str("Discard"),
        }
    }
}

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Response<'b> {
    /// The status code (100-599; never 1xx: interim responses are skipped).
    pub status: u16,
    /// `Retry-After`, when present and valid (invalid values are ignored).
    pub retry_after: Option<RetryAfter>,
    /// `ETag`, when present, ASCII and at most [`ETAG_MAX`] bytes.
    pub etag: Option<ETag>,
    /// The server's `Date`, when present and valid: a wall clock for devices without one.
    pub date: Option<UnixMillis>,
    /// `Content-Encoding`.
    pub content_encoding: ContentEncoding,
    /// The connection cannot be reused: close it (see the module docs).
    pub connection_close: bool,
    /// The body (empty with [`BodySink::Discard`]).
    pub body: &'b [u8],
    /// The body's length, also when discarded.
    pub body_len: u64,
}

impl Response<'_> {
    /// Whether the status is 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a call to [`ResponseParser::feed`] or [`ResponseParser::advance`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub struct Progress {
    /// Input bytes that belonged to the response. Fewer than given only when the response
    /// completed: the rest came after it.
    pub consumed: usize,
    /// The response is complete: call [`ResponseParser::into_response`].
    pub complete: bool,
}

#[derive(Clone, Debug, Default)]
struct Meta {
    status: u16,
    retry_after: Option<RetryAfter>,
    etag: Option<ETag>,
    date: Option<UnixMillis>,
    content_encoding: ContentEncoding,
    close: bool,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Head,
    Body,
    Done,
    Failed(HttpError),
}

#[derive(Clone, Copy, Debug)]
enum Framing {
    Length(u64),
    UntilClose,
    Chunked(Chunk),
}

#[derive(Clone, Copy, Debug)]
enum Chunk {
    Size(SizeLine),
    Data(u64),
    DataEnd { cr: bool },
    Trailers { line: usize, total: usize, cr: bool },
}

#[derive(Clone, Copy, Debug, Default)]
struct SizeLine {
    size: u64,
    digit: bool,
    ws: bool,
    ext: bool,
    cr: bool,
    len: usize,
}

/// Where body bytes go, and how many went.
struct BodyOut<'b> {
    sink: BodySink<'b>,
    stored: usize,
    len: u64,
}

impl BodyOut<'_> {
    /// Fails unless `more` bytes can still be stored.
    fn check_room(&self, more: u64) -> Result<(), HttpError> {
        if let BodySink::Buffer(buf) = &self.sink {
            let room = buf.len().saturating_sub(self.stored) as u64;
            if more > room {
                return Err(HttpError::BodyTooLarge {
                    limit: buf.len(),
                    at_least: self.len.saturating_add(more),
                });
            }
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        self.check_room(bytes.len() as u64)?;
        if let BodySink::Buffer(buf) = &mut self.sink {
            let end = self.stored.saturating_add(bytes.len());
            if let Some(dst) = buf.get_mut(self.stored..end) {
                dst.copy_from_slice(bytes);
            }
            self.stored = end;
        }
        self.len = self.len.saturating_add(bytes.len() as u64);
        Ok(())
    }
}

/// `min(remaining, avail)` without truncating `remaining` on 32-bit targets.
fn take_len(remaining: u64, avail: usize) -> usize {
    usize::try_from(remaining).map_or(avail, |r| r.min(avail))
}

/// Decodes `input` as body bytes. Returns the bytes used and whether the body is complete.
fn decode(
    framing: &mut Framing,
    out: &mut BodyOut<'_>,
    input: &[u8],
) -> Result<(usize, bool), HttpError> {
    let mut i = 0;
    loop {
        let rest = input.get(i..).unwrap_or_default();
        match framing {
            Framing::Length(remaining) => {
                let take = take_len(*remaining, rest.len());
                out.put(rest.get(..take).unwrap_or_default())?;
                *remaining = remaining.saturating_sub(take as u64);
                return Ok((i.saturating_add(take), *remaining == 0));
            }
            Framing::UntilClose => {
                out.put(rest)?;
                return Ok((input.len(), false));
            }
            Framing::Chunked(chunk) => {
                let Some(&b) = rest.first() else {
                    return Ok((i, false));
                };
                if let Chunk::Data(remaining) = chunk {
                    let take = take_len(*remaining, rest.len());
                    out.put(rest.get(..take).unwrap_or_default())?;
                    *remaining = remaining.saturating_sub(take as u64);
                    if *remaining == 0 {
                        *chunk = Chunk::DataEnd { cr: false };
                    }
                    i = i.saturating_add(take);
                } else {
                    i = i.saturating_add(1);
                    if chunk_byte(chunk, b, out)? {
                        return Ok((i, true));
                    }
                }
            }
        }
    }
}

/// Advances the chunked framing by one byte (not chunk data). Returns whether the body ended.
fn chunk_byte(chunk: &mut Chunk, b: u8, out: &BodyOut<'_>) -> Result<bool, HttpError> {
    match chunk {
        Chunk::Size(line) => {
            line.len = line.len.saturating_add(1);
            if line.len > CHUNK_LINE_MAX {
                return Err(HttpError::ChunkLineTooLong {
                    max: CHUNK_LINE_MAX,
                });
            }
            if line.cr && b != b'\n' {
                return Err(Malformed::ChunkSize.into());
            }
            match b {
                b'\n' => {
                    if !line.digit {
                        return Err(Malformed::ChunkSize.into());
                    }
                    if line.size == 0 {
                        *chunk = Chunk::Trailers {
                            line: 0,
                            total: 0,
                            cr: false,
                        };
                    } else {
                        out.check_room(line.size)?;
                        *chunk = Chunk::Data(line.size);
                    }
                }
                b'\r' => line.cr = true,
                _ if line.ext => {
                    if b != b'\t' && (b < 0x20 || b == 0x7f) {
                        return Err(Malformed::ChunkSize.into());
                    }
                }
                b';' if line.digit => line.ext = true,
                b' ' | b'\t' if line.digit => line.ws = true,
                _ => {
                    let digit = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        b'A'..=b'F' => b - b'A' + 10,
                        _ => return Err(Malformed::ChunkSize.into()),
                    };
                    if line.ws {
                        return Err(Malformed::ChunkSize.into());
                    }
                    line.size = line
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(digit)))
                        .ok_or(Malformed::ChunkSize)?;
                    line.digit = true;
                }
            }
        }
        Chunk::DataEnd { cr } => match b {
            b'\r' if !*cr => *cr = true,
            b'\n' => *chunk = Chunk::Size(SizeLine::default()),
            _ => return Err(Malformed::ChunkEnd.into()),
        },
        Chunk::Trailers { line, total, cr } => {
            *total = total.saturating_add(1);
            if *total > TRAILERS_MAX {
                return Err(HttpError::TrailersTooLarge { max: TRAILERS_MAX });
            }
            if *cr && b != b'\n' {
                return Err(Malformed::Trailer.into());
            }
            match b {
                b'\n' if *line == 0 => return Ok(true),
                b'\n' => {
                    *line = 0;
                    *cr = false;
                }
                b'\r' => *cr = true,
                _ => *line = line.saturating_add(1),
            }
        }
        // Chunk data is consumed in bulk by `decode`.
        Chunk::Data(_) => {}
    }
    Ok(false)
}

/// A sans-IO, push-based HTTP/1.1 response parser over caller buffers.
///
/// `rx` holds the response head while it arrives (its length is the head size limit) and is the
/// staging area for chunked, read-until-close and discarded bodies. Bodies go to the
/// [`BodySink`].
///
/// Drive it with [`feed`](Self::feed) (bytes you already have), or with
/// [`read_buf`](Self::read_buf) + [`advance`](Self::advance) (read straight into the buffer it
/// picks). When the stream ends, call [`close`](Self::close). Once [`Progress::complete`],
/// take the [`Response`] with [`into_response`](Self::into_response).
///
/// Every call with input consumes some, completes, or fails: there is no state in which it waits
/// forever on bytes it already has. After an error, every further call returns the same error.
pub struct ResponseParser<'r, 'b> {
    rx: &'r mut [u8],
    /// Head bytes in `rx`.
    filled: usize,
    /// Head bytes in `rx` already scanned for the end of the head.
    scanned: usize,
    /// Length of the current head line so far (CR not counted).
    line_len: usize,
    /// A non-empty head line was seen (leading empty lines are skipped).
    seen_line: bool,
    head_request: bool,
    phase: Phase,
    framing: Framing,
    out: BodyOut<'b>,
    meta: Meta,
    received: u64,
}

impl<'r, 'b> ResponseParser<'r, 'b> {
    /// A parser for the response to a `method` request.
    #[must_use]
    pub fn new(rx: &'r mut [u8], body: BodySink<'b>, method: Method) -> Self {
        Self {
            rx,
            filled: 0,
            scanned: 0,
            line_len: 0,
            seen_line: false,
            head_request: method == Method::Head,
            phase: Phase::Head,
            framing: Framing::UntilClose,
            out: BodyOut {
                sink: body,
                stored: 0,
                len: 0,
            },
            meta: Meta::default(),
            received: 0,
        }
    }

    /// Whether the response is complete.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Where the next read from the stream should go. Not empty unless the response is complete
    /// or failed. Reads never overrun a `Content-Length` body; they may read past a chunked body
    /// (bytes after the response mark the connection for closing).
    pub fn read_buf(&mut self) -> &mut [u8] {
        let direct = self.direct_len().is_some();
        match self.phase {
            Phase::Head => self.rx.get_mut(self.filled..).unwrap_or_default(),
            Phase::Body => {
                let remaining = match self.framing {
                    Framing::Length(r) => r,
                    _ => u64::MAX,
                };
                if direct {
                    if let BodySink::Buffer(buf) = &mut self.out.sink {
                        let start = self.out.stored;
                        let end = start
                            .saturating_add(take_len(remaining, buf.len()))
                            .min(buf.len());
                        return buf.get_mut(start..end).unwrap_or_default();
                    }
                }
                let end = take_len(remaining, self.rx.len());
                self.rx.get_mut(..end).unwrap_or_default()
            }
            Phase::Done | Phase::Failed(_) => &mut [],
        }
    }

    /// The bytes left of a `Content-Length` body that is kept: such bodies are read straight
    /// into the body buffer.
    fn direct_len(&self) -> Option<u64> {
        match (&self.framing, &self.out.sink) {
            (Framing::Length(r), BodySink::Buffer(_)) => Some(*r),
            _ => None,
        }
    }

    /// Takes the first `n` bytes of [`read_buf`](Self::read_buf) as received (more than its
    /// length counts as its length).
    ///
    /// # Errors
    /// Any [`HttpError`] about the response; see the module docs for the limits.
    pub fn advance(&mut self, n: usize) -> Result<Progress, HttpError> {
        match self.advance_inner(n) {
            Ok(p) => {
                self.received = self.received.saturating_add(p.consumed as u64);
                if p.complete && p.consumed < n {
                    // Bytes after the response: we never pipeline, so the stream is out of step.
                    self.meta.close = true;
                }
                Ok(p)
            }
            Err(e) => {
                self.phase = Phase::Failed(e);
                Err(e)
            }
        }
    }

    fn advance_inner(&mut self, n: usize) -> Result<Progress, HttpError> {
        match self.phase {
            Phase::Failed(e) => Err(e),
            Phase::Done => Ok(Progress {
                consumed: 0,
                complete: true,
            }),
            Phase::Head => {
                let n = n.min(self.rx.len().saturating_sub(self.filled));
                self.filled = self.filled.saturating_add(n);
                Ok(match self.process_head()? {
                    Some(excess) => Progress {
                        consumed: n.saturating_sub(excess),
                        complete: true,
                    },
                    None => Progress {
                        consumed: n,
                        complete: false,
                    },
                })
            }
            Phase::Body => {
                if let Some(remaining) = self.direct_len() {
                    // The bytes were read straight into the body buffer.
                    let n = take_len(remaining, n);
                    let left = remaining.saturating_sub(n as u64);
                    self.framing = Framing::Length(left);
                    self.out.stored = self.out.stored.saturating_add(n);
                    self.out.len = self.out.len.saturating_add(n as u64);
                    if left == 0 {
                        self.phase = Phase::Done;
                    }
                    return Ok(Progress {
                        consumed: n,
                        complete: left == 0,
                    });
                }
                let n = n.min(self.rx.len());
                let input = self.rx.get(..n).unwrap_or_default();
                let (used, done) = decode(&mut self.framing, &mut self.out, input)?;
                if done {
                    self.phase = Phase::Done;
                }
                Ok(Progress {
                    consumed: used,
                    complete: done,
                })
            }
        }
    }

    /// Feeds bytes received from the stream, in any split. Consumes all of `input` unless the
    /// response completes first (the rest came after it, and the connection is marked for
    /// closing).
    ///
    /// # Errors
    /// Any [`HttpError`] about the response; see the module docs for the limits.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, HttpError> {
        let mut consumed = 0;
        loop {
            if let Phase::Failed(e) = self.phase {
                return Err(e);
            }
            let rest = input.get(consumed..).unwrap_or_default();
            if self.is_complete() {
                if !rest.is_empty() {
                    self.meta.close = true;
                }
                return Ok(Progress {
                    consumed,
                    complete: true,
                });
            }
            if rest.is_empty() {
                return Ok(Progress {
                    consumed,
                    complete: false,
                });
            }
            let buf = self.read_buf();
            let n = buf.len().min(rest.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            // Consumes at least one byte, completes, or fails (an empty `read_buf` in the head
            // phase is `HeadTooLarge`).
            let p = self.advance(n)?;
            consumed = consumed.saturating_add(p.consumed);
            if p.complete {
                if consumed < input.len() {
                    self.meta.close = true;
                }
                return Ok(Progress {
                    consumed,
                    complete: true,
                });
            }
        }
    }

    /// The stream ended (a read returned 0 bytes). Completes a body that runs to the end of the
    /// connection.
    ///
    /// # Errors
    /// [`HttpError::ConnectionClosed`] if the response was not complete otherwise.
    pub fn close(&mut self) -> Result<(), HttpError> {
        match self.phase {
            Phase::Done => Ok(()),
            Phase::Failed(e) => Err(e),
            Phase::Body if matches!(self.framing, Framing::UntilClose) => {
                self.phase = Phase::Done;
                Ok(())
            }
            Phase::Head | Phase::Body => {
                let e = HttpError::ConnectionClosed {
                    received: self.received,
                };
                self.phase = Phase::Failed(e);
                Err(e)
            }
        }
    }

    /// The response, once complete (`None` before).
    #[must_use]
    pub fn into_response(self) -> Option<Response<'b>> {
        if !self.is_complete() {
            return None;
        }
        let Self { out, meta, .. } = self;
        let body: &'b [u8] = match out.sink {
            BodySink::Buffer(buf) => {
                let buf: &'b [u8] = buf;
                buf.get(..out.stored).unwrap_or_default()
            }
            BodySink::Discard => &[],
        };
        Some(Response {
            status: meta.status,
            retry_after: meta.retry_after,
            etag: meta.etag,
            date: meta.date,
            content_encoding: meta.content_encoding,
            connection_close: meta.close,
            body,
            body_len: out.len,
        })
    }

    /// Looks for the end of the head in the newly filled bytes.
    fn scan_head(&mut self) -> Option<usize> {
        let new = self.rx.get(self.scanned..self.filled).unwrap_or_default();
        for (k, &b) in new.iter().enumerate() {
            match b {
                b'\n' if self.line_len == 0 && self.seen_line => {
                    let end = self.scanned.saturating_add(k).saturating_add(1);
                    self.scanned = end;
                    return Some(end);
                }
                b'\n' => {
                    self.seen_line |= self.line_len > 0;
                    self.line_len = 0;
                }
                b'\r' => {}
                _ => self.line_len = self.line_len.saturating_add(1),
            }
        }
        self.scanned = self.filled;
        None
    }

    /// Parses complete heads in `rx[..filled]`, skipping 1xx. Returns `Some(excess)` when the
    /// response completed (with `excess` bytes after it), `None` when more bytes are needed.
    fn process_head(&mut self) -> Result<Option<usize>, HttpError> {
        loop {
            let Some(end) = self.scan_head() else {
                if self.filled >= self.rx.len() {
                    return Err(HttpError::HeadTooLarge {
                        limit: self.rx.len(),
                    });
                }
                return Ok(None);
            };
            let head = parse_head(self.rx.get(..end).unwrap_or_default())?;
            if head.meta.status < 200 {
                // An interim response: drop it and parse what follows as a new head.
                if let Some(filled) = self.rx.get_mut(..self.filled) {
                    if end <= filled.len() {
                        filled.copy_within(end.., 0);
                    }
                }
                self.filled = self.filled.saturating_sub(end);
                self.scanned = 0;
                self.line_len = 0;
                self.seen_line = false;
                continue;
            }
            self.meta = head.meta;
            let no_body = self.head_request || matches!(self.meta.status, 204 | 304);
            let framing = if no_body {
                None
            } else if head.chunked {
                if head.content_length.is_some() {
                    // Both framings: chunked wins, and the connection may not be reused.
                    self.meta.close = true;
                }
                Some(Framing::Chunked(Chunk::Size(SizeLine::default())))
            } else {
                match head.content_length {
                    Some(0) => None,
                    Some(len) => {
                        self.out.check_room(len)?;
                        Some(Framing::Length(len))
                    }
                    None => {
                        self.meta.close = true;
                        Some(Framing::UntilClose)
                    }
                }
            };
            let surplus = self.rx.get(end..self.filled).unwrap_or_default();
            self.filled = 0;
            let Some(framing) = framing else {
                self.phase = Phase::Done;
                return Ok(Some(surplus.len()));
            };
            self.framing = framing;
            self.phase = Phase::Body;
            let (used, done) = decode(&mut self.framing, &mut self.out, surplus)?;
            if done {
                self.phase = Phase::Done;
                return Ok(Some(surplus.len().saturating_sub(used)));
            }
            return Ok(None);
        }
    }
}

impl fmt::Debug for ResponseParser<'_, '_> {
    /// Never shows `rx`: in [`request`] it held the request head, bearer secret included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseParser")
            .field("phase", &self.phase)
            .field("rx_len", &self.rx.len())
            .field("status", &self.meta.status)
            .field("body", &self.out.sink)
            .field("body_len", &self.out.len)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Head fields
// ---------------------------------------------------------------------------------------------

struct Head {
    meta: Meta,
    content_length: Option<u64>,
    chunked: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Head, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Malformed::LineEnding.into()),
        Err(e) => {
            return Err(match e {
                httparse::Error::TooManyHeaders => HttpError::TooManyHeaders { max: MAX_HEADERS },
                httparse::Error::HeaderName => Malformed::HeaderName.into(),
                httparse::Error::HeaderValue => Malformed::HeaderValue.into(),
                httparse::Error::NewLine => Malformed::LineEnding.into(),
                httparse::Error::Version => Malformed::Version.into(),
                _ => Malformed::StatusLine.into(),
            })
        }
    }
    let status = r.code.unwrap_or(0);
    if !(100..=599).contains(&status) {
        return Err(Malformed::StatusLine.into());
    }
    let minor = r.version.unwrap_or(1);
    let mut head = Head {
        meta: Meta {
            status,
            ..Meta::default()
        },
        content_length: None,
        chunked: false,
    };
    let (mut close_token, mut keep_alive_token) = (false, false);
    let mut encodings = 0usize;
    let mut chunked_count = 0usize;
    let mut te_seen = false;
    for h in r.headers.iter() {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case("content-length") {
            let len = parse_content_length(value).ok_or(Malformed::ContentLength)?;
            if head.content_length.is_some_and(|prev| prev != len) {
                return Err(Malformed::ContentLength.into());
            }
            head.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            for coding in list(value) {
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked_count = chunked_count.saturating_add(1);
                } else {
                    return Err(HttpError::UnsupportedTransferEncoding);
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list(value) {
                close_token |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            if head.meta.retry_after.is_none() {
                head.meta.retry_after = parse_retry_after(value);
            }
        } else if name.eq_ignore_ascii_case("etag") {
            if head.meta.etag.is_none() {
                head.meta.etag = parse_etag(value);
            }
        } else if name.eq_ignore_ascii_case("date") {
            if head.meta.date.is_none() {
                head.meta.date = parse_http_date(value);
            }
        } else if name.eq_ignore_ascii_case("content-encoding") {
            for coding in list(value) {
                encodings = encodings.saturating_add(1);
                head.meta.content_encoding = if encodings > 1 {
                    ContentEncoding::Other
                } else if coding.eq_ignore_ascii_case(b"gzip")
                    || coding.eq_ignore_ascii_case(b"x-gzip")
                {
                    ContentEncoding::Gzip
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    ContentEncoding::Identity
                } else {
                    ContentEncoding::Other
                };
            }
        }
    }
    if te_seen {
        if chunked_count != 1 {
            return Err(Malformed::TransferEncoding.into());
        }
        head.chunked = true;
    }
    head.meta.close = close_token || (minor == 0 && !keep_alive_token);
    Ok(head)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated list, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty())
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `Content-Length`: a number, or a list of identical numbers (`42, 42`).
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut len = None;
    for part in value.split(|&b| b == b',') {
        let n = parse_u64(trim(part))?;
        if len.is_some_and(|prev| prev != n) {
            return None;
        }
        len = Some(n);
    }
    len
}

fn parse_etag(value: &[u8]) -> Option<ETag> {
    if value.is_empty() || !value.is_ascii() {
        return None;
    }
    let s = core::str::from_utf8(value).ok()?;
    let mut tag = ETag::new();
    if tag.push_str(s).is_err() {
        ph_warn!(
            "ETag of {} bytes ignored (longer than {})",
            value.len(),
            ETAG_MAX
        );
        return None;
    }
    Some(tag)
}

/// Parses a `Retry-After` value: delta-seconds (saturating) or an HTTP-date. Anything else is
/// `None`.
#[must_use]
pub fn parse_retry_after(value: &[u8]) -> Option<RetryAfter> {
    let value = trim(value);
    if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
        let secs = value.iter().fold(0u64, |n, &b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(RetryAfter::Delay(Duration::from_secs(secs)));
    }
    parse_http_date(value).map(RetryAfter::At)
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const LONG_DAYS: [&[u8]; 7] = [
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
];

fn num(s: Option<&[u8]>) -> Option<u32> {
    let s = s?;
    if s.len() > 4 {
        return None;
    }
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

fn month(s: Option<&[u8]>) -> Option<u32> {
    let s = s?;
    let i = MONTHS.iter().position(|m| *m == s)?;
    u32::try_from(i).ok()?.checked_add(1)
}

fn lit(s: &[u8], at: usize, expected: &[u8]) -> Option<()> {
    (s.get(at..at.checked_add(expected.len())?)? == expected).then_some(())
}

/// `HH:MM:SS` at `at`.
fn time_of_day(s: &[u8], at: usize) -> Option<(u32, u32, u32)> {
    let h = num(s.get(at..at + 2))?;
    lit(s, at + 2, b":")?;
    let m = num(s.get(at + 3..at + 5))?;
    lit(s, at + 5, b":")?;
    let sec = num(s.get(at + 6..at + 8))?;
    Some((h, m, sec))
}

fn to_unix(y: u32, mo: u32, d: u32, (h, mi, s): (u32, u32, u32)) -> Option<UnixMillis> {
    let y = i64::from(y);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, mo, d)).ok()?;
    let secs = days * 86_400 + u64::from(h * 3600 + mi * 60 + s);
    let t = UnixMillis::from_secs(secs);
    (t <= UnixMillis::MAX).then_some(t)
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) in any of the three formats recipients must accept:
///
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (two-digit years 70-99 are 19xx, 00-69 20xx: the
///   parser has no clock to apply RFC 9110's "50 years in the future" rule)
/// - asctime: `Sun Nov  6 08:49:37 1994`
///
/// Names are case-sensitive, as the grammar says; the weekday is not checked against the date.
/// Dates before 1970 or after 9999, and anything malformed, are `None`.
#[must_use]
pub fn parse_http_date(value: &[u8]) -> Option<UnixMillis> {
    let s = trim(value);
    let short_day = s.get(..3).is_some_and(|d| DAYS.contains(&d));
    if short_day && s.len() == 29 && lit(s, 3, b", ").is_some() {
        // "Sun, 06 Nov 1994 08:49:37 GMT"
        lit(s, 7, b" ")?;
        lit(s, 11, b" ")?;
        lit(s, 16, b" ")?;
        lit(s, 25, b" GMT")?;
        let d = num(s.get(5..7))?;
        let mo = month(s.get(8..11))?;
        let y = num(s.get(12..16))?;
        return to_unix(y, mo, d, time_of_day(s, 17)?);
    }
    if short_day && s.len() == 24 && lit(s, 3, b" ").is_some() {
        // "Sun Nov  6 08:49:37 1994"
        let mo = month(s.get(4..7))?;
        lit(s, 7, b" ")?;
        let d = match s.get(8..10)? {
            [b' ', d] => num(Some(core::slice::from_ref(d)))?,
            dd => num(Some(dd))?,
        };
        lit(s, 10, b" ")?;
        lit(s, 19, b" ")?;
        let y = num(s.get(20..24))?;
        return to_unix(y, mo, d, time_of_day(s, 11)?);
    }
    // "Sunday, 06-Nov-94 08:49:37 GMT"
    let comma = s.iter().position(|&b| b == b',')?;
    if !LONG_DAYS.contains(&s.get(..comma)?) {
        return None;
    }
    let r = s.get(comma + 1..)?;
    if r.len() != 23 {
        return None;
    }
    lit(r, 0, b" ")?;
    lit(r, 3, b"-")?;
    lit(r, 7, b"-")?;
    lit(r, 10, b" ")?;
    lit(r, 19, b" GMT")?;
    let d = num(r.get(1..3))?;
    let mo = month(r.get(4..7))?;
    let yy = num(r.get(8..10))?;
    let y = if yy < 70 { 2000 + yy } else { 1900 + yy };
    to_unix(y, mo, d, time_of_day(r, 11)?)
}

// ---------------------------------------------------------------------------------------------
// Async request
// ---------------------------------------------------------------------------------------------

fn transport<E: embedded_io_async::Error>(e: E) -> HttpError {
    HttpError::Transport(e.kind())
}

async fn write_all<S: Write>(stream: &mut S, mut bytes: &[u8]) -> Result<(), HttpError> {
    while !bytes.is_empty() {
        let n = stream.write(bytes).await.map_err(transport)?;
        if n == 0 {
            return Err(HttpError::Transport(ErrorKind::WriteZero));
        }
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Sends one request on `stream` and reads its response.
///
/// Writes the head (rendered into `rx_buf`) and `body`, flushes, then reads into `rx_buf` (and
/// straight into the body buffer for `Content-Length` bodies) until the response is complete.
/// `rx_buf` must hold the request head and the response head; see the module docs for sizes.
/// There is no timeout: wrap the future in the driver's. One request at a time: never call this
/// again on the stream before the previous call returned.
///
/// # Errors
/// - [`HttpError::InvalidRequest`], [`HttpError::BufferTooSmall`] from [`write_request_head`];
///   nothing was written.
/// - [`HttpError::Transport`] with the stream's [`ErrorKind`] (`WriteZero` if a write accepted
///   nothing).
/// - [`HttpError::ConnectionClosed`] if the stream ended before the response was complete.
/// - Any response error of [`ResponseParser`].
///
/// After an error, close the connection.
pub async fn request<'b, S>(
    stream: &mut S,
    head: &RequestHead<'_>,
    body: &[u8],
    rx_buf: &mut [u8],
    body_sink: BodySink<'b>,
) -> Result<Response<'b>, HttpError>
where
    S: Read + Write,
{
    let n = write_request_head(head, body.len(), rx_buf)?;
    let sent = write_all(stream, rx_buf.get(..n).unwrap_or_default()).await;
    // The head may carry a bearer secret: do not leave it lying in the caller's buffer.
    if let Some(h) = rx_buf.get_mut(..n) {
        h.fill(0);
    }
    sent?;
    write_all(stream, body).await?;
    stream.flush().await.map_err(transport)?;

    let available = rx_buf.len();
    let mut parser = ResponseParser::new(rx_buf, body_sink, head.method);
    while !parser.is_complete() {
        let buf = parser.read_buf();
        if buf.is_empty() {
            // Unreachable by the parser's invariants; never read into nothing (that is EOF).
            return Err(HttpError::HeadTooLarge { limit: available });
        }
        let n = stream.read(buf).await.map_err(transport)?;
        if n == 0 {
            parser.close()?;
        } else {
            let _ = parser.advance(n)?;
        }
    }
    let mut response = parser
        .into_response()
        .ok_or(HttpError::ConnectionClosed { received: 0 })?;
    // We asked for `Connection: close`: the server will close even if it did not say so.
    response.connection_close |= !head.keep_alive;
    Ok(response)
}

#[cfg(test)]
mod tests {

    use super::*;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::format;
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    // ---- request heads ----------------------------------------------------------------------

    fn render(head: &RequestHead<'_>, body_len: usize) -> Result<String, HttpError> {
        let mut out = [0u8; 1024];
        let n = write_request_head(head, body_len, &mut out)?;
        Ok(String::from_utf8(out[..n].to_vec()).unwrap())
    }

    const SECRET: &str = "phx_s3cr3t_personal_key";

    #[test]
    fn batch_post_head_is_byte_exact() {
        let head = RequestHead::new(Method::Post, "us.i.posthog.com", crate::capture::BATCH_PATH)
            .headers(&crate::capture::BATCH_HEADERS);
        assert_eq!(
            render(&head, 42).unwrap(),
            format!(
                "POST /batch/ HTTP/1.1\r\nHost: us.i.posthog.com\r\nContent-Type: application/json\r\n\
                 User-Agent: {}\r\nContent-Length: 42\r\nConnection: keep-alive\r\n\r\n",
                crate::USER_AGENT
            )
        );
    }

    #[test]
    fn post_with_empty_body_sends_content_length_zero() {
        let head =
            RequestHead::new(Method::Post, "localhost:8000", "/flags/?v=2").keep_alive(false);
        assert_eq!(
            render(&head, 0).unwrap(),
            "POST /flags/?v=2 HTTP/1.1\r\nHost: localhost:8000\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn definitions_get_head_is_byte_exact() {
        let headers = [
            ("User-Agent", "posthog-embedded/0.1.0"),
            ("If-None-Match", "W/\"e1\""),
        ];
        let head = RequestHead::new(
            Method::Get,
            "eu.i.posthog.com",
            "/flags/definitions?token=phc_abc&send_cohorts",
        )
        .headers(&headers)
        .bearer(SECRET);
        assert_eq!(head.method(), Method::Get);
        assert_eq!(
            render(&head, 0).unwrap(),
            "GET /flags/definitions?token=phc_abc&send_cohorts HTTP/1.1\r\nHost: eu.i.posthog.com\r\n\
             User-Agent: posthog-embedded/0.1.0\r\nIf-None-Match: W/\"e1\"\r\n\
             Authorization: Bearer phx_s3cr3t_personal_key\r\nConnection: keep-alive\r\n\r\n"
        );
        // A GET with a body still frames it; HEAD without one has no Content-Length.
        assert!(render(&head, 3)
            .unwrap()
            .contains("\r\nContent-Length: 3\r\n"));
        let h = RequestHead::new(Method::Head, "h", "/");
        assert_eq!(
            render(&h, 0).unwrap(),
            "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn header_injection_is_rejected() {
        let inv = |f| Err(HttpError::InvalidRequest(f));
        let base = RequestHead::new(Method::Post, "h", "/batch/");
        let cases: [(&[(&str, &str)], RequestField); 8] = [
            (
                &[("X-A", "ok"), ("X-B", "v\r\nEvil: 1")],
                RequestField::HeaderValue { index: 1 },
            ),
            (
                &[("X-A", "v\nEvil: 1")],
                RequestField::HeaderValue { index: 0 },
            ),
            (&[("X-A", "nul\0")], RequestField::HeaderValue { index: 0 }),
            (
                &[("X-A\r\nEvil", "v")],
                RequestField::HeaderName { index: 0 },
            ),
            (&[("X A", "v")], RequestField::HeaderName { index: 0 }),
            (&[("", "v")], RequestField::HeaderName { index: 0 }),
            (
                &[("X-A", "1"), ("content-length", "5")],
                RequestField::ReservedHeader { index: 1 },
            ),
            (
                &[("Connection", "upgrade")],
                RequestField::ReservedHeader { index: 0 },
            ),
        ];
        for (headers, field) in cases {
            assert_eq!(render(&base.headers(headers), 0), inv(field), "{headers:?}");
        }
        // Tabs and UTF-8 are fine in values.
        assert!(render(&base.headers(&[("X-A", "a\tb é")]), 0).is_ok());
        let host = RequestHead::new(Method::Get, "h\r\nEvil: 1", "/");
        assert_eq!(render(&host, 0), inv(RequestField::Host));
        assert_eq!(
            render(&RequestHead::new(Method::Get, "", "/"), 0),
            inv(RequestField::Host)
        );
        for path in ["/a b", "/a\r\nEvil: 1", "relative", "", "/é"] {
            let head = RequestHead::new(Method::Get, "h", path);
            assert_eq!(render(&head, 0), inv(RequestField::Path), "{path:?}");
        }
        for secret in ["phx\r\nEvil: 1", "a b", ""] {
            let head = base.bearer(secret);
            let err = render(&head, 0).unwrap_err();
            assert_eq!(err, HttpError::InvalidRequest(RequestField::Bearer));
            assert!(!err.to_string().contains("phx"));
        }
    }

    #[test]
    fn buffer_too_small_reports_the_exact_size() {
        let headers = [("If-None-Match", "\"abc\"")];
        let head = RequestHead::new(Method::Get, "host", "/flags/definitions?token=t")
            .headers(&headers)
            .bearer(SECRET);
        let needed = render(&head, 0).unwrap().len();
        let mut out = vec![0u8; needed];
        for available in 0..needed {
            assert_eq!(
                write_request_head(&head, 0, &mut out[..available]),
                Err(HttpError::BufferTooSmall { needed, available })
            );
        }
        assert_eq!(write_request_head(&head, 0, &mut out), Ok(needed));
        let e = HttpError::BufferTooSmall {
            needed,
            available: 10,
        };
        assert_eq!(
            e.to_string(),
            format!("request head needs {needed} bytes, only 10 bytes available")
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_or_errors() {
        let headers = [("authorization", "Basic c2VjcmV0"), ("X-Ok", "visible")];
        let head = RequestHead::new(Method::Get, "h", "/")
            .headers(&headers)
            .bearer(SECRET);
        let dbg = format!("{head:?}");
        assert!(!dbg.contains(SECRET) && !dbg.contains("c2VjcmV0"), "{dbg}");
        assert!(dbg.contains("visible") && dbg.contains("<redacted>"));
        let mut small = [0u8; 8];
        let err = write_request_head(&head, 0, &mut small).unwrap_err();
        assert!(!format!("{err:?} {err}").contains(SECRET));
    }

    // ---- response harness -------------------------------------------------------------------

    #[derive(Debug, PartialEq)]
    struct Got {
        status: u16,
        retry_after: Option<RetryAfter>,
        etag: Option<String>,
        date: Option<UnixMillis>,
        encoding: ContentEncoding,
        close: bool,
        body: Vec<u8>,
        body_len: u64,
        consumed: usize,
    }

    #[derive(Clone, Copy)]
    struct Opts {
        rx: usize,
        body: Option<usize>,
        method: Method,
        eof: bool,
    }

    const OPTS: Opts = Opts {
        rx: 512,
        body: Some(256),
        method: Method::Get,
        eof: true,
    };

    fn finish(mut p: ResponseParser<'_, '_>, consumed: usize, eof: bool) -> Result<Got, HttpError> {
        if !p.is_complete() && eof {
            p.close()?;
        }
        let r = p.into_response().expect("complete");
        Ok(Got {
            status: r.status,
            retry_after: r.retry_after,
            etag: r.etag.map(|e| e.as_str().to_string()),
            date: r.date,
            encoding: r.content_encoding,
            close: r.connection_close,
            body: r.body.to_vec(),
            body_len: r.body_len,
            consumed,
        })
    }

    /// Feeds `input` cut into pieces at `cuts`.
    fn run_cuts(input: &[u8], cuts: &[usize], o: Opts) -> Result<Got, HttpError> {
        let mut rx = vec![0u8; o.rx];
        let mut body = vec![0u8; o.body.unwrap_or(0)];
        let sink = match o.body {
            Some(_) => BodySink::Buffer(&mut body),
            None => BodySink::Discard,
        };
        let mut p = ResponseParser::new(&mut rx, sink, o.method);
        let mut consumed = 0;
        let mut start = 0;
        for &end in cuts.iter().chain([input.len()].iter()) {
            let piece = &input[start..end];
            start = end;
            let done = p.is_complete();
            let prog = p.feed(piece)?;
            consumed += prog.consumed;
            if done {
                assert_eq!(
                    prog,
                    Progress {
                        consumed: 0,
                        complete: true
                    }
                );
            } else if !prog.complete {
                assert_eq!(
                    prog.consumed,
                    piece.len(),
                    "incomplete feeds consume everything"
                );
            }
        }
        finish(p, consumed, o.eof)
    }

    /// Reads through `read_buf`/`advance`, at most `step` bytes per read.
    fn run_reads(input: &[u8], step: usize, o: Opts) -> Result<Got, HttpError> {
        let mut rx = vec![0u8; o.rx];
        let mut body = vec![0u8; o.body.unwrap_or(0)];
        let sink = match o.body {
            Some(_) => BodySink::Buffer(&mut body),
            None => BodySink::Discard,
        };
        let mut p = ResponseParser::new(&mut rx, sink, o.method);
        let (mut pos, mut consumed) = (0, 0);
        while !p.is_complete() && pos < input.len() {
            let buf = p.read_buf();
            assert!(!buf.is_empty());
            let n = buf.len().min(step).min(input.len() - pos);
            buf[..n].copy_from_slice(&input[pos..pos + n]);
            pos += n;
            let prog = p.advance(n)?;
            consumed += prog.consumed;
        }
        finish(p, consumed, o.eof)
    }

    /// Parses `input` whole, at every split point, one byte at a time and through `read_buf`
    /// with several read sizes; all must agree. Returns the common result.
    fn parse_everywhere(input: &[u8], o: Opts) -> Result<Got, HttpError> {
        let whole = run_cuts(input, &[], o);
        for k in 0..=input.len() {
            assert_eq!(run_cuts(input, &[k], o), whole, "split at {k}");
        }
        let bytes: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run_cuts(input, &bytes, o), whole, "one byte at a time");
        for step in [1, 2, 3, 7, 64, usize::MAX] {
            assert_eq!(run_reads(input, step, o), whole, "reads of {step}");
        }
        whole
    }

    fn ok(status: u16, body: &[u8]) -> Got {
        Got {
            status,
            retry_after: None,
            etag: None,
            date: None,
            encoding: ContentEncoding::Identity,
            close: false,
            body: body.to_vec(),
            body_len: body.len() as u64,
            consumed: 0,
        }
    }

    fn check(input: &[u8], o: Opts, expected: Got) {
        let got = parse_everywhere(input, o).unwrap();
        assert_eq!(
            got,
            Got {
                consumed: got.consumed,
                ..expected
            }
        );
    }

    // ---- responses --------------------------------------------------------------------------

    #[test]
    fn content_length_body() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";
        let got = parse_everywhere(input, OPTS).unwrap();
        assert_eq!(got.consumed, input.len());
        assert_eq!(
            got,
            Got {
                consumed: input.len(),
                ..ok(200, b"{\"status\":\"ok\"}")
            }
        );
        // Identical repeated lengths are one length.
        check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\ncontent-length: 2\r\n\r\nhi",
            OPTS,
            ok(200, b"hi"),
        );
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            4;name=value\r\nWiki\r\n5 ; x=\"q\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
            000\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n";
        check(input, OPTS, ok(200, b"Wikipedia in\r\n\r\nchunks."));
        // No trailers, lower-case hex, bare LF line endings.
        check(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
            OPTS,
            ok(200, b"0123456789"),
        );
        check(
            b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
            OPTS,
            ok(200, b"abc"),
        );
        // Chunked wins over Content-Length, and the connection is not reused.
        let got = parse_everywhere(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
            OPTS,
        )
        .unwrap();
        assert_eq!((got.body.as_slice(), got.close), (&b"x"[..], true));
    }

    #[test]
    fn read_until_close() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, world";
        check(
            input,
            OPTS,
            Got {
                close: true,
                ..ok(200, b"hello, world")
            },
        );
        check(
            b"HTTP/1.1 500 Oops\r\n\r\n",
            OPTS,
            Got {
                close: true,
                ..ok(500, b"")
            },
        );
        // Without an end of stream it is not complete.
        let mut rx = [0u8; 128];
        let mut p = ResponseParser::new(&mut rx, BodySink::Discard, Method::Get);
        assert_eq!(
            p.feed(input).unwrap(),
            Progress {
                consumed: input.len(),
                complete: false
            }
        );
        p.close().unwrap();
        assert_eq!(p.into_response().unwrap().body_len, 12);
    }

    #[test]
    fn no_body_statuses_and_head() {
        check(b"HTTP/1.1 204 No Content\r\n\r\n", OPTS, ok(204, b""));
        let got = parse_everywhere(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\nContent-Length: 5000\r\n\r\n",
            OPTS,
        )
        .unwrap();
        assert_eq!(
            (got.status, got.etag.as_deref(), got.body_len),
            (304, Some("\"v2\""), 0)
        );
        let head = Opts {
            method: Method::Head,
            ..OPTS
        };
        check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
            head,
            ok(200, b""),
        );
        check(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            head,
            ok(200, b""),
        );
        check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            OPTS,
            ok(200, b""),
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        check(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            OPTS,
            ok(200, b"ok"),
        );
        check(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\nETag: \"x\"\r\n\r\n\
              HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            OPTS,
            ok(201, b""),
        );
    }

    const SUNDAY_1994: UnixMillis = UnixMillis::from_secs(784_111_777);

    #[test]
    fn retry_after_seconds_and_dates() {
        let with = |v: &str| {
            let input = format!(
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {v}\r\nContent-Length: 0\r\n\r\n"
            );
            parse_everywhere(input.as_bytes(), OPTS)
                .unwrap()
                .retry_after
        };
        assert_eq!(
            with("120"),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(with("0"), Some(RetryAfter::Delay(Duration::ZERO)));
        assert_eq!(
            with("99999999999999999999999"),
            Some(RetryAfter::Delay(Duration::from_millis(u64::MAX)))
        );
        let at = Some(RetryAfter::At(SUNDAY_1994));
        assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), at);
        assert_eq!(with("Sunday, 06-Nov-94 08:49:37 GMT"), at);
        assert_eq!(with("Sun Nov  6 08:49:37 1994"), at);
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 2026 00:00:00 GMT",
        ] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
        assert_eq!(
            RetryAfter::At(SUNDAY_1994).delay(Some(UnixMillis::from_secs(784_111_700))),
            Some(Duration::from_secs(77))
        );
        assert_eq!(RetryAfter::At(SUNDAY_1994).delay(None), None);
        assert_eq!(
            RetryAfter::At(SUNDAY_1994).delay(Some(UnixMillis::from_secs(784_111_800))),
            Some(Duration::ZERO)
        );
        assert_eq!(
            RetryAfter::Delay(Duration::from_secs(3)).delay(None),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn http_dates() {
        let p = |s: &str| parse_http_date(s.as_bytes());
        assert_eq!(
            p("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UnixMillis::from_millis(0))
        );
        assert_eq!(
            p("Fri, 02 Jan 2026 03:04:05 GMT"),
            Some(UnixMillis::from_millis(1_767_323_045_000))
        );
        assert_eq!(
            p("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(UnixMillis::from_secs(1_709_251_199))
        );
        assert_eq!(
            p("Friday, 02-Jan-26 03:04:05 GMT"),
            p("Fri, 02 Jan 2026 03:04:05 GMT")
        );
        assert_eq!(
            p("Thursday, 01-Jan-70 00:00:00 GMT"),
            Some(UnixMillis::from_millis(0))
        );
        assert_eq!(
            p("Fri Jan  2 03:04:05 2026"),
            p("Fri, 02 Jan 2026 03:04:05 GMT")
        );
        assert_eq!(
            p("Fri Jan 02 03:04:05 2026"),
            p("Fri, 02 Jan 2026 03:04:05 GMT")
        );
        assert_eq!(
            p("Fri Jan 12 03:04:05 2026"),
            p("Mon, 12 Jan 2026 03:04:05 GMT")
        );
        assert_eq!(p(" Sun, 06 Nov 1994 08:49:37 GMT "), Some(SUNDAY_1994));
        for bad in [
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2023 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMTX",
            "Sun, 06 Nov 1994 08:49:3a GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Funday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 GMT",
            "",
            ",",
            "Sun, é",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn etag_date_encoding_and_connection() {
        let got = parse_everywhere(
            b"HTTP/1.1 200 OK\r\nETag:  W/\"abc-123\" \r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Content-Encoding: gzip\r\nConnection: Close\r\nContent-Length: 1\r\n\r\nx",
            OPTS,
        )
        .unwrap();
        assert_eq!(got.etag.as_deref(), Some("W/\"abc-123\""));
        assert_eq!(got.date, Some(SUNDAY_1994));
        assert_eq!(got.encoding, ContentEncoding::Gzip);
        assert!(got.close);
        let enc = |v: &str| {
            let input =
                format!("HTTP/1.1 200 OK\r\nContent-Encoding: {v}\r\nContent-Length: 0\r\n\r\n");
            run_cuts(input.as_bytes(), &[], OPTS).unwrap().encoding
        };
        assert_eq!(enc("identity"), ContentEncoding::Identity);
        assert_eq!(enc("x-gzip"), ContentEncoding::Gzip);
        assert_eq!(enc("br"), ContentEncoding::Other);
        assert_eq!(enc("gzip, br"), ContentEncoding::Other);
        // An ETag longer than ETAG_MAX (or not ASCII) is ignored, not truncated.
        let long = format!("\"{}\"", "a".repeat(ETAG_MAX - 2));
        let longer = format!("\"{}\"", "a".repeat(ETAG_MAX - 1));
        let etag = |v: &str| {
            let input = format!("HTTP/1.1 200 OK\r\nETag: {v}\r\nContent-Length: 0\r\n\r\n");
            run_cuts(input.as_bytes(), &[], OPTS).unwrap().etag
        };
        assert_eq!(etag(&long), Some(long.clone()));
        assert_eq!(etag(&longer), None);
        assert_eq!(etag("\"é\""), None);
        // Keep-alive tokens.
        let close = |input: &[u8]| parse_everywhere(input, OPTS).unwrap().close;
        assert!(!close(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(close(
            b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n"
        ));
    }

    #[test]
    fn http_1_0_defaults_to_close() {
        check(
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            OPTS,
            Got {
                close: true,
                ..ok(200, b"ok")
            },
        );
        check(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
            OPTS,
            ok(200, b"ok"),
        );
        check(
            b"HTTP/1.0 200 OK\r\n\r\nall of it",
            OPTS,
            Got {
                close: true,
                ..ok(200, b"all of it")
            },
        );
    }

    #[test]
    fn discard_mode_frames_the_body() {
        let discard = Opts {
            body: None,
            rx: 64,
            ..OPTS
        };
        let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        input.extend(core::iter::repeat_n(b'x', 1000));
        let got = parse_everywhere(&input, discard).unwrap();
        assert_eq!((got.body.len(), got.body_len, got.close), (0, 1000, false));
        let got = parse_everywhere(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            discard,
        )
        .unwrap();
        assert_eq!((got.body.len(), got.body_len), (0, 5));
    }

    #[test]
    fn bytes_after_the_response_mark_the_connection_for_closing() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.1 204 No Content\r\n\r\nX",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
        ] {
            let got = run_cuts(input, &[], OPTS).unwrap();
            assert!(got.close);
            assert!(got.consumed < input.len());
            // Fed separately after completion, they are refused too.
            let end = got.consumed;
            let split = run_cuts(input, &[end], OPTS).unwrap();
            assert_eq!((split.consumed, split.close), (end, true));
            let exact = run_cuts(&input[..end], &[], OPTS).unwrap();
            assert!(!exact.close);
        }
    }

    // ---- malformed input --------------------------------------------------------------------

    fn err(input: &[u8], o: Opts) -> HttpError {
        parse_everywhere(input, o).unwrap_err()
    }

    #[test]
    fn bad_status_lines() {
        let m = |x| HttpError::Malformed(x);
        assert_eq!(err(b"HTP/1.1 200 OK\r\n\r\n", OPTS), m(Malformed::Version));
        assert_eq!(err(b"HTTP/2 200 OK\r\n\r\n", OPTS), m(Malformed::Version));
        assert_eq!(
            err(b"HTTP/1.1 20 OK\r\n\r\n", OPTS),
            m(Malformed::StatusLine)
        );
        assert_eq!(
            err(b"HTTP/1.1 abc OK\r\n\r\n", OPTS),
            m(Malformed::StatusLine)
        );
        assert_eq!(
            err(b"HTTP/1.1 099 Low\r\n\r\n", OPTS),
            m(Malformed::StatusLine)
        );
        assert_eq!(
            err(b"HTTP/1.1 600 High\r\n\r\n", OPTS),
            m(Malformed::StatusLine)
        );
        // Leading empty lines are skipped: this is no head at all.
        assert_eq!(
            err(b"\r\n\r\n", OPTS),
            HttpError::ConnectionClosed { received: 4 }
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", OPTS),
            m(Malformed::HeaderName)
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", OPTS),
            m(Malformed::HeaderValue)
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", OPTS),
            m(Malformed::HeaderName)
        );
        // A leading empty line is tolerated.
        check(
            b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            OPTS,
            ok(200, b""),
        );
    }

    #[test]
    fn overlong_heads_and_too_many_headers() {
        let small = Opts { rx: 64, ..OPTS };
        let input = format!("HTTP/1.1 200 OK\r\nX-Long: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(
            err(input.as_bytes(), small),
            HttpError::HeadTooLarge { limit: 64 }
        );
        // A head of exactly rx bytes fits.
        let exact = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\nContent-Length: 0\r\n\r\n",
            "a".repeat(21)
        );
        assert_eq!(exact.len(), 64);
        assert_eq!(
            parse_everywhere(exact.as_bytes(), small).unwrap().status,
            200
        );
        // Endless blank lines or interim responses still hit the limit or complete.
        assert_eq!(
            err(&[b'\n'; 100], small),
            HttpError::HeadTooLarge { limit: 64 }
        );
        let mut headers = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..MAX_HEADERS {
            headers.push_str(&format!("X-{i}: v\r\n"));
        }
        let fits = format!("{headers}\r\n");
        assert_eq!(
            run_cuts(fits.as_bytes(), &[], Opts { rx: 1024, ..OPTS })
                .unwrap()
                .status,
            200
        );
        let over = format!("{headers}X-Last: v\r\n\r\n");
        assert_eq!(
            err(over.as_bytes(), Opts { rx: 1024, ..OPTS }),
            HttpError::TooManyHeaders { max: MAX_HEADERS }
        );
        // An empty receive buffer cannot hold any head.
        let mut rx = [0u8; 0];
        let mut p = ResponseParser::new(&mut rx, BodySink::Discard, Method::Get);
        assert_eq!(p.feed(b"H"), Err(HttpError::HeadTooLarge { limit: 0 }));
    }

    #[test]
    fn bad_content_lengths_and_transfer_encodings() {
        let m = HttpError::Malformed(Malformed::ContentLength);
        for cl in [
            "abc",
            "-1",
            "1.0",
            "",
            "18446744073709551616",
            "99999999999999999999",
            "5, 6",
            "+5",
        ] {
            let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(err(input.as_bytes(), OPTS), m, "{cl:?}");
        }
        assert_eq!(
            err(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                OPTS
            ),
            m
        );
        // u64::MAX itself is a valid length, just far too large for the buffer.
        assert_eq!(
            err(
                b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
                OPTS
            ),
            HttpError::BodyTooLarge {
                limit: 256,
                at_least: u64::MAX
            }
        );
        assert_eq!(
            err(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                OPTS
            ),
            HttpError::UnsupportedTransferEncoding
        );
        for te in ["chunked, chunked", "", " , "] {
            let input = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(
                err(input.as_bytes(), OPTS),
                HttpError::Malformed(Malformed::TransferEncoding),
                "{te:?}"
            );
        }
    }

    fn chunked(body: &str) -> Vec<u8> {
        format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn bad_chunks() {
        let size = HttpError::Malformed(Malformed::ChunkSize);
        for bad in [
            "zz\r\n",
            "\r\n",
            " 5\r\n",
            "5 5\r\n",
            "5\rX",
            ";x\r\n",
            "-1\r\n",
            "5;\x01\r\n",
        ] {
            assert_eq!(err(&chunked(bad), OPTS), size, "{bad:?}");
        }
        // 17 hex digits overflow u64.
        assert_eq!(err(&chunked("1ffffffffffffffff\r\n"), OPTS), size);
        // Fits in u64 but not in the buffer: refused before any data.
        assert_eq!(
            err(&chunked("fffffffffffffff0\r\n"), OPTS),
            HttpError::BodyTooLarge {
                limit: 256,
                at_least: 0xffff_ffff_ffff_fff0
            }
        );
        // Leading zeros are fine.
        check(
            &chunked("0000000000000000000001\r\nx\r\n0\r\n\r\n"),
            OPTS,
            ok(200, b"x"),
        );
        assert_eq!(
            err(&chunked("3\r\nabcX\r\n"), OPTS),
            HttpError::Malformed(Malformed::ChunkEnd)
        );
        assert_eq!(
            err(&chunked("3\r\nabc\r\r\n"), OPTS),
            HttpError::Malformed(Malformed::ChunkEnd)
        );
        let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(CHUNK_LINE_MAX));
        assert_eq!(
            err(&chunked(&long), OPTS),
            HttpError::ChunkLineTooLong {
                max: CHUNK_LINE_MAX
            }
        );
        let fits = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(CHUNK_LINE_MAX - 4));
        check(&chunked(&fits), OPTS, ok(200, b"hello"));
        let trailers = format!("0\r\nX: {}\r\n\r\n", "t".repeat(TRAILERS_MAX));
        assert_eq!(
            err(&chunked(&trailers), OPTS),
            HttpError::TrailersTooLarge { max: TRAILERS_MAX }
        );
        assert_eq!(
            err(&chunked("0\r\nX: 1\rY\r\n\r\n"), OPTS),
            HttpError::Malformed(Malformed::Trailer)
        );
    }

    #[test]
    fn bodies_larger_than_the_buffer() {
        let small = Opts {
            body: Some(4),
            ..OPTS
        };
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", small),
            HttpError::BodyTooLarge {
                limit: 4,
                at_least: 5
            }
        );
        check(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell",
            small,
            ok(200, b"hell"),
        );
        assert_eq!(
            err(&chunked("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), small),
            HttpError::BodyTooLarge {
                limit: 4,
                at_least: 5
            }
        );
        check(
            &chunked("3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n"),
            small,
            ok(200, b"abcd"),
        );
        let e = run_cuts(b"HTTP/1.1 200 OK\r\n\r\nhello", &[], small).unwrap_err();
        assert!(matches!(e, HttpError::BodyTooLarge { limit: 4, at_least } if at_least >= 5));
        assert_eq!(
            e.to_string(),
            format!(
                "response body needs at least {} bytes, the buffer holds 4",
                match e {
                    HttpError::BodyTooLarge { at_least, .. } => at_least,
                    _ => 0,
                }
            )
        );
    }

    #[test]
    fn truncated_responses_are_connection_closed() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for end in 0..full.len() {
            assert_eq!(
                run_cuts(&full[..end], &[], OPTS),
                Err(HttpError::ConnectionClosed {
                    received: end as u64
                }),
                "cut at {end}"
            );
        }
        let c = chunked("5\r\nhello\r\n0\r\n\r\n");
        for end in 0..c.len() {
            assert!(
                matches!(
                    run_cuts(&c[..end], &[], OPTS),
                    Err(HttpError::ConnectionClosed { .. })
                ),
                "cut at {end}"
            );
        }
        assert_eq!(
            HttpError::ConnectionClosed { received: 0 }.to_string(),
            "connection closed before any response byte"
        );
    }

    #[test]
    fn errors_are_sticky() {
        let mut rx = [0u8; 64];
        let mut p = ResponseParser::new(&mut rx, BodySink::Discard, Method::Get);
        let e = p.feed(b"HTTP/1.1 abc\r\n\r\n").unwrap_err();
        assert_eq!(p.feed(b"more"), Err(e));
        assert_eq!(p.advance(1), Err(e));
        assert_eq!(p.close(), Err(e));
        assert!(p.read_buf().is_empty());
        assert!(p.into_response().is_none());
    }

    /// Every truncation and many one-byte mutations of every fixture: never a panic, never a
    /// stall (each feed consumes, completes or fails).
    #[test]
    fn mutations_never_panic_or_stall() {
        let fixtures: [&[u8]; 5] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e\"\r\nRetry-After: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody",
            b"HTTP/1.1 429 X\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nDate: Sunday, 06-Nov-94 08:49:37 GMT\r\n\r\n",
        ];
        let subs = [
            0u8, b'\r', b'\n', b' ', b':', b';', b'0', b'f', b'z', 0x80, 0xff,
        ];
        for f in fixtures {
            for i in 0..f.len() {
                for &s in &subs {
                    let mut m = f.to_vec();
                    m[i] = s;
                    for o in [
                        OPTS,
                        Opts {
                            rx: 48,
                            body: Some(3),
                            ..OPTS
                        },
                        Opts { body: None, ..OPTS },
                    ] {
                        let _ = run_cuts(&m, &[], o);
                        let _ = run_reads(&m, 3, o);
                    }
                }
            }
        }
    }

    // ---- async request over a mock stream ---------------------------------------------------

    /// Polls `f` to completion with a no-op waker; the mock stream never returns `Pending`.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..16 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the mock stream never pends");
    }

    /// A scripted stream: reads return `input` in pieces of at most `piece` bytes, then EOF (or
    /// `read_err`); writes accept at most `write_piece` bytes per call.
    struct Mock {
        input: Vec<u8>,
        pos: usize,
        piece: usize,
        written: Vec<u8>,
        write_piece: usize,
        flushed: bool,
        reads: usize,
        read_err: Option<ErrorKind>,
        write_err: Option<ErrorKind>,
    }

    impl Mock {
        fn new(input: &[u8], piece: usize) -> Self {
            Self {
                input: input.to_vec(),
                pos: 0,
                piece,
                written: Vec::new(),
                write_piece: 7,
                flushed: false,
                reads: 0,
                read_err: None,
                write_err: None,
            }
        }
    }

    impl embedded_io_async::ErrorType for Mock {
        type Error = ErrorKind;
    }

    impl Read for Mock {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            assert!(!buf.is_empty(), "never read into an empty buffer");
            assert!(self.flushed, "flush before reading");
            self.reads += 1;
            let rest = &self.input[self.pos..];
            if rest.is_empty() {
                return self.read_err.map_or(Ok(0), Err);
            }
            let n = rest.len().min(buf.len()).min(self.piece);
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Mock {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            if let Some(e) = self.write_err {
                return Err(e);
            }
            let n = buf.len().min(self.write_piece);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        async fn flush(&mut self) -> Result<(), ErrorKind> {
            self.flushed = true;
            Ok(())
        }
    }

    const BATCH_BODY: &[u8] = br#"{"api_key":"phc_x","batch":[]}"#;

    fn batch_head() -> RequestHead<'static> {
        RequestHead::new(Method::Post, "127.0.0.1:8000", "/batch/")
            .headers(&crate::capture::BATCH_HEADERS)
    }

    #[test]
    fn request_writes_head_and_body_then_reads_the_response() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"status\":1}\n";
        for piece in [1, 2, 5, 64, 4096] {
            let mut s = Mock::new(response, piece);
            let mut rx = [0u8; 256];
            let mut body = [0u8; 64];
            let r = block_on(request(
                &mut s,
                &batch_head(),
                BATCH_BODY,
                &mut rx,
                BodySink::Buffer(&mut body),
            ))
            .unwrap();
            assert_eq!(
                (r.status, r.body, r.connection_close),
                (200, &b"{\"status\":1}\n"[..], false)
            );
            assert!(r.is_success());
            let mut expected = render(&batch_head(), BATCH_BODY.len())
                .unwrap()
                .into_bytes();
            expected.extend_from_slice(BATCH_BODY);
            assert_eq!(s.written, expected);
            assert_eq!(s.pos, response.len(), "every byte read, none past the body");
        }
    }

    #[test]
    fn request_reads_content_length_bodies_straight_into_the_body_buffer() {
        // With whole-buffer reads: one read for the head (and the body bytes with it), and the
        // rest of the body lands in the body buffer in as few reads as the stream allows.
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n".to_vec();
        response.extend(core::iter::repeat_n(b'b', 300));
        let mut s = Mock::new(&response, 100);
        let mut rx = [0u8; 160];
        let mut body = [0u8; 300];
        let r = block_on(request(
            &mut s,
            &batch_head(),
            b"",
            &mut rx,
            BodySink::Buffer(&mut body),
        ))
        .unwrap();
        assert_eq!(r.body.len(), 300);
        assert_eq!(s.reads, 4);
    }

    #[test]
    fn request_discards_chunked_bodies_and_skips_100_continue() {
        let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let mut s = Mock::new(response, 3);
        let mut rx = [0u8; 256];
        let r = block_on(request(
            &mut s,
            &batch_head(),
            BATCH_BODY,
            &mut rx,
            BodySink::Discard,
        ))
        .unwrap();
        assert_eq!(
            (r.status, r.body, r.body_len, r.connection_close),
            (200, &b""[..], 5, true)
        );
    }

    #[test]
    fn request_reads_until_close() {
        // We asked to close: the response says so even if the server did not.
        let mut s = Mock::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
        let head = batch_head().keep_alive(false);
        let r = block_on(request(
            &mut s,
            &head,
            b"",
            &mut [0u8; 256],
            BodySink::Discard,
        ))
        .unwrap();
        assert!(r.connection_close);
        let mut s = Mock::new(
            b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 30\r\n\r\nbusy",
            4,
        );
        let mut rx = [0u8; 256];
        let mut body = [0u8; 16];
        let r = block_on(request(
            &mut s,
            &batch_head(),
            BATCH_BODY,
            &mut rx,
            BodySink::Buffer(&mut body),
        ))
        .unwrap();
        assert_eq!(
            (r.status, r.body, r.connection_close),
            (503, &b"busy"[..], true)
        );
        assert_eq!(
            r.retry_after,
            Some(RetryAfter::Delay(Duration::from_secs(30)))
        );
    }

    #[test]
    fn request_get_with_etag_and_304() {
        let etag = "\"abc\"";
        let headers = [("User-Agent", crate::USER_AGENT), ("If-None-Match", etag)];
        let head = RequestHead::new(
            Method::Get,
            "h",
            "/flags/definitions?token=phc&send_cohorts",
        )
        .headers(&headers)
        .bearer(SECRET);
        let mut s = Mock::new(b"HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n", 8);
        let mut rx = [0u8; 256];
        let mut body = [0u8; 16];
        let r = block_on(request(
            &mut s,
            &head,
            b"",
            &mut rx,
            BodySink::Buffer(&mut body),
        ))
        .unwrap();
        assert_eq!((r.status, r.etag.as_deref()), (304, Some(etag)));
        let sent = String::from_utf8(s.written.clone()).unwrap();
        assert!(sent.contains("\r\nAuthorization: Bearer phx_s3cr3t_personal_key\r\n"));
        assert!(sent.contains("\r\nIf-None-Match: \"abc\"\r\n"));
        assert!(!sent.contains("Content-Length"));
        // The secret does not stay in the caller's buffer.
        assert!(!rx.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }

    #[test]
    fn request_errors() {
        let run = |s: &mut Mock, rx: &mut [u8]| {
            block_on(request(s, &batch_head(), BATCH_BODY, rx, BodySink::Discard))
        };
        // The server closed an idle keep-alive connection: nothing received.
        let mut s = Mock::new(b"", 8);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::ConnectionClosed { received: 0 })
        );
        // EOF mid-body.
        let truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        let mut s = Mock::new(truncated, 8);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::ConnectionClosed {
                received: truncated.len() as u64
            })
        );
        // Transport errors carry the kind.
        let mut s = Mock::new(b"HTTP/1.1 200", 8);
        s.read_err = Some(ErrorKind::ConnectionReset);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::Transport(ErrorKind::ConnectionReset))
        );
        let mut s = Mock::new(b"", 8);
        s.write_err = Some(ErrorKind::BrokenPipe);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::Transport(ErrorKind::BrokenPipe))
        );
        let mut s = Mock::new(b"", 8);
        s.write_piece = 0;
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::Transport(ErrorKind::WriteZero))
        );
        // The request head does not fit: nothing is written.
        let mut s = Mock::new(b"", 8);
        let needed = render(&batch_head(), BATCH_BODY.len()).unwrap().len();
        assert_eq!(
            run(&mut s, &mut [0u8; 32]),
            Err(HttpError::BufferTooSmall {
                needed,
                available: 32
            })
        );
        assert!(s.written.is_empty());
        // The response head does not fit in rx_buf.
        let mut s = Mock::new(b"HTTP/1.1 200 OK\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 8);
        assert_eq!(
            run(&mut s, &mut [0u8; 160]),
            Err(HttpError::HeadTooLarge { limit: 160 })
        );
        let mut s = Mock::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 8);
        let mut body = [0u8; 4];
        assert_eq!(
            block_on(request(
                &mut s,
                &batch_head(),
                BATCH_BODY,
                &mut [0u8; 256],
                BodySink::Buffer(&mut body)
            )),
            Err(HttpError::BodyTooLarge {
                limit: 4,
                at_least: 10
            })
        );
    }

    #[test]
    fn debug_output_hides_buffers() {
        let mut rx = *b"Authorization: Bearer phx_s3cr3t_personal_key";
        let mut body = [0u8; 4];
        let p = ResponseParser::new(&mut rx, BodySink::Buffer(&mut body), Method::Get);
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("phx") && dbg.contains("Buffer(4 bytes)"),
            "{dbg}"
        );
    }
}
