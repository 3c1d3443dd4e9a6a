//! Persistence for the embassy driver (feature `storage`): the storage task, and the mailbox
//! through which the network runner hands it new definitions. See [`StorageRunner`].

use core::fmt;

use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embedded_storage_async::nor_flash::NorFlash;

use super::{Posthog, Shared};
use crate::adapters::persist;
use crate::client::{Client, DefinitionsChange, PersistStats, MAX_ETAG};
use crate::storage::{DefinitionsSlot, EventLog, LogStats};

/// The storage runner's buffers.
pub struct StorageBuffers<'d> {
    /// Stages one event on its way to flash: as large as the largest event (a larger one is
    /// kept in RAM only, counted).
    pub event: &'d mut [u8],
    /// Receives new definitions from the network runner: as large as the largest document
    /// (empty when no [`DefinitionsSlot`] is kept).
    pub definitions: &'d mut [u8],
}

/// [`storage`] was called twice for one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlreadyAttached;

impl fmt::Display for AlreadyAttached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a storage runner is already attached to this client")
    }
}

impl core::error::Error for AlreadyAttached {}

/// What the storage runner did with definitions. All saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct DefinitionsStats {
    /// New definitions (or a quota clear) written to the slot.
    pub written: u32,
    /// Writes that failed (the previous copy is kept), or definitions that did not fit the
    /// buffer and were not kept.
    pub failed: u32,
}

/// New definitions waiting to be written.
struct Pending {
    change: DefinitionsChange,
    len: usize,
    etag: heapless::String<MAX_ETAG>,
}

/// Where the network runner leaves new definitions for the storage runner.
pub(super) struct Mailbox<'d> {
    /// A storage runner exists.
    attached: bool,
    /// It keeps definitions (it has a slot).
    keeps: bool,
    /// The buffer, when the storage runner is not writing from it.
    buf: Option<&'d mut [u8]>,
    pending: Option<Pending>,
    stats: DefinitionsStats,
}

impl Mailbox<'_> {
    pub(super) const fn new() -> Self {
        Self {
            attached: false,
            keeps: false,
            buf: None,
            pending: None,
            stats: DefinitionsStats {
                written: 0,
                failed: 0,
            },
        }
    }
}

impl<'d, M: RawMutex> Shared<'d, M> {
    /// What the storage runner did with definitions.
    pub(super) fn definitions_stats(&self) -> DefinitionsStats {
        self.mailbox.lock(|m| m.borrow().stats)
    }

    /// Whether no new definitions wait to be written.
    pub(super) fn definitions_written(&self) -> bool {
        self.mailbox.lock(|m| {
            let m = m.borrow();
            m.pending.is_none() && (m.buf.is_some() || !m.attached)
        })
    }

    /// After an answer: hands what the definitions change to the storage runner, if any.
    pub(super) fn offer_definitions(&self, body: &[u8]) {
        let change = self.client.lock(|c| {
            let mut c = c.borrow_mut();
            let change = c.take_definitions_change()?;
            let mut etag = heapless::String::new();
            let _ = etag.push_str(c.definitions_etag().unwrap_or(""));
            Some((change, etag))
        });
        let Some((change, etag)) = change else {
            return;
        };
        let kept = self.mailbox.lock(|m| {
            let mut m = m.borrow_mut();
            if !m.keeps {
                return true;
            }
            let len = match change {
                DefinitionsChange::Loaded => body.len(),
                DefinitionsChange::Cleared => {
                    // Needs no buffer: recorded even while the runner writes from it.
                    m.pending = Some(Pending {
                        change,
                        len: 0,
                        etag,
                    });
                    return true;
                }
            };
            let Some(dst) = m.buf.as_deref_mut().and_then(|b| b.get_mut(..len)) else {
                m.stats.failed = m.stats.failed.saturating_add(1);
                return false;
            };
            dst.copy_from_slice(body.get(..len).unwrap_or_default());
            m.pending = Some(Pending { change, len, etag });
            true
        });
        if !kept {
            ph_warn!(
                "new definitions ({} bytes) not kept on flash: the buffer is too small or busy",
                body.len()
            );
        }
        self.persist_wake.signal(());
    }
}

/// The handle's persistence calls.
impl<'d, M: RawMutex> Posthog<'d, M> {
    /// Asks for every queued event to be written to flash now, whatever the persistence
    /// policy (see [`Client::persist_now`]); [`persisted`](Self::persisted) waits for it.
    pub fn persist_now(&self) {
        self.shared().with(Client::persist_now);
    }

    /// Queued events not yet on flash (see [`Client::unpersisted`]).
    #[must_use]
    pub fn unpersisted(&self) -> usize {
        self.shared().peek(Client::unpersisted)
    }

    /// What the storage runner did with new definitions (written to flash, or not kept).
    #[must_use]
    pub fn definitions_stats(&self) -> DefinitionsStats {
        self.shared().definitions_stats()
    }

    /// Persistence counters (see [`Client::persist_stats`]).
    #[must_use]
    pub fn persist_stats(&self) -> PersistStats {
        self.shared().peek(Client::persist_stats)
    }

    /// [`persist_now`](Self::persist_now), then waits until flash is up to date (every queued
    /// event, every delivery, new definitions: see [`Client::is_persisted`]) or `deadline`
    /// passes (before deep sleep or a planned reset); returns how many events are not on flash.
    pub async fn persisted(&self, deadline: embassy_time::Instant) -> usize {
        self.persist_now();
        loop {
            let generation = self.shared().settled.generation();
            let (left, done) = self.shared().peek(|c| (c.unpersisted(), c.is_persisted()));
            let idle = self.shared().definitions_written();
            if (done && idle) || embassy_time::Instant::now() >= deadline {
                return left;
            }
            self.settled_since(generation, deadline).await;
        }
    }
}

/// Attaches persistence to the client behind `posthog`: returns the task that owns `flash`,
/// the mounted `log` and, to keep definitions, the mounted `slot`. Restore at boot first (see
/// [`StorageRunner`]).
///
/// # Errors
/// [`AlreadyAttached`] when the client has a storage runner already.
pub fn storage<'d, M: RawMutex, F: NorFlash>(
    posthog: Posthog<'d, M>,
    flash: F,
    log: EventLog,
    slot: Option<DefinitionsSlot>,
    buffers: StorageBuffers<'d>,
) -> Result<StorageRunner<'d, M, F>, AlreadyAttached> {
    let shared = posthog.shared();
    let StorageBuffers { event, definitions } = buffers;
    shared.mailbox.lock(|m| {
        let mut m = m.borrow_mut();
        if m.attached {
            return Err(AlreadyAttached);
        }
        m.attached = true;
        m.keeps = slot.is_some();
        m.buf = Some(definitions);
        Ok(())
    })?;
    Ok(StorageRunner {
        shared,
        flash,
        log,
        slot,
        event,
    })
}

/// The task that writes to flash (from [`storage`]): spawn one task that calls
/// [`run`](Self::run).
///
/// Persistence for the embassy driver (feature `storage`): this task owns the
/// flash, writes queued events to the [`EventLog`] as the client's
/// [`PersistPolicy`](crate::client::PersistPolicy) says, records deliveries, and keeps the
/// [`DefinitionsSlot`] in step with the definitions the network runner receives.
///
/// ```text
/// // At boot, before splitting the client: mount, attach, restore.
/// let (mut log, mounted) = EventLog::mount(&mut flash, EVENTS).await?;
/// let mut slot = DefinitionsSlot::mount(&mut flash, DEFINITIONS).await?;
/// client.attach_persistence(PersistPolicy::EveryEvent, persist::position(&mounted));
/// persist::restore(&mut log, &mut flash, &mut client, event_buf).await?;
/// persist::restore_definitions(&mut slot, &mut flash, &mut client, defs_buf, Some(SNAPSHOT)).await;
/// let (posthog, runner) = embassy::new(client, state, buffers, host)?;
/// let storage = embassy::storage(posthog, flash, log, Some(slot),
///     StorageBuffers { event: EVENT_BUF.take(), definitions: DEFS_BUF.take() })?;
/// spawner.spawn(storage_task(storage));   // storage.run().await
/// ```
///
/// The storage runner is a task of its own so that writing never waits for the network: with
/// [`EveryEvent`](crate::client::PersistPolicy::EveryEvent) an event reaches flash one step
/// after `capture` returns, even while a request hangs. The network runner hands new
/// definitions over by copying their body into the `definitions` buffer (a body that does not
/// fit is not kept, and a warning says so).
pub struct StorageRunner<'d, M: RawMutex, F: NorFlash> {
    shared: &'d Shared<'d, M>,
    flash: F,
    log: EventLog,
    slot: Option<DefinitionsSlot>,
    event: &'d mut [u8],
}

impl<M: RawMutex, F: NorFlash> StorageRunner<'_, M, F> {
    /// Serves the client forever.
    pub async fn run(&mut self) -> ! {
        loop {
            self.step().await;
        }
    }

    /// Carries out one step (new definitions, or one event, tail or anchor write), or sleeps
    /// until there may be one. ([`run`](Self::run) is `loop { step().await }`.)
    pub async fn step(&mut self) {
        if self.write_definitions().await {
            return;
        }
        let now = self.shared.now();
        let event = &mut *self.event;
        let step = self
            .shared
            .client
            .lock(|c| c.borrow_mut().next_persist_step(now, event));
        if let Some(step) = step {
            let r = persist::apply(&mut self.log, &mut self.flash, &step, self.event).await;
            let now = self.shared.now();
            self.shared
                .client
                .lock(|c| c.borrow_mut().finish_persist_step(now, &step, r));
            self.shared.settled.notify();
            return;
        }
        let retry = self.shared.peek(|c| c.persist_timeout());
        let wake = self.shared.persist_wake.wait();
        match retry {
            Some(at) => {
                let at = embassy_time::Instant::from_millis(at.as_millis());
                let _ = select(embassy_time::Timer::at(at), wake).await;
            }
            None => wake.await,
        }
    }

    /// Writes definitions the network runner left, if any; whether it did.
    async fn write_definitions(&mut self) -> bool {
        let taken = self.shared.mailbox.lock(|m| {
            let mut m = m.borrow_mut();
            if m.pending.is_none() || m.buf.is_none() {
                return None;
            }
            Some((m.pending.take()?, m.buf.take()?))
        });
        let Some((pending, buf)) = taken else {
            return false;
        };
        if let Some(slot) = self.slot.as_mut() {
            let r = match pending.change {
                DefinitionsChange::Loaded => {
                    let doc = buf.get(..pending.len).unwrap_or_default();
                    let etag = (!pending.etag.is_empty()).then_some(pending.etag.as_bytes());
                    slot.store(&mut self.flash, doc, etag).await
                }
                DefinitionsChange::Cleared => slot.clear(&mut self.flash).await,
            };
            let ok = r.is_ok();
            if let Err(e) = r {
                ph_warn!("definitions not kept on flash: {}", e);
            }
            self.shared.mailbox.lock(|m| {
                let s = &mut m.borrow_mut().stats;
                if ok {
                    s.written = s.written.saturating_add(1);
                } else {
                    s.failed = s.failed.saturating_add(1);
                }
            });
        }
        self.shared.mailbox.lock(|m| m.borrow_mut().buf = Some(buf));
        self.shared.settled.notify();
        true
    }

    /// The event log's counters.
    #[must_use]
    pub fn log_stats(&self) -> LogStats {
        *self.log.stats()
    }

    /// The client's persistence counters.
    #[must_use]
    pub fn persist_stats(&self) -> PersistStats {
        self.shared.peek(|c| c.persist_stats())
    }
}
