//! The runner task: one request at a time over a kept-alive stream, each under a timeout,
//! sleeping until the client has something due or a handle wakes it.

use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::RawMutex;

use super::Shared;
use crate::adapters::stream::StreamTransport;
use crate::client::{Client, ConfigError, RequestKind, Setting, TransportError};
use crate::net::transport::{Connect, Transport};

/// Timeouts of the runner's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Timeouts {
    /// One request, from opening the connection (when needed) to the last byte of the answer.
    pub request: embassy_time::Duration,
    /// One `/flags` attempt (a flag read waits for it). Default 3 s, as in posthog-python,
    /// posthog-node and posthog-go.
    pub flags: embassy_time::Duration,
}

impl Timeouts {
    /// The defaults: 10 s per request, 3 s per `/flags` attempt.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            request: embassy_time::Duration::from_secs(10),
            flags: embassy_time::Duration::from_secs(3),
        }
    }

    /// Sets [`request`](Self::request).
    #[must_use]
    pub const fn request(mut self, d: embassy_time::Duration) -> Self {
        self.request = d;
        self
    }

    /// Sets [`flags`](Self::flags).
    #[must_use]
    pub const fn flags(mut self, d: embassy_time::Duration) -> Self {
        self.flags = d;
        self
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::new()
    }
}

/// Caller-owned buffers of the runner.
pub struct Buffers<'d> {
    /// Request bodies (a `/batch/` is rendered here): its size caps a batch.
    pub tx: &'d mut [u8],
    /// Request heads, then response heads and framing: 1 KiB is plenty.
    pub rx: &'d mut [u8],
    /// Response bodies that are kept (flag definitions): as large as your definitions.
    pub body: &'d mut [u8],
}

/// The task that talks to PostHog (from [`new`](super::new)): spawn one task that calls
/// [`run`](Self::run) with its connection.
pub struct Runner<'d, M: RawMutex> {
    shared: &'d Shared<'d, M>,
    host: &'d str,
    tx: &'d mut [u8],
    rx: &'d mut [u8],
    body: &'d mut [u8],
    timeouts: Timeouts,
}

impl<'d, M: RawMutex> Runner<'d, M> {
    pub(super) fn new(shared: &'d Shared<'d, M>, bufs: Buffers<'d>, host: &'d str) -> Self {
        Self {
            shared,
            host,
            tx: bufs.tx,
            rx: bufs.rx,
            body: bufs.body,
            timeouts: Timeouts::new(),
        }
    }

    /// Serves the client forever over `connection`.
    pub async fn run<C: Connect>(&mut self, connection: C) -> ! {
        let mut link = self.link(connection);
        loop {
            link.step().await;
        }
    }

    /// The runner bound to `connection`, to drive one step at a time (tests, cooperative
    /// shutdowns, a task that switches networks: drop the link and bind a new one).
    pub fn link<C: Connect>(&mut self, connection: C) -> Link<'_, 'd, M, C> {
        Link {
            shared: self.shared,
            transport: StreamTransport::new(connection, self.host, &mut *self.rx),
            tx: &mut *self.tx,
            body: &mut *self.body,
            timeouts: self.timeouts,
        }
    }

    /// Sets the timeouts (for links bound after this call).
    ///
    /// # Errors
    /// [`ConfigError::Zero`] for a zero request timeout (nothing changes).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) -> Result<(), ConfigError> {
        if timeouts.request.as_ticks() == 0 {
            return Err(ConfigError::Zero {
                setting: Setting::RequestTimeout,
            });
        }
        if timeouts.flags.as_ticks() == 0 {
            return Err(ConfigError::Zero {
                setting: Setting::FlagsRequestTimeout,
            });
        }
        self.timeouts = timeouts;
        Ok(())
    }
}

/// A [`Runner`] bound to one connection ([`Runner::link`]).
pub struct Link<'a, 'd, M: RawMutex, C: Connect> {
    shared: &'d Shared<'d, M>,
    transport: StreamTransport<'a, C>,
    tx: &'a mut [u8],
    body: &'a mut [u8],
    timeouts: Timeouts,
}

impl<M: RawMutex, C: Connect> Link<'_, '_, M, C> {
    /// Closes the connection, if open (before a deliberate power-down or network switch; the
    /// next request reconnects). Bounded by the stream's own disconnect.
    pub async fn disconnect(&mut self) {
        self.transport.reset().await;
    }

    /// Sends what is due, or sleeps until something may be due; returns after one of the two.
    /// ([`Runner::run`] is `loop { step().await }`; tests and cooperative shutdowns drive it
    /// directly.)
    pub async fn step(&mut self) {
        // Connect before the request is rendered (`Transport::prepare`): the events' `offset`
        // is computed when it is, so the time spent connecting must not fall between the two.
        let now = self.shared.now();
        let due = self
            .shared
            .peek(Client::poll_timeout)
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
        let now = self.shared.now();
        let tx_buf = &mut *self.tx;
        // The head is owned: the request leaves the lock, and only its body borrows `tx`.
        let (tx, query_ended) = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            let generation = c.query_generation();
            let tx = c.poll_transmit(now, tx_buf);
            let ended = c.query_generation() != generation;
            (tx, ended)
        });
        if tx.is_none() && query_ended {
            // A `/flags` query ended without a request (too large for the buffer, shutdown):
            // its reader is waiting.
            self.shared.settled.notify();
        }
        match tx {
            Some(_) if connect_failed => {
                // The request due could not even connect: settle it as such (the client
                // retries it with back-off) without waiting for a second connect attempt.
                let now = self.shared.now();
                ph_debug!("connect failed");
                self.shared
                    .with(|c| c.handle_transport_error(now, TransportError::Connect));
                self.shared.settled.notify();
            }
            Some(tx) => {
                let timeout = match tx.kind {
                    RequestKind::Flags => self.timeouts.flags,
                    _ => self.timeouts.request,
                };
                let outcome =
                    embassy_time::with_timeout(timeout, self.transport.send(&tx, self.body)).await;
                drop(tx);
                let outcome = match outcome {
                    Ok(r) => r,
                    Err(_) => {
                        self.transport.reset().await;
                        Err(TransportError::Timeout)
                    }
                };
                let now = self.shared.now();
                match outcome {
                    Ok(reply) => {
                        let body = self.body.get(..reply.body_len).unwrap_or_default();
                        self.shared
                            .with(|c| c.handle_response(now, &reply.info(), body));
                        #[cfg(feature = "storage")]
                        self.shared.offer_definitions(body);
                    }
                    Err(e) => {
                        ph_debug!("request failed: {}", e);
                        self.shared.with(|c| c.handle_transport_error(now, e));
                    }
                }
                self.shared.settled.notify();
            }
            None => {
                let deadline = self.shared.peek(Client::poll_timeout);
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
}
