//! [`EventLog`]: queued events as a log-structured ring of pages on NOR flash.
//!
//! # Layout
//!
//! The region is a ring of erase pages. A page in use starts with a **page header** (magic,
//! format version, page sequence number, boot number, the log's tail when the page was opened,
//! CRC-32), followed by **items** appended in order, each starting on a write-unit boundary:
//!
//! ```text
//! item header (12 bytes): kind u8 | 0x5A | payload length u16 | payload CRC-32 | header CRC-32
//! Event  payload: seq u64 | boot u32 | flags u8 | 0 0 0 | capture instant (ms) u64 | event JSON
//! Tail   payload: tail u64        (every event with a lower sequence number is done)
//! Boot   payload: boot u32        (written at every mount: this boot's number)
//! Anchor payload: boot u32 | 0 | wall clock minus monotonic clock (ms) i64
//! ```
//!
//! Items are padded to whole write units and no write unit holds two items, so no word is ever
//! written twice between erases: the log runs on flash that forbids it (ECC flash such as the
//! STM32H7 and L5), and it never needs `MultiwriteNorFlash`. Pages are used in ring order, each
//! erased just before it is opened, so wear is spread evenly over the region.
//!
//! # Removal
//!
//! Events leave in the order they were appended (the client delivers its oldest events
//! first), so removal is one number: the **tail**, recorded by appending a Tail item (or in the
//! header of the next page opened). A page is erased only when it is needed again and all its
//! events are below the tail; when it still holds events, [`OverflowPolicy`] decides between
//! refusing the new event and dropping the oldest page's events, which are counted.
//!
//! # Power cuts
//!
//! A torn item fails its CRC and is skipped (counted in [`LogStats::corrupt`]); writing resumes
//! after it, so no word is written twice. Like littlefs and sequential-storage, the log takes a
//! word that reads erased as erased: a write torn before it changed any bit of a word leaves
//! that word writable. A read that fails (after a few retries, as an ECC error on a torn word
//! does) is damage too: the rest of that page is skipped and counted, nothing more is written
//! to it, and it is erased only once the events after it show its own are done. A torn erase
//! or a torn page header leaves a page that is not part of the ring (its header does not
//! verify) and that is erased again before use. A torn Tail item leaves the previous tail, so the events of
//! the batch delivered just before the cut are sent again, with the same uuids (PostHog
//! de-duplicates on them). The largest tail is never lost to an erase: every page opened after
//! it records it in its header, and the oldest page (the only one ever erased) is older than
//! the page that recorded it.
//!
//! # Memory
//!
//! [`EventLog`] holds a few cursors, counters and a table of [`MAX_BOOTS`] boots: its RAM does
//! not depend on the size of the region. Mounting reads every page header and every item once.

use embedded_storage_async::nor_flash::NorFlash;

use crate::capture::OverflowPolicy;
use crate::time::{Instant, UnixMillis};

mod error;
mod format;
mod io;

pub use error::{AppendError, MountError, ReadError};
use format::*;
pub use format::{BOOT_RESERVE, EVENT_OVERHEAD, FLAG_TIMESTAMP, MAX_BOOTS};

/// Counters of the log. All saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct LogStats {
    /// Events appended since mount.
    pub persisted: u32,
    /// Undelivered events found at mount.
    pub restored: u32,
    /// Events refused because the region was full ([`OverflowPolicy::RejectNewest`]).
    pub rejected_full: u32,
    /// Undelivered events erased to make room ([`OverflowPolicy::DropOldest`]).
    pub dropped_full: u32,
    /// Items that failed their checks at mount (torn by a power cut, or bit flips): skipped.
    pub corrupt: u32,
    /// Pages erased since mount.
    pub erases: u32,
}

/// What one boot left behind, as found at mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BootInfo {
    /// The boot's number.
    pub boot: u32,
    /// Its wall clock minus its monotonic clock (ms), if it learned the wall clock.
    pub anchor: Option<i64>,
    /// The latest capture instant of its events found.
    pub last_instant: u64,
}

/// An event read back from the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StoredEvent {
    /// Its sequence number (the client's record number).
    pub seq: u64,
    /// The boot that captured it.
    pub boot: u32,
    /// [`FLAG_TIMESTAMP`] and reserved bits.
    pub flags: u8,
    /// Its capture instant on that boot's monotonic clock.
    pub instant: Instant,
    /// Length of its JSON, at the start of the buffer passed to [`EventLog::read`].
    pub len: usize,
}

/// When a restored event happened, by the rule of [`EventLog::event_time`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EventTime {
    /// The JSON carries its wall-clock `timestamp`.
    InJson,
    /// Captured this boot, at this instant of the current monotonic clock.
    ThisBoot(Instant),
    /// Captured on an earlier boot that learned the wall clock: this exact wall-clock time.
    Wall(UnixMillis),
    /// Captured on an earlier boot that never learned the wall clock: at least this many
    /// milliseconds before the current boot started (exact relative to that boot's other
    /// events). Send it as approximate.
    BeforeBoot(u64),
}

/// What mounting found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mounted {
    /// This boot's number (one more than any boot the log has seen).
    pub boot: u32,
    /// Whether this boot's number is on flash. False when flash failed, or after more than
    /// [`BOOT_RESERVE`] boots in a row with the region full of undelivered events: then the
    /// next boot gets the same number, and only the uuid seed (a hardware random number, say)
    /// keeps this boot's uuids apart from the next one's.
    pub boot_recorded: bool,
    /// Undelivered events found.
    pub restored: u32,
    /// The lowest sequence number not yet done: restored events have this one or higher.
    pub tail: u64,
    /// The next sequence number to use: every stored event has a lower one.
    pub next_seq: u64,
}

/// Where the ring is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    page: u32,
    seq: u32,
    /// Next free offset in the page; the page size when it is closed for writing.
    off: u32,
}

/// A read position: the next item to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    page: u32,
    off: u32,
    /// Every live event before this position has a lower sequence number than this.
    below: u64,
}

/// One item found by a scan.
#[derive(Clone, Copy, Debug)]
enum Found {
    Event {
        seq: u64,
        boot: u32,
        flags: u8,
        instant: u64,
        json_at: u32,
        json_len: usize,
    },
    Tail(u64),
    Boot(u32),
    Anchor {
        boot: u32,
        anchor: i64,
    },
}

/// Result of scanning one page.
#[derive(Clone, Copy, Debug, Default)]
struct PageEnd {
    /// First free offset (the page size when full or unreadable).
    free: u32,
    /// Items that failed their checks, and runs of junk.
    corrupt: u32,
    /// The rest of the page could not be read (after retries).
    unreadable: bool,
}

impl PageEnd {
    /// The walk stopped at a read error: count it, and write nothing more in the page.
    fn unreadable(mut self) -> Self {
        self.corrupt = self.corrupt.saturating_add(1);
        self.free = u32::MAX;
        self.unreadable = true;
        self
    }
}

/// The persistent event log. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct EventLog {
    geo: Geometry,
    head: Option<Head>,
    /// Oldest page of the ring (meaningful when `head` is some).
    oldest: u32,
    tail: u64,
    /// The highest tail known to be on flash (in a Tail item or a page header).
    tail_on_flash: u64,
    next_seq: u64,
    boot: u32,
    boots: heapless::Vec<BootInfo, MAX_BOOTS>,
    cursor: Option<Cursor>,
    stats: LogStats,
}

impl EventLog {
    /// Mounts the log in `range` of `flash`: finds the ring, the tail and the undelivered
    /// events, starts a new boot (recorded on flash, so the next mount starts a later one),
    /// and returns the log with what it found. A region that holds no log (new, or foreign
    /// data) is an empty log whose pages are erased as they are first used; recording the boot
    /// erases at most one page. Damage (bit flips, torn writes, reads that fail) is skipped and
    /// counted in [`LogStats::corrupt`], never an error: a page whose header no longer
    /// verifies keeps its place in the ring and its events.
    ///
    /// # Errors
    /// [`MountError::Geometry`] when `range` or the flash's sizes do not fit (see
    /// [`GeometryError`](crate::storage::GeometryError)); [`MountError::Flash`] when not one
    /// page header can be read (the flash is not working: mount again later).
    pub async fn mount<F: NorFlash>(
        flash: &mut F,
        range: core::ops::Range<u32>,
    ) -> Result<(Self, Mounted), MountError> {
        let geo = Geometry::new(flash, range)?;
        let mut log = Self {
            geo,
            head: None,
            oldest: 0,
            tail: 0,
            tail_on_flash: 0,
            next_seq: 0,
            boot: 0,
            boots: heapless::Vec::new(),
            cursor: None,
            stats: LogStats::default(),
        };
        // The head is the verified page with the highest sequence number; the ring runs
        // backwards from it through consecutive sequence numbers.
        let mut best: Option<(u32, PageHeader)> = None;
        let mut unreadable = 0u32;
        for p in 0..geo.pages {
            match log.try_page_header(flash, p).await {
                Ok(Some(h)) => {
                    if best.is_none_or(|(_, b)| h.seq > b.seq) {
                        best = Some((p, h));
                    }
                }
                Ok(None) => {}
                Err(_) => unreadable += 1,
            }
        }
        // Not one header reads: the flash is not working (not yet ready, a bus fault). Taking
        // that for an empty log would erase the real one.
        if unreadable == geo.pages {
            return Err(MountError::Flash);
        }
        let mut max_boot = 0u32;
        if let Some((mut head_page, head_hdr)) = best {
            let mut oldest = head_page;
            let mut seq = head_hdr.seq;
            let mut len = 1u32;
            while len < geo.pages {
                let prev = (oldest + geo.pages - 1) % geo.pages;
                match log.read_page_header(flash, prev).await {
                    Some(h) if seq > 0 && h.seq == seq - 1 => {
                        oldest = prev;
                        seq = h.seq;
                        len += 1;
                    }
                    // Pages whose headers no longer verify (bit flips) between two pages of
                    // the ring are still part of it: the next verified header back, `k` pages
                    // on, has sequence number `seq - k` (pages are opened in ring order with
                    // consecutive numbers). Step over them, each counted as damaged.
                    None => {
                        let mut k = 2u32;
                        let mut found = None;
                        while len + k <= geo.pages && u64::from(k) <= u64::from(seq) {
                            let back = (oldest + geo.pages - k) % geo.pages;
                            if let Some(h) = log.read_page_header(flash, back).await {
                                found = (h.seq == seq - k).then_some((back, h.seq));
                                break;
                            }
                            k += 1;
                        }
                        if let Some((back, s)) = found {
                            oldest = back;
                            seq = s;
                            len += k;
                            log.stats.corrupt = log.stats.corrupt.saturating_add(k - 1);
                            continue;
                        }
                        // Otherwise it is taken as the oldest page: a page that lost its
                        // header keeps its events, and one that was never used, or was being
                        // erased or opened when the power went, holds no undelivered event
                        // (a page is reused only once its events are done) and is erased
                        // before use.
                        oldest = prev;
                        len += 1;
                        break;
                    }
                    _ => break,
                }
            }
            log.oldest = oldest;
            // Pass 1: tail, boots, anchors, highest sequence number, the head's free space.
            let mut page = oldest;
            loop {
                let free = log.mount_page(flash, page, &mut max_boot).await;
                if page == head_page {
                    log.head = Some(Head {
                        page,
                        seq: head_hdr.seq,
                        off: free,
                    });
                    break;
                }
                page = geo.next(page);
            }
            // The page after the head lost its header (a bit flip) if it holds items newer than
            // any in the ring: then it is the head, counted as damaged. (After a power cut
            // while a page is erased or opened, it holds nothing newer.)
            let next = geo.next(head_page);
            if len < geo.pages && log.read_page_header(flash, next).await.is_none() {
                let (seq_before, boot_before, tail_before) =
                    (log.next_seq.max(log.tail), max_boot, log.tail);
                let mut newer = false;
                let _ = log
                    .scan(flash, next, geo.data_start(), &mut |_, _, item| {
                        newer = match item {
                            Found::Event { seq, .. } => seq >= seq_before,
                            Found::Tail(t) => t > tail_before,
                            Found::Boot(b) | Found::Anchor { boot: b, .. } => b > boot_before,
                        };
                        newer
                    })
                    .await;
                if newer {
                    let free = log.mount_page(flash, next, &mut max_boot).await;
                    log.head = Some(Head {
                        page: next,
                        seq: head_hdr.seq.saturating_add(1),
                        off: free,
                    });
                    log.stats.corrupt = log.stats.corrupt.saturating_add(1);
                    head_page = next;
                }
            }
            log.next_seq = log.next_seq.max(log.tail);
            log.tail_on_flash = log.tail;
            // Pass 2: count the undelivered events (each number once: an item reported failed
            // and written again may be on flash twice).
            let tail = log.tail;
            let mut restored = 0u32;
            let mut counted: Option<u64> = None;
            let mut page = oldest;
            loop {
                let _ = log
                    .scan(flash, page, geo.data_start(), &mut |_, _, item| {
                        if let Found::Event { seq, .. } = item {
                            if seq >= tail && counted.is_none_or(|c| seq > c) {
                                restored = restored.saturating_add(1);
                                counted = Some(seq);
                            }
                        }
                        false
                    })
                    .await;
                if page == head_page {
                    break;
                }
                page = geo.next(page);
            }
            log.stats.restored = restored;
        }
        log.boot = max_boot.saturating_add(1);
        let boot = log.boot;
        let boot_recorded = log
            .append_item(
                flash,
                KIND_BOOT,
                &[&boot.to_le_bytes()],
                OverflowPolicy::RejectNewest,
            )
            .await
            .is_ok();
        let mounted = Mounted {
            boot,
            boot_recorded,
            restored: log.stats.restored,
            tail: log.tail,
            next_seq: log.next_seq,
        };
        Ok((log, mounted))
    }

    /// Mount pass 1 over one page: its header's tail and boot, then every item's. Returns the
    /// page's free offset.
    async fn mount_page<F: NorFlash>(
        &mut self,
        flash: &mut F,
        page: u32,
        max_boot: &mut u32,
    ) -> u32 {
        if let Some(h) = self.read_page_header(flash, page).await {
            self.tail = self.tail.max(h.tail);
            *max_boot = (*max_boot).max(h.boot);
        }
        let mut top = *max_boot;
        let end = self
            .scan(flash, page, self.geo.data_start(), &mut |log, _, item| {
                match item {
                    Found::Event {
                        seq, boot, instant, ..
                    } => {
                        log.next_seq = log.next_seq.max(seq.saturating_add(1));
                        top = top.max(boot);
                        log.note_boot(boot, None, Some(instant));
                    }
                    Found::Tail(t) => log.tail = log.tail.max(t),
                    Found::Boot(b) => top = top.max(b),
                    Found::Anchor { boot, anchor } => {
                        top = top.max(boot);
                        log.note_boot(boot, Some(anchor), None);
                    }
                }
                false
            })
            .await;
        *max_boot = top;
        self.stats.corrupt = self.stats.corrupt.saturating_add(end.corrupt);
        end.free.min(self.geo.page)
    }

    /// This boot's number.
    #[must_use]
    pub const fn boot(&self) -> u32 {
        self.boot
    }

    /// The lowest sequence number not yet done.
    #[must_use]
    pub const fn tail(&self) -> u64 {
        self.tail
    }

    /// One more than the highest sequence number stored (or the tail, if higher).
    #[must_use]
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Counters.
    #[must_use]
    pub const fn stats(&self) -> &LogStats {
        &self.stats
    }

    /// The boots found at mount (the [`MAX_BOOTS`] most recent that left events or an anchor).
    #[must_use]
    pub fn boots(&self) -> &[BootInfo] {
        &self.boots
    }

    /// Largest event JSON one item holds.
    #[must_use]
    pub fn max_json(&self) -> usize {
        self.geo.max_payload() - EVENT_FIXED
    }

    /// Bytes of flash an event with `json_len` bytes of JSON takes.
    #[must_use]
    pub fn event_size(&self, json_len: usize) -> usize {
        self.geo.item_size(EVENT_FIXED + json_len)
    }

    /// When an event read back happened, by this rule:
    /// - its JSON carries a wall-clock `timestamp`: [`EventTime::InJson`];
    /// - it was captured this boot: [`EventTime::ThisBoot`], its capture instant;
    /// - its boot learned the wall clock (an Anchor item): [`EventTime::Wall`], exact;
    /// - otherwise [`EventTime::BeforeBoot`]: it happened before this boot started, and at
    ///   least as long before the end of its boot as it was captured before that boot's last
    ///   stored event. This is a lower bound; send it marked approximate.
    #[must_use]
    pub fn event_time(&self, ev: &StoredEvent) -> EventTime {
        if ev.flags & FLAG_TIMESTAMP != 0 {
            return EventTime::InJson;
        }
        if ev.boot == self.boot {
            return EventTime::ThisBoot(ev.instant);
        }
        let info = self.boots.iter().find(|b| b.boot == ev.boot);
        match info {
            Some(BootInfo {
                anchor: Some(a), ..
            }) => EventTime::Wall(UnixMillis::from_millis(
                (ev.instant.as_millis() as i64).saturating_add(*a).max(0) as u64,
            )),
            Some(b) => EventTime::BeforeBoot(b.last_instant.saturating_sub(ev.instant.as_millis())),
            None => EventTime::BeforeBoot(0),
        }
    }

    fn note_boot(&mut self, boot: u32, anchor: Option<i64>, instant: Option<u64>) {
        if let Some(b) = self.boots.iter_mut().find(|b| b.boot == boot) {
            if anchor.is_some() {
                b.anchor = anchor;
            }
            if let Some(i) = instant {
                b.last_instant = b.last_instant.max(i);
            }
            return;
        }
        let info = BootInfo {
            boot,
            anchor,
            last_instant: instant.unwrap_or(0),
        };
        if self.boots.push(info).is_err() {
            // Keep the most recent boots: replace the oldest if this one is newer.
            if let Some(min) = self.boots.iter_mut().min_by_key(|b| b.boot) {
                if min.boot < boot {
                    *min = info;
                }
            }
        }
    }

    /// Appends an event (captured at `instant` on this boot; `flags` is [`FLAG_TIMESTAMP`]
    /// when its JSON carries a wall-clock time) and returns its sequence number: one more than
    /// the last stored (numbers increase across boots and never repeat). When the region is
    /// full of undelivered events, `policy` decides: refuse this event, or erase the oldest
    /// page's events (counted in [`LogStats::dropped_full`]; [`tail`](Self::tail) moves past
    /// them).
    ///
    /// # Errors
    /// See [`AppendError`]. After [`AppendError::Flash`] the event may be on flash or not (the
    /// error may have come after it was programmed), so its number is never given again: an
    /// event written again gets the next one, and if both copies survive, both are restored,
    /// with the same uuid (PostHog keeps one).
    pub async fn append<F: NorFlash>(
        &mut self,
        flash: &mut F,
        flags: u8,
        instant: Instant,
        json: &[u8],
        policy: OverflowPolicy,
    ) -> Result<u64, AppendError> {
        let seq = self.next_seq;
        let mut fixed = [0u8; EVENT_FIXED];
        put(&mut fixed, 0, &seq.to_le_bytes());
        put(&mut fixed, 8, &self.boot.to_le_bytes());
        put(&mut fixed, 12, &[flags]);
        put(&mut fixed, 16, &instant.as_millis().to_le_bytes());
        let r = self
            .append_item(flash, KIND_EVENT, &[&fixed, json], policy)
            .await;
        match r {
            Ok(()) => {
                self.next_seq = seq.saturating_add(1);
                self.stats.persisted = self.stats.persisted.saturating_add(1);
                self.note_boot(self.boot, None, Some(instant.as_millis()));
                Ok(seq)
            }
            Err(e) => {
                match e {
                    AppendError::Full => {
                        self.stats.rejected_full = self.stats.rejected_full.saturating_add(1);
                    }
                    // The item may be on flash (whole, if the error came after it was
                    // programmed): its number is spent, so no other event ever shares it.
                    AppendError::Flash(_) => self.next_seq = seq.saturating_add(1),
                    AppendError::TooLarge { .. } => {}
                }
                Err(e)
            }
        }
    }

    /// Records that every event below `tail` is done (delivered, or dropped by a rule the
    /// application chose). A value the flash already records changes nothing; after an error,
    /// calling again with the same value writes it again.
    ///
    /// # Errors
    /// [`AppendError::Flash`]; [`AppendError::Full`] cannot happen (recording a tail never
    /// needs to drop events) but is passed on if the region cannot take even a page header.
    pub async fn set_tail<F: NorFlash>(
        &mut self,
        flash: &mut F,
        tail: u64,
    ) -> Result<(), AppendError> {
        if tail <= self.tail_on_flash {
            return Ok(());
        }
        let tail = tail.max(self.tail);
        self.tail = tail;
        self.next_seq = self.next_seq.max(tail);
        let size = self.geo.item_size(8);
        if !self.fits(size) {
            // The next page's header records the tail: no item needed.
            return self.open_page(flash, OverflowPolicy::RejectNewest).await;
        }
        self.append_item(
            flash,
            KIND_TAIL,
            &[&tail.to_le_bytes()],
            OverflowPolicy::RejectNewest,
        )
        .await?;
        self.tail_on_flash = self.tail_on_flash.max(tail);
        Ok(())
    }

    /// Records this boot's clock anchor, `wall - mono` in milliseconds, so events of this boot
    /// that are still stored at a later boot get their exact wall-clock time.
    ///
    /// # Errors
    /// As [`set_tail`](Self::set_tail).
    pub async fn record_anchor<F: NorFlash>(
        &mut self,
        flash: &mut F,
        anchor: i64,
    ) -> Result<(), AppendError> {
        let mut p = [0u8; 16];
        put(&mut p, 0, &self.boot.to_le_bytes());
        put(&mut p, 8, &anchor.to_le_bytes());
        self.append_item(flash, KIND_ANCHOR, &[&p], OverflowPolicy::RejectNewest)
            .await?;
        self.note_boot(self.boot, Some(anchor), None);
        Ok(())
    }

    /// Reads the first undelivered event with sequence number `from` or higher into `out`.
    /// `None` when there is none. Reading in increasing `from` order resumes where the last
    /// read stopped; a lower `from` starts again from the oldest page. Damaged items are
    /// skipped.
    ///
    /// # Errors
    /// [`ReadError::BufferTooSmall`] names the event and its size (read again with a higher
    /// `from` to skip it); [`ReadError::Flash`].
    pub async fn read<F: NorFlash>(
        &mut self,
        flash: &mut F,
        from: u64,
        out: &mut [u8],
    ) -> Result<Option<StoredEvent>, ReadError> {
        let Some(head) = self.head else {
            return Ok(None);
        };
        let from = from.max(self.tail);
        let mut cur = match self.cursor {
            Some(c) if c.below <= from => c,
            _ => Cursor {
                page: self.oldest,
                off: self.geo.data_start(),
                below: 0,
            },
        };
        loop {
            let mut hit: Option<(StoredEvent, u32, u32)> = None;
            let end = self
                .scan(flash, cur.page, cur.off, &mut |_, at, item| {
                    if let Found::Event {
                        seq,
                        boot,
                        flags,
                        instant,
                        json_at,
                        json_len,
                    } = item
                    {
                        if seq >= from {
                            let ev = StoredEvent {
                                seq,
                                boot,
                                flags,
                                instant: Instant::from_millis(instant),
                                len: json_len,
                            };
                            hit = Some((ev, json_at, at));
                            return true;
                        }
                    }
                    false
                })
                .await;
            if let Some((ev, json_at, next)) = hit {
                if ev.len > out.len() {
                    self.cursor = Some(Cursor {
                        page: cur.page,
                        off: cur.off,
                        below: from,
                    });
                    return Err(ReadError::BufferTooSmall {
                        seq: ev.seq,
                        needed: ev.len,
                        capacity: out.len(),
                    });
                }
                let buf = out.get_mut(..ev.len).unwrap_or_default();
                self.read_bytes(flash, self.geo.addr(cur.page) + json_at, buf)
                    .await
                    .map_err(ReadError::Flash)?;
                self.cursor = Some(Cursor {
                    page: cur.page,
                    off: next,
                    below: ev.seq.saturating_add(1),
                });
                return Ok(Some(ev));
            }
            let _ = end;
            if cur.page == head.page {
                self.cursor = Some(Cursor {
                    page: cur.page,
                    off: cur.off,
                    below: from,
                });
                return Ok(None);
            }
            cur = Cursor {
                page: self.geo.next(cur.page),
                off: self.geo.data_start(),
                below: from,
            };
        }
    }
}
