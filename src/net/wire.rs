//! What a client hands a transport and what comes back, as plain data: the request
//! ([`Transmit`], its [`Header`]s and [`RequestKind`]), the answer ([`ResponseInfo`]) and why
//! there was none ([`TransportError`]).

use core::fmt;

use super::http::{Method, RetryAfter};
use crate::capture::SeqRange;

/// Longest request path the client builds (`/flags/definitions?token=…&send_cohorts`).
pub const MAX_PATH: usize = 192;

/// What a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestKind {
    /// A `/batch/` of events.
    Batch {
        /// Records carried.
        records: SeqRange,
    },
    /// A definitions poll.
    Definitions,
    /// A remote flag evaluation (`POST /flags/?v=2`), built by a driver from
    /// [`Client::flags_request`](crate::client::Client::flags_request); never returned by `poll_transmit`.
    Flags,
}

/// Longest secret (the `Authorization` bearer of a definitions poll) a [`Transmit`] carries.
pub const MAX_BEARER: usize = 128;

/// Longest `ETag` kept for definitions polling; a longer one is not sent back.
pub const MAX_ETAG: usize = 128;

/// One request to send. Its head is owned, so a driver can take it out of the client's lock
/// and send it after releasing the lock; only the body borrows the driver's buffer.
pub struct Transmit<'b> {
    /// What it is for.
    pub kind: RequestKind,
    /// The method.
    pub method: Method,
    /// Path and query, to append to the configured host.
    pub path: heapless::String<MAX_PATH>,
    /// The body (empty for `GET`).
    pub body: &'b [u8],
    authorization: Option<heapless::String<MAX_BEARER>>,
    if_none_match: Option<heapless::String<MAX_ETAG>>,
}

impl<'b> Transmit<'b> {
    /// A request from its parts (for hand-written drivers and tests). `authorization` is the
    /// secret key of a definitions poll; `if_none_match` its `ETag`. A value longer than
    /// [`MAX_BEARER`] / [`MAX_ETAG`] bytes is left out.
    #[must_use]
    pub fn from_parts(
        kind: RequestKind,
        method: Method,
        path: heapless::String<MAX_PATH>,
        body: &'b [u8],
        authorization: Option<&str>,
        if_none_match: Option<&str>,
    ) -> Self {
        Self {
            kind,
            method,
            path,
            body,
            authorization: authorization.and_then(|s| heapless::String::try_from(s).ok()),
            if_none_match: if_none_match.and_then(|s| heapless::String::try_from(s).ok()),
        }
    }

    /// Every header to send besides `Host`, `Content-Length` and `Connection` (the HTTP layer's).
    /// The `Authorization` value carries the secret key: never log it.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, Header<'_>)> + '_ {
        let json = (self.method == Method::Post)
            .then_some(("Content-Type", Header::Plain("application/json")));
        let ua = Some(("User-Agent", Header::Plain(crate::USER_AGENT)));
        let auth = self
            .authorization
            .as_deref()
            .map(|s| ("Authorization", Header::Bearer(s)));
        let etag = self
            .if_none_match
            .as_deref()
            .map(|e| ("If-None-Match", Header::Plain(e)));
        json.into_iter().chain(ua).chain(auth).chain(etag)
    }
}

impl fmt::Debug for Transmit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transmit")
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A header value. [`Header::Bearer`] holds a secret: write it as `Bearer <secret>` on the wire
/// and nowhere else (its `Debug` is redacted).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Header<'a> {
    /// Sent as is.
    Plain(&'a str),
    /// `Bearer <secret>`.
    Bearer(&'a str),
}

impl Header<'_> {
    /// Writes the value (`Bearer ` prefix included) through `f`, piece by piece.
    pub fn write<E>(&self, mut f: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        match self {
            Self::Plain(v) => f(v),
            Self::Bearer(s) => {
                f("Bearer ")?;
                f(s)
            }
        }
    }
}

impl fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(v) => write!(f, "{v:?}"),
            Self::Bearer(_) => f.write_str("\"Bearer <redacted>\""),
        }
    }
}

/// What the server answered, as far as the client needs to know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseInfo<'r> {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After`, if present and valid.
    pub retry_after: Option<RetryAfter>,
    /// `ETag`, if present.
    pub etag: Option<&'r str>,
}

/// Why a request got no HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TransportError {
    /// The driver's timeout expired.
    Timeout,
    /// Could not connect (DNS, refused, no route).
    Connect,
    /// The connection broke while sending or receiving.
    Io,
    /// The response could not be parsed, or was larger than the driver's buffers.
    BadResponse,
    /// TLS failed.
    Tls,
    /// The server refused the connection (nothing listens there). A `/flags` request is not
    /// retried after it, as in posthog-python and posthog-node; batches treat it as
    /// [`Connect`](Self::Connect).
    Refused,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Io => "connection broken",
            Self::BadResponse => "malformed or oversize response",
            Self::Tls => "TLS failure",
            Self::Refused => "connection refused",
        })
    }
}

impl core::error::Error for TransportError {}
