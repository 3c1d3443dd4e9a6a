//! The log's on-flash format: constants, the region's geometry, page and item headers, and
//! the little-endian helpers that read and write them.

use embedded_storage_async::nor_flash::{NorFlash, NorFlashError};

use super::super::crc::{crc32, Crc32};
use super::super::{FlashError, GeometryError};

pub(super) const PAGE_MAGIC: [u8; 4] = *b"PHEL";
pub(super) const FORMAT: u8 = 1;
pub(super) const PAGE_HEADER: usize = 28;
pub(super) const ITEM_HEADER: usize = 12;
pub(super) const ITEM_MARK: u8 = 0x5A;
pub(super) const EVENT_FIXED: usize = 24;
/// Attempts at a read before it is taken as failed.
pub(super) const READ_TRIES: u32 = 3;
/// The longest single write the log makes (its staging buffer).
pub(super) const STAGE: usize = 2 * MAX_WRITE_SIZE;
/// Largest write unit supported (the STM32H7's flash word is 32 bytes).
pub const MAX_WRITE_SIZE: usize = 32;
/// Boot items every page keeps room for: a mount records its boot number even when the region
/// is full of undelivered events, for this many boots in a row.
pub const BOOT_RESERVE: usize = 4;
/// Boots whose clock anchor and last capture instant the log remembers at mount.
pub const MAX_BOOTS: usize = 8;
/// Bytes of an Event item besides its JSON (item header and fixed fields, before padding).
pub const EVENT_OVERHEAD: usize = ITEM_HEADER + EVENT_FIXED;

pub(super) const KIND_EVENT: u8 = 1;
pub(super) const KIND_TAIL: u8 = 2;
pub(super) const KIND_BOOT: u8 = 3;
pub(super) const KIND_ANCHOR: u8 = 4;

/// Event flag: the JSON carries its own wall-clock `timestamp`.
pub const FLAG_TIMESTAMP: u8 = 1;

/// The shape of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) start: u32,
    pub(super) page: u32,
    pub(super) pages: u32,
    pub(super) unit: u32,
}

impl Geometry {
    pub(super) fn new<F: NorFlash>(
        flash: &F,
        range: core::ops::Range<u32>,
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
        if len / page < 2 {
            return Err(GeometryError::TooSmall {
                pages: len / page,
                min: 2,
            });
        }
        if page < 256 {
            return Err(GeometryError::PageSize { page });
        }
        Ok(Self {
            start: range.start,
            page: page as u32,
            pages: (len / page) as u32,
            unit: unit as u32,
        })
    }

    pub(super) const fn addr(&self, page: u32) -> u32 {
        self.start + page * self.page
    }

    pub(super) fn data_start(&self) -> u32 {
        round_up(PAGE_HEADER, self.unit as usize) as u32
    }

    pub(super) fn item_size(&self, payload: usize) -> usize {
        round_up(ITEM_HEADER + payload, self.unit as usize)
    }

    /// Largest payload one item can carry, in an empty page that keeps its boot reserve.
    pub(super) fn max_payload(&self) -> usize {
        let room = (self.page - self.data_start()) as usize - BOOT_RESERVE * self.item_size(4);
        (room - room % self.unit as usize - ITEM_HEADER).min(u16::MAX as usize)
    }

    pub(super) const fn next(&self, page: u32) -> u32 {
        (page + 1) % self.pages
    }
}

pub(super) const fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
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

/// A decoded item header.
#[derive(Clone, Copy, Debug)]
pub(super) struct ItemHeader {
    pub(super) kind: u8,
    pub(super) len: usize,
    pub(super) crc: u32,
}

pub(super) fn parse_item_header(b: &[u8]) -> Option<ItemHeader> {
    let h = b.get(..ITEM_HEADER)?;
    let kind = *h.first()?;
    if *h.get(1)? != ITEM_MARK || !(KIND_EVENT..=KIND_ANCHOR).contains(&kind) {
        return None;
    }
    if crc32(h.get(..8)?) != le_u32(h, 8) {
        return None;
    }
    Some(ItemHeader {
        kind,
        len: usize::from(u16::from_le_bytes([*h.get(2)?, *h.get(3)?])),
        crc: le_u32(h, 4),
    })
}

pub(super) fn item_header(kind: u8, payload: &[&[u8]]) -> [u8; ITEM_HEADER] {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let mut crc = Crc32::new();
    for p in payload {
        crc.update(p);
    }
    let mut h = [0u8; ITEM_HEADER];
    put(&mut h, 0, &[kind, ITEM_MARK]);
    put(
        &mut h,
        2,
        &(len.min(u16::MAX as usize) as u16).to_le_bytes(),
    );
    put(&mut h, 4, &crc.finish().to_le_bytes());
    let check = crc32(h.get(..8).unwrap_or_default());
    put(&mut h, 8, &check.to_le_bytes());
    h
}

/// A decoded page header.
#[derive(Clone, Copy, Debug)]
pub(super) struct PageHeader {
    pub(super) seq: u32,
    pub(super) boot: u32,
    pub(super) tail: u64,
}

pub(super) fn parse_page_header(b: &[u8]) -> Option<PageHeader> {
    let h = b.get(..PAGE_HEADER)?;
    if h.get(..4)? != PAGE_MAGIC || *h.get(4)? != FORMAT {
        return None;
    }
    if crc32(h.get(..24)?) != le_u32(h, 24) {
        return None;
    }
    Some(PageHeader {
        seq: le_u32(h, 8),
        boot: le_u32(h, 12),
        tail: le_u64(h, 16),
    })
}

pub(super) fn page_header(p: PageHeader) -> [u8; PAGE_HEADER] {
    let mut h = [0u8; PAGE_HEADER];
    put(&mut h, 0, &PAGE_MAGIC);
    put(&mut h, 4, &[FORMAT]);
    put(&mut h, 8, &p.seq.to_le_bytes());
    put(&mut h, 12, &p.boot.to_le_bytes());
    put(&mut h, 16, &p.tail.to_le_bytes());
    let crc = crc32(h.get(..24).unwrap_or_default());
    put(&mut h, 24, &crc.to_le_bytes());
    h
}
