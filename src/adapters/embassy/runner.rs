//! The runner task: one request at a time over a kept-alive stream, each under a timeout,
//! sleeping until the client has something due or a handle wakes it.

use embassy_futures::select::{select, Either};
use embassy_sync::blocking_mutex::raw::RawMutex;

use super::Shared;
use crate::adapters::stream::StreamTransport;
use crate::client::{Client, ConfigError, RequestKind, Setting, TransportError};
use crate::flags::FlagTables;
use crate::net::transport::{Connect, Dial, Transport};
use crate::net::Transmit;

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
    /// How long a dialed session ([`Runner::run_dialed`]) may sit idle before the runner
    /// closes it: the next request dials a fresh one instead of finding that the server closed
    /// the old one (servers close idle keep-alive connections after tens of seconds). Default
    /// 20 s.
    pub session_idle: embassy_time::Duration,
}

impl Timeouts {
    /// The defaults: 10 s per request, 3 s per `/flags` attempt.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            request: embassy_time::Duration::from_secs(10),
            flags: embassy_time::Duration::from_secs(3),
            session_idle: embassy_time::Duration::from_secs(20),
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

    /// Sets [`session_idle`](Self::session_idle).
    #[must_use]
    pub const fn session_idle(mut self, d: embassy_time::Duration) -> Self {
        self.session_idle = d;
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
    staging: Option<FlagTables<'d>>,
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
            staging: None,
        }
    }

    /// Loads polled definitions into `staging` **outside the client's lock**, in one pass
    /// (`load_or_clear`), then swaps them in under it (O(1); see
    /// [`Client::install_definitions`]). Without it, a poll's definitions are validated and
    /// then loaded under the lock, which a `CriticalSectionRawMutex` holds with interrupts
    /// masked for the whole load (about 1.1 million instructions, some 9 ms at 168 MHz, on a
    /// Cortex-M4 for a 10 KB document; staged, the same document takes about 0.58 million,
    /// none of them under the lock). The cost is RAM: one more flag store, with the same capacities as the
    /// client's (`FlagTables::new` over a second `FlagStorage<F, N, B>`). With a `NoopRawMutex`
    /// nothing is masked either way.
    pub fn stage_definitions(&mut self, staging: FlagTables<'d>) {
        self.staging = Some(staging);
    }

    /// Serves the client forever over `connection`.
    pub async fn run<C: Connect>(&mut self, connection: C) -> ! {
        let mut link = self.link(connection);
        loop {
            link.step().await;
        }
    }

    /// Serves the client forever over sessions `dialer` opens (a TLS session per connection:
    /// [`TlsDialer`](crate::tls::TlsDialer)). A session is dialed when a request is due and
    /// kept while its connection lives (requests kept alive over it); when it ends, the next
    /// due request dials again. A failed dial (no connection, a refused certificate) settles
    /// the due request as a transport failure: its events stay queued and are retried with
    /// back-off. The dial, handshake included, is bounded by the request timeout. A dialer that
    /// needs the wall clock ([`Dial::needs_wall_clock`]) is not dialed before it is set.
    ///
    /// A session idle for [`Timeouts::session_idle`] is closed before the next request, which
    /// dials a fresh one. One the server closed sooner is found closed by the next request,
    /// which then fails once and is retried on a new session after the back-off.
    pub async fn run_dialed<D: Dial>(&mut self, mut dialer: D) -> ! {
        let host = self.host;
        loop {
            self.wait_due().await;
            let wall = self.shared.now().wall;
            if wall.is_none() && dialer.needs_wall_clock() {
                // Certificates cannot be checked yet: wait for the clock (`set_wall_clock`
                // wakes the runner) without counting a failed attempt; events stay queued.
                self.shared.wake.wait().await;
                continue;
            }
            {
                let dialed =
                    embassy_time::with_timeout(self.timeouts.request, dialer.dial(host, wall))
                        .await;
                match dialed {
                    Ok(Ok(session)) => {
                        let idle = self.timeouts.session_idle;
                        let mut link = self.link(Opened::new(session));
                        let mut used = embassy_time::Instant::now();
                        loop {
                            let quiet = embassy_time::Timer::at(used + idle);
                            if let Either::Second(()) = select(wait_due(link.shared), quiet).await {
                                break;
                            }
                            link.step().await;
                            used = embassy_time::Instant::now();
                            if link.transport.connection().spent {
                                break;
                            }
                        }
                    }
                    Ok(Err(e)) => {
                        ph_debug!("dial failed: {}", e);
                        self.fail_due(e);
                    }
                    Err(_) => self.fail_due(TransportError::Timeout),
                }
            }
            dialer.hang_up().await;
        }
    }

    /// Returns once a request is due (or a handle asks for one).
    async fn wait_due(&self) {
        wait_due(self.shared).await;
    }

    /// Settles the request due now as failed with `e`, without sending it (the client
    /// retries it with back-off).
    fn fail_due(&mut self, e: TransportError) {
        if take_due(self.shared, &mut *self.tx).is_some() {
            settle_failed(self.shared, e);
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
            staging: self.staging.as_mut(),
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
    staging: Option<&'a mut FlagTables<'d>>,
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
        match take_due(self.shared, &mut *self.tx) {
            Some(_) if connect_failed => {
                // The request due could not even connect: settle it as such (the client
                // retries it with back-off) without waiting for a second connect attempt.
                ph_debug!("connect failed");
                settle_failed(self.shared, TransportError::Connect);
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
                        let info = reply.info();
                        match self.staging.as_deref_mut() {
                            Some(staging)
                                if info.status == 200
                                    && self.shared.peek(Client::awaits_definitions) =>
                            {
                                // The long part, without the lock: interrupts stay enabled
                                // even under a `CriticalSectionRawMutex`.
                                let loaded = staging.load_or_clear(body);
                                self.shared.with(|c| {
                                    c.handle_staged_response(now, &info, body, staging, loaded);
                                });
                            }
                            _ => self.shared.with(|c| c.handle_response(now, &info, body)),
                        }
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

/// Takes the request due now from the client: its head owned (it leaves the lock), its body in
/// `tx_buf`. A `/flags` query that ended without a request (too large for the buffer,
/// shutdown) has its reader woken.
fn take_due<'b, M: RawMutex>(shared: &Shared<'_, M>, tx_buf: &'b mut [u8]) -> Option<Transmit<'b>> {
    let now = shared.now();
    let (tx, query_ended) = shared.client.lock(|c| {
        let mut c = c.borrow_mut();
        let generation = c.query_generation();
        let tx = c.poll_transmit(now, tx_buf);
        (tx, c.query_generation() != generation)
    });
    if tx.is_none() && query_ended {
        shared.settled.notify();
    }
    tx
}

/// Settles the request just taken as failed with `e`, unsent; its events stay queued.
fn settle_failed<M: RawMutex>(shared: &Shared<'_, M>, e: TransportError) {
    let now = shared.now();
    shared.with(|c| c.handle_transport_error(now, e));
    shared.settled.notify();
}

/// Returns once the client has a request due (or a handle asks for one).
async fn wait_due<M: RawMutex>(shared: &Shared<'_, M>) {
    loop {
        let now = shared.now();
        match shared.peek(Client::poll_timeout) {
            Some(at) if at <= now.mono => return,
            Some(at) => {
                let at = embassy_time::Instant::from_millis(at.as_millis());
                let _ = select(embassy_time::Timer::at(at), shared.wake.wait()).await;
            }
            None => shared.wake.wait().await,
        }
    }
}

/// A dialed session as the HTTP client's [`Connect`] stream: already open, so its first
/// `connect` succeeds at once; once closed (after `Connection: close` or an error) it is
/// spent, and [`Runner::run_dialed`] dials a new one.
struct Opened<S> {
    session: S,
    used: bool,
    spent: bool,
}

impl<S> Opened<S> {
    const fn new(session: S) -> Self {
        Self {
            session,
            used: false,
            spent: false,
        }
    }
}

/// An error of a session, or a reconnect asked of a spent one.
#[derive(Debug)]
enum SessionError<E> {
    Spent,
    Io(E),
}

impl<E: core::fmt::Debug> core::fmt::Display for SessionError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Spent => f.write_str("the session has ended"),
            Self::Io(e) => write!(f, "{e:?}"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for SessionError<E> {}

impl<E: embedded_io_async::Error> embedded_io_async::Error for SessionError<E> {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        match self {
            Self::Spent => embedded_io_async::ErrorKind::NotConnected,
            Self::Io(e) => e.kind(),
        }
    }
}

impl<S: embedded_io_async::ErrorType> embedded_io_async::ErrorType for Opened<S> {
    type Error = SessionError<S::Error>;
}

impl<S: embedded_io_async::Read> embedded_io_async::Read for Opened<S> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.session.read(buf).await.map_err(SessionError::Io)
    }
}

impl<S: embedded_io_async::Write> embedded_io_async::Write for Opened<S> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.session.write(buf).await.map_err(SessionError::Io)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.session.flush().await.map_err(SessionError::Io)
    }
}

impl<S: embedded_io_async::Read + embedded_io_async::Write> Connect for Opened<S> {
    async fn connect(&mut self) -> Result<(), Self::Error> {
        if self.used || self.spent {
            self.spent = true;
            return Err(SessionError::Spent);
        }
        self.used = true;
        Ok(())
    }

    async fn disconnect(&mut self) {
        self.spent = true;
    }
}
