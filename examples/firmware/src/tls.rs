//! HTTPS on the device (feature `tls`): the runner dials a TLS 1.3 session over the UART link
//! for each connection, verifying the server's certificate against the root built in.
//!
//! The root is `PH_TLS_ROOT` at build time (the CA `posthog-embedded serve --tls` writes), or
//! `tls-root.der` beside this crate (a throwaway CA whose key was discarded: good for size
//! builds, trusted by nothing).

use posthog_embedded::tls::{TlsBuffers, TlsDialer, RECORD_BUF};
use static_cell::ConstStaticCell;

use crate::uart::UartLink;

/// The root certificate (DER) the server's chain must lead to.
static ROOT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tls-root.der"));
static ROOTS: [&[u8]; 1] = [ROOT];

/// A whole TLS record (16 KiB of plaintext and the record overhead), and outgoing records.
static READ: ConstStaticCell<[u8; RECORD_BUF]> = ConstStaticCell::new([0; RECORD_BUF]);
static WRITE: ConstStaticCell<[u8; 2048]> = ConstStaticCell::new([0; 2048]);

/// The dialer over `link`. `entropy` seeds its key-exchange RNG: a real device reads 32 bytes
/// from its hardware RNG; this emulated board has none, so the boot entropy is stretched.
pub fn dialer(link: UartLink, entropy: u64) -> Result<TlsDialer<'static, UartLink>, &'static str> {
    let read = READ.try_take().ok_or("TLS buffers already taken")?;
    let write = WRITE.try_take().ok_or("TLS buffers already taken")?;
    let mut seed = [0u8; 32];
    let mut x = entropy;
    for chunk in seed.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    TlsDialer::with_seed(
        link,
        TlsBuffers {
            read: read.as_mut_slice(),
            write: write.as_mut_slice(),
        },
        &ROOTS,
        seed,
    )
    .map_err(|e| {
        error!("TLS set-up refused: {}", e);
        "TLS set-up refused"
    })
}
