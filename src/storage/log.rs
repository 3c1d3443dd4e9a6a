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
//! A torn item fails its CRC and is skipped (counted in [`LogStats::corrupt`]); the page it is
//! in is closed for writing at the next mount, so no word is written twice. Like littlefs and
//! sequential-storage, the log takes a word that reads erased as erased: a write torn before
//! it changed any bit of a word leaves that word writable. (On ECC flash a torn word reads as
//! an ECC error instead, which fails the mount with [`MountError::Flash`] rather than being
//! taken for erased space.) A torn erase or a
//! torn page header leaves a page that is not part of the ring (its header does not verify) and
//! that is erased again before use. A torn Tail item leaves the previous tail, so the events of
//! the batch delivered just before the cut are sent again, with the same uuids (PostHog
//! de-duplicates on them). The largest tail is never lost to an erase: every page opened after
//! it records it in its header, and the oldest page (the only one ever erased) is older than
//! the page that recorded it.
//!
//! # Memory
//!
//! [`EventLog`] holds a few cursors, counters and a table of [`MAX_BOOTS`] boots: its RAM does
//! not depend on the size of the region. Mounting reads every page header and every item once.

use embedded_storage_async::nor_flash::{NorFlash, NorFlashError};

use super::crc::{crc32, Crc32};
use super::{FlashError, GeometryError};
use crate::capture::OverflowPolicy;
use crate::time::{Instant, UnixMillis};

const PAGE_MAGIC: [u8; 4] = *b"PHEL";
const FORMAT: u8 = 1;
const PAGE_HEADER: usize = 28;
const ITEM_HEADER: usize = 12;
const ITEM_MARK: u8 = 0x5A;
const EVENT_FIXED: usize = 24;
/// The longest single write the log makes (its staging buffer).
const STAGE: usize = 2 * MAX_WRITE_SIZE;
/// Largest write unit supported (the STM32H7's flash word is 32 bytes).
pub const MAX_WRITE_SIZE: usize = 32;
/// Boots whose clock anchor and last capture instant the log remembers at mount.
pub const MAX_BOOTS: usize = 8;
/// Bytes of an Event item besides its JSON (item header and fixed fields, before padding).
pub const EVENT_OVERHEAD: usize = ITEM_HEADER + EVENT_FIXED;

const KIND_EVENT: u8 = 1;
const KIND_TAIL: u8 = 2;
const KIND_BOOT: u8 = 3;
const KIND_ANCHOR: u8 = 4;

/// Event flag: the JSON carries its own wall-clock `timestamp`.
pub const FLAG_TIMESTAMP: u8 = 1;

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
    /// Whether this boot's number is on flash (false only when the region is full of
    /// undelivered events under [`OverflowPolicy::RejectNewest`], or flash failed).
    pub boot_recorded: bool,
    /// Undelivered events found.
    pub restored: u32,
    /// The lowest sequence number not yet done: restored events have this one or higher.
    pub tail: u64,
    /// The next sequence number to use: every stored event has a lower one.
    pub next_seq: u64,
}

/// Why an append did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AppendError {
    /// The event needs `len` bytes but a page holds at most `max`.
    TooLarge {
        /// Bytes the item needs.
        len: usize,
        /// Largest item a page holds.
        max: usize,
    },
    /// The region holds only undelivered events and the policy refuses to drop them.
    Full,
    /// The flash failed (the page being written is closed; nothing half-written is trusted).
    Flash(FlashError),
}

impl core::fmt::Display for AppendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "event needs {len} bytes of flash, a page holds {max}")
            }
            Self::Full => f.write_str("flash region full of undelivered events"),
            Self::Flash(e) => write!(f, "flash: {e}"),
        }
    }
}

impl core::error::Error for AppendError {}

/// Why a read did not return an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadError {
    /// The event's JSON is `needed` bytes; the buffer holds `capacity`.
    BufferTooSmall {
        /// Its sequence number (skip it with a higher `from`, or grow the buffer).
        seq: u64,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The flash failed.
    Flash(FlashError),
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall {
                seq,
                needed,
                capacity,
            } => write!(
                f,
                "event {seq} is {needed} bytes, the buffer holds {capacity}"
            ),
            Self::Flash(e) => write!(f, "flash: {e}"),
        }
    }
}

impl core::error::Error for ReadError {}

/// Why mounting failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MountError {
    /// The region or the flash's sizes do not fit the log.
    Geometry(GeometryError),
    /// The flash failed while reading.
    Flash(FlashError),
}

impl core::fmt::Display for MountError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Geometry(g) => write!(f, "event log: {g}"),
            Self::Flash(e) => write!(f, "event log: flash: {e}"),
        }
    }
}

impl core::error::Error for MountError {}

impl From<GeometryError> for MountError {
    fn from(e: GeometryError) -> Self {
        Self::Geometry(e)
    }
}

/// The shape of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    start: u32,
    page: u32,
    pages: u32,
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

    const fn addr(&self, page: u32) -> u32 {
        self.start + page * self.page
    }

    fn data_start(&self) -> u32 {
        round_up(PAGE_HEADER, self.unit as usize) as u32
    }

    fn item_size(&self, payload: usize) -> usize {
        round_up(ITEM_HEADER + payload, self.unit as usize)
    }

    /// Largest payload one item can carry.
    fn max_payload(&self) -> usize {
        let room = (self.page - self.data_start()) as usize;
        (room - room % self.unit as usize - ITEM_HEADER).min(u16::MAX as usize)
    }

    const fn next(&self, page: u32) -> u32 {
        (page + 1) % self.pages
    }
}

const fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// Copies `bytes` into `buf` at `at` (nothing past its end).
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn flash_err<E: NorFlashError>(e: E) -> FlashError {
    FlashError::from_kind(e.kind())
}

/// A decoded item header.
#[derive(Clone, Copy, Debug)]
struct ItemHeader {
    kind: u8,
    len: usize,
    crc: u32,
}

fn parse_item_header(b: &[u8]) -> Option<ItemHeader> {
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

fn item_header(kind: u8, payload: &[&[u8]]) -> [u8; ITEM_HEADER] {
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
struct PageHeader {
    seq: u32,
    boot: u32,
    tail: u64,
}

fn parse_page_header(b: &[u8]) -> Option<PageHeader> {
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

fn page_header(p: PageHeader) -> [u8; PAGE_HEADER] {
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
    /// First free offset (the page size when full).
    free: u32,
    /// Whether what precedes the free space is damaged (a torn write): the page must not be
    /// written again.
    damaged: bool,
    corrupt: u32,
}

/// The persistent event log. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct EventLog {
    geo: Geometry,
    head: Option<Head>,
    /// Oldest page of the ring (meaningful when `head` is some).
    oldest: u32,
    tail: u64,
    next_seq: u64,
    boot: u32,
    boots: heapless::Vec<BootInfo, MAX_BOOTS>,
    cursor: Option<Cursor>,
    stats: LogStats,
}

impl EventLog {
    /// Mounts the log in `range` of `flash`: finds the ring, the tail and the undelivered
    /// events, starts a new boot (recorded on flash, so the next mount starts a later one),
    /// and returns the log with what it found. Nothing is erased; a region that holds no log
    /// (new, or foreign data) is an empty log whose pages are erased as they are first used.
    ///
    /// # Errors
    /// [`MountError::Geometry`] when `range` or the flash's sizes do not fit (see
    /// [`GeometryError`]); [`MountError::Flash`] when reading fails.
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
            next_seq: 0,
            boot: 0,
            boots: heapless::Vec::new(),
            cursor: None,
            stats: LogStats::default(),
        };
        // The head is the verified page with the highest sequence number; the ring runs
        // backwards from it through consecutive sequence numbers.
        let mut best: Option<(u32, PageHeader)> = None;
        for p in 0..geo.pages {
            if let Some(h) = log.read_page_header(flash, p).await? {
                if best.is_none_or(|(_, b)| h.seq > b.seq) {
                    best = Some((p, h));
                }
            }
        }
        let mut max_boot = 0u32;
        if let Some((head_page, head_hdr)) = best {
            let mut oldest = head_page;
            let mut seq = head_hdr.seq;
            for _ in 1..geo.pages {
                let prev = (oldest + geo.pages - 1) % geo.pages;
                match log.read_page_header(flash, prev).await? {
                    Some(h) if seq > 0 && h.seq == seq - 1 => {
                        oldest = prev;
                        seq = h.seq;
                    }
                    _ => break,
                }
            }
            log.oldest = oldest;
            log.head = Some(Head {
                page: head_page,
                seq: head_hdr.seq,
                off: geo.page,
            });
            // Pass 1: tail, boots, anchors, highest sequence number, the head's free space.
            let mut page = oldest;
            loop {
                if let Some(h) = log.read_page_header(flash, page).await? {
                    log.tail = log.tail.max(h.tail);
                    max_boot = max_boot.max(h.boot);
                }
                let end = log
                    .scan(flash, page, geo.data_start(), &mut |log, _, item| {
                        match item {
                            Found::Event {
                                seq, boot, instant, ..
                            } => {
                                log.next_seq = log.next_seq.max(seq.saturating_add(1));
                                max_boot = max_boot.max(boot);
                                log.note_boot(boot, None, Some(instant));
                            }
                            Found::Tail(t) => log.tail = log.tail.max(t),
                            Found::Boot(b) => max_boot = max_boot.max(b),
                            Found::Anchor { boot, anchor } => {
                                max_boot = max_boot.max(boot);
                                log.note_boot(boot, Some(anchor), None);
                            }
                        }
                        false
                    })
                    .await?;
                log.stats.corrupt = log.stats.corrupt.saturating_add(end.corrupt);
                if page == head_page {
                    if let Some(h) = log.head.as_mut() {
                        h.off = end.free;
                    }
                    break;
                }
                page = geo.next(page);
            }
            log.next_seq = log.next_seq.max(log.tail);
            // Pass 2: count the undelivered events and place the read cursor on the first.
            let tail = log.tail;
            let mut restored = 0u32;
            let mut page = oldest;
            loop {
                let _ = log
                    .scan(flash, page, geo.data_start(), &mut |_, _, item| {
                        if let Found::Event { seq, .. } = item {
                            if seq >= tail {
                                restored = restored.saturating_add(1);
                            }
                        }
                        false
                    })
                    .await?;
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
    /// See [`AppendError`]. On any error nothing of this event is trusted on flash.
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
                if e == AppendError::Full {
                    self.stats.rejected_full = self.stats.rejected_full.saturating_add(1);
                }
                Err(e)
            }
        }
    }

    /// Records that every event below `tail` is done (delivered, or dropped by a rule the
    /// application chose). Lower values than the current tail change nothing.
    ///
    /// # Errors
    /// [`AppendError::Flash`]; [`AppendError::Full`] cannot happen (recording a tail never
    /// needs to drop events) but is passed on if the region cannot take even a page header.
    pub async fn set_tail<F: NorFlash>(
        &mut self,
        flash: &mut F,
        tail: u64,
    ) -> Result<(), AppendError> {
        if tail <= self.tail {
            return Ok(());
        }
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
        .await
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
                .await
                .map_err(|e| match e {
                    MountError::Flash(f) => ReadError::Flash(f),
                    MountError::Geometry(_) => ReadError::Flash(FlashError::Other),
                })?;
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

    /// Whether an item of `size` bytes fits in the head page.
    fn fits(&self, size: usize) -> bool {
        self.head
            .is_some_and(|h| h.off as usize + size <= self.geo.page as usize)
    }

    async fn append_item<F: NorFlash>(
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
        if !self.fits(size) {
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
    async fn open_page<F: NorFlash>(
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
                let _ = self
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
                    .await
                    .map_err(|e| match e {
                        MountError::Flash(f) => AppendError::Flash(f),
                        MountError::Geometry(_) => AppendError::Flash(FlashError::Other),
                    })?;
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

    /// Writes the concatenation of `parts` at `at` (unit-aligned), padded with zeros to a whole
    /// number of units, in unit-sized writes through a small staging buffer.
    async fn write_parts<F: NorFlash>(
        &self,
        flash: &mut F,
        at: u32,
        parts: &[&[u8]],
    ) -> Result<(), FlashError> {
        let unit = self.geo.unit as usize;
        let mut stage = [0u8; STAGE];
        let mut n = 0usize;
        let mut addr = at;
        for part in parts {
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let take = rest.len().min(stage.len() - n);
                let (now, later) = rest.split_at(take);
                if let Some(dst) = stage.get_mut(n..n + take) {
                    dst.copy_from_slice(now);
                }
                n += take;
                rest = later;
                let whole = n - n % unit;
                if whole > 0 && n == stage.len() {
                    flash
                        .write(addr, stage.get(..whole).unwrap_or_default())
                        .await
                        .map_err(flash_err)?;
                    addr += whole as u32;
                    stage.copy_within(whole..n, 0);
                    n -= whole;
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

    /// Reads `out.len()` bytes at `addr` (any alignment) through a staging buffer, in reads
    /// aligned to the unit.
    async fn read_bytes<F: NorFlash>(
        &self,
        flash: &mut F,
        addr: u32,
        out: &mut [u8],
    ) -> Result<(), FlashError> {
        let mut stage = [0u8; 2 * MAX_WRITE_SIZE];
        let unit = self.geo.unit as usize;
        let mut done = 0usize;
        while done < out.len() {
            let pos = addr as usize + done;
            let skip = pos % unit;
            let want = (out.len() - done).min(stage.len() - skip);
            let chunk = round_up(skip + want, unit);
            let buf = stage.get_mut(..chunk).unwrap_or_default();
            flash
                .read((pos - skip) as u32, buf)
                .await
                .map_err(flash_err)?;
            if let (Some(dst), Some(src)) =
                (out.get_mut(done..done + want), buf.get(skip..skip + want))
            {
                dst.copy_from_slice(src);
            }
            done += want;
        }
        Ok(())
    }

    async fn read_page_header<F: NorFlash>(
        &self,
        flash: &mut F,
        page: u32,
    ) -> Result<Option<PageHeader>, MountError> {
        let mut b = [0u8; PAGE_HEADER];
        self.read_bytes(flash, self.geo.addr(page), &mut b)
            .await
            .map_err(MountError::Flash)?;
        Ok(parse_page_header(&b))
    }

    /// Walks the items of `page` from `from`, calling `visit(self, next_offset, item)` for each
    /// valid one until it returns true. Returns where the free space starts and whether the
    /// page is damaged. Each step reads at least one unit, so the walk ends within the page.
    async fn scan<F: NorFlash>(
        &mut self,
        flash: &mut F,
        page: u32,
        from: u32,
        visit: &mut dyn FnMut(&mut Self, u32, Found) -> bool,
    ) -> Result<PageEnd, MountError> {
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
                Err(e) => return Err(MountError::Flash(e)),
            };
            let fits = hdr.filter(|h| off as usize + geo.item_size(h.len) <= geo.page as usize);
            if let Some(h) = fits {
                in_junk = false;
                let size = geo.item_size(h.len) as u32;
                let payload_at = off + ITEM_HEADER as u32;
                let item = self.check_item(flash, base, payload_at, h).await?;
                off += size;
                match item {
                    Some(found) => {
                        end.damaged = false;
                        if visit(self, off, found) {
                            return Ok(end);
                        }
                    }
                    None => {
                        end.corrupt = end.corrupt.saturating_add(1);
                        end.damaged = true;
                    }
                }
                continue;
            }
            // Not an item: erased space (the end, if the rest is erased too), an erased unit
            // inside a torn write, or junk.
            if hb.iter().all(|&b| b == 0xFF) {
                if self.erased_from(flash, base, off).await? {
                    end.free = off;
                    return Ok(end);
                }
                off += unit;
                continue;
            }
            if !in_junk {
                end.corrupt = end.corrupt.saturating_add(1);
                in_junk = true;
            }
            end.damaged = true;
            off += unit;
        }
        Ok(end)
    }

    /// Whether the page is erased from `off` to its end.
    async fn erased_from<F: NorFlash>(
        &self,
        flash: &mut F,
        base: u32,
        off: u32,
    ) -> Result<bool, MountError> {
        let mut stage = [0u8; 2 * MAX_WRITE_SIZE];
        let mut at = off;
        while at < self.geo.page {
            let n = ((self.geo.page - at) as usize).min(stage.len());
            let buf = stage.get_mut(..n).unwrap_or_default();
            self.read_bytes(flash, base + at, buf)
                .await
                .map_err(MountError::Flash)?;
            if buf.iter().any(|&b| b != 0xFF) {
                return Ok(false);
            }
            at += n as u32;
        }
        Ok(true)
    }

    /// Verifies an item's payload CRC and decodes it.
    async fn check_item<F: NorFlash>(
        &self,
        flash: &mut F,
        base: u32,
        payload_at: u32,
        h: ItemHeader,
    ) -> Result<Option<Found>, MountError> {
        let mut crc = Crc32::new();
        let mut fixed = [0u8; EVENT_FIXED];
        let mut stage = [0u8; 2 * MAX_WRITE_SIZE];
        let mut done = 0usize;
        while done < h.len {
            let n = (h.len - done).min(stage.len());
            let buf = stage.get_mut(..n).unwrap_or_default();
            self.read_bytes(flash, base + payload_at + done as u32, buf)
                .await
                .map_err(MountError::Flash)?;
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
