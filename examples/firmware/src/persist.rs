//! Persistence on the emulated flash chip (feature `persist`): the queue and the flag
//! definitions survive resets.
//!
//! The chip's 64 KiB are split in two regions:
//!
//! | Region | Pages (4 KiB) | Holds |
//! |---|---|---|
//! | `0x0000..0xA000` | 10 | the event log: every captured event, until a 2xx removes it |
//! | `0xA000..0x10000` | 6 | the definitions slot: two copies of 12 KiB, written alternately |
//!
//! At boot, before the client is split: mount both, attach persistence, put the stored events
//! back in the queue (with the time their boot could establish), and load the stored
//! definitions with their `ETag` (or the snapshot compiled into the firmware when there are
//! none). Then a storage task writes each captured event to flash as it is queued, records each
//! delivery, and keeps new definitions.

use embassy_executor::Spawner;
use posthog_embedded::adapters::embassy::{self, StorageBuffers, StorageRunner};
use posthog_embedded::adapters::persist::{self, DefinitionsSource};
use posthog_embedded::client::{Client, PersistPolicy};
use posthog_embedded::storage::{DefinitionsSlot, EventLog};
use static_cell::ConstStaticCell;

use crate::hw::Flash0;
use crate::{Failure, Mutex, PostHogHandle};

/// The event log's region of the chip.
const EVENTS: core::ops::Range<u32> = 0..0xA000;
/// The definitions slot's region.
const DEFINITIONS: core::ops::Range<u32> = 0xA000..0x1_0000;

/// Stages one event on its way to flash, and one stored event at boot: larger events (there
/// are none here) stay in RAM only.
static EVENT_BUF: ConstStaticCell<[u8; 1024]> = ConstStaticCell::new([0; 1024]);
/// Definitions on their way to and from flash: as large as the document the server sends.
/// Only the reset pass polls definitions; the other builds keep none (the snapshot is used).
#[cfg(feature = "e2e-reset")]
const DEFINITIONS_BUF: usize = 12 * 1024;
#[cfg(not(feature = "e2e-reset"))]
const DEFINITIONS_BUF: usize = 0;
static DEFS_BUF: ConstStaticCell<[u8; DEFINITIONS_BUF]> =
    ConstStaticCell::new([0; DEFINITIONS_BUF]);

/// What the boot found (without the storage task's parts).
#[cfg(feature = "e2e-reset")]
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    /// This boot's number (1 on a fresh chip).
    pub boot: u32,
    /// Events put back in the queue.
    pub restored: u32,
    /// Where the definitions came from.
    pub definitions: DefinitionsSource,
}

#[cfg(feature = "e2e-reset")]
impl BootInfo {
    /// What `booted` found.
    pub fn of(booted: &Booted) -> Self {
        Self {
            boot: booted.boot,
            restored: booted.restored,
            definitions: booted.definitions,
        }
    }
}

/// What the boot found, and the storage task's parts. (Only the reset pass reads the first
/// three; every boot logs them.)
#[cfg_attr(not(feature = "e2e-reset"), allow(dead_code))]
pub struct Booted {
    /// This boot's number (1 on a fresh chip).
    pub boot: u32,
    /// Events put back in the queue.
    pub restored: u32,
    /// Where the definitions came from.
    pub definitions: DefinitionsSource,
    flash: Flash0,
    log: EventLog,
    slot: DefinitionsSlot,
    event: &'static mut [u8],
    defs: &'static mut [u8],
}

/// Mounts the chip, attaches persistence to `client`, restores the stored events and
/// definitions (`snapshot` when flash has none).
pub async fn boot(client: &mut Client<'static>, snapshot: &[u8]) -> Result<Booted, Failure> {
    let mut flash = Flash0::take().ok_or("flash chip already taken")?;
    let (mut log, mounted) = EventLog::mount(&mut flash, EVENTS).await.map_err(|e| {
        error!("event log: {}", e);
        "event log does not mount"
    })?;
    let mut slot = DefinitionsSlot::mount(&mut flash, DEFINITIONS)
        .await
        .map_err(|e| {
            error!("definitions slot: {}", e);
            "definitions slot does not mount"
        })?;
    client.attach_persistence(PersistPolicy::EveryEvent, persist::position(&mounted));
    let event: &'static mut [u8] = EVENT_BUF.try_take().ok_or("flash buffers already taken")?;
    let defs: &'static mut [u8] = DEFS_BUF.try_take().ok_or("flash buffers already taken")?;
    let restored = persist::restore(&mut log, &mut flash, client, event)
        .await
        .map_err(|e| {
            error!("restoring events: {}", e);
            "stored events unreadable"
        })?;
    let definitions =
        persist::restore_definitions(&mut slot, &mut flash, client, defs, Some(snapshot)).await;
    info!(
        "boot {}: {} events restored from flash ({} with an approximate time, {} dropped); definitions from {}",
        mounted.boot,
        restored.restored,
        restored.approximate,
        restored.dropped,
        match definitions {
            DefinitionsSource::Flash => "flash",
            DefinitionsSource::Snapshot => "the compiled-in snapshot",
            DefinitionsSource::None => "nowhere",
        }
    );
    Ok(Booted {
        boot: mounted.boot,
        restored: restored.restored,
        definitions,
        flash,
        log,
        slot,
        event,
        defs,
    })
}

/// Starts the storage task for the client behind `ph`.
pub fn spawn(spawner: Spawner, ph: PostHogHandle, booted: Booted) -> Result<(), Failure> {
    let Booted {
        flash,
        log,
        slot,
        event,
        defs,
        ..
    } = booted;
    let runner = embassy::storage(
        ph,
        flash,
        log,
        Some(slot),
        StorageBuffers {
            event,
            definitions: defs,
        },
    )
    .map_err(|_| "storage already attached")?;
    spawner.spawn(storage_task(runner).map_err(|_| "storage task already running")?);
    Ok(())
}

#[embassy_executor::task]
async fn storage_task(mut runner: StorageRunner<'static, Mutex, Flash0>) -> ! {
    runner.run().await
}
