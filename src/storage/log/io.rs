//! The log's private flash work: appending items, opening (erasing) pages, and reading and
//! scanning them through small staging buffers.

use embedded_storage_async::nor_flash::NorFlash;

use super::format::*;
use super::{AppendError, EventLog, Found, Head, PageEnd};
use crate::capture::OverflowPolicy;
use crate::storage::crc::Crc32;
use crate::storage::region::{self, flash_err};
use crate::storage::FlashError;

impl EventLog {
    /// Whether an item of `size` bytes fits in the head page.
    pub(super) fn fits(&self, size: usize) -> bool {
        self.head
            .is_some_and(|h| h.off as usize + size <= self.geo.page as usize)
    }

    pub(super) async fn append_item<F: NorFlash>(
        &mut self,
        flash: &mut F,
        kind: u8,
        payload: &[&[u8]],
        policy: OverflowPolicy,
    ) -> Result<(), AppendError> {
        let len: usize = payload.iter().map(|p| p.len()).sum();
        let max = self.geo.max_payload();
        if len > max {
            return Err(AppendError::TooLarge {
                len: self.geo.item_size(len),
                max: self.geo.item_size(max),
            });
        }
        let size = self.geo.item_size(len);
        // Every page keeps room for a few boot items, so a mount records its boot number
        // (which keeps uuids apart across reboots) even when the region is full.
        let reserve = if kind == KIND_BOOT {
            0
        } else {
            BOOT_RESERVE * self.geo.item_size(4)
        };
        if !self.fits(size + reserve) {
            self.open_page(flash, policy).await?;
        }
        let Some(head) = self.head else {
            return Err(AppendError::Full);
        };
        let at = self.geo.addr(head.page) + head.off;
        let header = item_header(kind, payload);
        let mut parts: heapless::Vec<&[u8], 4> = heapless::Vec::new();
        let _ = parts.push(&header);
        for p in payload {
            let _ = parts.push(p);
        }
        let r = self.write_parts(flash, at, &parts).await;
        if let Some(h) = self.head.as_mut() {
            // On failure the words may be half-written: close the page.
            h.off = if r.is_ok() {
                h.off + size as u32
            } else {
                self.geo.page
            };
        }
        r.map_err(AppendError::Flash)
    }

    /// Opens the next page of the ring, erasing it first. When the ring is full, the oldest
    /// page is reclaimed if its events are all below the tail; otherwise `policy` decides.
    pub(super) async fn open_page<F: NorFlash>(
        &mut self,
        flash: &mut F,
        policy: OverflowPolicy,
    ) -> Result<(), AppendError> {
        let (target, seq) = match self.head {
            Some(h) => (self.geo.next(h.page), h.seq.saturating_add(1)),
            None => (0, 0),
        };
        if let Some(h) = self.head {
            let used = (h.page + self.geo.pages - self.oldest) % self.geo.pages + 1;
            if used == self.geo.pages {
                // Reclaim the oldest page.
                let tail = self.tail;
                let mut live = 0u32;
                let mut max_seq = None;
                let end = self
                    .scan(
                        flash,
                        self.oldest,
                        self.geo.data_start(),
                        &mut |_, _, item| {
                            if let Found::Event { seq, .. } = item {
                                if seq >= tail {
                                    live += 1;
                                    max_seq = Some(seq);
                                }
                            }
                            false
                        },
                    )
                    .await;
                if end.unreadable && !self.done_before_next(flash).await {
                    // What cannot be read may hold undelivered events: it is erased only once
                    // the tail is past every event of the pages after it.
                    if policy == OverflowPolicy::RejectNewest || max_seq.is_none() {
                        return Err(AppendError::Full);
                    }
                }
                if let Some(max_seq) = max_seq {
                    match policy {
                        OverflowPolicy::RejectNewest => return Err(AppendError::Full),
                        OverflowPolicy::DropOldest => {
                            self.stats.dropped_full = self.stats.dropped_full.saturating_add(live);
                            self.tail = max_seq.saturating_add(1);
                        }
                    }
                }
                if self.cursor.is_some_and(|c| c.page == self.oldest) {
                    self.cursor = None;
                }
                self.oldest = self.geo.next(self.oldest);
            }
        }
        let addr = self.geo.addr(target);
        // Until the header is written, the page is not part of the ring.
        if let Some(h) = self.head.as_mut() {
            h.off = self.geo.page;
        }
        flash
            .erase(addr, addr + self.geo.page)
            .await
            .map_err(|e| AppendError::Flash(flash_err(e)))?;
        self.stats.erases = self.stats.erases.saturating_add(1);
        let header = page_header(PageHeader {
            seq,
            boot: self.boot,
            tail: self.tail,
        });
        self.write_parts(flash, addr, &[&header])
            .await
            .map_err(AppendError::Flash)?;
        self.tail_on_flash = self.tail_on_flash.max(self.tail);
        if self.head.is_none() {
            self.oldest = target;
        }
        self.head = Some(Head {
            page: target,
            seq,
            off: self.geo.data_start(),
        });
        Ok(())
    }

    /// Writes the concatenation of `parts` at `at` (unit-aligned), padded to whole units.
    pub(super) async fn write_parts<F: NorFlash>(
        &self,
        flash: &mut F,
        at: u32,
        parts: &[&[u8]],
    ) -> Result<(), FlashError> {
        region::write_parts(flash, self.geo.unit as usize, at, parts).await
    }

    /// Reads `out.len()` bytes at `addr` (any alignment), each read retried a few times.
    pub(super) async fn read_bytes<F: NorFlash>(
        &self,
        flash: &mut F,
        addr: u32,
        out: &mut [u8],
    ) -> Result<(), FlashError> {
        region::read_bytes(flash, self.geo.unit as usize, addr, out).await
    }

    /// Whether every event of the oldest page is below the tail, as the events after it show:
    /// each is older than the first event of the pages that follow (or than the next number).
    pub(super) async fn done_before_next<F: NorFlash>(&mut self, flash: &mut F) -> bool {
        let Some(head) = self.head else {
            return true;
        };
        let mut page = self.oldest;
        while page != head.page {
            page = self.geo.next(page);
            let mut first = None;
            let _ = self
                .scan(flash, page, self.geo.data_start(), &mut |_, _, item| {
                    if let Found::Event { seq, .. } = item {
                        first = Some(seq);
                        return true;
                    }
                    false
                })
                .await;
            if let Some(first) = first {
                return self.tail >= first;
            }
        }
        self.tail >= self.next_seq
    }

    /// The page's header, if it reads and verifies.
    pub(super) async fn read_page_header<F: NorFlash>(
        &self,
        flash: &mut F,
        page: u32,
    ) -> Option<PageHeader> {
        self.try_page_header(flash, page).await.ok().flatten()
    }

    /// The page's header: `Ok(None)` when it does not verify, an error when it cannot be read.
    pub(super) async fn try_page_header<F: NorFlash>(
        &self,
        flash: &mut F,
        page: u32,
    ) -> Result<Option<PageHeader>, FlashError> {
        let mut b = [0u8; PAGE_HEADER];
        self.read_bytes(flash, self.geo.addr(page), &mut b).await?;
        Ok(parse_page_header(&b))
    }

    /// Walks the items of `page` from `from`, calling `visit(self, next_offset, item)` for each
    /// valid one until it returns true. Returns where the free space starts, the damaged items
    /// and whether the rest of the page could not be read (then the free space is the page's
    /// end: nothing is written after what cannot be read). Each step reads at least one unit,
    /// so the walk ends within the page.
    pub(super) async fn scan<F: NorFlash>(
        &mut self,
        flash: &mut F,
        page: u32,
        from: u32,
        visit: &mut dyn FnMut(&mut Self, u32, Found) -> bool,
    ) -> PageEnd {
        let geo = self.geo;
        let base = geo.addr(page);
        let unit = geo.unit;
        let mut off = from;
        let mut end = PageEnd {
            free: geo.page,
            ..PageEnd::default()
        };
        let mut in_junk = false;
        while off + unit <= geo.page {
            let mut hb = [0xFFu8; ITEM_HEADER];
            let room = ((geo.page - off) as usize).min(ITEM_HEADER);
            let hdr = match self
                .read_bytes(flash, base + off, hb.get_mut(..room).unwrap_or_default())
                .await
            {
                Ok(()) => parse_item_header(&hb).filter(|_| room == ITEM_HEADER),
                Err(_) => return end.unreadable(),
            };
            let fits = hdr.filter(|h| off as usize + geo.item_size(h.len) <= geo.page as usize);
            if let Some(h) = fits {
                in_junk = false;
                let size = geo.item_size(h.len) as u32;
                let payload_at = off + ITEM_HEADER as u32;
                let Ok(item) = self.check_item(flash, base, payload_at, h).await else {
                    return end.unreadable();
                };
                off += size;
                match item {
                    Some(found) => {
                        if visit(self, off, found) {
                            return end;
                        }
                    }
                    None => end.corrupt = end.corrupt.saturating_add(1),
                }
                continue;
            }
            // Not an item: erased space (the end, if the rest is erased too), an erased unit
            // inside a torn write, or junk.
            if hb.iter().all(|&b| b == 0xFF) {
                match self.erased_from(flash, base, off).await {
                    Ok(true) => {
                        end.free = off;
                        return end;
                    }
                    Ok(false) => {}
                    Err(_) => return end.unreadable(),
                }
                off += unit;
                continue;
            }
            if !in_junk {
                end.corrupt = end.corrupt.saturating_add(1);
                in_junk = true;
            }
            off += unit;
        }
        end
    }

    /// Whether the page is erased from `off` to its end.
    pub(super) async fn erased_from<F: NorFlash>(
        &self,
        flash: &mut F,
        base: u32,
        off: u32,
    ) -> Result<bool, FlashError> {
        let mut stage = [0u8; STAGE];
        let mut at = off;
        while at < self.geo.page {
            let n = ((self.geo.page - at) as usize).min(stage.len());
            let buf = stage.get_mut(..n).unwrap_or_default();
            self.read_bytes(flash, base + at, buf).await?;
            if buf.iter().any(|&b| b != 0xFF) {
                return Ok(false);
            }
            at += n as u32;
        }
        Ok(true)
    }

    /// Verifies an item's payload CRC and decodes it.
    pub(super) async fn check_item<F: NorFlash>(
        &self,
        flash: &mut F,
        base: u32,
        payload_at: u32,
        h: ItemHeader,
    ) -> Result<Option<Found>, FlashError> {
        let mut crc = Crc32::new();
        let mut fixed = [0u8; EVENT_FIXED];
        let mut stage = [0u8; STAGE];
        let mut done = 0usize;
        while done < h.len {
            let n = (h.len - done).min(stage.len());
            let buf = stage.get_mut(..n).unwrap_or_default();
            self.read_bytes(flash, base + payload_at + done as u32, buf)
                .await?;
            crc.update(buf);
            for (i, &b) in buf.iter().enumerate() {
                if let Some(slot) = fixed.get_mut(done + i) {
                    *slot = b;
                }
            }
            done += n;
        }
        if crc.finish() != h.crc {
            return Ok(None);
        }
        Ok(match (h.kind, h.len) {
            (KIND_EVENT, len) if len >= EVENT_FIXED => Some(Found::Event {
                seq: le_u64(&fixed, 0),
                boot: le_u32(&fixed, 8),
                flags: fixed.get(12).copied().unwrap_or(0),
                instant: le_u64(&fixed, 16),
                json_at: payload_at + EVENT_FIXED as u32,
                json_len: len - EVENT_FIXED,
            }),
            (KIND_TAIL, 8) => Some(Found::Tail(le_u64(&fixed, 0))),
            (KIND_BOOT, 4) => Some(Found::Boot(le_u32(&fixed, 0))),
            (KIND_ANCHOR, 16) => Some(Found::Anchor {
                boot: le_u32(&fixed, 0),
                anchor: le_u64(&fixed, 8) as i64,
            }),
            _ => None,
        })
    }
}
