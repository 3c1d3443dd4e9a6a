//! Time as the core sees it: a monotonic [`Instant`], an optional wall clock [`UnixMillis`], and
//! the [`Clock`] trait drivers implement.
//!
//! The core never reads a clock. Every operation that needs time takes a [`Now`] (or an
//! [`Instant`]) argument, so tests can drive the whole client with a virtual clock.
//!
//! Resolution is one millisecond everywhere: PostHog's `offset` and `timestamp` fields carry
//! milliseconds, and a device tick rarely needs more for analytics.
//!
//! [`timestamp`] holds the calendar arithmetic and the RFC 3339 / ISO 8601 text form of
//! [`UnixMillis`], used by the event encoder, the HTTP date parser and the flag date operators.

use core::fmt;
use core::ops::{Add, Sub};

pub mod timestamp;

/// A point on the device's monotonic clock, in milliseconds since an arbitrary epoch (usually
/// boot). Never goes backwards; unrelated to calendar time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The clock's epoch.
    pub const ZERO: Self = Self(0);

    /// An instant `ms` milliseconds after the clock's epoch.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the clock's epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` on overflow.
    #[must_use]
    pub const fn checked_add(self, d: Duration) -> Option<Self> {
        match self.0.checked_add(d.0) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Saturates at the end of time instead of overflowing.
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturates at zero when `rhs` is later than `self`.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A span of time in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(u64);

impl Duration {
    /// No time at all.
    pub const ZERO: Self = Self(0);

    /// `ms` milliseconds.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// `s` seconds (saturating).
    #[must_use]
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }

    /// The span in whole milliseconds.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }
}

/// Whole milliseconds, rounded up (a nonzero span never becomes zero), saturating.
impl From<core::time::Duration> for Duration {
    fn from(d: core::time::Duration) -> Self {
        Self(u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> Self {
        Self::from_millis(d.0)
    }
}

/// Whole milliseconds, rounded up, so settings can be written in `embassy_time` units.
#[cfg(feature = "embassy")]
impl From<embassy_time::Duration> for Duration {
    fn from(d: embassy_time::Duration) -> Self {
        Self(d.as_micros().div_ceil(1000))
    }
}

#[cfg(feature = "embassy")]
impl From<Duration> for embassy_time::Duration {
    fn from(d: Duration) -> Self {
        Self::from_millis(d.0)
    }
}

impl Add for Duration {
    type Output = Self;
    /// Saturating addition.
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

#[cfg(test)]
mod conversions {
    use super::Duration;

    #[test]
    fn durations_convert_in_whole_milliseconds_rounded_up() {
        assert_eq!(
            Duration::from(core::time::Duration::from_micros(1)),
            Duration::from_millis(1)
        );
        assert_eq!(
            Duration::from(core::time::Duration::from_millis(7)),
            Duration::from_millis(7)
        );
        assert_eq!(Duration::from(core::time::Duration::ZERO), Duration::ZERO);
        assert_eq!(
            Duration::from(core::time::Duration::MAX).as_millis(),
            u64::MAX
        );
        assert_eq!(
            core::time::Duration::from(Duration::from_millis(7)),
            core::time::Duration::from_millis(7)
        );
        #[cfg(feature = "embassy")]
        {
            assert_eq!(
                Duration::from(embassy_time::Duration::from_micros(1500)),
                Duration::from_millis(2)
            );
            assert_eq!(
                embassy_time::Duration::from(Duration::from_secs(3)),
                embassy_time::Duration::from_secs(3)
            );
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Wall-clock time: milliseconds since 1970-01-01T00:00:00Z (UTC, leap seconds ignored, as
/// Unix time always is).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnixMillis(u64);

impl UnixMillis {
    /// The latest instant that renders as a four-digit-year ISO 8601 timestamp:
    /// `9999-12-31T23:59:59.999Z`.
    pub const MAX: Self = Self(253_402_300_799_999);

    /// `ms` milliseconds after the Unix epoch.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// `s` seconds after the Unix epoch (saturating).
    #[must_use]
    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Parses an RFC 3339 / ISO 8601 timestamp such as `2023-11-15T03:43:20.000+05:30` or
    /// `2026-01-02T03:04:05Z` into the same instant in UTC. Fractional digits beyond
    /// milliseconds are truncated. See [`timestamp`].
    ///
    /// # Errors
    /// [`crate::error::ParseTimestampError`] when the text is not a valid timestamp
    /// or lies before 1970.
    pub fn parse_rfc3339(s: &str) -> Result<Self, crate::error::ParseTimestampError> {
        timestamp::parse_rfc3339(s)
    }
}

impl fmt::Display for UnixMillis {
    /// Formats as ISO 8601 UTC with milliseconds (`2026-01-02T03:04:05.000Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; timestamp::ISO_LEN];
        match timestamp::format_iso8601(*self, &mut buf) {
            Some(s) => f.write_str(s),
            None => write!(f, "unix:{}ms", self.0),
        }
    }
}

/// One reading of the clocks, passed to every core operation that needs time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Now {
    /// The monotonic clock.
    pub mono: Instant,
    /// The wall clock, when the device knows it (RTC, SNTP, GNSS, cellular network time).
    pub wall: Option<UnixMillis>,
}

impl Now {
    /// A reading with only a monotonic clock.
    #[must_use]
    pub const fn mono(mono: Instant) -> Self {
        Self { mono, wall: None }
    }

    /// A reading with both clocks.
    #[must_use]
    pub const fn with_wall(mono: Instant, wall: UnixMillis) -> Self {
        Self {
            mono,
            wall: Some(wall),
        }
    }
}

/// A source of time, implemented by drivers (see [`crate::adapters`]). The core never calls it;
/// drivers read it and pass [`Now`] in.
pub trait Clock {
    /// The monotonic clock. Must never go backwards.
    fn now(&self) -> Instant;

    /// The wall clock, if known and trusted. The default implementation knows none, which makes
    /// events carry `offset` instead of `timestamp` (see the crate docs).
    fn wall(&self) -> Option<UnixMillis> {
        None
    }

    /// Both clocks, read together.
    fn read(&self) -> Now {
        Now {
            mono: self.now(),
            wall: self.wall(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let a = Instant::from_millis(10);
        let b = Instant::from_millis(25);
        assert_eq!(b - a, Duration::from_millis(15));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(
            Instant::from_millis(u64::MAX) + Duration::from_millis(5),
            Instant::from_millis(u64::MAX)
        );
        assert_eq!(
            Instant::from_millis(u64::MAX).checked_add(Duration::from_millis(1)),
            None
        );
        assert_eq!(Duration::from_secs(u64::MAX).as_millis(), u64::MAX);
    }

    #[test]
    fn unix_millis_displays_iso() {
        use std::string::ToString;
        assert_eq!(
            UnixMillis::from_millis(1_767_323_045_123).to_string(),
            "2026-01-02T03:04:05.123Z"
        );
        assert_eq!(UnixMillis::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            UnixMillis::from_millis(UnixMillis::MAX.as_millis() + 1).to_string(),
            "unix:253402300800000ms"
        );
    }
}
