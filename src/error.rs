//! Public error types: one small `Copy` enum per operation, each with a human [`Display`],
//! [`core::error::Error`], and `defmt::Format` behind the `defmt` feature. Errors carry the
//! sizes involved; none ever contains an API key or event contents.
//!
//! [`Display`]: core::fmt::Display

use core::fmt;

/// A property (or other JSON value) the caller tried to write was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PropertyError {
    /// A property key was empty.
    EmptyKey,
    /// A property key was longer than the configured limit.
    KeyTooLong {
        /// Length of the key, in bytes.
        len: usize,
        /// The configured maximum, in bytes.
        max: usize,
    },
    /// A float was NaN or infinite; JSON cannot represent it.
    NonFiniteNumber,
    /// A sub-object or section that may be written once was written twice (for example `$set`).
    DuplicateSection,
    /// A `Serialize` implementation reported an error of its own (the `serde` feature).
    NotSerializable,
    /// A map key that JSON cannot hold as a string (a float, a bool, a sequence, ...) (the
    /// `serde` feature).
    NonStringKey,
    /// A value nested deeper than the limit (the `serde` feature's
    /// `json::typed::MAX_SERDE_DEPTH`).
    TooDeep {
        /// The deepest nesting accepted.
        max: usize,
    },
    /// Text given as already-encoded JSON ([`RawJson`](crate::json::write::RawJson)) is not
    /// exactly one JSON value.
    InvalidJson {
        /// Byte offset into the text where it stops being one JSON value.
        offset: usize,
    },
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EmptyKey => f.write_str("property key is empty"),
            Self::KeyTooLong { len, max } => {
                write!(
                    f,
                    "property key is {len} bytes, more than the limit of {max}"
                )
            }
            Self::NonFiniteNumber => f.write_str("NaN or infinite number cannot be sent as JSON"),
            Self::DuplicateSection => f.write_str("section written twice in one event"),
            Self::NotSerializable => f.write_str("the value's Serialize implementation failed"),
            Self::NonStringKey => f.write_str("map key is not a string, char or integer"),
            Self::TooDeep { max } => write!(f, "value nested deeper than {max} levels"),
            Self::InvalidJson { offset } => {
                write!(f, "raw JSON value is not one JSON value (at byte {offset})")
            }
        }
    }
}

impl core::error::Error for PropertyError {}

/// An event could not be captured. Nothing was written to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CaptureError {
    /// The event name was empty.
    EmptyEventName,
    /// The distinct id was empty or only whitespace.
    EmptyDistinctId,
    /// The alias (the second id of `alias`) was empty or only whitespace.
    EmptyAlias,
    /// `group_identify` was called with an empty group type.
    EmptyGroupType,
    /// `group_identify` was called with an empty group key.
    EmptyGroupKey,
    /// A group in `$groups` had an empty type or key.
    InvalidGroup,
    /// The event's timestamp lies beyond `9999-12-31T23:59:59.999Z` and cannot be rendered.
    InvalidTimestamp,
    /// A property was rejected.
    Property(PropertyError),
    /// The encoded event is larger than the whole queue (or than the configured maximum event
    /// size), so it can never be stored or sent.
    TooLarge {
        /// Bytes the record needs, including its frame header.
        needed: usize,
        /// The most a single record may take.
        max: usize,
    },
    /// The client is opted out or shut down: the event was dropped at the gate (counted).
    Disabled,
    /// A before-send filter dropped the event (counted).
    Filtered,
    /// A before-send hook failed (or an edit it asked for did not fit the record): the event
    /// was dropped, fail closed (counted in `ClientStats::hook_failed`).
    HookFailed,
    /// The queue is full and the overflow policy is
    /// [`RejectNewest`](crate::capture::OverflowPolicy::RejectNewest).
    QueueFull {
        /// Bytes the record needs, including its frame header.
        needed: usize,
        /// Largest contiguous free space in the queue at the time.
        free: usize,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::EmptyEventName => f.write_str("event name is empty"),
            Self::EmptyDistinctId => f.write_str("distinct_id is empty"),
            Self::EmptyAlias => f.write_str("alias is empty"),
            Self::EmptyGroupType => f.write_str("group type is empty"),
            Self::EmptyGroupKey => f.write_str("group key is empty"),
            Self::InvalidGroup => f.write_str("a group in $groups has an empty type or key"),
            Self::InvalidTimestamp => f.write_str("timestamp is after year 9999"),
            Self::Disabled => f.write_str("capture is off (opted out or shut down)"),
            Self::Filtered => f.write_str("dropped by the before-send filter"),
            Self::HookFailed => f.write_str("dropped: a before-send hook failed"),
            Self::Property(e) => write!(f, "invalid property: {e}"),
            Self::TooLarge { needed, max } => write!(
                f,
                "event needs {needed} bytes but a queued event may take at most {max}"
            ),
            Self::QueueFull { needed, free } => write!(
                f,
                "queue full: event needs {needed} bytes, {free} contiguous bytes free"
            ),
        }
    }
}

impl core::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Property(e) => Some(e),
            _ => None,
        }
    }
}

impl From<PropertyError> for CaptureError {
    fn from(e: PropertyError) -> Self {
        Self::Property(e)
    }
}

/// A `/batch/` body could not be rendered. The queue is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BatchError {
    /// The oldest queued event alone does not fit in the body buffer. Drop it with
    /// [`Queue::drop_oldest`](crate::capture::Queue::drop_oldest) (it is counted), or render
    /// into a buffer of at least `needed` bytes.
    RecordTooLarge {
        /// Sequence number of the record that does not fit.
        seq: u64,
        /// Body bytes needed to send this record alone.
        needed: usize,
        /// Bytes available for the body.
        available: usize,
    },
    /// The body buffer cannot even hold the envelope (`api_key`, brackets, `sent_at`).
    BufferTooSmall {
        /// Bytes the envelope needs.
        needed: usize,
        /// Bytes available for the body.
        available: usize,
    },
    /// `max_events` was zero.
    ZeroEvents,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RecordTooLarge {
                seq,
                needed,
                available,
            } => write!(
                f,
                "queued event #{seq} needs a {needed}-byte body, only {available} bytes available"
            ),
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "batch envelope needs {needed} bytes, only {available} bytes available"
            ),
            Self::ZeroEvents => f.write_str("max_events is zero"),
        }
    }
}

impl core::error::Error for BatchError {}

/// Text that should be an RFC 3339 / ISO 8601 timestamp is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseTimestampError {
    /// Not of the form `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    Syntax,
    /// A field is out of range (month 13, February 30, hour 24, ...).
    FieldOutOfRange,
    /// The instant lies before 1970-01-01T00:00:00Z or after 9999-12-31T23:59:59.999Z.
    OutOfRange,
}

impl fmt::Display for ParseTimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "not an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM))",
            Self::FieldOutOfRange => "a date or time field is out of range",
            Self::OutOfRange => "timestamp is before 1970 or after 9999",
        })
    }
}

impl core::error::Error for ParseTimestampError {}

/// Text that should be a UUID (`8-4-4-4-12` hex digits) is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParseUuidError;

impl fmt::Display for ParseUuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
    }
}

impl core::error::Error for ParseUuidError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_carries_sizes() {
        assert_eq!(
            CaptureError::TooLarge {
                needed: 5000,
                max: 4096
            }
            .to_string(),
            "event needs 5000 bytes but a queued event may take at most 4096"
        );
        assert_eq!(
            CaptureError::from(PropertyError::KeyTooLong { len: 300, max: 200 }).to_string(),
            "invalid property: property key is 300 bytes, more than the limit of 200"
        );
        assert_eq!(
            BatchError::RecordTooLarge {
                seq: 7,
                needed: 900,
                available: 512
            }
            .to_string(),
            "queued event #7 needs a 900-byte body, only 512 bytes available"
        );
    }
}
