//! The runner task: one request at a time over a kept-alive stream, each under a timeout,
//! sleeping until the client has something due or a handle wakes it.

use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::RawMutex;

use super::Shared;
use crate::adapters::stream::StreamTransport;
use crate::client::{ConfigError, Header, RequestKind, Setting, Transmit, TransportError};
use crate::net::http::Method;
use crate::net::transport::{Connect, Transport};
use crate::time::Clock;

/// Timeouts of the runner's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Timeouts {
    /// One request, from opening the connection (when needed) to the last byte of the answer.
    pub request: embassy_time::Duration,
}

impl Timeouts {
    /// The defaults: 10 s per request.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            request: embassy_time::Duration::from_secs(10),
        }
    }

    /// Sets [`request`](Self::request).
    #[must_use]
    pub const fn request(mut self, d: embassy_time::Duration) -> Self {
        self.request = d;
        self
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::new()
    }
}

/// Caller-owned buffers of the runner.
pub struct Buffers<'b> {
    /// Request bodies (a `/batch/` is rendered here): its size caps a batch.
    pub tx: &'b mut [u8],
    /// Request heads, then response heads and framing: 1 KiB is plenty.
    pub rx: &'b mut [u8],
    /// Response bodies that are kept (flag definitions): as large as your definitions.
    pub body: &'b mut [u8],
}

/// A request copied out of the lock, so the lock is never held while the network is awaited.
struct Pending {
    kind: RequestKind,
    method: Method,
    path: heapless::String<{ crate::client::MAX_PATH }>,
    len: usize,
    bearer: Option<&'static str>,
    etag: heapless::String<{ crate::client::MAX_ETAG }>,
}

/// The task that talks to PostHog: spawn it once and call [`run`](Self::run). A client has one
/// runner at a time: [`Runner::new`] refuses a second while the first exists (dropping it
/// frees the place, e.g. to rebuild it over a new connection).
pub struct Runner<
    's,
    'b,
    M: RawMutex,
    C: Connect,
    K: Clock,
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const T: usize = 256,
> {
    shared: &'s Shared<M, Q, F, N, B, T>,
    transport: StreamTransport<'b, C>,
    clock: K,
    tx: &'b mut [u8],
    body: &'b mut [u8],
    timeouts: Timeouts,
}

impl<
        's,
        'b,
        M: RawMutex,
        C: Connect,
        K: Clock,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Runner<'s, 'b, M, C, K, Q, F, N, B, T>
{
    /// The runner of `shared`, sending to `host` (the `Host` header: `us.i.posthog.com`, or
    /// `192.168.1.10:8080`) over `conn`.
    ///
    /// # Errors
    /// [`ConfigError::AlreadyRunning`] while another runner of `shared` exists;
    /// [`ConfigError::EmptyHost`] for a blank `host`.
    pub fn new(
        shared: &'s Shared<M, Q, F, N, B, T>,
        conn: C,
        clock: K,
        host: &'b str,
        bufs: Buffers<'b>,
    ) -> Result<Self, ConfigError> {
        if host.trim().is_empty() {
            return Err(ConfigError::EmptyHost);
        }
        if shared.has_runner.lock(|r| r.replace(true)) {
            return Err(ConfigError::AlreadyRunning);
        }
        Ok(Self {
            shared,
            transport: StreamTransport::new(conn, host, bufs.rx),
            clock,
            tx: bufs.tx,
            body: bufs.body,
            timeouts: Timeouts::default(),
        })
    }

    /// Sets the timeouts.
    ///
    /// # Errors
    /// [`ConfigError::Zero`] for a zero request timeout (the runner is dropped, so a new one
    /// can be made).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Result<Self, ConfigError> {
        if timeouts.request.as_ticks() == 0 {
            return Err(ConfigError::Zero {
                setting: Setting::RequestTimeout,
            });
        }
        self.timeouts = timeouts;
        Ok(self)
    }

    /// Closes the connection, if open (before a deliberate power-down or network switch; the
    /// next request reconnects). Bounded by the stream's own disconnect.
    pub async fn disconnect(&mut self) {
        self.transport.reset().await;
    }

    /// Serves the client forever.
    pub async fn run(&mut self) -> ! {
        loop {
            self.step().await;
        }
    }

    /// Sends what is due, or sleeps until something may be due; returns after one of the two.
    /// (`run` is `loop { step().await }`; tests and cooperative shutdowns drive it directly.)
    pub async fn step(&mut self) {
        // Connect before the request is rendered (`Transport::prepare`): the events' `offset`
        // is computed when it is, so the time spent connecting must not fall between the two.
        let now = self.clock.read();
        let due = self
            .shared
            .client
            .lock(|c| c.borrow().poll_timeout())
            .is_some_and(|at| at <= now.mono);
        let mut connect_failed = false;
        if due {
            let opened =
                embassy_time::with_timeout(self.timeouts.request, self.transport.prepare()).await;
            if !matches!(opened, Ok(Ok(()))) {
                self.transport.reset().await;
                connect_failed = true;
            }
        }
        let now = self.clock.read();
        let tx_buf = &mut *self.tx;
        let pending = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            let secret = c.config().secret_key;
            let tx = c.poll_transmit(now, tx_buf)?;
            let mut etag = heapless::String::new();
            let mut auth = false;
            for (name, value) in tx.headers() {
                match (name, value) {
                    ("If-None-Match", Header::Plain(v)) => {
                        let _ = etag.push_str(v);
                    }
                    ("Authorization", _) => auth = true,
                    _ => {}
                }
            }
            let pending = Pending {
                kind: tx.kind,
                method: tx.method,
                path: tx.path.clone(),
                len: tx.body.len(),
                bearer: if auth { secret } else { None },
                etag,
            };
            Some(pending)
        });
        match pending {
            Some(_) if connect_failed => {
                // The request due could not even connect: settle it as such (the client
                // retries it with back-off) without waiting for a second connect attempt.
                let now = self.clock.read();
                ph_debug!("connect failed");
                self.shared
                    .with(|c| c.handle_transport_error(now, TransportError::Connect));
                self.shared.settled.notify();
            }
            Some(p) => self.send(p).await,
            None => {
                let deadline = self.shared.client.lock(|c| c.borrow().poll_timeout());
                let wake = self.shared.wake.wait();
                match deadline {
                    Some(at) => {
                        let at = embassy_time::Instant::from_millis(at.as_millis());
                        // Either the deadline passed or a handle woke us: poll again.
                        let _ = select(embassy_time::Timer::at(at), wake).await;
                    }
                    None => wake.await,
                }
            }
        }
    }

    async fn send(&mut self, p: Pending) {
        let tx = Transmit::from_parts(
            p.kind,
            p.method,
            p.path,
            self.tx.get(..p.len).unwrap_or_default(),
            p.bearer,
            (!p.etag.is_empty()).then_some(p.etag.as_str()),
        );
        let outcome =
            embassy_time::with_timeout(self.timeouts.request, self.transport.send(&tx, self.body))
                .await;
        let outcome = match outcome {
            Ok(r) => r,
            Err(_) => {
                self.transport.reset().await;
                Err(TransportError::Timeout)
            }
        };
        let now = self.clock.read();
        match outcome {
            Ok(reply) => {
                let body = self.body.get(..reply.body_len).unwrap_or_default();
                self.shared
                    .with(|c| c.handle_response(now, &reply.info(), body));
            }
            Err(e) => {
                ph_debug!("request failed: {}", e);
                self.shared.with(|c| c.handle_transport_error(now, e));
            }
        }
        self.shared.settled.notify();
    }
}

impl<
        M: RawMutex,
        C: Connect,
        K: Clock,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Drop for Runner<'_, '_, M, C, K, Q, F, N, B, T>
{
    /// Frees the client's runner place.
    fn drop(&mut self) {
        self.shared.has_runner.lock(|r| r.set(false));
    }
}
