//! [`DefinitionsSlot`]: the last good flag-definitions document and its `ETag`, kept in two
//! copies on NOR flash and written alternately.
//!
//! # Layout
//!
//! The region is split into two halves of equal whole numbers of erase pages, A (the first
//! pages) and B (the next as many); when the region has an odd number of pages, its last page
//! is unused. Each half holds at most one **copy**:
//!
//! ```text
//! header (24 bytes, padded with zeros to a whole write unit):
//!   magic "PHDF" | format u8 = 1 | flags u8 (bit 0: cleared) | ETag length u16
//!   | generation u32 | document length u32 | body CRC-32 u32 | header CRC-32 u32
//! body (from the first write unit after the header, padded with zeros to whole units):
//!   ETag bytes | document bytes
//! ```
//!
//! Integers are little-endian. The body CRC covers the ETag bytes then the document bytes; the
//! header CRC covers the 20 header bytes before it. A copy is **valid** when both CRCs match, no
//! unknown flag is set, its ETag is at most [`DefinitionsSlot::MAX_ETAG`] bytes and its body
//! fits the half. The slot's content is the valid copy with the highest generation
//! (generations are compared as serial numbers, so the counter may wrap around). A **cleared**
//! copy (written by [`DefinitionsSlot::clear`]) has no ETag and no document: the slot then
//! holds nothing.
//!
//! # Writing and power cuts
//!
//! A new copy always goes to the half that does not hold the current one, with the next
//! generation: that half is erased, the body is written, and the header is written last. Until
//! the header is completely written, the new copy fails its header CRC (an erased or torn
//! header does not verify), so the previous copy, untouched in the other half, is still the
//! newest valid one. A power cut at any step therefore costs nothing that was stored: after the
//! reboot the slot holds either exactly the previous document and ETag or, if the header was
//! complete, exactly the new ones, never a mix (at worst the document being stored is fetched
//! again). A failed write is the same as a cut. The half a cut tore is erased again before its
//! next use, so no flash word is ever written twice between erases.
//!
//! A copy that carries the magic and format but fails its checks (torn, or bit flips) is
//! ignored at mount and counted in [`DefinitionsSlot::corrupt`]; a half without them (erased,
//! never written, or foreign data) holds no copy and is not counted.
//!
//! # Wear and memory
//!
//! Each store or clear erases one half; the halves take turns, so each is erased once every two
//! writes. [`DefinitionsSlot`] holds a few numbers, and every read and write goes through a
//! staging buffer of a few dozen bytes on the stack: its RAM does not depend on the size of the
//! region or of the document.

use embedded_storage_async::nor_flash::{NorFlash, NorFlashError};

use super::crc::{crc32, Crc32};
use super::{FlashError, GeometryError, MAX_WRITE_SIZE};

const MAGIC: [u8; 4] = *b"PHDF";
const FORMAT: u8 = 1;
/// Header flag: the copy wipes the slot (no document, no ETag).
const FLAG_CLEARED: u8 = 1;
/// Header bytes before padding.
const HEADER: usize = 24;
/// Header bytes covered by the header CRC.
const HEADER_CHECKED: usize = 20;
/// Staging buffer of every read and write.
const STAGE: usize = 2 * MAX_WRITE_SIZE;

/// What the slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StoredDefinitions {
    /// The copy's generation: one more than the copy written before it.
    pub generation: u32,
    /// Length of the document in bytes.
    pub len: usize,
    /// Length of the ETag in bytes (0 when none was stored).
    pub etag_len: usize,
}

/// Why a slot operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SlotError {
    /// The region or the flash's sizes do not fit the slot.
    Geometry(GeometryError),
    /// The flash failed. A failed store or clear leaves the previous copy in place.
    Flash(FlashError),
    /// The document is `len` bytes; with the given ETag, a half holds at most `max`.
    TooLarge {
        /// Bytes of the document.
        len: usize,
        /// Largest document that fits beside the ETag.
        max: usize,
    },
    /// The ETag is `len` bytes, longer than [`DefinitionsSlot::MAX_ETAG`].
    EtagTooLong {
        /// Bytes of the ETag.
        len: usize,
        /// Longest ETag stored.
        max: usize,
    },
    /// The stored document or ETag is `needed` bytes; the buffer given for it holds `capacity`.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The copy no longer matches its CRC (it changed on flash since mount). The slot forgets
    /// it: it then reports nothing stored, and its next write replaces the damaged copy.
    Corrupt,
}

impl core::fmt::Display for SlotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Geometry(g) => write!(f, "definitions slot: {g}"),
            Self::Flash(e) => write!(f, "definitions slot: flash: {e}"),
            Self::TooLarge { len, max } => write!(
                f,
                "definitions document of {len} bytes, the slot holds at most {max}"
            ),
            Self::EtagTooLong { len, max } => {
                write!(f, "ETag of {len} bytes, at most {max} stored")
            }
            Self::BufferTooSmall { needed, capacity } => write!(
                f,
                "stored definitions need {needed} bytes, the buffer holds {capacity}"
            ),
            Self::Corrupt => f.write_str("stored definitions changed on flash since mount"),
        }
    }
}

impl core::error::Error for SlotError {}

impl From<GeometryError> for SlotError {
    fn from(e: GeometryError) -> Self {
        Self::Geometry(e)
    }
}

impl From<FlashError> for SlotError {
    fn from(e: FlashError) -> Self {
        Self::Flash(e)
    }
}

/// The shape of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    start: u32,
    /// Bytes of one half (a whole number of erase pages).
    half: u32,
    /// The write unit: max(write size, read size, 4).
    unit: u32,
}

impl Geometry {
    fn new<F: NorFlash>(flash: &F, range: core::ops::Range<u32>) -> Result<Self, GeometryError> {
        let unit = F::WRITE_SIZE.max(F::READ_SIZE).max(4);
        if unit > MAX_WRITE_SIZE
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
        if pages < 2 {
            return Err(GeometryError::TooSmall { pages, min: 2 });
        }
        if page < 256 {
            return Err(GeometryError::PageSize { page });
        }
        Ok(Self {
            start: range.start,
            half: (pages / 2 * page) as u32,
            unit: unit as u32,
        })
    }

    /// Address of half 0 (A) or 1 (B).
    const fn addr(&self, half: u32) -> u32 {
        self.start + half * self.half
    }

    /// Bytes of the header, padded to the write unit: the body starts there.
    const fn header_size(&self) -> u32 {
        round_up(HEADER, self.unit as usize) as u32
    }

    /// Bytes of a half after the header: the largest body.
    const fn room(&self) -> usize {
        (self.half - self.header_size()) as usize
    }
}

const fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
}

/// Whether generation `a` is newer than `b`, as serial numbers (wrapping around).
const fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn flash_err<E: NorFlashError>(e: E) -> FlashError {
    FlashError::from_kind(e.kind())
}

/// A decoded copy header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    flags: u8,
    etag_len: usize,
    generation: u32,
    doc_len: usize,
    crc: u32,
}

impl Header {
    const fn cleared(&self) -> bool {
        self.flags & FLAG_CLEARED != 0
    }

    const fn body_len(&self) -> usize {
        self.etag_len + self.doc_len
    }
}

/// What the first bytes of a half say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parsed {
    /// Not a copy of ours (erased, never written, or foreign data).
    Absent,
    /// A copy of ours that fails its checks.
    Corrupt,
    /// A header that verifies (its body is still to be checked).
    Valid(Header),
}

fn parse_header(b: &[u8; HEADER], room: usize) -> Parsed {
    if b.get(..4) != Some(&MAGIC[..]) || b.get(4) != Some(&FORMAT) {
        return Parsed::Absent;
    }
    let checked = b.get(..HEADER_CHECKED).unwrap_or_default();
    if crc32(checked) != le_u32(b, HEADER_CHECKED) {
        return Parsed::Corrupt;
    }
    let h = Header {
        flags: b.get(5).copied().unwrap_or(0xFF),
        etag_len: usize::from(le_u16(b, 6)),
        generation: le_u32(b, 8),
        doc_len: le_u32(b, 12) as usize,
        crc: le_u32(b, 16),
    };
    let fits = h.etag_len.checked_add(h.doc_len).is_some_and(|n| n <= room);
    if h.flags & !FLAG_CLEARED != 0
        || h.etag_len > DefinitionsSlot::MAX_ETAG
        || !fits
        || (h.cleared() && h.body_len() != 0)
    {
        return Parsed::Corrupt;
    }
    Parsed::Valid(h)
}

fn encode_header(h: &Header) -> [u8; HEADER] {
    let mut b = [0u8; HEADER];
    let (checked, crc) = b.split_at_mut(HEADER_CHECKED);
    let fields: [&[u8]; 6] = [
        &MAGIC,
        &[FORMAT, h.flags],
        &(h.etag_len as u16).to_le_bytes(),
        &h.generation.to_le_bytes(),
        &(h.doc_len as u32).to_le_bytes(),
        &h.crc.to_le_bytes(),
    ];
    let mut at = 0usize;
    for field in fields {
        if let Some(dst) = checked.get_mut(at..at + field.len()) {
            dst.copy_from_slice(field);
        }
        at += field.len();
    }
    crc.copy_from_slice(&crc32(checked).to_le_bytes());
    b
}

/// Largest multiple of `unit` that fits the staging buffer (at least one unit).
const fn stage_cap(unit: usize) -> usize {
    STAGE - STAGE % unit
}

/// Writes the concatenation of `parts` at `at` (unit-aligned), padded with zeros to whole
/// units, in unit-aligned writes through a small staging buffer.
async fn write_parts<F: NorFlash>(
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
            if let Some(dst) = stage.get_mut(n..n + take) {
                dst.copy_from_slice(now);
            }
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

/// Reads `out.len()` bytes at `addr` (any alignment) in unit-aligned reads through a small
/// staging buffer.
async fn read_bytes<F: NorFlash>(
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
        let chunk = round_up(skip + want, unit);
        let buf = stage.get_mut(..chunk).unwrap_or_default();
        flash
            .read((pos - skip) as u32, buf)
            .await
            .map_err(flash_err)?;
        if let (Some(dst), Some(src)) = (out.get_mut(done..done + want), buf.get(skip..skip + want))
        {
            dst.copy_from_slice(src);
        }
        done += want;
    }
    Ok(())
}

/// The CRC-32 of `len` bytes at `addr`, read a staging buffer at a time.
async fn crc_of<F: NorFlash>(
    flash: &mut F,
    unit: usize,
    addr: u32,
    len: usize,
) -> Result<u32, FlashError> {
    let mut crc = Crc32::new();
    let mut stage = [0u8; STAGE];
    let mut done = 0usize;
    while done < len {
        let n = (len - done).min(STAGE);
        let buf = stage.get_mut(..n).unwrap_or_default();
        read_bytes(flash, unit, addr + done as u32, buf).await?;
        crc.update(buf);
        done += n;
    }
    Ok(crc.finish())
}

/// The copy the slot reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Current {
    /// 0 (A) or 1 (B).
    half: u32,
    header: Header,
}

/// The persisted flag definitions: the last good document and its `ETag`, in two copies on
/// NOR flash. See the [module docs](self) for the layout and what a power cut can cost.
#[derive(Clone, Debug)]
pub struct DefinitionsSlot {
    geo: Geometry,
    /// The newest valid copy (possibly a cleared one).
    current: Option<Current>,
    /// The half to write next when there is no current copy.
    spare: u32,
    /// The highest generation found, written or attempted.
    generation: u32,
    /// Copies found corrupt (at mount, or by a later load).
    corrupt: u32,
    /// Whether a mount would find exactly `current` (false after a failed write, which may or
    /// may not have completed, and after a load found the current copy damaged, which may
    /// uncover the other copy).
    settled: bool,
}

impl DefinitionsSlot {
    /// Longest ETag stored, in bytes (as [`MAX_ETAG`](crate::net::MAX_ETAG), the longest the
    /// client keeps).
    pub const MAX_ETAG: usize = 128;

    /// Mounts the slot in `range` of `flash`: reads both halves, checks each copy's header and
    /// body CRCs (streaming, a few dozen bytes at a time) and keeps the valid copy with the
    /// highest generation. Nothing is written. Corrupt copies are ignored and counted in
    /// [`corrupt`](Self::corrupt); a region that holds no copy (new, or foreign data) is an
    /// empty slot.
    ///
    /// `range` must start and end on erase-page boundaries and hold at least two pages.
    ///
    /// # Errors
    /// [`SlotError::Geometry`] when `range` or the flash's sizes do not fit (see
    /// [`GeometryError`]); [`SlotError::Flash`] when the driver rejects a read as unaligned or
    /// out of bounds (a half that fails to read otherwise, as after a torn write on ECC flash,
    /// counts as corrupt).
    pub async fn mount<F: NorFlash>(
        flash: &mut F,
        range: core::ops::Range<u32>,
    ) -> Result<Self, SlotError> {
        let geo = Geometry::new(flash, range)?;
        let mut slot = Self {
            geo,
            current: None,
            spare: 0,
            generation: 0,
            corrupt: 0,
            settled: true,
        };
        for half in 0..2 {
            match slot.check_half(flash, half).await? {
                Parsed::Absent => {}
                Parsed::Corrupt => slot.corrupt = slot.corrupt.saturating_add(1),
                Parsed::Valid(header) => {
                    if slot
                        .current
                        .is_none_or(|c| newer(header.generation, c.header.generation))
                    {
                        slot.current = Some(Current { half, header });
                    }
                }
            }
        }
        if let Some(c) = slot.current {
            slot.generation = c.header.generation;
        }
        Ok(slot)
    }

    /// What the slot holds: `None` when it is empty or was cleared.
    #[must_use]
    pub fn stored(&self) -> Option<StoredDefinitions> {
        self.current
            .filter(|c| !c.header.cleared())
            .map(|c| StoredDefinitions {
                generation: c.header.generation,
                len: c.header.doc_len,
                etag_len: c.header.etag_len,
            })
    }

    /// Copies found corrupt (torn by a power cut, or bit flips): at mount, and by
    /// [`load`](Self::load) since.
    #[must_use]
    pub const fn corrupt(&self) -> u32 {
        self.corrupt
    }

    /// Largest document the slot stores without an ETag (with one, that many bytes less).
    #[must_use]
    pub const fn max_document(&self) -> usize {
        self.geo.room()
    }

    /// Reads the stored document into the start of `doc` and its ETag into the start of
    /// `etag`, and returns their lengths `(doc_len, etag_len)`, or `None` when the slot holds
    /// nothing. The body CRC is verified again while reading.
    ///
    /// # Errors
    /// [`SlotError::BufferTooSmall`] when `doc` or `etag` is shorter than what is stored
    /// (nothing is read); [`SlotError::Corrupt`] when the copy no longer matches its CRC (the
    /// buffers then hold junk, and the slot forgets the copy); [`SlotError::Flash`] when
    /// reading fails.
    pub async fn load<F: NorFlash>(
        &mut self,
        flash: &mut F,
        doc: &mut [u8],
        etag: &mut [u8],
    ) -> Result<Option<(usize, usize)>, SlotError> {
        let Some(cur) = self.current.filter(|c| !c.header.cleared()) else {
            return Ok(None);
        };
        let h = cur.header;
        if h.doc_len > doc.len() {
            return Err(SlotError::BufferTooSmall {
                needed: h.doc_len,
                capacity: doc.len(),
            });
        }
        if h.etag_len > etag.len() {
            return Err(SlotError::BufferTooSmall {
                needed: h.etag_len,
                capacity: etag.len(),
            });
        }
        let unit = self.geo.unit as usize;
        let body = self.geo.addr(cur.half) + self.geo.header_size();
        let mut crc = Crc32::new();
        let etag_out = etag.get_mut(..h.etag_len).unwrap_or_default();
        read_bytes(flash, unit, body, etag_out).await?;
        crc.update(etag_out);
        let doc_out = doc.get_mut(..h.doc_len).unwrap_or_default();
        read_bytes(flash, unit, body + h.etag_len as u32, doc_out).await?;
        crc.update(doc_out);
        if crc.finish() != h.crc {
            self.corrupt = self.corrupt.saturating_add(1);
            // Write over the damaged copy next, keeping the other half (possibly a valid
            // older copy) as it is.
            self.spare = cur.half;
            self.current = None;
            self.settled = false;
            return Err(SlotError::Corrupt);
        }
        Ok(Some((h.doc_len, h.etag_len)))
    }

    /// Stores `doc` and its `etag` (`None` or empty: no ETag) as the new content, in the half
    /// that does not hold the current copy: erases it, writes the body, then the header, with
    /// the next generation. Until this returns `Ok`, the previous content stays on flash and a
    /// mount finds it (or, after a cut at the very end, the new one).
    ///
    /// # Errors
    /// [`SlotError::EtagTooLong`] or [`SlotError::TooLarge`] (nothing is written);
    /// [`SlotError::Flash`] when erasing or writing fails (the previous copy stays current).
    pub async fn store<F: NorFlash>(
        &mut self,
        flash: &mut F,
        doc: &[u8],
        etag: Option<&[u8]>,
    ) -> Result<(), SlotError> {
        let etag = etag.unwrap_or_default();
        if etag.len() > Self::MAX_ETAG {
            return Err(SlotError::EtagTooLong {
                len: etag.len(),
                max: Self::MAX_ETAG,
            });
        }
        let max = self.geo.room().saturating_sub(etag.len());
        if doc.len() > max {
            return Err(SlotError::TooLarge {
                len: doc.len(),
                max,
            });
        }
        self.write_copy(flash, 0, etag, doc).await
    }

    /// Wipes the document and its ETag (as when PostHog answers that the project is over its
    /// quota): writes a cleared copy with the next generation, so the slot holds nothing, also
    /// after a reboot. Nothing is written when the slot already holds nothing.
    ///
    /// # Errors
    /// [`SlotError::Flash`] when erasing or writing fails (the previous copy stays current).
    pub async fn clear<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), SlotError> {
        let empty = self.current.is_none_or(|c| c.header.cleared());
        if empty && self.settled {
            return Ok(());
        }
        self.write_copy(flash, FLAG_CLEARED, &[], &[]).await
    }

    /// Writes a copy into the half that does not hold the current one: erase, body, header.
    async fn write_copy<F: NorFlash>(
        &mut self,
        flash: &mut F,
        flags: u8,
        etag: &[u8],
        doc: &[u8],
    ) -> Result<(), SlotError> {
        let half = self.current.map_or(self.spare, |c| 1 - c.half);
        let generation = self.generation.wrapping_add(1);
        let mut crc = Crc32::new();
        crc.update(etag);
        crc.update(doc);
        let header = Header {
            flags,
            etag_len: etag.len(),
            generation,
            doc_len: doc.len(),
            crc: crc.finish(),
        };
        // From here until the header is written, a mount may find the new copy or not.
        self.settled = false;
        self.generation = generation;
        let unit = self.geo.unit as usize;
        let base = self.geo.addr(half);
        flash
            .erase(base, base + self.geo.half)
            .await
            .map_err(|e| SlotError::Flash(flash_err(e)))?;
        write_parts(flash, unit, base + self.geo.header_size(), &[etag, doc]).await?;
        write_parts(flash, unit, base, &[&encode_header(&header)]).await?;
        self.current = Some(Current { half, header });
        self.settled = true;
        Ok(())
    }

    /// Reads and checks the copy in `half`.
    async fn check_half<F: NorFlash>(&self, flash: &mut F, half: u32) -> Result<Parsed, SlotError> {
        let unit = self.geo.unit as usize;
        let base = self.geo.addr(half);
        let mut b = [0u8; HEADER];
        match read_bytes(flash, unit, base, &mut b).await {
            Ok(()) => {}
            // Unreadable (an ECC error after a torn write): a damaged copy.
            Err(FlashError::Other) => return Ok(Parsed::Corrupt),
            Err(e) => return Err(SlotError::Flash(e)),
        }
        let h = match parse_header(&b, self.geo.room()) {
            Parsed::Valid(h) => h,
            other => return Ok(other),
        };
        let body = base + self.geo.header_size();
        match crc_of(flash, unit, body, h.body_len()).await {
            Ok(crc) if crc == h.crc => Ok(Parsed::Valid(h)),
            Ok(_) | Err(FlashError::Other) => Ok(Parsed::Corrupt),
            Err(e) => Err(SlotError::Flash(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::future::Future;
    use core::ops::Range;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::format;
    use std::vec;
    use std::vec::Vec;

    use super::super::sim::SimFlash;
    use super::*;

    /// A document and its ETag (empty: none).
    type Content = (Vec<u8>, Vec<u8>);

    /// Runs a future that never waits (the simulated flash completes every operation at once).
    fn block_on<T>(f: impl Future<Output = T>) -> T {
        let mut f = pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("SimFlash futures are always ready"),
        }
    }

    /// A flash with one spare page before and one after a region of `pages` pages, so that a
    /// stray write or erase outside the region shows.
    fn setup<const W: usize, const E: usize>(pages: usize) -> (SimFlash<W, E>, Range<u32>) {
        setup_seeded(pages, 0x5EED)
    }

    /// [`setup`], with `seed` choosing how torn steps tear.
    fn setup_seeded<const W: usize, const E: usize>(
        pages: usize,
        seed: u64,
    ) -> (SimFlash<W, E>, Range<u32>) {
        (SimFlash::new(pages + 2, seed), range_of::<E>(pages))
    }

    fn doc(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) ^ (i >> 8) as u8)
            .collect()
    }

    fn content(seed: u8, len: usize, etag: &[u8]) -> Content {
        (doc(seed, len), etag.to_vec())
    }

    fn mount<const W: usize, const E: usize>(
        flash: &mut SimFlash<W, E>,
        range: &Range<u32>,
    ) -> DefinitionsSlot {
        block_on(DefinitionsSlot::mount(flash, range.clone())).expect("mounts")
    }

    fn load<const W: usize, const E: usize>(
        slot: &mut DefinitionsSlot,
        flash: &mut SimFlash<W, E>,
    ) -> Option<Content> {
        let mut d = vec![0xAA; slot.max_document()];
        let mut e = vec![0xAA; DefinitionsSlot::MAX_ETAG];
        let (dl, el) = block_on(slot.load(flash, &mut d, &mut e)).expect("loads")?;
        d.truncate(dl);
        e.truncate(el);
        Some((d, e))
    }

    fn try_store<const W: usize, const E: usize>(
        slot: &mut DefinitionsSlot,
        flash: &mut SimFlash<W, E>,
        c: &Content,
    ) -> Result<(), SlotError> {
        let etag = (!c.1.is_empty()).then_some(c.1.as_slice());
        block_on(slot.store(flash, &c.0, etag))
    }

    fn store<const W: usize, const E: usize>(
        slot: &mut DefinitionsSlot,
        flash: &mut SimFlash<W, E>,
        c: &Content,
    ) {
        try_store(slot, flash, c).expect("stores");
    }

    const fn unit<const W: usize>() -> usize {
        if W > 4 {
            W
        } else {
            4
        }
    }

    /// Flash steps (pages erased, words written) of a copy with a body of `body` bytes.
    fn copy_steps<const W: usize, const E: usize>(pages: usize, body: usize) -> u64 {
        let u = unit::<W>();
        (pages / 2 + (round_up(body, u) + round_up(HEADER, u)) / W) as u64
    }

    /// Flash address of half 0 (A) or 1 (B).
    fn half_addr<const E: usize>(range: &Range<u32>, pages: usize, half: usize) -> usize {
        range.start as usize + half * (pages / 2) * E
    }

    /// Runs a test body for both simulated geometries and regions of 2, 3 and 4 pages.
    macro_rules! for_each_geometry {
        ($($test:ident => $body:ident),* $(,)?) => {
            $(
                #[test]
                fn $test() {
                    for pages in [2, 3, 4] {
                        $body::<4, 4096>(pages);
                        $body::<32, 2048>(pages);
                    }
                }
            )*
        };
    }

    for_each_geometry! {
        round_trip_alternates_halves => round_trip,
        clear_survives_reboot => clear,
        power_cut_at_every_step_of_a_store => cut_during_store,
        power_cut_at_every_step_of_a_clear => cut_during_clear,
        flash_errors_during_a_store_keep_the_old_copy => injected_errors,
        bit_flips_fall_back_to_the_other_copy => bit_flips,
        damage_found_by_load_is_reported_and_replaced => flip_after_mount,
        foreign_data_is_an_empty_slot => foreign_data,
        size_limits_are_enforced_with_sizes => sizes,
    }

    fn round_trip<const W: usize, const E: usize>(pages: usize) {
        let (mut flash, range) = setup::<W, E>(pages);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(flash.steps(), 0, "mount writes nothing");
        assert_eq!(slot.stored(), None);
        assert_eq!(slot.corrupt(), 0);
        assert_eq!(load(&mut slot, &mut flash), None);
        let half = pages / 2 * E;
        let max = slot.max_document();
        assert_eq!(max, half - round_up(HEADER, unit::<W>()));
        let contents = [
            content(1, 37, b""),
            content(2, max - 5, b"\"abc\""),
            content(3, 0, b"W/\"only-an-etag\""),
            content(4, 1000, &[b'x'; 128]),
            content(5, 1, b""),
        ];
        for (i, c) in contents.iter().enumerate() {
            // No ETag, given as `None` and as an empty one.
            let etag = if c.1.is_empty() && i == 0 {
                None
            } else {
                Some(c.1.as_slice())
            };
            block_on(slot.store(&mut flash, &c.0, etag)).expect("stores");
            let want = StoredDefinitions {
                generation: i as u32 + 1,
                len: c.0.len(),
                etag_len: c.1.len(),
            };
            assert_eq!(slot.stored(), Some(want));
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(c));
            // The copies go to half A, then B, and so on.
            let at = half_addr::<E>(&range, pages, i % 2);
            assert_eq!(flash.contents().get(at..at + 4), Some(&MAGIC[..]));
            let steps = flash.steps();
            let mut again = mount(&mut flash, &range);
            assert_eq!(flash.steps(), steps, "mount writes nothing");
            assert_eq!(again.stored(), Some(want));
            assert_eq!(again.corrupt(), 0);
            assert_eq!(load(&mut again, &mut flash).as_ref(), Some(c));
            // Carry on with the remounted slot: it must pick the right half to write next.
            slot = again;
        }
        // Wear: A erased three times, B twice; the unused odd page and the pages around the
        // region untouched.
        let first = range.start as usize / E;
        let halves = pages / 2;
        let counts = flash.erase_counts().to_vec();
        for p in 0..halves {
            assert_eq!(counts[first + p], 3, "page {p} of A");
            assert_eq!(counts[first + halves + p], 2, "page {p} of B");
        }
        for p in (0..first).chain(first + 2 * halves..counts.len()) {
            assert_eq!(counts[p], 0, "page {p} erased");
            let bytes = &flash.contents()[p * E..(p + 1) * E];
            assert!(bytes.iter().all(|&b| b == 0xFF), "page {p} written");
        }
    }

    fn clear<const W: usize, const E: usize>(pages: usize) {
        let (mut flash, range) = setup::<W, E>(pages);
        let mut slot = mount(&mut flash, &range);
        // Clearing an empty slot writes nothing.
        block_on(slot.clear(&mut flash)).expect("clears");
        assert_eq!(flash.steps(), 0);
        let c = content(1, 321, b"\"v1\"");
        store(&mut slot, &mut flash, &c);
        block_on(slot.clear(&mut flash)).expect("clears");
        assert_eq!(slot.stored(), None);
        assert_eq!(load(&mut slot, &mut flash), None);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored(), None);
        assert_eq!(slot.corrupt(), 0);
        assert_eq!(load(&mut slot, &mut flash), None);
        // Clearing again after the reboot writes nothing either.
        let steps = flash.steps();
        block_on(slot.clear(&mut flash)).expect("clears");
        assert_eq!(flash.steps(), steps);
        // A store after a clear is found, with the next generation.
        let d = content(2, 50, b"");
        store(&mut slot, &mut flash, &d);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(
            slot.stored(),
            Some(StoredDefinitions {
                generation: 3,
                len: 50,
                etag_len: 0
            })
        );
        assert_eq!(load(&mut slot, &mut flash), Some(d));
    }

    fn cut_during_store<const W: usize, const E: usize>(pages: usize) {
        let first = content(1, 90, b"\"first\"");
        let old = content(2, 303, b"W/\"old-etag\"");
        let new = content(3, 517, b"\"new\"");
        let later = content(4, 64, b"");
        let total = copy_steps::<W, E>(pages, new.0.len() + new.1.len());
        let header_at = total - (round_up(HEADER, unit::<W>()) / W) as u64;
        // Before the store: nothing, one copy (in A), two copies (the newest in B); each with
        // a few ways of tearing.
        for (prior, seed) in (0..=2u32).flat_map(|p| (1..=3u64).map(move |s| (p, s))) {
            let before = (prior > 0).then(|| old.clone());
            let mut n = 0u64;
            loop {
                let (mut flash, range) = setup_seeded::<W, E>(pages, seed);
                let mut slot = mount(&mut flash, &range);
                if prior == 2 {
                    store(&mut slot, &mut flash, &first);
                }
                if prior > 0 {
                    store(&mut slot, &mut flash, &old);
                }
                let steps = flash.steps();
                flash.cut_power_after(n);
                let r = try_store(&mut slot, &mut flash, &new);
                let cut = flash.is_off();
                flash.power_on();
                let mut slot = mount(&mut flash, &range);
                let got = load(&mut slot, &mut flash);
                if cut {
                    assert_eq!(r, Err(SlotError::Flash(FlashError::Other)));
                    if n < header_at {
                        assert_eq!(got, before, "cut at step {n} of {total}, prior {prior}");
                    } else {
                        assert!(
                            got == before || got.as_ref() == Some(&new),
                            "cut in the header at step {n}: {got:?}"
                        );
                    }
                } else {
                    assert_eq!(r, Ok(()));
                    assert_eq!(flash.steps() - steps, total);
                    assert_eq!(got.as_ref(), Some(&new));
                    assert_eq!(slot.stored().map(|s| s.generation), Some(prior + 1));
                }
                // Recovery: the next store goes over whatever the cut left (a word written
                // twice would panic) and wins.
                store(&mut slot, &mut flash, &later);
                let mut slot = mount(&mut flash, &range);
                assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&later));
                if !cut {
                    break;
                }
                n += 1;
            }
            assert_eq!(n, total, "every step of the store was cut once");
        }
    }

    fn cut_during_clear<const W: usize, const E: usize>(pages: usize) {
        let old = content(5, 200, b"\"e\"");
        let total = copy_steps::<W, E>(pages, 0);
        let erases = (pages / 2) as u64;
        for seed in 1..=3u64 {
            let mut n = 0u64;
            loop {
                let (mut flash, range) = setup_seeded::<W, E>(pages, seed);
                let mut slot = mount(&mut flash, &range);
                store(&mut slot, &mut flash, &old);
                flash.cut_power_after(n);
                let r = block_on(slot.clear(&mut flash));
                let cut = flash.is_off();
                flash.power_on();
                let mut slot = mount(&mut flash, &range);
                let got = load(&mut slot, &mut flash);
                if cut {
                    assert_eq!(r, Err(SlotError::Flash(FlashError::Other)));
                    if n < erases {
                        assert_eq!(got.as_ref(), Some(&old));
                    } else {
                        assert!(got.is_none() || got.as_ref() == Some(&old), "{got:?}");
                    }
                } else {
                    assert_eq!(r, Ok(()));
                    assert_eq!(got, None);
                    assert_eq!(slot.stored(), None);
                }
                // Clearing again after the reboot leaves the slot empty for good.
                block_on(slot.clear(&mut flash)).expect("clears");
                let mut slot = mount(&mut flash, &range);
                assert_eq!(slot.stored(), None);
                assert_eq!(load(&mut slot, &mut flash), None);
                if !cut {
                    break;
                }
                n += 1;
            }
            assert_eq!(n, total);
        }
    }

    fn injected_errors<const W: usize, const E: usize>(pages: usize) {
        let old = content(6, 150, b"\"o\"");
        let new = content(7, 333, b"\"n\"");
        let total = copy_steps::<W, E>(pages, new.0.len() + new.1.len());
        let mut n = 0u64;
        loop {
            let (mut flash, range) = setup::<W, E>(pages);
            let mut slot = mount(&mut flash, &range);
            store(&mut slot, &mut flash, &old);
            flash.fail_after(n);
            let r = try_store(&mut slot, &mut flash, &new);
            if r.is_ok() {
                assert_eq!(n, total);
                assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&new));
                break;
            }
            assert_eq!(r, Err(SlotError::Flash(FlashError::Other)));
            // The old copy is still the content, now and after a reboot.
            assert_eq!(slot.stored().map(|s| s.generation), Some(1));
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&old));
            let mut rebooted = mount(&mut flash, &range);
            assert_eq!(load(&mut rebooted, &mut flash).as_ref(), Some(&old));
            // A later store succeeds, with a generation above the failed attempt's.
            store(&mut slot, &mut flash, &new);
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&new));
            let mut slot = mount(&mut flash, &range);
            assert_eq!(slot.stored().map(|s| s.generation), Some(3));
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&new));
            n += 1;
        }
    }

    /// A flash whose region holds `a` (generation 1, in A) and `b` (generation 2, in B).
    fn two_copies<const W: usize, const E: usize>(
        pages: usize,
        a: &Content,
        b: &Content,
    ) -> (SimFlash<W, E>, Range<u32>) {
        let (mut flash, range) = setup::<W, E>(pages);
        let mut slot = mount(&mut flash, &range);
        store(&mut slot, &mut flash, a);
        store(&mut slot, &mut flash, b);
        (flash, range)
    }

    fn bit_flips<const W: usize, const E: usize>(pages: usize) {
        let a = content(8, 400, b"\"a\"");
        let b = content(9, 250, b"\"bb\"");
        let c = content(10, 99, b"");
        let body = round_up(HEADER, unit::<W>());
        let b_last = body + b.0.len() + b.1.len() - 1;
        // Header fields (magic, flags, ETag length, generation, document length, CRCs), the
        // ETag, the document.
        for off in [
            0,
            4,
            5,
            6,
            8,
            12,
            16,
            20,
            23,
            body,
            body + 2,
            body + 100,
            b_last,
        ] {
            for bit in [0, 7] {
                let (mut flash, range) = two_copies::<W, E>(pages, &a, &b);
                flash.flip_bit(half_addr::<E>(&range, pages, 1) + off, bit);
                let mut slot = mount(&mut flash, &range);
                assert_eq!(
                    slot.stored(),
                    Some(StoredDefinitions {
                        generation: 1,
                        len: 400,
                        etag_len: 3
                    }),
                    "flip at {off} bit {bit}"
                );
                assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&a));
                // A flip in the magic or the format makes the half no copy of ours: not
                // counted. Any other flip makes it a corrupt copy.
                let counted = u32::from(off > 4);
                assert_eq!(slot.corrupt(), counted, "flip at {off} bit {bit}");
                // The next store replaces the damaged copy, and A stays.
                store(&mut slot, &mut flash, &c);
                let mut slot = mount(&mut flash, &range);
                assert_eq!(slot.corrupt(), 0);
                assert_eq!(slot.stored().map(|s| s.generation), Some(2));
                assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
                let at = half_addr::<E>(&range, pages, 0);
                assert_eq!(flash.contents().get(at..at + 4), Some(&MAGIC[..]));
            }
        }
        // Both copies damaged: an empty slot, both counted.
        let (mut flash, range) = two_copies::<W, E>(pages, &a, &b);
        flash.flip_bit(half_addr::<E>(&range, pages, 0) + body + 7, 2);
        flash.flip_bit(half_addr::<E>(&range, pages, 1) + 9, 5);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored(), None);
        assert_eq!(slot.corrupt(), 2);
        assert_eq!(load(&mut slot, &mut flash), None);
        store(&mut slot, &mut flash, &c);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.corrupt(), 1);
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
    }

    fn flip_after_mount<const W: usize, const E: usize>(pages: usize) {
        let a = content(11, 180, b"\"a\"");
        let b = content(12, 260, b"\"b\"");
        let c = content(13, 70, b"\"c\"");
        let body = round_up(HEADER, unit::<W>());
        let b_at = half_addr::<E>(&range_of::<E>(pages), pages, 1);
        for clear_after in [false, true] {
            let (mut flash, range) = two_copies::<W, E>(pages, &a, &b);
            let mut slot = mount(&mut flash, &range);
            flash.flip_bit(b_at + body + 40, 3);
            let mut d = vec![0; slot.max_document()];
            let mut e = vec![0; DefinitionsSlot::MAX_ETAG];
            assert_eq!(
                block_on(slot.load(&mut flash, &mut d, &mut e)),
                Err(SlotError::Corrupt)
            );
            assert_eq!(slot.stored(), None);
            assert_eq!(slot.corrupt(), 1);
            assert_eq!(load(&mut slot, &mut flash), None);
            // A reboot would fall back to the older copy.
            let mut rebooted = mount(&mut flash, &range);
            assert_eq!(rebooted.corrupt(), 1);
            assert_eq!(load(&mut rebooted, &mut flash).as_ref(), Some(&a));
            if clear_after {
                // So clearing must write, or the older copy would come back.
                block_on(slot.clear(&mut flash)).expect("clears");
                let mut slot = mount(&mut flash, &range);
                assert_eq!(slot.stored(), None);
                assert_eq!(load(&mut slot, &mut flash), None);
            } else {
                store(&mut slot, &mut flash, &c);
                let mut slot = mount(&mut flash, &range);
                assert_eq!(slot.stored().map(|s| s.generation), Some(3));
                assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
            }
            // Either way the damaged copy (B) was replaced and A kept.
            let first = range.start as usize / E;
            assert_eq!(flash.erase_counts()[first], 1);
            assert_eq!(flash.erase_counts()[first + pages / 2], 2);
        }
    }

    fn range_of<const E: usize>(pages: usize) -> Range<u32> {
        E as u32..((pages + 1) * E) as u32
    }

    fn foreign_data<const W: usize, const E: usize>(pages: usize) {
        let (mut flash, range) = setup::<W, E>(pages);
        let junk = doc(0x42, range.len());
        block_on(flash.write(range.start, &junk)).expect("writes");
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored(), None);
        assert_eq!(slot.corrupt(), 0);
        assert_eq!(load(&mut slot, &mut flash), None);
        let c = content(14, 500, b"\"c\"");
        store(&mut slot, &mut flash, &c);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));

        // Our magic and format over junk: two corrupt copies, an empty slot.
        let (mut flash, range) = setup::<W, E>(pages);
        let mut header = doc(0x17, round_up(HEADER, unit::<W>()));
        header[..4].copy_from_slice(&MAGIC);
        header[4] = FORMAT;
        for half in 0..2 {
            let at = half_addr::<E>(&range, pages, half) as u32;
            block_on(flash.write(at, &header)).expect("writes");
        }
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored(), None);
        assert_eq!(slot.corrupt(), 2);
        store(&mut slot, &mut flash, &c);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.corrupt(), 1);
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
    }

    fn sizes<const W: usize, const E: usize>(pages: usize) {
        let (mut flash, range) = setup::<W, E>(pages);
        let mut slot = mount(&mut flash, &range);
        let max = slot.max_document();
        let etag = [b'e'; 10];
        assert_eq!(
            block_on(slot.store(&mut flash, &doc(1, max + 1), None)),
            Err(SlotError::TooLarge { len: max + 1, max })
        );
        assert_eq!(
            block_on(slot.store(&mut flash, &doc(1, max - 9), Some(&etag))),
            Err(SlotError::TooLarge {
                len: max - 9,
                max: max - 10
            })
        );
        assert_eq!(
            block_on(slot.store(&mut flash, &doc(1, 10), Some(&[b'x'; 129]))),
            Err(SlotError::EtagTooLong { len: 129, max: 128 })
        );
        assert_eq!(flash.steps(), 0, "a refused store writes nothing");
        // The limits themselves fit.
        for c in [
            content(2, max - 10, &etag),
            content(3, max - 128, &[b'x'; 128]),
            content(4, max, b""),
        ] {
            store(&mut slot, &mut flash, &c);
            let mut slot = mount(&mut flash, &range);
            assert_eq!(load(&mut slot, &mut flash), Some(c));
        }
        // Buffers too small for the document, then for the ETag: nothing is read.
        let mut d = vec![0; max - 1];
        let mut e = vec![0; 128];
        assert_eq!(
            block_on(slot.load(&mut flash, &mut d, &mut e)),
            Err(SlotError::BufferTooSmall {
                needed: max,
                capacity: max - 1
            })
        );
        store(&mut slot, &mut flash, &content(5, 20, b"\"0123456789\""));
        let mut d = vec![0; 20];
        let mut e = vec![0; 11];
        assert_eq!(
            block_on(slot.load(&mut flash, &mut d, &mut e)),
            Err(SlotError::BufferTooSmall {
                needed: 12,
                capacity: 11
            })
        );
        assert!(e.iter().all(|&b| b == 0));
        let mut e = vec![0; 12];
        assert_eq!(
            block_on(slot.load(&mut flash, &mut d, &mut e)),
            Ok(Some((20, 12)))
        );
        assert_eq!(d, doc(5, 20));
        assert_eq!(e, b"\"0123456789\"");
        // A failed size check does not disturb the slot.
        assert_eq!(slot.corrupt(), 0);
    }

    #[test]
    fn geometry_errors_carry_the_sizes() {
        let mut big = SimFlash::<64, 4096>::new(4, 1);
        assert_eq!(
            block_on(DefinitionsSlot::mount(&mut big, 0..8192)).err(),
            Some(SlotError::Geometry(GeometryError::WriteSize {
                write: 64,
                read: 64,
                max: 32
            }))
        );
        let mut flash = SimFlash::<4, 4096>::new(4, 1);
        for (range, want) in [
            (100..8292, GeometryError::Unaligned { erase: 4096 }),
            (0..6000, GeometryError::Unaligned { erase: 4096 }),
            (
                0..5 * 4096,
                GeometryError::OutOfBounds {
                    end: 5 * 4096,
                    capacity: 4 * 4096,
                },
            ),
            (4096..8192, GeometryError::TooSmall { pages: 1, min: 2 }),
            (4096..4096, GeometryError::TooSmall { pages: 0, min: 2 }),
        ] {
            assert_eq!(
                block_on(DefinitionsSlot::mount(&mut flash, range.clone())).err(),
                Some(SlotError::Geometry(want)),
                "{range:?}"
            );
        }
        let mut small = SimFlash::<4, 128>::new(8, 1);
        assert_eq!(
            block_on(DefinitionsSlot::mount(&mut small, 0..512)).err(),
            Some(SlotError::Geometry(GeometryError::PageSize { page: 128 }))
        );
        // The smallest page works.
        let mut tiny = SimFlash::<4, 256>::new(2, 1);
        let mut slot = block_on(DefinitionsSlot::mount(&mut tiny, 0..512)).expect("mounts");
        assert_eq!(slot.max_document(), 256 - HEADER);
        let c = content(1, 100, b"\"t\"");
        store(&mut slot, &mut tiny, &c);
        assert_eq!(load(&mut slot, &mut tiny), Some(c));
    }

    #[test]
    fn generations_wrap_around() {
        let (mut flash, range) = setup::<4, 4096>(2);
        let mut slot = mount(&mut flash, &range);
        slot.generation = u32::MAX - 1;
        let a = content(1, 10, b"");
        let b = content(2, 20, b"");
        let c = content(3, 30, b"");
        store(&mut slot, &mut flash, &a);
        assert_eq!(slot.stored().map(|s| s.generation), Some(u32::MAX));
        store(&mut slot, &mut flash, &b);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored().map(|s| s.generation), Some(0));
        assert_eq!(load(&mut slot, &mut flash), Some(b));
        store(&mut slot, &mut flash, &c);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored().map(|s| s.generation), Some(1));
        assert_eq!(load(&mut slot, &mut flash), Some(c));
    }

    #[test]
    fn header_encoding_round_trips_and_checks() {
        let h = Header {
            flags: 0,
            etag_len: 7,
            generation: 0x0102_0304,
            doc_len: 1000,
            crc: 0xDEAD_BEEF,
        };
        let b = encode_header(&h);
        assert_eq!(&b[..6], b"PHDF\x01\x00");
        assert_eq!(le_u16(&b, 6), 7);
        assert_eq!(le_u32(&b, 8), 0x0102_0304);
        assert_eq!(le_u32(&b, 20), crc32(&b[..20]));
        assert_eq!(parse_header(&b, 1007), Parsed::Valid(h));
        // Lengths past the room, unknown flags, an over-long ETag: corrupt.
        assert_eq!(parse_header(&b, 1006), Parsed::Corrupt);
        let bad_flags = encode_header(&Header { flags: 2, ..h });
        assert_eq!(parse_header(&bad_flags, 4096), Parsed::Corrupt);
        let long = encode_header(&Header { etag_len: 129, ..h });
        assert_eq!(parse_header(&long, 4096), Parsed::Corrupt);
        let cleared_with_body = encode_header(&Header {
            flags: FLAG_CLEARED,
            ..h
        });
        assert_eq!(parse_header(&cleared_with_body, 4096), Parsed::Corrupt);
        assert_eq!(parse_header(&[0xFF; HEADER], 4096), Parsed::Absent);
    }

    #[test]
    fn errors_display_their_sizes() {
        assert_eq!(
            format!(
                "{}",
                SlotError::TooLarge {
                    len: 5000,
                    max: 4072
                }
            ),
            "definitions document of 5000 bytes, the slot holds at most 4072"
        );
        assert_eq!(
            format!("{}", SlotError::EtagTooLong { len: 129, max: 128 }),
            "ETag of 129 bytes, at most 128 stored"
        );
        assert_eq!(
            format!(
                "{}",
                SlotError::BufferTooSmall {
                    needed: 10,
                    capacity: 4
                }
            ),
            "stored definitions need 10 bytes, the buffer holds 4"
        );
        assert_eq!(
            format!(
                "{}",
                SlotError::Geometry(GeometryError::TooSmall { pages: 1, min: 2 })
            ),
            "definitions slot: range holds 1 pages, at least 2 needed"
        );
        assert_eq!(
            format!("{}", SlotError::Flash(FlashError::Other)),
            "definitions slot: flash: device error"
        );
    }
}
