//! The embassy-time clock.

use crate::time::{Clock, Instant};

/// [`Clock`] over `embassy_time::Instant` (whatever time driver and tick rate the application
/// picked; this library never picks one). It knows no wall clock: wrap it, or implement
/// [`Clock`] yourself, when the device has an RTC or SNTP time.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_millis(embassy_time::Instant::now().as_millis())
    }
}
