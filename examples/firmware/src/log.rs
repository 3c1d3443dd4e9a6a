//! Logging: plain text over semihosting, or defmt frames (feature `defmt`) over semihosting.
//! Both end up on QEMU's standard output; UART0 is the network.
//!
//! The macros take defmt-style format strings that core::fmt reads the same way: `{}` and
//! `{:?}` only, with arguments that implement both `Display`/`Debug` and `defmt::Format`.
//! Never log the API key (the e2e script checks the decoded output for it).

#[cfg(feature = "defmt")]
macro_rules! info {
    ($($arg:tt)*) => { ::defmt::info!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! info {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        ::cortex_m_semihosting::hprintln!(concat!("INFO  ", $fmt) $(, $arg)*)
    };
}

#[cfg(feature = "defmt")]
macro_rules! warn {
    ($($arg:tt)*) => { ::defmt::warn!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! warn {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        ::cortex_m_semihosting::hprintln!(concat!("WARN  ", $fmt) $(, $arg)*)
    };
}

#[cfg(feature = "defmt")]
macro_rules! error {
    ($($arg:tt)*) => { ::defmt::error!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! error {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {
        ::cortex_m_semihosting::hprintln!(concat!("ERROR ", $fmt) $(, $arg)*)
    };
}

#[cfg(feature = "defmt")]
defmt::timestamp!("{=u64:ms}", embassy_time::Instant::now().as_millis());

#[cfg(feature = "defmt")]
use defmt_semihosting as _;
