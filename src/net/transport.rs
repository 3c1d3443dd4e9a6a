//! The traits users implement to plug in a network, and one function that drives a client
//! with them.
//!
//! - [`Transport`]: an HTTP-level client the application already has (ESP-IDF's HTTP client,
//!   reqwest, a modem's HTTP AT commands, ...): it sends one [`Transmit`] and returns the
//!   status, `Retry-After`, `ETag` and body.
//! - [`Connect`]: a byte stream the provided HTTP/1.1 client runs over ([`StreamTransport`]):
//!   embassy-net `TcpSocket`, a UART modem in transparent mode, a TLS session.
//! - [`send_due`]: one cycle of "ask the client what is due, send it, report the answer".
//!
//! Drivers wrap these with their runtime's timers and timeouts; none of them holds policy.

use crate::client::{Client, Header, RequestKind, ResponseInfo, Transmit, TransportError};
use crate::net::http::{self, BodySink, ETag, HttpError, RequestHead, RetryAfter};
use crate::time::Clock;

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
    /// The view [`Client::handle_response`] takes.
    #[must_use]
    pub fn info(&self) -> ResponseInfo<'_> {
        ResponseInfo {
            status: self.status,
            retry_after: self.retry_after,
            etag: self.etag.as_deref(),
        }
    }
}

/// An HTTP client that can send what [`Client::poll_transmit`] asks for.
///
/// Send `tx.method` to your configured host + `tx.path` with every header of
/// [`Transmit::headers`] (write [`Header::Bearer`] as `Bearer <secret>`, and never log it) and
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
    async fn send(
        &mut self,
        tx: &Transmit<'_, '_>,
        body: &mut [u8],
    ) -> Result<Reply, TransportError>;
}

/// A byte stream the provided HTTP/1.1 client can (re)open.
///
/// For embassy-net, wrap a `TcpSocket` and connect it to the ingestion host's address (and, for
/// HTTPS, put a TLS session such as `embedded-tls` on top).
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

/// [`Transport`] over a [`Connect`] stream with the crate's HTTP/1.1 client: keep-alive between
/// requests, a reconnect after `Connection: close` or an error, and one immediate resend on a
/// fresh connection when a kept-alive connection turns out to be closed before any answer.
pub struct StreamTransport<'b, C> {
    conn: C,
    host: &'b str,
    rx: &'b mut [u8],
    connected: bool,
}

impl<'b, C: Connect> StreamTransport<'b, C> {
    /// A transport sending to `host` (the `Host` header: `us.i.posthog.com`, or
    /// `192.168.1.10:8080`) over `conn`, with `rx` for request and response heads (1 KiB is
    /// plenty).
    pub fn new(conn: C, host: &'b str, rx: &'b mut [u8]) -> Self {
        Self {
            conn,
            host,
            rx,
            connected: false,
        }
    }

    /// Opens the connection unless it is open.
    async fn ensure_connected(&mut self) -> Result<(), HttpError> {
        if !self.connected {
            self.conn
                .connect()
                .await
                .map_err(|_| HttpError::Transport(embedded_io_async::ErrorKind::NotConnected))?;
            self.connected = true;
        }
        Ok(())
    }

    /// Closes the connection (after a timeout the driver imposed, for example).
    pub async fn reset(&mut self) {
        if self.connected {
            self.conn.disconnect().await;
            self.connected = false;
        }
    }

    /// The stream.
    pub fn connection(&mut self) -> &mut C {
        &mut self.conn
    }

    async fn exchange(
        &mut self,
        tx: &Transmit<'_, '_>,
        body: &mut [u8],
    ) -> Result<Reply, HttpError> {
        self.ensure_connected().await?;
        let mut names: heapless::Vec<(&str, &str), 4> = heapless::Vec::new();
        let mut bearer = None;
        for (name, value) in tx.headers() {
            match value {
                Header::Plain(v) => {
                    let _ = names.push((name, v));
                }
                Header::Bearer(s) => bearer = Some(s),
            }
        }
        let mut head = RequestHead::new(tx.method, self.host, tx.path.as_str())
            .headers(&names)
            .keep_alive(true);
        if let Some(secret) = bearer {
            head = head.bearer(secret);
        }
        let sink = match tx.kind {
            RequestKind::Batch { .. } => BodySink::Discard,
            _ => BodySink::Buffer(body),
        };
        match http::request(&mut self.conn, &head, tx.body, self.rx, sink).await {
            Ok(resp) => {
                let reply = Reply {
                    status: resp.status,
                    retry_after: resp.retry_after,
                    etag: resp.etag.clone(),
                    body_len: resp.body.len(),
                };
                if resp.connection_close {
                    self.reset().await;
                }
                Ok(reply)
            }
            Err(e) => {
                self.reset().await;
                Err(e)
            }
        }
    }
}

impl<C: Connect> Transport for StreamTransport<'_, C> {
    /// Opens the connection unless it is open (closing what is left of it on failure).
    async fn prepare(&mut self) -> Result<(), TransportError> {
        match self.ensure_connected().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.reset().await;
                Err(transport_error(e))
            }
        }
    }

    async fn send(
        &mut self,
        tx: &Transmit<'_, '_>,
        body: &mut [u8],
    ) -> Result<Reply, TransportError> {
        let reused = self.connected;
        let mut r = self.exchange(tx, body).await;
        if reused && matches!(r, Err(HttpError::ConnectionClosed { received: 0 })) {
            r = self.exchange(tx, body).await;
        }
        r.map_err(transport_error)
    }
}

/// The [`TransportError`] for an HTTP-layer failure.
#[must_use]
pub fn transport_error(e: HttpError) -> TransportError {
    use embedded_io_async::ErrorKind;
    match e {
        HttpError::Transport(ErrorKind::TimedOut) => TransportError::Timeout,
        HttpError::Transport(ErrorKind::NotConnected | ErrorKind::ConnectionRefused) => {
            TransportError::Connect
        }
        HttpError::Transport(_) | HttpError::ConnectionClosed { .. } => TransportError::Io,
        _ => TransportError::BadResponse,
    }
}

/// One cycle: if the client has a request due, send it over `transport` and report the answer.
/// Returns whether a request was sent; when not, sleep until [`Client::poll_timeout`] (or a
/// capture) before calling again. `tx_buf` holds request bodies (its size caps a batch), `body`
/// holds response bodies (definitions).
pub async fn send_due<
    T,
    K,
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const CT: usize,
>(
    client: &mut Client<'_, Q, F, N, B, CT>,
    transport: &mut T,
    clock: &K,
    tx_buf: &mut [u8],
    body: &mut [u8],
) -> bool
where
    T: Transport,
    K: Clock,
{
    // Connect first (see `Transport::prepare`), when something is due.
    let due = client
        .poll_timeout()
        .is_some_and(|at| at <= clock.read().mono);
    let prepared = if due {
        transport.prepare().await
    } else {
        Ok(())
    };
    let outcome = {
        let Some(tx) = client.poll_transmit(clock.read(), tx_buf) else {
            return false;
        };
        match prepared {
            Ok(()) => transport.send(&tx, body).await,
            Err(e) => Err(e),
        }
    };
    let now = clock.read();
    match outcome {
        Ok(reply) => {
            let b = body.get(..reply.body_len).unwrap_or_default();
            client.handle_response(now, &reply.info(), b);
        }
        Err(e) => client.handle_transport_error(now, e),
    }
    true
}
