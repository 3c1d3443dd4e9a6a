//! Why a log operation failed.

use super::super::{FlashError, GeometryError};

/// Why an append did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AppendError {
    /// The event needs `len` bytes but a page holds at most `max`.
    TooLarge {
        /// Bytes the item needs.
        len: usize,
        /// Largest item a page holds.
        max: usize,
    },
    /// The region holds only undelivered events and the policy refuses to drop them.
    Full,
    /// The flash failed (the page being written is closed; nothing half-written is trusted).
    Flash(FlashError),
}

impl core::fmt::Display for AppendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "event needs {len} bytes of flash, a page holds {max}")
            }
            Self::Full => f.write_str("flash region full of undelivered events"),
            Self::Flash(e) => write!(f, "flash: {e}"),
        }
    }
}

impl core::error::Error for AppendError {}

/// Why a read did not return an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadError {
    /// The event's JSON is `needed` bytes; the buffer holds `capacity`.
    BufferTooSmall {
        /// Its sequence number (skip it with a higher `from`, or grow the buffer).
        seq: u64,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The flash failed.
    Flash(FlashError),
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall {
                seq,
                needed,
                capacity,
            } => write!(
                f,
                "event {seq} is {needed} bytes, the buffer holds {capacity}"
            ),
            Self::Flash(e) => write!(f, "flash: {e}"),
        }
    }
}

impl core::error::Error for ReadError {}

/// Why mounting failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MountError {
    /// The region or the flash's sizes do not fit the log.
    Geometry(GeometryError),
    /// Not one page header of the region could be read: the flash is not working. (Reads that
    /// fail in some places are damage, skipped and counted.)
    Flash,
}

impl core::fmt::Display for MountError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Geometry(g) => write!(f, "event log: {g}"),
            Self::Flash => f.write_str("event log: no page of the region can be read"),
        }
    }
}

impl core::error::Error for MountError {}

impl From<GeometryError> for MountError {
    fn from(e: GeometryError) -> Self {
        Self::Geometry(e)
    }
}
