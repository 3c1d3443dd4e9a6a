//! [`Resources`]: every byte a [`Client`](crate::client::Client) stores, with its capacities
//! named once, as const generics, like embassy-net's `StackResources<N>`.
//!
//! ```
//! use posthog_embedded::client::{Client, Config};
//! use posthog_embedded::resources::Resources;
//!
//! // 4 KiB of events; 16 flags, 128 nodes and 2 KiB of text for definitions; 64 exposures.
//! let mut resources = Resources::<4096, 16, 128, 2048, 64>::new();
//! let client = Client::new(Config::new("phc_project_token", 0x5eed), &mut resources)?;
//! assert_eq!(client.pending(), 0);
//! # Ok::<(), posthog_embedded::client::ConfigError>(())
//! ```
//!
//! On a device, put it in a `static` through a cell that hands out `&'static mut` once
//! (`static_cell::ConstStaticCell`): [`Resources::new`] is `const` and all zeros, so the
//! storage lands in `.bss` (no flash image, nothing copied at boot). On a host,
//! [`Client::with_capacity`](crate::client::Client::with_capacity) (feature `std`) allocates
//! the same storage on the heap at sizes chosen at run time.

use crate::flags::store::{FlagStorage, Requirements};

/// The storage of one client:
/// - `Q` bytes of event queue (each event is its JSON plus a 36-byte record header);
/// - a flag-definitions store of `F` flags, `N` nodes and `B` bytes of text
///   ([`FlagStore::requirements`](crate::flags::FlagStore::requirements) sizes them from a real
///   document; the CLI's `check` prints the same numbers);
/// - `T` entries (8 bytes each) of `$feature_flag_called` de-duplication;
/// - the definitions' `ETag` ([`MAX_ETAG`](crate::net::MAX_ETAG) bytes);
/// - with the `storage` feature, the bookkeeping of persistence (256 bytes on a Cortex-M4), used once
///   it is attached ([`Client::attach_persistence`](crate::client::Client::attach_persistence)).
#[derive(Clone, Debug)]
pub struct Resources<
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const T: usize = 256,
> {
    pub(crate) queue: [u8; Q],
    pub(crate) flags: FlagStorage<F, N, B>,
    pub(crate) called: [u64; T],
    pub(crate) etag: [u8; crate::net::MAX_ETAG],
    #[cfg(feature = "storage")]
    pub(crate) persist: super::persist::PersistSlot,
}

impl<const Q: usize, const F: usize, const N: usize, const B: usize, const T: usize> Default
    for Resources<Q, F, N, B, T>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const Q: usize, const F: usize, const N: usize, const B: usize, const T: usize>
    Resources<Q, F, N, B, T>
{
    /// Empty storage: `const` and all zeros, so a `static` one lands in `.bss`.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            queue: [0; Q],
            flags: FlagStorage::new(),
            called: [0; T],
            etag: [0; crate::net::MAX_ETAG],
            #[cfg(feature = "storage")]
            persist: super::persist::PersistSlot::EMPTY,
        }
    }

    /// The capacities, as [`Capacities`].
    #[must_use]
    pub const fn capacities() -> Capacities {
        Capacities {
            queue: Q,
            flags: Requirements {
                flags: F,
                nodes: N,
                bytes: B,
            },
            called: T,
        }
    }
}

/// A client's capacities as values: what [`Resources`] names as const generics, for storage
/// sized at run time ([`Client::with_capacity`](crate::client::Client::with_capacity)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Capacities {
    /// Bytes of event queue.
    pub queue: usize,
    /// Flags, nodes and bytes of text of the flag store.
    pub flags: Requirements,
    /// `$feature_flag_called` de-duplication entries.
    pub called: usize,
}
