//! What the client reports: statistics, the fate of each event, batch outcomes and the
//! before-send verdict.

use core::fmt;

use crate::capture::{QueueStats, SeqRange};
use crate::error::BatchError;
use crate::net::TransportError;
use crate::time::Instant;

/// The last delivery problem, for diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DeliveryError {
    /// The server answered with this status.
    Status(u16),
    /// No response.
    Transport(TransportError),
    /// A request could not be built.
    Build(BatchError),
    /// New definitions could not be used (the old ones are kept).
    Definitions(crate::flags::LoadError),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "server answered {s}"),
            Self::Transport(e) => write!(f, "no response: {e}"),
            Self::Build(e) => write!(f, "request not built: {e}"),
            Self::Definitions(e) => write!(f, "definitions not loaded: {e}"),
        }
    }
}

impl core::error::Error for DeliveryError {}

/// How a batch ended, reported to the optional callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BatchOutcome {
    /// Delivered: the server answered 2xx.
    Delivered {
        /// The records.
        records: SeqRange,
    },
    /// Dropped for good (terminal 4xx, too large for any request, or the give-up policy the
    /// application chose; never by an outage with the default policy).
    Dropped {
        /// The records.
        records: SeqRange,
        /// Why.
        error: DeliveryError,
    },
    /// Evicted by the overflow policy ([`OverflowPolicy::DropOldest`](crate::capture::OverflowPolicy::DropOldest)) to make room for newer
    /// events, and never delivered. Reported after the capture that evicted them, or, while a
    /// batch is in flight, once it is settled (events of that batch only if it was not
    /// delivered).
    Evicted {
        /// The records.
        records: SeqRange,
    },
    /// Discarded by [`Client::opt_out_and_clear`](super::Client::opt_out_and_clear).
    Cleared {
        /// The records.
        records: SeqRange,
    },
    /// Will be retried.
    Retrying {
        /// The records.
        records: SeqRange,
        /// Why it failed.
        error: DeliveryError,
        /// Not before this instant.
        at: Instant,
    },
}

/// What became of a captured event (see [`Client::fate`](super::Client::fate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fate {
    /// Still queued (waiting, in flight, or in back-off).
    Queued,
    /// Delivered: the server answered 2xx.
    Delivered,
    /// Dropped and counted (evicted, refused by the server, given up, too large).
    Dropped,
    /// Not known: never captured, or settled too long ago to remember.
    Unknown,
}

/// How many recent settlements [`Client::fate`](super::Client::fate) remembers.
pub const FATE_HISTORY: usize = 16;

/// Decision of a before-send filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// Queue the event.
    Keep,
    /// Drop it (counted in [`ClientStats::filtered`]).
    Drop,
}

/// What a before-send filter sees of an event.
#[derive(Clone, Copy, Debug)]
pub struct EventInfo<'e> {
    /// The event name (`$identify`, `$set`, ... for the built-in kinds).
    pub event: &'e str,
    /// The distinct id.
    pub distinct_id: &'e str,
}

/// Counters of everything the client did. All saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ClientStats {
    /// Events accepted into the queue.
    pub captured: u32,
    /// Events delivered (2xx).
    pub sent: u32,
    /// Events the queue evicted while their batch was in flight, which the server then
    /// acknowledged: counted in [`QueueStats::evicted`] and in [`sent`](Self::sent). So
    /// `captured + evicted_then_delivered == sent + dropped + pending`.
    pub evicted_then_delivered: u32,
    /// Events refused at the gate (opted out or shut down).
    pub gated: u32,
    /// Events dropped by the before-send filter or a [`BeforeSend`](super::BeforeSend) hook.
    pub filtered: u32,
    /// Events dropped because a [`BeforeSend`](super::BeforeSend) hook failed (fail closed).
    pub hook_failed: u32,
    /// Events refused by validation (empty names or ids, bad properties).
    pub invalid: u32,
    /// Retries scheduled.
    pub retries: u32,
    /// Requests sent (batches and definitions polls).
    pub requests: u32,
    /// Definitions loads that succeeded.
    pub definitions_loaded: u32,
    /// Definitions refreshes that failed (old definitions kept).
    pub definitions_failed: u32,
    /// Definitions polls answered `304 Not Modified` (the definitions in use are current).
    pub definitions_unchanged: u32,
    /// The queue's own counters (evictions, rejections, discards by reason).
    pub queue: QueueStats,
    /// The last delivery problem.
    pub last_error: Option<DeliveryError>,
}
