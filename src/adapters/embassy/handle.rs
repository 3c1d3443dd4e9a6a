//! The handle every task uses: capture, identify, flags (local first, then `/flags` over the
//! runner's connection settings), flush and shutdown waits.

use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::RawMutex;

use super::Shared;
use crate::capture::{EventOptions, Person, Uuid};
use crate::client::{
    Client, ClientStats, Fate, FlagsAttempt, FlagsRetry, OwnedFlagValue, RequestKind, Transmit,
    FLAGS_PATH,
};
use crate::error::{CaptureError, PropertyError};
use crate::flags::remote::{FlagErrorKind, FlagErrors, RemoteFlags, RequestError};
use crate::flags::{EvalContext, Inconclusive};
use crate::json::write::Object;
use crate::net::http::Method;
use crate::net::transport::Transport;
use crate::time::{Clock, Now};

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

    /// Runs a flag read `f` on the client, waking the runner only when it queued an event (a
    /// `$feature_flag_called`): a read that queues nothing gives the runner nothing to do.
    fn read<R>(&self, f: impl FnOnce(&mut Client<'static, Q, F, N, B, T>, Now) -> R) -> R {
        let now = self.clock.read();
        let (r, queued) = self.shared.client.lock(|c| {
            let mut c = c.borrow_mut();
            let before = c.last_seq();
            let r = f(&mut c, now);
            (r, c.last_seq() != before)
        });
        if queued {
            self.shared.wake.signal(());
        }
        r
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
        self.read(|c, now| c.is_feature_enabled(now, key, ctx, true))
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
            let generation = self.shared.settled.generation();
            let fate = self.shared.client.lock(|c| c.borrow().fate(seq));
            if fate != Fate::Queued || embassy_time::Instant::now() >= deadline {
                return Ok(fate);
            }
            let _ = select(
                self.shared.settled.changed_since(generation),
                embassy_time::Timer::at(deadline),
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
            let local = self.read(|c, now| {
                c.feature_flag(now, key, ctx, opts.send_event)
                    .map(|v| OwnedFlagValue::from_value(&v))
            });
            match local {
                Ok(v) => return v,
                Err(_) if opts.only_local => {
                    self.read(|c, now| {
                        c.failed_flag_called(now, key, ctx, FlagErrors::new(), opts.send_event);
                    });
                    return None;
                }
                Err(_) => {}
            }
        }
        let report_failure = |kind| {
            self.read(|c, now| {
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
                        return self.read(|c, now| {
                            c.remote_flag_called(now, key, ctx, remote, opts.send_event)
                                .and_then(|v| OwnedFlagValue::from_value(&v))
                        });
                    }
                    Ok(Ok(reply)) => FlagsAttempt::Status(reply.status),
                    Ok(Err(_)) | Err(_) => FlagsAttempt::Transport,
                };
            match retry.next_delay(attempt) {
                Some(d) => {
                    embassy_time::Timer::after_millis(d.as_millis()).await;
                    // The core's gate again: no retry after shutdown or while offline.
                    let allowed = self
                        .shared
                        .client
                        .lock(|c| c.borrow().check_remote_read(ctx));
                    if allowed.is_err() {
                        report_failure(FlagsRetry::error_kind(attempt));
                        return None;
                    }
                }
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

    /// [`flush`](Self::flush), then waits until the queue is empty or `deadline` passes,
    /// woken by each settled request (no polling; any number of tasks may wait at once).
    /// Undelivered events stay queued.
    pub async fn flush_until(&self, deadline: embassy_time::Instant) -> Drained {
        let before = self.stats().sent;
        self.flush();
        self.drain(before, deadline).await
    }

    /// [`shutdown`](Self::shutdown), then waits as [`flush_until`](Self::flush_until) does.
    pub async fn shutdown_until(&self, deadline: embassy_time::Instant) -> Drained {
        let before = self.stats().sent;
        self.shutdown();
        self.drain(before, deadline).await
    }

    async fn drain(&self, sent_before: u32, deadline: embassy_time::Instant) -> Drained {
        loop {
            let generation = self.shared.settled.generation();
            let (sent, pending) = self
                .shared
                .client
                .lock(|c| (c.borrow().stats().sent, c.borrow().pending()));
            if pending == 0 || embassy_time::Instant::now() >= deadline {
                return Drained {
                    sent: sent.saturating_sub(sent_before),
                    pending,
                };
            }
            let _ = select(
                self.shared.settled.changed_since(generation),
                embassy_time::Timer::at(deadline),
            )
            .await;
        }
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
    /// final flush is requested ([`shutdown_until`](Self::shutdown_until) also waits for it).
    /// Undelivered events stay queued.
    pub fn shutdown(&self) {
        self.shared.with(Client::shutdown);
    }

    /// Tells the client whether the link is up (see [`Client::set_online`]): while it is down
    /// the runner opens no connection; when it comes back, queued events go out at once.
    pub fn set_online(&self, online: bool) {
        self.shared.with(|c| c.set_online(online));
    }
}

/// What [`Handle::flush_until`] or [`Handle::shutdown_until`] ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Drained {
    /// Events delivered while the call waited.
    pub sent: u32,
    /// Events still queued (0 unless the deadline passed first).
    pub pending: usize,
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

#[cfg(test)]
mod tests {
    use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;

    use super::*;
    use crate::client::Config;
    use crate::time::Instant;

    /// A clock standing still at 1 s, no wall time.
    #[derive(Clone, Copy)]
    struct Still;

    impl Clock for Still {
        fn now(&self) -> Instant {
            Instant::from_millis(1_000)
        }

        fn wall(&self) -> Option<crate::time::UnixMillis> {
            None
        }
    }

    type S = Shared<CriticalSectionRawMutex, 2048, 4, 32, 512, 8>;

    #[test]
    fn flag_reads_wake_the_runner_only_when_they_queue_an_event() {
        let shared: S = Shared::new(Config::new("phc_embassy", 7)).unwrap();
        let ph = Handle::new(&shared, Still);
        shared.with(|c| {
            c.load_definitions(
                br#"{"flags":[{"id":1,"key":"beta","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#,
            )
            .unwrap();
        });
        shared.wake.reset();
        let ctx = EvalContext {
            distinct_id: "device-1",
            device_id: None,
            person: &[],
            groups: &[],
        };
        // The first read queues its `$feature_flag_called`: the runner is woken.
        assert_eq!(ph.is_feature_enabled("beta", &ctx), Ok(true));
        assert!(shared.wake.signaled());
        assert_eq!(ph.pending(), 1);
        shared.wake.reset();
        // The same read again is de-duplicated: nothing queued, nobody woken.
        assert_eq!(ph.is_feature_enabled("beta", &ctx), Ok(true));
        assert!(!shared.wake.signaled());
        assert_eq!(ph.pending(), 1);
        // Counters and the queue are read without waking either; a capture wakes.
        let _ = (ph.stats(), ph.pending());
        assert!(!shared.wake.signaled());
        ph.capture("e", "device-1", &EventOptions::new(), |_| Ok(()))
            .unwrap();
        assert!(shared.wake.signaled());
    }
}
