//! The embassy driver: a [`Runner`] task that moves the client's requests over any byte stream
//! ([`Connect`]: embassy-net `TcpSocket`, a UART modem in transparent mode, a TLS wrapper), and
//! a cheap, `Copy` [`Handle`] that any task uses to capture events and read flags.
//!
//! ```text
//! static SHARED: StaticCell<Shared<NoopRawMutex, 4096, 20, 128, 2048>> = StaticCell::new();
//! let shared = SHARED.init(Shared::new(config)?);            // checks the configuration
//! let runner = Runner::new(shared, conn, EmbassyClock, "us.i.posthog.com", bufs)?; // once only
//! spawner.spawn(posthog_task(runner));
//! let ph = Handle::new(shared, EmbassyClock);
//! ph.capture("boot", "device-42", &EventOptions::new(), |p| { p.prop("fw", "1.2.0")?; Ok(()) })?;
//! ```
//!
//! # Placing and locking the shared state
//!
//! - **Initialise it at run time** (a `StaticCell`, as above) rather than in a
//!   `static SHARED: Shared<..> = Shared::new(config)`: the [`Config`] holds the key as a
//!   pointer, so such a static is not all zeros and the linker puts the whole of it (queue
//!   included) in `.data`, a flash image copied to RAM at boot. Initialised at run time it costs
//!   RAM only.
//! - **Pick the mutex by who captures.** `NoopRawMutex` when only tasks of one executor use
//!   the handles (the usual case): nothing masks interrupts. `CriticalSectionRawMutex` when an
//!   interrupt handler or another executor captures too: then every client call runs in a
//!   critical section, including a definitions load (about 6 million instructions for a 10 KB
//!   document on a Cortex-M4, `BENCHMARKS.md`) and batch rendering, which delays interrupts for
//!   that long.
//!
//! The driver holds no policy: batching, retries, back-off and definitions polling live in
//! [`Client`]. The runner only reads the clock, writes the request the client asks for, feeds
//! the answer back, and sleeps until [`Client::poll_timeout`] or until a handle wakes it. It
//! never picks an embassy time driver or tick rate; the application does.
//!
//! One request is in flight at a time over one connection, kept alive between requests and
//! reopened when the server closes it, when a request fails, or when a reused connection turns
//! out to be closed before any answer (then the request is sent once more on a fresh one).

use core::cell::{Cell, RefCell};

use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::signal::Signal;

use crate::adapters::stream::StreamTransport;
use crate::capture::{EventOptions, Person, Uuid};
use crate::client::Setting;
use crate::client::{
    Client, ClientStats, Config, ConfigError, Fate, FlagsAttempt, FlagsRetry, Header,
    OwnedFlagValue, RequestKind, Transmit, TransportError, FLAGS_PATH,
};
use crate::error::{CaptureError, PropertyError};
use crate::flags::remote::{FlagErrorKind, FlagErrors, RemoteFlags, RequestError};
use crate::flags::{EvalContext, Inconclusive};
use crate::json::write::Object;
use crate::net::http::Method;
pub use crate::net::transport::Connect;
use crate::net::transport::Transport;
use crate::time::{Clock, Instant, Now};

/// [`Clock`] over `embassy_time::Instant` (whatever time driver and tick rate the application
/// picked; this library never picks one). It knows no wall clock: wrap it, or implement
/// [`Clock`] yourself, when the device has an RTC or SNTP time.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_millis(embassy_time::Instant::now().as_millis())
    }
}

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

/// The client and its wake-up signal, shared by the runner and every handle. Initialise it at
/// run time in a `StaticCell` (see the module docs: the seed must differ per boot, and a
/// `static` initialised with a configuration carries a flash image of the whole client). `M` is
/// the mutex flavour (`CriticalSectionRawMutex` when interrupts capture events, `NoopRawMutex`
/// on a single executor).
pub struct Shared<
    M: RawMutex,
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const T: usize = 256,
> {
    client: Mutex<M, RefCell<Client<'static, Q, F, N, B, T>>>,
    wake: Signal<M, ()>,
    /// Signalled by the runner after each request is settled.
    settled: Signal<M, ()>,
    /// A [`Runner`] was made for this client (one at most).
    has_runner: Mutex<M, Cell<bool>>,
}

impl<
        M: RawMutex,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Shared<M, Q, F, N, B, T>
{
    /// Shared state for a client with `config`, checked first.
    ///
    /// # Errors
    /// [`ConfigError`] (see [`Config::validate`]).
    pub const fn new(config: Config<'static>) -> Result<Self, ConfigError> {
        if let Err(e) = config.validate() {
            return Err(e);
        }
        Ok(Self {
            client: Mutex::new(RefCell::new(Client::new(config))),
            wake: Signal::new(),
            settled: Signal::new(),
            has_runner: Mutex::new(Cell::new(false)),
        })
    }

    /// Runs `f` on the client (briefly: it holds the lock), then wakes the runner.
    pub fn with<R>(&self, f: impl FnOnce(&mut Client<'static, Q, F, N, B, T>) -> R) -> R {
        let r = self.client.lock(|c| f(&mut c.borrow_mut()));
        self.wake.signal(());
        r
    }
}

/// A cheap, `Copy` handle for capturing events and reading flags from any task.
pub struct Handle<
    's,
    M: RawMutex,
    K: Clock,
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const T: usize = 256,
> {
    shared: &'s Shared<M, Q, F, N, B, T>,
    clock: K,
}

impl<
        M: RawMutex,
        K: Clock + Copy,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Clone for Handle<'_, M, K, Q, F, N, B, T>
{
    fn clone(&self) -> Self {
        *self
    }
}

impl<
        M: RawMutex,
        K: Clock + Copy,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Copy for Handle<'_, M, K, Q, F, N, B, T>
{
}

impl<
        's,
        M: RawMutex,
        K: Clock,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Handle<'s, M, K, Q, F, N, B, T>
{
    /// A handle reading time from `clock`.
    pub const fn new(shared: &'s Shared<M, Q, F, N, B, T>, clock: K) -> Self {
        Self { shared, clock }
    }

    /// Runs `f` on the client with the current time (see [`Shared::with`]).
    pub fn with<R>(&self, f: impl FnOnce(&mut Client<'static, Q, F, N, B, T>, Now) -> R) -> R {
        let now = self.clock.read();
        self.shared.with(|c| f(c, now))
    }

    /// Queues an event (see [`Client::capture`]).
    ///
    /// # Errors
    /// As [`Client::capture`].
    pub fn capture<P>(
        &self,
        event: &str,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.capture(now, event, distinct_id, opts, props))
    }

    /// Queues `$identify` (see [`Client::identify`]).
    ///
    /// # Errors
    /// As [`Client::identify`].
    pub fn identify<P>(
        &self,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        person: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.with(|c, now| c.identify(now, distinct_id, opts, person))
    }

    /// Evaluates flag `key` locally (see [`Client::feature_flag`]) and returns whether it is
    /// on, queuing its `$feature_flag_called` event.
    ///
    /// # Errors
    /// [`Inconclusive`] when only the server can decide.
    pub fn is_feature_enabled(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
    ) -> Result<bool, Inconclusive> {
        self.with(|c, now| c.is_feature_enabled(now, key, ctx, true))
    }

    /// Queues an event with `produce` (any producer of the client), sends it now and waits
    /// until it is delivered or dropped, or `timeout` passes, like posthog-node's `*Immediate`
    /// methods. Returns its [`Fate`] (`Queued` when the timeout passed first; it stays queued).
    ///
    /// # Errors
    /// The producer's [`CaptureError`]: nothing was queued.
    pub async fn immediate<R>(
        &self,
        timeout: embassy_time::Duration,
        produce: impl FnOnce(&mut Client<'static, Q, F, N, B, T>, Now) -> Result<R, CaptureError>,
    ) -> Result<Fate, CaptureError> {
        let deadline = embassy_time::Instant::now() + timeout;
        let seq = self.with(|c, now| {
            produce(c, now)?;
            c.flush();
            Ok::<_, CaptureError>(c.last_seq())
        })?;
        let Some(seq) = seq else {
            return Ok(Fate::Unknown);
        };
        loop {
            let fate = self.shared.client.lock(|c| c.borrow().fate(seq));
            if fate != Fate::Queued || embassy_time::Instant::now() >= deadline {
                return Ok(fate);
            }
            // Re-check at least every 50 ms: several tasks may wait at once.
            let tick = embassy_time::Instant::now() + embassy_time::Duration::from_millis(50);
            let _ = select(
                self.shared.settled.wait(),
                embassy_time::Timer::at(tick.min(deadline)),
            )
            .await;
        }
    }

    /// [`capture`](Self::capture), sent at once (see [`immediate`](Self::immediate)).
    ///
    /// # Errors
    /// As [`Client::capture`].
    pub async fn capture_immediate<P>(
        &self,
        event: &str,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        props: P,
        timeout: embassy_time::Duration,
    ) -> Result<Fate, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.immediate(timeout, |c, now| {
            c.capture(now, event, distinct_id, opts, props)
        })
        .await
    }

    /// Reads flag `key` for `ctx` as PostHog's SDKs do: locally first (queuing its
    /// `$feature_flag_called` event); when only the server can decide (and `opts` allows it),
    /// one `POST /flags/?v=2` through `transport` (a second connection, or any [`Transport`]),
    /// retried per [`FlagsRetry`] on transport errors, 502 and 504, parsed into `remote`; its
    /// answer (or error) is reported on the event. `buf` holds the request body and then the
    /// response body. `None`: no value (the flag is unknown, the request failed, or a variant
    /// key is longer than `V` bytes).
    ///
    /// An empty or whitespace distinct id gives `None` at once, with no request and no event;
    /// after [`shutdown`](Self::shutdown) no request is sent (a local value still answers);
    /// while offline ([`set_online`](Self::set_online)) no request is sent either, and the read
    /// is reported with `$feature_flag_error: connection_error`.
    ///
    /// The client's lock is never held while the request is awaited. A refused or failed
    /// connection counts as a transport failure and is retried (as posthog-go does).
    pub async fn get_feature_flag<
        Tr: Transport,
        const RN: usize,
        const RB: usize,
        const V: usize,
    >(
        &self,
        key: &str,
        ctx: &EvalContext<'_>,
        transport: &mut Tr,
        remote: &mut RemoteFlags<RN, RB>,
        buf: &mut [u8],
        opts: FlagRead,
    ) -> Option<OwnedFlagValue<V>> {
        let allowed = self
            .shared
            .client
            .lock(|c| c.borrow().check_remote_read(ctx));
        if let Err(RequestError::NoDistinctId) = allowed {
            // No distinct id: unknown, nobody asked, no event.
            return None;
        }
        if !opts.force_remote {
            let local = self.with(|c, now| {
                c.feature_flag(now, key, ctx, opts.send_event)
                    .map(|v| OwnedFlagValue::from_value(&v))
            });
            match local {
                Ok(v) => return v,
                Err(_) if opts.only_local => {
                    self.with(|c, now| {
                        c.failed_flag_called(now, key, ctx, FlagErrors::new(), opts.send_event);
                    });
                    return None;
                }
                Err(_) => {}
            }
        }
        let report_failure = |kind| {
            self.with(|c, now| {
                c.failed_flag_called(now, key, ctx, FlagErrors::from(kind), opts.send_event);
            });
        };
        match allowed {
            Ok(()) => {}
            Err(RequestError::Offline) => {
                // No connection attempt while the link is down.
                report_failure(FlagErrorKind::ConnectionError);
                return None;
            }
            // Shut down: no request, no event.
            Err(_) => return None,
        }
        let built = self
            .shared
            .client
            .lock(|c| c.borrow().flags_request(ctx, Some(&[key]), buf));
        let Ok(n) = built else {
            report_failure(FlagErrorKind::UnknownError);
            return None;
        };
        let (request, response) = buf.split_at_mut(n);
        let mut path = heapless::String::new();
        let _ = path.push_str(FLAGS_PATH);
        let mut retry = FlagsRetry::new(opts.max_retries);
        loop {
            let tx = Transmit::from_parts(
                RequestKind::Flags,
                Method::Post,
                path.clone(),
                request,
                None,
                None,
            );
            let attempt =
                match embassy_time::with_timeout(opts.timeout, transport.send(&tx, response)).await
                {
                    Ok(Ok(reply)) if (200..300).contains(&reply.status) => {
                        let body = response.get(..reply.body_len).unwrap_or_default();
                        if remote.parse(body).is_err() {
                            report_failure(FlagErrorKind::UnknownError);
                            return None;
                        }
                        let remote = &*remote;
                        return self.with(|c, now| {
                            c.remote_flag_called(now, key, ctx, remote, opts.send_event)
                                .and_then(|v| OwnedFlagValue::from_value(&v))
                        });
                    }
                    Ok(Ok(reply)) => FlagsAttempt::Status(reply.status),
                    Ok(Err(_)) | Err(_) => FlagsAttempt::Transport,
                };
            match retry.next_delay(attempt) {
                Some(d) => embassy_time::Timer::after_millis(d.as_millis()).await,
                None => {
                    report_failure(FlagsRetry::error_kind(attempt));
                    return None;
                }
            }
        }
    }

    /// Asks for every queued event to be sent now.
    pub fn flush(&self) {
        self.shared.with(Client::flush);
    }

    /// Events waiting for delivery.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.shared.client.lock(|c| c.borrow().pending())
    }

    /// The client's counters.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.shared.client.lock(|c| c.borrow().stats())
    }

    /// Begins shutdown: later captures are refused, no `/flags` request is sent any more, and a
    /// final flush is requested; wait for [`pending`](Self::pending) to reach zero (or your
    /// deadline). Undelivered events stay queued.
    pub fn shutdown(&self) {
        self.shared.with(Client::shutdown);
    }

    /// Tells the client whether the link is up (see [`Client::set_online`]): while it is down
    /// the runner opens no connection; when it comes back, queued events go out at once.
    pub fn set_online(&self, online: bool) {
        self.shared.with(|c| c.set_online(online));
    }
}

/// Options of [`Handle::get_feature_flag`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct FlagRead {
    /// Never ask the server: an inconclusive flag has no value. Default false.
    pub only_local: bool,
    /// Skip local evaluation. Default false.
    pub force_remote: bool,
    /// Queue a `$feature_flag_called` event. Default true.
    pub send_event: bool,
    /// Retries of the `/flags` request (transport errors, 502, 504). Default 1.
    pub max_retries: u8,
    /// Timeout of one `/flags` attempt. Default 3 s.
    pub timeout: embassy_time::Duration,
}

impl FlagRead {
    /// The defaults.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            only_local: false,
            force_remote: false,
            send_event: true,
            max_retries: 1,
            timeout: embassy_time::Duration::from_secs(3),
        }
    }

    /// Sets [`only_local`](Self::only_local).
    #[must_use]
    pub const fn only_local(mut self, v: bool) -> Self {
        self.only_local = v;
        self
    }

    /// Sets [`force_remote`](Self::force_remote).
    #[must_use]
    pub const fn force_remote(mut self, v: bool) -> Self {
        self.force_remote = v;
        self
    }

    /// Sets [`send_event`](Self::send_event).
    #[must_use]
    pub const fn send_event(mut self, v: bool) -> Self {
        self.send_event = v;
        self
    }
}

impl Default for FlagRead {
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
                self.shared.settled.signal(());
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
        self.shared.settled.signal(());
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
