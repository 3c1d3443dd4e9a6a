//! One logging shim for the whole crate: `defmt`, `log`, or nothing.
//!
//! `defmt` and `log` are mutually exclusive in spirit; if both features are enabled (for example
//! by `--all-features`), `defmt` wins. Never pass an API key, a secret key or event contents to
//! these macros.
#![allow(unused_macros)]

macro_rules! ph_debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::debug!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = ($($arg)*); }
    }};
}

macro_rules! ph_warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::warn!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))]
        { let _ = ($($arg)*); }
    }};
}
