//! The log's on-flash format: constants, the region's geometry, and page and item headers.

use embedded_storage_async::nor_flash::NorFlash;

use super::super::crc::{crc32, Crc32};
use super::super::region::Region;
pub(super) use super::super::region::{le_u32, le_u64, put, round_up, STAGE};
use super::super::GeometryError;

pub(super) const PAGE_MAGIC: [u8; 4] = *b"PHEL";
pub(super) const FORMAT: u8 = 1;
pub(super) const PAGE_HEADER: usize = 28;
pub(super) const ITEM_HEADER: usize = 12;
pub(super) const ITEM_MARK: u8 = 0x5A;
pub(super) const EVENT_FIXED: usize = 24;
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
        let r = Region::new(flash, &range, 2)?;
        Ok(Self {
            start: range.start,
            page: r.page,
            pages: r.pages,
            unit: r.unit,
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
