//! What the event log and the definitions slot share: checking a region of a `NorFlash`, and
//! reading and writing it in whole write units through a small staging buffer, with reads
//! retried.

use embedded_storage_async::nor_flash::{NorFlash, NorFlashError};

use super::{FlashError, GeometryError};

/// Largest write unit supported (the STM32H7's flash word is 32 bytes).
pub const MAX_WRITE_SIZE: usize = 32;
/// The staging buffer of every read and write: a few units.
pub(super) const STAGE: usize = 2 * MAX_WRITE_SIZE;
/// Attempts at a read before it is taken as failed (a bus error, an ECC retry).
pub(super) const READ_TRIES: u32 = 3;

/// A checked region: erase pages of `page` bytes, written in units of `unit` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Region {
    /// The write unit: max(write size, read size, 4), a power of two.
    pub(super) unit: u32,
    /// The erase page.
    pub(super) page: u32,
    /// Pages in the region.
    pub(super) pages: u32,
}

impl Region {
    /// Checks that `range` of `flash` is whole erase pages (at least `min_pages`, each at least
    /// 256 bytes), inside the flash, with read and write sizes that fit a unit.
    pub(super) fn new<F: NorFlash>(
        flash: &F,
        range: &core::ops::Range<u32>,
        min_pages: usize,
    ) -> Result<Self, GeometryError> {
        let unit = F::WRITE_SIZE.max(F::READ_SIZE).max(4);
        if unit > MAX_WRITE_SIZE
            || !unit.is_power_of_two()
            || !unit.is_multiple_of(F::WRITE_SIZE)
            || !unit.is_multiple_of(F::READ_SIZE)
            || !F::ERASE_SIZE.is_multiple_of(unit)
        {
            return Err(GeometryError::WriteSize {
                write: F::WRITE_SIZE,
                read: F::READ_SIZE,
                max: MAX_WRITE_SIZE,
            });
        }
        let page = F::ERASE_SIZE;
        let len = range.end.saturating_sub(range.start) as usize;
        if !(range.start as usize).is_multiple_of(page) || !len.is_multiple_of(page) {
            return Err(GeometryError::Unaligned { erase: page });
        }
        if range.end as usize > flash.capacity() {
            return Err(GeometryError::OutOfBounds {
                end: range.end,
                capacity: flash.capacity(),
            });
        }
        // An erase size of 0 (no flash) counts no pages rather than dividing by zero.
        let pages = len.checked_div(page).unwrap_or(0);
        if pages < min_pages {
            return Err(GeometryError::TooSmall {
                pages,
                min: min_pages,
            });
        }
        if page < 256 {
            return Err(GeometryError::PageSize { page });
        }
        Ok(Self {
            unit: unit as u32,
            page: page as u32,
            pages: u32::try_from(pages).unwrap_or(u32::MAX),
        })
    }
}

pub(super) const fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
}

pub(super) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

pub(super) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(super) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Copies `bytes` into `buf` at `at` (nothing past its end).
pub(super) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

pub(super) fn flash_err<E: NorFlashError>(e: E) -> FlashError {
    FlashError::from_kind(e.kind())
}

/// Largest multiple of `unit` that fits the staging buffer (at least one unit).
const fn stage_cap(unit: usize) -> usize {
    STAGE - STAGE % unit
}

/// Writes the concatenation of `parts` at `at` (unit-aligned), padded with zeros to whole
/// units, in unit-aligned writes through the staging buffer.
pub(super) async fn write_parts<F: NorFlash>(
    flash: &mut F,
    unit: usize,
    at: u32,
    parts: &[&[u8]],
) -> Result<(), FlashError> {
    let cap = stage_cap(unit);
    let mut stage = [0u8; STAGE];
    let mut n = 0usize;
    let mut addr = at;
    for part in parts {
        let mut rest: &[u8] = part;
        while !rest.is_empty() {
            let take = rest.len().min(cap - n);
            let (now, later) = rest.split_at(take);
            put(&mut stage, n, now);
            n += take;
            rest = later;
            if n == cap {
                flash
                    .write(addr, stage.get(..cap).unwrap_or_default())
                    .await
                    .map_err(flash_err)?;
                addr += cap as u32;
                n = 0;
            }
        }
    }
    if n > 0 {
        let whole = round_up(n, unit);
        if let Some(pad) = stage.get_mut(n..whole) {
            pad.fill(0);
        }
        flash
            .write(addr, stage.get(..whole).unwrap_or_default())
            .await
            .map_err(flash_err)?;
    }
    Ok(())
}

/// Reads `out.len()` bytes at `addr` (any alignment) in unit-aligned reads through the staging
/// buffer, each tried up to [`READ_TRIES`] times.
pub(super) async fn read_bytes<F: NorFlash>(
    flash: &mut F,
    unit: usize,
    addr: u32,
    out: &mut [u8],
) -> Result<(), FlashError> {
    let cap = stage_cap(unit);
    let mut stage = [0u8; STAGE];
    let mut done = 0usize;
    while done < out.len() {
        let pos = addr as usize + done;
        let skip = pos % unit;
        let want = (out.len() - done).min(cap - skip);
        let buf = stage
            .get_mut(..round_up(skip + want, unit))
            .unwrap_or_default();
        let mut tries = 1;
        while let Err(e) = flash.read((pos - skip) as u32, buf).await {
            if tries >= READ_TRIES {
                return Err(flash_err(e));
            }
            tries += 1;
        }
        if let (Some(dst), Some(src)) = (out.get_mut(done..done + want), buf.get(skip..skip + want))
        {
            dst.copy_from_slice(src);
        }
        done += want;
    }
    Ok(())
}
