//! The persistence loop's pieces (feature `storage`): restoring the stored events into a client
//! at boot, and carrying out the client's persistence steps on an [`EventLog`].
//!
//! ```text
//! let (mut log, mounted) = EventLog::mount(&mut flash, REGION).await?;
//! client.attach_persistence(PersistPolicy::EveryEvent, persist::position(&mounted));
//! persist::restore(&mut log, &mut flash, &mut client, &mut buf).await?;   // before capturing
//! loop {
//!     // ... capture, poll_transmit / handle_response as usual ...
//!     persist::sync(&mut log, &mut flash, &mut client, clock.now(), &mut buf).await;
//! }
//! ```
//!
//! A driver that keeps the client behind a lock runs the steps one at a time instead:
//! [`Client::next_persist_step`] under the lock, [`apply`] without it,
//! [`Client::finish_persist_step`] under it again (the embassy driver's
//! [`StorageRunner`](super::embassy::StorageRunner) does).

use embedded_storage_async::nor_flash::NorFlash;

use crate::capture::{OverflowPolicy, Restored};
use crate::client::{Client, DefinitionsChange, LogPosition, PersistResult, PersistStep};
use crate::storage::{
    AppendError, DefinitionsSlot, EventLog, EventTime, Mounted, ReadError, SlotError,
    FLAG_TIMESTAMP,
};
use crate::time::{Duration, Now};

/// Where a freshly mounted log stands, for [`Client::attach_persistence`].
#[must_use]
pub const fn position(mounted: &Mounted) -> LogPosition {
    LogPosition {
        tail: mounted.tail,
        next: mounted.next_seq,
        boot: mounted.boot,
    }
}

/// What [`restore`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Restoration {
    /// Events put back in the queue.
    pub restored: u32,
    /// Events that did not fit the queue or the buffer: dropped, counted in the client's
    /// [`PersistStats::restore_dropped`](crate::client::PersistStats::restore_dropped).
    pub dropped: u32,
    /// Events restored with an approximate time (their boot never learned the wall clock).
    pub approximate: u32,
}

/// The queue's form of a stored event's time.
fn restored_time(time: EventTime) -> (bool, Option<Restored>) {
    match time {
        EventTime::InJson => (true, None),
        EventTime::Wall(t) => (false, Some(Restored::Wall(t))),
        EventTime::BeforeBoot(ms) => (false, Some(Restored::BeforeBoot(Duration::from_millis(ms)))),
        // Stored by this very boot (a restore after events were persisted): the instant is
        // not the queue's to keep, so the best known is "before now".
        EventTime::ThisBoot(_) => (false, Some(Restored::BeforeBoot(Duration::ZERO))),
    }
}

/// Puts every stored event back into `client`'s queue, oldest first, with the time the
/// log can establish ([`EventLog::event_time`]). Call it at boot, after
/// [`Client::attach_persistence`] and before capturing. `buf` must hold the largest stored
/// event's JSON ([`EventLog::max_json`] is always enough); a larger event is dropped, counted.
///
/// # Errors
/// [`ReadError::Flash`] when the flash fails (what was restored so far stays queued; restoring
/// again is refused, as events are then already queued).
pub async fn restore<F: NorFlash>(
    log: &mut EventLog,
    flash: &mut F,
    client: &mut Client<'_>,
    buf: &mut [u8],
) -> Result<Restoration, ReadError> {
    let mut done = Restoration::default();
    let mut from = 0;
    loop {
        let ev = match log.read(flash, from, buf).await {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(done),
            Err(ReadError::BufferTooSmall { seq, .. }) => {
                client.note_restore_dropped();
                done.dropped = done.dropped.saturating_add(1);
                match seq.checked_add(1) {
                    Some(next) => from = next,
                    None => return Ok(done),
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        // The last number there is ends the walk (reading from it again would repeat it).
        let last = ev.seq == u64::MAX;
        from = ev.seq.saturating_add(1);
        let (has_ts, time) = if ev.flags & FLAG_TIMESTAMP != 0 {
            (true, None)
        } else {
            restored_time(log.event_time(&ev))
        };
        let json = buf.get(..ev.len).unwrap_or_default();
        match client.restore(ev.seq, json, has_ts, time) {
            Ok(_) => {
                done.restored = done.restored.saturating_add(1);
                if matches!(time, Some(Restored::BeforeBoot(_))) {
                    done.approximate = done.approximate.saturating_add(1);
                }
            }
            Err(_) => done.dropped = done.dropped.saturating_add(1),
        }
        if last {
            return Ok(done);
        }
    }
}

/// Carries out one step on the log; `buf` holds the event's JSON for
/// [`PersistStep::Append`].
pub async fn apply<F: NorFlash>(
    log: &mut EventLog,
    flash: &mut F,
    step: &PersistStep,
    buf: &[u8],
) -> PersistResult {
    let r = match *step {
        PersistStep::Append {
            len,
            has_timestamp,
            captured,
            ..
        } => {
            let json = buf.get(..len).unwrap_or_default();
            let flags = if has_timestamp { FLAG_TIMESTAMP } else { 0 };
            // The log mirrors the queue: never drop stored events to make room.
            match log
                .append(flash, flags, captured, json, OverflowPolicy::RejectNewest)
                .await
            {
                Ok(seq) => return PersistResult::Done(Some(seq)),
                Err(e) => Err(e),
            }
        }
        PersistStep::SetTail(t) => log.set_tail(flash, t).await,
        PersistStep::Anchor(a) => log.record_anchor(flash, a).await,
    };
    match r {
        Ok(()) => PersistResult::Done(None),
        Err(AppendError::Full) => PersistResult::Full,
        Err(AppendError::TooLarge { .. }) => PersistResult::TooLarge,
        Err(_) => PersistResult::Flash,
    }
}

/// Carries out every step `client` asks for now; returns how many ran. `buf` stages an event's
/// JSON (as large as the largest event, or it is kept in RAM only).
pub async fn sync<F: NorFlash>(
    log: &mut EventLog,
    flash: &mut F,
    client: &mut Client<'_>,
    now: Now,
    buf: &mut [u8],
) -> usize {
    let mut n = 0;
    while let Some(step) = client.next_persist_step(now, buf) {
        let r = apply(log, flash, &step, buf).await;
        client.finish_persist_step(now, &step, r);
        n += 1;
        if !matches!(r, PersistResult::Done(_)) {
            break;
        }
    }
    n
}

/// Where the definitions in use at boot came from ([`restore_definitions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DefinitionsSource {
    /// The copy on flash, with its `ETag` (the first poll asks `If-None-Match`).
    Flash,
    /// The compiled-in snapshot: flash held none, or a copy that failed to read or load.
    Snapshot,
    /// Neither: no definitions until the first poll answers.
    None,
}

/// Loads the definitions kept on flash into `client`, with their `ETag`; falls back to
/// `snapshot` (a document compiled into the firmware) when the slot is empty, unreadable or
/// holds a document that does not load. `doc` must hold the largest document stored.
pub async fn restore_definitions<F: NorFlash>(
    slot: &mut DefinitionsSlot,
    flash: &mut F,
    client: &mut Client<'_>,
    doc: &mut [u8],
    snapshot: Option<&[u8]>,
) -> DefinitionsSource {
    let mut etag = [0u8; DefinitionsSlot::MAX_ETAG];
    if let Ok(Some((len, etag_len))) = slot.load(flash, doc, &mut etag).await {
        let body = doc.get(..len).unwrap_or_default();
        let tag = etag
            .get(..etag_len)
            .and_then(|t| core::str::from_utf8(t).ok())
            .unwrap_or("");
        if client.load_definitions_with_etag(body, tag).is_ok() {
            return DefinitionsSource::Flash;
        }
        ph_warn!("definitions on flash do not load: using the snapshot");
    }
    match snapshot.map(|s| client.load_definitions(s)) {
        Some(Ok(_)) => DefinitionsSource::Snapshot,
        _ => DefinitionsSource::None,
    }
}

/// After [`Client::handle_response`] with `body`: keeps the flash copy in step with the
/// definitions in use. New definitions loaded from `body` are stored with their `ETag`; a
/// quota answer clears the copy. A body that failed to load is never written, so the last good
/// copy stays. Returns what was done.
///
/// # Errors
/// [`SlotError`] when writing fails (the previous copy is kept: see [`DefinitionsSlot`]).
pub async fn persist_definitions<F: NorFlash>(
    slot: &mut DefinitionsSlot,
    flash: &mut F,
    client: &mut Client<'_>,
    body: &[u8],
) -> Result<Option<DefinitionsChange>, SlotError> {
    let Some(change) = client.take_definitions_change() else {
        return Ok(None);
    };
    match change {
        DefinitionsChange::Loaded => {
            let etag = client.definitions_etag().map(str::as_bytes);
            slot.store(flash, body, etag).await?;
        }
        DefinitionsChange::Cleared => slot.clear(flash).await?,
    }
    Ok(Some(change))
}
