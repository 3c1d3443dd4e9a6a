//! Drivers: thin glue between the sans-IO core and a runtime. They read clocks, move bytes and
//! wait; they hold no policy.
//!
//! - `std` feature: `std::StdClock`.
//! - `embassy` feature: `embassy::EmbassyClock`.

#[cfg(feature = "embassy")]
pub mod embassy;
#[cfg(feature = "std")]
pub mod std;
