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

use embedded_storage_async::nor_flash::NorFlash;

use super::crc::{crc32, Crc32};
use super::region::{flash_err, le_u16, le_u32, read_bytes, round_up, write_parts, Region, STAGE};
use super::{FlashError, GeometryError};

const MAGIC: [u8; 4] = *b"PHDF";
const FORMAT: u8 = 1;
/// Header flag: the copy wipes the slot (no document, no ETag).
const FLAG_CLEARED: u8 = 1;
/// Header bytes before padding.
const HEADER: usize = 24;
/// Header bytes covered by the header CRC.
const HEADER_CHECKED: usize = 20;
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
        let r = Region::new(flash, &range, 2)?;
        Ok(Self {
            start: range.start,
            half: r.pages / 2 * r.page,
            unit: r.unit,
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

/// Whether generation `a` is newer than `b`, as serial numbers (wrapping around).
const fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
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
mod tests;
