//! The event log's rules, one at a time.

use posthog_embedded::capture::OverflowPolicy;
use posthog_embedded::storage::sim::SimFlash;
use posthog_embedded::storage::{
    AppendError, EventLog, EventTime, GeometryError, MountError, ReadError, BOOT_RESERVE,
    FLAG_TIMESTAMP,
};
use posthog_embedded::time::{Instant, UnixMillis};

use super::block_on;

type Flash = SimFlash<4, 1024>;

fn json(seq: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{{\"event\":\"e{seq}\",\"pad\":\"").into_bytes();
    while v.len() + 2 < len {
        v.push(b'a' + (seq % 26) as u8);
    }
    v.extend_from_slice(b"\"}");
    v
}

fn mount<const W: usize, const E: usize>(
    f: &mut SimFlash<W, E>,
    pages: u32,
) -> (EventLog, posthog_embedded::storage::Mounted) {
    block_on(EventLog::mount(f, 0..pages * E as u32)).expect("mount")
}

fn read_all<const W: usize, const E: usize>(
    log: &mut EventLog,
    f: &mut SimFlash<W, E>,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    let mut from = 0;
    while let Some(ev) = block_on(log.read(f, from, &mut buf)).expect("read") {
        out.push((ev.seq, buf[..ev.len].to_vec()));
        from = ev.seq + 1;
    }
    out
}

/// Appends event `seq` (the next number the log gives, checked) of `len` bytes.
fn append(log: &mut EventLog, f: &mut Flash, seq: u64, len: usize) -> Result<(), AppendError> {
    assert_eq!(log.next_seq(), seq, "the log numbers events in order");
    let got = block_on(log.append(
        f,
        0,
        Instant::from_millis(seq * 10),
        &json(seq, len),
        OverflowPolicy::RejectNewest,
    ))?;
    assert_eq!(got, seq);
    Ok(())
}

#[test]
fn events_survive_a_remount_in_order_and_boots_count_up() {
    let mut f = Flash::new(4, 1);
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!((m.boot, m.restored, m.tail, m.next_seq), (1, 0, 0, 0));
    assert!(m.boot_recorded);
    for seq in 0..10 {
        append(&mut log, &mut f, seq, 80 + seq as usize).unwrap();
    }
    assert_eq!(log.stats().persisted, 10);
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!((m.boot, m.restored, m.tail, m.next_seq), (2, 10, 0, 10));
    let all = read_all(&mut log, &mut f);
    assert_eq!(all.len(), 10);
    for (i, (seq, j)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64);
        assert_eq!(*j, json(*seq, 80 + *seq as usize));
    }
    // Sequence numbers go on from the stored ones.
    append(&mut log, &mut f, 10, 50).unwrap();
    let (_, m) = mount(&mut f, 4);
    assert_eq!((m.boot, m.restored, m.next_seq), (3, 11, 11));
}

#[test]
fn the_tail_removes_delivered_events_for_good() {
    let mut f = Flash::new(4, 2);
    let (mut log, _) = mount(&mut f, 4);
    for seq in 0..8 {
        append(&mut log, &mut f, seq, 60).unwrap();
    }
    block_on(log.set_tail(&mut f, 5)).unwrap();
    // Reads skip what is done, before and after a remount.
    assert_eq!(
        read_all(&mut log, &mut f)
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [5, 6, 7]
    );
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!((m.restored, m.tail, m.next_seq), (3, 5, 8));
    assert_eq!(
        read_all(&mut log, &mut f)
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [5, 6, 7]
    );
    // A lower tail changes nothing; delivering everything leaves nothing to restore.
    block_on(log.set_tail(&mut f, 2)).unwrap();
    assert_eq!(log.tail(), 5);
    block_on(log.set_tail(&mut f, 8)).unwrap();
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!((m.restored, m.tail, m.next_seq), (0, 8, 8));
    assert!(read_all(&mut log, &mut f).is_empty());
}

#[test]
fn a_full_region_refuses_or_drops_the_oldest_page_and_counts_it() {
    // RejectNewest: the region fills up, then refuses; nothing stored is lost.
    let mut f = Flash::new(3, 3);
    let (mut log, _) = mount(&mut f, 3);
    let mut seq = 0;
    let err = loop {
        match append(&mut log, &mut f, seq, 200) {
            Ok(()) => seq += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, AppendError::Full);
    assert_eq!(log.stats().rejected_full, 1);
    let stored = seq;
    assert!(
        stored >= 8,
        "three 1 KiB pages hold {stored} events of 200 bytes"
    );
    let (mut log, m) = mount(&mut f, 3);
    assert_eq!(m.restored as u64, stored);
    assert_eq!(read_all(&mut log, &mut f).len() as u64, stored);
    // Delivering some makes room again.
    block_on(log.set_tail(&mut f, 5)).unwrap();
    append(&mut log, &mut f, stored, 200).unwrap();

    // DropOldest: the oldest page's events go, counted, and the tail moves past them.
    let mut f = Flash::new(3, 4);
    let (mut log, _) = mount(&mut f, 3);
    for seq in 0..40 {
        block_on(log.append(
            &mut f,
            0,
            Instant::from_millis(seq),
            &json(seq, 200),
            OverflowPolicy::DropOldest,
        ))
        .unwrap();
    }
    let dropped = log.stats().dropped_full;
    assert!(dropped > 0);
    let kept = read_all(&mut log, &mut f);
    assert_eq!(kept.len() as u64 + u64::from(dropped), 40);
    assert_eq!(kept.first().map(|e| e.0), Some(log.tail()));
    assert_eq!(kept.last().map(|e| e.0), Some(39));
    let (mut log, m) = mount(&mut f, 3);
    assert_eq!(read_all(&mut log, &mut f), kept);
    assert_eq!(m.restored as usize, kept.len());
}

#[test]
fn wear_is_spread_over_every_page() {
    let mut f = Flash::new(5, 5);
    let (mut log, _) = mount(&mut f, 5);
    for seq in 0..2000 {
        append(&mut log, &mut f, seq, 150).unwrap();
        if seq % 10 == 9 {
            block_on(log.set_tail(&mut f, seq + 1)).unwrap();
        }
    }
    let counts = f.erase_counts().to_vec();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(*min > 50, "{counts:?}");
    assert!(max - min <= 1, "uneven wear: {counts:?}");
}

#[test]
fn restored_events_get_the_time_the_rule_allows() {
    let mut f = Flash::new(4, 6);
    // Boot 1 learns the wall clock (anchor: wall - mono = 1_700_000_000_000).
    let (mut log, m1) = mount(&mut f, 4);
    block_on(log.append(
        &mut f,
        0,
        Instant::from_millis(1_000),
        b"{}",
        OverflowPolicy::DropOldest,
    ))
    .unwrap();
    block_on(log.record_anchor(&mut f, 1_700_000_000_000)).unwrap();
    block_on(log.append(
        &mut f,
        FLAG_TIMESTAMP,
        Instant::from_millis(2_000),
        b"{}",
        OverflowPolicy::DropOldest,
    ))
    .unwrap();
    // Boot 2 never learns it.
    let (mut log, m2) = mount(&mut f, 4);
    assert_eq!(m2.boot, m1.boot + 1);
    block_on(log.append(
        &mut f,
        0,
        Instant::from_millis(500),
        b"{}",
        OverflowPolicy::DropOldest,
    ))
    .unwrap();
    block_on(log.append(
        &mut f,
        0,
        Instant::from_millis(9_500),
        b"{}",
        OverflowPolicy::DropOldest,
    ))
    .unwrap();
    // Boot 3: each branch of the rule.
    let (mut log, _) = mount(&mut f, 4);
    block_on(log.append(
        &mut f,
        0,
        Instant::from_millis(70),
        b"{}",
        OverflowPolicy::DropOldest,
    ))
    .unwrap();
    let mut buf = [0u8; 16];
    let mut times = Vec::new();
    let mut from = 0;
    while let Some(ev) = block_on(log.read(&mut f, from, &mut buf)).unwrap() {
        times.push(log.event_time(&ev));
        from = ev.seq + 1;
    }
    assert_eq!(
        times,
        [
            EventTime::Wall(UnixMillis::from_millis(1_700_000_001_000)),
            EventTime::InJson,
            EventTime::BeforeBoot(9_000),
            EventTime::BeforeBoot(0),
            EventTime::ThisBoot(Instant::from_millis(70)),
        ]
    );
}

#[test]
fn bit_flips_skip_the_damaged_event_and_are_counted() {
    let mut f = Flash::new(4, 7);
    let (mut log, _) = mount(&mut f, 4);
    for seq in 0..6 {
        append(&mut log, &mut f, seq, 100).unwrap();
    }
    // Find event 2's JSON and flip a bit in it, and one in event 4's item header.
    let raw = f.contents().to_vec();
    let at = |needle: &[u8]| raw.windows(needle.len()).position(|w| w == needle).unwrap();
    f.flip_bit(at(b"\"e2\"") + 1, 3);
    f.flip_bit(at(b"\"e4\"") - 9 - 36 + 2, 0); // the length field of its item header
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!(log.stats().corrupt, 2);
    assert_eq!(m.restored, 4);
    assert_eq!(
        read_all(&mut log, &mut f)
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [0, 1, 3, 5]
    );
    // The log goes on (no word is written twice: the simulated flash would panic).
    append(&mut log, &mut f, 6, 100).unwrap();
    let (mut log, _) = mount(&mut f, 4);
    assert_eq!(read_all(&mut log, &mut f).len(), 5);
}

#[test]
fn flash_errors_are_reported_and_the_log_goes_on() {
    let mut f = Flash::new(4, 8);
    let (mut log, _) = mount(&mut f, 4);
    append(&mut log, &mut f, 0, 100).unwrap();
    f.fail_after(3);
    assert!(matches!(
        append(&mut log, &mut f, 1, 100),
        Err(AppendError::Flash(_))
    ));
    // The failed write's number is spent (the item may be on flash); the next write gets the
    // next number and lands on a fresh page.
    append(&mut log, &mut f, 2, 100).unwrap();
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!(
        read_all(&mut log, &mut f)
            .iter()
            .map(|e| e.0)
            .collect::<Vec<_>>(),
        [0, 2]
    );
    assert_eq!(m.restored, 2);
    assert_eq!(log.stats().corrupt, 1);
}

#[test]
fn reads_name_an_event_too_large_for_the_buffer() {
    let mut f = Flash::new(4, 9);
    let (mut log, _) = mount(&mut f, 4);
    append(&mut log, &mut f, 0, 300).unwrap();
    append(&mut log, &mut f, 1, 20).unwrap();
    let mut small = [0u8; 64];
    assert_eq!(
        block_on(log.read(&mut f, 0, &mut small)),
        Err(ReadError::BufferTooSmall {
            seq: 0,
            needed: 300,
            capacity: 64
        })
    );
    let ev = block_on(log.read(&mut f, 1, &mut small)).unwrap().unwrap();
    assert_eq!(&small[..ev.len], json(1, 20).as_slice());
}

#[test]
fn geometry_is_checked() {
    let mut f = Flash::new(4, 10);
    let err = |r: Result<_, MountError>| r.err().unwrap();
    assert_eq!(
        err(block_on(EventLog::mount(&mut f, 0..1024))),
        MountError::Geometry(GeometryError::TooSmall { pages: 1, min: 2 })
    );
    assert_eq!(
        err(block_on(EventLog::mount(&mut f, 100..2148))),
        MountError::Geometry(GeometryError::Unaligned { erase: 1024 })
    );
    assert_eq!(
        err(block_on(EventLog::mount(&mut f, 0..8192))),
        MountError::Geometry(GeometryError::OutOfBounds {
            end: 8192,
            capacity: 4096
        })
    );
    let mut tiny = SimFlash::<4, 128>::new(4, 1);
    assert_eq!(
        err(block_on(EventLog::mount(&mut tiny, 0..512))),
        MountError::Geometry(GeometryError::PageSize { page: 128 })
    );
    // A flash type with no erase size counts no pages (no division by zero).
    let mut none = SimFlash::<4, 0>::new(1, 1);
    assert_eq!(
        err(block_on(EventLog::mount(&mut none, 0..0))),
        MountError::Geometry(GeometryError::TooSmall { pages: 0, min: 2 })
    );
    let mut odd = SimFlash::<12, 1200>::new(4, 1);
    assert_eq!(
        err(block_on(EventLog::mount(&mut odd, 0..4800))),
        MountError::Geometry(GeometryError::WriteSize {
            write: 12,
            read: 12,
            max: 32
        }),
        "a unit that is not a power of two"
    );
    let (log, _) = mount(&mut f, 4);
    assert_eq!(
        block_on({
            let mut log = log;
            async move {
                log.append(
                    &mut f,
                    0,
                    Instant::from_millis(0),
                    &[b'x'; 2000],
                    OverflowPolicy::DropOldest,
                )
                .await
            }
        }),
        Err(AppendError::TooLarge {
            len: 2036,
            max: 1024 - 28 - BOOT_RESERVE * 16
        })
    );
}

#[test]
fn a_32_byte_write_unit_works_the_same() {
    let mut f = SimFlash::<32, 2048>::new(3, 11);
    let (mut log, _) = mount(&mut f, 3);
    for seq in 0..30 {
        block_on(log.append(
            &mut f,
            0,
            Instant::from_millis(seq),
            &json(seq, 90 + seq as usize * 7),
            OverflowPolicy::RejectNewest,
        ))
        .unwrap();
        if seq % 4 == 3 {
            block_on(log.set_tail(&mut f, seq - 1)).unwrap();
        }
    }
    let (mut log, m) = mount(&mut f, 3);
    let all = read_all(&mut log, &mut f);
    assert_eq!(all.first().map(|e| e.0), Some(m.tail));
    for (seq, j) in &all {
        assert_eq!(*j, json(*seq, 90 + *seq as usize * 7));
    }
    assert_eq!(all.last().map(|e| e.0), Some(29));
}

/// The pages whose header starts with the log's magic, in address order.
fn headed_pages(f: &Flash, pages: usize) -> Vec<usize> {
    (0..pages)
        .filter(|p| f.contents()[p * 1024..p * 1024 + 4] == *b"PHEL")
        .collect()
}

#[test]
fn a_damaged_page_header_inside_the_ring_or_at_its_head_is_stepped_over() {
    for damaged in ["middle", "head"] {
        let mut f = Flash::new(6, 12);
        let (mut log, _) = mount(&mut f, 6);
        for seq in 0..8 {
            append(&mut log, &mut f, seq, 300).unwrap();
        }
        let used = headed_pages(&f, 6);
        assert_eq!(used, [0, 1, 2, 3], "two events of 300 bytes a page");
        let page = match damaged {
            "middle" => 1,
            _ => 3,
        };
        // A bit flip in the page header's sequence number: it no longer verifies.
        f.flip_bit(page * 1024 + 9, 2);
        let (mut log, m) = mount(&mut f, 6);
        assert_eq!((m.restored, m.next_seq), (8, 8), "{damaged}");
        assert_eq!(log.stats().corrupt, 1, "{damaged}");
        let seqs: Vec<u64> = read_all(&mut log, &mut f).iter().map(|e| e.0).collect();
        assert_eq!(seqs, (0..8).collect::<Vec<_>>(), "{damaged}");
        // The log goes on after the damaged page (no word written twice) and wraps past it.
        for seq in 8..10 {
            append(&mut log, &mut f, seq, 300).unwrap();
        }
        let (mut log, m) = mount(&mut f, 6);
        assert_eq!(m.restored, 10, "{damaged}");
        for seq in 10..40 {
            block_on(log.set_tail(&mut f, seq)).unwrap();
            append(&mut log, &mut f, seq, 300).unwrap();
        }
        let (mut log, m) = mount(&mut f, 6);
        assert_eq!((m.restored, m.tail), (1, 39), "{damaged}");
        assert_eq!(read_all(&mut log, &mut f)[0].0, 39);
    }
}

#[test]
fn a_tail_that_failed_to_reach_flash_is_written_when_asked_again() {
    let mut f = Flash::new(4, 13);
    let (mut log, _) = mount(&mut f, 4);
    for seq in 0..4 {
        append(&mut log, &mut f, seq, 60).unwrap();
    }
    f.fail_after(0);
    assert!(matches!(
        block_on(log.set_tail(&mut f, 3)),
        Err(AppendError::Flash(_))
    ));
    // Asking again writes it (it is not on flash yet).
    block_on(log.set_tail(&mut f, 3)).unwrap();
    let (_, m) = mount(&mut f, 4);
    assert_eq!((m.tail, m.restored), (3, 1));
}

#[test]
fn an_event_written_but_reported_failed_never_shares_its_number() {
    let mut f = Flash::new(4, 14);
    let (mut log, _) = mount(&mut f, 4);
    append(&mut log, &mut f, 0, 100).unwrap();
    // The whole item is programmed (136 bytes: 34 words), then its last write reports an
    // error: its number is spent, so writing it again stores it under the next one, and the
    // event after it under its own. Both copies come back (same JSON, hence same uuid);
    // nothing is hidden behind a shared number.
    f.fail_late_after(33);
    assert!(matches!(
        append(&mut log, &mut f, 1, 100),
        Err(AppendError::Flash(_))
    ));
    let again = block_on(log.append(
        &mut f,
        0,
        Instant::from_millis(10),
        &json(1, 100),
        OverflowPolicy::RejectNewest,
    ))
    .unwrap();
    assert_eq!(again, 2);
    append(&mut log, &mut f, 3, 100).unwrap();
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!((m.restored, m.next_seq), (4, 4));
    let all = read_all(&mut log, &mut f);
    assert_eq!(all.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(all[1].1, all[2].1);
}

#[test]
fn a_region_full_of_undelivered_events_still_records_every_boot() {
    let mut f = Flash::new(3, 15);
    let (mut log, _) = mount(&mut f, 3);
    let mut seq = 0;
    while append(&mut log, &mut f, seq, 200).is_ok() {
        seq += 1;
    }
    // Every mount records its boot number (uuids of later boots differ), full or not, for at
    // least BOOT_RESERVE boots in a row.
    for boot in 2..2 + BOOT_RESERVE as u32 {
        let (mut log, m) = mount(&mut f, 3);
        assert!(m.boot_recorded, "boot {boot}");
        assert_eq!((m.boot, m.restored as u64), (boot, seq));
        assert_eq!(
            append(&mut log, &mut f, seq, 200),
            Err(AppendError::Full),
            "boot {boot}"
        );
    }
    // Past the reserve (and whatever room the head page had left), a mount says its number is
    // not recorded, and the next boot gets the same number; nothing stored is lost.
    let mut boot = 2 + BOOT_RESERVE as u32;
    let unrecorded = loop {
        let (_, m) = mount(&mut f, 3);
        assert_eq!((m.boot, m.restored as u64), (boot, seq));
        if !m.boot_recorded {
            break m.boot;
        }
        boot += 1;
        assert!(boot < 2 + 1024 / 16, "more boot items than a page holds");
    };
    let (_, m) = mount(&mut f, 3);
    assert_eq!((m.boot, m.boot_recorded), (unrecorded, false));
    assert_eq!(m.restored as u64, seq);
    // A delivery frees room (the page it opens records the boot too), and boots count up
    // again.
    let (mut log, _) = mount(&mut f, 3);
    block_on(log.set_tail(&mut f, seq)).unwrap();
    let (_, m) = mount(&mut f, 3);
    assert_eq!((m.boot, m.boot_recorded), (unrecorded + 1, true));
    let (_, m) = mount(&mut f, 3);
    assert_eq!(m.boot, unrecorded + 2);
}

#[test]
fn reads_that_fail_are_retried_then_skipped_never_fatal() {
    let mut f = Flash::new(6, 16);
    let (mut log, _) = mount(&mut f, 6);
    for seq in 0..8 {
        append(&mut log, &mut f, seq, 300).unwrap();
    }
    assert_eq!(headed_pages(&f, 6), [0, 1, 2, 3]);
    // A transient error (fewer failures than retries) changes nothing.
    f.fail_reads(1024 + 600..1024 + 604, 2);
    let (mut log, m) = mount(&mut f, 6);
    assert_eq!((m.restored, log.stats().corrupt), (8, 0));
    assert_eq!(read_all(&mut log, &mut f).len(), 8);
    // A word of page 1 that never reads (the second event there): the mount still succeeds,
    // the rest of that page is skipped and counted, everything else comes back.
    f.fail_reads(1024 + 600..1024 + 604, u32::MAX);
    let (mut log, m) = mount(&mut f, 6);
    assert!(m.boot_recorded);
    assert_eq!(m.restored, 7);
    assert!(log.stats().corrupt >= 1);
    let seqs: Vec<u64> = read_all(&mut log, &mut f).iter().map(|e| e.0).collect();
    assert_eq!(seqs, [0, 1, 2, 4, 5, 6, 7]);
    // The log goes on, wrapping around the ring: the unreadable page is erased only once the
    // tail is past the events after it, and nothing is written into it before.
    for seq in 8u64..30 {
        block_on(log.set_tail(&mut f, seq - 2)).unwrap();
        append(&mut log, &mut f, seq, 300).unwrap();
    }
    let (mut log, m) = mount(&mut f, 6);
    assert_eq!((m.tail, m.restored), (27, 3));
    let seqs: Vec<u64> = read_all(&mut log, &mut f).iter().map(|e| e.0).collect();
    assert_eq!(seqs, [27, 28, 29]);
}

#[test]
fn a_full_ring_whose_oldest_page_lost_its_header_keeps_its_events() {
    let mut f = Flash::new(4, 17);
    let (mut log, _) = mount(&mut f, 4);
    let mut seq = 0;
    while append(&mut log, &mut f, seq, 300).is_ok() {
        seq += 1;
    }
    assert_eq!(headed_pages(&f, 4), [0, 1, 2, 3]);
    f.flip_bit(9, 2); // page 0, the oldest: its header no longer verifies
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!(m.restored as u64, seq);
    assert_eq!(read_all(&mut log, &mut f).len() as u64, seq);
    // Still full (nothing of page 0 is erased while undelivered); delivering frees it.
    assert_eq!(append(&mut log, &mut f, seq, 300), Err(AppendError::Full));
    block_on(log.set_tail(&mut f, 2)).unwrap();
    append(&mut log, &mut f, seq, 300).unwrap();
    let (mut log, m) = mount(&mut f, 4);
    assert_eq!(m.restored as u64, seq + 1 - 2);
    assert_eq!(read_all(&mut log, &mut f)[0].0, 2);
}

#[test]
fn a_flash_that_reads_nothing_fails_the_mount_instead_of_looking_empty() {
    let mut f = Flash::new(4, 18);
    let (mut log, _) = mount(&mut f, 4);
    append(&mut log, &mut f, 0, 100).unwrap();
    f.fail_reads(0..4 * 1024, u32::MAX);
    assert_eq!(
        block_on(EventLog::mount(&mut f, 0..4 * 1024)).err(),
        Some(MountError::Flash)
    );
    // Once it reads again, nothing was lost.
    f.fail_reads(0..0, 0);
    let (_, m) = mount(&mut f, 4);
    assert_eq!((m.restored, m.boot), (1, 2));
}

#[test]
fn several_lost_headers_side_by_side_keep_their_pages_in_the_ring() {
    let mut f = Flash::new(6, 19);
    let (mut log, _) = mount(&mut f, 6);
    for seq in 0..10 {
        append(&mut log, &mut f, seq, 300).unwrap();
    }
    assert_eq!(headed_pages(&f, 6), [0, 1, 2, 3, 4]);
    // Pages 1, 2 and 3 lose their headers; page 0 (sequence 0) is still four pages back from
    // the head (sequence 4), so all of them are in the ring.
    for p in 1..4 {
        f.flip_bit(p * 1024 + 9, 2);
    }
    let (mut log, m) = mount(&mut f, 6);
    assert_eq!((m.restored, log.stats().corrupt), (10, 3));
    let seqs: Vec<u64> = read_all(&mut log, &mut f).iter().map(|e| e.0).collect();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    // The ring goes on and wraps over them.
    for seq in 10..30 {
        block_on(log.set_tail(&mut f, seq)).unwrap();
        append(&mut log, &mut f, seq, 300).unwrap();
    }
    let (mut log, m) = mount(&mut f, 6);
    assert_eq!((m.restored, m.tail), (1, 29));
    assert_eq!(read_all(&mut log, &mut f)[0].0, 29);
}
