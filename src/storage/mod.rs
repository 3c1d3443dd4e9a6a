//! Persistence on NOR flash (feature `storage`): unsent events and flag definitions survive
//! resets and power cuts.
//!
//! Two independent regions of any [`NorFlash`](embedded_storage_async::nor_flash::NorFlash)
//! (the trait embassy's and esp-hal's flash drivers implement), each given as an address range
//! aligned to the flash's erase size:
//! - [`EventLog`]: the queued events, as a log-structured ring of pages;
//! - [`DefinitionsSlot`]: the last good flag-definitions document and its `ETag`, in two copies
//!   written alternately.
//!
//! Both write each flash word at most once between erases (so ECC flash such as the STM32H7's
//! works, and no `MultiwriteNorFlash` is needed), check every item with a CRC-32, and survive a
//! power cut at any point: see each type's documentation for what a cut can cost. Their RAM does
//! not depend on the size of the region.
//!
//! # Why not `sequential-storage`
//!
//! Its queue removes items by rewriting their headers, which needs `MultiwriteNorFlash`, and it
//! has an open power-fail issue in its append path. The event log here removes events by
//! appending a tail number instead (events are delivered oldest first), which needs neither.
//!
//! # Wear
//!
//! Each event is written once: its JSON plus [`EVENT_OVERHEAD`] (36) bytes, rounded up to the
//! flash's write unit. Each delivered batch appends a tail item (20 bytes with a 4-byte unit),
//! each boot a boot item, each boot that learns the wall clock an anchor item. Pages are
//! erased in ring order, so every page of a region of `R` bytes is erased once per `R` bytes
//! written, and a part rated for `C` erase cycles takes `R × C` bytes of writes:
//!
//! ```text
//! events until worn out ≈ R × C / (36 + JSON + 20 / events per batch)
//! ```
//!
//! For the example firmware's events (274 bytes of JSON, 312 bytes on flash, batches of 10:
//! 314 bytes per event), a 64 KiB region of a 10,000-cycle part takes 2.1 million events: four
//! years at one event a minute, five months at one every 6 seconds. The figure grows with the
//! region: give the log every page you can spare. With
//! [`PersistPolicy::Every`](crate::client::PersistPolicy) or `OnFlush`, events delivered before
//! their turn to be written never touch flash at all.
//!
//! The definitions slot is erased once per new document (halves in turn): at most once per
//! definitions change, which PostHog's `ETag` makes rare.

mod crc;
pub mod log;
mod region;
#[cfg(any(test, feature = "std"))]
pub mod sim;
pub mod slot;

use core::fmt;

pub use log::{
    AppendError, BootInfo, EventLog, EventTime, LogStats, MountError, Mounted, ReadError,
    StoredEvent, BOOT_RESERVE, EVENT_OVERHEAD, FLAG_TIMESTAMP, MAX_BOOTS,
};
pub use region::MAX_WRITE_SIZE;
pub use slot::{DefinitionsSlot, SlotError, StoredDefinitions};

/// A flash operation failed (a Copy summary of the driver's error kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlashError {
    /// The driver said the arguments were not aligned (a bug: please report it).
    NotAligned,
    /// The driver said the range was out of bounds (a bug: please report it).
    OutOfBounds,
    /// The driver failed otherwise (hardware error, power loss, ECC error).
    Other,
}

impl FlashError {
    pub(crate) fn from_kind(k: embedded_storage_async::nor_flash::NorFlashErrorKind) -> Self {
        use embedded_storage_async::nor_flash::NorFlashErrorKind as K;
        match k {
            K::NotAligned => Self::NotAligned,
            K::OutOfBounds => Self::OutOfBounds,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for FlashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAligned => "unaligned access",
            Self::OutOfBounds => "out of bounds",
            Self::Other => "device error",
        })
    }
}

impl core::error::Error for FlashError {}

/// A region or flash the storage layer cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GeometryError {
    /// The write or read size is larger than [`MAX_WRITE_SIZE`] or they do not divide each
    /// other and the erase size.
    WriteSize {
        /// The flash's write size.
        write: usize,
        /// The flash's read size.
        read: usize,
        /// Largest supported.
        max: usize,
    },
    /// The range does not start and end on erase-page boundaries.
    Unaligned {
        /// The flash's erase size.
        erase: usize,
    },
    /// The range ends past the flash.
    OutOfBounds {
        /// End of the range.
        end: u32,
        /// The flash's capacity.
        capacity: usize,
    },
    /// The range holds fewer pages than needed.
    TooSmall {
        /// Pages in the range.
        pages: usize,
        /// Pages needed.
        min: usize,
    },
    /// The erase page is smaller than 256 bytes.
    PageSize {
        /// The flash's erase size.
        page: usize,
    },
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WriteSize { write, read, max } => write!(
                f,
                "write size {write} and read size {read} unsupported (at most {max}, dividing the erase size)"
            ),
            Self::Unaligned { erase } => {
                write!(f, "range not aligned to the {erase}-byte erase size")
            }
            Self::OutOfBounds { end, capacity } => {
                write!(f, "range ends at {end}, past the flash's {capacity} bytes")
            }
            Self::TooSmall { pages, min } => {
                write!(f, "range holds {pages} pages, at least {min} needed")
            }
            Self::PageSize { page } => write!(f, "erase size {page} below 256 bytes"),
        }
    }
}

impl core::error::Error for GeometryError {}
