//! std driver pieces.

use crate::time::{Clock, Instant, UnixMillis};

/// [`Clock`] over `std::time`: monotonic time since the clock was created, and the system wall
/// clock (assumed trusted; hosts normally run NTP).
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    start: std::time::Instant,
}

impl StdClock {
    /// A clock whose monotonic epoch is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn wall(&self) -> Option<UnixMillis> {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(UnixMillis::from_millis(u64::try_from(d.as_millis()).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_clock_reads_both_clocks() {
        let c = StdClock::new();
        let a = c.now();
        let now = c.read();
        assert!(now.mono >= a);
        // Any machine running this test is past 2020.
        assert!(now.wall.unwrap().as_millis() > 1_577_836_800_000);
    }
}
