//! The traits users implement to plug in a network.
//!
//! - [`Transport`]: an HTTP-level client the application already has (ESP-IDF's HTTP client,
//!   reqwest, a modem's HTTP AT commands, ...): it sends one [`Transmit`] and returns the
//!   status, `Retry-After`, `ETag` and body.
//! - [`Connect`]: a byte stream the crate's HTTP/1.1 client runs over
//!   ([`StreamTransport`](crate::adapters::stream::StreamTransport)): embassy-net `TcpSocket`, a
//!   UART modem in transparent mode, a modem's own TLS socket.
//! - [`Dial`]: a stream whose connections need state borrowed from it (a TLS session per
//!   connection: [`TlsDialer`](crate::tls::TlsDialer) with the `tls` feature).
//!
//! [`send_due`](crate::adapters::send_due) drives a client with a [`Transport`]; the drivers
//! wrap it with their runtime's timers and timeouts.

use super::http::{ETag, RetryAfter};
use super::{ResponseInfo, Transmit, TransportError};

/// What came back for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, parsed.
    pub retry_after: Option<RetryAfter>,
    /// `ETag`, if any (and short enough).
    pub etag: Option<ETag>,
    /// Length of the body written into the caller's body buffer (0 when it was discarded).
    pub body_len: usize,
}

impl Reply {
    /// The view [`Client::handle_response`](crate::client::Client::handle_response) takes.
    #[must_use]
    pub fn info(&self) -> ResponseInfo<'_> {
        ResponseInfo {
            status: self.status,
            retry_after: self.retry_after,
            etag: self.etag.as_deref(),
        }
    }
}

/// An HTTP client that can send what [`Client::poll_transmit`](crate::client::Client::poll_transmit) asks for.
///
/// Send `tx.method` to your configured host + `tx.path` with every header of
/// [`Transmit::headers`] (write [`Header::Bearer`](super::Header::Bearer) as `Bearer <secret>`, and never log it) and
/// `tx.body`; put the response body into `body` (definitions polls and `/flags` requests need
/// it, batches do not; a body that does not fit is [`TransportError::BadResponse`]).
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Gets ready to send (opens the connection, for a stream). Drivers call it when a request
    /// is due, *before* they ask the client for it: the client renders the events' `offset`
    /// with the request, so time spent connecting (a TCP or TLS handshake, a modem dialling)
    /// must come before that, or the server would place every event of the batch that much
    /// later. The default does nothing (an HTTP client that connects inside `send`).
    ///
    /// # Errors
    /// [`TransportError`] when the connection cannot be opened; the driver then settles the
    /// due request as failed without sending it.
    async fn prepare(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    /// Sends one request.
    ///
    /// # Errors
    /// [`TransportError`] when no complete response arrived.
    async fn send(&mut self, tx: &Transmit<'_>, body: &mut [u8]) -> Result<Reply, TransportError>;
}

/// A byte stream the provided HTTP/1.1 client can (re)open.
///
/// For embassy-net, wrap a `TcpSocket` and connect it to the ingestion host's address
/// (`adapters::embassy_net::TcpConnect`, or `DnsTcpConnect` by name); for HTTPS, hand it to a
/// [`Dial`]er such as `tls::TlsDialer`.
#[allow(async_fn_in_trait)]
pub trait Connect: embedded_io_async::Read + embedded_io_async::Write {
    /// Opens the connection (called before the first request and after a close).
    ///
    /// # Errors
    /// The stream's error; the request then counts as a transport failure and is retried.
    async fn connect(&mut self) -> Result<(), Self::Error>;

    /// Closes the connection (after `Connection: close`, an error, or a timeout).
    async fn disconnect(&mut self);
}

/// Opens **sessions** that borrow the dialer: a TLS session over a stream, whose record buffers
/// and keys belong to one connection and must be set up again for the next. The embassy
/// runner's [`run_dialed`](crate::adapters::embassy::Runner::run_dialed) keeps a session while
/// its connection lives (requests kept alive over it) and dials again when it ends.
///
/// [`Connect`] is the simpler case (a stream that reopens in place); implement `Dial` when a
/// connection needs state that borrows the dialer.
#[allow(async_fn_in_trait)]
pub trait Dial {
    /// One connection's stream.
    type Session<'s>: embedded_io_async::Read + embedded_io_async::Write
    where
        Self: 's;

    /// Opens a session to `host` (the runner's host, `name[:port]`; a TLS dialer checks the
    /// server's certificate against the name) at wall-clock time `wall` (`None` before the
    /// device learned it).
    ///
    /// # Errors
    /// The [`TransportError`] the client records for the request that was due
    /// ([`TransportError::Tls`] for a handshake or certificate failure): it stays queued and is
    /// retried with back-off.
    async fn dial(
        &mut self,
        host: &str,
        wall: Option<crate::time::UnixMillis>,
    ) -> Result<Self::Session<'_>, TransportError>;

    /// Closes what is left of the connection, after its session was dropped or a dial failed.
    async fn hang_up(&mut self);

    /// Whether a dial needs the wall clock (a TLS dialer checks certificate validity with it).
    /// The runner then waits for the clock instead of dialing: the events stay queued, and no
    /// delivery attempt is counted as failed. Default `false`.
    fn needs_wall_clock(&self) -> bool {
        false
    }
}

/// A dialer lent to the runner, so the caller can look at it afterwards (tests, statistics).
impl<D: Dial> Dial for &mut D {
    type Session<'s>
        = D::Session<'s>
    where
        Self: 's;

    async fn dial(
        &mut self,
        host: &str,
        wall: Option<crate::time::UnixMillis>,
    ) -> Result<Self::Session<'_>, TransportError> {
        D::dial(self, host, wall).await
    }

    async fn hang_up(&mut self) {
        D::hang_up(self).await;
    }

    fn needs_wall_clock(&self) -> bool {
        D::needs_wall_clock(self)
    }
}
